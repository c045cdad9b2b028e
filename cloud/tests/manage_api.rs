//! The management API: scoped `kg_mgmt_` keys do what the dashboard does, with the
//! authorisation of their role, inside their organisation, into the admin log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{app, backends, between, event, Browser, Reply, TestApp};
use serde_json::{json, Value};

async fn call(app: &TestApp, method: &str, path: &str, key: &str, body: Option<Value>) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(format!("/api/v1/manage/{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    app.send(req).await
}

async fn manage_key(b: &mut Browser<'_>, name: &str, role: &str) -> String {
    let csrf = b.csrf().await;
    let r = b
        .post(
            "/keys/manage",
            &[("csrf", &csrf), ("name", name), ("role", role)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let key = between(&r.text(), "<code id=\"new-manage-key\">", "</code>");
    assert!(key.starts_with("kg_mgmt_"));
    key
}

#[tokio::test]
async fn an_admin_key_manages_tokens_keys_and_agents_and_is_logged() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, sidecar_key) = app.signup("Scripted").await;
        let admin = manage_key(&mut b, "ci deploy", "admin").await;
        assert!(!b.get("/keys").await.text().contains(&admin), "shown once");

        let r = call(
            &app,
            "POST",
            "tokens",
            &admin,
            Some(json!({"name": "ci bot", "agentId": "ci-bot", "capabilities": ["prompt:send", "prompt:send"], "ttlSecs": 3600})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text());
        let token = r.json()["token"].as_str().unwrap().to_owned();
        let listed = call(&app, "GET", "tokens", &admin, None).await.json();
        let t = &listed["tokens"][0];
        assert_eq!(
            (t["agentId"].as_str(), t["status"].as_str()),
            (Some("ci-bot"), Some("active"))
        );
        assert_eq!(t["capabilities"], json!(["prompt:send"]), "granted once");
        let id = t["id"].as_str().unwrap().to_owned();
        let r = call(&app, "POST", &format!("tokens/{id}/revoke"), &admin, None).await;
        assert_eq!(r.json(), json!({"revoked": true}));
        let license = app
            .api("/api/v1/license/validate", &sidecar_key, json!({}))
            .await
            .json();
        assert_eq!(
            license["revokedTokenHashes"],
            json!([kalguard_wire::token::token_hash(&token)])
        );
        assert_eq!(
            call(&app, "POST", &format!("tokens/{id}/revoke"), &admin, None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        for n in 0..2 {
            call(
                &app,
                "POST",
                "tokens",
                &admin,
                Some(json!({"name": format!("q{n}"), "agentId": "noisy", "capabilities": ["prompt:send"], "ttlSecs": 600})),
            )
            .await;
        }
        let r = call(
            &app,
            "POST",
            "agents/quarantine",
            &admin,
            Some(json!({"agentId": "noisy"})),
        )
        .await;
        assert_eq!(r.json(), json!({"revoked": 2}));

        let r = call(
            &app,
            "POST",
            "keys",
            &admin,
            Some(json!({"name": "new sidecar"})),
        )
        .await;
        let new_key = r.json()["key"].as_str().unwrap().to_owned();
        assert_eq!(
            app.api("/api/v1/license/validate", &new_key, json!({}))
                .await
                .status,
            StatusCode::OK
        );
        let keys = call(&app, "GET", "keys", &admin, None).await.json();
        let new_id = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "new sidecar")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        call(&app, "POST", &format!("keys/{new_id}/revoke"), &admin, None).await;
        assert_eq!(
            app.api("/api/v1/license/validate", &new_key, json!({}))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );

        let log = b.get("/admin-log").await.text();
        for action in [
            "manage_key.created",
            "token.created",
            "token.revoked",
            "agent.quarantined",
            "api_key.created",
            "api_key.revoked",
        ] {
            assert!(log.contains(action), "{url}: {action}");
        }
        assert!(
            log.contains("API key ci deploy (kg_mgmt_"),
            "{url}: the key is named as the actor"
        );
    }
}

#[tokio::test]
async fn a_viewer_key_reads_and_changes_nothing() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, sidecar_key) = app.signup("Readers").await;
        let viewer = manage_key(&mut b, "dashboard export", "viewer").await;
        let events: Vec<_> = (0..5)
            .map(|i| {
                event(
                    "bot",
                    if i < 3 { "allow" } else { "deny" },
                    &format!("r-{i}"),
                    Some("POLICY_DENY"),
                )
            })
            .collect();
        app.api(
            "/api/v1/usage/report",
            &sidecar_key,
            json!({"events": events}),
        )
        .await;
        let usage = call(&app, "GET", "usage?days=7", &viewer, None).await;
        assert_eq!(usage.status, StatusCode::OK);
        let usage = usage.json();
        assert_eq!(
            usage["total"],
            json!({"checks": 5, "allowed": 3, "denied": 2, "approval": 0}),
            "{url}"
        );
        assert_eq!(usage["days"].as_array().unwrap().len(), 7);
        assert_eq!(
            usage["byCode"][0],
            json!({"errorCode": "POLICY_DENY", "denied": 2, "approval": 0})
        );
        assert_eq!(
            call(&app, "GET", "usage?days=8", &viewer, None)
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call(&app, "GET", "keys", &viewer, None).await.status,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "GET", "tokens", &viewer, None).await.status,
            StatusCode::OK
        );
        for (method, path, body) in [
            (
                "POST",
                "tokens",
                Some(
                    json!({"name": "x", "agentId": "x", "capabilities": ["prompt:send"], "ttlSecs": 600}),
                ),
            ),
            ("POST", "agents/quarantine", Some(json!({"agentId": "bot"}))),
            ("POST", "keys", Some(json!({"name": "x"}))),
        ] {
            let r = call(&app, method, path, &viewer, body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{url}: {path}");
            assert_eq!(r.json()["error"]["code"], "FORBIDDEN");
            assert!(r.text().contains("viewer"));
        }
    }
}

#[tokio::test]
async fn sidecar_keys_other_orgs_and_bad_requests_are_refused() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, sidecar_key) = app.signup("Careful").await;
        let admin = manage_key(&mut b, "ops", "admin").await;
        // A sidecar key syncs; it never manages.
        let r = call(&app, "GET", "tokens", &sidecar_key, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json()["error"]["code"], "INVALID_API_KEY");
        assert_eq!(
            call(&app, "GET", "tokens", "", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        // Another organisation's token is not found with this key.
        let (mut other, _) = app.signup("Elsewhere").await;
        let theirs = manage_key(&mut other, "theirs", "admin").await;
        let r = call(
            &app,
            "POST",
            "tokens",
            &theirs,
            Some(json!({"name": "t", "agentId": "their-bot", "capabilities": ["prompt:send"], "ttlSecs": 600})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let their_id = call(&app, "GET", "tokens", &theirs, None).await.json()["tokens"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = call(
            &app,
            "POST",
            &format!("tokens/{their_id}/revoke"),
            &admin,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{url}");
        assert_eq!(
            call(&app, "GET", "tokens", &admin, None).await.json()["tokens"],
            json!([])
        );
        // Bad bodies get the API's JSON 400, naming what is wrong.
        let r = call(&app, "POST", "tokens", &admin, Some(json!({"name": "t"}))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("agentId"), "{}", r.text());
        let r = call(
            &app,
            "POST",
            "tokens",
            &admin,
            Some(json!({"name": "t", "agentId": "support-bot\u{200B}", "capabilities": ["prompt:send"], "ttlSecs": 600})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("U+200B"), "{}", r.text());
        let r = call(
            &app,
            "POST",
            "tokens",
            &admin,
            Some(json!({"name": "t", "agentId": "a", "capabilities": ["prompt:send"], "ttlSecs": 10})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        // Revoked: refused at once.
        let id = between(&b.get("/keys").await.text(), "data-manage-key-id=\"", "\"");
        let csrf = b.csrf().await;
        let r = b
            .post(&format!("/keys/manage/{id}/revoke"), &[("csrf", &csrf)])
            .await;
        assert!(
            r.text().contains("Revoke this management key?"),
            "asked first"
        );
        assert_eq!(
            call(&app, "GET", "tokens", &admin, None).await.status,
            StatusCode::OK
        );
        b.post(
            &format!("/keys/manage/{id}/revoke"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
        assert_eq!(
            call(&app, "GET", "tokens", &admin, None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn only_owners_create_management_keys_and_none_is_an_owner() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Owned").await;
        let (mut admin, _) = owner.add_member("admin").await;
        let csrf = admin.csrf().await;
        let r = admin
            .post(
                "/keys/manage",
                &[("csrf", &csrf), ("name", "mine"), ("role", "admin")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{url}");
        assert!(!admin
            .get("/keys")
            .await
            .text()
            .contains("id=\"add-manage-key\""));
        let csrf = owner.csrf().await;
        let r = owner
            .post(
                "/keys/manage",
                &[("csrf", &csrf), ("name", "root"), ("role", "owner")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}
