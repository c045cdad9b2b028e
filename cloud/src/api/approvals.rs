//! The approvals a control plane in Cloud mode relays (`x-api-key`; wire
//! contract `kalguard_wire::approval`, docs/approval.md):
//!
//! - `POST /api/v1/approvals` files a [`Relayed`] approval (a retried filing
//!   changes nothing);
//! - `GET /api/v1/approvals/{id}?wait=S` answers its [`Outcome`], held up to
//!   S seconds (at most [`MAX_CLOUD_WAIT_SECS`]) while it is pending, and
//!   answered the moment a member decides on the dashboard (at most
//!   [`crate::api::held::MAX_HELD_POLLS_PER_ORG`] held per organisation,
//!   else 429);
//! - `POST /api/v1/approvals/{id}/settle` records how it ended on the control
//!   plane.
//!
//! What a person will read is checked here: no control, direction-changing or
//! invisible characters, nothing longer than a page can show.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kalguard_wire::agent_id::is_hidden;
use kalguard_wire::approval::{
    Outcome, Relayed, Status, MAX_CLOUD_WAIT_SECS, MAX_ID_BYTES, MAX_WAIT_MS,
};
use serde_json::{json, Value};

use crate::api::held::{wait_secs, Poll};
use crate::api::{authenticate, parse_json, ApiBody, ApiError};
use crate::app::AppState;
use crate::store::approvals::{self, Filed};
use crate::time_util::{now, now_ms};

/// Longest text a filing may show a person (as the control plane allows).
const MAX_TEXT_CHARS: usize = 1024;
/// Longest name or reason a settle may carry (as the control plane keeps).
const MAX_DECISION_CHARS: usize = 500;

/// Why `text` may not be shown to a person, if it may not.
fn unshowable(text: &str, max: usize) -> Option<String> {
    if text.chars().count() > max {
        return Some(format!("must be at most {max} characters"));
    }
    text.chars().find(|&c| c != ' ' && is_hidden(c)).map(|c| {
        format!(
            "has an invisible, direction-changing or control character (U+{:04X})",
            u32::from(c)
        )
    })
}

/// An approval ID as control planes make them: `ap_` and letters or digits.
pub(super) fn id_ok(id: &str) -> bool {
    (1..=MAX_ID_BYTES).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a filing; the error names the field.
fn check(relayed: &mut Relayed, now_ms: i64) -> Result<(), ApiError> {
    if !id_ok(&relayed.id) {
        return Err(ApiError::bad_request(format!(
            "id must be 1-{MAX_ID_BYTES} letters, digits, _ or -"
        )));
    }
    let r = &relayed.request;
    let shown = [
        ("agentId", Some(&r.agent_id)),
        ("action", Some(&r.action)),
        ("route", Some(&r.route)),
        ("model", r.model.as_ref()),
        ("tool", r.tool.as_ref()),
        ("ruleId", r.rule_id.as_ref()),
        ("policyVersion", Some(&r.policy_version)),
        ("reason", Some(&r.reason)),
    ];
    for (field, value) in shown {
        if let Some(why) = value.and_then(|v| unshowable(v, MAX_TEXT_CHARS)) {
            return Err(ApiError::bad_request(format!("request.{field} {why}")));
        }
    }
    if r.agent_id.is_empty() || r.action.is_empty() {
        return Err(ApiError::bad_request(
            "request.agentId and request.action are required",
        ));
    }
    if !(1..=MAX_ID_BYTES).contains(&r.request_id.len()) || unshowable(&r.request_id, 128).is_some()
    {
        return Err(ApiError::bad_request(format!(
            "request.requestId must be 1-{MAX_ID_BYTES} visible characters"
        )));
    }
    let hash = &r.arguments_sha256;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ApiError::bad_request(
            "request.argumentsSha256 must be 64 lowercase hex digits",
        ));
    }
    // A control plane's clock running ahead cannot keep an approval open longer
    // than any filter waits.
    let latest = u64::try_from(now_ms)
        .unwrap_or(0)
        .saturating_add(MAX_WAIT_MS);
    relayed.request.expires_at_ms = relayed.request.expires_at_ms.min(latest);
    Ok(())
}

pub async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Json<Value>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let mut relayed: Relayed = parse_json(&body)?;
    let now_ms = now_ms();
    check(&mut relayed, now_ms)?;
    match approvals::file(&state.db, &owner.org_id, &relayed, now(), now_ms).await? {
        Filed::New | Filed::Known => Ok(Json(json!({"id": relayed.id}))),
        Filed::Full => Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TOO_MANY_APPROVALS",
            message: format!(
                "this organisation has {} approvals pending already; decide some first",
                approvals::MAX_PENDING_PER_ORG
            ),
        }),
    }
}

fn no_such(id: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "NOT_FOUND",
        message: format!("no approval {id:?} in this organisation"),
    }
}

pub async fn outcome(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Outcome>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let poll = Poll {
        state: &state,
        org_id: &owner.org_id,
        changed: &state.db.approvals_changed,
        polls: &state.db.approval_polls,
        what: "approval",
        wait_secs: wait_secs(query.as_deref().unwrap_or(""), MAX_CLOUD_WAIT_SECS)?,
    };
    let read = || async {
        let approval = approvals::get(&state.db, &owner.org_id, &id)
            .await?
            .ok_or_else(|| no_such(&id))?;
        Ok(approval.outcome(now_ms()))
    };
    let outcome = poll
        .answer(read, |outcome: &Outcome| outcome.status != Status::Pending)
        .await?;
    Ok(Json(outcome))
}

pub async fn settle(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiBody(body): ApiBody,
) -> Result<Json<Value>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let outcome: Outcome = parse_json(&body)?;
    if outcome.status == Status::Pending {
        return Err(ApiError::bad_request(
            "status must say how the approval ended (approved, denied, expired or abandoned)",
        ));
    }
    for (field, value) in [("by", &outcome.by), ("reason", &outcome.reason)] {
        if let Some(why) = value
            .as_deref()
            .and_then(|v| unshowable(v, MAX_DECISION_CHARS))
        {
            return Err(ApiError::bad_request(format!("{field} {why}")));
        }
    }
    let outcome = Outcome {
        for_minutes: None,
        ..outcome
    };
    if !approvals::settle(&state.db, &owner.org_id, &id, &outcome, now()).await? {
        return Err(no_such(&id));
    }
    Ok(Json(json!({"id": id, "status": outcome.status.as_str()})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_a_person_reads_is_checked() {
        assert_eq!(unshowable("payments need a human", 100), None);
        for bad in [
            "send_payment\u{202E}",
            "a\u{200B}b",
            "line\nbreak",
            "\u{1b}[2K",
        ] {
            assert!(unshowable(bad, 100).is_some(), "{bad:?}");
        }
        assert!(unshowable(&"x".repeat(101), 100).is_some());
    }

    #[test]
    fn approval_ids_are_plain() {
        assert!(id_ok("ap_0123abcdef"));
        for bad in [
            "",
            "ap 1",
            "../x",
            "ap_1/settle",
            &"a".repeat(MAX_ID_BYTES + 1),
        ] {
            assert!(!id_ok(bad), "{bad:?}");
        }
    }
}
