//! `GET /agent?id=…`: one agent's page, reached from the usage, agents and tokens
//! pages: its checks and refusals per day over 7/30/90 days, refusals by error code
//! (each a link to those events in the audit log), when it was last seen, its
//! tokens and its latest audit events. Everything is read within the session's
//! organisation: another organisation's agent of the same name is not there.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::AppState;
use crate::store::audit::{self, Filter};
use crate::store::{orgs, tokens, usage};
use crate::time_util::{day_label, day_of, display, now};
use crate::web::audit::EventRow;
use crate::web::auth::CurrentUser;
use crate::web::chart::usage_svg;
use crate::web::nav::{filters, window_days, Nav};
use crate::web::tokens::token_status;
use crate::web::{render, OrNotFound, WebError};

/// How many of the agent's latest audit events the page lists.
const LATEST: i64 = 10;

struct AgentTokenRow {
    name: String,
    capabilities: String,
    expires: String,
    status: String,
}

#[derive(askama::Template)]
#[template(path = "agent.html")]
struct AgentPage {
    nav: Nav,
    agent_id: String,
    days: i64,
    chart: String,
    total: usage::DayUsage,
    last_seen: String,
    by_code: Vec<usage::Breakdown>,
    tokens: Vec<AgentTokenRow>,
    events: Vec<EventRow>,
    /// `agent=…&from=…&to=…`: the window's events of this agent in the audit log.
    audit_query: String,
}

pub async fn page(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "agents").await?;
    let agent_id = q.get("id").map(String::as_str).unwrap_or("");
    if agent_id.is_empty() {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "Which agent? Open an agent from the Agents or Usage page.",
        ));
    }
    let days = window_days(&q);
    let at = now();
    let today = day_of(at);
    let first_day = today - days + 1;
    let series = usage::agent_daily(&state.db, &s.org_id, agent_id, today, days).await?;
    let total = series
        .iter()
        .fold(usage::DayUsage::default(), |t, d| usage::DayUsage {
            day: t.day,
            checks: t.checks + d.checks,
            allowed: t.allowed + d.allowed,
            denied: t.denied + d.denied,
            approval: t.approval + d.approval,
        });
    let org = orgs::get(&state.db, &s.org_id)
        .await?
        .or_not_found("organisation")?;
    let agent_tokens = tokens::list(&state.db, &s.org_id)
        .await?
        .into_iter()
        .filter(|t| t.agent_id == agent_id)
        .map(|t| AgentTokenRow {
            status: token_status(t.state(&org, at)),
            capabilities: t.capabilities.join(", "),
            expires: display(t.expires_at),
            name: t.name,
        })
        .collect();
    let latest = audit::search(
        &state.db,
        &s.org_id,
        &Filter {
            agents: Some(vec![agent_id.to_owned()]),
            ..Filter::default()
        },
        None,
        LATEST,
    )
    .await?;
    let audit_query = form_urlencoded::Serializer::new(String::new())
        .append_pair("agent", agent_id)
        .append_pair("match", "exact")
        .append_pair("from", &day_label(first_day))
        .append_pair("to", &day_label(today))
        .finish();
    let agent_filter = form_urlencoded::Serializer::new(String::new())
        .append_pair("agent", agent_id)
        .append_pair("match", "exact")
        .finish();
    render(&AgentPage {
        chart: usage_svg(&series, &agent_filter),
        total,
        last_seen: usage::agent_last_seen(&state.db, &s.org_id, agent_id)
            .await?
            .map_or_else(|| "never".to_owned(), |ms| display(ms / 1000)),
        by_code: usage::agent_denials_by_code(&state.db, &s.org_id, agent_id, first_day).await?,
        tokens: agent_tokens,
        events: latest.events.into_iter().map(EventRow::from).collect(),
        audit_query,
        agent_id: agent_id.to_owned(),
        days,
        nav,
    })
}
