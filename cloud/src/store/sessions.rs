//! Dashboard sessions: a random cookie value, stored as SHA-256, with its CSRF token.

use crate::db::Db;
use crate::role::Role;
use crate::secrets;
use crate::time_util::now;

/// Session lifetime.
pub const SESSION_SECS: i64 = 7 * 86_400;

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
        "INSERT INTO sessions (token_hash, user_id, org_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
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

pub async fn get(db: &Db, token: &str) -> Result<Option<Session>, sqlx::Error> {
    let row: Option<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT s.user_id, s.org_id, u.email, u.role, s.csrf_token FROM sessions s \
         JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(secrets::sha256_hex(token))
    .bind(now())
    .fetch_optional(&db.pool)
    .await?;
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

pub async fn purge_expired(db: &Db) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now())
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}
