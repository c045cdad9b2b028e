//! MCP tools held back by control planes in Cloud mode (migration
//! `0017_pin_holds`, wire contract `kalguard_wire::pins::PinReport`):
//! reported by each sidecar (its report replaces the one before), decided
//! once by a member on the dashboard, settled by the control plane that
//! applied the decision, or did not.
//!
//! One row per held definition. A decision is an `UPDATE … WHERE decision =
//! '' AND current = 1 AND offered_sha256 = $seen`: the first one to land
//! wins, and one about a definition that is no longer the one waiting lands
//! nowhere. Decided rows stay (the page's history) after the sidecar stops
//! listing them, until the organisation's retention purges them.

use std::collections::HashMap;

use kalguard_wire::pins::{
    Held, HeldTool, PinAction, PinDecision, PinOutcome, PinReport, PinSettled, MAX_CLOUD_HELD,
};

use crate::db::Db;
use crate::secrets;

/// Most sidecars of one organisation with tools held that reported within
/// [`SIDECAR_SILENT_SECS`]: a key cannot fill the table beyond
/// `MAX_SIDECARS_PER_ORG × MAX_CLOUD_HELD` rows per silence.
pub const MAX_SIDECARS_PER_ORG: i64 = 1_000;
/// A sidecar that has not reported for this long (a live one reports every
/// five minutes) no longer counts toward [`MAX_SIDECARS_PER_ORG`]: a control
/// plane restarted with a new data directory is a new sidecar, and the old
/// one's rows, left until the retention purges them, must not keep new
/// sidecars out.
pub const SIDECAR_SILENT_SECS: i64 = 3_600;

/// One held definition, as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PinHold {
    pub id: String,
    pub sidecar_id: String,
    pub host: String,
    pub server: String,
    pub tool: String,
    pub held: String,
    pub why: String,
    /// `""` for a tool never pinned.
    pub pinned_sha256: String,
    pub offered_sha256: String,
    /// A JSON array of field names.
    pub fields_changed: String,
    pub held_since_ms: i64,
    pub reported_at: i64,
    pub current: i64,
    pub decision: String,
    pub decided_by: String,
    pub decided_at: Option<i64>,
    pub outcome: String,
    pub outcome_detail: String,
    pub settled_at: Option<i64>,
}

impl PinHold {
    pub fn held(&self) -> Option<Held> {
        Held::parse(&self.held)
    }

    pub fn action(&self) -> Option<PinAction> {
        PinAction::parse(&self.decision)
    }

    pub fn outcome(&self) -> Option<PinOutcome> {
        PinOutcome::parse(&self.outcome)
    }

    /// The fields whose definitions changed.
    pub fn fields_changed(&self) -> Vec<String> {
        serde_json::from_str(&self.fields_changed).unwrap_or_default()
    }

    /// The decision a control plane is to apply, if one was taken.
    pub fn decision(&self) -> Option<PinDecision> {
        Some(PinDecision {
            id: self.id.clone(),
            server: self.server.clone(),
            tool: self.tool.clone(),
            action: self.action()?,
            offered_sha256: self.offered_sha256.clone(),
            held_since_ms: u64::try_from(self.held_since_ms).ok()?,
            by: self.decided_by.clone(),
        })
    }
}

const COLUMNS: &str = "id, sidecar_id, host, server, tool, held, why, pinned_sha256, \
     offered_sha256, fields_changed, held_since_ms, reported_at, current, decision, decided_by, \
     decided_at, outcome, outcome_detail, settled_at";

/// What a report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    /// Stored; the decisions waiting for this sidecar.
    Stored(Vec<PinDecision>),
    /// [`MAX_SIDECARS_PER_ORG`] other sidecars have tools held already.
    Full,
}

/// A row's identity within one sidecar's report.
fn key(server: &str, tool: &str) -> (String, String) {
    (server.to_owned(), tool.to_owned())
}

/// Stores a sidecar's report (checked by the caller) at `at` (unix
/// seconds): what it lists is current, what it no longer lists is not (and
/// is deleted unless decided); a tool listed with another offered
/// definition is a new row.
pub async fn report(
    db: &Db,
    org_id: &str,
    report: &PinReport,
    at: i64,
) -> Result<Reported, sqlx::Error> {
    {
        let _turn = db.write_turn().await;
        let mut tx = db.pool.begin().await?;
        // The sidecars that take room: those with held tools, and those
        // whose report only left tools out (a row of `pin_reports` each).
        let (others,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (\
             SELECT sidecar_id FROM pin_holds \
             WHERE org_id = $1 AND current = 1 AND sidecar_id <> $2 AND reported_at >= $3 \
             UNION SELECT sidecar_id FROM pin_reports \
             WHERE org_id = $4 AND sidecar_id <> $5 AND reported_at >= $6) AS live",
        )
        .bind(org_id)
        .bind(&report.sidecar_id)
        .bind(at - SIDECAR_SILENT_SECS)
        .bind(org_id)
        .bind(&report.sidecar_id)
        .bind(at - SIDECAR_SILENT_SECS)
        .fetch_one(&mut *tx)
        .await?;
        let takes_room = !report.held.is_empty() || report.left_out > 0;
        if others >= MAX_SIDECARS_PER_ORG && takes_room {
            return Ok(Reported::Full);
        }
        let current: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, server, tool, offered_sha256, held_since_ms FROM pin_holds \
             WHERE org_id = $1 AND sidecar_id = $2 AND current = 1",
        )
        .bind(org_id)
        .bind(&report.sidecar_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut known: HashMap<(String, String), (String, String, i64)> = current
            .into_iter()
            .map(|(id, server, tool, sha, since)| (key(&server, &tool), (id, sha, since)))
            .collect();
        let host = report.host.clone().unwrap_or_default();
        // What is listed as before is only seen again: one statement for all.
        sqlx::query(
            "UPDATE pin_holds SET reported_at = $1, host = $2 \
             WHERE org_id = $3 AND sidecar_id = $4 AND current = 1",
        )
        .bind(at)
        .bind(&host)
        .bind(org_id)
        .bind(&report.sidecar_id)
        .execute(&mut *tx)
        .await?;
        let mut retired = Vec::new();
        let mut new = Vec::new();
        for tool in &report.held {
            let since = i64::try_from(tool.held_since_ms).unwrap_or(i64::MAX);
            match known.remove(&key(&tool.server, &tool.tool)) {
                Some((_, sha, seen_since)) if sha == tool.offered_sha256 && seen_since == since => {
                }
                Some((id, _, _)) => {
                    retired.push(id);
                    new.push(tool);
                }
                None => new.push(tool),
            }
        }
        retired.extend(known.into_values().map(|(id, _, _)| id));
        // Retired before the new rows go in: one current row per tool
        // (`pin_holds_current`), so a report racing another of the same
        // sidecar on Postgres fails instead of doubling the rows.
        for id in &retired {
            sqlx::query("DELETE FROM pin_holds WHERE org_id = $1 AND id = $2 AND decision = ''")
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE pin_holds SET current = 0 WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for tool in new {
            insert(&mut tx, org_id, report, &host, tool, at).await?;
        }
        keep_left_out(&mut tx, org_id, report, &host, at).await?;
        tx.commit().await?;
    }
    Ok(Reported::Stored(
        deliverable(db, org_id, &report.sidecar_id).await?,
    ))
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org_id: &str,
    report: &PinReport,
    host: &str,
    tool: &HeldTool,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pin_holds (org_id, id, sidecar_id, host, server, tool, held, why, \
         pinned_sha256, offered_sha256, fields_changed, held_since_ms, reported_at, current) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)",
    )
    .bind(org_id)
    .bind(secrets::new_id("ph"))
    .bind(&report.sidecar_id)
    .bind(host)
    .bind(&tool.server)
    .bind(&tool.tool)
    .bind(tool.held.as_str())
    .bind(tool.why.clone().unwrap_or_default())
    .bind(tool.pinned_sha256.clone().unwrap_or_default())
    .bind(&tool.offered_sha256)
    .bind(serde_json::to_string(&tool.fields_changed).unwrap_or_else(|_| "[]".into()))
    .bind(i64::try_from(tool.held_since_ms).unwrap_or(i64::MAX))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Keeps what `report` left out (migration `0019_pin_reports`): a row
/// while the count is not 0.
async fn keep_left_out(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org_id: &str,
    report: &PinReport,
    host: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM pin_reports WHERE org_id = $1 AND sidecar_id = $2")
        .bind(org_id)
        .bind(&report.sidecar_id)
        .execute(&mut **tx)
        .await?;
    if report.left_out == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO pin_reports (org_id, sidecar_id, host, left_out, reported_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org_id)
    .bind(&report.sidecar_id)
    .bind(host)
    .bind(i64::try_from(report.left_out).unwrap_or(i64::MAX))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A sidecar whose latest report left held tools out.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LeftOut {
    pub sidecar_id: String,
    pub host: String,
    pub left_out: i64,
    pub reported_at: i64,
}

/// The sidecars that reported since `since` (unix seconds) and left held
/// tools out of their report, the most first (at most `limit`).
pub async fn left_out(
    db: &Db,
    org_id: &str,
    since: i64,
    limit: i64,
) -> Result<Vec<LeftOut>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sidecar_id, host, left_out, reported_at FROM pin_reports \
         WHERE org_id = $1 AND reported_at >= $2 ORDER BY left_out DESC, sidecar_id LIMIT $3",
    )
    .bind(org_id)
    .bind(since)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// The decisions taken for `sidecar_id` that it has not settled yet, oldest
/// first.
pub async fn deliverable(
    db: &Db,
    org_id: &str,
    sidecar_id: &str,
) -> Result<Vec<PinDecision>, sqlx::Error> {
    let rows: Vec<PinHold> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM pin_holds WHERE org_id = $1 AND sidecar_id = $2 \
         AND decision <> '' AND outcome = '' ORDER BY decided_at, id LIMIT $3"
    ))
    .bind(org_id)
    .bind(sidecar_id)
    .bind(i64::try_from(MAX_CLOUD_HELD).unwrap_or(i64::MAX))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().filter_map(PinHold::decision).collect())
}

/// The organisation's held definition `id`.
pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<PinHold>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM pin_holds WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// The tools held now and not decided yet, oldest first (at most
/// `limit`), and how many there are in all.
pub async fn held(db: &Db, org_id: &str, limit: i64) -> Result<(Vec<PinHold>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM pin_holds WHERE org_id = $1 AND current = 1 AND decision = '' \
         ORDER BY held_since_ms, id LIMIT $2"
    ))
    .bind(org_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let (all,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM pin_holds WHERE org_id = $1 AND current = 1 AND decision = ''",
    )
    .bind(org_id)
    .fetch_one(&db.pool)
    .await?;
    Ok((rows, all))
}

/// The `limit` latest decisions, newest first.
pub async fn decided(db: &Db, org_id: &str, limit: i64) -> Result<Vec<PinHold>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM pin_holds WHERE org_id = $1 AND decision <> '' \
         ORDER BY decided_at DESC, id LIMIT $2"
    ))
    .bind(org_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// What a member's decision did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    Taken,
    /// No such held definition in this organisation.
    NotFound,
    /// The definition shown is no longer the one waiting.
    Stale,
    /// Decided already, or no longer held.
    Gone,
}

/// A member's decision on held definition `id`, about the definition
/// `offered_sha256` they saw.
pub async fn decide(
    db: &Db,
    org_id: &str,
    id: &str,
    offered_sha256: &str,
    action: PinAction,
    by: &str,
    at: i64,
) -> Result<Decided, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE pin_holds SET decision = $1, decided_by = $2, decided_at = $3 \
         WHERE org_id = $4 AND id = $5 AND offered_sha256 = $6 AND current = 1 AND decision = ''",
    )
    .bind(action.as_str())
    .bind(by)
    .bind(at)
    .bind(org_id)
    .bind(id)
    .bind(offered_sha256)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        db.pins_changed.notify_waiters();
        return Ok(Decided::Taken);
    }
    Ok(match get(db, org_id, id).await? {
        None => Decided::NotFound,
        Some(row) if row.offered_sha256 != offered_sha256 => Decided::Stale,
        Some(_) => Decided::Gone,
    })
}

/// Records what the control plane `sidecar_id` did with its decision `id`
/// (its first word stands); `false` when it has no such decision (another
/// sidecar's is not its to settle).
pub async fn settle(
    db: &Db,
    org_id: &str,
    sidecar_id: &str,
    id: &str,
    settled: &PinSettled,
    at: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE pin_holds SET outcome = $1, outcome_detail = $2, settled_at = $3 \
         WHERE org_id = $4 AND id = $5 AND sidecar_id = $6 AND decision <> '' AND outcome = ''",
    )
    .bind(settled.outcome.as_str())
    .bind(settled.detail.clone().unwrap_or_default())
    .bind(at)
    .bind(org_id)
    .bind(id)
    .bind(sidecar_id)
    .execute(&db.pool)
    .await?;
    Ok(get(db, org_id, id)
        .await?
        .is_some_and(|row| row.sidecar_id == sidecar_id && !row.decision.is_empty()))
}

/// Deletes the organisation's rows no sidecar reported, and decisions
/// taken, before `cutoff` (unix seconds), with its audit events' retention.
pub async fn purge(db: &Db, org_id: &str, cutoff: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM pin_holds WHERE org_id = $1 AND reported_at < $2 \
         AND (decided_at IS NULL OR decided_at < $2)",
    )
    .bind(org_id)
    .bind(cutoff)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected())
}
