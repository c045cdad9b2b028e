//! The filter ↔ control-plane channel against a process that shares the
//! pod's loopback (issue #14 §1), in real Envoy with the real control plane:
//! it cannot read the state (signing secrets, default token), cannot post
//! events into the audit chain, cannot make the filter adopt a snapshot by
//! squatting the control plane's port (forged, or a genuine one replayed), and
//! sees no secret on `/healthz` or `/metrics`. A restarted control plane (a new
//! epoch) is adopted; the channel runs over a Unix socket; no mode starts
//! without a key.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::cloud::{Cloud, Org};
use common::*;
use kalguard_e2e::stack::{Options, Stack};
use kalguard_filter::channel::{Answer, ChannelKey};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY_HEADER: &str = "x-kalguard-channel-key";
const DEFAULT_TOKEN_CAPS: &[&str] = &["prompt:send"];

fn local_control_plane(agent_token: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![("KALGUARD_TOKEN_SECRET".to_owned(), SECRET.to_owned())];
    if let Some(token) = agent_token {
        env.push(("KALGUARD_AGENT_TOKEN".to_owned(), token.to_owned()));
    }
    env
}

fn stack_with_control_plane(agent_token: Option<&str>) -> Stack {
    start(Options {
        control_plane: Some(local_control_plane(agent_token)),
        ..options()
    })
}

fn ask(stack: &Stack, token: Option<&str>) -> Reply {
    post(stack, "/v1/chat/completions", token, &chat("hello"))
}

/// A request straight to the control plane's TCP port: (status, body).
fn to_control_plane(
    stack: &Stack,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(key) = key {
        headers.push((KEY_HEADER, key));
    }
    let url = format!("http://127.0.0.1:{}{path}", stack.control_plane_port);
    let reply = send(method, &url, &headers, body.map(str::as_bytes));
    (reply.status, reply.body)
}

fn wrong_keys(stack: &Stack) -> Vec<Option<String>> {
    let key = &stack.channel_key;
    vec![
        None,
        Some(String::new()),
        Some("not-the-key".into()),
        Some(key[..key.len() - 1].to_owned()),
        Some(format!(
            "{}{}",
            &key[..key.len() - 1],
            if key.ends_with('0') { '1' } else { '0' }
        )),
        Some(key.to_uppercase()),
    ]
}

#[test]
fn the_state_is_refused_without_the_key_and_shows_no_secret() {
    let default_token = token(DEFAULT_TOKEN_CAPS);
    let stack = stack_with_control_plane(Some(&default_token));
    for key in wrong_keys(&stack) {
        for path in [
            "/v1/filter/state?version=0&wait=0",
            "/v1/filter/state",
            "/v1/filter/state?version=0&epoch=x&nonce=y",
        ] {
            let (status, body) = to_control_plane(&stack, "GET", path, key.as_deref(), None);
            assert_eq!(status, 401, "GET {path} with {key:?}: {body}");
            assert!(!body.contains(SECRET), "{body}");
            assert!(!body.contains(&default_token), "{body}");
            assert!(!body.contains("signingSecrets"), "{body}");
        }
    }
    let (status, body) = to_control_plane(
        &stack,
        "GET",
        "/v1/filter/state?version=0&wait=0",
        Some(&stack.channel_key),
        None,
    );
    assert_eq!(status, 200, "the filter's key still reads it");
    assert!(body.contains(SECRET));
    // The filter holds the key: the snapshot's default token took effect.
    wait_for("the snapshot's default token", || {
        ask(&stack, None).status == 200
    });
}

#[test]
fn forged_events_are_refused_and_the_audit_chain_does_not_grow() {
    let stack = stack_with_control_plane(None);
    let audit = stack.data_dir.join("audit.jsonl");
    let real = ask(&stack, Some(&token(&["prompt:send"])));
    assert_eq!(real.status, 200, "{}", real.body);
    let real_id = real.header("x-kalguard-request-id").unwrap().to_owned();
    wait_for("the real decision in the audit log", || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .contains(&real_id)
    });
    let before = std::fs::read_to_string(&audit).unwrap();

    let forged = json!({"batchId": "forged-1", "events": [{
        "eventType": "prompt_check", "agentId": "forged-agent", "decision": "allow",
        "requestId": "req_forged_by_the_agent", "timestamp": now() * 1000, "route": "openai.chat"
    }]})
    .to_string();
    let as_array = json!([{"eventType": "tool_check", "agentId": "forged-agent",
        "decision": "allow", "requestId": "req_forged_array", "timestamp": now() * 1000}])
    .to_string();
    for key in wrong_keys(&stack) {
        for body in [&forged, &as_array, &String::new()] {
            let (status, answer) = to_control_plane(
                &stack,
                "POST",
                "/v1/filter/events",
                key.as_deref(),
                Some(body),
            );
            assert_eq!(status, 401, "POST events with {key:?}: {answer}");
        }
    }
    // Whatever the filter still sends arrives; the forged posts never do.
    std::thread::sleep(Duration::from_millis(1500));
    let after = std::fs::read_to_string(&audit).unwrap();
    assert!(after.starts_with(&before));
    assert!(
        !after.contains("forged"),
        "a forged event entered the audit log"
    );
    let verify = std::process::Command::new(kalguard_e2e::stack::control_plane_binary())
        .args(["audit", "verify", "--path"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        stack
            .control_plane("/metrics")
            .contains("kalguard_unauthorized_requests_total"),
        "refusals are counted"
    );
}

/// What a process squatting the control plane's port answers each poll with.
#[derive(Clone)]
enum Squat {
    /// Its own snapshot, without a MAC.
    Unsigned(String),
    /// Its own snapshot, signed with a key of its own.
    OwnKey(String),
    /// A genuine snapshot and its MAC, recorded from an earlier poll.
    Replay(String, String),
}

/// A fake control plane on `port`: answers every request with the next of
/// `answers`, until dropped.
struct Squatter {
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Squatter {
    fn start(port: u16, answers: Vec<Squat>) -> Squatter {
        let listener = {
            let mut tries = 0;
            loop {
                match TcpListener::bind(("127.0.0.1", port)) {
                    Ok(listener) => break listener,
                    Err(e) if tries < 100 => {
                        tries += 1;
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => panic!("cannot squat port {port}: {e}"),
                }
            }
        };
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let own_key = ChannelKey::parse(Some("the-squatters-own-key-0123456789abcdef")).unwrap();
        let thread = {
            let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let n = served.fetch_add(1, Ordering::SeqCst);
                    let (body, mac) = match &answers[n % answers.len()] {
                        Squat::Unsigned(body) => (body.clone(), None),
                        Squat::OwnKey(body) => (
                            body.clone(),
                            Some(own_key.mac(Answer::Snapshot, "", body.as_bytes())),
                        ),
                        Squat::Replay(body, mac) => (body.clone(), Some(mac.clone())),
                    };
                    answer(&mut stream, &body, mac.as_deref());
                }
            })
        };
        Squatter {
            served,
            stop,
            port,
            thread: Some(thread),
        }
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(stream: &mut TcpStream, body: &str, mac: Option<&str>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    let mac = mac.map_or(String::new(), |mac| format!("x-kalguard-mac: {mac}\r\n"));
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{mac}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_squatter_on_the_port_is_never_adopted_and_the_restarted_control_plane_is() {
    // Phase 0: a control plane with a default agent token. A sniffer records a
    // genuine snapshot and its MAC.
    let default_token = token(DEFAULT_TOKEN_CAPS);
    let mut stack = stack_with_control_plane(Some(&default_token));
    wait_for("the first snapshot", || ask(&stack, None).status == 200);
    let (status, genuine) = to_control_plane(
        &stack,
        "GET",
        "/v1/filter/state?version=0&nonce=sniffed",
        Some(&stack.channel_key),
        None,
    );
    assert_eq!(status, 200);
    let genuine_mac = ChannelKey::parse(Some(&stack.channel_key)).unwrap().mac(
        Answer::Snapshot,
        "sniffed",
        genuine.as_bytes(),
    );

    // Phase 1: the operator removes the default token (a new epoch).
    stack.control_plane_env = local_control_plane(None);
    stack.restart_control_plane().unwrap();
    wait_for("the new epoch without a default token", || {
        ask(&stack, None).status == 401
    });

    // Phase 2: the control plane is down; a squatter takes its port.
    let squat_secret = "squatter-signing-secret";
    let squat_token = token_with(squat_secret, &["prompt:send", "tool:execute"], now() + 3600);
    let forged = json!({
        "version": u64::MAX / 2, "epoch": "squat", "mode": "local",
        "signingSecrets": [squat_secret], "defaultAgentToken": squat_token,
        "revokedTokenHashes": [], "limits": {"checksPerDay": -1, "maxAgents": -1},
    })
    .to_string();
    stack.stop_control_plane();
    let squatter = Squatter::start(
        stack.control_plane_port,
        vec![
            Squat::Unsigned(forged.clone()),
            Squat::OwnKey(forged),
            Squat::Replay(genuine, genuine_mac),
        ],
    );
    wait_for("the filter to poll the squatter six times", || {
        squatter.served.load(Ordering::SeqCst) >= 6
    });
    let no_token = ask(&stack, None);
    no_token.assert_refused(401, "AUTH_FAILED");
    let squatters = ask(&stack, Some(&squat_token));
    squatters.assert_refused(401, "AUTH_FAILED");
    let during = ask(&stack, Some(&token(&["prompt:send"])));
    assert_eq!(during.status, 200);
    let during_id = during.header("x-kalguard-request-id").unwrap().to_owned();
    let unverified = r#"kalguard_channel{channel_outcome="unverified"}"#;
    assert!(stack.metric(unverified) >= 5, "{}", stack.prometheus());

    // Phase 3: the real control plane returns (a new epoch whose versions
    // are far below the squatter's): adopted.
    drop(squatter);
    stack.control_plane_env = local_control_plane(Some(&default_token));
    stack.restart_control_plane().unwrap();
    wait_for("the restarted control plane's snapshot", || {
        ask(&stack, None).status == 200
    });
    assert_eq!(ask(&stack, Some(&squat_token)).status, 401);
    // The squatter's acknowledgements were not signed: the decisions made
    // while it held the port were kept and reach the real audit log.
    let audit = stack.data_dir.join("audit.jsonl");
    wait_for(
        "the decisions made during the squat in the audit log",
        || {
            std::fs::read_to_string(&audit)
                .unwrap_or_default()
                .contains(&during_id)
        },
    );
    assert!(stack.metric(r#"kalguard_channel{channel_outcome="snapshot_adopted"}"#) >= 3);
}

#[test]
fn healthz_metrics_and_envoy_admin_show_no_secret() {
    let org = Org::free(1_000, 10, "org-signing-secret-from-the-cloud");
    let cloud = Cloud::start(org);
    let default_token = token(DEFAULT_TOKEN_CAPS);
    let mut options = cloud.options();
    if let Some(env) = options.control_plane.as_mut() {
        env.push(("KALGUARD_TOKEN_SECRET".into(), SECRET.into()));
        env.push(("KALGUARD_AGENT_TOKEN".into(), default_token.clone()));
    }
    options.env = vec![("KALGUARD_TOKEN_SECRET".into(), SECRET.into())];
    let stack = start(options);
    wait_for("the license's secret to reach the filter", || {
        ask(
            &stack,
            Some(&token_with(
                "org-signing-secret-from-the-cloud",
                &["prompt:send"],
                now() + 60,
            )),
        )
        .status
            == 200
    });
    let secrets = [
        "org-signing-secret-from-the-cloud",
        SECRET,
        &default_token,
        "kg_test_e2e",
        &stack.channel_key,
    ];
    let mut pages = Vec::new();
    for path in ["/healthz", "/metrics"] {
        let (status, body) = stack.control_plane_get(path, &[]).unwrap();
        assert_eq!(status, 200, "{path} answers without a key");
        pages.push((format!("control plane {path}"), body));
    }
    for path in ["/config_dump", "/stats/prometheus", "/server_info"] {
        pages.push((format!("Envoy admin {path}"), stack.admin(path)));
    }
    pages.push(("Envoy log".into(), stack.envoy_log()));
    let cp_log =
        std::fs::read_to_string(stack.data_dir.parent().unwrap().join("control-plane.log"))
            .unwrap_or_default();
    pages.push(("control plane log".into(), cp_log));
    for (page, body) in &pages {
        assert!(!body.is_empty(), "{page} is empty");
        for secret in secrets {
            assert!(!body.contains(secret), "{page} shows {secret}");
        }
    }
}

#[test]
fn the_channel_runs_over_a_unix_socket() {
    let default_token = token(DEFAULT_TOKEN_CAPS);
    let stack = start(Options {
        control_plane: Some(local_control_plane(Some(&default_token))),
        control_plane_socket: true,
        ..options()
    });
    let socket = stack.control_plane_socket.clone().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", stack.control_plane_port)).is_err(),
        "nothing listens on TCP"
    );
    wait_for("the snapshot through the socket", || {
        ask(&stack, None).status == 200
    });
    let reply = ask(&stack, None);
    let id = reply.header("x-kalguard-request-id").unwrap().to_owned();
    let audit = stack.data_dir.join("audit.jsonl");
    wait_for("the decision through the socket", || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .contains(&id)
    });
    let (status, body) = kalguard_e2e::stack::unix_get(&socket, "/v1/filter/state", &[]).unwrap();
    assert_eq!(status, 401, "{body}");
    let snapshot: Value =
        serde_json::from_str(&stack.control_plane("/v1/filter/state?version=0")).unwrap();
    assert_eq!(snapshot["defaultAgentToken"], default_token.as_str());
}

/// `kalguard serve`'s error output when it exits at once with a failure;
/// `None` (after stopping it) when it is still running after 10 s or succeeds.
fn refused_start(dir: &std::path::Path, env: &[(&str, &str)]) -> Option<String> {
    let mut child = std::process::Command::new(kalguard_e2e::stack::control_plane_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (!status.success()).then_some(stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn no_control_plane_and_no_filter_starts_without_a_valid_key() {
    let dir = std::env::temp_dir().join(format!("kalguard-e2e-nokey-{}", std::process::id()));
    for (env, mode) in [
        (
            vec![
                ("KALGUARD_API_KEY", "kg_test_e2e"),
                ("KALGUARD_CLOUD_URL", "http://127.0.0.1:9"),
            ],
            "Cloud mode",
        ),
        (vec![("KALGUARD_TOKEN_SECRET", SECRET)], "local mode"),
    ] {
        let stderr =
            refused_start(&dir, &env).unwrap_or_else(|| panic!("{mode} started without a key"));
        assert!(stderr.contains(mode), "{stderr}");
        assert!(stderr.contains("KALGUARD_CHANNEL_KEY"), "{stderr}");
        assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Envoy refuses the filter whose channel has a key too short to trust.
    let message = Stack::expect_exit(Options {
        env: vec![
            ("KALGUARD_TOKEN_SECRET".into(), SECRET.into()),
            ("KALGUARD_CHANNEL_KEY".into(), "too-short".into()),
        ],
        ..options()
    })
    .unwrap();
    assert!(
        message.contains("KALGUARD_CHANNEL_KEY is 9 bytes long"),
        "{message}"
    );
}

#[test]
fn a_filter_with_another_key_gets_nothing_and_says_so() {
    let default_token = token(DEFAULT_TOKEN_CAPS);
    let stack = start(Options {
        control_plane: Some(local_control_plane(Some(&default_token))),
        env: vec![
            ("KALGUARD_TOKEN_SECRET".into(), SECRET.into()),
            (
                "KALGUARD_CHANNEL_KEY".into(),
                "another-deployments-key-0123456789abcdef".into(),
            ),
        ],
        ..options()
    });
    let refused = r#"kalguard_channel{channel_outcome="key_refused"}"#;
    wait_for("the control plane to refuse the filter's key", || {
        stack.metric(refused) >= 2
    });
    // The snapshot (and its default token) never arrives; the filter's own
    // environment is enforced.
    ask(&stack, None).assert_refused(401, "AUTH_FAILED");
    assert_eq!(ask(&stack, Some(&token(&["prompt:send"]))).status, 200);
    assert_eq!(
        stack.metric(r#"kalguard_channel{channel_outcome="snapshot_adopted"}"#),
        0
    );
    assert!(stack.control_plane("/metrics").lines().any(|line| line
        .starts_with("kalguard_unauthorized_requests_total ")
        && line != "kalguard_unauthorized_requests_total 0"));
}
