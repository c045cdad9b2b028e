//! The admin log page and its CSV: who did what to the organisation, newest
//! first, with the hash chain checked on every view ([`admin_log::verify`]).
//! Every member can read it; nothing here changes it.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::store::admin_log::{self, Action, Actor, Entry, Verified};
use crate::store::sessions::Session;
use crate::time_util::{display, rfc3339};
use crate::web::audit::csv_row;
use crate::web::auth::CurrentUser;
use crate::web::nav::Nav;
use crate::web::{render, WebError};

/// The session's member as the log names them.
pub fn actor(s: &Session) -> Actor {
    Actor {
        id: s.user_id.clone(),
        email: s.email.clone(),
    }
}

/// Appends what the session's member just did to their organisation's log.
pub async fn record(
    state: &AppState,
    s: &Session,
    action: Action,
    target: &str,
    detail: &str,
) -> Result<(), WebError> {
    admin_log::append(&state.db, &s.org_id, &actor(s), action, target, detail).await?;
    Ok(())
}

pub const PAGE_SIZE: i64 = 50;

struct Row {
    seq: i64,
    time: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

#[derive(askama::Template)]
#[template(path = "admin_log.html")]
struct AdminLogPage {
    nav: Nav,
    rows: Vec<Row>,
    /// `before=…` of the next (older) page.
    older: Option<i64>,
    is_first_page: bool,
    chain: String,
    chain_ok: bool,
}

pub async fn page(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "admin").await?;
    let before = match q.get("before").filter(|b| !b.is_empty()) {
        Some(b) => Some(b.parse::<i64>().map_err(|_| {
            WebError::new(
                StatusCode::BAD_REQUEST,
                "That page link is broken; start from the first page.",
            )
        })?),
        None => None,
    };
    let mut entries = admin_log::page(&state.db, &s.org_id, before, PAGE_SIZE + 1).await?;
    let older = if entries.len() as i64 > PAGE_SIZE {
        entries.truncate(PAGE_SIZE as usize);
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    let (chain, chain_ok) = match admin_log::verify(&state.db, &s.org_id).await? {
        Verified::Intact(n) => (format!("Hash chain intact: {n} entries verified."), true),
        Verified::BrokenAt(seq) => (
            format!("Hash chain broken at entry #{seq}: it or the entry before it was changed or removed outside the Cloud."),
            false,
        ),
    };
    render(&AdminLogPage {
        nav,
        rows: entries
            .into_iter()
            .map(|e| Row {
                seq: e.seq,
                time: display(e.at),
                actor: e.actor_email,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect(),
        older,
        is_first_page: before.is_none(),
        chain,
        chain_ok,
    })
}

fn csv_rows(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let (seq, time) = (e.seq.to_string(), rfc3339(e.at));
        csv_row(
            &mut out,
            &[
                seq.as_str(),
                &time,
                &e.actor_email,
                &e.action,
                &e.target,
                &e.detail,
                &e.prev_hash,
                &e.hash,
            ],
        );
    }
    out
}

/// `GET /admin-log.csv`: every entry, oldest first, with its hashes (so the
/// chain can be checked outside the Cloud), streamed in batches.
pub async fn csv(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
) -> Result<Response, WebError> {
    struct St {
        state: AppState,
        org_id: String,
        after: i64,
        header: bool,
        done: bool,
    }
    let start = St {
        state,
        org_id: s.org_id,
        after: 0,
        header: true,
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut st| async move {
        if st.header {
            st.header = false;
            let h = "\"seq\",\"time\",\"actor\",\"action\",\"target\",\"detail\",\"prev_hash\",\"hash\"\r\n";
            return Some((Ok::<_, std::io::Error>(h.to_string()), st));
        }
        if st.done {
            return None;
        }
        match admin_log::after(&st.state.db, &st.org_id, st.after, 1_000).await {
            Ok(batch) if batch.is_empty() => None,
            Ok(batch) => {
                st.after = batch.last().map_or(st.after, |e| e.seq);
                Some((Ok(csv_rows(&batch)), st))
            }
            Err(e) => {
                tracing::error!(error = %e, "admin log CSV export failed mid-stream");
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
                "attachment; filename=\"kalguard-admin-log.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
