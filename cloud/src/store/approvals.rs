//! Approvals relayed by control planes in Cloud mode (migration
//! `0016_approvals`, wire contract `kalguard_wire::approval::Relayed`): filed
//! by the control plane, decided by a member on the dashboard or settled by
//! the control plane (its CLI, the expiry, the agent hanging up). A decided
//! approval is never decided again: every decision is an `UPDATE … WHERE
//! status = 'pending'` and the first one to land wins.

use kalguard_wire::approval::{Outcome, Relayed, Status};

use crate::db::Db;

/// Most approvals one organisation may have pending: a control plane holds at
/// most 1,000 (`kalguard approvals`), and a key cannot fill the table beyond.
pub const MAX_PENDING_PER_ORG: i64 = 1_000;

/// Where the deciding word was given (`decided_on`).
pub const ON_CLOUD: &str = "cloud";
pub const ON_CONTROL_PLANE: &str = "control_plane";

/// One relayed approval, as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Approval {
    pub id: String,
    pub request_id: String,
    pub agent_id: String,
    pub action: String,
    pub route: String,
    /// `""` when the request names no model.
    pub model: String,
    /// `""` when the request names no tool.
    pub tool: String,
    pub arguments_sha256: String,
    /// `""` for the policy's default decision.
    pub rule_id: String,
    pub policy_version: String,
    pub reason: String,
    pub filed_at: i64,
    pub expires_at_ms: i64,
    pub status: String,
    pub decided_on: String,
    pub decided_by: String,
    pub decision_reason: String,
    pub for_minutes: Option<i64>,
    pub decided_at: Option<i64>,
}

impl Approval {
    /// Where it stands at `now_ms`: a pending approval past its expiry is expired.
    pub fn status(&self, now_ms: i64) -> Status {
        match Status::parse(&self.status) {
            Some(Status::Pending) if self.expires_at_ms <= now_ms => Status::Expired,
            Some(status) => status,
            None => Status::Expired,
        }
    }

    /// What the control plane's poll is answered.
    pub fn outcome(&self, now_ms: i64) -> Outcome {
        let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        Outcome {
            status: self.status(now_ms),
            by: text(&self.decided_by),
            reason: text(&self.decision_reason),
            for_minutes: self.for_minutes.and_then(|m| u64::try_from(m).ok()),
        }
    }
}

const COLUMNS: &str = "id, request_id, agent_id, action, route, model, tool, arguments_sha256, \
     rule_id, policy_version, reason, filed_at, expires_at_ms, status, decided_on, decided_by, \
     decision_reason, for_minutes, decided_at";

/// What filing an approval did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filed {
    New,
    /// Filed before (a retried filing): nothing changed.
    Known,
    /// [`MAX_PENDING_PER_ORG`] approvals are pending already.
    Full,
}

/// Files a relayed approval (checked by the caller) at `at` (unix seconds).
pub async fn file(
    db: &Db,
    org_id: &str,
    relayed: &Relayed,
    at: i64,
    now_ms: i64,
) -> Result<Filed, sqlx::Error> {
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM approvals WHERE org_id = $1 AND status = 'pending' AND expires_at_ms > $2",
    )
    .bind(org_id)
    .bind(now_ms)
    .fetch_one(&db.pool)
    .await?;
    if pending >= MAX_PENDING_PER_ORG {
        return Ok(Filed::Full);
    }
    let r = &relayed.request;
    let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
    let inserted = sqlx::query(
        "INSERT INTO approvals (org_id, id, request_id, agent_id, action, route, model, tool, \
         arguments_sha256, rule_id, policy_version, reason, filed_at, expires_at_ms, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending') \
         ON CONFLICT (org_id, id) DO NOTHING",
    )
    .bind(org_id)
    .bind(&relayed.id)
    .bind(&r.request_id)
    .bind(&r.agent_id)
    .bind(&r.action)
    .bind(&r.route)
    .bind(or_empty(&r.model))
    .bind(or_empty(&r.tool))
    .bind(&r.arguments_sha256)
    .bind(or_empty(&r.rule_id))
    .bind(&r.policy_version)
    .bind(&r.reason)
    .bind(at)
    .bind(i64::try_from(r.expires_at_ms).unwrap_or(i64::MAX))
    .execute(&db.pool)
    .await?;
    Ok(if inserted.rows_affected() == 0 {
        Filed::Known
    } else {
        Filed::New
    })
}

/// The organisation's approval `id`.
pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<Approval>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// The approvals waiting for a decision at `now_ms`, oldest first.
pub async fn pending(db: &Db, org_id: &str, now_ms: i64) -> Result<Vec<Approval>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE org_id = $1 AND status = 'pending' \
         AND expires_at_ms > $2 ORDER BY filed_at, id LIMIT $3"
    ))
    .bind(org_id)
    .bind(now_ms)
    .bind(MAX_PENDING_PER_ORG)
    .fetch_all(&db.pool)
    .await
}

/// The `limit` latest approvals that are no longer waiting, newest first.
pub async fn ended(
    db: &Db,
    org_id: &str,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<Approval>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE org_id = $1 \
         AND (status <> 'pending' OR expires_at_ms <= $2) ORDER BY filed_at DESC, id LIMIT $3"
    ))
    .bind(org_id)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// A member's decision on the dashboard.
pub struct Decision<'a> {
    /// [`Status::Approved`] or [`Status::Denied`].
    pub status: Status,
    pub by: &'a str,
    pub reason: &'a str,
    pub for_minutes: Option<i64>,
}

/// Decides a pending, unexpired approval; `false` when it was decided, ended
/// or expired already (or is not this organisation's).
pub async fn decide(
    db: &Db,
    org_id: &str,
    id: &str,
    decision: &Decision<'_>,
    at: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE approvals SET status = $1, decided_on = $2, decided_by = $3, \
         decision_reason = $4, for_minutes = $5, decided_at = $6 \
         WHERE org_id = $7 AND id = $8 AND status = 'pending' AND expires_at_ms > $9",
    )
    .bind(decision.status.as_str())
    .bind(ON_CLOUD)
    .bind(decision.by)
    .bind(decision.reason)
    .bind(decision.for_minutes)
    .bind(at)
    .bind(org_id)
    .bind(id)
    .bind(now_ms)
    .execute(&db.pool)
    .await?;
    db.approvals_changed.notify_waiters();
    Ok(r.rows_affected() == 1)
}

/// Records how approval `id` ended on its control plane, whose book is the
/// one that let the request go or not: a dashboard decision that came after
/// the control plane's own is kept in the reason, and the row says what
/// happened. `false` when there is no such approval.
pub async fn settle(
    db: &Db,
    org_id: &str,
    id: &str,
    outcome: &Outcome,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let Some(row) = get(db, org_id, id).await? else {
        return Ok(false);
    };
    let stored = Status::parse(&row.status);
    if stored == Some(outcome.status) {
        return Ok(true);
    }
    let mut reason = outcome.reason.clone().unwrap_or_default();
    if stored != Some(Status::Pending) && row.decided_on == ON_CLOUD {
        let late = format!(
            "{} by {} on the Cloud came after the control plane's word",
            row.status, row.decided_by
        );
        reason = if reason.is_empty() {
            late
        } else {
            format!("{reason}; {late}")
        };
    }
    sqlx::query(
        "UPDATE approvals SET status = $1, decided_on = $2, decided_by = $3, \
         decision_reason = $4, for_minutes = NULL, decided_at = $5 \
         WHERE org_id = $6 AND id = $7 AND status <> $1",
    )
    .bind(outcome.status.as_str())
    .bind(ON_CONTROL_PLANE)
    .bind(outcome.by.as_deref().unwrap_or_default())
    .bind(&reason)
    .bind(at)
    .bind(org_id)
    .bind(id)
    .execute(&db.pool)
    .await?;
    db.approvals_changed.notify_waiters();
    Ok(true)
}

/// Deletes the organisation's approvals filed before `cutoff` (unix seconds),
/// with its audit events' retention.
pub async fn purge(db: &Db, org_id: &str, cutoff: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM approvals WHERE org_id = $1 AND filed_at < $2")
        .bind(org_id)
        .bind(cutoff)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}
