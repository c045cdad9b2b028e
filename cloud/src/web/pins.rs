//! The Tools page (`/tools`): the MCP tools control planes hold back because
//! their definition changed or was flagged ([`crate::store::pins`]), and the
//! latest decisions. Owners and admins approve (pin the definition shown) or
//! forget (the next definition is trusted on first use); viewers read. Each
//! form carries the offered definition's SHA-256, so a decision is about the
//! definition on the page: if the tool changed again since, nothing is
//! decided. Every decision is in the admin log; the control plane picks it up
//! within seconds and the first decision it takes wins (docs/mcp-pinning.md).
//!
//! Forgetting trusts the tool's next definition on first use: it asks for
//! confirmation first, as the dashboard's other destructive actions do
//! ([`crate::web::confirm`]). A sidecar whose report left held tools out
//! (past the report's bounds) is named with their count: those stay with
//! `kalguard tools` on its host.
//!
//! Server and tool names are the servers' choice: every character past
//! printable ASCII is shown escaped (`\u{200b}`), so a look-alike or a bidi
//! override reads as what it is; the templates escape HTML.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use kalguard_wire::pins::{shown_name, shown_text, Held, PinAction, PinOutcome};

use crate::app::AppState;
use crate::role::Permission;
use crate::store::admin_log::Action;
use crate::store::pins::{self, Decided, LeftOut, PinHold};
use crate::time_util::{display, now};
use crate::web::admin_log::record;
use crate::web::auth::{CurrentUser, SessionForm};
use crate::web::confirm::{self, Question};
use crate::web::nav::{filters, Nav};
use crate::web::{render, WebError};

/// Held tools the page shows (the rest are counted).
const HELD_ROWS: i64 = 500;
/// Decisions the page shows.
const DECIDED_ROWS: i64 = 50;
/// Sidecars with tools left out of their report the page names.
const LEFT_OUT_ROWS: i64 = 50;

struct Row {
    id: String,
    /// The sidecar: its host, and its ID's start.
    sidecar: String,
    server: String,
    tool: String,
    /// Why it is held: the fields that changed, or the filter's finding.
    why: String,
    pinned: String,
    offered: String,
    offered_sha256: String,
    held_since: String,
    reported: String,
    /// Decided rows: what, by whom, and what the control plane did.
    decision: String,
    by: String,
    outcome: String,
}

fn prefix(sha: &str) -> String {
    match sha.get(..16) {
        Some(start) => format!("{start}…"),
        None => "never pinned".to_owned(),
    }
}

/// How the page names a sidecar: its host, and its ID's start.
fn sidecar_name(sidecar_id: &str, host: &str) -> String {
    let start: String = sidecar_id.chars().take(11).collect();
    match host {
        "" => start,
        host => format!("{} ({start})", shown_text(host)),
    }
}

/// What the control plane did with a decision, as the page says it.
fn outcome(h: &PinHold) -> String {
    let detail = shown_text(&h.outcome_detail);
    match (h.action(), h.outcome()) {
        (None, _) => String::new(),
        (Some(_), None) => "waiting for the control plane".to_owned(),
        (Some(_), Some(PinOutcome::Applied)) if detail.is_empty() => "applied".to_owned(),
        // Delivered again after a restart, and found done already.
        (Some(_), Some(PinOutcome::Applied)) => format!("applied ({detail})"),
        (Some(_), Some(PinOutcome::Stale)) => {
            format!("not applied: the definition changed again ({detail})")
        }
        (Some(_), Some(PinOutcome::Gone)) if detail.is_empty() => {
            "not applied: already decided on the control plane".to_owned()
        }
        (Some(_), Some(PinOutcome::Gone)) => {
            format!("not applied: already decided on the control plane ({detail})")
        }
    }
}

fn row(h: PinHold) -> Row {
    let why = match h.held() {
        Some(Held::Changed) => {
            let fields: Vec<String> = h.fields_changed().iter().map(|f| shown_name(f)).collect();
            if fields.is_empty() {
                "changed".to_owned()
            } else {
                format!("changed: {}", fields.join(", "))
            }
        }
        Some(Held::Suspicious) => format!("suspicious: {}", shown_text(&h.why)),
        None => shown_text(&h.held),
    };
    let sidecar = sidecar_name(&h.sidecar_id, &h.host);
    let outcome = outcome(&h);
    Row {
        sidecar,
        server: shown_name(&h.server),
        tool: shown_name(&h.tool),
        why,
        pinned: prefix(&h.pinned_sha256),
        offered: prefix(&h.offered_sha256),
        held_since: display(h.held_since_ms / 1000),
        reported: display(h.reported_at),
        decision: h.action().map_or("", PinAction::as_str).to_owned(),
        by: shown_text(&h.decided_by),
        outcome,
        offered_sha256: h.offered_sha256,
        id: h.id,
    }
}

/// A sidecar whose report left held tools out.
struct LeftOutRow {
    sidecar: String,
    count: i64,
    reported: String,
}

#[derive(askama::Template)]
#[template(path = "pins.html")]
struct PinsPage {
    nav: Nav,
    held: Vec<Row>,
    /// Held tools past [`HELD_ROWS`], not shown.
    more: i64,
    /// Sidecars that reported lately with held tools left out.
    left_out: Vec<LeftOutRow>,
    decided: Vec<Row>,
}

pub async fn page(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "tools").await?.with_notice(&q);
    let (held, all) = pins::held(&state.db, &s.org_id, HELD_ROWS).await?;
    let decided = pins::decided(&state.db, &s.org_id, DECIDED_ROWS).await?;
    let more = all - i64::try_from(held.len()).unwrap_or(0);
    // As for held tools: a sidecar silent this long is gone.
    let since = now() - pins::SIDECAR_SILENT_SECS;
    let left_out = pins::left_out(&state.db, &s.org_id, since, LEFT_OUT_ROWS).await?;
    let left_out = left_out
        .into_iter()
        .map(|l: LeftOut| LeftOutRow {
            sidecar: sidecar_name(&l.sidecar_id, &l.host),
            count: l.left_out,
            reported: display(l.reported_at),
        })
        .collect();
    render(&PinsPage {
        nav,
        held: held.into_iter().map(row).collect(),
        more,
        left_out,
        decided: decided.into_iter().map(row).collect(),
    })
}

/// Takes a member's decision on held definition `id`, about the definition
/// whose SHA-256 the form carries.
async fn decide(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    offered_sha256: &str,
    action: PinAction,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let s = &user.0;
    let taken = pins::decide(
        &state.db,
        &s.org_id,
        id,
        offered_sha256,
        action,
        &s.email,
        now(),
    )
    .await?;
    let hold = match taken {
        Decided::NotFound => return Err(WebError::not_found("held tool")),
        Decided::Stale => return Ok(Redirect::to("/tools?notice=tool_stale").into_response()),
        Decided::Gone => return Ok(Redirect::to("/tools?notice=tool_gone").into_response()),
        Decided::Taken => pins::get(&state.db, &s.org_id, id)
            .await?
            .ok_or_else(|| WebError::not_found("held tool"))?,
    };
    let (log_action, notice) = match action {
        PinAction::Approve => (Action::ToolApproved, "tool_approved"),
        PinAction::Forget => (Action::ToolForgotten, "tool_forgotten"),
    };
    let detail = format!(
        "MCP server {}, tool {}, sha256 {} (pinned {}), sidecar {}",
        shown_name(&hold.server),
        shown_name(&hold.tool),
        hold.offered_sha256,
        if hold.pinned_sha256.is_empty() {
            "never"
        } else {
            &hold.pinned_sha256
        },
        hold.sidecar_id
    );
    record(state, s, log_action, id, &detail).await?;
    Ok(Redirect::to(&format!("/tools?notice={notice}")).into_response())
}

pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    let sha = form.get("sha256").to_owned();
    decide(&state, &user, &id, &sha, PinAction::Approve).await
}

/// Forgets held definition `id` once confirmed: its tool's next definition
/// is trusted on first use.
pub async fn forget(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let sha = form.get("sha256").to_owned();
    if !confirm::confirmed(&form) {
        let hold = pins::get(&state.db, &user.0.org_id, &id)
            .await?
            .ok_or_else(|| WebError::not_found("held tool"))?;
        // Nothing to confirm for a tool decided already, or changed again.
        if !hold.decision.is_empty() || hold.current == 0 {
            return Ok(Redirect::to("/tools?notice=tool_gone").into_response());
        }
        if hold.offered_sha256 != sha {
            return Ok(Redirect::to("/tools?notice=tool_stale").into_response());
        }
        return confirm::ask(
            &state,
            &user.0,
            &format!("/tools/{id}/forget"),
            Question {
                title: "Forget this tool's pin?",
                message: format!(
                    "Tool {} of MCP server {} on sidecar {} loses its pin: the next definition its server lists is trusted on first use, whatever it says, with no one asked.",
                    shown_name(&hold.tool),
                    shown_name(&hold.server),
                    sidecar_name(&hold.sidecar_id, &hold.host)
                ),
                button: "Forget the pin",
                cancel: "/tools",
                fields: vec![("sha256", sha)],
            },
        )
        .await;
    }
    decide(&state, &user, &id, &sha, PinAction::Forget).await
}
