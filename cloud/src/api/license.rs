//! `POST /api/v1/license/validate`: the plan, its limits, the token-signing
//! secrets and the revoked-token hashes of the key's organisation, as
//! [`LicenseAnswer`] (the wire contract the control plane reads), with
//! `remaining`, `resetAt`, every secret currently valid
//! (`tokenSigningSecrets`, newest first) and, when the plan limits agents,
//! the agents with a check today (sidecars count them against `maxAgents`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use kalguard_wire::cloud::LicenseAnswer;
use serde_json::Value;

use crate::api::{authenticate, parse_json, record_sidecar, ApiBody, ApiError, SidecarFields};
use crate::app::AppState;
use crate::store::{orgs, tokens, usage};
use crate::time_util::{day_of, next_midnight, now, rfc3339};

pub async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Json<LicenseAnswer>, ApiError> {
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
    Ok(Json(LicenseAnswer {
        valid: true,
        tier: Some(org.plan.as_str().to_owned()),
        org_id: Some(org.id.clone()),
        limits: Some(limits),
        expires_at: Some(Value::from(rfc3339(at + state.config.license_ttl_secs))),
        token_signing_secret: Some(org.signing_secret.clone()),
        token_signing_secrets: secrets,
        revoked_token_hashes: tokens::revoked_hashes(&state.db, &org.id, at).await?,
        remaining: Some(remaining),
        reset_at: Some(Value::from(next_midnight(at))),
        agents_today,
        message: None,
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
