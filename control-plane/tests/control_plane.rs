//! `kalguard serve` as a process against a stand-in Cloud on loopback: modes,
//! license sync, usage delivery through outages and restarts, the audit log,
//! the filter API, and throughput.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::*;

const LIMIT: Duration = Duration::from_secs(15);

async fn depth(cp: &ControlPlane) -> u64 {
    cp.health().await["spoolDepth"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_in_cloud_mode_and_publishes_the_license() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("cloud-mode");
    let cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;

    let health = cp.health().await;
    assert_eq!(health["mode"], "cloud", "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["license"]["plan"], "pro");
    assert!(health["licenseAgeSeconds"].as_u64().unwrap() < 5);

    let snapshot = cp.snapshot().await;
    assert_eq!(snapshot["mode"], "cloud");
    assert_eq!(snapshot["plan"], "pro");
    assert_eq!(snapshot["limits"]["checksPerDay"], 100000);
    assert_eq!(snapshot["limits"]["auditRetentionDays"], 90);
    assert_eq!(snapshot["signingSecrets"], json!([SECRET_1]));
    assert_eq!(snapshot["defaultAgentToken"], AGENT_TOKEN);
    assert_eq!(snapshot["remaining"], 100000);
    assert!(snapshot["policy"].is_null() && snapshot["firewall"].is_null());

    let metrics = reqwest::get(format!("{}/metrics", cp.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("kalguard_mode{mode=\"cloud\"} 1"),
        "{metrics}"
    );
    assert!(dir.join("license.json").exists(), "the license is cached");

    let log = cp.log_text();
    for secret in [API_KEY, SECRET_1, AGENT_TOKEN] {
        assert!(!log.contains(secret), "a secret is in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_down_at_start_runs_degraded_then_switches_to_cloud() {
    let addr = unused_addr();
    let dir = test_dir("degraded-start");
    let cp = ControlPlane::start(&dir, &cloud_env(&format!("http://{addr}"))).await;

    let health = cp.health().await;
    assert_eq!(health["mode"], "degraded", "{health}");
    assert_eq!(health["status"], "degraded");
    assert!(health["lastSyncError"]
        .as_str()
        .unwrap()
        .contains(&addr.to_string()));
    let snapshot = cp.snapshot().await;
    assert_eq!(snapshot["mode"], "degraded");
    assert_eq!(
        snapshot["limits"]["checksPerDay"], -1,
        "no plan limits while degraded"
    );
    assert!(cp.log_text().contains("running degraded"));

    // Events arriving while degraded are spooled, then delivered.
    cp.post_events(&events("degraded", 0..10)).await;
    let poll = tokio::spawn(cp.long_poll(snapshot["version"].as_u64().unwrap(), 25));
    let cloud = StandInCloud::start_on(addr).await;
    let switched = tokio::time::timeout(LIMIT, poll).await.unwrap().unwrap();
    assert_eq!(
        switched.unwrap()["mode"],
        "cloud",
        "the long-poll saw the switch"
    );
    eventually(LIMIT, "the spooled events arrive", || async {
        cloud.counted() == (10, 0)
    })
    .await;
    assert_eq!(cp.health().await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_that_never_answers_delays_the_start_by_five_seconds_at_most() {
    // Accepts connections (the kernel's backlog) and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = test_dir("black-hole");
    let started = Instant::now();
    let cp = ControlPlane::start(
        &dir,
        &cloud_env(&format!("http://{}", black_hole.local_addr().unwrap())),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let health = cp.health().await;
    assert_eq!(health["mode"], "degraded");
    assert!(health["lastSyncError"]
        .as_str()
        .unwrap()
        .contains("did not answer within 5 s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_license_and_every_event_arrives_once() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("outage");
    let cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    for chunk in 0..4 {
        cp.post_events(&events("outage", chunk * 50..chunk * 50 + 50))
            .await;
    }
    eventually(LIMIT, "200 events delivered", || async {
        cloud.counted().0 == 200
    })
    .await;

    cloud.set_up(false);
    cp.signal("HUP");
    eventually(LIMIT, "the failed sync shows in /healthz", || async {
        !cp.health().await["lastSyncError"].is_null()
    })
    .await;
    let health = cp.health().await;
    assert_eq!(
        health["mode"], "cloud",
        "the license stays in force: {health}"
    );
    assert_eq!(cp.snapshot().await["plan"], "pro");
    for chunk in 4..10 {
        let answer = cp
            .post_events(&events("outage", chunk * 50..chunk * 50 + 50))
            .await;
        assert_eq!(answer["accepted"], 50);
    }
    eventually(LIMIT, "300 events spooled", || async {
        depth(&cp).await == 300
    })
    .await;
    assert!(dir.join("spool").read_dir().unwrap().count() > 0);

    cloud.set_up(true);
    eventually(LIMIT, "every spooled event delivered", || async {
        depth(&cp).await == 0
    })
    .await;
    assert_eq!(cloud.counted(), (500, 0), "each event counted exactly once");
    assert_eq!(
        cloud.state.duplicate_batches.load(Ordering::SeqCst),
        0,
        "no batch was even sent twice"
    );
    let snapshot = cp.snapshot().await;
    assert_eq!(
        snapshot["remaining"],
        100_000 - 500,
        "the Cloud's remaining flows back"
    );
    assert_eq!(snapshot["resetAt"], 1_900_000_000_u64);

    let fields: BTreeSet<String> = cloud.state.event_fields.lock().unwrap().clone();
    let allowed: BTreeSet<String> = [
        "agentId",
        "decision",
        "errorCode",
        "eventType",
        "metadata",
        "requestId",
        "timestamp",
    ]
    .map(String::from)
    .into();
    assert!(
        fields.is_subset(&allowed),
        "only allowed fields leave: {fields:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_mid_stream_loses_nothing_and_counts_once() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("kill");
    let mut cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    // The Cloud records a report, then is slow to answer: the kill lands mid-report.
    cloud.state.report_delay_ms.store(3_000, Ordering::SeqCst);
    for chunk in 0..10 {
        let batch = events("kill", chunk * 25..chunk * 25 + 25);
        cp.post_batch(&format!("f_kill_{chunk}"), &batch).await;
    }
    eventually(LIMIT, "a report in flight", || async {
        cloud.state.report_posts.load(Ordering::SeqCst) >= 1
    })
    .await;
    cp.kill();
    cloud.state.report_delay_ms.store(0, Ordering::SeqCst);

    let cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    assert!(cp
        .log_text()
        .contains("usage events from an earlier run wait for the Cloud"));
    // The filter retries its last post (its answer was lost in the kill).
    let retried = cp.post_batch("f_kill_9", &events("kill", 225..250)).await;
    assert_eq!(retried["duplicate"], true, "{retried}");
    for chunk in 10..20 {
        let batch = events("kill", chunk * 25..chunk * 25 + 25);
        cp.post_batch(&format!("f_kill_{chunk}"), &batch).await;
    }
    eventually(LIMIT, "everything delivered", || async {
        depth(&cp).await == 0
    })
    .await;
    assert_eq!(
        cloud.counted(),
        (500, 0),
        "nothing lost, nothing counted twice"
    );
    assert!(
        cloud.state.duplicate_batches.load(Ordering::SeqCst) >= 1,
        "the in-flight batch was re-sent under its batchId"
    );

    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_kalguard"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&*dir)
        .env_remove("KALGUARD_AUDIT_LOG_PATH")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(out.contains("intact: 500 records"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_an_outage_keeps_the_cached_license() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("cached-license");
    let mut cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    assert_eq!(cp.health().await["mode"], "cloud");
    cp.kill();

    cloud.set_up(false);
    let cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    let health = cp.health().await;
    assert_eq!(
        health["mode"], "cloud",
        "the cached license is in force: {health}"
    );
    assert!(health["lastSyncError"].as_str().unwrap().contains("503"));
    let snapshot = cp.snapshot().await;
    assert_eq!(snapshot["plan"], "pro");
    assert_eq!(snapshot["signingSecrets"], json!([SECRET_1]));
    assert!(cp.log_text().contains("license.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_license_that_expires_during_an_outage_falls_back_to_degraded() {
    let cloud = StandInCloud::start().await;
    let expires = (now_ms() / 1000 + 3).to_string();
    cloud.state.license.lock().unwrap()["expiresAt"] = json!(expires.parse::<u64>().unwrap());
    let dir = test_dir("expiry");
    let cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    assert_eq!(cp.health().await["mode"], "cloud");
    cloud.set_up(false);
    cp.signal("HUP");
    eventually(LIMIT, "degraded after expiry", || async {
        cp.health().await["mode"] == "degraded"
    })
    .await;
    let snapshot = cp.snapshot().await;
    assert!(snapshot["plan"].is_null());
    assert_eq!(snapshot["limits"]["checksPerDay"], -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_secret_rotation_reach_the_snapshot() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("rotation");
    let cp = ControlPlane::start(&dir, &cloud_env(&cloud.url())).await;
    let before = cp.snapshot().await;
    assert_eq!(before["revokedTokenHashes"], json!([]));

    let revoked = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    *cloud.state.license.lock().unwrap() = license("cloud-signing-secret-two", &[revoked]);
    let poll = tokio::spawn(cp.long_poll(before["version"].as_u64().unwrap(), 25));
    cp.signal("HUP");
    let rotated = tokio::time::timeout(LIMIT, poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        rotated["signingSecrets"],
        json!(["cloud-signing-secret-two", SECRET_1]),
        "previous kept one sync"
    );
    assert_eq!(rotated["revokedTokenHashes"], json!([revoked]));

    let poll = tokio::spawn(cp.long_poll(rotated["version"].as_u64().unwrap(), 25));
    cp.signal("HUP");
    let next = tokio::time::timeout(LIMIT, poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        next["signingSecrets"],
        json!(["cloud-signing-secret-two"]),
        "then dropped"
    );
    assert!(!cp.log_text().contains("cloud-signing-secret-two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_api_key_is_reported_loudly_and_not_retried() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("bad-key");
    let mut env = cloud_env(&cloud.url());
    env[0].1 = "kg_test_wrong_key_zzz".into();
    let cp = ControlPlane::start(&dir, &env).await;

    let health = cp.health().await;
    assert_eq!(health["status"], "error", "{health}");
    assert_eq!(health["apiKeyRefused"], true);
    assert_eq!(health["mode"], "degraded");
    let error = health["lastSyncError"].as_str().unwrap();
    assert!(
        error.contains("401") && error.contains("KALGUARD_API_KEY"),
        "{error}"
    );
    assert!(error.contains(&cloud.url()), "names the URL: {error}");
    let log = cp.log_text();
    assert!(
        log.contains("ERROR") && log.contains("check KALGUARD_API_KEY"),
        "{log}"
    );
    assert!(
        !log.contains("kg_test_wrong_key_zzz"),
        "the key is never logged"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cloud.state.validations.load(Ordering::SeqCst),
        1,
        "401 is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_interval_is_clamped_and_the_clamp_logged() {
    let cloud = StandInCloud::start().await;
    for (asked, used) in [(1_000_u64, 10_000_u64), (86_400_000, 600_000)] {
        let dir = test_dir(&format!("clamp-{asked}"));
        let mut env = cloud_env(&cloud.url());
        env.push(("KALGUARD_CLOUD_SYNC_INTERVAL_MS", asked.to_string()));
        let cp = ControlPlane::start(&dir, &env).await;
        let health = cp.health().await;
        assert_eq!(health["cloud"]["syncIntervalMs"], used, "{health}");
        let log = cp.log_text();
        assert!(
            log.contains(&format!(
                "KALGUARD_CLOUD_SYNC_INTERVAL_MS={asked} is outside 10000..600000: using {used} ms"
            )),
            "{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_audits_every_decision_in_a_verifiable_chain() {
    let dir = test_dir("local");
    let audit = dir.join("logs").join("audit.jsonl");
    let mut cp = ControlPlane::start(
        &dir,
        &[
            ("KALGUARD_TOKEN_SECRET", "local-secret-value".to_owned()),
            ("KALGUARD_AUDIT_LOG_PATH", audit.display().to_string()),
        ],
    )
    .await;
    let snapshot = cp.snapshot().await;
    assert_eq!(snapshot["mode"], "local");
    assert_eq!(snapshot["signingSecrets"], json!(["local-secret-value"]));
    assert!(snapshot["defaultAgentToken"].is_null());

    // The long-poll holds while nothing changes, then answers 304.
    let started = Instant::now();
    assert!(cp
        .long_poll(snapshot["version"].as_u64().unwrap(), 1)
        .await
        .is_none());
    assert!(started.elapsed() >= Duration::from_millis(900));

    let mut batch = events("local", 0..20);
    batch.push(
        json!({"eventType": "prompt_check", "agentId": "a", "decision": "allow",
        "requestId": "r", "timestamp": 1, "metadata": {"prompt": "must not be stored"}}),
    );
    batch.push(
        json!({"eventType": "chat", "agentId": "a", "decision": "allow",
        "requestId": "r", "timestamp": 1}),
    );
    let answer = cp.post_events(&batch).await;
    assert_eq!(answer["accepted"], 21);
    assert_eq!(answer["rejected"], 1);
    assert_eq!(
        answer["errors"][0],
        "events[20].metadata.prompt: not a number, dropped"
    );
    assert!(answer["errors"][1]
        .as_str()
        .unwrap()
        .starts_with("events[21]"));
    // A post retried with its batchId is recorded once.
    let http = keyed_client();
    let retried = json!({"batchId": "f_local_1", "events": events("retry", 0..3)});
    for expect_duplicate in [false, true] {
        let answer: Value = http
            .post(format!("{}/v1/filter/events", cp.base))
            .json(&retried)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["duplicate"], expect_duplicate, "{answer}");
        assert_eq!(answer["accepted"], 3);
    }
    let bad = keyed_client()
        .post(format!("{}/v1/filter/events", cp.base))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(text.lines().count(), 24, "21 + the retried post once");
    assert!(!text.contains("must not be stored"));
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"]["requestId"], "req_local_0");
    assert_eq!(first["prevHash"].as_str().unwrap(), "0".repeat(64));
    assert!(!dir.join("spool").exists(), "no Cloud, no usage spool");

    let verify = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kalguard"))
            .args(["audit", "verify", "--path"])
            .arg(path)
            .output()
            .unwrap()
    };
    assert!(verify(&audit).status.success());
    std::fs::write(&audit, text.replacen("req_local_0", "req_local_X", 1)).unwrap();
    let tampered = verify(&audit);
    assert!(!tampered.status.success());
    assert!(
        String::from_utf8_lossy(&tampered.stderr).contains("audit.jsonl:1: record 1 was altered")
    );

    // SIGTERM stops it promptly even with a long-poll held open.
    let held = tokio::spawn(
        keyed_client()
            .get(format!(
                "{}/v1/filter/state?version={}&wait=25",
                cp.base, snapshot["version"]
            ))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    cp.signal("TERM");
    assert!(
        cp.exits_within(Duration::from_secs(5)).await,
        "stopped within the grace"
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_counts_and_says_so() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("spool-bound");
    let mut env = cloud_env(&cloud.url());
    env.push(("KALGUARD_SPOOL_MAX_EVENTS", "5".to_owned()));
    let cp = ControlPlane::start(&dir, &env).await;
    cloud.set_up(false);
    let answer = cp.post_events(&events("bound", 0..8)).await;
    assert_eq!(
        answer["accepted"], 8,
        "the filter's decisions are all audited"
    );
    let health = cp.health().await;
    assert_eq!(
        (
            health["spoolDepth"].as_u64(),
            health["spoolDropped"].as_u64()
        ),
        (Some(5), Some(3))
    );
    let metrics = reqwest::get(format!("{}/metrics", cp.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("kalguard_spool_dropped_events_total 3"),
        "{metrics}"
    );
    assert!(cp.log_text().contains("is full (5 events)"));
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 8);

    cloud.set_up(true);
    eventually(LIMIT, "the spooled events delivered", || async {
        cloud.counted() == (5, 0)
    })
    .await;
    eventually(LIMIT, "room again", || async {
        cp.log_text().contains("has room again")
    })
    .await;
}

/// Events per second through the pipeline: filter → control plane (audit +
/// spool + batchId, fsync'd) → Cloud, with one poster (the filter's lease
/// holder posts one batch at a time) and with four. Prints the numbers
/// (`--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("throughput");
    let cp = std::sync::Arc::new(ControlPlane::start(&dir, &cloud_env(&cloud.url())).await);
    let mut delivered = 0;
    for posters in [1, 4] {
        delivered += measure(&cloud, &cp, posters, 6_000, delivered).await;
    }
}

async fn measure(
    cloud: &StandInCloud,
    cp: &std::sync::Arc<ControlPlane>,
    posters: usize,
    total: usize,
    already: usize,
) -> usize {
    const PER_POST: usize = 200;
    let posts = total / PER_POST / posters;
    let run = format!("tp{posters}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for poster in 0..posters {
        let cp = std::sync::Arc::clone(cp);
        let run = run.clone();
        let bodies: Vec<Vec<Value>> = (0..posts)
            .map(|post| {
                let first = (poster * posts + post) * PER_POST;
                events(&run, first..first + PER_POST)
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            for (post, body) in bodies.iter().enumerate() {
                let answer = cp
                    .post_batch(&format!("f_{run}_{poster}_{post}"), body)
                    .await;
                assert_eq!(answer["accepted"], PER_POST);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let ingested = started.elapsed();
    let sent = posters * posts * PER_POST;
    eventually(
        Duration::from_secs(20),
        "all events at the Cloud",
        || async { cloud.counted().0 == already + sent },
    )
    .await;
    let delivered = started.elapsed();
    assert_eq!(cloud.counted(), (already + sent, 0));
    eprintln!(
        "throughput, {posters} poster(s), {sent} events in posts of {PER_POST}: ingest (audit + spool + batchId, fsync'd) \
         {:.0} events/s; delivered to the Cloud {:.0} events/s end to end",
        sent as f64 / ingested.as_secs_f64(),
        sent as f64 / delivered.as_secs_f64()
    );
    sent
}
