//! The admin audit log: who did what to an organisation (revoked a key, rotated
//! the signing secret, removed a member, changed a role, unlocked a login, …).
//!
//! Append-only: this module is the only code that touches `admin_log`, and it
//! only inserts and reads. Each entry carries `hash` = SHA-256 (lowercase hex)
//! of the JSON array `[seq, at, orgId, actorId, actorEmail, action, target,
//! detail, prevHash]`, where `prevHash` is the previous entry's `hash` (64 zeros
//! for the first), so an entry changed, removed or reordered in the database
//! breaks the chain, which [`verify`] finds. Sequence numbers are per
//! organisation and gapless: two writers racing for the same number collide on
//! the primary key and the loser retries.

use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::time_util::now;

/// The `prevHash` of an organisation's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was done. The stored text is [`Action::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    OrgCreated,
    KeyCreated,
    KeyRotated,
    KeyRevoked,
    TokenCreated,
    TokenRevoked,
    AgentQuarantined,
    SecretRotated,
    MemberAdded,
    MemberRemoved,
    RoleChanged,
    LoginUnlocked,
    PasswordChanged,
    SessionsEnded,
    CheckoutStarted,
    BillingPortalOpened,
    PlanChanged,
    AlertHookCreated,
    AlertHookDeleted,
    ManageKeyCreated,
    ManageKeyRevoked,
    ApprovalApproved,
    ApprovalDenied,
    ToolApproved,
    ToolForgotten,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::OrgCreated => "org.created",
            Action::KeyCreated => "api_key.created",
            Action::KeyRotated => "api_key.rotated",
            Action::KeyRevoked => "api_key.revoked",
            Action::TokenCreated => "token.created",
            Action::TokenRevoked => "token.revoked",
            Action::AgentQuarantined => "agent.quarantined",
            Action::SecretRotated => "signing_secret.rotated",
            Action::MemberAdded => "member.added",
            Action::MemberRemoved => "member.removed",
            Action::RoleChanged => "member.role_changed",
            Action::LoginUnlocked => "member.login_unlocked",
            Action::PasswordChanged => "account.password_changed",
            Action::SessionsEnded => "account.other_sessions_ended",
            Action::CheckoutStarted => "billing.checkout_started",
            Action::BillingPortalOpened => "billing.portal_opened",
            Action::PlanChanged => "billing.plan_changed",
            Action::AlertHookCreated => "alert_webhook.created",
            Action::AlertHookDeleted => "alert_webhook.deleted",
            Action::ManageKeyCreated => "manage_key.created",
            Action::ManageKeyRevoked => "manage_key.revoked",
            Action::ApprovalApproved => "approval.approved",
            Action::ApprovalDenied => "approval.denied",
            Action::ToolApproved => "mcp_tool.approved",
            Action::ToolForgotten => "mcp_tool.forgotten",
        }
    }
}

/// Who acted: a member (ID and email at the time), or a tool (`cli`, `stripe`).
#[derive(Clone, Debug)]
pub struct Actor {
    pub id: String,
    pub email: String,
}

impl Actor {
    /// The admin command line (`kalguard-cloud org create`, `token create`).
    pub fn cli() -> Actor {
        Actor {
            id: "cli".into(),
            email: "kalguard-cloud (command line)".into(),
        }
    }

    /// A Stripe webhook (a plan set by a payment or subscription change).
    pub fn stripe() -> Actor {
        Actor {
            id: "stripe".into(),
            email: "Stripe (webhook)".into(),
        }
    }
}

/// One entry, as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub actor_id: String,
    pub actor_email: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

fn entry_hash(org_id: &str, e: &Entry) -> String {
    let canonical = serde_json::json!([
        e.seq,
        e.at,
        org_id,
        e.actor_id,
        e.actor_email,
        e.action,
        e.target,
        e.detail,
        e.prev_hash
    ]);
    format!("{:x}", Sha256::digest(canonical.to_string().as_bytes()))
}

/// How many times an append retries after losing a race for its sequence number.
const APPEND_TRIES: usize = 8;

/// Appends an entry to the organisation's log.
pub async fn append(
    db: &Db,
    org_id: &str,
    actor: &Actor,
    action: Action,
    target: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    let mut last_error = None;
    for _ in 0..APPEND_TRIES {
        let _turn = db.write_turn().await;
        let mut tx = db.pool.begin().await?;
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, hash FROM admin_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS.to_string()),
        };
        let mut entry = Entry {
            seq,
            at: now(),
            actor_id: actor.id.clone(),
            actor_email: actor.email.clone(),
            action: action.as_str().to_string(),
            target: target.to_string(),
            detail: detail.to_string(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry_hash(org_id, &entry);
        let inserted = sqlx::query(
            "INSERT INTO admin_log (org_id, seq, at, actor_id, actor_email, action, target, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(org_id)
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.actor_id)
        .bind(&entry.actor_email)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => return tx.commit().await,
            Err(e) if crate::store::orgs::is_unique_violation(&e) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(sqlx::Error::PoolTimedOut))
}

const COLUMNS: &str = "seq, at, actor_id, actor_email, action, target, detail, prev_hash, hash";

/// Up to `limit` entries before `before_seq` (all when `None`), newest first.
pub async fn page(
    db: &Db,
    org_id: &str,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM admin_log WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ))
    .bind(org_id)
    .bind(before_seq.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Up to `limit` entries after `after_seq`, oldest first (the CSV and [`verify`]).
pub async fn after(
    db: &Db,
    org_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM admin_log WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(org_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Every entry hashes right and links to the one before; how many there are.
    Intact(i64),
    /// The first entry that does not: changed, or the one before it was removed.
    BrokenAt(i64),
}

/// Walks the organisation's chain from its first entry.
pub async fn verify(db: &Db, org_id: &str) -> Result<Verified, sqlx::Error> {
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS.to_string();
    loop {
        let batch = after(db, org_id, expected_seq - 1, 1_000).await?;
        if batch.is_empty() {
            return Ok(Verified::Intact(expected_seq - 1));
        }
        for e in batch {
            if e.seq != expected_seq || e.prev_hash != prev_hash || e.hash != entry_hash(org_id, &e)
            {
                return Ok(Verified::BrokenAt(e.seq.min(expected_seq)));
            }
            prev_hash = e.hash;
            expected_seq += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let e = Entry {
            seq: 1,
            at: 1_714_694_400,
            actor_id: "usr_1".into(),
            actor_email: "a@acme.test".into(),
            action: Action::KeyRevoked.as_str().into(),
            target: "Default key (kg_live_ab…)".into(),
            detail: String::new(),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let h = entry_hash("org_1", &e);
        assert_eq!(h.len(), 64);
        assert_ne!(h, entry_hash("org_2", &e));
        for changed in [
            Entry {
                seq: 2,
                ..e.clone()
            },
            Entry { at: 1, ..e.clone() },
            Entry {
                actor_email: "b@acme.test".into(),
                ..e.clone()
            },
            Entry {
                target: "other".into(),
                ..e.clone()
            },
            Entry {
                detail: "x".into(),
                ..e.clone()
            },
            Entry {
                prev_hash: "1".repeat(64),
                ..e.clone()
            },
        ] {
            assert_ne!(entry_hash("org_1", &changed), h);
        }
    }
}
