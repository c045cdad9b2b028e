//! Usage per API key: how many reports, events and newly counted checks each key's
//! sidecars sent per UTC day of receipt (table `key_usage_daily`). A retried batch
//! adds a report and its events again, but no checks.

use std::collections::HashMap;

use crate::db::Db;

/// One key's traffic over some days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyUsage {
    pub reports: i64,
    pub events: i64,
    pub checks: i64,
}

/// Adds the reports received with `key_id` on `day`, in their own transaction
/// (`store::usage::ingest`): a commit of its own would cost as much as the
/// reports' events.
pub(crate) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org_id: &str,
    key_id: &str,
    day: i64,
    usage: KeyUsage,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO key_usage_daily (org_id, key_id, day, reports, events, checks) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, key_id, day) DO UPDATE SET \
         reports = key_usage_daily.reports + $4, events = key_usage_daily.events + $5, \
         checks = key_usage_daily.checks + $6",
    )
    .bind(org_id)
    .bind(key_id)
    .bind(day)
    .bind(usage.reports)
    .bind(usage.events)
    .bind(usage.checks)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Each key's totals from `first_day` on.
pub async fn totals(
    db: &Db,
    org_id: &str,
    first_day: i64,
) -> Result<HashMap<String, KeyUsage>, sqlx::Error> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT key_id, CAST(SUM(reports) AS BIGINT), CAST(SUM(events) AS BIGINT), \
         CAST(SUM(checks) AS BIGINT) FROM key_usage_daily WHERE org_id = $1 AND day >= $2 \
         GROUP BY key_id",
    )
    .bind(org_id)
    .bind(first_day)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, reports, events, checks)| {
            (
                key,
                KeyUsage {
                    reports,
                    events,
                    checks,
                },
            )
        })
        .collect())
}

/// One key's days from `first_day` to `today`, oldest first, zeros included.
pub async fn daily(
    db: &Db,
    org_id: &str,
    key_id: &str,
    first_day: i64,
    today: i64,
) -> Result<Vec<(i64, KeyUsage)>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, reports, events, checks FROM key_usage_daily \
         WHERE org_id = $1 AND key_id = $2 AND day >= $3 AND day <= $4",
    )
    .bind(org_id)
    .bind(key_id)
    .bind(first_day)
    .bind(today)
    .fetch_all(&db.pool)
    .await?;
    let mut by_day: HashMap<i64, KeyUsage> = rows
        .into_iter()
        .map(|(day, reports, events, checks)| {
            (
                day,
                KeyUsage {
                    reports,
                    events,
                    checks,
                },
            )
        })
        .collect();
    Ok((first_day..=today)
        .map(|d| (d, by_day.remove(&d).unwrap_or_default()))
        .collect())
}
