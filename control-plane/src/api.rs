//! The control plane's HTTP API on `KALGUARD_LISTEN` (default 127.0.0.1:9292,
//! or a Unix socket):
//!
//! - `GET /v1/filter/state?version=N[&epoch=E][&nonce=X][&wait=S]`: the state
//!   snapshot at once (200) when its epoch is not `E` (if given) or its
//!   version is above `N`, else held until it changes, at most `S` seconds (default and maximum
//!   30), then `304`. The answer's `x-kalguard-mac` signs the body and the
//!   nonce under the channel key ([`kalguard_wire::channel`]).
//! - `POST /v1/filter/events`: decisions from the filter ([`crate::events`]);
//!   a 200 answer's `x-kalguard-mac` signs it and the batch ID.
//! - `POST /v1/filter/approvals`, `GET /v1/approvals`, `POST
//!   /v1/approvals/{id}/approve|deny`: requests held for a person
//!   ([`crate::approvals::http`]).
//! - `POST /v1/filter/pins`, `GET /v1/pins`, `POST
//!   /v1/pins/approve|forget`: MCP tool pins ([`crate::pins::http`]).
//! - `GET /healthz`: mode, license age, spool depth, last sync error, the
//!   OTLP export's state ([`crate::otel`]).
//! - `GET /metrics`: Prometheus text.
//!
//! Every route but `/healthz` and `/metrics` (unknown ones included) answers
//! 401 unless the request carries the channel key in `x-kalguard-channel-key`;
//! those two never show a secret.

use crate::clock::now_ms;
use crate::ctx::{Ctx, RecordError};
use crate::events::{parse_batch, BatchError};
use crate::metrics::{add, Gauges};
use crate::state::Mode;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kalguard_wire::channel::{Answer, ChannelKey, KEY_HEADER, MAC_HEADER, MAX_NONCE_BYTES};
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Longest hold of a state long-poll.
const LONG_POLL: Duration = Duration::from_secs(30);
/// Largest `POST /v1/filter/events` body.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The routes anyone may read: probes and scrapers hold no key.
const PUBLIC_PATHS: [&str; 2] = ["/healthz", "/metrics"];

pub fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/v1/filter/state", get(filter_state))
        .route("/v1/filter/events", post(filter_events))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::approvals::http::routes(Arc::default()))
        .merge(crate::pins::http::routes(Arc::clone(&ctx.pins)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&ctx),
            require_channel_key,
        ))
        .with_state(ctx)
}

/// Lets a request through to a route other than [`PUBLIC_PATHS`] only with the
/// channel key (compared in constant time), before its body is read.
async fn require_channel_key(
    State(ctx): State<Arc<Ctx>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request.headers().get(KEY_HEADER).map(HeaderValue::as_bytes);
    let public = PUBLIC_PATHS.contains(&request.uri().path());
    if public || presented.is_some_and(|key| ctx.channel_key.matches(key)) {
        return next.run(request).await;
    }
    add(&ctx.metrics.unauthorized_requests, 1);
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "error": format!("this route needs the channel key (KALGUARD_CHANNEL_KEY) in the {KEY_HEADER} header"),
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct StateQuery {
    version: Option<u64>,
    /// The epoch of the snapshot the filter holds.
    epoch: Option<String>,
    /// Bound into the answer's MAC, so the answer cannot be replayed to
    /// another poll.
    nonce: Option<String>,
    /// Seconds to hold at most (capped at 30).
    wait: Option<u64>,
}

/// The error body every route of this API answers with: `{"error": message}`.
pub fn error_reply(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

async fn filter_state(State(ctx): State<Arc<Ctx>>, Query(query): Query<StateQuery>) -> Response {
    let nonce = query.nonce.unwrap_or_default();
    if nonce.len() > MAX_NONCE_BYTES {
        return error_reply(
            StatusCode::BAD_REQUEST,
            format!("nonce longer than {MAX_NONCE_BYTES} bytes"),
        );
    }
    let known = query.version.unwrap_or(0);
    let hold = query
        .wait
        .map_or(LONG_POLL, |s| Duration::from_secs(s).min(LONG_POLL));
    let mut changes = ctx.state.subscribe();
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    loop {
        let current = changes.borrow_and_update().clone();
        // A poll that names no epoch compares versions only.
        let other_epoch = query.epoch.as_deref().is_some_and(|e| e != &*current.epoch);
        if other_epoch || current.version > known {
            return signed(
                &ctx.channel_key,
                Answer::Snapshot,
                &nonce,
                current.body.clone(),
            );
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() {
                return StatusCode::NOT_MODIFIED.into_response();
            },
            () = &mut deadline => return StatusCode::NOT_MODIFIED.into_response(),
        }
    }
}

async fn filter_events(State(ctx): State<Arc<Ctx>>, body: Bytes) -> Response {
    let parsed = match parse_batch(&body) {
        Ok(parsed) => parsed,
        Err(error) => {
            let status = match error {
                BatchError::Malformed(_) => StatusCode::BAD_REQUEST,
                BatchError::TooMany(_) => StatusCode::PAYLOAD_TOO_LARGE,
            };
            return error_reply(status, error);
        }
    };
    add(&ctx.metrics.events_rejected, parsed.rejected);
    let accepted = parsed.valid.len();
    let mut duplicate = false;
    if accepted > 0 {
        let valid = parsed.valid;
        let batch_id = parsed.batch_id.clone();
        let recorder = Arc::clone(&ctx);
        let recorded =
            tokio::task::spawn_blocking(move || recorder.record(&valid, batch_id.as_deref()))
                .await
                .map_err(RecordError::from)
                .and_then(|r| r);
        match recorded {
            Ok(true) => add(&ctx.metrics.events_received, accepted),
            Ok(false) => {
                duplicate = true;
                add(&ctx.metrics.duplicate_posts, 1);
            }
            Err(e) => {
                add(&ctx.metrics.audit_write_errors, 1);
                tracing::error!("events not recorded (the filter will retry): {e}");
                return error_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("events not recorded: {e}"),
                );
            }
        }
    }
    let answer = json!({
        "accepted": accepted,
        "rejected": parsed.rejected,
        "errors": parsed.errors,
        "duplicate": duplicate,
    });
    signed(
        &ctx.channel_key,
        Answer::EventsAck,
        parsed.batch_id.as_deref().unwrap_or_default(),
        answer.to_string(),
    )
}

/// A 200 JSON answer whose `x-kalguard-mac` binds `body` to `nonce`.
pub(crate) fn signed(key: &ChannelKey, answer: Answer, nonce: &str, body: String) -> Response {
    let mac = key.mac(answer, nonce, body.as_bytes());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                HeaderName::from_static(MAC_HEADER),
                HeaderValue::from_str(&mac).unwrap_or(HeaderValue::from_static("")),
            ),
        ],
        body,
    )
        .into_response()
}

async fn healthz(State(ctx): State<Arc<Ctx>>) -> Json<serde_json::Value> {
    let published = ctx.state.current();
    let now = now_ms();
    let license = ctx.state.read(|inputs| {
        inputs.license.as_ref().map(|l| {
            json!({
                "plan": l.tier,
                "orgId": l.org_id,
                "ageSeconds": now.saturating_sub(l.validated_at_ms) / 1000,
                "expiresAtMs": l.expires_at_ms,
            })
        })
    });
    let license_age = license.as_ref().map(|l| l["ageSeconds"].clone());
    let health = ctx.health();
    let policy = crate::policy::health(&ctx);
    let status = if health.api_key_refused {
        "error"
    } else if published.mode == Mode::Degraded
        || health.last_sync_error.is_some()
        || policy["valid"] == false
    {
        "degraded"
    } else {
        "ok"
    };
    let cloud = ctx.cloud.as_ref().map(|cloud| {
        json!({
            "url": cloud.url,
            "syncIntervalMs": ctx.sync_interval.as_millis() as u64,
            "lastSyncOkAtMs": health.last_sync_ok_ms,
            "lastReportError": health.last_report_error,
        })
    });
    Json(json!({
        "status": status,
        "mode": published.mode.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": ctx.started.elapsed().as_secs(),
        "stateVersion": published.version,
        "licenseAgeSeconds": license_age,
        "license": license,
        "lastSyncError": health.last_sync_error,
        "apiKeyRefused": health.api_key_refused,
        "spoolDepth": ctx.spool_depth.load(Ordering::Relaxed),
        "spoolCapacity": ctx.spool_capacity,
        "spoolDropped": ctx.metrics.spool_dropped.load(Ordering::Relaxed),
        "cloud": cloud,
        "tokenSecretConfigured": ctx.token_secret_set,
        "auditLog": ctx.audit_path.display().to_string(),
        "policy": policy,
        "otel": crate::otel::health(&ctx),
    }))
}

async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    let published = ctx.state.current();
    let now = now_ms();
    let license_age_seconds = ctx.state.read(|inputs| {
        inputs
            .license
            .as_ref()
            .map(|l| now.saturating_sub(l.validated_at_ms) / 1000)
    });
    let mut text = ctx.metrics.render(&Gauges {
        mode: published.mode.as_str(),
        state_version: published.version,
        spool_depth: ctx.spool_depth.load(Ordering::Relaxed),
        spool_capacity: ctx.spool_capacity,
        license_age_seconds,
    });
    text.push_str(&crate::policy::metrics(&ctx));
    text.push_str(&crate::otel::metrics(&ctx));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
