//! `GET /api/v1/license/watch?version=N`: the license channel a control plane
//! holds open so that a change reaches its sidecar in seconds, not at the next
//! periodic sync. The answer is `{"version": V}`, the organisation's license
//! version ([`crate::license_changes`]): at once when V differs from N (or N is
//! absent), else when the license changes, else after `--license-watch-secs`
//! with V = N. A control plane that sees V move validates its license at once;
//! the periodic sync stays as the fallback.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

use crate::api::{authenticate, ApiError};
use crate::app::AppState;
use crate::license_changes::newer_than;
use crate::store::orgs;

/// The `version` the caller last saw, if it sent one; the API's JSON 400 when it
/// is not a number.
fn seen_version(query: &str) -> Result<Option<i64>, ApiError> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "version")
        .map(|(_, v)| {
            v.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("version must be a whole number, got {v:?}"))
            })
        })
        .transpose()
}

pub use kalguard_wire::cloud::WatchAnswer;

pub async fn watch(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<WatchAnswer>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let seen = seen_version(query.as_deref().unwrap_or(""))?;
    let mut rx = state
        .db
        .changes
        .subscribe(&owner.org_id)
        .map_err(|_| ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TOO_MANY_WATCHERS",
            message: format!(
                "this organisation already holds {} license watches open; the periodic sync still works",
                crate::license_changes::MAX_WATCHERS_PER_ORG
            ),
        })?;
    let current = orgs::license_version(&state.db, &owner.org_id).await?;
    let Some(seen) = seen.filter(|&seen| seen == current) else {
        return Ok(Json(WatchAnswer { version: current }));
    };
    let hold = std::time::Duration::from_secs(state.config.license_watch_secs);
    let version = tokio::select! {
        v = newer_than(&mut rx, seen) => v,
        () = tokio::time::sleep(hold) => seen,
        () = state.db.changes.closed() => seen,
    };
    Ok(Json(WatchAnswer { version }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_seen_version_is_optional_and_numeric() {
        assert_eq!(super::seen_version("").unwrap(), None);
        assert_eq!(super::seen_version("version=7").unwrap(), Some(7));
        assert!(super::seen_version("version=x").is_err());
    }
}
