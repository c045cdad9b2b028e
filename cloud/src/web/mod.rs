//! The dashboard: server-rendered pages (askama), forms that work without
//! JavaScript, a session cookie and a CSRF token on every state change, and a
//! CSP that allows no inline script.

pub mod account;
pub mod admin_log;
pub mod agent;
pub mod agents;
pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod chart;
pub mod confirm;
pub mod form;
pub mod key;
pub mod keys;
pub mod manage_keys;
pub mod members;
pub mod nav;
pub mod password;
pub mod pins;
pub mod sidecars;
pub mod throttle;
pub mod tokens;
pub mod usage;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

/// The Content-Security-Policy of every dashboard response.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(usage::home))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", get(auth::logout_page).post(auth::logout))
        .route("/account", get(account::account))
        .route("/account/password", post(account::change_password))
        .route(
            "/account/sessions/end-others",
            post(account::end_other_sessions),
        )
        .route("/usage", get(usage::usage))
        .route("/agents", get(agents::agents))
        .route("/agents/quarantine", post(agents::quarantine))
        .route("/agent", get(agent::page))
        .route("/audit", get(audit::audit))
        .route("/audit.csv", get(audit::audit_csv))
        .route("/keys", get(keys::keys).post(keys::create_key))
        .route("/keys/manage", post(manage_keys::create))
        .route("/keys/manage/{id}/revoke", post(manage_keys::revoke))
        .route("/keys/{id}", get(key::page))
        .route("/keys/{id}/revoke", post(keys::revoke_key))
        .route("/keys/{id}/rotate", post(keys::rotate_key))
        .route("/tokens", get(tokens::tokens).post(tokens::create_token))
        .route("/tokens/{id}/revoke", post(tokens::revoke_token))
        .route("/tokens/rotate-secret", post(tokens::rotate_secret))
        .route("/admin-log", get(admin_log::page))
        .route("/admin-log.csv", get(admin_log::csv))
        .route("/sidecars", get(sidecars::sidecars))
        .route("/approvals", get(approvals::page))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/deny", post(approvals::deny))
        .route("/tools", get(pins::page))
        .route("/tools/{id}/approve", post(pins::approve))
        .route("/tools/{id}/forget", post(pins::forget))
        .route("/alerts", get(alerts::page).post(alerts::create))
        .route("/alerts/{id}/delete", post(alerts::delete))
        .route("/alerts/{id}/test", post(alerts::test))
        .route("/billing", get(billing::billing))
        .route("/billing/checkout", post(billing::checkout))
        .route("/billing/portal", post(billing::portal))
        .route("/members", get(members::members).post(members::add_member))
        .route("/members/{id}/role", post(members::set_role))
        .route("/members/{id}/remove", post(members::remove_member))
        .route("/members/{id}/unlock", post(members::unlock))
        .route("/static/app.css", get(static_css))
        .route("/static/app.js", get(static_js))
        .route("/static/htmx-2.0.11.min.js", get(static_htmx))
        // Before the layer, so the page gets the security headers too.
        .method_not_allowed_fallback(crate::app::wrong_method)
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn static_css() -> Response {
    static_file(
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    )
}

async fn static_js() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    )
}

/// htmx, vendored (0BSD, static/htmx.LICENSE): boosts the audit pager and filters.
async fn static_htmx() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../../static/htmx-2.0.11.min.js"),
    )
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A failure shown to a person: a status and a readable message on a small page.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> WebError {
        WebError::new(
            StatusCode::NOT_FOUND,
            format!("No such {what} in your organisation."),
        )
    }
}

/// The last step of a handler's load → authorise → find → 404 shape: what it
/// looked up by ID within the session's organisation, or the page saying there
/// is no such thing there (the same for another organisation's IDs).
pub trait OrNotFound<T> {
    fn or_not_found(self, what: &str) -> Result<T, WebError>;
}

impl<T> OrNotFound<T> for Option<T> {
    fn or_not_found(self, what: &str) -> Result<T, WebError> {
        self.ok_or_else(|| WebError::not_found(what))
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> WebError {
        tracing::error!(error = %e, "database error");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; please try again.",
        )
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> WebError {
        tracing::error!(error = %e, "template error");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; please try again.",
        )
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.status.as_u16(),
            message: &self.message,
        };
        let body = askama::Template::render(&page).unwrap_or_else(|_| self.message.clone());
        (self.status, Html(body)).into_response()
    }
}

/// A count as people read it: `1,234,567` (and `-1,234`).
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Renders a template into a 200 HTML response.
pub fn render<T: askama::Template>(t: &T) -> Result<Response, WebError> {
    Ok(Html(t.render()?).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
        assert_eq!(super::thousands(-12_345), "-12,345");
    }
}
