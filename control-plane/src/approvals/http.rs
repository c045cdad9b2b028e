//! The approvals' routes on the channel API (every one needs the channel
//! key, as every route but `/healthz` and `/metrics` does):
//!
//! - `POST /v1/filter/approvals`: the filter files an [`ApprovalRequest`] and
//!   the call is held until a person decides or the request's expiry (at
//!   most [`MAX_WAIT_MS`]) passes; the 200 answer is an [`ApprovalAnswer`]
//!   signed as [`Answer::Approval`] over the filing's nonce.
//! - `GET /v1/approvals`: the approvals waiting, oldest first.
//! - `POST /v1/approvals/{id}/approve` `{"by","forMinutes"?}` and
//!   `POST /v1/approvals/{id}/deny` `{"by","reason"?}`: a person's decision.
//!
//! In Cloud mode each waiting approval is also relayed to the Cloud, where a
//! person may decide it on the dashboard ([`super::relay`]).
//!
//! Every filing, decision, expiry and abandonment is audited (who, what,
//! when, which request) in the control plane's audit log, with the filing's
//! facts (never the arguments, only their hash).

use super::relay::Relay;
use super::{ApprovalError, Approvals, Decision, Filed, Waiting};
use crate::api::{error_reply, signed};
use crate::clock::now_ms;
use crate::ctx::Ctx;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kalguard_wire::approval::{ApprovalAnswer, ApprovalRequest, Verdict, MAX_WAIT_MS, PATH};
use kalguard_wire::channel::Answer;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The routes, over one book shared by the filter's calls and the CLI's.
pub fn routes(book: Arc<Approvals>) -> Router<Arc<Ctx>> {
    let filing = Arc::clone(&book);
    let deciding = Arc::clone(&book);
    Router::new()
        .route(
            PATH,
            post(move |State(ctx): State<Arc<Ctx>>, body: Bytes| file(ctx, filing, body)),
        )
        .route("/v1/approvals", get(move || list(book)))
        .route(
            "/v1/approvals/{id}/{verdict}",
            post(
                move |State(ctx): State<Arc<Ctx>>,
                      Path((id, verdict)): Path<(String, String)>,
                      body: Bytes| { decide(ctx, deciding, id, verdict, body) },
            ),
        )
}

impl ApprovalError {
    fn status(&self) -> StatusCode {
        match self {
            ApprovalError::Malformed(_) | ApprovalError::GrantTooLong(_) => StatusCode::BAD_REQUEST,
            ApprovalError::Full | ApprovalError::AgentFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApprovalError::NotPending(_) => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApprovalError {
    fn into_response(self) -> Response {
        error_reply(self.status(), self)
    }
}

/// Files the filter's request and holds the call until it is decided.
async fn file(ctx: Arc<Ctx>, book: Arc<Approvals>, body: Bytes) -> Response {
    let request: ApprovalRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return ApprovalError::Malformed(error.to_string()).into_response(),
    };
    let now = now_ms();
    let hold = request
        .expires_at_ms
        .min(now.saturating_add(MAX_WAIT_MS))
        .saturating_sub(now);
    let filed = match book.file(request.clone(), now) {
        Ok(filed) => filed,
        Err(error) => {
            tracing::warn!("approval request {} refused: {error}", request.request_id);
            return error.into_response();
        }
    };
    let answer = match filed {
        Filed::Granted(answer) => {
            let by = answer.by.as_deref();
            audit(&ctx, "approved", &answer.id, &request, by, None).await;
            answer
        }
        Filed::Waiting { id, mut decided } => {
            audit(&ctx, "requested", &id, &request, None, None).await;
            tracing::info!(
                "approval {id}: agent {} asks for {} {} (rule {}); `kalguard approvals approve {id}` or `deny {id}`",
                request.agent_id,
                request.action,
                request.tool.as_deref().or(request.model.as_deref()).unwrap_or_default(),
                request.rule_id.as_deref().unwrap_or("(default)")
            );
            // In Cloud mode the Cloud hears of it too; dropped with this call
            // (abandoned), the relay tells the Cloud so.
            let relay = Relay::start(&ctx, &book, &id, &request);
            let mut abandoned = Abandoned {
                ctx: Arc::clone(&ctx),
                book: Arc::clone(&book),
                id: Some(id.clone()),
            };
            let decision =
                match tokio::time::timeout(Duration::from_millis(hold), &mut decided).await {
                    Ok(Ok(decision)) => decision,
                    _ => match book.withdraw(&id) {
                        Some(_) => {
                            audit(&ctx, "expired", &id, &request, None, None).await;
                            Decision {
                                verdict: Verdict::Expired,
                                by: String::new(),
                                reason: None,
                            }
                        }
                        // A person decided as the wait ended.
                        None => decided.try_recv().unwrap_or(Decision {
                            verdict: Verdict::Expired,
                            by: String::new(),
                            reason: None,
                        }),
                    },
                };
            abandoned.id = None;
            if let Some(relay) = relay {
                relay.settle(&decision);
            }
            ApprovalAnswer {
                id,
                request_id: request.request_id.clone(),
                arguments_sha256: request.arguments_sha256.clone(),
                verdict: decision.verdict,
                by: Some(decision.by).filter(|by| !by.is_empty()),
                reason: decision.reason,
            }
        }
    };
    let body = serde_json::to_string(&answer).unwrap_or_default();
    signed(&ctx.channel_key, Answer::Approval, &request.nonce, body)
}

/// Withdraws and audits an approval whose filter call went away before it
/// was decided (the agent hung up, Envoy gave up): nobody waits for it.
struct Abandoned {
    ctx: Arc<Ctx>,
    book: Arc<Approvals>,
    id: Option<String>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(waiting) = self.id.take().and_then(|id| self.book.withdraw(&id)) else {
            return;
        };
        tracing::info!("approval {}: the filter stopped waiting", waiting.id);
        let ctx = Arc::clone(&self.ctx);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                audit(&ctx, "abandoned", &waiting.id, &waiting.request, None, None).await;
            });
        }
    }
}

async fn list(book: Arc<Approvals>) -> Json<Vec<Waiting>> {
    Json(book.list())
}

/// A person's decision, as the CLI sends it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Decided {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    for_minutes: Option<u64>,
}

/// Longest `by` or `reason` kept: they go into the audit log and the refusal.
const MAX_TEXT: usize = 500;

async fn decide(
    ctx: Arc<Ctx>,
    book: Arc<Approvals>,
    id: String,
    verdict: String,
    body: Bytes,
) -> Response {
    let verdict = match verdict.as_str() {
        "approve" => Verdict::Approved,
        "deny" => Verdict::Denied,
        _ => return error_reply(StatusCode::NOT_FOUND, "no such route"),
    };
    let decided: Decided = if body.is_empty() {
        Decided::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(decided) => decided,
            Err(error) => return ApprovalError::Malformed(error.to_string()).into_response(),
        }
    };
    let decision = Decision {
        verdict,
        by: shown_text(decided.by).unwrap_or_else(|| "unnamed".into()),
        reason: shown_text(decided.reason),
    };
    match apply(&ctx, &book, &id, decision, decided.for_minutes).await {
        Ok(waiting) => Json(json!({"id": id, "verdict": verdict.as_str(), "approval": waiting}))
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// A decider's name or reason as kept: control characters dropped, at most
/// [`MAX_TEXT`] characters, `None` when nothing is left.
pub(crate) fn shown_text(value: Option<String>) -> Option<String> {
    value
        .map(|v| {
            v.chars()
                .filter(|c| !c.is_control())
                .take(MAX_TEXT)
                .collect::<String>()
        })
        .filter(|v| !v.trim().is_empty())
}

/// Takes a person's decision on approval `id` (from the CLI, or from the
/// Cloud through [`super::relay`]) into the book, and audits it.
pub(super) async fn apply(
    ctx: &Arc<Ctx>,
    book: &Approvals,
    id: &str,
    decision: Decision,
    for_minutes: Option<u64>,
) -> Result<Waiting, ApprovalError> {
    let verdict = decision.verdict;
    let (by, reason) = (decision.by.clone(), decision.reason.clone());
    let waiting = book.decide(id, decision, for_minutes, now_ms())?;
    let mut audited = waiting.request.clone();
    // A standing grant is named in the audit with its length.
    if let Some(minutes) = for_minutes.filter(|_| verdict == Verdict::Approved) {
        audited.reason = format!("{} (standing grant: {minutes} minutes)", audited.reason);
    }
    audit(
        ctx,
        verdict.as_str(),
        id,
        &audited,
        Some(&by),
        reason.as_deref(),
    )
    .await;
    Ok(waiting)
}

/// One audit record of an approval: what happened to it, who did it, and
/// the request's facts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Audited<'a> {
    event_type: &'static str,
    /// `requested`, `approved`, `denied`, `expired` or `abandoned`.
    outcome: &'a str,
    approval_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision_reason: Option<&'a str>,
    #[serde(flatten)]
    request: &'a ApprovalRequest,
}

/// Appends one approval record to the audit log; a failure is logged and
/// counted (the decision stands: the filter's request is not kept waiting
/// on the disk).
async fn audit(
    ctx: &Arc<Ctx>,
    outcome: &str,
    id: &str,
    request: &ApprovalRequest,
    by: Option<&str>,
    reason: Option<&str>,
) {
    let record = serde_json::to_value(Audited {
        event_type: "approval",
        outcome,
        approval_id: id,
        by,
        decision_reason: reason,
        request,
    })
    .unwrap_or_default();
    let retention = ctx.state.current().audit_retention_days;
    let written = ctx
        .with_sink(move |sink| sink.audit.append(&[record], retention))
        .await;
    let error = match written {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    crate::metrics::add(&ctx.metrics.audit_write_errors, 1);
    tracing::error!("approval {id} {outcome} not audited: {error}");
}
