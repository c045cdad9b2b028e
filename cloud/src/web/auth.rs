//! Sign-up, log-in, log-out, the session extractor, CSRF checks and the login
//! rate limiter. Passwords are hashed with argon2id.

use std::net::SocketAddr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::role::Permission;
use crate::secrets::{self, constant_time_eq};
use crate::store::logins;
use crate::store::orgs::{self, CreateError};
use crate::store::sessions::{self, Session, SESSION_SECS};
use crate::time_util::now;
use crate::web::form::{Form, FormBody};
use crate::web::password::{self, MAX_PASSWORD_LEN};
use crate::web::throttle::{self, Source, UNKNOWN_ADDR};
use crate::web::{render, WebError};

pub const SESSION_COOKIE: &str = "kg_session";
/// Double-submit cookie protecting the forms shown before a session exists.
pub const PRE_CSRF_COOKIE: &str = "kg_csrf";

/// Remembers a browser that logged in, so that the login throttle tells its
/// attempts apart from an attacker's ([`throttle`]).
pub const DEVICE_COOKIE: &str = "kg_device";
/// How long a browser stays known after logging in.
pub const DEVICE_SECS: i64 = 180 * 86_400;

/// Sign-ups allowed per client address per [`SIGNUP_WINDOW_SECS`].
pub const MAX_SIGNUPS_PER_ADDR: i64 = 10;
pub const SIGNUP_WINDOW_SECS: i64 = 3_600;

/// argon2id with the server's memory cost (KiB).
fn argon2(memory_kib: u32) -> Argon2<'static> {
    let params = argon2::Params::new(memory_kib.max(8), 2, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub async fn hash_password(password: String, memory_kib: u32) -> Result<String, WebError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2(memory_kib)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(|| {
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not hash the password.",
        )
    })
}

/// Verifies a password against a stored PHC string (its own parameters apply).
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if state.config.cookies_secure() {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Where a request without a session goes: the login page, which after logging in
/// returns to the page that was asked for (a `GET`; a form sent without a session
/// is not replayed).
fn to_login(parts: &Parts) -> Response {
    if parts.method != axum::http::Method::GET {
        return Redirect::to("/login").into_response();
    }
    let asked = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    if after_login(asked) != asked {
        return Redirect::to("/login").into_response();
    }
    let next: String = form_urlencoded::byte_serialize(asked.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// The page to open after logging in: `next` when it is a path of this dashboard,
/// else the usage page. Never another site (`//host`, `/\host`, a scheme), never
/// the login, logout or sign-up pages.
pub fn after_login(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2_000
        // A URI is printable ASCII (a header value must be); anything else is made up.
        && next.bytes().all(|b| b.is_ascii_graphic())
        && !["/login", "/logout", "/signup"]
            .iter()
            .any(|p| next == *p || next.starts_with(&format!("{p}?")));
    if local {
        next
    } else {
        "/usage"
    }
}

/// A logged-in person: their session, resolved from the cookie.
pub struct CurrentUser(pub Session);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login(parts));
        };
        match sessions::get(&state.db, token, state.config.session_idle_secs).await {
            Ok(Some(s)) => Ok(CurrentUser(s)),
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

impl CurrentUser {
    /// Refuses an action the session's role does not allow. Pages hide the buttons
    /// a role cannot use; this is what holds when a form is sent anyway.
    pub fn require(&self, permission: Permission) -> Result<(), WebError> {
        if self.0.role.allows(permission) {
            return Ok(());
        }
        let who = match permission {
            Permission::Operate => "an admin or an owner",
            Permission::Administer => "an owner",
        };
        Err(WebError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Your role ({}) cannot do this; ask {who} of your organisation.",
                self.0.role
            ),
        ))
    }

    /// Refuses a state change whose form does not carry this session's CSRF token.
    pub fn check_csrf(&self, form: &Form) -> Result<(), WebError> {
        if constant_time_eq(form.get("csrf").as_bytes(), self.0.csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(WebError::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this dashboard. Reload the page and try again.",
            ))
        }
    }
}

/// A state change's form, sent by a logged-in session and carrying that
/// session's CSRF token: a handler that takes one cannot forget the check (the
/// role check, which differs by action, stays in the handler:
/// [`CurrentUser::require`]). Without a session it answers as [`CurrentUser`]
/// does; an unreadable body as [`FormBody`]; a missing or wrong token 403.
pub struct SessionForm(pub CurrentUser, pub Form);

impl FromRequest<AppState> for SessionForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let user = CurrentUser::from_request_parts(&mut parts, state).await?;
        let FormBody(bytes) = FormBody::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Form::parse(&bytes);
        user.check_csrf(&form)
            .map_err(IntoResponse::into_response)?;
        Ok(SessionForm(user, form))
    }
}

/// The client's IP address when the server knows it (not behind a test harness):
/// the peer, or what a trusted proxy says in `X-Forwarded-For` ([`crate::net`]).
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientAddr(UNKNOWN_ADDR.into()));
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(ClientAddr(
            crate::net::client_ip(peer.ip(), &forwarded, &state.config.trusted_proxies).to_string(),
        ))
    }
}

#[derive(askama::Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    csrf: &'a str,
    error: &'a str,
    org_name: &'a str,
    email: &'a str,
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: &'a str,
    email: &'a str,
    /// The page to return to ([`after_login`]), carried in the form.
    next: &'a str,
}

#[derive(askama::Template)]
#[template(path = "welcome.html")]
struct WelcomePage<'a> {
    nav: super::nav::Nav,
    api_key: &'a str,
}

/// Renders a pre-session form with a fresh double-submit CSRF cookie.
fn with_pre_csrf(
    state: &AppState,
    render_page: impl FnOnce(&str) -> Result<Response, WebError>,
) -> Result<Response, WebError> {
    let csrf = secrets::random_string(32);
    let mut res = render_page(&csrf)?;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, PRE_CSRF_COOKIE, &csrf, 3600, "Strict"),
    );
    Ok(res)
}

fn pre_csrf_ok(headers: &HeaderMap, form: &Form) -> bool {
    let cookie = cookie(headers, PRE_CSRF_COOKIE).unwrap_or("");
    !cookie.is_empty() && constant_time_eq(cookie.as_bytes(), form.get("csrf").as_bytes())
}

fn with_error(mut res: Response, status: StatusCode) -> Response {
    *res.status_mut() = status;
    res
}

pub async fn signup_page(State(state): State<AppState>) -> Result<Response, WebError> {
    with_pre_csrf(&state, |csrf| {
        render(&SignupPage {
            csrf,
            error: "",
            org_name: "",
            email: "",
        })
    })
}

pub async fn login_page(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    let next = after_login(q.get("next").map_or("", String::as_str));
    with_pre_csrf(&state, |csrf| {
        render(&LoginPage {
            csrf,
            error: "",
            email: "",
            next,
        })
    })
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

/// What a refused sign-up with valid fields says, whatever the reason.
pub const SIGNUP_REFUSED: &str =
    "No organisation was created with these details. If you already have an account, log in; otherwise try another email.";

/// `POST /signup`: creates the organisation, its owner and first API key, logs in,
/// and shows the key once.
pub async fn signup(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let org_name = form.get("org_name");
    let email = form.get("email").to_lowercase();
    let password = form.raw("password");
    let csrf_ok = pre_csrf_ok(&headers, &form);
    if csrf_ok && addr != UNKNOWN_ADDR {
        let at = now();
        let n = logins::count_signup(&state.db, &format!("a:{addr}"), at, at - SIGNUP_WINDOW_SECS)
            .await?;
        if n > MAX_SIGNUPS_PER_ADDR {
            tracing::warn!(client = %addr, "sign-up rate limit reached");
            return with_pre_csrf(&state, |csrf| {
                render(&SignupPage {
                    csrf,
                    error: "Too many sign-ups from your address. Try again in an hour.",
                    org_name,
                    email: &email,
                })
                .map(|r| with_error(r, StatusCode::TOO_MANY_REQUESTS))
            });
        }
    }
    let error = if !csrf_ok {
        "The form expired; please submit it again.".to_string()
    } else if org_name.is_empty() || org_name.len() > 100 {
        "Organisation name must be 1-100 characters.".to_string()
    } else if !valid_email(&email) {
        "Enter a valid email address.".to_string()
    } else {
        password::problem(password, &email).unwrap_or_default()
    };
    if !error.is_empty() {
        return with_pre_csrf(&state, |csrf| {
            render(&SignupPage {
                csrf,
                error: &error,
                org_name,
                email: &email,
            })
            .map(|r| with_error(r, StatusCode::BAD_REQUEST))
        });
    }
    let hash = hash_password(password.to_string(), state.config.argon2_memory_kib).await?;
    let created = match orgs::create_with_owner(&state.db, org_name, &email, &hash).await {
        Ok(c) => c,
        // Said without naming the email as taken: a sign-up form must not be a
        // way to learn who has an account (the password was hashed either way,
        // so the time taken does not tell either).
        Err(CreateError::EmailTaken) => {
            return with_pre_csrf(&state, |csrf| {
                render(&SignupPage {
                    csrf,
                    error: SIGNUP_REFUSED,
                    org_name,
                    email: &email,
                })
                .map(|r| with_error(r, StatusCode::BAD_REQUEST))
            });
        }
        Err(CreateError::Db(e)) => return Err(e.into()),
    };
    tracing::info!(org_id = %created.org_id, "organisation signed up");
    crate::store::admin_log::append(
        &state.db,
        &created.org_id,
        &crate::store::admin_log::Actor {
            id: created.user_id.clone(),
            email: email.clone(),
        },
        crate::store::admin_log::Action::OrgCreated,
        org_name,
        "signed up",
    )
    .await?;
    let token = sessions::create(&state.db, &created.user_id, &created.org_id).await?;
    let session = sessions::get(&state.db, &token, state.config.session_idle_secs)
        .await?
        .ok_or_else(|| {
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Session was not created.",
            )
        })?;
    let nav = super::nav::Nav::load(&state, &session, "keys").await?;
    let mut res = render(&WelcomePage {
        nav,
        api_key: &created.api_key,
    })?;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, SESSION_SECS, "Lax"),
    );
    Ok(res)
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let email = form.get("email").to_lowercase();
    let fail = |state: &AppState, error: &str, status: StatusCode| {
        with_pre_csrf(state, |csrf| {
            render(&LoginPage {
                csrf,
                error,
                email: &email,
                next: after_login(form.get("next")),
            })
            .map(|r| with_error(r, status))
        })
    };
    if !pre_csrf_ok(&headers, &form) {
        return fail(
            &state,
            "The form expired; please submit it again.",
            StatusCode::FORBIDDEN,
        );
    }
    let user = orgs::user_by_email(&state.db, &email).await?;
    let at = now();
    // A browser that logged in to this very account before is its own source:
    // failures from elsewhere never make it wait.
    let device = match (cookie(&headers, DEVICE_COOKIE), &user) {
        (Some(token), Some(u)) => logins::known_device(&state.db, token, &u.id, at).await?,
        _ => None,
    };
    let source = match device {
        Some(d) => Source::Device(d),
        None => Source::Address(addr.clone()),
    };
    if let Some(until) = throttle::wait_until(&state.db, &email, &source, at).await? {
        tracing::warn!(client = %addr, "login throttled");
        let wait = until - at;
        let mut res = fail(
            &state,
            &format!(
                "Too many failed attempts. Try again in {}.",
                crate::time_util::duration_words(wait)
            ),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        return Ok(res);
    }
    let typed = form.raw("password");
    let ok = match &user {
        // Longer than any password the Cloud sets: wrong, without hashing it.
        _ if typed.chars().count() > MAX_PASSWORD_LEN => false,
        Some(u) => {
            verify_password(typed.to_string(), u.password_hash.clone()).await
                // Passwords were once stored trimmed: an account made then still
                // logs in with what its owner typed.
                || (typed.trim() != typed
                    && verify_password(typed.trim().to_string(), u.password_hash.clone()).await)
        }
        None => {
            // Spend the same time as a real check so timing does not reveal accounts.
            let _ = hash_password(typed.to_string(), state.config.argon2_memory_kib).await;
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        throttle::failed(&state.db, &email, &source, at).await?;
        return fail(&state, "Wrong email or password.", StatusCode::UNAUTHORIZED);
    };
    throttle::succeeded(&state.db, &email, &source).await?;
    let new_device = match source {
        Source::Address(_) => Some(logins::add_device(&state.db, &user.id, at, DEVICE_SECS).await?),
        Source::Device(_) => None,
    };
    let token = sessions::create(&state.db, &user.id, &user.org_id).await?;
    let mut res = Redirect::to(after_login(form.get("next"))).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, SESSION_SECS, "Lax"),
    );
    if let Some(device) = new_device {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&state, DEVICE_COOKIE, &device, DEVICE_SECS, "Strict"),
        );
    }
    Ok(res)
}

#[derive(askama::Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    nav: super::nav::Nav,
}

/// `GET /logout` (a typed or bookmarked address): asks, since a GET must not change
/// anything (a link on another site could log people out).
pub async fn logout_page(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
) -> Result<Response, WebError> {
    let nav = super::nav::Nav::load(&state, &s, "").await?;
    render(&LogoutPage { nav })
}

/// `POST /logout`: deletes the session server-side and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    SessionForm(_user, _form): SessionForm,
) -> Result<Response, WebError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        sessions::delete(&state.db, token).await?;
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0, "Lax"),
    );
    Ok(res)
}

#[cfg(test)]
mod next_tests {
    use super::after_login;

    #[test]
    fn only_this_dashboards_pages_are_returned_to() {
        assert_eq!(after_login("/agent?id=a&days=7"), "/agent?id=a&days=7");
        assert_eq!(after_login("/audit"), "/audit");
        for foreign in [
            "",
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/login",
            "/logout",
            "/signup?x=1",
            "/usage\n",
            "/agent?id=α",
            "/a b",
        ] {
            assert_eq!(after_login(foreign), "/usage", "{foreign:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kg_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "zz"), None);
    }

    #[test]
    fn emails_need_an_at_and_a_domain() {
        assert!(valid_email("a@b.io"));
        assert!(!valid_email("ab.io"));
        assert!(!valid_email("a @b.io"));
    }
}
