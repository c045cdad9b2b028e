//! The confirmation step of destructive actions (revoking a key or token,
//! quarantining an agent, rotating the signing secret, removing a member),
//! without JavaScript: the list's button posts the form, which answers a page
//! saying what will happen with the same form again plus `confirm=yes`; only that
//! second post acts. Both carry the session's CSRF token and pass the role check
//! first, so a forged request can neither act nor be confirmed.

use axum::response::Response;

use crate::app::AppState;
use crate::store::sessions::Session;
use crate::web::form::Form;
use crate::web::nav::Nav;
use crate::web::{render, WebError};

/// Whether the form is the confirmed second step.
pub fn confirmed(form: &Form) -> bool {
    form.get("confirm") == "yes"
}

/// What the confirmation page says and sends again.
pub struct Question<'a> {
    pub title: &'a str,
    pub message: String,
    /// The button that acts ("Revoke the key").
    pub button: &'a str,
    /// Where "Cancel" goes: the page the action came from.
    pub cancel: &'a str,
    /// The form's own fields, sent again with the confirmation.
    pub fields: Vec<(&'a str, String)>,
}

#[derive(askama::Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    nav: Nav,
    action: &'a str,
    q: Question<'a>,
}

/// The confirmation page for posting `action` again.
pub async fn ask(
    state: &AppState,
    s: &Session,
    action: &str,
    q: Question<'_>,
) -> Result<Response, WebError> {
    let nav = Nav::load(state, s, "").await?;
    render(&ConfirmPage { nav, action, q })
}
