//! The Cloud API that control planes call: `x-api-key` authentication and JSON
//! in and out, shapes fixed by DESIGN.md ("Control plane ↔ Cloud").

pub mod error;
pub mod license;
pub mod usage;

use axum::http::HeaderMap;

use crate::app::AppState;
use crate::store::keys::{self, KeyOwner};
use crate::store::sidecars::{self, SidecarInfo};
pub use error::ApiError;

/// The organisation behind the request's `x-api-key`, or 401.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<KeyOwner, ApiError> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err(ApiError::unauthorized("missing x-api-key header"));
    }
    keys::authenticate(&state.db, key)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid or revoked API key"))
}

/// The optional fleet fields a sidecar may send; absent fields leave no trace.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarFields {
    pub sidecar_id: Option<String>,
    pub version: Option<String>,
    pub mode: Option<String>,
}

/// Records the sidecar in the fleet view when it named itself.
pub async fn record_sidecar(
    state: &AppState,
    org_id: &str,
    fields: &SidecarFields,
    at: i64,
) -> Result<(), ApiError> {
    let Some(id) = fields
        .sidecar_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(());
    };
    let clip = |s: Option<&str>| s.unwrap_or("").chars().take(64).collect::<String>();
    let info = SidecarInfo {
        sidecar_id: id.chars().take(128).collect(),
        version: clip(fields.version.as_deref()),
        mode: clip(fields.mode.as_deref()),
    };
    sidecars::seen(&state.db, org_id, &info, at).await?;
    Ok(())
}

/// Parses a JSON body, answering 400 with serde's description (line, column, field).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
