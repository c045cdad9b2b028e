//! Failed-login records behind the login rate limit, in the database so that
//! every replica sees the same counts.

use crate::db::Db;

/// Failed logins within `window_secs` before `at` for a scope (`e:<email>` or `a:<addr>`).
pub async fn recent_failures(
    db: &Db,
    scope: &str,
    at: i64,
    window_secs: i64,
) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE scope = $1 AND at > $2")
            .bind(scope)
            .bind(at - window_secs)
            .fetch_one(&db.pool)
            .await?;
    Ok(n)
}

pub async fn record_failure(db: &Db, scopes: &[&str], at: i64) -> Result<(), sqlx::Error> {
    for scope in scopes {
        sqlx::query("INSERT INTO login_failures (scope, at) VALUES ($1, $2)")
            .bind(*scope)
            .bind(at)
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

pub async fn clear(db: &Db, scope: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE scope = $1")
        .bind(scope)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn purge(db: &Db, before: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE at <= $1")
        .bind(before)
        .execute(&db.pool)
        .await?;
    Ok(())
}
