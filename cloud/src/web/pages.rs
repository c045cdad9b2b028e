//! The dashboard's pages and actions. Every handler takes the organisation from
//! the session ([`CurrentUser`]) and nothing else: IDs in URLs and forms are
//! always looked up *within* that organisation.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::plan::Plan;
use crate::role::{Permission, Role};
use crate::secrets::KeyMode;
use crate::store::admin_log::Action;
use crate::store::audit::{self, Cursor, Filter};
use crate::store::sessions::Session;
use crate::store::tokens::{NewToken, TokenState};
use crate::store::usage::{Event, Phase};
use crate::store::{keys, orgs, sidecars, tokens, usage};
use crate::time_util::{day_of, display, now, parse_form_time, parse_form_time_end, DAY_SECS};
use crate::web::admin_log::record;
use crate::web::auth::CurrentUser;
use crate::web::chart::usage_svg;
use crate::web::confirm::{self, Question};
use crate::web::form::{Form, FormBody};
use crate::web::{render, WebError};

/// Template filters (askama finds them by this module's name).
pub(crate) mod filters {
    /// An agent ID as shown: hidden characters escaped ([`crate::agent_id::shown`]).
    pub fn shown<T: std::fmt::Display>(id: T) -> askama::Result<String> {
        Ok(crate::agent_id::shown(&id.to_string()))
    }

    /// A count with thousands separators ([`crate::web::thousands`]).
    pub fn thousands<N: std::borrow::Borrow<i64>>(n: N) -> askama::Result<String> {
        Ok(crate::web::thousands(*n.borrow()))
    }

    /// A value for a URL's query string.
    pub fn query<T: std::fmt::Display>(v: T) -> askama::Result<String> {
        Ok(form_urlencoded::byte_serialize(v.to_string().as_bytes()).collect())
    }
}

/// The header every page shares: who is logged in, where, and the CSRF token.
pub struct Nav {
    pub email: String,
    pub role: Role,
    pub org_name: String,
    pub org_id: String,
    pub plan: &'static str,
    pub csrf: String,
    pub active: &'static str,
    pub notice: String,
    /// The notice reports something that was not done (shown as an error).
    pub notice_is_error: bool,
}

impl Nav {
    pub async fn load(
        state: &AppState,
        s: &Session,
        active: &'static str,
    ) -> Result<Nav, WebError> {
        let org = orgs::get(&state.db, &s.org_id).await?.ok_or_else(|| {
            WebError::new(
                StatusCode::UNAUTHORIZED,
                "Your organisation no longer exists.",
            )
        })?;
        Ok(Nav {
            email: s.email.clone(),
            role: s.role,
            org_name: org.name,
            org_id: org.id,
            plan: org.plan.as_str(),
            csrf: s.csrf_token.clone(),
            active,
            notice: String::new(),
            notice_is_error: false,
        })
    }

    /// The role may manage keys, tokens and agents (their forms are shown).
    pub fn can_operate(&self) -> bool {
        self.role.allows(Permission::Operate)
    }

    /// The role may manage members, billing and the signing secret.
    pub fn can_administer(&self) -> bool {
        self.role.allows(Permission::Administer)
    }

    pub(crate) fn with_notice(mut self, q: &HashMap<String, String>) -> Nav {
        (self.notice, self.notice_is_error) = notice_text(q);
        self
    }
}

/// Messages an action may leave for the page it redirects to (fixed texts, so a
/// link cannot make the dashboard say anything else), and whether it is an error.
fn notice_text(q: &HashMap<String, String>) -> (String, bool) {
    let count = q
        .get("count")
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(0);
    let text = match q.get("notice").map(String::as_str) {
        Some("choose_agent") => {
            return (
                "Choose an agent to quarantine. Nothing was revoked.".into(),
                true,
            )
        }
        Some("key_revoked") => "API key revoked. Sidecars using it are refused from now on.".into(),
        Some("manage_key_revoked") => "Management key revoked. Scripts using it are refused from now on.".into(),
        Some("token_revoked") => "Token revoked. Sidecars refuse it within seconds (those without the license watch at their next sync).".into(),
        Some("quarantined") => format!("Agent quarantined: {count} token(s) revoked. Sidecars refuse them within seconds (those without the license watch at their next sync)."),
        Some("secret_rotated") => "Signing secret rotated. Tokens signed with the previous secret stop working after one sync interval; mint new ones.".into(),
        Some("member_added") => "Member added.".into(),
        Some("member_removed") => "Member removed; their sessions have ended.".into(),
        Some("unlocked") => "Unlocked: their failed logins are forgotten and they can log in again.".into(),
        Some("password_changed") => "Password changed. Your other sessions have ended.".into(),
        Some("sessions_ended") => format!("Signed out {count} other session(s)."),
        Some("role_changed") => "Role changed. It applies to their open sessions at once.".into(),
        _ => String::new(),
    };
    (text, false)
}

pub(crate) fn window_days(q: &HashMap<String, String>) -> i64 {
    match q.get("days").map(String::as_str) {
        Some("7") => 7,
        Some("90") => 90,
        _ => 30,
    }
}

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
        by_code: usage::denials_by_code(&state.db, &s.org_id, first_day).await?,
        by_agent,
        agent_pages,
        retention_note,
        window_query,
        nav,
        days,
    })
}

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
    user: CurrentUser,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    user.authorise(&form, Permission::Operate)?;
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

pub(crate) struct EventRow {
    pub(crate) time: String,
    pub(crate) event_type: String,
    pub(crate) agent_id: String,
    pub(crate) decision: String,
    pub(crate) error_code: String,
    pub(crate) request_id: String,
    /// An event on the request's answer (`Event::answer`).
    pub(crate) answer: bool,
    /// "0.82", or "" when the sidecar reported no score.
    pub(crate) risk: String,
    /// "instruction_override, exfiltration", or "".
    pub(crate) categories: String,
}

impl From<Event> for EventRow {
    fn from(e: Event) -> EventRow {
        EventRow {
            time: display(e.ts_ms / 1000),
            event_type: e.event_type,
            agent_id: e.agent_id,
            decision: e.decision,
            error_code: e.error_code,
            request_id: e.request_id,
            answer: e.phase == Phase::Answer,
            risk: e.signals.risk_milli.map(risk_text).unwrap_or_default(),
            categories: e.signals.categories.join(", "),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    /// "1,234 events match." (or "More than 10,000").
    matching: String,
    agent: String,
    decision: String,
    code: String,
    /// The category chosen, and those the log holds (the select's options).
    category: String,
    categories: Vec<String>,
    /// The minimum risk chosen ("0.5", "0.7", "0.9" or "").
    risk: String,
    /// Agent and code match as typed (`match=exact`), not by prefix.
    exact: bool,
    /// What the page says about the filters (a prefix search cut short).
    notes: Vec<String>,
    from: String,
    to: String,
    events: Vec<EventRow>,
    next_query: Option<String>,
    /// The page of newer events, when there is one.
    previous_query: Option<String>,
    csv_query: String,
    is_first_page: bool,
    first_query: String,
}

/// The query-string keys of the audit filters, carried into page and CSV links.
const AUDIT_FILTER_KEYS: [&str; 8] = [
    "agent", "decision", "code", "category", "risk", "from", "to", "match",
];

/// Audit filters from the query string, with a readable error for bad input, and
/// the notes the page shows about them. Agent and code match the stored values
/// that start with the typed text in any case, or, with `match=exact` (the
/// drill-down links), that value alone as typed.
async fn audit_filter(
    state: &AppState,
    org_id: &str,
    q: &HashMap<String, String>,
) -> Result<(Filter, Vec<String>), WebError> {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let bad = |why: String| WebError::new(StatusCode::BAD_REQUEST, why);
    let time = |k: &str, parse: fn(&str) -> Option<i64>| -> Result<Option<i64>, WebError> {
        match text(k) {
            None => Ok(None),
            Some(v) => parse(&v).map(|s| Some(s * 1000)).ok_or_else(|| {
                bad(format!(
                    "The {k} date {v:?} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)."
                ))
            }),
        }
    };
    let decision = text("decision");
    if let Some(d) = &decision {
        if !matches!(d.as_str(), "allow" | "deny" | "require_approval") {
            return Err(bad(
                "Decision must be allow, deny or require_approval.".into()
            ));
        }
    }
    let min_risk = match text("risk") {
        None => None,
        Some(r) => Some(
            usage::RISK_BANDS
                .into_iter()
                .find(|band| format!("{}", *band as f64 / 1000.0) == r)
                .ok_or_else(|| bad("Risk must be at least 0.5, 0.7 or 0.9.".into()))?,
        ),
    };
    let from_ms = time("from", parse_form_time)?;
    let to_ms = time("to", parse_form_time_end)?;
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if from >= to {
            return Err(bad(
                "The From date is after the To date; nothing can match.".into(),
            ));
        }
    }
    let exact = q.get("match").is_some_and(|m| m == "exact");
    let mut notes = Vec::new();
    let agents = typed_values(
        state,
        org_id,
        audit::Column::Agent,
        text("agent"),
        exact,
        &mut notes,
    )
    .await?;
    let error_codes = typed_values(
        state,
        org_id,
        audit::Column::ErrorCode,
        text("code"),
        exact,
        &mut notes,
    )
    .await?;
    Ok((
        Filter {
            agents,
            decision,
            error_codes,
            from_ms,
            to_ms,
            category: text("category").map(|c| c.to_lowercase()),
            min_risk,
        },
        notes,
    ))
}

/// The stored values a typed agent or code filter matches (see [`audit_filter`]).
async fn typed_values(
    state: &AppState,
    org_id: &str,
    column: audit::Column,
    typed: Option<String>,
    exact: bool,
    notes: &mut Vec<String>,
) -> Result<Option<Vec<String>>, WebError> {
    let Some(typed) = typed else {
        return Ok(None);
    };
    if exact {
        return Ok(Some(vec![typed]));
    }
    let matched = audit::matching_values(&state.db, org_id, column, &typed).await?;
    if !matched.complete {
        notes.push(format!(
            "Only the first {} distinct values were searched for {typed:?}; \
             choose \"is exactly\" to find one value as typed.",
            crate::web::thousands(audit::RESOLVE_SCAN_CAP)
        ));
    }
    Ok(Some(matched.values))
}

/// The filter part of the query string, to carry into "next page" and CSV links.
fn filter_query(q: &HashMap<String, String>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for k in AUDIT_FILTER_KEYS {
        if let Some(v) = q.get(k).filter(|v| !v.trim().is_empty()) {
            out.append_pair(k, v.trim());
        }
    }
    out.finish()
}

pub const AUDIT_PAGE_SIZE: i64 = 50;

/// The audit page counts matching events exactly up to this many.
pub const AUDIT_COUNT_CAP: i64 = 10_000;

pub async fn audit(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "audit").await?;
    let (filter, notes) = audit_filter(&state, &s.org_id, &q).await?;
    let categories = audit::categories(&state.db, &s.org_id).await?;
    let cursor_param = |name: &str| -> Result<Option<Cursor>, WebError> {
        match q.get(name).filter(|c| !c.is_empty()) {
            Some(c) => Cursor::decode(c).map(Some).ok_or_else(|| {
                WebError::new(
                    StatusCode::BAD_REQUEST,
                    "That page link is broken; start from the first page.",
                )
            }),
            None => Ok(None),
        }
    };
    // `cursor`: the page older than that row; `newer`: the page newer than it.
    let cursor = cursor_param("cursor")?;
    let newer = cursor_param("newer")?;
    let (events, older_from, newer_from) = match &newer {
        Some(c) => {
            let (events, more) =
                audit::search_newer(&state.db, &s.org_id, &filter, c, AUDIT_PAGE_SIZE).await?;
            let older = events.last().map(Cursor::of);
            let newer = if more {
                events.first().map(Cursor::of)
            } else {
                None
            };
            (events, older, newer)
        }
        None => {
            let page = audit::search(
                &state.db,
                &s.org_id,
                &filter,
                cursor.as_ref(),
                AUDIT_PAGE_SIZE,
            )
            .await?;
            let newer = if cursor.is_some() {
                page.events.first().map(Cursor::of)
            } else {
                None
            };
            (page.events, page.next, newer)
        }
    };
    let matching = match audit::count(&state.db, &s.org_id, &filter, AUDIT_COUNT_CAP).await? {
        Some(n) => format!(
            "{} event{} match{}.",
            crate::web::thousands(n),
            if n == 1 { "" } else { "s" },
            if n == 1 { "es" } else { "" }
        ),
        None => format!(
            "More than {} events match.",
            crate::web::thousands(AUDIT_COUNT_CAP)
        ),
    };
    let base = filter_query(&q);
    let join = |extra: String| {
        if base.is_empty() {
            extra
        } else if extra.is_empty() {
            base.clone()
        } else {
            format!("{base}&{extra}")
        }
    };
    let link = |name: &str, c: Cursor| {
        join(
            form_urlencoded::Serializer::new(String::new())
                .append_pair(name, &c.encode())
                .finish(),
        )
    };
    let next_query = older_from.map(|c| link("cursor", c));
    let is_first_page = newer_from.is_none();
    let previous_query = newer_from.map(|c| link("newer", c));
    let text = |k: &str| q.get(k).cloned().unwrap_or_default();
    render(&AuditPage {
        matching,
        agent: text("agent"),
        decision: text("decision"),
        code: text("code"),
        category: text("category"),
        categories,
        risk: text("risk"),
        exact: q.get("match").is_some_and(|m| m == "exact"),
        notes,
        from: text("from"),
        to: text("to"),
        events: events.into_iter().map(EventRow::from).collect(),
        next_query,
        previous_query,
        csv_query: base.clone(),
        is_first_page,
        first_query: base.clone(),
        nav,
    })
}

/// A risk score in thousandths as people read it: `0.82`, `0.9`, `1`.
fn risk_text(milli: i64) -> String {
    format!("{}", milli as f64 / 1000.0)
}

/// Quotes a CSV field, and defuses cells a spreadsheet would run as a formula.
pub(crate) fn csv_field(out: &mut String, v: &str) {
    out.push('"');
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    out.push_str(&v.replace('"', "\"\""));
    out.push('"');
}

fn csv_rows(events: &[Event]) -> String {
    let mut out = String::with_capacity(events.len() * 100);
    for e in events {
        let time = crate::time_util::rfc3339(e.ts_ms / 1000);
        let risk = e.signals.risk_milli.map(risk_text).unwrap_or_default();
        let categories = e.signals.categories.join(" ");
        for (i, v) in [
            time.as_str(),
            &e.event_type,
            &e.agent_id,
            &e.decision,
            &e.error_code,
            &e.request_id,
            e.phase.as_str(),
            &risk,
            &categories,
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, v);
        }
        out.push_str("\r\n");
    }
    out
}

/// `GET /audit.csv`: every matching event, streamed page by page.
pub async fn audit_csv(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (filter, _) = audit_filter(&state, &s.org_id, &q).await?;
    let header_row = "\"time\",\"type\",\"agent\",\"decision\",\"error_code\",\"request_id\",\"phase\",\"risk_score\",\"categories\"\r\n"
        .to_string();
    struct St {
        state: AppState,
        org_id: String,
        filter: Filter,
        cursor: Option<Cursor>,
        done: bool,
        header: Option<String>,
    }
    let start = St {
        state,
        org_id: s.org_id,
        filter,
        cursor: None,
        done: false,
        header: Some(header_row),
    };
    let stream = futures_util::stream::unfold(start, |mut st| async move {
        if let Some(h) = st.header.take() {
            return Some((Ok::<_, std::io::Error>(h), st));
        }
        if st.done {
            return None;
        }
        match audit::search(
            &st.state.db,
            &st.org_id,
            &st.filter,
            st.cursor.as_ref(),
            1000,
        )
        .await
        {
            Ok(page) => {
                st.done = page.next.is_none();
                st.cursor = page.next;
                Some((Ok(csv_rows(&page.events)), st))
            }
            Err(e) => {
                tracing::error!(error = %e, "CSV export failed mid-stream");
                st.done = true;
                Some((Err(std::io::Error::other("database error")), st))
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"kalguard-audit.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

struct KeyRow {
    id: String,
    name: String,
    display_prefix: String,
    created: String,
    status: String,
    last_used: String,
    active: bool,
    rotatable: bool,
    /// Events and checks its sidecars reported in the last 30 days.
    usage: crate::store::key_usage::KeyUsage,
}

#[derive(askama::Template)]
#[template(path = "keys.html")]
struct KeysPage {
    nav: Nav,
    keys: Vec<KeyRow>,
    new_key: Option<String>,
    manage_keys: Vec<ManageKeyRow>,
    /// A management key just created, shown once.
    new_manage_key: Option<String>,
}

struct ManageKeyRow {
    id: String,
    name: String,
    display_prefix: String,
    role: Role,
    created: String,
    last_used: String,
    active: bool,
    status: String,
}

/// An API key's state in words, as the keys and key pages show it.
pub(crate) fn key_status(k: &keys::ApiKey, at: i64) -> String {
    match (k.revoked_at, k.expires_at) {
        (Some(t), _) => format!("revoked {}", display(t)),
        (None, Some(e)) if e <= at => format!("expired {}", display(e)),
        (None, Some(e)) => format!("rotated; works until {}", display(e)),
        (None, None) => "active".into(),
    }
}

pub(crate) async fn keys_page(
    state: &AppState,
    s: &Session,
    nav: Nav,
    new_key: Option<String>,
    new_manage_key: Option<String>,
) -> Result<Response, WebError> {
    let at = now();
    let usage = crate::store::key_usage::totals(&state.db, &s.org_id, day_of(at) - 29).await?;
    let keys = keys::list(&state.db, &s.org_id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            usage: usage.get(&k.id).copied().unwrap_or_default(),
            status: key_status(&k, at),
            active: k.is_active(at),
            rotatable: k.is_rotatable(),
            created: display(k.created_at),
            last_used: k
                .last_used_at
                .map(display)
                .unwrap_or_else(|| "never".into()),
            id: k.id,
            name: k.name,
            display_prefix: k.display_prefix,
        })
        .collect();
    let manage_keys = crate::store::manage_keys::list(&state.db, &s.org_id)
        .await?
        .into_iter()
        .map(|k| ManageKeyRow {
            status: k.revoked_at.map_or_else(
                || "active".to_owned(),
                |t| format!("revoked {}", display(t)),
            ),
            active: k.revoked_at.is_none(),
            created: format!("{} by {}", display(k.created_at), k.created_by),
            last_used: k
                .last_used_at
                .map(display)
                .unwrap_or_else(|| "never".into()),
            id: k.id,
            name: k.name,
            display_prefix: k.display_prefix,
            role: k.role,
        })
        .collect();
    render(&KeysPage {
        nav,
        keys,
        new_key,
        manage_keys,
        new_manage_key,
    })
}

pub async fn keys(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "keys").await?.with_notice(&q);
    keys_page(&state, &s, nav, None, None).await
}

pub async fn create_key(
    State(state): State<AppState>,
    user: CurrentUser,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    user.authorise(&form, Permission::Operate)?;
    let name = form.get("name");
    if name.is_empty() || name.len() > 100 {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "Key name must be 1-100 characters.",
        ));
    }
    let mode = if form.get("mode") == "test" {
        KeyMode::Test
    } else {
        KeyMode::Live
    };
    let key = keys::create(&state.db, &user.0.org_id, name, mode).await?;
    // The key is shown once; the log keeps the prefix the keys page shows.
    let prefix = key.get(..mode.prefix().len() + 6).unwrap_or_default();
    record(
        &state,
        &user.0,
        Action::KeyCreated,
        &format!("{name} ({prefix}…)"),
        "",
    )
    .await?;
    let nav = Nav::load(&state, &user.0, "keys").await?;
    keys_page(&state, &user.0, nav, Some(key), None).await
}

pub async fn revoke_key(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    user.authorise(&form, Permission::Operate)?;
    let Some(label) = key_label(&state, &user.0.org_id, &id).await? else {
        return Err(WebError::not_found("active API key"));
    };
    if !confirm::confirmed(&form) {
        return confirm::ask(
            &state,
            &user.0,
            &format!("/keys/{id}/revoke"),
            Question {
                title: "Revoke this API key?",
                message: format!(
                    "API key {label} stops working at once: sidecars using it are refused. This cannot be undone."
                ),
                button: "Revoke the key",
                cancel: "/keys",
                fields: Vec::new(),
            },
        )
        .await;
    }
    if !keys::revoke(&state.db, &user.0.org_id, &id).await? {
        return Err(WebError::not_found("active API key"));
    }
    record(&state, &user.0, Action::KeyRevoked, &label, "").await?;
    Ok(Redirect::to("/keys?notice=key_revoked").into_response())
}

pub async fn rotate_key(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    user.authorise(&Form::parse(&body), Permission::Operate)?;
    let key = match keys::rotate(
        &state.db,
        &user.0.org_id,
        &id,
        state.config.key_rotation_grace_secs,
    )
    .await?
    {
        keys::Rotation::Rotated(key) => key,
        keys::Rotation::AlreadyRotated => return Err(WebError::new(
            StatusCode::CONFLICT,
            "This key was rotated already and keeps its deadline. Rotate its replacement instead.",
        )),
        keys::Rotation::NotFound => return Err(WebError::not_found("active API key")),
    };
    let label = key_label(&state, &user.0.org_id, &id)
        .await?
        .unwrap_or_else(|| id.clone());
    record(
        &state,
        &user.0,
        Action::KeyRotated,
        &label,
        &format!(
            "a replacement was issued; this key works until {} UTC",
            display(now() + state.config.key_rotation_grace_secs)
        ),
    )
    .await?;
    let nav = Nav::load(&state, &user.0, "keys").await?;
    keys_page(&state, &user.0, nav, Some(key), None).await
}

/// A key of this organisation as the admin log names it: its name and shown
/// prefix; `None` when the organisation has no such key.
async fn key_label(state: &AppState, org_id: &str, id: &str) -> Result<Option<String>, WebError> {
    Ok(keys::list(&state.db, org_id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| format!("{} ({})", k.name, k.display_prefix)))
}

/// Capabilities offered as checkboxes (DESIGN.md, "Capabilities").
pub const KNOWN_CAPABILITIES: [&str; 7] = [
    "prompt:send",
    "tool:execute",
    "llm:call",
    "tool:read",
    "tool:write",
    "network:outbound",
    "prompt:receive",
];

/// Expiry presets: (form value, label, seconds).
pub const EXPIRY_PRESETS: [(&str, &str, i64); 6] = [
    ("1h", "1 hour", 3_600),
    ("24h", "24 hours", DAY_SECS),
    ("7d", "7 days", 7 * DAY_SECS),
    ("30d", "30 days", 30 * DAY_SECS),
    ("90d", "90 days", 90 * DAY_SECS),
    ("365d", "365 days", 365 * DAY_SECS),
];

struct TokenRow {
    id: String,
    name: String,
    agent_id: String,
    capabilities: String,
    created: String,
    expires: String,
    status: String,
    active: bool,
}

/// A token's state in words, as the tokens and agent pages show it.
pub(crate) fn token_status(state: TokenState) -> String {
    match state {
        TokenState::Active {
            secret_retires_at: None,
        } => "active".into(),
        TokenState::Active {
            secret_retires_at: Some(until),
        } => format!(
            "active until {} (signed with the previous secret)",
            display(until)
        ),
        TokenState::Revoked(r) => format!("revoked {}", display(r)),
        TokenState::Expired => "expired".into(),
        TokenState::SecretRetired => "signing secret retired: no longer verifies".into(),
    }
}

struct CapabilityOption {
    name: &'static str,
    checked: bool,
}

/// What the token form shows: the defaults, or what was submitted when it was
/// refused, so a correction does not mean filling in everything again.
struct TokenDraft {
    name: String,
    agent_id: String,
    capabilities: Vec<String>,
    custom_capabilities: String,
    expiry: String,
    custom_amount: String,
    custom_unit: String,
}

impl TokenDraft {
    fn blank() -> TokenDraft {
        TokenDraft {
            name: String::new(),
            agent_id: String::new(),
            capabilities: vec!["prompt:send".into()],
            custom_capabilities: String::new(),
            expiry: "30d".into(),
            custom_amount: String::new(),
            custom_unit: "days".into(),
        }
    }

    fn submitted(form: &Form) -> TokenDraft {
        TokenDraft {
            name: form.get("name").into(),
            agent_id: form.get("agent_id").into(),
            capabilities: form
                .all("capability")
                .into_iter()
                .map(String::from)
                .collect(),
            custom_capabilities: form.get("custom_capabilities").into(),
            expiry: form.get("expiry").into(),
            custom_amount: form.get("custom_amount").into(),
            custom_unit: form.get("custom_unit").into(),
        }
    }
}

struct NewTokenView {
    token: String,
    agent_id: String,
    expires: String,
}

#[derive(askama::Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Nav,
    tokens: Vec<TokenRow>,
    agents: Vec<String>,
    new_token: Option<NewTokenView>,
    known_capabilities: Vec<CapabilityOption>,
    presets: Vec<(&'static str, &'static str)>,
    /// Custom-expiry units, and whether the draft chose it.
    units: Vec<(&'static str, bool)>,
    draft: TokenDraft,
    error: String,
}

async fn tokens_page(
    state: &AppState,
    s: &Session,
    nav: Nav,
    new_token: Option<NewTokenView>,
    draft: TokenDraft,
    error: String,
) -> Result<Response, WebError> {
    let at = now();
    let org = orgs::get(&state.db, &s.org_id)
        .await?
        .ok_or_else(|| WebError::not_found("organisation"))?;
    let list = tokens::list(&state.db, &s.org_id).await?;
    let is_active = |t: &tokens::AgentToken| matches!(t.state(&org, at), TokenState::Active { .. });
    let mut agents: Vec<String> = list
        .iter()
        .filter(|t| is_active(t))
        .map(|t| t.agent_id.clone())
        .collect();
    agents.sort();
    agents.dedup();
    let tokens = list
        .into_iter()
        .map(|t| {
            let state = t.state(&org, at);
            TokenRow {
                status: token_status(state),
                active: matches!(state, TokenState::Active { .. }),
                capabilities: t.capabilities.join(", "),
                created: display(t.created_at),
                expires: display(t.expires_at),
                id: t.id,
                name: t.name,
                agent_id: t.agent_id,
            }
        })
        .collect();
    render(&TokensPage {
        nav,
        tokens,
        agents,
        new_token,
        known_capabilities: KNOWN_CAPABILITIES
            .iter()
            .map(|c| CapabilityOption {
                name: c,
                checked: draft.capabilities.iter().any(|d| d == c),
            })
            .collect(),
        presets: EXPIRY_PRESETS.iter().map(|(v, l, _)| (*v, *l)).collect(),
        units: ["minutes", "hours", "days"]
            .into_iter()
            .map(|u| (u, u == draft.custom_unit))
            .collect(),
        draft,
        error,
    })
}

pub async fn tokens(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "tokens").await?.with_notice(&q);
    tokens_page(&state, &s, nav, None, TokenDraft::blank(), String::new()).await
}

/// Reads the token form; the error is a sentence for the person who filled it in.
fn new_token_from(form: &Form) -> Result<NewToken, String> {
    let mut capabilities: Vec<String> = form
        .all("capability")
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    capabilities.extend(
        form.get("custom_capabilities")
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    );
    let expiry = form.get("expiry");
    let ttl_secs = if expiry == "custom" {
        let amount: i64 = form
            .get("custom_amount")
            .parse()
            .map_err(|_| "Custom duration must be a whole number.".to_string())?;
        let unit = match form.get("custom_unit") {
            "minutes" => 60,
            "hours" => 3_600,
            _ => DAY_SECS,
        };
        amount
            .checked_mul(unit)
            .ok_or("Custom duration is too long.")?
    } else {
        EXPIRY_PRESETS
            .iter()
            .find(|(v, _, _)| *v == expiry)
            .map(|(_, _, s)| *s)
            .ok_or("Choose an expiry.")?
    };
    NewToken::checked(
        form.get("name"),
        form.get("agent_id"),
        capabilities,
        ttl_secs,
    )
}

pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    user.authorise(&form, Permission::Operate)?;
    let nav = Nav::load(&state, &user.0, "tokens").await?;
    let new = match new_token_from(&form) {
        Ok(n) => n,
        Err(error) => {
            let draft = TokenDraft::submitted(&form);
            let mut res = tokens_page(&state, &user.0, nav, None, draft, error).await?;
            *res.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(res);
        }
    };
    let org = orgs::get(&state.db, &user.0.org_id)
        .await?
        .ok_or_else(|| WebError::not_found("organisation"))?;
    let token = tokens::create(&state.db, &org, &new).await?;
    record(
        &state,
        &user.0,
        Action::TokenCreated,
        &new.name,
        &format!(
            "agent {}; capabilities {}; expires {} UTC",
            crate::agent_id::shown(&new.agent_id),
            new.capabilities.join(", "),
            display(now() + new.ttl_secs)
        ),
    )
    .await?;
    let view = NewTokenView {
        token,
        agent_id: new.agent_id,
        expires: display(now() + new.ttl_secs),
    };
    tokens_page(
        &state,
        &user.0,
        nav,
        Some(view),
        TokenDraft::blank(),
        String::new(),
    )
    .await
}

pub async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    user.authorise(&form, Permission::Operate)?;
    let Some(label) = tokens::list(&state.db, &user.0.org_id)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .map(|t| format!("{} (agent {})", t.name, crate::agent_id::shown(&t.agent_id)))
    else {
        return Err(WebError::not_found("active token"));
    };
    if !confirm::confirmed(&form) {
        return confirm::ask(
            &state,
            &user.0,
            &format!("/tokens/{id}/revoke"),
            Question {
                title: "Revoke this token?",
                message: format!(
                    "Token {label} is refused by sidecars within seconds. This cannot be undone."
                ),
                button: "Revoke the token",
                cancel: "/tokens",
                fields: Vec::new(),
            },
        )
        .await;
    }
    if !tokens::revoke(&state.db, &user.0.org_id, &id).await? {
        return Err(WebError::not_found("active token"));
    }
    record(&state, &user.0, Action::TokenRevoked, &label, "").await?;
    Ok(Redirect::to("/tokens?notice=token_revoked").into_response())
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    user.authorise(&form, Permission::Administer)?;
    if !confirm::confirmed(&form) {
        return confirm::ask(
            &state,
            &user.0,
            "/tokens/rotate-secret",
            Question {
                title: "Rotate the token-signing secret?",
                message: format!(
                    "Every agent token signed with the current secret stops working after {}: mint new tokens for every agent before then.",
                    crate::time_util::duration_words(state.config.secret_grace_secs)
                ),
                button: "Rotate the secret",
                cancel: "/tokens",
                fields: Vec::new(),
            },
        )
        .await;
    }
    orgs::rotate_signing_secret(&state.db, &user.0.org_id, state.config.secret_grace_secs).await?;
    record(
        &state,
        &user.0,
        Action::SecretRotated,
        "token-signing secret",
        &format!(
            "the previous secret stays in the license until {} UTC",
            display(now() + state.config.secret_grace_secs)
        ),
    )
    .await?;
    tracing::info!(org_id = %user.0.org_id, "token signing secret rotated");
    Ok(Redirect::to("/tokens?notice=secret_rotated").into_response())
}

struct SidecarRow {
    sidecar_id: String,
    version: String,
    mode: String,
    last_sync: String,
}

#[derive(askama::Template)]
#[template(path = "sidecars.html")]
struct SidecarsPage {
    nav: Nav,
    sidecars: Vec<SidecarRow>,
}

pub async fn sidecars(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "sidecars").await?;
    let sidecars = sidecars::list(&state.db, &s.org_id)
        .await?
        .into_iter()
        .map(|c| SidecarRow {
            last_sync: display(c.last_sync_at),
            sidecar_id: c.sidecar_id,
            version: if c.version.is_empty() {
                "unknown".into()
            } else {
                c.version
            },
            mode: if c.mode.is_empty() {
                "unknown".into()
            } else {
                c.mode
            },
        })
        .collect();
    render(&SidecarsPage { nav, sidecars })
}

struct PlanRow {
    name: &'static str,
    checks: String,
    agents: String,
    retention: i64,
    features: String,
    current: bool,
    /// A Stripe price is configured for this plan.
    purchasable: bool,
}

#[derive(askama::Template)]
#[template(path = "billing.html")]
struct BillingPage {
    nav: Nav,
    today_checks: i64,
    limit_text: String,
    percent: i64,
    active_agents: usize,
    agents_limit_text: String,
    plans: Vec<PlanRow>,
    stripe_customer: String,
    stripe_enabled: bool,
    notice_text: String,
}

pub async fn billing(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "billing").await?;
    let prices = crate::stripe::price_plans(&state.config.stripe_prices);
    let org = orgs::get(&state.db, &s.org_id)
        .await?
        .ok_or_else(|| WebError::not_found("organisation"))?;
    let today_checks = usage::checks_on_day(&state.db, &s.org_id, day_of(now())).await?;
    let active_agents = usage::active_agents(&state.db, &s.org_id, now())
        .await?
        .len();
    let limit = org.plan.limits().checks_per_day;
    let unlimited = |n: i64| {
        if n < 0 {
            "unlimited".to_string()
        } else {
            n.to_string()
        }
    };
    render(&BillingPage {
        today_checks,
        active_agents,
        agents_limit_text: unlimited(org.plan.limits().max_agents),
        limit_text: unlimited(limit),
        percent: if limit > 0 {
            (today_checks * 100 / limit).min(100)
        } else {
            0
        },
        plans: Plan::ALL
            .iter()
            .map(|p| {
                let l = p.limits();
                PlanRow {
                    name: p.as_str(),
                    checks: unlimited(l.checks_per_day),
                    agents: unlimited(l.max_agents),
                    retention: l.audit_retention_days,
                    features: l.features.join(", "),
                    current: *p == org.plan,
                    purchasable: prices.iter().any(|(_, plan)| plan == p),
                }
            })
            .collect(),
        stripe_customer: org.stripe_customer_id.unwrap_or_default(),
        stripe_enabled: state.config.stripe_secret_key.is_some(),
        notice_text: match q.get("notice").map(String::as_str) {
            Some("checkout_done") => "Thank you. Your plan changes as soon as Stripe confirms the payment; sidecars pick it up within seconds.".into(),
            _ => String::new(),
        },
        nav,
    })
}

/// `POST /billing/checkout`: a Stripe Checkout session for the chosen plan.
pub async fn checkout(
    State(state): State<AppState>,
    user: CurrentUser,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    user.authorise(&form, Permission::Administer)?;
    let plan: Plan = form.get("plan").parse().map_err(|_| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "Choose the pro or enterprise plan.",
        )
    })?;
    let prices = crate::stripe::price_plans(&state.config.stripe_prices);
    let Some((price, _)) = prices.iter().find(|(_, p)| *p == plan) else {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "No Stripe price is configured for the {plan} plan (KALGUARD_CLOUD_STRIPE_PRICES)."
            ),
        ));
    };
    let org = orgs::get(&state.db, &user.0.org_id)
        .await?
        .ok_or_else(|| WebError::not_found("organisation"))?;
    let public = state.config.public_url.trim_end_matches('/');
    let mut params = vec![
        ("mode", "subscription".to_string()),
        ("line_items[0][price]", price.clone()),
        ("line_items[0][quantity]", "1".to_string()),
        ("client_reference_id", org.id.clone()),
        ("metadata[plan]", plan.as_str().to_string()),
        ("subscription_data[metadata][org_id]", org.id.clone()),
        (
            "success_url",
            format!("{public}/billing?notice=checkout_done"),
        ),
        ("cancel_url", format!("{public}/billing")),
    ];
    match &org.stripe_customer_id {
        Some(c) => params.push(("customer", c.clone())),
        None => params.push(("customer_email", user.0.email.clone())),
    }
    let url = crate::stripe::create_session_url(&state, "checkout/sessions", &params)
        .await
        .map_err(stripe_error)?;
    record(&state, &user.0, Action::CheckoutStarted, plan.as_str(), "").await?;
    Ok(Redirect::to(&url).into_response())
}

/// `POST /billing/portal`: the Stripe Billing Portal for the org's customer.
pub async fn portal(
    State(state): State<AppState>,
    user: CurrentUser,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    user.authorise(&Form::parse(&body), Permission::Administer)?;
    let org = orgs::get(&state.db, &user.0.org_id)
        .await?
        .ok_or_else(|| WebError::not_found("organisation"))?;
    let Some(customer) = org.stripe_customer_id else {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "This organisation has no Stripe subscription yet; upgrade first.",
        ));
    };
    let public = state.config.public_url.trim_end_matches('/');
    let params = [
        ("customer", customer),
        ("return_url", format!("{public}/billing")),
    ];
    let url = crate::stripe::create_session_url(&state, "billing_portal/sessions", &params)
        .await
        .map_err(stripe_error)?;
    record(&state, &user.0, Action::BillingPortalOpened, "", "").await?;
    Ok(Redirect::to(&url).into_response())
}

fn stripe_error(e: crate::stripe::StripeApiError) -> WebError {
    tracing::warn!(error = %e, "Stripe API call failed");
    let status = match e {
        crate::stripe::StripeApiError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    WebError::new(status, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_field(&mut out, "=HYPERLINK(\"x\")");
        assert_eq!(out, "\"'=HYPERLINK(\"\"x\"\")\"");
    }

    #[test]
    fn the_token_form_needs_a_name_an_agent_a_capability_and_an_expiry() {
        let f = Form::parse(b"name=bot&agent_id=agent-1&capability=prompt%3Asend&custom_capabilities=model%3Agpt-4o&expiry=7d");
        let t = new_token_from(&f).unwrap();
        assert_eq!(t.capabilities, vec!["prompt:send", "model:gpt-4o"]);
        assert_eq!(t.ttl_secs, 7 * DAY_SECS);
        let f = Form::parse(b"name=bot&agent_id=agent-1&capability=prompt%3Asend&expiry=custom&custom_amount=2&custom_unit=hours");
        assert_eq!(new_token_from(&f).unwrap().ttl_secs, 7_200);
        let f = Form::parse(b"name=bot&agent_id=agent-1&expiry=7d");
        assert_eq!(
            new_token_from(&f).unwrap_err(),
            "Choose at least one capability."
        );
        let f = Form::parse(b"name=bot&agent_id=agent-1&capability=prompt%3Asend&capability=tool%3Aexecute&custom_capabilities=prompt%3Asend+model%3Ax%2Ctool%3Aexecute%2Cmodel%3Ax&expiry=7d");
        assert_eq!(
            new_token_from(&f).unwrap().capabilities,
            vec!["prompt:send", "tool:execute", "model:x"]
        );
        let f = Form::parse(b"name=bot&agent_id=a+b&capability=x&expiry=7d");
        assert!(new_token_from(&f).is_err());
    }
}
