//! The API keys page: create, revoke and rotate sidecar keys.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::role::{Permission, Role};
use crate::secrets::KeyMode;
use crate::store::admin_log::Action;
use crate::store::keys;
use crate::store::sessions::Session;
use crate::time_util::{day_of, display, now};
use crate::web::admin_log::record;
use crate::web::auth::{CurrentUser, SessionForm};
use crate::web::confirm::{self, Question};
use crate::web::nav::{filters, Nav};
use crate::web::{render, OrNotFound, WebError};

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
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
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
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let label = key_label(&state, &user.0.org_id, &id)
        .await?
        .or_not_found("active API key")?;
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
    Path(id): Path<String>,
    SessionForm(user, _form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
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
