//! Dashboard sessions: a random cookie value, stored as SHA-256, with its CSRF
//! token. A session ends [`SESSION_SECS`] after login, after `idle_secs` without a
//! request, at logout, when its member signs out their other sessions or changes
//! their password elsewhere, and when the member is removed.

use crate::db::Db;
use crate::role::Role;
use crate::secrets;
use crate::time_util::now;

/// Session lifetime.
pub const SESSION_SECS: i64 = 7 * 86_400;

/// How stale `last_seen_at` may get before a request writes it: a write a minute
/// per session, not one per request, at the price of an idle timeout a minute
/// more lenient.
pub const TOUCH_EVERY_SECS: i64 = 60;

/// A live session.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    /// Read with the session on every request, so a role change applies at once.
    pub role: Role,
    pub csrf_token: String,
}

/// Creates a session and returns the cookie value.
pub async fn create(db: &Db, user_id: &str, org_id: &str) -> Result<String, sqlx::Error> {
    let token = secrets::random_string(43);
    let at = now();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, org_id, csrf_token, created_at, expires_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $5)",
    )
    .bind(secrets::sha256_hex(&token))
    .bind(user_id)
    .bind(org_id)
    .bind(secrets::random_string(32))
    .bind(at)
    .bind(at + SESSION_SECS)
    .execute(&db.pool)
    .await?;
    Ok(token)
}

/// The live session of a cookie value, used by a request now: one idle for
/// `idle_secs` or more is over.
pub async fn get(db: &Db, token: &str, idle_secs: i64) -> Result<Option<Session>, sqlx::Error> {
    let at = now();
    let hash = secrets::sha256_hex(token);
    let row: Option<(String, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT s.user_id, s.org_id, u.email, u.role, s.csrf_token, s.last_seen_at FROM sessions s \
         JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3",
    )
    .bind(&hash)
    .bind(at)
    .bind(at - idle_secs)
    .fetch_optional(&db.pool)
    .await?;
    if let Some((.., last_seen_at)) = &row {
        if *last_seen_at <= at - TOUCH_EVERY_SECS {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(at)
                .bind(&hash)
                .execute(&db.pool)
                .await?;
        }
    }
    let row = row.map(|(u, o, e, r, c, _)| (u, o, e, r, c));
    Ok(
        row.map(|(user_id, org_id, email, role, csrf_token)| Session {
            user_id,
            org_id,
            email,
            role: Role::stored(&role),
            csrf_token,
        }),
    )
}

pub async fn delete(db: &Db, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(secrets::sha256_hex(token))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Ends every session of `user_id` but the one of cookie value `keep`; returns how many.
pub async fn delete_others(db: &Db, user_id: &str, keep: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(secrets::sha256_hex(keep))
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}

/// How many sessions of `user_id` are live (not expired, not idle too long).
pub async fn count_live(db: &Db, user_id: &str, idle_secs: i64) -> Result<i64, sqlx::Error> {
    let at = now();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $3",
    )
    .bind(user_id)
    .bind(at)
    .bind(at - idle_secs)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// Deletes sessions past their lifetime or idle for `idle_secs`.
pub async fn purge_expired(db: &Db, idle_secs: i64) -> Result<u64, sqlx::Error> {
    let at = now();
    let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(at)
        .bind(at - idle_secs)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}
