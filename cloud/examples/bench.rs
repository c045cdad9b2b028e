//! Benchmark (not a test): usage ingestion events/s, license-validate latency, the
//! cost of idle license watches and how fast one change reaches them all, and
//! dashboard page latency with 1,000,000 events across 90 days and 50 agents.
//!
//! `cargo run --release -p kalguard-cloud --example bench [-- DATABASE_URL]`
//! (default: a fresh SQLite file); `BENCH_INGEST_ONLY=1` stops after ingestion,
//! `BENCH_BATCHES=n` sets the batches of 100 events per ingestion shape (1,000),
//! `BENCH_IN_FLIGHT=n` the reports sent at once (4).
//! Requests go through the real router and handlers in-process (JSON, auth,
//! SQL), without TCP.
//!
//! Ingestion's first shape is the one sidecars send: 50 agents mixed in every
//! batch, request IDs as random as the filter's (`req_` and 32 hex digits). On a
//! shared machine events/s moves with the load, so ingestion also reports
//! events per CPU-second of this process (the Cloud), and with
//! `BENCH_POSTGRES_PID=<postmaster pid>` of the Postgres server too (the
//! postmaster, its live backends and those that exited), each apart and both
//! together; on SQLite, the WAL's size after each shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use kalguard_cloud::store::usage::{self, Event, Signals};
use kalguard_cloud::store::{orgs, sessions};
use kalguard_cloud::time_util::{now, now_ms};
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
    //    first with 50 agents mixed in each batch and request IDs as random as the
    //    filter's (`req_` and 32 hex digits), then the same with IDs that sort in
    //    sending order, then one agent per batch (as one sidecar per agent sends).
    let batches: usize = std::env::var("BENCH_BATCHES")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1_000);
    // Reports in flight at once; a fleet of sidecars sends more, and SQLite
    // stores the reports waiting for its writer together.
    let in_flight: usize = std::env::var("BENCH_IN_FLIGHT")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(4);
    let mut stored = 0;
    // A batch's events are stamped over the last `spread_ms` before it is sent
    // (the control plane sends its spool every second), or all in one
    // millisecond: the events' key starts with the time, so the wider the
    // spread, the more index leaves one transaction changes.
    for (label, agents_per_batch, random_ids, spread_ms) in [
        ("50 agents per batch, random request IDs", 50, true, 1_000),
        (
            "50 agents per batch, sequential request IDs",
            50,
            false,
            1_000,
        ),
        (
            "50 agents per batch, random request IDs, each batch in one ms",
            50,
            true,
            0,
        ),
        ("one agent per batch, random request IDs", 1, true, 1_000),
    ] {
        let (_, cloud_ticks) = process_usage();
        let postgres_ticks = postgres_cpu_ticks();
        let load = load_average();
        let started = Instant::now();
        let mut handles = Vec::new();
        for worker in 0..in_flight {
            let app = app.clone();
            let key = key.clone();
            handles.push(tokio::spawn(async move {
                for b in (worker..batches).step_by(in_flight) {
                    let sent_ms = now_ms();
                    let events: Vec<_> = (0..100)
                        .map(|i| {
                            let agent = if agents_per_batch == 1 { b % 50 } else { i % 50 };
                            json!({"eventType": "prompt_check", "agentId": format!("agent-{agent}"),
                                   "decision": if i % 7 == 0 { "deny" } else { "allow" },
                                   "errorCode": "PROMPT_BLOCKED",
                                   "timestamp": sent_ms - spread_ms + i as i64 * spread_ms / 100,
                                   "requestId": if random_ids {
                                       format!("req_{:032x}", rand::random::<u128>())
                                   } else {
                                       format!("ing-{agents_per_batch}-{b}-{i}")
                                   }})
                        })
                        .collect();
                    let body = json!({"batchId": format!("batch-{agents_per_batch}-{random_ids}-{spread_ms}-{b}"), "events": events})
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
        let events = (batches * 100) as f64;
        stored += batches as i64 * 100;
        // Nothing lost, nothing twice: the audit log and the rollup hold every
        // event sent so far exactly once.
        let (rows, rolled): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM events WHERE org_id = $1), \
             (SELECT CAST(SUM(allowed + denied + approval) AS BIGINT) FROM usage_daily WHERE org_id = $1)",
        )
        .bind(&created.org_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!((rows, rolled), (stored, stored));
        // Clock ticks are 1/100 s (Linux USER_HZ).
        let cloud_cpu = (process_usage().1 - cloud_ticks) as f64 / 100.0;
        let server = match (postgres_ticks, postgres_cpu_ticks()) {
            (Some(before), Some(after)) => {
                let cpu = after.saturating_sub(before) as f64 / 100.0;
                format!(
                    "; Postgres server {cpu:.2} CPU-s = {:.0} events per CPU-second; \
                     {:.0} events per CPU-second of both",
                    events / cpu,
                    events / (cloud_cpu + cpu)
                )
            }
            _ => sqlite_files(&url)
                .map(|(db, wal)| format!("; SQLite database {db} MB, WAL {wal} MB"))
                .unwrap_or_default(),
        };
        println!(
            "ingestion ({label}): {events} events in {secs:.2} s = {:.0} events/s (batches of 100, {in_flight} concurrent); \
             Cloud process {cloud_cpu:.2} CPU-s = {:.0} events per CPU-second{server}; load average {load} before, {} after",
            events / secs,
            events / cloud_cpu,
            load_average()
        );
    }

    if std::env::var_os("BENCH_INGEST_ONLY").is_some() {
        return;
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

    // 3. Idle license watches over real sockets, and one revocation waking them.
    watch_cost(&db, &key, &created.org_id).await;

    // 4. A dashboard organisation with 1,000,000 events over 90 days and 50 agents.
    let big = orgs::create_with_owner(&db, "Big", &format!("big{}@bench.test", now()), "x")
        .await
        .unwrap();
    let total: i64 = 1_000_000;
    let t0 = now() - 90 * 86_400 + 60;
    let step_ms = (90 * 86_400 - 120) * 1000 / total;
    let started = Instant::now();
    let categories = ["instruction_override", "exfiltration", "role_play"];
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
                    // As random as the filter's, in a repeatable order.
                    request_id: format!(
                        "req_{:032x}",
                        (n as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
                    ),
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
                    // Refusals carry the firewall's findings (a rare category on
                    // ten of them); allowed prompts a low score.
                    signals: if denied {
                        Signals {
                            risk_milli: Some(if n % 2 == 0 { 950 } else { 750 }),
                            categories: vec![if n % 100_000 == 0 {
                                "adversarial_suffix"
                            } else {
                                categories[(n / 9 % 3) as usize]
                            }
                            .into()],
                        }
                    } else {
                        Signals {
                            risk_milli: Some(50),
                            categories: Vec::new(),
                        }
                    },
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
    if !db.is_sqlite() {
        // What autovacuum does a little later on its own: statistics and the
        // visibility map for the freshly loaded table, so the pages are measured on
        // a database in its steady state (see Known limits for right after a load).
        let t = Instant::now();
        sqlx::query("VACUUM ANALYZE events")
            .execute(&db.pool)
            .await
            .unwrap();
        println!("VACUUM ANALYZE events: {:.1} s", t.elapsed().as_secs_f64());
    }
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
        "/audit?agent=AGENT-0".to_string(),
        "/audit?agent=agent-07&match=exact".to_string(),
        "/audit?agent=agent-4&code=policy".to_string(),
        "/audit?code=rate".to_string(),
        "/audit?agent=nobody".to_string(),
        "/audit?category=exfiltration".to_string(),
        "/audit?category=adversarial_suffix".to_string(),
        "/audit?risk=0.9".to_string(),
        "/audit?category=role_play&agent=agent-07".to_string(),
        "/audit?decision=require_approval".to_string(),
        "/audit?from=2000-01-01&to=2000-01-02".to_string(),
        "/keys".to_string(),
        "/tokens".to_string(),
        "/billing".to_string(),
        "/agent?id=agent-07&days=7".to_string(),
        "/agent?id=agent-07&days=90".to_string(),
        "/alerts".to_string(),
        "/admin-log".to_string(),
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

    // 5. The management API's usage, and the whole audit CSV, streamed.
    let mgmt = kalguard_cloud::store::manage_keys::create(
        &db,
        &big.org_id,
        "bench",
        kalguard_cloud::role::Role::Viewer,
        "bench",
    )
    .await
    .unwrap();
    let mut lat = Vec::new();
    for _ in 0..20 {
        let req = Request::get("/api/v1/manage/usage?days=90")
            .header("authorization", format!("Bearer {mgmt}"))
            .body(Body::empty())
            .unwrap();
        let t = Instant::now();
        assert_eq!(call(&app, req).await.0, 200);
        lat.push(t.elapsed());
    }
    println!(
        "api  /api/v1/manage/usage?days=90{:<31} p50 {:>9.2?}",
        "",
        percentile(lat, 0.5)
    );
    let req = Request::get("/audit.csv")
        .header("cookie", format!("kg_session={cookie}"))
        .body(Body::empty())
        .unwrap();
    let t = Instant::now();
    let res = app.clone().oneshot(req).await.unwrap();
    let first_byte = t.elapsed();
    let mut body = res.into_body();
    let (mut bytes, mut rows) = (0usize, 0usize);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes += data.len();
            rows += data.iter().filter(|&&b| b == b'\n').count();
        }
    }
    println!(
        "audit.csv: {} rows, {} MB in {:.1} s (first bytes after {first_byte:?})",
        rows.saturating_sub(1),
        bytes / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    if let Some((database, wal_before)) = sqlite_files(&url) {
        let done = db.checkpoint().await.unwrap();
        let (_, wal_after) = sqlite_files(&url).unwrap_or_default();
        println!(
            "SQLite: database {database} MB, WAL {wal_before} MB before the checkpoint, {wal_after} MB after (completed: {done})",
        );
    }
}

/// The sizes (MB) of a SQLite database file and its WAL; `None` on Postgres.
fn sqlite_files(url: &str) -> Option<(u64, u64)> {
    let path = url.strip_prefix("sqlite://")?;
    let path = path.split('?').next().unwrap_or(path);
    let size = |p: String| {
        std::fs::metadata(p)
            .map(|m| m.len() / 1_000_000)
            .unwrap_or(0)
    };
    Some((size(path.to_owned()), size(format!("{path}-wal"))))
}

/// This process's resident memory (KiB) and CPU time used so far (clock ticks).
fn process_usage() -> (u64, u64) {
    let rss_pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let ticks: u64 = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = after.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    (rss_pages * 4, ticks)
}

/// The 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// CPU clock ticks used by the Postgres server whose postmaster is
/// `BENCH_POSTGRES_PID`: the postmaster and its exited children (cutime,
/// cstime) and its live children.
fn postgres_cpu_ticks() -> Option<u64> {
    let postmaster: u32 = std::env::var("BENCH_POSTGRES_PID")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // (ppid, utime + stime, cutime + cstime) of a process.
    let stat = |pid: &str| -> Option<(u32, u64, u64)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let f: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
        let n = |i: usize| f.get(i)?.parse::<u64>().ok();
        Some((f.get(1)?.parse().ok()?, n(11)? + n(12)?, n(13)? + n(14)?))
    };
    let (_, own, exited) = stat(&postmaster.to_string())?;
    let children: u64 = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| stat(e.file_name().to_str()?))
        .filter(|(ppid, _, _)| *ppid == postmaster)
        .map(|(_, ticks, _)| ticks)
        .sum();
    Some(own + exited + children)
}

/// Holds `WATCHERS` license watches open on a real listener (as a fleet of idle
/// control planes would), measures what they cost while idle, then revokes a
/// token and measures how long until every one of them has its answer.
async fn watch_cost(db: &Db, key: &str, org_id: &str) {
    const WATCHERS: usize = 500;
    const IDLE: Duration = Duration::from_secs(5);
    let config = Config {
        license_watch_secs: 60,
        ..Config::for_tests()
    };
    let app = router(AppState::new(db.clone(), config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let org = orgs::get(db, org_id).await.unwrap().unwrap();
    kalguard_cloud::store::tokens::create(
        db,
        &org,
        &kalguard_cloud::store::tokens::NewToken {
            name: "watched".into(),
            agent_id: "watched-agent".into(),
            capabilities: vec!["prompt:send".into()],
            ttl_secs: 3600,
        },
    )
    .await
    .unwrap();
    let version = orgs::license_version(db, org_id).await.unwrap();
    let (rss_before, _) = process_usage();
    let mut held = Vec::new();
    for _ in 0..WATCHERS {
        // One client per watcher: one connection each, as separate sidecars have.
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/api/v1/license/watch?version={version}");
        let key = key.to_owned();
        held.push(tokio::spawn(async move {
            let answer = client
                .get(url)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            let body: serde_json::Value =
                serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
            (Instant::now(), body["version"].as_i64().unwrap())
        }));
    }
    while db.changes.waiting() < WATCHERS {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (rss_held, ticks_before) = process_usage();
    tokio::time::sleep(IDLE).await;
    let (_, ticks_after) = process_usage();
    let id = kalguard_cloud::store::tokens::list(db, org_id)
        .await
        .unwrap()[0]
        .id
        .clone();
    let revoked = Instant::now();
    assert!(kalguard_cloud::store::tokens::revoke(db, org_id, &id)
        .await
        .unwrap());
    let mut last = Duration::ZERO;
    for h in held {
        let (at, v) = h.await.unwrap();
        assert!(v > version);
        last = last.max(at.duration_since(revoked));
    }
    println!(
        "license watch: {WATCHERS} idle watches held: {} KiB more resident memory (server and \
         clients in this one process), {:.1} % of one core over {} s idle; a revocation \
         answered all {WATCHERS} within {last:?}",
        rss_held.saturating_sub(rss_before),
        // Clock ticks are 1/100 s (Linux USER_HZ), so ticks per second is percent.
        (ticks_after - ticks_before) as f64 / IDLE.as_secs_f64(),
        IDLE.as_secs()
    );
    server.abort();
}
