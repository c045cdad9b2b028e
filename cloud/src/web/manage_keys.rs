//! Management API keys on the API keys page: an owner creates one with a role
//! (admin or viewer; the key is shown once) and revokes it after a confirmation.
//! What a key may do is in [`crate::api::manage`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::role::{Permission, Role};
use crate::store::admin_log::Action;
use crate::store::manage_keys;
use crate::web::admin_log::record;
use crate::web::auth::SessionForm;
use crate::web::confirm::{self, Question};
use crate::web::keys::keys_page;
use crate::web::nav::Nav;
use crate::web::OrNotFound;
use crate::web::WebError;

pub async fn create(
    State(state): State<AppState>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    let name = form.get("name").trim();
    if name.is_empty() || name.len() > 100 {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "Key name must be 1-100 characters.",
        ));
    }
    // A management key acts as an admin at most: what owners alone may do
    // (members, billing, the signing secret) stays with people.
    let role = match form.get("role") {
        "admin" => Role::Admin,
        "viewer" => Role::Viewer,
        _ => {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                "A management key's role is admin or viewer.",
            ))
        }
    };
    let key = manage_keys::create(&state.db, &user.0.org_id, name, role, &user.0.email).await?;
    let prefix = key.get(..manage_keys::PREFIX.len() + 6).unwrap_or_default();
    record(
        &state,
        &user.0,
        Action::ManageKeyCreated,
        &format!("{name} ({prefix}…)"),
        &format!("role {role}"),
    )
    .await?;
    let nav = Nav::load(&state, &user.0, "keys").await?;
    keys_page(&state, &user.0, nav, None, Some(key)).await
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    let label = manage_keys::list(&state.db, &user.0.org_id)
        .await?
        .into_iter()
        .find(|k| k.id == id && k.revoked_at.is_none())
        .map(|k| format!("{} ({})", k.name, k.display_prefix))
        .or_not_found("active management key")?;
    if !confirm::confirmed(&form) {
        return confirm::ask(
            &state,
            &user.0,
            &format!("/keys/manage/{id}/revoke"),
            Question {
                title: "Revoke this management key?",
                message: format!(
                    "Management key {label} stops working at once: scripts using it are refused. This cannot be undone."
                ),
                button: "Revoke the key",
                cancel: "/keys",
                fields: Vec::new(),
            },
        )
        .await;
    }
    if !manage_keys::revoke(&state.db, &user.0.org_id, &id).await? {
        return Err(WebError::not_found("active management key"));
    }
    record(&state, &user.0, Action::ManageKeyRevoked, &label, "").await?;
    Ok(Redirect::to("/keys?notice=manage_key_revoked").into_response())
}
