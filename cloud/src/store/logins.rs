//! What the login throttle and the sign-up limit remember, in the database so
//! every replica enforces the same limits: failed logins by account and source,
//! the browsers known to have logged in to an account, sign-ups by address.

use crate::db::Db;
use crate::secrets;

/// Failures of one kind since a moment: how many, and when the last was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub last_at: i64,
}

async fn failures(db: &Db, sql: &str, binds: &[&str], since: i64) -> Result<Failures, sqlx::Error> {
    let mut q = sqlx::query_as::<_, (i64, Option<i64>)>(sql);
    for b in binds {
        q = q.bind(*b);
    }
    let (count, last) = q.bind(since).fetch_one(&db.pool).await?;
    Ok(Failures {
        count,
        last_at: last.unwrap_or(0),
    })
}

/// Failures for this account from this source since `since`.
pub async fn pair_failures(
    db: &Db,
    email: &str,
    source: &str,
    since: i64,
) -> Result<Failures, sqlx::Error> {
    failures(
        db,
        "SELECT COUNT(*), MAX(at) FROM login_failures WHERE email = $1 AND source = $2 AND at > $3",
        &[email, source],
        since,
    )
    .await
}

/// Failures for this account from client addresses (not known devices).
pub async fn account_failures(db: &Db, email: &str, since: i64) -> Result<Failures, sqlx::Error> {
    failures(
        db,
        "SELECT COUNT(*), MAX(at) FROM login_failures WHERE email = $1 AND source LIKE 'a:%' AND at > $2",
        &[email],
        since,
    )
    .await
}

/// Failures from this source, whatever the account.
pub async fn source_failures(db: &Db, source: &str, since: i64) -> Result<Failures, sqlx::Error> {
    failures(
        db,
        "SELECT COUNT(*), MAX(at) FROM login_failures WHERE source = $1 AND at > $2",
        &[source],
        since,
    )
    .await
}

/// Every source that failed for this account since `since`, with its failures.
pub async fn failures_by_source(
    db: &Db,
    email: &str,
    since: i64,
) -> Result<Vec<(String, Failures)>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT source, COUNT(*), MAX(at) FROM login_failures WHERE email = $1 AND at > $2 GROUP BY source",
    )
    .bind(email)
    .bind(since)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(source, count, last_at)| (source, Failures { count, last_at }))
        .collect())
}

pub async fn record_failure(
    db: &Db,
    email: &str,
    source: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO login_failures (email, source, at) VALUES ($1, $2, $3)")
        .bind(email)
        .bind(source)
        .bind(at)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forgets this source's failures for this account (it logged in).
pub async fn clear_pair(db: &Db, email: &str, source: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE email = $1 AND source = $2")
        .bind(email)
        .bind(source)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forgets every failure for this account (an owner unlocked it). Returns how many.
pub async fn clear_account(db: &Db, email: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(email)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}

/// Remembers a browser that logged in to `user_id`; returns its cookie value.
pub async fn add_device(
    db: &Db,
    user_id: &str,
    at: i64,
    ttl_secs: i64,
) -> Result<String, sqlx::Error> {
    let token = secrets::random_string(43);
    sqlx::query(
        "INSERT INTO login_devices (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(secrets::sha256_hex(&token))
    .bind(user_id)
    .bind(at)
    .bind(at + ttl_secs)
    .execute(&db.pool)
    .await?;
    Ok(token)
}

/// The device ID (a fingerprint of the cookie) when `token` is a live device
/// cookie of `user_id`.
pub async fn known_device(
    db: &Db,
    token: &str,
    user_id: &str,
    at: i64,
) -> Result<Option<String>, sqlx::Error> {
    let hash = secrets::sha256_hex(token);
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT token_hash FROM login_devices WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3",
    )
    .bind(&hash)
    .bind(user_id)
    .bind(at)
    .fetch_optional(&db.pool)
    .await?;
    Ok(found.map(|_| hash.chars().take(16).collect()))
}

/// Forgets a member's devices (they were removed).
pub async fn forget_devices(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_devices WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records a sign-up attempt from `source` and returns how many there were since
/// `since`, this one included.
pub async fn count_signup(db: &Db, source: &str, at: i64, since: i64) -> Result<i64, sqlx::Error> {
    sqlx::query("INSERT INTO signup_attempts (source, at) VALUES ($1, $2)")
        .bind(source)
        .bind(at)
        .execute(&db.pool)
        .await?;
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM signup_attempts WHERE source = $1 AND at > $2")
            .bind(source)
            .bind(since)
            .fetch_one(&db.pool)
            .await?;
    Ok(n)
}

/// Deletes what is older than the throttle remembers, and expired devices.
pub async fn purge(db: &Db, before: i64, at: i64) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM login_failures WHERE at <= $1",
        "DELETE FROM signup_attempts WHERE at <= $1",
    ] {
        sqlx::query(sql).bind(before).execute(&db.pool).await?;
    }
    sqlx::query("DELETE FROM login_devices WHERE expires_at <= $1")
        .bind(at)
        .execute(&db.pool)
        .await?;
    Ok(())
}
