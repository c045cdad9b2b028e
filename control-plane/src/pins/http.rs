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

use super::{Audited, PinBook, PinError};
use crate::api::signed;
use crate::clock::now_ms;
use crate::ctx::Ctx;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kalguard_wire::channel::Answer;
use kalguard_wire::pins::{PinFiling, PATH};
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
                decide(ctx, approving, body, Decision::Approve)
            }),
        )
        .route(
            "/v1/pins/forget",
            post(move |State(ctx): State<Arc<Ctx>>, body: Bytes| {
                decide(ctx, forgetting, body, Decision::Forget)
            }),
        )
}

impl PinError {
    fn status(&self) -> StatusCode {
        match self {
            PinError::Malformed(_) => StatusCode::BAD_REQUEST,
            PinError::NothingPending { .. } | PinError::NotPinned { .. } => StatusCode::NOT_FOUND,
            PinError::Unreadable(_) | PinError::File(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for PinError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({"error": self.to_string()}))).into_response()
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
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": error.to_string()})),
            )
                .into_response();
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

#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Forget,
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

/// Longest `by` kept: it goes into the audit log.
const MAX_BY: usize = 200;

async fn decide(ctx: Arc<Ctx>, book: Arc<PinBook>, body: Bytes, decision: Decision) -> Response {
    let decided: Decided = match serde_json::from_slice(&body) {
        Ok(decided) => decided,
        Err(error) => return PinError::Malformed(error.to_string()).into_response(),
    };
    let by: String = decided
        .by
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_BY)
        .collect();
    let by = if by.trim().is_empty() {
        "unnamed".to_owned()
    } else {
        by
    };
    let done = tokio::task::spawn_blocking(move || match (decision, decided.tool) {
        (Decision::Approve, Some(tool)) => book.approve(&decided.server, &tool, &by, now_ms()),
        (Decision::Approve, None) => Err(PinError::Malformed("approve needs a tool".into())),
        (Decision::Forget, tool) => book.forget(&decided.server, tool.as_deref(), &by),
    })
    .await;
    match done {
        Ok(Ok(record)) => {
            let answer = json!(record);
            audit(&ctx, vec![record]).await;
            Json(answer).into_response()
        }
        Ok(Err(error)) => error.into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": error.to_string()})),
        )
            .into_response(),
    }
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
