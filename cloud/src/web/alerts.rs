//! The Alerts page (`/alerts`): the organisation's alert webhooks and the log of
//! every delivery. Admins and owners add a webhook (its signing secret is shown
//! once), send it a test or delete it; every member reads the page. The rules and
//! the sending are in [`crate::alerts`].

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::alerts::{self, Alert};
use crate::app::AppState;
use crate::role::Permission;
use crate::store::admin_log::Action;
use crate::store::alerts::{self as store, NewHook};
use crate::store::orgs;
use crate::time_util::{display, now};
use crate::web::admin_log::record;
use crate::web::auth::{CurrentUser, SessionForm};
use crate::web::form::Form;
use crate::web::nav::Nav;
use crate::web::{render, OrNotFound, WebError};

/// Deliveries the log shows.
const LOG_ROWS: i64 = 50;

struct HookRow {
    id: String,
    url: String,
    rules: String,
    created: String,
}

struct DeliveryRow {
    time: String,
    kind: String,
    url: String,
    status: String,
    attempts: i64,
    result: String,
}

#[derive(askama::Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    nav: Nav,
    hooks: Vec<HookRow>,
    deliveries: Vec<DeliveryRow>,
    /// The secret of the hook just created, shown once.
    new_secret: Option<String>,
    error: String,
}

fn rules(h: &store::Hook) -> String {
    let mut out = Vec::new();
    if h.spike_denials > 0 {
        out.push(format!(
            "{} denials within {} minutes",
            h.spike_denials,
            alerts::SPIKE_WINDOW_SECS / 60
        ));
    }
    if h.quota != 0 {
        out.push("80 % and 100 % of the daily quota".to_owned());
    }
    if h.silent_secs > 0 {
        out.push(format!(
            "a sidecar silent for {}",
            crate::time_util::duration_words(h.silent_secs)
        ));
    }
    if out.is_empty() {
        "tests only".to_owned()
    } else {
        out.join("; ")
    }
}

async fn show(
    state: &AppState,
    org_id: &str,
    nav: Nav,
    new_secret: Option<String>,
    error: String,
) -> Result<Response, WebError> {
    let hooks = store::list(&state.db, org_id).await?;
    let urls: HashMap<&str, &str> = hooks
        .iter()
        .map(|h| (h.id.as_str(), h.url.as_str()))
        .collect();
    let deliveries = store::recent(&state.db, org_id, LOG_ROWS)
        .await?
        .into_iter()
        .map(|d| DeliveryRow {
            time: display(d.created_at),
            url: urls
                .get(d.hook_id.as_str())
                .map_or_else(|| "(deleted webhook)".to_owned(), |u| (*u).to_owned()),
            kind: d.kind,
            status: d.status,
            attempts: d.attempts,
            result: d.last_result,
        })
        .collect();
    let hooks = hooks
        .iter()
        .map(|h| HookRow {
            rules: rules(h),
            created: display(h.created_at),
            id: h.id.clone(),
            url: h.url.clone(),
        })
        .collect();
    let page = AlertsPage {
        nav,
        hooks,
        deliveries,
        new_secret,
        error,
    };
    let status = if page.error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, render(&page)?).into_response())
}

pub async fn page(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let mut nav = Nav::load(&state, &s, "alerts").await?;
    nav.notice = match q.get("notice").map(String::as_str) {
        Some("deleted") => "Webhook deleted.".into(),
        Some("tested") => "Test sent; its outcome is the newest row of the delivery log.".into(),
        _ => String::new(),
    };
    show(&state, &s.org_id, nav, None, String::new()).await
}

/// A whole number from a form field; empty means 0.
fn number(form: &Form, field: &str) -> Option<i64> {
    let v = form.get(field).trim();
    if v.is_empty() {
        Some(0)
    } else {
        v.parse::<i64>()
            .ok()
            .filter(|n| (0..=1_000_000_000).contains(n))
    }
}

pub async fn create(
    State(state): State<AppState>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let nav = Nav::load(&state, &user.0, "alerts").await?;
    let url = form.get("url").trim();
    let problem = if url.len() > 2_000 {
        Some("The URL is longer than 2,000 characters.".to_owned())
    } else {
        alerts::check_target(url, state.config.alert_allow_private_targets)
            .err()
            .map(|e| format!("Webhook URL: {e}."))
    };
    let spike = number(&form, "spike_denials");
    let silent_minutes = number(&form, "silent_minutes");
    let problem = problem.or_else(|| {
        (spike.is_none() || silent_minutes.is_none())
            .then(|| "The spike threshold and the silence are whole numbers (0 = off).".to_owned())
    });
    if let Some(error) = problem {
        return show(&state, &user.0.org_id, nav, None, error).await;
    }
    let new = NewHook {
        url,
        spike_denials: spike.unwrap_or(0),
        quota: form.get("quota") == "on",
        silent_secs: silent_minutes.unwrap_or(0) * 60,
    };
    let hook = store::create(&state.db, &user.0.org_id, &new, now()).await?;
    record(
        &state,
        &user.0,
        Action::AlertHookCreated,
        url,
        &rules(&hook),
    )
    .await?;
    show(
        &state,
        &user.0.org_id,
        nav,
        Some(hook.secret),
        String::new(),
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, _form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let hook = store::list(&state.db, &user.0.org_id)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .or_not_found("alert webhook")?;
    store::delete(&state.db, &user.0.org_id, &id).await?;
    record(&state, &user.0, Action::AlertHookDeleted, &hook.url, "").await?;
    Ok(Redirect::to("/alerts?notice=deleted").into_response())
}

/// Queues a test alert for the hook and sends what is due at once, so the log
/// shows the outcome when the page comes back.
pub async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, _form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let hook = store::list(&state.db, &user.0.org_id)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .or_not_found("alert webhook")?;
    let org = orgs::get(&state.db, &user.0.org_id)
        .await?
        .or_not_found("organisation")?;
    let at = now();
    let payload = Alert::Test.payload(&org.id, &org.name, at);
    store::enqueue(&state.db, &hook, Alert::Test.kind(), &payload, at).await?;
    alerts::deliver_once(&state.db, &state.webhooks, at).await?;
    Ok(Redirect::to("/alerts?notice=tested").into_response())
}
