//! Logging in returns to the page that was asked for, and only to a page of this
//! dashboard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{app, backends, between, csrf_of};

#[tokio::test]
async fn login_returns_to_the_page_asked_for_and_nowhere_else() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Back").await;
        let (_, email) = owner.add_member("viewer").await;
        let mut b = app.browser();
        let r = b.get("/agent?id=bot-1&days=7").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), "/login?next=%2Fagent%3Fid%3Dbot-1%26days%3D7");
        let page = b.get(r.location()).await.text();
        assert_eq!(
            between(&page, "name=\"next\" value=\"", "\""),
            "/agent?id=bot-1&amp;days=7"
        );
        let login = |next: &'static str| {
            let app = &app;
            let email = email.clone();
            async move {
                let mut b = app.browser();
                let csrf = csrf_of(&b.get("/login").await.text());
                b.post(
                    "/login",
                    &[
                        ("csrf", csrf.as_str()),
                        ("email", email.as_str()),
                        ("password", common::MEMBER_PASSWORD),
                        ("next", next),
                    ],
                )
                .await
                .location()
                .to_owned()
            }
        };
        assert_eq!(
            login("/agent?id=bot-1&days=7").await,
            "/agent?id=bot-1&days=7",
            "{url}"
        );
        for foreign in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/logout",
            "",
        ] {
            assert_eq!(login(foreign).await, "/usage", "{url}: {foreign:?}");
        }
        // A form posted without a session is not replayed after logging in.
        assert_eq!(b.post("/keys", &[("name", "x")]).await.location(), "/login");
    }
}
