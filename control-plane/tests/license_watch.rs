//! The license channel: a control plane holds `GET /api/v1/license/watch` open
//! and validates its license the moment the Cloud says it changed, long before
//! its periodic sync; against a Cloud without the channel it keeps the periodic
//! sync alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{cloud_env, eventually, license, test_dir, ControlPlane, StandInCloud, SECRET_1};

/// A Cloud with the watch: `version` moves when the test changes the license.
struct WatchingCloud {
    license: Mutex<Value>,
    version: AtomicI64,
    changed: tokio::sync::Notify,
    validations: AtomicUsize,
    watches: AtomicUsize,
    /// Answer every watch at once, changed or not (a misbehaving proxy).
    hold: bool,
}

async fn validate(State(c): State<Arc<WatchingCloud>>, headers: HeaderMap) -> Response {
    assert_eq!(headers["x-api-key"], support::API_KEY);
    c.validations.fetch_add(1, Ordering::SeqCst);
    Json(c.license.lock().unwrap().clone()).into_response()
}

async fn watch(
    State(c): State<Arc<WatchingCloud>>,
    Query(q): Query<HashMap<String, i64>>,
) -> Response {
    c.watches.fetch_add(1, Ordering::SeqCst);
    let seen = q.get("version").copied();
    let changed = c.changed.notified();
    let current = c.version.load(Ordering::SeqCst);
    if c.hold && seen == Some(current) {
        let _ = tokio::time::timeout(Duration::from_secs(25), changed).await;
    }
    Json(json!({"version": c.version.load(Ordering::SeqCst)})).into_response()
}

async fn start_cloud(hold: bool) -> (Arc<WatchingCloud>, String, tokio::task::JoinHandle<()>) {
    let cloud = Arc::new(WatchingCloud {
        license: Mutex::new(license(SECRET_1, &[])),
        version: AtomicI64::new(7),
        changed: tokio::sync::Notify::new(),
        validations: AtomicUsize::new(0),
        watches: AtomicUsize::new(0),
        hold,
    });
    let app = Router::new()
        .route("/api/v1/license/validate", post(validate))
        .route("/api/v1/license/watch", get(watch))
        .route(
            "/api/v1/usage/report",
            post(|| async { Json(json!({"accepted": 0})) }),
        )
        .with_state(Arc::clone(&cloud));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (cloud, url, server)
}

#[tokio::test]
async fn a_revocation_reaches_the_snapshot_in_about_a_second_not_at_the_sync_interval() {
    let (cloud, url, server) = start_cloud(true).await;
    let dir = test_dir("license-watch");
    // The periodic sync is 10 minutes away for the whole test.
    let mut env = cloud_env(&url);
    env.push(("KALGUARD_CLOUD_SYNC_INTERVAL_MS", "600000".to_owned()));
    let cp = ControlPlane::start(&dir, &env).await;
    // The first watch answer after the start validates once more; let it pass.
    eventually(Duration::from_secs(5), "the watch is held", || async {
        cloud.watches.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(cp.snapshot().await["revokedTokenHashes"], json!([]));

    let hash = "ab".repeat(32);
    *cloud.license.lock().unwrap() = license(SECRET_1, &[&hash]);
    cloud.version.fetch_add(1, Ordering::SeqCst);
    let changed = Instant::now();
    cloud.changed.notify_waiters();
    eventually(
        Duration::from_secs(2),
        "the revocation in the snapshot",
        || async { cp.snapshot().await["revokedTokenHashes"] == json!([hash]) },
    )
    .await;
    let took = changed.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(cp.log_text().contains("the Cloud says the license changed"));
    server.abort();
}

#[tokio::test]
async fn a_watch_answered_at_once_without_a_change_does_not_spin() {
    let (cloud, url, server) = start_cloud(false).await;
    let dir = test_dir("license-watch-spin");
    let cp = ControlPlane::start(&dir, &cloud_env(&url)).await;
    let before = cloud.watches.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = cloud.watches.load(Ordering::SeqCst) - before;
    assert!(asked <= 4, "{asked} watches in 3 s");
    let validations = cloud.validations.load(Ordering::SeqCst);
    assert!(
        validations <= 3,
        "{validations} validations with nothing changed"
    );
    drop(cp);
    server.abort();
}

#[tokio::test]
async fn a_cloud_without_the_channel_leaves_the_periodic_sync_alone() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("license-watch-absent");
    let cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    eventually(Duration::from_secs(5), "the fallback is logged", || async {
        cp.log_text().contains("has no license watch channel")
    })
    .await;
    assert_eq!(cp.health().await["mode"], "cloud");
}
