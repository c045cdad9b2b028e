//! Benchmark (not a test): usage ingestion events/s, license-validate latency, and
//! dashboard page latency with 1,000,000 events across 90 days and 50 agents.
//!
//! `cargo run --release -p kalguard-cloud --example bench [-- DATABASE_URL]`
//! (default: a fresh SQLite file). Requests go through the real router and
//! handlers in-process (JSON, auth, SQL), without TCP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use kalguard_cloud::store::usage::{self, Event};
use kalguard_cloud::store::{orgs, sessions};
use kalguard_cloud::time_util::now;
use kalguard_cloud::{router, AppState, Config, Db};
use serde_json::json;
use tower::ServiceExt;

async fn call(app: &axum::Router, req: Request<Body>) -> (u16, usize) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, body.len())
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        let dir = std::env::temp_dir().join(format!("kalguard-cloud-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        format!("sqlite://{}?mode=rwc", dir.join("cloud.db").display())
    });
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    println!("backend: {:?}", db.backend);
    let state = AppState::new(db.clone(), Config::for_tests());
    let app = router(state);
    let created = orgs::create_with_owner(&db, "Bench", &format!("bench{}@bench.test", now()), "x")
        .await
        .unwrap();
    let key = created.api_key.clone();

    // 1. Ingestion through POST /api/v1/usage/report, batches of 100, 4 in flight:
    //    first as one sidecar per agent sends them, then with 50 agents mixed in each batch.
    for (label, agents_per_batch) in [("one agent per batch", 1), ("50 agents per batch", 50)] {
        let batches = 1_000;
        let started = Instant::now();
        let mut handles = Vec::new();
        for worker in 0..4 {
            let app = app.clone();
            let key = key.clone();
            handles.push(tokio::spawn(async move {
                for b in (worker..batches).step_by(4) {
                    let events: Vec<_> = (0..100)
                        .map(|i| {
                            let agent = if agents_per_batch == 1 { b % 50 } else { i % 50 };
                            json!({"eventType": "prompt_check", "agentId": format!("agent-{agent}"),
                                   "decision": if i % 7 == 0 { "deny" } else { "allow" },
                                   "errorCode": "PROMPT_BLOCKED",
                                   "timestamp": (now() - 60) * 1000,
                                   "requestId": format!("ing-{agents_per_batch}-{b}-{i}")})
                        })
                        .collect();
                    let body = json!({"batchId": format!("batch-{agents_per_batch}-{b}"), "events": events})
                        .to_string();
                    let req = Request::post("/api/v1/usage/report")
                        .header("x-api-key", &key)
                        .header("content-type", "application/json")
                        .body(Body::from(body))
                        .unwrap();
                    assert_eq!(call(&app, req).await.0, 200);
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "ingestion ({label}): {} events in {secs:.2} s = {:.0} events/s (batches of 100, 4 concurrent)",
            batches * 100,
            (batches * 100) as f64 / secs
        );
    }

    // 2. License validate latency.
    let mut lat = Vec::new();
    for _ in 0..2_000 {
        let req = Request::post("/api/v1/license/validate")
            .header("x-api-key", &key)
            .body(Body::empty())
            .unwrap();
        let t = Instant::now();
        assert_eq!(call(&app, req).await.0, 200);
        lat.push(t.elapsed());
    }
    println!(
        "license/validate: p50 {:?}, p99 {:?} (2,000 sequential calls)",
        percentile(lat.clone(), 0.5),
        percentile(lat, 0.99)
    );

    // 3. A dashboard organisation with 1,000,000 events over 90 days and 50 agents.
    let big = orgs::create_with_owner(&db, "Big", &format!("big{}@bench.test", now()), "x")
        .await
        .unwrap();
    let total: i64 = 1_000_000;
    let t0 = now() - 90 * 86_400 + 60;
    let step_ms = (90 * 86_400 - 120) * 1000 / total;
    let started = Instant::now();
    let codes = [
        "PROMPT_BLOCKED",
        "CAPABILITY_DENIED",
        "POLICY_DENY",
        "RATE_LIMIT_EXCEEDED",
    ];
    for chunk in 0..(total / 1_000) {
        let events: Vec<Event> = (0..1_000)
            .map(|i| {
                let n = chunk * 1_000 + i;
                let denied = n % 9 == 0;
                Event {
                    request_id: format!("req-{n:08}"),
                    event_type: if n % 5 == 0 {
                        "tool_check"
                    } else {
                        "prompt_check"
                    }
                    .into(),
                    agent_id: format!("agent-{:02}", n % 50),
                    decision: if denied { "deny" } else { "allow" }.into(),
                    error_code: if denied {
                        codes[(n % 4) as usize].into()
                    } else {
                        String::new()
                    },
                    ts_ms: t0 * 1000 + n * step_ms,
                    phase: kalguard_cloud::store::usage::Phase::Request,
                }
            })
            .collect();
        usage::ingest(&db, &big.org_id, None, &events, now())
            .await
            .unwrap();
    }
    println!(
        "seeded {total} events (90 days, 50 agents) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let cookie = sessions::create(&db, &big.user_id, &big.org_id)
        .await
        .unwrap();
    let page2 = {
        let req = Request::get("/audit")
            .header("cookie", format!("kg_session={cookie}"))
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let html = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        let i = html.find("href=\"/audit?cursor=").unwrap() + 6;
        html[i..i + html[i..].find('"').unwrap()].replace("&amp;", "&")
    };
    let pages = [
        "/usage?days=7".to_string(),
        "/usage?days=30".to_string(),
        "/usage?days=90".to_string(),
        "/agents".to_string(),
        "/audit".to_string(),
        page2,
        "/audit?agent=agent-07".to_string(),
        "/audit?agent=agent-07&decision=deny&code=POLICY_DENY".to_string(),
        "/audit?code=RATE_LIMIT_EXCEEDED".to_string(),
        "/audit?decision=deny".to_string(),
        "/audit?decision=require_approval".to_string(),
        "/audit?from=2000-01-01&to=2000-01-02".to_string(),
        "/keys".to_string(),
        "/tokens".to_string(),
        "/billing".to_string(),
    ];
    for page in pages {
        let mut lat = Vec::new();
        let mut size = 0;
        for _ in 0..20 {
            let req = Request::get(page.as_str())
                .header("cookie", format!("kg_session={cookie}"))
                .body(Body::empty())
                .unwrap();
            let t = Instant::now();
            let (status, len) = call(&app, req).await;
            assert_eq!(status, 200, "{page}");
            lat.push(t.elapsed());
            size = len;
        }
        let shown = if page.len() > 60 {
            format!("{}…", &page[..60])
        } else {
            page.clone()
        };
        println!(
            "page {shown:<62} p50 {:>9.2?} ({size} bytes)",
            percentile(lat, 0.5)
        );
    }
}
