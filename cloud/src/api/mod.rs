//! The Cloud API that control planes call: `x-api-key` authentication and JSON
//! in and out, shapes fixed by DESIGN.md ("Control plane ↔ Cloud").

pub mod approvals;
pub mod error;
pub mod held;
pub mod license;
pub mod manage;
pub mod pins;
pub mod usage;
pub mod watch;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};

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

/// The largest request body the Cloud reads, API and dashboard alike (a report of
/// `usage::MAX_EVENTS` events is about 1 MB).
pub const MAX_BODY_BYTES: usize = 2 << 20;

/// An API request's body. One too large or unreadable is refused with the API's
/// JSON error, like every other API refusal.
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBody)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "PAYLOAD_TOO_LARGE",
                    message: format!(
                        "the request body is larger than {MAX_BODY_BYTES} bytes; send smaller batches"
                    ),
                },
                _ => ApiError::bad_request(format!("unreadable request body: {}", e.body_text())),
            })
    }
}

/// Parses a JSON body, answering 400 with serde's description (line, column, field).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
