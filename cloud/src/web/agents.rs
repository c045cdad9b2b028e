//! The Agents page (agents seen in the last 24 h) and quarantine (revoke every
//! token of an agent).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::role::Permission;
use crate::store::admin_log::Action;
use crate::store::{tokens, usage};
use crate::time_util::{display, now};
use crate::web::admin_log::record;
use crate::web::auth::{CurrentUser, SessionForm};
use crate::web::confirm::{self, Question};
use crate::web::nav::{filters, Nav};
use crate::web::{render, WebError};

struct AgentRow {
    agent_id: String,
    last_seen: String,
    checks: i64,
    denied: i64,
    approval: i64,
}

#[derive(askama::Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    nav: Nav,
    agents: Vec<AgentRow>,
}

pub async fn agents(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "agents").await?.with_notice(&q);
    let agents = usage::active_agents(&state.db, &s.org_id, now())
        .await?
        .into_iter()
        .map(|a| AgentRow {
            last_seen: display(a.last_seen_ms / 1000),
            agent_id: a.agent_id,
            checks: a.checks,
            denied: a.denied,
            approval: a.approval,
        })
        .collect();
    render(&AgentsPage { nav, agents })
}

/// `POST /agents/quarantine` (also on the tokens page): revokes every token of an agent.
pub async fn quarantine(
    State(state): State<AppState>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let agent_id = form.get("agent_id");
    let back = if form.get("back") == "tokens" {
        "/tokens"
    } else {
        "/agents"
    };
    if agent_id.is_empty() {
        // A form sent with nothing chosen (a stale page, no agent left): back to
        // the page that sent it, saying why nothing happened.
        return Ok(Redirect::to(&format!("{back}?notice=choose_agent")).into_response());
    }
    if !confirm::confirmed(&form) {
        return confirm::ask(
            &state,
            &user.0,
            "/agents/quarantine",
            Question {
                title: "Quarantine this agent?",
                message: format!(
                    "Every active token of agent {} is revoked; sidecars refuse them within seconds. This cannot be undone: the agent needs new tokens.",
                    crate::agent_id::shown(agent_id)
                ),
                button: "Revoke all of its tokens",
                cancel: back,
                fields: vec![
                    ("agent_id", agent_id.to_string()),
                    ("back", form.get("back").to_string()),
                ],
            },
        )
        .await;
    }
    let n = tokens::quarantine_agent(&state.db, &user.0.org_id, agent_id).await?;
    record(
        &state,
        &user.0,
        Action::AgentQuarantined,
        &crate::agent_id::shown(agent_id),
        &format!("{n} token(s) revoked"),
    )
    .await?;
    tracing::info!(org_id = %user.0.org_id, agent_id, tokens = n, "agent quarantined");
    Ok(Redirect::to(&format!("{back}?notice=quarantined&count={n}")).into_response())
}
