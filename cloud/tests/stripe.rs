//! Stripe webhooks: signature, once-only processing, ordering by `created`, and the
//! plan reaching the license.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app_with, backends, TestApp};
use kalguard_cloud::secrets::random_string;
use kalguard_cloud::stripe::sign;
use kalguard_cloud::time_util::now;
use kalguard_cloud::Config;
use serde_json::{json, Value};

const SECRET: &str = "whsec_test_secret";

fn config() -> Config {
    Config {
        stripe_webhook_secret: Some(SECRET.into()),
        stripe_prices: "price_pro=pro,price_ent=enterprise".into(),
        ..Config::for_tests()
    }
}

async fn deliver(app: &TestApp, event: &Value, signature: Option<String>) -> common::Reply {
    let body = event.to_string();
    let sig = signature.unwrap_or_else(|| sign(body.as_bytes(), SECRET, now()));
    let req = Request::post("/api/v1/stripe/webhook")
        .header("stripe-signature", sig)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

fn evt(kind: &str, created: i64, object: Value) -> Value {
    json!({"id": format!("evt_{}", random_string(16)), "type": kind, "created": created, "data": {"object": object}})
}

fn subscription(customer: &str, price: &str, status: &str) -> Value {
    json!({"id": "sub_1", "object": "subscription", "customer": customer, "status": status,
           "items": {"data": [{"price": {"id": price}}]}})
}

async fn tier(app: &TestApp, key: &str) -> String {
    app.api("/api/v1/license/validate", key, json!({}))
        .await
        .json()["tier"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn checkout_then_subscription_events_change_the_plan_in_order() {
    for url in backends() {
        let app = app_with(&url, config()).await;
        let (org_id, key) = app.org("Acme").await;
        let customer = format!("cus_{}", random_string(10));
        let t = now() - 100;

        let r = deliver(&app, &evt("checkout.session.completed", t, json!({"client_reference_id": org_id, "customer": customer, "subscription": "sub_1", "metadata": {"plan": "pro"}})), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(tier(&app, &key).await, "pro");

        let r = deliver(
            &app,
            &evt(
                "customer.subscription.updated",
                t + 10,
                subscription(&customer, "price_ent", "active"),
            ),
            None,
        )
        .await;
        assert_eq!(r.json()["outcome"], "plan updated");
        assert_eq!(tier(&app, &key).await, "enterprise");

        // An older event delivered late does not undo the newer one.
        let r = deliver(
            &app,
            &evt(
                "customer.subscription.created",
                t + 5,
                subscription(&customer, "price_pro", "active"),
            ),
            None,
        )
        .await;
        assert_eq!(
            r.json()["outcome"],
            "ignored: older than the event that set the plan"
        );
        assert_eq!(tier(&app, &key).await, "enterprise");

        let r = deliver(
            &app,
            &evt(
                "invoice.payment_failed",
                t + 20,
                json!({"customer": customer}),
            ),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = deliver(
            &app,
            &evt("invoice.paid", t + 21, json!({"customer": customer})),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);

        let r = deliver(
            &app,
            &evt(
                "customer.subscription.deleted",
                t + 30,
                subscription(&customer, "price_ent", "canceled"),
            ),
            None,
        )
        .await;
        assert_eq!(r.json()["outcome"], "plan updated");
        assert_eq!(tier(&app, &key).await, "free");

        // Each plan Stripe set is in the admin log, in order; the late older event
        // that changed nothing is not.
        let log = kalguard_cloud::store::admin_log::page(&app.state.db, &org_id, None, 50)
            .await
            .unwrap();
        let plans: Vec<(&str, &str, &str)> = log
            .iter()
            .rev()
            .filter(|e| e.action == "billing.plan_changed")
            .map(|e| (e.actor_email.as_str(), e.target.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(plans.len(), 3, "{plans:?}");
        assert!(plans.iter().all(|(who, _, _)| *who == "Stripe (webhook)"));
        assert_eq!(
            plans.iter().map(|(_, plan, _)| *plan).collect::<Vec<_>>(),
            ["pro", "enterprise", "free"]
        );
        assert!(
            plans[2].2.contains("(customer.subscription.deleted)"),
            "{plans:?}"
        );
    }
}

#[tokio::test]
async fn each_event_id_is_processed_once() {
    for url in backends() {
        let app = app_with(&url, config()).await;
        let (org_id, key) = app.org("Acme").await;
        let customer = format!("cus_{}", random_string(10));
        deliver(
            &app,
            &evt(
                "checkout.session.completed",
                now() - 50,
                json!({"client_reference_id": org_id, "customer": customer}),
            ),
            None,
        )
        .await;
        let upgrade = evt(
            "customer.subscription.updated",
            now() - 40,
            subscription(&customer, "price_pro", "active"),
        );
        assert_eq!(
            deliver(&app, &upgrade, None).await.json()["outcome"],
            "plan updated"
        );
        // Manually move the org back, then replay the same event ID: nothing happens.
        kalguard_cloud::store::orgs::set_plan(
            &app.state.db,
            &org_id,
            kalguard_cloud::plan::Plan::Free,
        )
        .await
        .unwrap();
        let r = deliver(&app, &upgrade, None).await;
        assert_eq!(r.json()["duplicate"], true);
        assert_eq!(tier(&app, &key).await, "free");
    }
}

#[tokio::test]
async fn bad_signatures_are_refused_and_change_nothing() {
    for url in backends() {
        let app = app_with(&url, config()).await;
        let (org_id, key) = app.org("Acme").await;
        let customer = format!("cus_{}", random_string(10));
        let e = evt(
            "checkout.session.completed",
            now(),
            json!({"client_reference_id": org_id, "customer": customer, "metadata": {"plan": "enterprise"}}),
        );
        let body = e.to_string();
        let cases = [
            String::new(),
            "t=123".to_string(),
            sign(body.as_bytes(), "whsec_wrong", now()),
            sign(body.as_bytes(), SECRET, now() - 301),
            sign(b"{}", SECRET, now()),
        ];
        for sig in cases {
            let r = deliver(&app, &e, Some(sig.clone())).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{sig}");
            assert_eq!(r.json()["error"]["code"], "BAD_SIGNATURE");
        }
        assert_eq!(tier(&app, &key).await, "free");
        // The same event, correctly signed, is still processed (it was never recorded).
        let r = deliver(&app, &e, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["outcome"], "plan set from checkout", "{url}");
        assert_eq!(tier(&app, &key).await, "enterprise");
    }
}

#[tokio::test]
async fn without_a_webhook_secret_webhooks_are_refused() {
    for url in backends() {
        let app = common::app(&url).await;
        let r = deliver(&app, &evt("invoice.paid", now(), json!({})), None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("STRIPE_WEBHOOK_SECRET"));
    }
}

#[tokio::test]
async fn events_for_unknown_customers_or_unmapped_prices_are_ignored() {
    for url in backends() {
        let app = app_with(&url, config()).await;
        let (org_id, key) = app.org("Acme").await;
        let r = deliver(
            &app,
            &evt(
                "customer.subscription.updated",
                now(),
                subscription("cus_nobody", "price_pro", "active"),
            ),
            None,
        )
        .await;
        assert_eq!(r.json()["outcome"], "ignored: unknown customer");
        let customer = format!("cus_{}", random_string(10));
        deliver(
            &app,
            &evt(
                "checkout.session.completed",
                now() - 5,
                json!({"client_reference_id": org_id, "customer": customer}),
            ),
            None,
        )
        .await;
        let r = deliver(
            &app,
            &evt(
                "customer.subscription.updated",
                now(),
                subscription(&customer, "price_unknown", "active"),
            ),
            None,
        )
        .await;
        assert!(r.json()["outcome"]
            .as_str()
            .unwrap()
            .starts_with("ignored: price not mapped"));
        assert_eq!(tier(&app, &key).await, "free");
    }
}

#[tokio::test]
async fn a_customer_cannot_be_moved_to_another_org_by_a_checkout_event() {
    for url in backends() {
        let app = app_with(&url, config()).await;
        let (alice, alice_key) = app.org("Alice").await;
        let (mallory, mallory_key) = app.org("Mallory").await;
        let customer = format!("cus_{}", random_string(10));
        deliver(
            &app,
            &evt(
                "checkout.session.completed",
                now() - 10,
                json!({"client_reference_id": alice, "customer": customer}),
            ),
            None,
        )
        .await;
        let r = deliver(&app, &evt("checkout.session.completed", now() - 5, json!({"client_reference_id": mallory, "customer": customer, "metadata": {"plan": "pro"}})), None).await;
        assert_eq!(
            r.json()["outcome"],
            "ignored: customer belongs to another organisation"
        );
        deliver(
            &app,
            &evt(
                "customer.subscription.updated",
                now(),
                subscription(&customer, "price_pro", "active"),
            ),
            None,
        )
        .await;
        assert_eq!(tier(&app, &alice_key).await, "pro");
        assert_eq!(tier(&app, &mallory_key).await, "free");
    }
}

/// A stand-in for the Stripe API on loopback: records each request's path,
/// authorization and form, answers with a session URL.
async fn fake_stripe() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
) {
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let handler = move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
        let record = record.clone();
        async move {
            let auth = headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            record
                .lock()
                .unwrap()
                .push((uri.path().to_string(), auth, body));
            if uri.path().contains("billing_portal") {
                axum::Json(
                    json!({"id": "bps_1", "url": "https://billing.stripe.test/session/bps_1"}),
                )
            } else {
                axum::Json(json!({"id": "cs_1", "url": "https://checkout.stripe.test/c/pay/cs_1"}))
            }
        }
    };
    let app = axum::Router::new()
        .route("/v1/checkout/sessions", post(handler.clone()))
        .route("/v1/billing_portal/sessions", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn upgrade_goes_through_checkout_and_manage_through_the_portal() {
    let (base, seen) = fake_stripe().await;
    for url in backends() {
        seen.lock().unwrap().clear();
        let config = Config {
            stripe_secret_key: Some("sk_test_123".into()),
            stripe_api_base: base.clone(),
            public_url: "https://cloud.example.test".into(),
            ..config()
        };
        let app = app_with(&url, config).await;
        let (mut b, key) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let page = b.get("/billing").await.text();
        assert!(page.contains("id=\"upgrade-pro\"") && page.contains("id=\"upgrade-enterprise\""));

        let r = b
            .post("/billing/checkout", &[("csrf", &csrf), ("plan", "pro")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(r.location(), "https://checkout.stripe.test/c/pay/cs_1");
        let (path, auth, form) = seen.lock().unwrap()[0].clone();
        assert_eq!(path, "/v1/checkout/sessions");
        assert_eq!(auth, "Bearer sk_test_123");
        let form: std::collections::HashMap<String, String> =
            form_urlencoded::parse(form.as_bytes())
                .into_owned()
                .collect();
        let org_id = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json()["orgId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(form["mode"], "subscription");
        assert_eq!(form["line_items[0][price]"], "price_pro");
        assert_eq!(form["client_reference_id"], org_id);
        assert_eq!(form["metadata[plan]"], "pro");
        assert_eq!(
            form["success_url"],
            "https://cloud.example.test/billing?notice=checkout_done"
        );

        // No customer yet: the portal explains.
        let r = b.post("/billing/portal", &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("upgrade first"));

        // Stripe confirms: the webhook links the customer and sets the plan.
        let customer = format!("cus_{}", random_string(10));
        deliver(&app, &evt("checkout.session.completed", now(), json!({"client_reference_id": org_id, "customer": customer, "subscription": "sub_9", "metadata": {"plan": "pro"}})), None).await;
        assert_eq!(tier(&app, &key).await, "pro");
        let page = b.get("/billing").await.text();
        assert!(page.contains("<strong id=\"current-plan\">pro</strong>"));
        assert!(page.contains("id=\"billing-portal\""));
        let r = b.post("/billing/portal", &[("csrf", &csrf)]).await;
        assert_eq!(r.location(), "https://billing.stripe.test/session/bps_1");
        let (path, _, form) = seen.lock().unwrap().last().unwrap().clone();
        assert_eq!(path, "/v1/billing_portal/sessions");
        assert!(form.contains(&format!("customer={customer}")));

        // A plan without a configured price is refused with a reason.
        let r = b
            .post("/billing/checkout", &[("csrf", &csrf), ("plan", "free")])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r
            .text()
            .contains("No Stripe price is configured for the free plan"));
    }
}

#[tokio::test]
async fn checkout_without_stripe_configured_says_so() {
    for url in backends() {
        let app = app_with(&url, config()).await;
        let (mut b, _) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        assert!(b
            .get("/billing")
            .await
            .text()
            .contains("Stripe is not configured"));
        let r = b
            .post("/billing/checkout", &[("csrf", &csrf), ("plan", "pro")])
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.text().contains("STRIPE_SECRET_KEY"));
    }
}
