//! What every dashboard page shares: the header ([`Nav`]: who is logged in,
//! where, the CSRF token, a notice left by the last action), the template
//! filters, and the usage window a page reads from its query.

use std::collections::HashMap;

use axum::http::StatusCode;

use crate::app::AppState;
use crate::role::{Permission, Role};
use crate::store::orgs;
use crate::store::sessions::Session;
use crate::web::WebError;

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
        Some("approved") => "Approved. The control plane lets the held request go within seconds.".into(),
        Some("denied") => "Denied. The agent is told so within seconds.".into(),
        Some("approval_gone") => {
            return (
                "That approval was decided, expired or given up already; nothing was changed.".into(),
                true,
            )
        }
        Some("tool_approved") => "Approved. The control plane pins that definition within seconds, and the tool is listed and callable again.".into(),
        Some("tool_forgotten") => "Forgotten. The control plane drops the pin within seconds; the tool's next definition is trusted on first use.".into(),
        Some("tool_gone") => {
            return (
                "That tool was decided already, or its control plane no longer holds it back; nothing was changed.".into(),
                true,
            )
        }
        Some("tool_stale") => {
            return (
                "That tool's definition changed again since the page showed it; nothing was changed. Review the definition shown now.".into(),
                true,
            )
        }
        Some("bad_minutes") => {
            return (
                "\"For N minutes\" takes a whole number from 1 to 1440 (a day); nothing was approved.".into(),
                true,
            )
        }
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
