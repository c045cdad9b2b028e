//! The members page: who belongs to the organisation and with which role. Owners
//! add members, change roles and remove members; everyone else reads the list.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::role::{Permission, Role};
use crate::store::admin_log::Action;
use crate::store::orgs::{self, RoleChange};
use crate::store::sessions::Session;
use crate::time_util::{display, now};
use crate::web::admin_log::record;
use crate::web::auth::{hash_password, CurrentUser, SessionForm};
use crate::web::confirm::{self, Question};
use crate::web::form::Form;
use crate::web::nav::Nav;
use crate::web::throttle;
use crate::web::{render, OrNotFound, WebError};

struct MemberRow {
    id: String,
    email: String,
    role: Role,
    joined: String,
    /// Every role and whether it is this member's (the role form's choices).
    role_choices: Vec<(&'static str, bool)>,
    /// Until when logins to this account wait after failed attempts (UTC), if they do.
    locked_until: Option<String>,
    /// Not the person looking (nobody removes or demotes themselves here).
    is_other: bool,
}

#[derive(askama::Template)]
#[template(path = "members.html")]
struct MembersPage {
    nav: Nav,
    members: Vec<MemberRow>,
    /// The add form's choices: viewer preselected.
    new_member_roles: Vec<(&'static str, bool)>,
    error: String,
}

async fn members_page(
    state: &AppState,
    s: &Session,
    nav: Nav,
    error: String,
) -> Result<Response, WebError> {
    let at = now();
    let mut members = Vec::new();
    for m in orgs::members(&state.db, &s.org_id).await? {
        let locked_until = throttle::locked_until(&state.db, &m.email, at)
            .await?
            .map(display);
        members.push(MemberRow {
            locked_until,
            is_other: m.id != s.user_id,
            role_choices: choices(m.role),
            joined: display(m.created_at),
            id: m.id,
            email: m.email,
            role: m.role,
        });
    }
    render(&MembersPage {
        nav,
        members,
        new_member_roles: choices(Role::Viewer),
        error,
    })
}

fn choices(selected: Role) -> Vec<(&'static str, bool)> {
    Role::ALL
        .into_iter()
        .map(|r| (r.as_str(), r == selected))
        .collect()
}

pub async fn members(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "members").await?.with_notice(&q);
    members_page(&state, &s, nav, String::new()).await
}

/// The role a form chose; a missing one is the least powerful.
fn chosen_role(form: &Form) -> Result<Role, WebError> {
    match form.get("role") {
        "" => Ok(Role::Viewer),
        r => r.parse().map_err(|e: crate::role::UnknownRole| {
            WebError::new(StatusCode::BAD_REQUEST, format!("Unknown role: {e}."))
        }),
    }
}

/// `POST /members`: adds a member with a role (viewer unless chosen).
pub async fn add_member(
    State(state): State<AppState>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    let role = chosen_role(&form)?;
    let email = form.get("email").to_lowercase();
    let password = form.raw("password");
    let nav = Nav::load(&state, &user.0, "members").await?;
    let error = if !email.contains('@') || email.len() > 254 {
        "Enter a valid email address.".to_string()
    } else {
        crate::web::password::problem(password, &email).unwrap_or_default()
    };
    if !error.is_empty() {
        let mut res = members_page(&state, &user.0, nav, error).await?;
        *res.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(res);
    }
    let hash = hash_password(password.to_string(), state.config.argon2_memory_kib).await?;
    match orgs::add_member(&state.db, &user.0.org_id, &email, &hash, role).await {
        Ok(()) => {
            record(&state, &user.0, Action::MemberAdded, &email, role.as_str()).await?;
            Ok(Redirect::to("/members?notice=member_added").into_response())
        }
        Err(orgs::CreateError::EmailTaken) => {
            let mut res = members_page(
                &state,
                &user.0,
                nav,
                "An account with this email already exists.".into(),
            )
            .await?;
            *res.status_mut() = StatusCode::CONFLICT;
            Ok(res)
        }
        Err(orgs::CreateError::Db(e)) => Err(e.into()),
    }
}

/// `POST /members/{id}/role`: gives a member another role; the organisation
/// always keeps an owner.
pub async fn set_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    let role = chosen_role(&form)?;
    match orgs::set_role(&state.db, &user.0.org_id, &id, role).await? {
        RoleChange::Changed { email, from } => {
            record(
                &state,
                &user.0,
                Action::RoleChanged,
                &email,
                &format!("{from} → {role}"),
            )
            .await?;
            Ok(Redirect::to("/members?notice=role_changed").into_response())
        }
        RoleChange::NotFound => Err(WebError::not_found("member")),
        RoleChange::LastOwner => Err(WebError::new(
            StatusCode::CONFLICT,
            "The organisation needs an owner: make someone else owner first.",
        )),
    }
}

/// `POST /members/{id}/remove`: removes a member (anyone but yourself) and ends
/// their sessions.
pub async fn remove_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    if id == user.0.user_id {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "You cannot remove yourself.",
        ));
    }
    if !confirm::confirmed(&form) {
        let member = orgs::members(&state.db, &user.0.org_id)
            .await?
            .into_iter()
            .find(|m| m.id == id)
            .or_not_found("member")?;
        return confirm::ask(
            &state,
            &user.0,
            &format!("/members/{id}/remove"),
            Question {
                title: "Remove this member?",
                message: format!(
                    "{} ({}) loses access to the organisation and is logged out at once.",
                    member.email, member.role
                ),
                button: "Remove the member",
                cancel: "/members",
                fields: Vec::new(),
            },
        )
        .await;
    }
    let email = orgs::remove_member(&state.db, &user.0.org_id, &id)
        .await?
        .or_not_found("member")?;
    record(&state, &user.0, Action::MemberRemoved, &email, "").await?;
    Ok(Redirect::to("/members?notice=member_removed").into_response())
}

/// `POST /members/{id}/unlock`: clears the failed logins that make a member's
/// logins wait (after the owner has made sure it is really them asking).
pub async fn unlock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm(user, _form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    let member = orgs::members(&state.db, &user.0.org_id)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .or_not_found("member")?;
    let cleared = throttle::unlock(&state.db, &member.email).await?;
    tracing::info!(org_id = %user.0.org_id, member = %member.id, failures = cleared, "login unlocked");
    record(
        &state,
        &user.0,
        Action::LoginUnlocked,
        &member.email,
        &format!("{cleared} failed login(s) forgotten"),
    )
    .await?;
    Ok(Redirect::to("/members?notice=unlocked").into_response())
}
