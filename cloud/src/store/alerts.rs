//! Alert webhooks, what has fired, and deliveries (migration `0012_alerts`). The
//! rules and the sending live in [`crate::alerts`].

use crate::db::Db;
use crate::secrets;

/// Where and on what an organisation is alerted.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Hook {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub secret: String,
    /// Denials within [`crate::alerts::SPIKE_WINDOW_SECS`] that make a spike; 0 = off.
    pub spike_denials: i64,
    /// 1: alert at 80 % and 100 % of the daily quota.
    pub quota: i64,
    /// A sidecar silent this long is reported, seconds; 0 = off.
    pub silent_secs: i64,
    pub created_at: i64,
}

/// A hook to create.
pub struct NewHook<'a> {
    pub url: &'a str,
    pub spike_denials: i64,
    pub quota: bool,
    pub silent_secs: i64,
}

/// Creates a hook; returns it (its secret is shown once).
pub async fn create(
    db: &Db,
    org_id: &str,
    new: &NewHook<'_>,
    at: i64,
) -> Result<Hook, sqlx::Error> {
    let hook = Hook {
        id: secrets::new_id("hook"),
        org_id: org_id.to_owned(),
        url: new.url.to_owned(),
        secret: format!("whsec_kg_{}", secrets::random_string(32)),
        spike_denials: new.spike_denials,
        quota: i64::from(new.quota),
        silent_secs: new.silent_secs,
        created_at: at,
    };
    sqlx::query(
        "INSERT INTO alert_hooks (id, org_id, url, secret, spike_denials, quota, silent_secs, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&hook.id)
    .bind(&hook.org_id)
    .bind(&hook.url)
    .bind(&hook.secret)
    .bind(hook.spike_denials)
    .bind(hook.quota)
    .bind(hook.silent_secs)
    .bind(hook.created_at)
    .execute(&db.pool)
    .await?;
    Ok(hook)
}

const HOOK_COLUMNS: &str = "id, org_id, url, secret, spike_denials, quota, silent_secs, created_at";

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<Hook>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOOK_COLUMNS} FROM alert_hooks WHERE org_id = $1 ORDER BY created_at, id"
    ))
    .bind(org_id)
    .fetch_all(&db.pool)
    .await
}

/// Every hook of every organisation (the evaluator walks them).
pub async fn all(db: &Db) -> Result<Vec<Hook>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOOK_COLUMNS} FROM alert_hooks ORDER BY org_id, created_at"
    ))
    .fetch_all(&db.pool)
    .await
}

/// Deletes a hook of this organisation; `false` when there is none with this ID.
pub async fn delete(db: &Db, org_id: &str, hook_id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM alert_hooks WHERE id = $1 AND org_id = $2")
        .bind(hook_id)
        .bind(org_id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks an alert as fired; `true` the first time only.
pub async fn fire_once(
    db: &Db,
    org_id: &str,
    alert_key: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO alert_fired (org_id, alert_key, fired_at) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id, alert_key) DO NOTHING",
    )
    .bind(org_id)
    .bind(alert_key)
    .bind(at)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A delivery as the log shows it and the sender works on it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub org_id: String,
    pub hook_id: String,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_at: i64,
    pub last_result: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const DELIVERY_COLUMNS: &str = "id, org_id, hook_id, kind, payload, status, attempts, next_at, \
    last_result, created_at, updated_at";

/// Queues a payload for a hook, to be sent at once.
pub async fn enqueue(
    db: &Db,
    hook: &Hook,
    kind: &str,
    payload: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO alert_deliveries (id, org_id, hook_id, kind, payload, status, attempts, next_at, \
         last_result, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, '', $6, $6)",
    )
    .bind(secrets::new_id("dlv"))
    .bind(&hook.org_id)
    .bind(&hook.id)
    .bind(kind)
    .bind(payload)
    .bind(at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Deliveries due at `at`, oldest first.
pub async fn due(db: &Db, at: i64, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE status = 'pending' AND next_at <= $1 \
         ORDER BY next_at, id LIMIT $2"
    ))
    .bind(at)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Takes a due delivery for one attempt: moves its `next_at` to `lease_until`, so
/// another replica (or an overlapping round) does not send it too, and a process
/// that dies mid-attempt leaves it to be retried then. `false`: someone else has it.
pub async fn claim(db: &Db, id: &str, at: i64, lease_until: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE alert_deliveries SET next_at = $1 WHERE id = $2 AND status = 'pending' AND next_at <= $3",
    )
    .bind(lease_until)
    .bind(id)
    .bind(at)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records an attempt's outcome: `status` and when to try again (pending only).
pub async fn attempted(
    db: &Db,
    id: &str,
    status: &str,
    next_at: i64,
    result: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE alert_deliveries SET status = $1, attempts = attempts + 1, next_at = $2, \
         last_result = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(status)
    .bind(next_at)
    .bind(result)
    .bind(at)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The organisation's latest deliveries, newest first.
pub async fn recent(db: &Db, org_id: &str, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE org_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(org_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Denied events of the organisation from `since_ms` to `until_ms`. The end
/// bounds events dated ahead (their time is kept as the sidecar sent it), so a
/// denial dated in a week does not count in every window until then.
pub async fn denials_between(
    db: &Db,
    org_id: &str,
    since_ms: i64,
    until_ms: i64,
) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM events WHERE org_id = $1 AND decision = 'deny' \
         AND ts_ms >= $2 AND ts_ms <= $3",
    )
    .bind(org_id)
    .bind(since_ms)
    .bind(until_ms)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}
