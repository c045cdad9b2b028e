//! `kalguard serve`: the control plane's HTTP API next to Envoy.
//!
//! Today it answers `/healthz` in local mode. The Cloud license sync, usage
//! spool, audit log and the filter's state channel (`/v1/filter/state`,
//! `/v1/filter/events`) are built on this server in the control-plane issue.

use axum::routing::get;
use axum::{Json, Router};

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Address of the control plane's HTTP API (the filter's cluster `kalguard_control_plane`).
    #[arg(long, env = "KALGUARD_LISTEN", default_value = "127.0.0.1:9292")]
    listen: SocketAddr,
}

struct Health {
    started: Instant,
    token_secret_set: bool,
}

pub fn run(args: Args) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kalguard=info,info".into()),
        )
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), String> {
    let non_empty = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if non_empty("KALGUARD_API_KEY") {
        tracing::warn!(
            "KALGUARD_API_KEY is set, but this build has no Cloud sync yet: running local-only \
             (plan limits are not enforced, usage is not reported)"
        );
    }
    let health = Arc::new(Health {
        started: Instant::now(),
        token_secret_set: non_empty("KALGUARD_TOKEN_SECRET"),
    });
    if !health.token_secret_set {
        tracing::warn!(
            "KALGUARD_TOKEN_SECRET is not set: the filter refuses every agent token until it is"
        );
    }
    let app = Router::new().route(
        "/healthz",
        get({
            let health = Arc::clone(&health);
            move || healthz(Arc::clone(&health))
        }),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} (--listen / KALGUARD_LISTEN): {e}",
                args.listen
            )
        })?;
    tracing::info!(
        "control plane listening on http://{} (mode local)",
        args.listen
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| format!("control plane server on {} failed: {e}", args.listen))?;
    tracing::info!("control plane stopped");
    Ok(())
}

async fn healthz(health: Arc<Health>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "mode": "local",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": health.started.elapsed().as_secs(),
        "tokenSecretConfigured": health.token_secret_set,
    }))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
