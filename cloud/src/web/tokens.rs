//! The access tokens page: mint (shown once), revoke, and rotate the
//! organisation's token-signing secret.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::role::Permission;
use crate::store::admin_log::Action;
use crate::store::sessions::Session;
use crate::store::tokens::{NewToken, TokenState};
use crate::store::{orgs, tokens};
use crate::time_util::{display, now, DAY_SECS};
use crate::web::admin_log::record;
use crate::web::auth::{CurrentUser, SessionForm};
use crate::web::confirm::{self, Question};
use crate::web::form::Form;
use crate::web::nav::{filters, Nav};
use crate::web::{render, OrNotFound, WebError};

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
        .or_not_found("organisation")?;
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
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
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
        .or_not_found("organisation")?;
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
    Path(id): Path<String>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Operate)?;
    let label = tokens::list(&state.db, &user.0.org_id)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .map(|t| format!("{} (agent {})", t.name, crate::agent_id::shown(&t.agent_id)))
        .or_not_found("active token")?;
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
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
