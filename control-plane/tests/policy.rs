//! The policy file (`KALGUARD_POLICY_PATH`) through a real `kalguard serve`:
//! pushed in the snapshot, hot-reloaded on edit, an invalid edit never
//! replacing the policy in force, and Cloud plans without `policy:custom`.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

fn allow_models(models: &[&str]) -> Value {
    json!({"version": "1", "rules": [
        {"id": "models", "match": {"actions": ["prompt:check"], "models": models}, "decision": "allow"}],
        "defaultDecision": "deny", "defaultReason": "model not allowed"})
}

fn write(path: &std::path::Path, value: &Value) {
    // Write-then-rename, as editors and config managers do.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, value.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn metrics(cp: &ControlPlane) -> String {
    reqwest::get(format!("{}/metrics", cp.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_reaches_the_snapshot_at_once_and_an_invalid_one_never_does() {
    let dir = test_dir("policy-reload");
    let path = dir.join("policy.json");
    write(&path, &allow_models(&["gpt-4o-mini"]));
    let cp = ControlPlane::start(
        &dir,
        &[
            ("KALGUARD_TOKEN_SECRET", "s".to_owned()),
            ("KALGUARD_POLICY_PATH", path.display().to_string()),
        ],
    )
    .await;
    let first = cp.snapshot().await;
    assert_eq!(first["policy"], allow_models(&["gpt-4o-mini"]));
    let health = cp.health().await;
    assert_eq!(health["policy"]["valid"], true, "{health}");
    assert_eq!(health["policy"]["rules"], 1);
    assert_eq!(health["policy"]["enforced"], true);

    // A valid edit: the filter's pending long-poll answers within 2 s.
    let version = first["version"].as_u64().unwrap();
    let poll = tokio::spawn(cp.long_poll(version, 10));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let edited = Instant::now();
    write(&path, &allow_models(&["gpt-4o-mini", "claude-*"]));
    let second = poll.await.unwrap().expect("a new snapshot");
    assert!(
        edited.elapsed() < Duration::from_secs(2),
        "{:?}",
        edited.elapsed()
    );
    assert_eq!(second["policy"], allow_models(&["gpt-4o-mini", "claude-*"]));

    // An invalid edit: no new snapshot, the error named in /healthz and /metrics.
    let version = second["version"].as_u64().unwrap();
    let poll = tokio::spawn(cp.long_poll(version, 2));
    let mut broken = allow_models(&["gpt-4o-mini"]);
    broken["rules"][0]["match"]["modelz"] = json!(["x"]);
    write(&path, &broken);
    assert!(poll.await.unwrap().is_none(), "an invalid file was pushed");
    assert_eq!(cp.snapshot().await["policy"], second["policy"]);
    let health = cp.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["policy"]["valid"], false);
    let error = health["policy"]["lastError"].as_str().unwrap();
    assert!(
        error.contains("policy.json") && error.contains("rules[0] (id \"models\").match.modelz"),
        "{error}"
    );
    let text = metrics(&cp).await;
    assert!(
        text.contains("kalguard_policy_reloads_total{result=\"invalid\"} 1"),
        "{text}"
    );
    assert!(text.contains("kalguard_policy_valid 0"), "{text}");
    assert!(cp.log_text().contains("the previous policy stays in force"));

    // Fixed again: pushed, healthy.
    write(&path, &allow_models(&["o3"]));
    eventually(
        Duration::from_secs(5),
        "the fixed policy in the snapshot",
        || async { cp.snapshot().await["policy"] == allow_models(&["o3"]) },
    )
    .await;
    let health = cp.health().await;
    assert_eq!(
        (health["status"].as_str(), &health["policy"]["lastError"]),
        (Some("ok"), &Value::Null)
    );
    assert!(metrics(&cp)
        .await
        .contains("kalguard_policy_reloads_total{result=\"ok\"} 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_file_stops_the_start_with_its_name_and_field() {
    let dir = test_dir("policy-invalid-start");
    let path = dir.join("broken.json");
    std::fs::write(&path, r#"{"rules":[{"id":"r","match":{"tools":[]},"decision":"deny"}],"defaultDecision":"allow"}"#).unwrap();
    let output = std::process::Command::new(binary())
        .arg("serve")
        .env_clear()
        .env("KALGUARD_LISTEN", "127.0.0.1:0")
        .env("KALGUARD_DATA_DIR", &*dir)
        .env("KALGUARD_CHANNEL_KEY", CHANNEL_KEY)
        .env("KALGUARD_POLICY_PATH", &path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.json") && stderr.contains("match.tools"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_plan_without_custom_policy_says_the_rules_are_not_enforced() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("policy-cloud");
    let path = dir.join("policy.json");
    write(&path, &allow_models(&["gpt-4o-mini"]));
    let mut env = cloud_env(&cloud.url());
    env.push(("KALGUARD_POLICY_PATH", path.display().to_string()));
    let cp = ControlPlane::start(&dir, &env).await;
    eventually(Duration::from_secs(5), "the enforcement note", || async {
        cp.health().await["policy"]["enforced"] == false
    })
    .await;
    let health = cp.health().await;
    assert!(
        health["policy"]["note"]
            .as_str()
            .unwrap()
            .contains("policy:custom"),
        "{health}"
    );
    // The snapshot still carries it: the filter decides from the plan's features.
    assert_eq!(
        cp.snapshot().await["policy"],
        allow_models(&["gpt-4o-mini"])
    );
    eventually(Duration::from_secs(5), "the log line", || async {
        cp.log_text().contains("are not enforced")
    })
    .await;
}

#[test]
fn policy_check_validates_every_example_and_names_a_broken_field() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    for name in [
        "model-allowlist-per-agent.json",
        "read-only-tools.json",
        "business-hours.json",
        "single-route.json",
    ] {
        let output = std::process::Command::new(binary())
            .args(["policy", "check"])
            .arg(examples.join(name))
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {output:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("is valid"));
    }
    let dir = test_dir("policy-check");
    let path = dir.join("typo.json");
    std::fs::write(&path, r#"{"rules":[{"id":"x","match":{"toolz":["a"]},"decision":"deny"}],"defaultDecision":"allow"}"#).unwrap();
    let output = std::process::Command::new(binary())
        .args(["policy", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("typo.json") && stderr.contains("rules[0] (id \"x\").match.toolz"),
        "{stderr}"
    );
}
