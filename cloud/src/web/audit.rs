//! The audit log page (`/audit`: filters, count, keyset pages) and its CSV
//! export (`/audit.csv`, streamed).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::store::audit::{self, Cursor, Filter};
use crate::store::usage;
use crate::store::usage::{Event, Phase};
use crate::time_util::{display, parse_form_time, parse_form_time_end};
use crate::web::auth::CurrentUser;
use crate::web::nav::{filters, Nav};
use crate::web::{render, WebError};

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
    /// The minimum risk choices ("0.5", "0.7", "0.9") and whether each is chosen.
    risk_options: Vec<(String, bool)>,
    /// Whether any of them is.
    risk_chosen: bool,
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
                .find(|band| risk_text(*band) == r)
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
    let risk_options: Vec<(String, bool)> = usage::RISK_BANDS
        .iter()
        .map(|band| {
            let r = risk_text(*band);
            let chosen = q.get("risk").is_some_and(|v| v.trim() == r);
            (r, chosen)
        })
        .collect();
    render(&AuditPage {
        risk_chosen: risk_options.iter().any(|(_, chosen)| *chosen),
        risk_options,
        matching,
        agent: text("agent"),
        decision: text("decision"),
        code: text("code"),
        category: text("category"),
        categories,
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

/// One CSV record of `fields`, each quoted as [`csv_field`] does, ended by CRLF.
pub(crate) fn csv_row(out: &mut String, fields: &[&str]) {
    for (i, v) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, v);
    }
    out.push_str("\r\n");
}

fn csv_rows(events: &[Event]) -> String {
    let mut out = String::with_capacity(events.len() * 100);
    for e in events {
        let time = crate::time_util::rfc3339(e.ts_ms / 1000);
        let risk = e.signals.risk_milli.map(risk_text).unwrap_or_default();
        let categories = e.signals.categories.join(" ");
        csv_row(
            &mut out,
            &[
                time.as_str(),
                &e.event_type,
                &e.agent_id,
                &e.decision,
                &e.error_code,
                &e.request_id,
                e.phase.as_str(),
                &risk,
                &categories,
            ],
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_field(&mut out, "=HYPERLINK(\"x\")");
        assert_eq!(out, "\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
