//! The Approvals page (`/approvals`): the requests control planes hold for a
//! person ([`crate::store::approvals`]), and the latest that ended. Owners and
//! admins approve (once, or for N minutes for the same agent and call) or deny
//! with a reason; viewers read. Every decision is in the admin log; the
//! control plane picks it up within seconds and the first decision it takes
//! wins (docs/approval.md).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use kalguard_wire::approval::Status;

use crate::app::AppState;
use crate::role::Permission;
use crate::store::admin_log::Action;
use crate::store::approvals::{self, Approval, Decision, ON_CLOUD};
use crate::time_util::{display, duration_words, now, now_ms};
use crate::web::admin_log::record;
use crate::web::auth::{CurrentUser, SessionForm};
use crate::web::nav::{filters, Nav};
use crate::web::{render, WebError};

/// Ended approvals the page shows.
const ENDED_ROWS: i64 = 50;
/// Longest standing grant, in minutes (a day, as the control plane allows).
const MAX_GRANT_MINUTES: i64 = 24 * 60;
/// Longest deny reason kept (as the control plane keeps).
const MAX_REASON_CHARS: usize = 500;

struct Row {
    id: String,
    filed: String,
    agent_id: String,
    /// The action and the tool or model it names.
    what: String,
    route: String,
    rule: String,
    policy_version: String,
    request_id: String,
    hash_prefix: String,
    reason: String,
    /// Pending: how long it may still wait. Ended: how it ended.
    status: String,
    /// Who decided, and where.
    by: String,
    decision_reason: String,
}

fn row(a: Approval, now_ms: i64) -> Row {
    let status = match a.status(now_ms) {
        Status::Pending => format!(
            "expires in {}",
            duration_words((a.expires_at_ms - now_ms).max(0) / 1000)
        ),
        Status::Approved => match a.for_minutes {
            Some(m) => format!("approved, and the same calls for {m} minutes"),
            None => "approved".to_owned(),
        },
        other => other.as_str().to_owned(),
    };
    let by = match (a.decided_by.as_str(), a.decided_on.as_str()) {
        ("", _) => String::new(),
        (by, ON_CLOUD) => format!("{by} (Cloud)"),
        (by, _) => format!("{by} (control plane)"),
    };
    let what = [a.action.as_str(), a.tool.as_str(), a.model.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Row {
        filed: display(a.filed_at),
        agent_id: a.agent_id,
        what,
        route: a.route,
        rule: if a.rule_id.is_empty() {
            "(default)".to_owned()
        } else {
            a.rule_id
        },
        policy_version: a.policy_version,
        request_id: a.request_id,
        hash_prefix: a.arguments_sha256.chars().take(16).collect(),
        reason: a.reason,
        status,
        by,
        decision_reason: a.decision_reason,
        id: a.id,
    }
}

#[derive(askama::Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    nav: Nav,
    pending: Vec<Row>,
    ended: Vec<Row>,
}

pub async fn page(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "approvals").await?.with_notice(&q);
    let at = now_ms();
    let pending = approvals::pending(&state.db, &s.org_id, at).await?;
    let ended = approvals::ended(&state.db, &s.org_id, at, ENDED_ROWS).await?;
    render(&ApprovalsPage {
        nav,
        pending: pending.into_iter().map(|a| row(a, at)).collect(),
        ended: ended.into_iter().map(|a| row(a, at)).collect(),
    })
}

/// What the admin log says a decision was about.
fn detail(a: &Approval, extra: &str) -> String {
    let what = if a.tool.is_empty() { &a.model } else { &a.tool };
    let rule = if a.rule_id.is_empty() {
        "(default)"
    } else {
        &a.rule_id
    };
    format!(
        "agent {}, {} {what}, rule {rule}, policy {}, request {}{extra}",
        crate::agent_id::shown(&a.agent_id),
        a.action,
        a.policy_version,
        a.request_id
    )
}

/// Takes a member's decision, if the approval still waits.
async fn decide(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    decision: Decision<'_>,
    extra: &str,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let s = &user.0;
    let Some(approval) = approvals::get(&state.db, &s.org_id, id).await? else {
        return Err(WebError::not_found("approval"));
    };
    if !approvals::decide(&state.db, &s.org_id, id, &decision, now(), now_ms()).await? {
        return Ok(Redirect::to("/approvals?notice=approval_gone").into_response());
    }
    let (action, notice) = match decision.status {
        Status::Approved => (Action::ApprovalApproved, "approved"),
        _ => (Action::ApprovalDenied, "denied"),
    };
    record(state, s, action, id, &detail(&approval, extra)).await?;
    Ok(Redirect::to(&format!("/approvals?notice={notice}")).into_response())
}

pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let for_minutes = match form.get("for_minutes") {
        "" => None,
        m => match m.parse::<i64>() {
            Ok(m) if (1..=MAX_GRANT_MINUTES).contains(&m) => Some(m),
            _ => return Ok(Redirect::to("/approvals?notice=bad_minutes").into_response()),
        },
    };
    let by = user.0.email.clone();
    let extra = for_minutes.map_or_else(String::new, |m| {
        format!("; and the same calls for {m} minutes")
    });
    let decision = Decision {
        status: Status::Approved,
        by: &by,
        reason: "",
        for_minutes,
    };
    decide(&state, &user, &id, decision, &extra).await
}

pub async fn deny(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    // What the agent and the audit read: one line, no hidden characters.
    let reason: String = form
        .get("reason")
        .chars()
        .filter(|&c| c == ' ' || !crate::agent_id::is_hidden(c))
        .take(MAX_REASON_CHARS)
        .collect();
    let by = user.0.email.clone();
    let extra = if reason.is_empty() {
        String::new()
    } else {
        format!("; reason: {reason}")
    };
    let decision = Decision {
        status: Status::Denied,
        by: &by,
        reason: &reason,
        for_minutes: None,
    };
    decide(&state, &user, &id, decision, &extra).await
}
