//! The pins' routes on the channel API (every one needs the channel key,
//! as every route but `/healthz` and `/metrics` does):
//!
//! - `POST /v1/filter/pins`: the filter files a [`PinFiling`] (the tools
//!   an MCP server listed, or an agent calls); the 200 answer is a
//!   [`kalguard_wire::pins::PinAnswer`] signed as [`Answer::Pins`] over the
//!   filing's nonce.
//! - `GET /v1/pins`: every server's pins and the changes waiting.
//! - `POST /v1/pins/approve` `{"server","tool","by"}`: an operator accepts
//!   the definition waiting.
//! - `POST /v1/pins/forget` `{"server","tool"?,"by"}`: a tool (or a whole
//!   server) is forgotten, and trusted on first use again.
//!
//! Every pin made, change seen, approval and forgetting is one record in
//! the control plane's audit log (who, which server and tool, which hashes).

use super::{Audited, Offered, PinBook, PinError};
use crate::api::{error_reply, signed};
use crate::approvals::http::shown_text;
use crate::clock::now_ms;
use crate::ctx::Ctx;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kalguard_wire::channel::Answer;
use kalguard_wire::pins::{PinAction, PinFiling, PATH};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The routes, over the one book.
pub fn routes(book: Arc<PinBook>) -> Router<Arc<Ctx>> {
    let filing = Arc::clone(&book);
    let approving = Arc::clone(&book);
    let forgetting = Arc::clone(&book);
    Router::new()
        .route(
            PATH,
            post(move |State(ctx): State<Arc<Ctx>>, body: Bytes| file(ctx, filing, body)),
        )
        .route("/v1/pins", get(move || async move { Json(book.list()) }))
        .route(
            "/v1/pins/approve",
            post(move |State(ctx): State<Arc<Ctx>>, body: Bytes| {
                decide(ctx, approving, body, PinAction::Approve)
            }),
        )
        .route(
            "/v1/pins/forget",
            post(move |State(ctx): State<Arc<Ctx>>, body: Bytes| {
                decide(ctx, forgetting, body, PinAction::Forget)
            }),
        )
}

impl PinError {
    fn status(&self) -> StatusCode {
        match self {
            PinError::Malformed(_) => StatusCode::BAD_REQUEST,
            PinError::NothingPending { .. } | PinError::NotPinned { .. } => StatusCode::NOT_FOUND,
            PinError::Stale { .. } | PinError::HeldAgain { .. } => StatusCode::CONFLICT,
            PinError::Unreadable(_) | PinError::File(_) | PinError::Task(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl IntoResponse for PinError {
    fn into_response(self) -> Response {
        error_reply(self.status(), self)
    }
}

/// Judges the filter's filing and answers it signed.
async fn file(ctx: Arc<Ctx>, book: Arc<PinBook>, body: Bytes) -> Response {
    let filing: PinFiling = match serde_json::from_slice(&body) {
        Ok(filing) => filing,
        Err(error) => return PinError::Malformed(error.to_string()).into_response(),
    };
    let judged = {
        let filing = filing.clone();
        tokio::task::spawn_blocking(move || book.file(&filing, now_ms())).await
    };
    let (answer, audited) = match judged {
        Ok(Ok(judged)) => judged,
        Ok(Err(error)) => {
            tracing::error!("pins of MCP server {} not judged: {error}", filing.server);
            return error.into_response();
        }
        Err(error) => {
            tracing::error!("pins of MCP server {} not judged: {error}", filing.server);
            return error_reply(StatusCode::SERVICE_UNAVAILABLE, error);
        }
    };
    for record in audited.iter().filter(|r| r.outcome != "pinned") {
        tracing::warn!(
            "MCP server {} tool {:?} {}{}: held back until `kalguard tools approve {} {}`",
            record.server,
            record.tool.as_deref().unwrap_or_default(),
            record.outcome,
            record
                .why
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default(),
            record.server,
            record.tool.as_deref().unwrap_or_default(),
        );
    }
    audit(&ctx, audited).await;
    let body = serde_json::to_string(&answer).unwrap_or_default();
    signed(&ctx.channel_key, Answer::Pins, &filing.nonce, body)
}

/// An operator's decision, as the CLI sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decided {
    server: String,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

async fn decide(ctx: Arc<Ctx>, book: Arc<PinBook>, body: Bytes, action: PinAction) -> Response {
    let decided: Decided = match serde_json::from_slice(&body) {
        Ok(decided) => decided,
        Err(error) => return PinError::Malformed(error.to_string()).into_response(),
    };
    let decision = Decision {
        action,
        server: decided.server,
        tool: decided.tool,
        offered: None,
        by: shown_text(decided.by).unwrap_or_else(|| "unnamed".into()),
    };
    match apply(&ctx, book, decision).await {
        Ok(record) => Json(json!(record)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// An operator's decision: from the CLI, or from the Cloud's dashboard
/// through [`super::relay`].
pub(super) struct Decision {
    pub action: PinAction,
    pub server: String,
    /// `None`: every tool of the server (forget only).
    pub tool: Option<String>,
    /// The hold decided on, when the decider saw one (the Cloud's).
    pub offered: Option<Offered>,
    pub by: String,
}

/// Takes an operator's decision into the book and audits it, exactly as
/// `kalguard tools approve` and `forget` do.
pub(super) async fn apply(
    ctx: &Arc<Ctx>,
    book: Arc<PinBook>,
    decision: Decision,
) -> Result<Audited, PinError> {
    let done = tokio::task::spawn_blocking(move || {
        let Decision {
            action,
            server,
            tool,
            offered,
            by,
        } = decision;
        let offered = offered.as_ref();
        match (action, tool) {
            (PinAction::Approve, Some(tool)) => {
                book.approve(&server, &tool, offered, &by, now_ms())
            }
            (PinAction::Approve, None) => Err(PinError::Malformed("approve needs a tool".into())),
            (PinAction::Forget, tool) => book.forget(&server, tool.as_deref(), offered, &by),
        }
    })
    .await??;
    audit(ctx, vec![done.clone()]).await;
    Ok(done)
}

/// Appends pin records to the audit log; a failure is logged and counted
/// (the pins stand: they are in their own file).
async fn audit(ctx: &Arc<Ctx>, records: Vec<Audited>) {
    if records.is_empty() {
        return;
    }
    let retention = ctx.state.current().audit_retention_days;
    let written = ctx
        .with_sink(move |sink| sink.audit.append(&records, retention))
        .await;
    let error = match written {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    crate::metrics::add(&ctx.metrics.audit_write_errors, 1);
    tracing::error!("MCP tool pins not audited: {error}");
}
