//! The management API (`/api/v1/manage/…`): what the dashboard does to keys,
//! tokens, agents and usage, for scripts. Authenticated by a management key
//! (`Authorization: Bearer kg_mgmt_…`, or `x-api-key`) that an owner creates on the
//! API keys page with a role; each call is authorised exactly as a member of that
//! role ([`Role::allows`]): a viewer key reads, an admin key also changes. Every
//! change goes into the admin log under the key's name. Sidecar keys are refused.
//!
//! - `GET  keys` · `POST keys {name, mode?}` → the key once · `POST keys/{id}/revoke`
//! - `GET  tokens` · `POST tokens {name, agentId, capabilities[], ttlSecs}` → the
//!   token once · `POST tokens/{id}/revoke`
//! - `POST agents/quarantine {agentId}` → `{revoked}`
//! - `GET  usage?days=7|30|90` → per-day checks and decisions, refusals by code and agent

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{parse_json, ApiBody, ApiError};
use crate::app::AppState;
use crate::role::Permission;
use crate::secrets::KeyMode;
use crate::store::admin_log::{self, Action, Actor};
use crate::store::manage_keys::{self, Caller};
use crate::store::tokens::{NewToken, TokenState};
use crate::store::{keys, orgs, tokens, usage};
use crate::time_util::{day_label, day_of, now, rfc3339};

type Answer = Result<Json<Value>, ApiError>;

/// The caller behind the request's management key, allowed to do `needs`.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    needs: Option<Permission>,
) -> Result<Caller, ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err(ApiError::unauthorized(
            "missing management key (Authorization: Bearer kg_mgmt_…)",
        ));
    }
    let Some(caller) = manage_keys::authenticate(&state.db, key).await? else {
        return Err(ApiError::unauthorized(
            "invalid or revoked management key (sidecar keys cannot manage; create a kg_mgmt_ key on the API keys page)",
        ));
    };
    if let Some(permission) = needs {
        if !caller.role.allows(permission) {
            return Err(ApiError::forbidden(format!(
                "this key has the {} role, which cannot do this",
                caller.role
            )));
        }
    }
    Ok(caller)
}

async fn log(
    state: &AppState,
    c: &Caller,
    action: Action,
    target: &str,
    detail: &str,
) -> Result<(), ApiError> {
    let actor = Actor {
        id: c.key_id.clone(),
        email: format!("API key {} ({})", c.name, c.display_prefix),
    };
    admin_log::append(&state.db, &c.org_id, &actor, action, target, detail).await?;
    Ok(())
}

fn not_found(what: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "NOT_FOUND",
        message: format!("no {what} with this ID in your organisation"),
    }
}

pub async fn list_keys(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    let c = caller(&state, &headers, None).await?;
    let at = now();
    let list: Vec<Value> = keys::list(&state.db, &c.org_id)
        .await?
        .into_iter()
        .map(|k| {
            json!({"id": k.id, "name": k.name, "prefix": k.display_prefix, "active": k.is_active(at),
                   "createdAt": rfc3339(k.created_at), "expiresAt": k.expires_at.map(rfc3339),
                   "revokedAt": k.revoked_at.map(rfc3339), "lastUsedAt": k.last_used_at.map(rfc3339)})
        })
        .collect();
    Ok(Json(json!({ "keys": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    mode: Option<String>,
}

pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Answer {
    let c = caller(&state, &headers, Some(Permission::Operate)).await?;
    let new: NewKey = parse_json(&body)?;
    if new.name.is_empty() || new.name.len() > 100 {
        return Err(ApiError::bad_request("name must be 1-100 characters"));
    }
    let mode = match new.mode.as_deref() {
        None | Some("live") => KeyMode::Live,
        Some("test") => KeyMode::Test,
        Some(_) => return Err(ApiError::bad_request("mode must be live or test")),
    };
    let key = keys::create(&state.db, &c.org_id, &new.name, mode).await?;
    let prefix = key.get(..mode.prefix().len() + 6).unwrap_or_default();
    log(
        &state,
        &c,
        Action::KeyCreated,
        &format!("{} ({prefix}…)", new.name),
        "",
    )
    .await?;
    Ok(Json(json!({ "key": key, "name": new.name })))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let c = caller(&state, &headers, Some(Permission::Operate)).await?;
    let Some(k) = keys::list(&state.db, &c.org_id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
    else {
        return Err(not_found("API key"));
    };
    if !keys::revoke(&state.db, &c.org_id, &id).await? {
        return Err(not_found("active API key"));
    }
    log(
        &state,
        &c,
        Action::KeyRevoked,
        &format!("{} ({})", k.name, k.display_prefix),
        "",
    )
    .await?;
    Ok(Json(json!({ "revoked": true })))
}

pub async fn list_tokens(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    let c = caller(&state, &headers, None).await?;
    let org = orgs::get(&state.db, &c.org_id)
        .await?
        .ok_or_else(|| not_found("organisation"))?;
    let at = now();
    let list: Vec<Value> = tokens::list(&state.db, &c.org_id)
        .await?
        .into_iter()
        .map(|t| {
            let status = match t.state(&org, at) {
                TokenState::Active { .. } => "active",
                TokenState::Revoked(_) => "revoked",
                TokenState::Expired => "expired",
                TokenState::SecretRetired => "secret_retired",
            };
            json!({"id": t.id, "name": t.name, "agentId": t.agent_id, "capabilities": t.capabilities,
                   "createdAt": rfc3339(t.created_at), "expiresAt": rfc3339(t.expires_at),
                   "revokedAt": t.revoked_at.map(rfc3339), "status": status})
        })
        .collect();
    Ok(Json(json!({ "tokens": list })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    name: String,
    agent_id: String,
    capabilities: Vec<String>,
    ttl_secs: i64,
}

pub async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Answer {
    let c = caller(&state, &headers, Some(Permission::Operate)).await?;
    let r: TokenRequest = parse_json(&body)?;
    let new = NewToken::checked(&r.name, &r.agent_id, r.capabilities, r.ttl_secs)
        .map_err(ApiError::bad_request)?;
    let org = orgs::get(&state.db, &c.org_id)
        .await?
        .ok_or_else(|| not_found("organisation"))?;
    let token = tokens::create(&state.db, &org, &new).await?;
    let expires = now() + new.ttl_secs;
    log(
        &state,
        &c,
        Action::TokenCreated,
        &new.name,
        &format!(
            "agent {}; capabilities {}; expires {} UTC",
            crate::agent_id::shown(&new.agent_id),
            new.capabilities.join(", "),
            crate::time_util::display(expires)
        ),
    )
    .await?;
    Ok(Json(
        json!({"token": token, "agentId": new.agent_id, "expiresAt": rfc3339(expires)}),
    ))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let c = caller(&state, &headers, Some(Permission::Operate)).await?;
    let Some(t) = tokens::list(&state.db, &c.org_id)
        .await?
        .into_iter()
        .find(|t| t.id == id)
    else {
        return Err(not_found("token"));
    };
    if !tokens::revoke(&state.db, &c.org_id, &id).await? {
        return Err(not_found("active token"));
    }
    let label = format!("{} (agent {})", t.name, crate::agent_id::shown(&t.agent_id));
    log(&state, &c, Action::TokenRevoked, &label, "").await?;
    Ok(Json(json!({ "revoked": true })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Quarantine {
    agent_id: String,
}

pub async fn quarantine(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Answer {
    let c = caller(&state, &headers, Some(Permission::Operate)).await?;
    let q: Quarantine = parse_json(&body)?;
    if q.agent_id.is_empty() {
        return Err(ApiError::bad_request("agentId is required"));
    }
    let n = tokens::quarantine_agent(&state.db, &c.org_id, &q.agent_id).await?;
    log(
        &state,
        &c,
        Action::AgentQuarantined,
        &crate::agent_id::shown(&q.agent_id),
        &format!("{n} token(s) revoked"),
    )
    .await?;
    Ok(Json(json!({ "revoked": n })))
}

pub async fn usage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let c = caller(&state, &headers, None).await?;
    let days = match q.get("days").map(String::as_str) {
        None | Some("30") => 30,
        Some("7") => 7,
        Some("90") => 90,
        Some(_) => return Err(ApiError::bad_request("days must be 7, 30 or 90")),
    };
    let today = day_of(now());
    let series = usage::daily(&state.db, &c.org_id, today, days).await?;
    let first = today - days + 1;
    let breakdown = |rows: Vec<usage::Breakdown>, key: &str| -> Vec<Value> {
        rows.into_iter()
            .map(|b| json!({ key: b.label, "denied": b.denied, "approval": b.approval }))
            .collect()
    };
    let day_rows: Vec<Value> = series
        .iter()
        .map(|d| {
            json!({"day": day_label(d.day), "checks": d.checks, "allowed": d.allowed,
                   "denied": d.denied, "approval": d.approval})
        })
        .collect();
    let sum = |f: fn(&usage::DayUsage) -> i64| series.iter().map(f).sum::<i64>();
    Ok(Json(json!({
        "days": day_rows,
        "total": {"checks": sum(|d| d.checks), "allowed": sum(|d| d.allowed),
                  "denied": sum(|d| d.denied), "approval": sum(|d| d.approval)},
        "byCode": breakdown(usage::denials_by_code(&state.db, &c.org_id, first).await?, "errorCode"),
        "byAgent": breakdown(usage::denials_by_agent(&state.db, &c.org_id, first, 1_000, 0).await?, "agentId"),
    })))
}
