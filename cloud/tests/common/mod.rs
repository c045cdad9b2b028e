//! Test harness: the Cloud's router on a fresh SQLite file and, when
//! `KALGUARD_TEST_POSTGRES_URL` is set, on Postgres too; requests go through the
//! router in-process (no sockets), with a tiny cookie jar for dashboard flows.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use kalguard_cloud::{router, AppState, Config, Db};
use serde_json::Value;
use tower::ServiceExt;

/// Database URLs every backend-dependent test runs against.
pub fn backends() -> Vec<String> {
    let dir = std::env::temp_dir().join(format!(
        "kalguard-cloud-test-{}-{}",
        std::process::id(),
        kalguard_cloud::secrets::random_string(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut urls = vec![format!(
        "sqlite://{}?mode=rwc",
        dir.join("cloud.db").display()
    )];
    match std::env::var("KALGUARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => urls.push(url),
        _ => eprintln!("note: KALGUARD_TEST_POSTGRES_URL is unset; this test ran on SQLite only"),
    }
    urls
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub url: String,
}

pub async fn app(url: &str) -> TestApp {
    app_with(url, Config::for_tests()).await
}

pub async fn app_with(url: &str, config: Config) -> TestApp {
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let state = AppState::new(db, config);
    TestApp {
        router: router(state.clone()),
        state,
        url: url.to_string(),
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl TestApp {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `POST` JSON to the API with an API key.
    pub async fn api(&self, path: &str, key: &str, body: Value) -> Reply {
        let req = Request::post(path)
            .header("x-api-key", key)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    /// Creates an organisation the way `org create` does; returns (org_id, api key).
    pub async fn org(&self, name: &str) -> (String, String) {
        let email = format!(
            "{}@{}.test",
            kalguard_cloud::secrets::random_string(10).to_lowercase(),
            name.to_lowercase()
        );
        let created =
            kalguard_cloud::store::orgs::create_with_owner(&self.state.db, name, &email, "x")
                .await
                .unwrap();
        (created.org_id, created.api_key)
    }

    /// Signs up through the dashboard; returns the logged-in browser and the first key.
    pub async fn signup(&self, org: &str) -> (Browser<'_>, String) {
        let mut b = Browser {
            app: self,
            cookies: Vec::new(),
        };
        let page = b.get("/signup").await;
        let csrf = csrf_of(&page.text());
        let email = format!(
            "{}@{}.test",
            kalguard_cloud::secrets::random_string(10).to_lowercase(),
            org.to_lowercase()
        );
        let r = b
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("org_name", org),
                    ("email", &email),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let key = between(&r.text(), "<code id=\"new-api-key\">", "</code>");
        assert!(key.starts_with("kg_live_"), "{key}");
        (b, key)
    }
}

/// The value of the first CSRF hidden field in a page.
pub fn csrf_of(html: &str) -> String {
    between(html, "name=\"csrf\" value=\"", "\"")
}

pub fn between(s: &str, start: &str, end: &str) -> String {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page: {s}"))
        + start.len();
    let j = s[i..].find(end).unwrap() + i;
    s[i..j].to_string()
}

/// A cookie-keeping client for the dashboard.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: Vec<(String, String)>,
}

impl Browser<'_> {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, r: &Reply) {
        for v in r.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !val.is_empty() {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = Request::get(path)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        let r = self.app.send(req).await;
        self.keep_cookies(&r);
        r
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let req = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let r = self.app.send(req).await;
        self.keep_cookies(&r);
        r
    }

    /// The session's CSRF token (from any logged-in page).
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/keys").await;
        csrf_of(&page.text())
    }
}

/// A usage event as a sidecar sends it.
pub fn event(agent: &str, decision: &str, request_id: &str, code: Option<&str>) -> Value {
    let mut e = serde_json::json!({
        "eventType": "prompt_check",
        "agentId": agent,
        "decision": decision,
        "timestamp": kalguard_cloud::time_util::rfc3339(kalguard_cloud::time_util::now()),
        "requestId": request_id,
    });
    if let Some(c) = code {
        e["metadata"] = serde_json::json!({ "errorCode": c });
    }
    e
}

/// The password every test member gets.
pub const MEMBER_PASSWORD: &str = "member password 1";

impl TestApp {
    /// A browser with no cookies yet.
    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookies: Vec::new(),
        }
    }

    /// Logs in through the form; returns the browser and the login's reply.
    pub async fn login(&self, email: &str, password: &str) -> (Browser<'_>, Reply) {
        let mut b = self.browser();
        let csrf = csrf_of(&b.get("/login").await.text());
        let r = b
            .post(
                "/login",
                &[("csrf", &csrf), ("email", email), ("password", password)],
            )
            .await;
        (b, r)
    }
}

impl<'a> Browser<'a> {
    /// Adds a member with `role` (as this owner) and logs them in; returns their
    /// browser and email.
    pub async fn add_member(&mut self, role: &str) -> (Browser<'a>, String) {
        let email = format!(
            "{}@member.test",
            kalguard_cloud::secrets::random_string(10).to_lowercase()
        );
        let csrf = self.csrf().await;
        let r = self
            .post(
                "/members",
                &[
                    ("csrf", &csrf),
                    ("email", &email),
                    ("password", MEMBER_PASSWORD),
                    ("role", role),
                ],
            )
            .await;
        assert_eq!(r.location(), "/members?notice=member_added", "{}", r.text());
        let (b, r) = self.app.login(&email, MEMBER_PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        (b, email)
    }

    /// The ID of a member, from the members page.
    pub async fn member_id(&mut self, email: &str) -> String {
        let page = self.get("/members").await.text();
        let at = page
            .find(&format!("<td class=\"wrap\">{email}</td>"))
            .unwrap();
        between(
            &page[page[..at].rfind("data-member-id=").unwrap()..],
            "data-member-id=\"",
            "\"",
        )
    }
}

impl Browser<'_> {
    /// `POST`s a form as if from `peer` (the socket address the server sees),
    /// with an `X-Forwarded-For` header when given.
    pub async fn post_from(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        peer: &str,
        forwarded_for: Option<&str>,
    ) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        let mut req = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .extension(axum::extract::ConnectInfo(peer));
        if let Some(xff) = forwarded_for {
            req = req.header("x-forwarded-for", xff);
        }
        let r = self.app.send(req.body(Body::from(body)).unwrap()).await;
        self.keep_cookies(&r);
        r
    }

    /// Logs in through the form from `peer` (see [`Browser::post_from`]).
    pub async fn login_from(
        &mut self,
        email: &str,
        password: &str,
        peer: &str,
        forwarded_for: Option<&str>,
    ) -> Reply {
        let csrf = csrf_of(&self.get("/login").await.text());
        self.post_from(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
            peer,
            forwarded_for,
        )
        .await
    }
}
