//! The Sidecars page: every control plane that reported, its version and mode.

use axum::extract::State;
use axum::response::Response;

use crate::app::AppState;
use crate::store::sidecars;
use crate::time_util::display;
use crate::web::auth::CurrentUser;
use crate::web::nav::Nav;
use crate::web::{render, WebError};

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
