//! Approvals relayed by control planes: filed over the API, decided once on the
//! dashboard by owners and admins (CSRF-checked, in the admin log), answered to
//! a held poll at once, settled by the control plane whose word wins, checked
//! and kept within the organisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, backends, csrf_of, Browser, TestApp};
use kalguard_cloud::time_util::now_ms;
use serde_json::{json, Value};

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A filing as the control plane relays it.
fn relayed(id: &str) -> Value {
    json!({"id": id, "request": {
        "nonce": format!("req_{id}.1"), "requestId": format!("req_{id}"),
        "agentId": "billing-bot", "action": "tool:execute", "route": "/mcp",
        "tool": "send_payment", "argumentsSha256": HASH, "ruleId": "payments",
        "policyVersion": "7", "reason": "payments need a human",
        "expiresAtMs": now_ms() + 120_000}})
}

async fn get(app: &TestApp, path: &str, key: &str) -> common::Reply {
    let req = Request::get(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    app.send(req).await
}

async fn outcome(app: &TestApp, id: &str, key: &str) -> Value {
    let r = get(app, &format!("/api/v1/approvals/{id}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// Approves (or denies) from the Approvals page as `b`, with its CSRF token.
async fn decide(
    b: &mut Browser<'_>,
    id: &str,
    verdict: &str,
    fields: &[(&str, &str)],
) -> common::Reply {
    let page = b.get("/approvals").await.text();
    let csrf = csrf_of(&page);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    b.post(&format!("/approvals/{id}/{verdict}"), &all).await
}

#[tokio::test]
async fn an_approval_decided_on_the_dashboard_answers_the_held_poll_once() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Relay").await;
        let filed = app.api("/api/v1/approvals", &key, relayed("ap_one")).await;
        assert_eq!(filed.status, StatusCode::OK, "{}", filed.text());
        // A retried filing changes nothing.
        let again = app.api("/api/v1/approvals", &key, relayed("ap_one")).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(
            outcome(&app, "ap_one", &key).await,
            json!({"status": "pending"})
        );

        let page = owner.get("/approvals").await.text();
        assert_eq!(
            page.matches("data-approval-id=\"ap_one\"").count(),
            1,
            "{page}"
        );
        for shown in [
            "billing-bot",
            "tool:execute send_payment",
            "payments need a human",
            &HASH[..16],
        ] {
            assert!(page.contains(shown), "{shown} not on the page");
        }

        // The control plane's poll is held, and answered the moment the owner approves.
        let started = Instant::now();
        let poll = get(&app, "/api/v1/approvals/ap_one?wait=20", &key);
        let approve = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            decide(&mut owner, "ap_one", "approve", &[("for_minutes", "10")]).await
        };
        let (polled, approved) = tokio::join!(poll, approve);
        assert_eq!(
            approved.location(),
            "/approvals?notice=approved",
            "{}",
            approved.text()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let polled = polled.json();
        assert_eq!(polled["status"], "approved");
        assert_eq!(polled["forMinutes"], 10);
        let email = polled["by"].as_str().unwrap().to_owned();
        assert!(email.ends_with("@relay.test"), "{email}");

        // Decided: neither verdict lands again.
        for verdict in ["approve", "deny"] {
            let r = decide(&mut owner, "ap_one", verdict, &[]).await;
            assert_eq!(r.location(), "/approvals?notice=approval_gone");
        }
        assert_eq!(outcome(&app, "ap_one", &key).await["status"], "approved");
        // The control plane confirms what it took: nothing changes.
        let settled = app
            .api(
                "/api/v1/approvals/ap_one/settle",
                &key,
                json!({"status": "approved", "by": format!("{email} (Cloud)")}),
            )
            .await;
        assert_eq!(settled.status, StatusCode::OK, "{}", settled.text());
        let page = owner.get("/approvals").await.text();
        assert!(
            page.contains("approved, and the same calls for 10 minutes"),
            "{page}"
        );
        assert!(page.contains(&format!("{email} (Cloud)")), "{page}");
        assert!(page.contains("Nothing is waiting for a decision."));

        // Who, what, when: in the admin log.
        let log = owner.get("/admin-log").await.text();
        assert!(log.contains("approval.approved"), "{log}");
        assert!(log.contains("ap_one"));
        assert!(log.contains("agent billing-bot, tool:execute send_payment, rule payments"));
        assert!(log.contains("for 10 minutes"));
    }
}

#[tokio::test]
async fn viewers_read_approvals_admins_deny_and_every_decision_needs_the_csrf_token() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Roles").await;
        assert_eq!(
            app.api("/api/v1/approvals", &key, relayed("ap_two"))
                .await
                .status,
            StatusCode::OK
        );
        let (mut viewer, _) = owner.add_member("viewer").await;
        let (mut admin, admin_email) = owner.add_member("admin").await;

        let page = viewer.get("/approvals").await.text();
        assert!(page.contains("data-approval-id=\"ap_two\""));
        assert!(
            !page.contains("/approvals/ap_two/approve"),
            "a viewer gets no buttons"
        );
        let r = decide(&mut viewer, "ap_two", "approve", &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        // Without this session's token, nobody decides.
        for (b, csrf) in [(&mut owner, ""), (&mut admin, "forged")] {
            let r = b.post("/approvals/ap_two/approve", &[("csrf", csrf)]).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
        assert_eq!(outcome(&app, "ap_two", &key).await["status"], "pending");
        // A standing grant is 1 to 1440 minutes.
        for bad in ["0", "1441", "ten"] {
            let r = decide(&mut admin, "ap_two", "approve", &[("for_minutes", bad)]).await;
            assert_eq!(r.location(), "/approvals?notice=bad_minutes");
        }
        assert_eq!(outcome(&app, "ap_two", &key).await["status"], "pending");

        let r = decide(
            &mut admin,
            "ap_two",
            "deny",
            &[("reason", "not this vendor\u{202E}")],
        )
        .await;
        assert_eq!(r.location(), "/approvals?notice=denied");
        let denied = outcome(&app, "ap_two", &key).await;
        assert_eq!(denied["status"], "denied");
        assert_eq!(denied["by"], admin_email.as_str());
        assert_eq!(
            denied["reason"], "not this vendor",
            "hidden characters dropped"
        );
        let log = owner.get("/admin-log").await.text();
        assert!(log.contains("approval.denied") && log.contains("reason: not this vendor"));
    }
}

#[tokio::test]
async fn the_control_planes_word_settles_an_approval_and_outlasts_a_late_dashboard_decision() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Settle").await;
        // Decided with the CLI on the control plane: the dashboard can no longer decide it.
        assert_eq!(
            app.api("/api/v1/approvals", &key, relayed("ap_cli"))
                .await
                .status,
            StatusCode::OK
        );
        let settle = |id: &str, body: Value| {
            let path = format!("/api/v1/approvals/{id}/settle");
            let app = &app;
            let key = key.clone();
            async move { app.api(&path, &key, body).await }
        };
        let r = settle(
            "ap_cli",
            json!({"status": "denied", "by": "bob", "reason": "no"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = decide(&mut owner, "ap_cli", "approve", &[]).await;
        assert_eq!(r.location(), "/approvals?notice=approval_gone");
        let page = owner.get("/approvals").await.text();
        assert!(page.contains("bob (control plane)"), "{page}");

        // Approved here, but the control plane had let it expire: its word stands,
        // and the late decision is kept in the reason.
        assert_eq!(
            app.api("/api/v1/approvals", &key, relayed("ap_late"))
                .await
                .status,
            StatusCode::OK
        );
        decide(&mut owner, "ap_late", "approve", &[]).await;
        settle("ap_late", json!({"status": "expired"})).await;
        let late = outcome(&app, "ap_late", &key).await;
        assert_eq!(late["status"], "expired");
        assert!(
            late["reason"].as_str().unwrap().contains("approved by")
                && late["reason"].as_str().unwrap().contains("came after"),
            "{late}"
        );
        // A settle must say how it ended.
        let r = settle("ap_late", json!({"status": "pending"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = settle("ap_nope", json!({"status": "expired"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Past its expiry a pending approval reads as expired and cannot be decided.
        let mut old = relayed("ap_old");
        old["request"]["expiresAtMs"] = json!(now_ms() - 1);
        assert_eq!(
            app.api("/api/v1/approvals", &key, old).await.status,
            StatusCode::OK
        );
        assert_eq!(outcome(&app, "ap_old", &key).await["status"], "expired");
        let r = decide(&mut owner, "ap_old", "approve", &[]).await;
        assert_eq!(r.location(), "/approvals?notice=approval_gone");
    }
}

#[tokio::test]
async fn filings_are_checked_and_stay_in_their_organisation() {
    for url in backends() {
        let app = app(&url).await;
        let (_, key) = app.signup("Mine").await;
        let (mut other_owner, other_key) = app.signup("Theirs").await;
        for (field, value) in [
            ("tool", json!("send_payment\u{202E}")),
            ("agentId", json!("billing-bot\u{200B}")),
            ("reason", json!("line\nbreak")),
            ("argumentsSha256", json!("ABC")),
            ("requestId", json!("")),
            ("model", json!("x".repeat(1025))),
        ] {
            let mut bad = relayed("ap_bad");
            bad["request"][field] = value;
            let r = app.api("/api/v1/approvals", &key, bad).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text());
        }
        let mut bad_id = relayed("x");
        bad_id["id"] = json!("../ap_1");
        assert_eq!(
            app.api("/api/v1/approvals", &key, bad_id).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            app.api("/api/v1/approvals", "kg_live_nope", relayed("ap_x"))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        let r = get(&app, "/api/v1/approvals/ap_mine?wait=soon", &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        assert_eq!(
            app.api("/api/v1/approvals", &key, relayed("ap_mine"))
                .await
                .status,
            StatusCode::OK
        );
        // Another organisation's key and members find nothing.
        assert_eq!(
            get(&app, "/api/v1/approvals/ap_mine", &other_key)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let r = app
            .api(
                "/api/v1/approvals/ap_mine/settle",
                &other_key,
                json!({"status": "denied"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(!other_owner
            .get("/approvals")
            .await
            .text()
            .contains("ap_mine"));
        let r = decide(&mut other_owner, "ap_mine", "approve", &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(outcome(&app, "ap_mine", &key).await["status"], "pending");
    }
}
