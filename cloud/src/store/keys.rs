//! API keys: stored only as SHA-256, shown once, revocable, rotatable with a grace period.

use crate::db::Db;
use crate::secrets::{self, KeyMode};
use crate::time_util::now;

/// An API key as the dashboard lists it (never the key itself).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub display_prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    pub fn is_active(&self, at: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > at)
    }

    /// Only the newest key of a rotation chain (never rotated, not revoked) can be
    /// rotated.
    pub fn is_rotatable(&self) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none()
    }
}

/// Who an accepted API key belongs to.
#[derive(Clone, Debug)]
pub struct KeyOwner {
    pub org_id: String,
    pub key_id: String,
}

/// Inserts a new key inside a transaction and returns the full key (shown once).
pub(crate) async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org_id: &str,
    name: &str,
    mode: KeyMode,
    expires_at: Option<i64>,
) -> Result<String, sqlx::Error> {
    let key = secrets::new_api_key(mode);
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, display_prefix, key_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(secrets::new_id("key"))
    .bind(org_id)
    .bind(name)
    .bind(&key.display_prefix)
    .bind(&key.key_hash)
    .bind(now())
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(key.key)
}

/// Creates a key for an organisation; returns the full key.
pub async fn create(
    db: &Db,
    org_id: &str,
    name: &str,
    mode: KeyMode,
) -> Result<String, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let key = insert(&mut tx, org_id, name, mode, None).await?;
    tx.commit().await?;
    Ok(key)
}

/// Finds the organisation of an active key and records its use (at most once a minute).
pub async fn authenticate(db: &Db, key: &str) -> Result<Option<KeyOwner>, sqlx::Error> {
    if !secrets::looks_like_api_key(key) {
        return Ok(None);
    }
    let at = now();
    let row: Option<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, org_id, last_used_at FROM api_keys WHERE key_hash = $1 \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(secrets::sha256_hex(key))
    .bind(at)
    .fetch_optional(&db.pool)
    .await?;
    let Some((key_id, org_id, last_used)) = row else {
        return Ok(None);
    };
    if last_used.is_none_or(|t| t < at - 60) {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(&key_id)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(KeyOwner { org_id, key_id }))
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, display_prefix, created_at, expires_at, revoked_at, last_used_at \
         FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await
}

/// Revokes a key of this organisation. `false` when no such key is active here.
pub async fn revoke(db: &Db, org_id: &str, key_id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
    )
    .bind(now())
    .bind(key_id)
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        // Its sidecars' watchers wake and find the key refused.
        crate::store::orgs::license_changed(db, org_id).await?;
    }
    Ok(r.rows_affected() == 1)
}

/// What rotating a key did.
#[derive(Debug)]
pub enum Rotation {
    /// The replacement key (shown once); the old key works until the grace ends.
    Rotated(String),
    /// The key was rotated before: only the newest key of a rotation chain can be
    /// rotated, so a leaked old key cannot have its deadline pushed back.
    AlreadyRotated,
    /// No active key with this ID in this organisation.
    NotFound,
}

/// Issues a replacement key with the same name and mode; the old key keeps working
/// for `grace_secs`. Only a key that was never rotated (no deadline) qualifies: a
/// rotated key's deadline is fixed.
pub async fn rotate(
    db: &Db,
    org_id: &str,
    key_id: &str,
    grace_secs: i64,
) -> Result<Rotation, sqlx::Error> {
    let at = now();
    let mut tx = db.pool.begin().await?;
    // `expires_at IS NULL` in the same statement that sets it: of two concurrent
    // rotations of one key, only one replaces it.
    let r = sqlx::query(
        "UPDATE api_keys SET expires_at = $1 WHERE id = $2 AND org_id = $3 \
         AND revoked_at IS NULL AND expires_at IS NULL",
    )
    .bind(at + grace_secs)
    .bind(key_id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        let deadline: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT expires_at FROM api_keys WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
        )
        .bind(key_id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        return Ok(match deadline {
            Some((Some(until),)) if until > at => Rotation::AlreadyRotated,
            _ => Rotation::NotFound,
        });
    }
    let (name, prefix): (String, String) =
        sqlx::query_as("SELECT name, display_prefix FROM api_keys WHERE id = $1 AND org_id = $2")
            .bind(key_id)
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    let mode = if prefix.starts_with(KeyMode::Test.prefix()) {
        KeyMode::Test
    } else {
        KeyMode::Live
    };
    let key = insert(&mut tx, org_id, &name, mode, None).await?;
    tx.commit().await?;
    Ok(Rotation::Rotated(key))
}
