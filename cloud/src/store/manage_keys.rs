//! Management API keys: `kg_mgmt_…` keys for scripts (src/api/manage.rs), stored
//! only as SHA-256, each carrying a role (admin or viewer) whose permissions it
//! gets, exactly as a member with that role. A sidecar's `kg_live_`/`kg_test_` key
//! is not one and cannot manage anything.

use crate::db::Db;
use crate::role::Role;
use crate::secrets;
use crate::time_util::now;

/// The prefix of every management key.
pub const PREFIX: &str = "kg_mgmt_";

/// A management key as the keys page lists it (never the key itself).
#[derive(Clone, Debug)]
pub struct ManageKey {
    pub id: String,
    pub name: String,
    pub display_prefix: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// Who is calling: the key's organisation, its role and its name for the admin log.
#[derive(Clone, Debug)]
pub struct Caller {
    pub org_id: String,
    pub key_id: String,
    pub name: String,
    pub display_prefix: String,
    pub role: Role,
}

/// Whether a string has the shape of a management key (checked before any lookup).
pub fn looks_like(key: &str) -> bool {
    key.starts_with(PREFIX)
        && key.len() <= 128
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Creates a key; returns it (shown once).
pub async fn create(
    db: &Db,
    org_id: &str,
    name: &str,
    role: Role,
    created_by: &str,
) -> Result<String, sqlx::Error> {
    let key = format!("{PREFIX}{}", secrets::random_string(40));
    let display_prefix = format!("{}…", &key[..PREFIX.len() + 6]);
    sqlx::query(
        "INSERT INTO manage_keys (id, org_id, name, display_prefix, key_hash, role, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(secrets::new_id("mgk"))
    .bind(org_id)
    .bind(name)
    .bind(&display_prefix)
    .bind(secrets::sha256_hex(&key))
    .bind(role.as_str())
    .bind(created_by)
    .bind(now())
    .execute(&db.pool)
    .await?;
    Ok(key)
}

/// The caller behind an active key, recording its use (at most once a minute).
pub async fn authenticate(db: &Db, key: &str) -> Result<Option<Caller>, sqlx::Error> {
    if !looks_like(key) {
        return Ok(None);
    }
    type Row = (String, String, String, String, String, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, org_id, name, display_prefix, role, last_used_at FROM manage_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(secrets::sha256_hex(key))
    .fetch_optional(&db.pool)
    .await?;
    let Some((key_id, org_id, name, display_prefix, role, last_used)) = row else {
        return Ok(None);
    };
    let at = now();
    if last_used.is_none_or(|t| t < at - 60) {
        sqlx::query("UPDATE manage_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(&key_id)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(Caller {
        org_id,
        key_id,
        name,
        display_prefix,
        // A management key never carries more than admin (see `create`'s callers).
        role: Role::stored(&role).min(Role::Admin),
    }))
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<ManageKey>, sqlx::Error> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, name, display_prefix, role, created_by, created_at, revoked_at, last_used_at \
         FROM manage_keys WHERE org_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, display_prefix, role, created_by, created_at, revoked_at, last_used_at)| {
                ManageKey {
                    id,
                    name,
                    display_prefix,
                    role: Role::stored(&role),
                    created_by,
                    created_at,
                    revoked_at,
                    last_used_at,
                }
            },
        )
        .collect())
}

/// Revokes a key of this organisation; `false` when no such key is active here.
pub async fn revoke(db: &Db, org_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE manage_keys SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
    )
    .bind(now())
    .bind(id)
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}
