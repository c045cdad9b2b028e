//! The license channel (`GET /api/v1/license/watch`): a held request answers the
//! moment the organisation's license changes, on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, app_with, backends, TestApp};
use kalguard_cloud::store::{keys, orgs, tokens};
use kalguard_cloud::{Config, Db};
use serde_json::json;

async fn watch(app: &TestApp, key: &str, version: Option<i64>) -> common::Reply {
    let path = match version {
        Some(v) => format!("/api/v1/license/watch?version={v}"),
        None => "/api/v1/license/watch".to_string(),
    };
    let req = Request::get(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    app.send(req).await
}

async fn version_now(app: &TestApp, key: &str) -> i64 {
    let r = watch(app, key, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["version"].as_i64().unwrap()
}

async fn new_token(app: &TestApp, org_id: &str, agent: &str) -> String {
    let org = orgs::get(&app.state.db, org_id).await.unwrap().unwrap();
    let new = tokens::NewToken {
        name: "bot".into(),
        agent_id: agent.into(),
        capabilities: vec!["prompt:send".into()],
        ttl_secs: 3600,
    };
    tokens::create(&app.state.db, &org, &new).await.unwrap()
}

/// Runs `change` 200 ms into a held watch and returns the watch's answer and how
/// long after the change it came.
async fn answer_after<F: std::future::Future<Output = ()>>(
    app: &TestApp,
    key: &str,
    seen: i64,
    change: F,
) -> (i64, Duration) {
    let held = watch(app, key, Some(seen));
    let changed = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        change.await;
        Instant::now()
    };
    let (reply, changed_at) = tokio::join!(held, changed);
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    (
        reply.json()["version"].as_i64().unwrap(),
        changed_at.elapsed(),
    )
}

#[tokio::test]
async fn a_held_watch_answers_the_moment_a_token_is_revoked() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        let token = new_token(&app, &org_id, "agent-1").await;
        let v0 = version_now(&app, &key).await;
        let id = tokens::list(&app.state.db, &org_id).await.unwrap()[0]
            .id
            .clone();
        let db = app.state.db.clone();
        let (v1, lag) = answer_after(&app, &key, v0, async {
            assert!(tokens::revoke(&db, &org_id, &id).await.unwrap());
        })
        .await;
        assert!(v1 > v0, "{url}: the version moved ({v0} -> {v1})");
        assert!(
            lag < Duration::from_millis(500),
            "{url}: answered {lag:?} after the revocation"
        );
        // What the caller validates next carries the revocation.
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(
            l["revokedTokenHashes"],
            json!([kalguard_wire::token::token_hash(&token)])
        );
        // A caller that missed the change (it sent an old version) hears at once.
        let started = Instant::now();
        assert_eq!(watch(&app, &key, Some(v0)).await.json()["version"], v1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test]
async fn quarantine_secret_rotation_plan_and_key_revocation_each_wake_the_watch() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        new_token(&app, &org_id, "agent-q").await;
        let db = app.state.db.clone();
        let mut seen = version_now(&app, &key).await;

        let (v, _) = answer_after(&app, &key, seen, async {
            assert_eq!(
                tokens::quarantine_agent(&db, &org_id, "agent-q")
                    .await
                    .unwrap(),
                1
            );
        })
        .await;
        assert!(v > seen, "{url}: quarantine");
        seen = v;
        let (v, _) = answer_after(&app, &key, seen, async {
            assert!(orgs::rotate_signing_secret(&db, &org_id, 600)
                .await
                .unwrap());
        })
        .await;
        assert!(v > seen, "{url}: secret rotation");
        seen = v;
        let (v, _) = answer_after(&app, &key, seen, async {
            assert!(
                orgs::set_plan(&db, &org_id, kalguard_cloud::plan::Plan::Pro)
                    .await
                    .unwrap()
            );
        })
        .await;
        assert!(v > seen, "{url}: plan change");
        seen = v;
        // A second key watches while the first is revoked: it wakes, and the
        // revoked key's next watch is refused like its validation.
        let second = keys::create(
            &db,
            &org_id,
            "second",
            kalguard_cloud::secrets::KeyMode::Live,
        )
        .await
        .unwrap();
        let first_id = keys::list(&db, &org_id)
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.name != "second")
            .unwrap()
            .id;
        let (v, _) = answer_after(&app, &second, seen, async {
            assert!(keys::revoke(&db, &org_id, &first_id).await.unwrap());
        })
        .await;
        assert!(v > seen, "{url}: key revocation");
        let refused = watch(&app, &key, Some(v)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused.json()["error"]["code"], "INVALID_API_KEY");
    }
}

#[tokio::test]
async fn another_organisations_change_wakes_no_one_and_the_hold_ends_unchanged() {
    for url in backends() {
        let config = Config {
            license_watch_secs: 1,
            ..Config::for_tests()
        };
        let app = app_with(&url, config).await;
        let (_, key) = app.org("Acme").await;
        let (other_id, _) = app.org("Other").await;
        new_token(&app, &other_id, "theirs").await;
        let seen = version_now(&app, &key).await;
        let db = app.state.db.clone();
        let started = Instant::now();
        let (v, _) = answer_after(&app, &key, seen, async {
            tokens::quarantine_agent(&db, &other_id, "theirs")
                .await
                .unwrap();
        })
        .await;
        assert_eq!(v, seen, "{url}: nothing changed for this organisation");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{url}: held for the configured second, not woken by the other org"
        );
    }
}

#[tokio::test]
async fn a_change_made_by_another_process_reaches_the_watch_within_the_poll() {
    for url in backends() {
        let app = app(&url).await;
        kalguard_cloud::license_changes::spawn_poll(app.state.db.clone());
        let (org_id, key) = app.org("Acme").await;
        // Another replica (or the command line): its own pool and its own hub.
        let elsewhere = Db::connect(&url).await.unwrap();
        let seen = version_now(&app, &key).await;
        let (v, lag) = answer_after(&app, &key, seen, async {
            assert!(
                orgs::set_plan(&elsewhere, &org_id, kalguard_cloud::plan::Plan::Enterprise)
                    .await
                    .unwrap()
            );
        })
        .await;
        assert!(v > seen, "{url}");
        assert!(lag < Duration::from_millis(2500), "{url}: {lag:?}");
    }
}

#[tokio::test]
async fn watch_errors_are_the_apis_json() {
    for url in backends() {
        let app = app(&url).await;
        let (_, key) = app.org("Acme").await;
        let r = watch(&app, "kg_live_nope", Some(1)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json()["error"]["code"], "INVALID_API_KEY");
        let req = Request::get("/api/v1/license/watch?version=soon")
            .header("x-api-key", &key)
            .body(Body::empty())
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version"));
        let req = Request::post("/api/v1/license/watch")
            .header("x-api-key", &key)
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.send(req).await.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
