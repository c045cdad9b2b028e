//! The filter channel's authentication through a real `kalguard serve`: every
//! route but `/healthz` and `/metrics` needs the channel key, forged events
//! never reach the audit log, snapshots are signed for the poll they answer
//! and carry the process's epoch, neither public route shows a secret, no mode
//! starts without a key, and the API serves on a Unix socket.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use kalguard_wire::channel::{Answer, ChannelKey};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;
use support::*;

const TOKEN_SECRET: &str = "local-token-secret-never-shown-0001";

fn local_env() -> Vec<(&'static str, String)> {
    vec![
        ("KALGUARD_TOKEN_SECRET", TOKEN_SECRET.into()),
        ("KALGUARD_AGENT_TOKEN", AGENT_TOKEN.into()),
    ]
}

/// Sends `request` with the given channel-key header values: (status, body).
async fn send(request: reqwest::RequestBuilder, keys: &[String]) -> (u16, String) {
    let mut request = request;
    for key in keys {
        request = request.header("x-kalguard-channel-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_healthz_and_metrics_needs_the_exact_key() {
    let dir = test_dir("channel-401");
    let cp = ControlPlane::start(&dir, &local_env()).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", cp.base);
    let mut wrong_last = CHANNEL_KEY.as_bytes().to_vec();
    *wrong_last.last_mut().unwrap() ^= 1;
    let wrong_last = String::from_utf8(wrong_last).unwrap();
    let wrong_keys: Vec<Vec<String>> = vec![
        vec![],
        vec![String::new()],
        vec!["wrong".into()],
        vec![CHANNEL_KEY[..CHANNEL_KEY.len() - 1].into()],
        vec![wrong_last],
        vec![format!("{CHANNEL_KEY}x")],
        vec![format!("{CHANNEL_KEY} x")],
        vec![CHANNEL_KEY.to_uppercase()],
        // A wrong first value is not rescued by a right second one.
        vec!["wrong".into(), CHANNEL_KEY.into()],
    ];
    let key = [CHANNEL_KEY.to_owned()];
    let events = json!({"events": events("forged", 0..3)}).to_string();
    let requests = || {
        vec![
            http.get(url("/v1/filter/state?version=0&wait=0")),
            http.get(url("/v1/filter/state")),
            http.post(url("/v1/filter/state")),
            http.post(url("/v1/filter/events"))
                .header("content-type", "application/json")
                .body(events.clone()),
            http.get(url("/v1/filter/events")),
            http.get(url("/")),
            http.get(url("/nowhere")),
            http.get(url("/healthz/")),
            http.get(url("//healthz")),
            http.get(url("/%68ealthz")),
            http.get(url("/v1/filter/state/../../healthz")),
            http.delete(url("/v1/filter/state")),
        ]
    };
    for keys in &wrong_keys {
        for request in requests() {
            let described = format!("{request:?} with {keys:?}");
            let (status, body) = send(request, keys).await;
            assert_eq!(status, 401, "{described}: {body}");
            assert!(body.contains("KALGUARD_CHANNEL_KEY"), "{body}");
            for secret in [TOKEN_SECRET, AGENT_TOKEN, CHANNEL_KEY] {
                assert!(!body.contains(secret), "{described} shows a secret: {body}");
            }
        }
    }
    let audit = dir.join("audit.jsonl");
    assert_eq!(
        std::fs::read_to_string(&audit).unwrap_or_default(),
        "",
        "a forged event reached the audit log"
    );
    let metrics = http
        .get(url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = wrong_keys.len() * requests().len();
    assert!(
        metrics.contains(&format!("kalguard_unauthorized_requests_total {refused}")),
        "{metrics}"
    );

    // With the key: the routes answer as before.
    let (status, body) = send(http.get(url("/v1/filter/state?version=0")), &key).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(http.get(url("/nowhere")), &key).await;
    assert_eq!(status, 404);
    let (status, body) = send(
        http.post(url("/v1/filter/events"))
            .header("content-type", "application/json")
            .body(events.clone()),
        &key,
    )
    .await;
    assert_eq!((status, &body[..14]), (200, r#"{"accepted":3,"#), "{body}");
    assert_eq!(std::fs::read_to_string(&audit).unwrap().lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_answer_without_the_key_and_show_no_secret() {
    let cloud = StandInCloud::start().await;
    let dir = test_dir("channel-public");
    let mut env = cloud_env(&cloud.url());
    env.push(("KALGUARD_TOKEN_SECRET", TOKEN_SECRET.into()));
    let cp = ControlPlane::start(&dir, &env).await;
    let http = reqwest::Client::new();
    let snapshot = cp.snapshot().await;
    assert_eq!(snapshot["mode"], "cloud");
    assert_eq!(
        snapshot["signingSecrets"][0], SECRET_1,
        "the license's secret is published"
    );
    for path in ["/healthz", "/metrics"] {
        let response = http.get(format!("{}{path}", cp.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.unwrap();
        for secret in [SECRET_1, TOKEN_SECRET, AGENT_TOKEN, API_KEY, CHANNEL_KEY] {
            assert!(!body.contains(secret), "{path} shows {secret}: {body}");
        }
    }
    let log = cp.log_text();
    for secret in [SECRET_1, TOKEN_SECRET, AGENT_TOKEN, API_KEY, CHANNEL_KEY] {
        assert!(!log.contains(secret), "the log shows {secret}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_signed_for_the_poll_it_answers_and_carries_the_epoch() {
    let dir = test_dir("channel-mac");
    let mut cp = ControlPlane::start(&dir, &local_env()).await;
    let key = ChannelKey::parse(Some(CHANNEL_KEY)).unwrap();
    let http = keyed_client();
    let poll = |query: String| {
        let request = http.get(format!("{}/v1/filter/state?{query}", cp.base));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let mac = response
                .headers()
                .get("x-kalguard-mac")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, mac, response.bytes().await.unwrap().to_vec())
        }
    };
    let (status, mac, body) = poll("version=0&nonce=n-1".into()).await;
    assert_eq!(status, 200);
    let mac = mac.expect("a snapshot without its MAC");
    assert!(key.verify(Answer::Snapshot, "n-1", &body, &mac));
    assert!(
        !key.verify(Answer::Snapshot, "n-2", &body, &mac),
        "bound to its poll"
    );
    let snapshot: Value = serde_json::from_slice(&body).unwrap();
    let epoch = snapshot["epoch"].as_str().unwrap().to_owned();
    let version = snapshot["version"].as_u64().unwrap();
    assert_eq!(epoch.len(), 32);

    // Same epoch and version: held, then 304. Another epoch: at once, even
    // with a version far above.
    let (status, _, _) = poll(format!("version={version}&epoch={epoch}&wait=1")).await;
    assert_eq!(status, 304);
    let (status, mac, body) =
        poll(format!("version={}&epoch=old&nonce=n-3&wait=5", u64::MAX)).await;
    assert_eq!(status, 200);
    assert!(key.verify(Answer::Snapshot, "n-3", &body, &mac.unwrap()));
    let (status, _, _) = poll(format!("version=0&nonce={}", "n".repeat(129))).await;
    assert_eq!(status, 400, "an oversized nonce");

    // An event post's acknowledgement is signed for its batch ID.
    let response = http
        .post(format!("{}/v1/filter/events", cp.base))
        .json(&json!({"batchId": "b-1", "events": events("ack", 0..2)}))
        .send()
        .await
        .unwrap();
    let mac = response.headers()["x-kalguard-mac"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.bytes().await.unwrap();
    assert!(key.verify(Answer::EventsAck, "b-1", &body, &mac));
    assert!(!key.verify(Answer::EventsAck, "b-2", &body, &mac));
    assert!(!key.verify(Answer::Snapshot, "b-1", &body, &mac));

    // A restart is a new epoch.
    cp.kill();
    let cp = ControlPlane::start(&dir, &local_env()).await;
    let restarted = cp.snapshot().await;
    assert_ne!(restarted["epoch"], epoch.as_str());
}

async fn refuses_to_start(env: &[(&str, String)]) -> String {
    let dir = test_dir("channel-refuse");
    let mut command = std::process::Command::new(binary());
    command
        .arg("serve")
        .env_clear()
        .env("KALGUARD_LISTEN", "127.0.0.1:0")
        .env("KALGUARD_DATA_DIR", &*dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success(), "started without a valid key");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mode_starts_without_a_valid_key_and_says_how_to_make_one() {
    let cloud = vec![
        ("KALGUARD_API_KEY", API_KEY.to_owned()),
        ("KALGUARD_CLOUD_URL", "http://127.0.0.1:9".to_owned()),
    ];
    let short = ("KALGUARD_CHANNEL_KEY", "0123456789abcdef".to_owned());
    for (env, mode) in [
        (cloud.clone(), "Cloud mode"),
        ([cloud, vec![short.clone()]].concat(), "Cloud mode"),
        (local_env(), "local mode"),
        ([local_env(), vec![short]].concat(), "local mode"),
    ] {
        let stderr = refuses_to_start(&env).await;
        assert!(stderr.contains(mode), "{stderr}");
        assert!(stderr.contains("KALGUARD_CHANNEL_KEY"), "{stderr}");
        assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
        assert!(!stderr.contains(API_KEY), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_url_with_credentials_is_refused() {
    let stderr = refuses_to_start(&[
        ("KALGUARD_API_KEY", API_KEY.to_owned()),
        (
            "KALGUARD_CLOUD_URL",
            "https://user:hunter2@cloud.example".to_owned(),
        ),
        ("KALGUARD_CHANNEL_KEY", CHANNEL_KEY.to_owned()),
    ])
    .await;
    assert!(stderr.contains("must not carry credentials"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// One HTTP/1.1 request over a Unix socket: (status, body).
fn unix_request(socket: &std::path::Path, head: &str) -> (u16, String) {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "{head}Host: kalguard\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_on_a_unix_socket_with_the_same_rules() {
    use std::os::unix::fs::PermissionsExt;
    let dir = test_dir("channel-unix");
    let socket = dir.join("cp.sock");
    // A socket left by a process that died is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut env = local_env();
    env.push(("KALGUARD_LISTEN", format!("unix:{}", socket.display())));
    let log = dir.join("kalguard.log");
    let mut command = std::process::Command::new(binary());
    command
        .arg("serve")
        .env_clear()
        .env("KALGUARD_DATA_DIR", &*dir)
        .env("KALGUARD_CHANNEL_KEY", CHANNEL_KEY)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null());
    for (name, value) in &env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on unix:")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let (status, body) = unix_request(&socket, "GET /v1/filter/state?version=0 HTTP/1.1\r\n");
    assert_eq!(status, 401, "{body}");
    let (status, body) = unix_request(
        &socket,
        &format!(
            "GET /v1/filter/state?version=0 HTTP/1.1\r\nx-kalguard-channel-key: {CHANNEL_KEY}\r\n"
        ),
    );
    assert_eq!(status, 200);
    assert!(body.contains(TOKEN_SECRET), "the filter gets the snapshot");
    let (status, body) = unix_request(&socket, "GET /healthz HTTP/1.1\r\n");
    assert_eq!(status, 200);
    assert!(!body.contains(TOKEN_SECRET));

    // A second process is refused: the socket is live.
    let second = std::process::Command::new(binary())
        .arg("serve")
        .env_clear()
        .env("KALGUARD_DATA_DIR", dir.join("second"))
        .env("KALGUARD_CHANNEL_KEY", CHANNEL_KEY)
        .env("KALGUARD_LISTEN", format!("unix:{}", socket.display()))
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another process is listening"));

    // SIGTERM removes the socket.
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    assert!(!socket.exists());
}
