//! The Usage page (`/usage`, and `/` redirects there): checks, decisions, the
//! chart and refusals by code and agent over 7, 30 or 90 days.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{Redirect, Response};

use crate::app::AppState;
use crate::plan::Plan;
use crate::store::usage;
use crate::time_util::{day_of, display, now, DAY_SECS};
use crate::web::auth::CurrentUser;
use crate::web::chart::usage_svg;
use crate::web::nav::{filters, window_days, Nav};
use crate::web::{render, WebError};

pub async fn home(_user: CurrentUser) -> Redirect {
    Redirect::to("/usage")
}

#[derive(askama::Template)]
#[template(path = "usage.html")]
struct UsagePage {
    nav: Nav,
    days: i64,
    chart: String,
    /// The window's sums; `day` is unused.
    total: usage::DayUsage,
    today_checks: i64,
    limit_text: String,
    /// Refusals observe mode let pass (`docs/observe.md`), apart from denials.
    would_refuse: i64,
    by_code: Vec<usage::Breakdown>,
    by_agent: Vec<usage::Breakdown>,
    agent_pages: AgentPager,
    /// Said when the window reaches past the audit retention: the figures count
    /// events the audit log no longer holds.
    retention_note: Option<String>,
    /// `from=…&to=…` of the window, for its audit log and CSV links.
    window_query: String,
}

/// Agents per page of the Usage page's refusals by agent.
const AGENTS_PER_PAGE: i64 = 20;

/// The pages around the shown page of refusals by agent (`agents_page=N`).
struct AgentPager {
    previous: Option<i64>,
    next: Option<i64>,
}

pub async fn usage(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "usage").await?;
    let days = window_days(&q);
    let at = now();
    let today = day_of(at);
    let series = usage::daily(&state.db, &s.org_id, today, days).await?;
    let plan: Plan = nav.plan.parse().unwrap_or(Plan::Free);
    let limits = plan.limits();
    let first_day = today - days + 1;
    let total = series
        .iter()
        .fold(usage::DayUsage::default(), |t, d| usage::DayUsage {
            day: t.day,
            checks: t.checks + d.checks,
            allowed: t.allowed + d.allowed,
            denied: t.denied + d.denied,
            approval: t.approval + d.approval,
        });
    // The purge deletes events older than the retention; the daily totals stay a year.
    let retention_cutoff = at - limits.audit_retention_days * DAY_SECS;
    let retention_note = (first_day * DAY_SECS < retention_cutoff).then(|| {
        format!(
            "Your {plan} plan keeps audit events {n} days: events before {cutoff} UTC have been purged from the audit log and its CSV. \
             The figures above come from daily totals that keep counting them, so for earlier days they exceed the audit log's rows.",
            n = limits.audit_retention_days,
            cutoff = display(retention_cutoff),
        )
    });
    // The refusals by agent, a page at a time: one row more than shown says
    // whether a next page exists.
    let agent_page: i64 = q
        .get("agents_page")
        .and_then(|p| p.parse().ok())
        .filter(|p: &i64| (0..=100_000).contains(p))
        .unwrap_or(0);
    let mut by_agent = usage::denials_by_agent(
        &state.db,
        &s.org_id,
        first_day,
        AGENTS_PER_PAGE + 1,
        agent_page * AGENTS_PER_PAGE,
    )
    .await?;
    let has_more = by_agent.len() > AGENTS_PER_PAGE as usize;
    by_agent.truncate(AGENTS_PER_PAGE as usize);
    let agent_pages = AgentPager {
        previous: (agent_page > 0).then(|| agent_page - 1),
        next: has_more.then_some(agent_page + 1),
    };
    let window_query = form_urlencoded::Serializer::new(String::new())
        .append_pair("match", "exact")
        .append_pair("from", &crate::time_util::day_label(first_day))
        .append_pair("to", &crate::time_util::day_label(today))
        .finish();
    render(&UsagePage {
        chart: usage_svg(&series, ""),
        total,
        today_checks: series.last().map_or(0, |d| d.checks),
        limit_text: if limits.checks_per_day < 0 {
            "unlimited".into()
        } else {
            limits.checks_per_day.to_string()
        },
        would_refuse: usage::would_refuse(&state.db, &s.org_id, first_day).await?,
        by_code: usage::denials_by_code(&state.db, &s.org_id, first_day).await?,
        by_agent,
        agent_pages,
        retention_note,
        window_query,
        nav,
        days,
    })
}
