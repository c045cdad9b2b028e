//! `GET /keys/{id}`: one API key's page: its state and what its sidecars reported
//! per UTC day (reports, events, checks newly counted) over 7/30/90 days. A key of
//! another organisation is "not found".

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;

use crate::app::AppState;
use crate::store::key_usage::{self, KeyUsage};
use crate::store::keys;
use crate::time_util::{day_label, day_of, display, now};
use crate::web::auth::CurrentUser;
use crate::web::keys::key_status;
use crate::web::nav::{filters, window_days, Nav};
use crate::web::{render, OrNotFound, WebError};

struct DayRow {
    day: String,
    usage: KeyUsage,
}

#[derive(askama::Template)]
#[template(path = "key.html")]
struct KeyPage {
    nav: Nav,
    id: String,
    name: String,
    display_prefix: String,
    status: String,
    last_used: String,
    days: i64,
    total: KeyUsage,
    /// Newest first.
    rows: Vec<DayRow>,
}

pub async fn page(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "keys").await?;
    let key = keys::list(&state.db, &s.org_id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .or_not_found("API key")?;
    let days = window_days(&q);
    let at = now();
    let today = day_of(at);
    let series = key_usage::daily(&state.db, &s.org_id, &key.id, today - days + 1, today).await?;
    let total = series
        .iter()
        .fold(KeyUsage::default(), |t, (_, u)| KeyUsage {
            reports: t.reports + u.reports,
            events: t.events + u.events,
            checks: t.checks + u.checks,
        });
    render(&KeyPage {
        status: key_status(&key, at),
        last_used: key.last_used_at.map_or_else(|| "never".to_owned(), display),
        rows: series
            .into_iter()
            .rev()
            .map(|(day, usage)| DayRow {
                day: day_label(day),
                usage,
            })
            .collect(),
        total,
        days,
        id: key.id,
        name: key.name,
        display_prefix: key.display_prefix,
        nav,
    })
}
