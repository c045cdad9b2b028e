//! `POST /api/v1/license/validate`: the plan, its limits, the token-signing
//! secrets and the revoked-token hashes of the key's organisation.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;

use crate::api::{authenticate, parse_json, record_sidecar, ApiBody, ApiError, SidecarFields};
use crate::app::AppState;
use crate::plan::Limits;
use crate::store::{orgs, tokens, usage};
use crate::time_util::{day_of, next_midnight, now, rfc3339};

/// The license, as DESIGN.md fixes it, plus `remaining`, `resetAt` and the list of
/// every secret currently valid (`tokenSigningSecrets`, newest first).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct License {
    pub valid: bool,
    pub tier: &'static str,
    pub org_id: String,
    pub limits: Limits,
    pub expires_at: String,
    pub token_signing_secret: String,
    pub token_signing_secrets: Vec<String>,
    pub revoked_token_hashes: Vec<String>,
    pub remaining: i64,
    pub reset_at: i64,
    /// Agents with a check today, when the plan limits agents: sidecars count
    /// them against `maxAgents` so the limit holds across the organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents_today: Option<Vec<String>>,
}

pub async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Json<License>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    // The original sidecar sends no body; an empty one is fine.
    let fields: SidecarFields = if body.iter().all(u8::is_ascii_whitespace) {
        SidecarFields::default()
    } else {
        parse_json(&body)?
    };
    let at = now();
    record_sidecar(&state, &owner.org_id, &fields, at).await?;
    let org = orgs::get(&state.db, &owner.org_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the key's organisation no longer exists"))?;
    let limits = org.plan.limits();
    let used = usage::checks_on_day(&state.db, &org.id, day_of(at)).await?;
    let remaining = remaining(limits.checks_per_day, used);
    let secrets = org.valid_signing_secrets(at);
    let agents_today =
        usage::agents_for_limit(&state.db, &org.id, day_of(at), limits.max_agents).await?;
    Ok(Json(License {
        valid: true,
        tier: org.plan.as_str(),
        org_id: org.id.clone(),
        limits,
        expires_at: rfc3339(at + state.config.license_ttl_secs),
        token_signing_secret: org.signing_secret.clone(),
        token_signing_secrets: secrets,
        revoked_token_hashes: tokens::revoked_hashes(&state.db, &org.id, at).await?,
        remaining,
        reset_at: next_midnight(at),
        agents_today,
    }))
}

/// Checks left today: -1 when the plan is unlimited, never below 0.
pub fn remaining(checks_per_day: i64, used: i64) -> i64 {
    if checks_per_day < 0 {
        -1
    } else {
        (checks_per_day - used).max(0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn remaining_is_clamped_and_unlimited_is_minus_one() {
        assert_eq!(super::remaining(1000, 10), 990);
        assert_eq!(super::remaining(1000, 1500), 0);
        assert_eq!(super::remaining(-1, 10_000_000), -1);
    }
}
