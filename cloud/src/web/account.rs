//! The account page: what everyone manages for themselves, whatever their role —
//! their password and their sessions.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::store::admin_log::Action;
use crate::store::orgs;
use crate::store::sessions::{self, Session};
use crate::time_util::now;
use crate::web::admin_log::record;
use crate::web::auth::{
    cookie, hash_password, verify_password, ClientAddr, CurrentUser, SessionForm, SESSION_COOKIE,
};
use crate::web::nav::Nav;
use crate::web::throttle::{self, Source};
use crate::web::{password, render, WebError};

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Nav,
    sessions: i64,
    idle_minutes: i64,
    error: String,
}

async fn account_page(
    state: &AppState,
    s: &Session,
    nav: Nav,
    error: String,
) -> Result<Response, WebError> {
    render(&AccountPage {
        sessions: sessions::count_live(&state.db, &s.user_id, state.config.session_idle_secs)
            .await?,
        idle_minutes: state.config.session_idle_secs / 60,
        nav,
        error,
    })
}

pub async fn account(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "account").await?.with_notice(&q);
    account_page(&state, &s, nav, String::new()).await
}

/// `POST /account/password`: needs the current password (throttled like a
/// login, so a borrowed session cannot guess it), checks the new one like
/// sign-up does, and ends every other session of the member.
pub async fn change_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    let s = &user.0;
    let refuse = |status: StatusCode, error: String| {
        let state = state.clone();
        async move {
            let nav = Nav::load(&state, s, "account").await?;
            let mut res = account_page(&state, s, nav, error).await?;
            *res.status_mut() = status;
            Ok::<Response, WebError>(res)
        }
    };
    let at = now();
    let source = Source::Address(addr);
    if let Some(until) = throttle::wait_until(&state.db, &s.email, &source, at).await? {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong passwords. Try again in {}.",
                crate::time_util::duration_words(until - at)
            ),
        )
        .await;
    }
    let Some(stored) = orgs::user_by_email(&state.db, &s.email).await? else {
        return Err(WebError::new(
            StatusCode::UNAUTHORIZED,
            "Your account no longer exists.",
        ));
    };
    let current = form.raw("current_password");
    if current.chars().count() > password::MAX_PASSWORD_LEN
        || !verify_password(current.to_string(), stored.password_hash).await
    {
        throttle::failed(&state.db, &s.email, &source, at).await?;
        return refuse(
            StatusCode::BAD_REQUEST,
            "Your current password is not right. Nothing was changed.".into(),
        )
        .await;
    }
    let new = form.raw("new_password");
    if let Some(problem) = password::problem(new, &s.email) {
        return refuse(StatusCode::BAD_REQUEST, format!("New password: {problem}")).await;
    }
    if new != form.raw("new_password_again") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The new password and its repetition differ. Nothing was changed.".into(),
        )
        .await;
    }
    let hash = hash_password(new.to_string(), state.config.argon2_memory_kib).await?;
    orgs::set_password_hash(&state.db, &s.user_id, &hash).await?;
    let ended = end_others(&state, s, &headers).await?;
    record(
        &state,
        s,
        Action::PasswordChanged,
        &s.email,
        &format!("{ended} other session(s) ended"),
    )
    .await?;
    Ok(Redirect::to("/account?notice=password_changed").into_response())
}

async fn end_others(state: &AppState, s: &Session, headers: &HeaderMap) -> Result<u64, WebError> {
    let current = cookie(headers, SESSION_COOKIE).unwrap_or_default();
    Ok(sessions::delete_others(&state.db, &s.user_id, current).await?)
}

/// `POST /account/sessions/end-others`: signs out every other browser of the member.
pub async fn end_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    SessionForm(user, _form): SessionForm,
) -> Result<Response, WebError> {
    let ended = end_others(&state, &user.0, &headers).await?;
    record(
        &state,
        &user.0,
        Action::SessionsEnded,
        &user.0.email,
        &format!("{ended} session(s) ended"),
    )
    .await?;
    Ok(Redirect::to(&format!("/account?notice=sessions_ended&count={ended}")).into_response())
}
