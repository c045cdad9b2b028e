//! The MCP tools a control plane in Cloud mode holds back (`x-api-key`;
//! wire contract `kalguard_wire::pins`, docs/mcp-pinning.md):
//!
//! - `POST /api/v1/pins` takes a sidecar's [`PinReport`] (replacing its
//!   previous one) and answers the [`PinDecisions`] waiting for it;
//! - `GET /api/v1/pins/decisions?sidecarId=ID&wait=S` answers them, held up
//!   to S seconds (at most [`MAX_CLOUD_WAIT_SECS`]) while there are none,
//!   and answered the moment a member decides on the dashboard;
//! - `POST /api/v1/pins/decisions/{id}/settle?sidecarId=ID` records what the
//!   control plane did with one of its own ([`PinSettled`]).
//!
//! Names are the servers' choice and are kept as they are (a suspicious
//! name is what a person must see), escaped where a page shows them; what
//! the database cannot keep (NUL) and what no page can show (overlong) is
//! refused, naming the field.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kalguard_wire::pins::{
    PinDecisions, PinReport, PinSettled, MAX_CLOUD_HELD, MAX_CLOUD_WAIT_SECS, MAX_TEXT_CHARS,
};
use serde_json::{json, Value};
use std::collections::HashSet;

use crate::api::approvals::id_ok;
use crate::api::held::{wait_secs, Poll};
use crate::api::{authenticate, parse_json, ApiBody, ApiError};
use crate::app::AppState;
use crate::store::pins::{self, Reported};
use crate::time_util::now;

/// Most changed fields one held tool names.
const MAX_FIELDS: usize = 64;

/// Why `text` cannot be kept as a server's name or the filter's words:
/// empty (when it must not be), overlong, or with a NUL (which Postgres
/// cannot store).
fn unkeepable(text: &str, may_be_empty: bool) -> Option<String> {
    if text.is_empty() && !may_be_empty {
        return Some("must not be empty".into());
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Some(format!("must be at most {MAX_TEXT_CHARS} characters"));
    }
    text.contains('\0').then(|| "must not contain NUL".into())
}

fn sha256_ok(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a report; the error names the field.
fn check(report: &PinReport) -> Result<(), ApiError> {
    let bad = |why: String| Err(ApiError::bad_request(why));
    if !id_ok(&report.sidecar_id) {
        return bad("sidecarId must be 1-128 letters, digits, _ or -".into());
    }
    if let Some(why) = report.host.as_deref().and_then(|h| unkeepable(h, true)) {
        return bad(format!("host {why}"));
    }
    if report.held.len() > MAX_CLOUD_HELD {
        return bad(format!("held must list at most {MAX_CLOUD_HELD} tools"));
    }
    let mut seen = HashSet::new();
    for (i, tool) in report.held.iter().enumerate() {
        let texts = [
            ("server", Some(&tool.server), false),
            ("tool", Some(&tool.tool), false),
            ("why", tool.why.as_ref(), true),
        ];
        for (field, value, may_be_empty) in texts {
            if let Some(why) = value.and_then(|v| unkeepable(v, may_be_empty)) {
                return bad(format!("held[{i}].{field} {why}"));
            }
        }
        if !sha256_ok(&tool.offered_sha256)
            || tool.pinned_sha256.as_deref().is_some_and(|h| !sha256_ok(h))
        {
            return bad(format!(
                "held[{i}]: a SHA-256 must be 64 lowercase hex digits"
            ));
        }
        if tool.fields_changed.len() > MAX_FIELDS
            || tool
                .fields_changed
                .iter()
                .any(|f| unkeepable(f, false).is_some())
        {
            return bad(format!(
                "held[{i}].fieldsChanged must name at most {MAX_FIELDS} fields, each 1-{MAX_TEXT_CHARS} characters without NUL"
            ));
        }
        if !seen.insert((&tool.server, &tool.tool)) {
            return bad(format!("held[{i}]: server and tool listed twice"));
        }
    }
    Ok(())
}

pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Json<PinDecisions>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let report: PinReport = parse_json(&body)?;
    check(&report)?;
    match pins::report(&state.db, &owner.org_id, &report, now()).await? {
        Reported::Stored(decisions) => Ok(Json(PinDecisions { decisions })),
        Reported::Full => Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TOO_MANY_SIDECARS",
            message: format!(
                "{} sidecars of this organisation hold tools already; decide some first",
                pins::MAX_SIDECARS_PER_ORG
            ),
        }),
    }
}

/// The `sidecarId` a poll or a settle names: the control plane's own, so
/// one sidecar never reads or settles another's decisions.
fn sidecar_of(query: &str) -> Result<String, ApiError> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "sidecarId")
        .map(|(_, v)| v.into_owned())
        .filter(|id| id_ok(id))
        .ok_or_else(|| ApiError::bad_request("sidecarId must be 1-128 letters, digits, _ or -"))
}

pub async fn decisions(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<PinDecisions>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let query = query.unwrap_or_default();
    let sidecar_id = sidecar_of(&query)?;
    let poll = Poll {
        state: &state,
        org_id: &owner.org_id,
        changed: &state.db.pins_changed,
        polls: &state.db.pin_polls,
        what: "pin decision",
        wait_secs: wait_secs(&query, MAX_CLOUD_WAIT_SECS)?,
    };
    let read = || async {
        Ok(PinDecisions {
            decisions: pins::deliverable(&state.db, &owner.org_id, &sidecar_id).await?,
        })
    };
    let answer = poll
        .answer(read, |answer: &PinDecisions| !answer.decisions.is_empty())
        .await?;
    Ok(Json(answer))
}

pub async fn settle(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    ApiBody(body): ApiBody,
) -> Result<Json<Value>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let sidecar_id = sidecar_of(&query.unwrap_or_default())?;
    let settled: PinSettled = parse_json(&body)?;
    let detail = settled.detail.map(|d| {
        d.chars()
            .filter(|&c| c != '\0')
            .take(MAX_TEXT_CHARS)
            .collect()
    });
    let settled = PinSettled { detail, ..settled };
    if !pins::settle(&state.db, &owner.org_id, &sidecar_id, &id, &settled, now()).await? {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: format!(
                "no pin decision {id:?} for sidecar {sidecar_id} in this organisation"
            ),
        });
    }
    Ok(Json(json!({"id": id, "outcome": settled.outcome.as_str()})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalguard_wire::pins::{Held, HeldTool};

    fn tool(name: &str) -> HeldTool {
        HeldTool {
            server: "/mcp".into(),
            tool: name.into(),
            held: Held::Changed,
            why: None,
            pinned_sha256: Some("a".repeat(64)),
            offered_sha256: "b".repeat(64),
            fields_changed: vec!["inputSchema".into()],
            held_since_ms: 1,
        }
    }

    fn report(held: Vec<HeldTool>) -> PinReport {
        PinReport {
            sidecar_id: "sc_1".into(),
            host: None,
            held,
            left_out: 0,
        }
    }

    #[test]
    fn a_report_keeps_odd_names_and_refuses_what_cannot_be_kept() {
        // A look-alike or bidi name is what a person must see: kept.
        for odd in [
            "read_fi\u{200b}le",
            "r\u{435}ad",
            "x\u{202e}gpj",
            "<b>x</b>",
        ] {
            assert!(check(&report(vec![tool(odd)])).is_ok(), "{odd:?}");
        }
        let mut nul = tool("a\0b");
        assert!(check(&report(vec![nul.clone()])).is_err());
        nul.tool = "x".repeat(MAX_TEXT_CHARS + 1);
        assert!(check(&report(vec![nul])).is_err());
        let mut upper = tool("a");
        upper.offered_sha256 = "B".repeat(64);
        assert!(check(&report(vec![upper])).is_err());
        assert!(check(&report(vec![tool("a"), tool("a")])).is_err());
        assert!(check(&report(vec![tool(""); 1])).is_err());
        let many = (0..=MAX_CLOUD_HELD)
            .map(|i| tool(&format!("t{i}")))
            .collect();
        assert!(check(&report(many)).is_err());
        let mut bad_id = report(vec![]);
        bad_id.sidecar_id = "../sc".into();
        assert!(check(&bad_id).is_err());
    }
}
