//! `POST /api/v1/usage/report`: security events from a sidecar, counted once
//! (per `batchId`, and per event: `timestamp`, `requestId`, type and phase, see
//! `store::usage::ingest`), answered with the organisation's
//! `remaining` checks today and `resetAt` ([`UsageAnswer`], the wire contract
//! the control plane reads). Events are read leniently (`WireEvent`): the
//! original KalGuard sidecar's shapes are accepted beside the control plane's
//! `kalguard_wire::cloud::UsageReport`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use kalguard_wire::cloud::UsageAnswer;
use kalguard_wire::event::ANSWER;
use serde::Deserialize;

use crate::api::license::remaining;
use crate::api::{authenticate, parse_json, record_sidecar, ApiBody, ApiError, SidecarFields};
use crate::app::AppState;
use crate::plan::Plan;
use crate::secrets;
use crate::store::usage::{self, Event, Phase, Signals};
use crate::time_util::{day_of, next_midnight, now, now_ms, parse_event_time};

/// Most events one report may carry.
pub const MAX_EVENTS: usize = 5_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    events: Vec<WireEvent>,
    batch_id: Option<String>,
    #[serde(flatten)]
    sidecar: SidecarFields,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent {
    event_type: Option<String>,
    agent_id: Option<String>,
    decision: Option<String>,
    timestamp: Option<serde_json::Value>,
    request_id: Option<String>,
    error_code: Option<String>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The firewall's categories (`kalguard_wire::event::UsageEvent::categories`).
    categories: Option<Vec<String>>,
}

/// Most categories one event may name.
const MAX_CATEGORIES: usize = 16;

/// The firewall's findings on an event: `metadata.riskScore` (0 to 1) and
/// `categories` (names of lowercase letters, digits and `_`; stored sorted,
/// once each).
fn signals(
    metadata: Option<&serde_json::Map<String, serde_json::Value>>,
    categories: Option<Vec<String>>,
) -> Result<Signals, (&'static str, &'static str)> {
    let risk_milli = match metadata.and_then(|m| m.get("riskScore")) {
        None => None,
        Some(v) => match v.as_f64() {
            Some(r) if (0.0..=1.0).contains(&r) => Some((r * 1000.0).round() as i64),
            _ => return Err(("metadata.riskScore", "must be a number from 0 to 1")),
        },
    };
    let mut categories = categories.unwrap_or_default();
    if categories.len() > MAX_CATEGORIES
        || !categories.iter().all(|c| {
            (1..=64).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
    {
        return Err((
            "categories",
            "must be at most 16 names of lowercase letters, digits and _",
        ));
    }
    categories.sort_unstable();
    categories.dedup();
    Ok(Signals {
        risk_milli,
        categories,
    })
}

fn identifier_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// Validates one event; the error names the event's index and field.
fn validate(i: usize, e: WireEvent, received_ms: i64) -> Result<Event, ApiError> {
    let field = |name: &str, why: &str| ApiError::bad_request(format!("events[{i}].{name} {why}"));
    let event_type = e
        .event_type
        .ok_or_else(|| field("eventType", "is required"))?;
    if !(1..=64).contains(&event_type.len())
        || !event_type
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b':')
    {
        return Err(field(
            "eventType",
            "must be like prompt_check or tool_check",
        ));
    }
    let agent_id = e.agent_id.ok_or_else(|| field("agentId", "is required"))?;
    if !identifier_ok(&agent_id, 256) {
        return Err(field("agentId", "must be 1-256 printable characters"));
    }
    if let Some(why) = crate::agent_id::problem(&agent_id) {
        return Err(field("agentId", &why));
    }
    let decision = e.decision.ok_or_else(|| field("decision", "is required"))?;
    if !matches!(decision.as_str(), "allow" | "deny" | "require_approval") {
        return Err(field("decision", "must be allow, deny or require_approval"));
    }
    let request_id = match e.request_id {
        Some(r) if identifier_ok(&r, 128) => r,
        Some(_) => return Err(field("requestId", "must be 1-128 printable characters")),
        // Without a request ID the event cannot be deduplicated; it is still counted.
        None => format!("gen_{}", secrets::random_string(24)),
    };
    let ts_ms = match &e.timestamp {
        None => received_ms,
        Some(v) => parse_event_time(v)
            .ok_or_else(|| field("timestamp", "must be RFC 3339 text or unix milliseconds"))?,
    };
    // Kept as sent, even ahead of the receipt: the time is part of the event's
    // key, so a re-sent copy must find it again; the store counts a sidecar clock
    // running ahead on the day of receipt (`Event::counted_ms`).
    let code_from_metadata = e
        .metadata
        .as_ref()
        .and_then(|m| m.get("errorCode"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    // An allow keeps an error code only as a refusal observe mode let pass
    // (`metadata.wouldRefuse`): the dashboard counts those apart.
    let would_refuse = e
        .metadata
        .as_ref()
        .is_some_and(kalguard_wire::event::would_refuse);
    let error_code = if decision == "allow" && !would_refuse {
        String::new()
    } else {
        e.error_code
            .or(code_from_metadata)
            .filter(|c| identifier_ok(c, 64))
            .unwrap_or_else(|| "UNSPECIFIED".to_string())
    };
    let answer = e
        .metadata
        .as_ref()
        .and_then(|m| m.get(ANSWER))
        .is_some_and(|v| v.as_u64() == Some(1));
    let phase = if answer {
        Phase::Answer
    } else {
        Phase::Request
    };
    let signals =
        signals(e.metadata.as_ref(), e.categories).map_err(|(name, why)| field(name, why))?;
    Ok(Event {
        request_id,
        event_type,
        agent_id,
        decision,
        error_code,
        ts_ms,
        phase,
        signals,
    })
}

pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Json<UsageAnswer>, ApiError> {
    let owner = authenticate(&state, &headers).await?;
    let report: Report = parse_json(&body)?;
    if report.events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!(
            "too many events in one report ({} > {MAX_EVENTS}); send smaller batches",
            report.events.len()
        )));
    }
    if let Some(b) = &report.batch_id {
        if !identifier_ok(b, 128) {
            return Err(ApiError::bad_request(
                "batchId must be 1-128 printable characters",
            ));
        }
    }
    let received_ms = now_ms();
    let events = report
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| validate(i, e, received_ms))
        .collect::<Result<Vec<_>, _>>()?;
    let at = now();
    record_sidecar(&state, &owner.org_id, &report.sidecar, at).await?;
    let ingested = usage::ingest_from_key(
        &state.db,
        &owner.org_id,
        Some(&owner.key_id),
        report.batch_id.as_deref(),
        &events,
        at,
    )
    .await?;
    let (plan, used) = usage::plan_and_checks_on_day(&state.db, &owner.org_id, day_of(at))
        .await?
        .unwrap_or((Plan::Free, 0));
    let limits = plan.limits();
    let agents_today =
        usage::agents_for_limit(&state.db, &owner.org_id, day_of(at), limits.max_agents).await?;
    Ok(Json(UsageAnswer {
        accepted: Some(ingested.accepted),
        counted: Some(ingested.counted),
        remaining: Some(remaining(limits.checks_per_day, used)),
        reset_at: Some(next_midnight(at).into()),
        tier: Some(plan.as_str().to_owned()),
        agents_today,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(v: serde_json::Value) -> WireEvent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_denied_event_takes_its_code_from_the_field_or_metadata() {
        let e = validate(
            0,
            wire(serde_json::json!({"eventType":"prompt_check","agentId":"a","decision":"deny",
                "requestId":"r1","timestamp":"2024-05-03T00:00:00Z","metadata":{"errorCode":"PROMPT_BLOCKED"}})),
            1_714_694_400_000,
        )
        .unwrap();
        assert_eq!(e.error_code, "PROMPT_BLOCKED");
        assert_eq!(e.ts_ms, 1_714_694_400_000);
        let e = validate(
            0,
            wire(serde_json::json!({"eventType":"tool_check","agentId":"a","decision":"allow","requestId":"r2"})),
            5,
        )
        .unwrap();
        assert_eq!(e.error_code, "");
        assert_eq!(e.ts_ms, 5);
    }

    #[test]
    fn an_allow_observe_mode_let_pass_keeps_its_code() {
        let read =
            |metadata: serde_json::Value| {
                validate(
                0,
                wire(serde_json::json!({"eventType":"prompt_check","agentId":"a","decision":"allow",
                    "errorCode":"PROMPT_BLOCKED","requestId":"r","metadata":metadata})),
                0,
            )
            .unwrap()
            };
        let observed = read(serde_json::json!({"wouldRefuse":1}));
        assert_eq!(
            (observed.decision.as_str(), observed.error_code.as_str()),
            ("allow", "PROMPT_BLOCKED")
        );
        assert!(observed.is_check());
        assert_eq!(read(serde_json::json!({})).error_code, "");
    }

    #[test]
    fn bad_events_are_refused_with_their_index_and_field() {
        let err = validate(
            3,
            wire(serde_json::json!({"eventType":"prompt_check","agentId":"a","decision":"maybe"})),
            0,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "events[3].decision must be allow, deny or require_approval"
        );
        let err = validate(
            0,
            wire(serde_json::json!({"eventType":"prompt_check","decision":"allow"})),
            0,
        )
        .unwrap_err();
        assert_eq!(err.message, "events[0].agentId is required");
    }

    #[test]
    fn risk_scores_and_categories_are_checked_and_kept_sorted_once() {
        let event = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"eventType":"prompt_check","agentId":"a","decision":"deny","requestId":"r"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            validate(0, wire(v), 0)
        };
        let e = event(serde_json::json!({"metadata":{"riskScore":1},
            "categories":["role_play","exfiltration","role_play"]}))
        .unwrap();
        assert_eq!(e.signals.risk_milli, Some(1000));
        assert_eq!(e.signals.categories, ["exfiltration", "role_play"]);
        assert_eq!(
            event(serde_json::json!({})).unwrap().signals,
            Signals::default()
        );
        for (bad, field) in [
            (
                serde_json::json!({"metadata":{"riskScore":1.5}}),
                "metadata.riskScore",
            ),
            (
                serde_json::json!({"metadata":{"riskScore":-0.1}}),
                "metadata.riskScore",
            ),
            (
                serde_json::json!({"metadata":{"riskScore":"high"}}),
                "metadata.riskScore",
            ),
            (
                serde_json::json!({"categories":["Role_Play"]}),
                "categories",
            ),
            (serde_json::json!({"categories":["a,b"]}), "categories"),
            (serde_json::json!({"categories":[""]}), "categories"),
            (
                serde_json::json!({"categories":vec!["x"; 17]}),
                "categories",
            ),
        ] {
            let err = event(bad.clone()).unwrap_err();
            assert!(
                err.message.starts_with(&format!("events[0].{field} ")),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn future_timestamps_are_kept_as_sent() {
        let e = validate(
            0,
            wire(
                serde_json::json!({"eventType":"prompt_check","agentId":"a","decision":"allow",
                "requestId":"r","timestamp": 9_999_999_999_999_i64}),
            ),
            1_000_000,
        )
        .unwrap();
        assert_eq!(e.ts_ms, 9_999_999_999_999);
        assert_eq!(e.counted_ms(1_000), 1_300_000);
    }

    #[test]
    fn the_control_planes_report_is_read_as_it_is_sent() {
        use kalguard_wire::cloud::UsageReport;
        use kalguard_wire::event::{Decision, EventType, UsageEvent};
        let mut answer = UsageEvent {
            event_type: EventType::ToolCheck,
            agent_id: "a1".into(),
            decision: Decision::Deny,
            error_code: Some("TOOL_DENIED".into()),
            timestamp: 1_714_694_400_123,
            request_id: "req_1".into(),
            metadata: serde_json::Map::new(),
            categories: vec!["role_play".into(), "exfiltration".into()],
        };
        answer.metadata.insert(ANSWER.into(), 1.into());
        answer.metadata.insert("riskScore".into(), 0.815.into());
        let limited = UsageEvent {
            event_type: EventType::PromptCheck,
            decision: Decision::RequireApproval,
            error_code: Some("REQUIRE_APPROVAL".into()),
            request_id: "req_2".into(),
            metadata: serde_json::Map::new(),
            categories: Vec::new(),
            ..answer.clone()
        };
        let sent = UsageReport {
            batch_id: "cp_1".into(),
            events: vec![answer, limited],
        };
        let report: Report = serde_json::from_value(serde_json::to_value(&sent).unwrap()).unwrap();
        assert_eq!(report.batch_id.as_deref(), Some("cp_1"));
        let read: Vec<Event> = report
            .events
            .into_iter()
            .enumerate()
            .map(|(i, e)| validate(i, e, 1_714_694_400_500).unwrap())
            .collect();
        assert_eq!(read[0].event_type, "tool_check");
        assert_eq!(read[0].agent_id, "a1");
        assert_eq!(read[0].decision, "deny");
        assert_eq!(read[0].error_code, "TOOL_DENIED");
        assert_eq!(read[0].request_id, "req_1");
        assert_eq!(read[0].ts_ms, 1_714_694_400_123);
        assert_eq!(read[0].phase, Phase::Answer);
        assert_eq!(
            read[0].signals,
            Signals {
                risk_milli: Some(815),
                categories: vec!["exfiltration".into(), "role_play".into()],
            }
        );
        assert_eq!(read[1].signals, Signals::default());
        assert!(!read[0].is_check(), "an event on an answer is not a check");
        assert_eq!(read[1].decision, "require_approval");
        assert_eq!(read[1].phase, Phase::Request);
        assert!(read[1].is_check());
    }
}
