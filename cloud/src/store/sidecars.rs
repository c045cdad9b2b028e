//! The fleet: every control plane that synced, from the optional `sidecarId`,
//! `version` and `mode` fields of its requests.

use crate::db::Db;

/// What a sidecar said about itself.
#[derive(Clone, Debug, Default)]
pub struct SidecarInfo {
    pub sidecar_id: String,
    pub version: String,
    pub mode: String,
}

/// A sidecar as the dashboard lists it.
#[derive(Clone, Debug)]
pub struct Sidecar {
    pub sidecar_id: String,
    pub version: String,
    pub mode: String,
    pub last_sync_at: i64,
}

pub async fn seen(db: &Db, org_id: &str, info: &SidecarInfo, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sidecars (org_id, sidecar_id, version, mode, last_sync_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (org_id, sidecar_id) DO UPDATE SET version = excluded.version, \
         mode = excluded.mode, last_sync_at = excluded.last_sync_at",
    )
    .bind(org_id)
    .bind(&info.sidecar_id)
    .bind(&info.version)
    .bind(&info.mode)
    .bind(at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<Sidecar>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT sidecar_id, version, mode, last_sync_at FROM sidecars WHERE org_id = $1 \
         ORDER BY last_sync_at DESC, sidecar_id",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sidecar_id, version, mode, last_sync_at)| Sidecar {
            sidecar_id,
            version,
            mode,
            last_sync_at,
        })
        .collect())
}
