//! The server: shared state, the router (API + dashboard), the retention purge.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::config::Config;
use crate::db::Db;
use crate::plan::Plan;
use crate::store::{orgs, sessions, usage};
use crate::time_util::now;
use crate::{api, stripe, web};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    /// Outgoing HTTP (the Stripe API).
    pub http: reqwest::Client,
    /// Outgoing alert webhooks: redirects are not followed, so a URL that passed
    /// [`crate::alerts::check_target`] cannot bounce the Cloud into its own network.
    pub webhooks: reqwest::Client,
}

impl AppState {
    pub fn new(db: Db, config: Config) -> AppState {
        AppState {
            db,
            config: Arc::new(config),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap_or_default(),
            webhooks: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/license/validate", post(api::license::validate))
        .route("/api/v1/license/watch", get(api::watch::watch))
        .route("/api/v1/usage/report", post(api::usage::report))
        .route("/api/v1/approvals", post(api::approvals::file))
        .route("/api/v1/approvals/{id}", get(api::approvals::outcome))
        .route(
            "/api/v1/approvals/{id}/settle",
            post(api::approvals::settle),
        )
        .route("/api/v1/pins", post(api::pins::report))
        .route("/api/v1/pins/decisions", get(api::pins::decisions))
        .route(
            "/api/v1/pins/decisions/{id}/settle",
            post(api::pins::settle),
        )
        .route("/api/v1/stripe/webhook", post(stripe::webhook))
        .route(
            "/api/v1/manage/keys",
            get(api::manage::list_keys).post(api::manage::create_key),
        )
        .route(
            "/api/v1/manage/keys/{id}/revoke",
            post(api::manage::revoke_key),
        )
        .route(
            "/api/v1/manage/tokens",
            get(api::manage::list_tokens).post(api::manage::create_token),
        )
        .route(
            "/api/v1/manage/tokens/{id}/revoke",
            post(api::manage::revoke_token),
        )
        .route(
            "/api/v1/manage/agents/quarantine",
            post(api::manage::quarantine),
        )
        .route("/api/v1/manage/usage", get(api::manage::usage))
        .route("/healthz", get(|| async { "ok" }))
        .method_not_allowed_fallback(wrong_method)
        .merge(web::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .with_state(state)
}

/// A known path asked with a method it does not take (axum keeps the `Allow`
/// header): JSON under `/api/`, a readable page elsewhere, never an empty 405.
pub async fn wrong_method(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    if uri.path().starts_with("/api/") {
        api::ApiError {
            status,
            code: "METHOD_NOT_ALLOWED",
            message: format!("{} does not accept {method}", uri.path()),
        }
        .into_response()
    } else {
        web::WebError::new(
            status,
            format!(
                "This address does not accept {method}: it is a button or form of the dashboard, not a page to open. Use the dashboard's pages instead."
            ),
        )
        .into_response()
    }
}

/// Unknown paths: JSON under `/api/`, a readable page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        api::ApiError {
            status: axum::http::StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: format!("no API endpoint at {}", uri.path()),
        }
        .into_response()
    } else {
        web::WebError::new(axum::http::StatusCode::NOT_FOUND, "There is no such page.")
            .into_response()
    }
}

/// Deletes audit events past each organisation's retention, and expired sessions.
pub async fn purge_once(db: &Db, session_idle_secs: i64) -> Result<u64, sqlx::Error> {
    let at = now();
    let mut purged = 0;
    for (org_id, plan) in orgs::all_plans(db).await? {
        let days = plan.limits().audit_retention_days;
        purged += usage::purge(db, &org_id, days, at).await?;
        crate::store::approvals::purge(db, &org_id, at - days * crate::time_util::DAY_SECS).await?;
        crate::store::pins::purge(db, &org_id, at - days * crate::time_util::DAY_SECS).await?;
    }
    sessions::purge_expired(db, session_idle_secs).await?;
    crate::store::logins::purge(db, at - crate::web::throttle::MEMORY_SECS, at).await?;
    Ok(purged)
}

/// Runs [`purge_once`] every `interval`, logging failures.
pub fn spawn_purge(db: Db, interval: Duration, session_idle_secs: i64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            match purge_once(&db, session_idle_secs).await {
                Ok(n) if n > 0 => tracing::info!(events = n, "purged audit events past retention"),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "retention purge failed; retrying next interval")
                }
            }
        }
    });
}

/// Truncates SQLite's write-ahead log every `interval` ([`Db::checkpoint`]).
pub fn spawn_checkpoint(db: Db, interval: Duration) {
    if !db.is_sqlite() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            match db.checkpoint().await {
                Ok(true) => {}
                Ok(false) => tracing::debug!("WAL checkpoint held back by a reader; next minute"),
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying next minute"),
            }
        }
    });
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn serve(db: Db, config: Config) -> std::io::Result<()> {
    let addr = config.addr;
    spawn_purge(
        db.clone(),
        Duration::from_secs(config.purge_interval_secs.max(60)),
        config.session_idle_secs,
    );
    crate::license_changes::spawn_poll(db.clone());
    spawn_checkpoint(db.clone(), Duration::from_secs(60));
    let changes = std::sync::Arc::clone(&db.changes);
    let alert_interval = Duration::from_secs(config.alert_interval_secs);
    let state = AppState::new(db, config);
    crate::alerts::spawn(state.clone(), alert_interval);
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "KalGuard Cloud listening (dashboard at /)");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        // Held license watches answer now instead of delaying the stop.
        changes.close();
    })
    .await
}

/// Plans accepted on the command line.
pub fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse::<Plan>().map_err(|e| e.to_string())
}
