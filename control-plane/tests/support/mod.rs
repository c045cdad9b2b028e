//! Test support: a stand-in KalGuard Cloud on loopback that implements the
//! contract (license validation, usage reports with `batchId` idempotency),
//! and a handle on a real `kalguard serve` process.

#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const API_KEY: &str = "kg_test_standin_key_0123456789";
pub const SECRET_1: &str = "cloud-signing-secret-one";
pub const AGENT_TOKEN: &str = "agent.default.token";
/// `KALGUARD_CHANNEL_KEY` of every control plane these tests start.
pub const CHANNEL_KEY: &str = "test-channel-key-0123456789abcdef0123456789";

/// A client that presents the channel key, as the filter does.
pub fn keyed_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-kalguard-channel-key",
        reqwest::header::HeaderValue::from_static(CHANNEL_KEY),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(28))
        .build()
        .unwrap()
}

/// What the stand-in Cloud saw and will answer.
pub struct CloudState {
    /// When false, every route answers 503.
    pub up: AtomicBool,
    pub license: Mutex<Value>,
    pub validations: AtomicUsize,
    /// Usage report requests received (duplicates included).
    pub report_posts: AtomicUsize,
    /// Reports whose batchId had already been counted.
    pub duplicate_batches: AtomicUsize,
    batches: Mutex<HashSet<String>>,
    /// requestId → times counted (after batchId de-duplication).
    counted: Mutex<HashMap<String, usize>>,
    /// Every field name seen in a reported event.
    pub event_fields: Mutex<BTreeSet<String>>,
    /// Delay after recording a report and before answering it.
    pub report_delay_ms: AtomicU64,
    pub remaining: AtomicI64,
}

pub struct StandInCloud {
    pub addr: SocketAddr,
    pub state: Arc<CloudState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandInCloud {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn license(secret: &str, revoked: &[&str]) -> Value {
    json!({
        "valid": true, "tier": "pro", "orgId": "org_standin",
        "limits": {"checksPerDay": 100000, "maxAgents": -1, "auditRetentionDays": 90,
                   "features": ["advanced_firewall", "pii_redaction"]},
        "expiresAt": "2099-01-01T00:00:00Z",
        "tokenSigningSecret": secret,
        "revokedTokenHashes": revoked,
    })
}

impl StandInCloud {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        let state = Arc::new(CloudState {
            up: AtomicBool::new(true),
            license: Mutex::new(license(SECRET_1, &[])),
            validations: AtomicUsize::new(0),
            report_posts: AtomicUsize::new(0),
            duplicate_batches: AtomicUsize::new(0),
            batches: Mutex::new(HashSet::new()),
            counted: Mutex::new(HashMap::new()),
            event_fields: Mutex::new(BTreeSet::new()),
            report_delay_ms: AtomicU64::new(0),
            remaining: AtomicI64::new(100_000),
        });
        let app = Router::new()
            .route("/api/v1/license/validate", post(validate))
            .route("/api/v1/usage/report", post(report))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    /// Distinct request IDs counted, and how many were counted more than once.
    pub fn counted(&self) -> (usize, usize) {
        let counted = self.state.counted.lock().unwrap();
        (counted.len(), counted.values().filter(|&&n| n > 1).count())
    }
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(API_KEY)
}

async fn validate(State(state): State<Arc<CloudState>>, headers: HeaderMap) -> Response {
    state.validations.fetch_add(1, Ordering::SeqCst);
    if !state.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response();
    }
    if !authorised(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid API key"})),
        )
            .into_response();
    }
    let mut license = state.license.lock().unwrap().clone();
    license["remaining"] = json!(state.remaining.load(Ordering::SeqCst));
    Json(license).into_response()
}

async fn report(
    State(state): State<Arc<CloudState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !state.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response();
    }
    if !authorised(&headers) {
        return (StatusCode::UNAUTHORIZED, "invalid API key").into_response();
    }
    state.report_posts.fetch_add(1, Ordering::SeqCst);
    let batch_id = body["batchId"].as_str().unwrap_or_default().to_owned();
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let fresh = state.batches.lock().unwrap().insert(batch_id);
    if fresh {
        let mut counted = state.counted.lock().unwrap();
        let mut fields = state.event_fields.lock().unwrap();
        for event in &events {
            fields.extend(event.as_object().unwrap().keys().cloned());
            *counted
                .entry(event["requestId"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        state
            .remaining
            .fetch_sub(events.len() as i64, Ordering::SeqCst);
    } else {
        state.duplicate_batches.fetch_add(1, Ordering::SeqCst);
    }
    let delay = state.report_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Json(json!({
        "accepted": if fresh { events.len() } else { 0 },
        "remaining": state.remaining.load(Ordering::SeqCst),
        "resetAt": 1_900_000_000,
    }))
    .into_response()
}

/// A running `kalguard serve`, killed when dropped.
pub struct ControlPlane {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    pub data_dir: PathBuf,
    http: reqwest::Client,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary under test: `KALGUARD_CONTROL_PLANE_BIN` (e.g. a release build,
/// to measure throughput), else the one Cargo built for these tests.
pub fn binary() -> PathBuf {
    std::env::var_os("KALGUARD_CONTROL_PLANE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_kalguard")),
        PathBuf::from,
    )
}

/// A fresh directory for one test, removed when dropped.
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn test_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("kalguard-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TestDir(dir)
}

/// A loopback port nothing listens on (bound, then released).
pub fn unused_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl ControlPlane {
    /// Starts `kalguard serve` with only the given environment (plus RUST_LOG)
    /// and waits until it listens.
    pub async fn start(data_dir: &Path, env: &[(&str, String)]) -> Self {
        let log = data_dir.join("kalguard.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let already = std::fs::read_to_string(&log).unwrap_or_default().len();
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .env_clear()
            .env("RUST_LOG", "info")
            .env("KALGUARD_LISTEN", "127.0.0.1:0")
            .env("KALGUARD_DATA_DIR", data_dir)
            .env("KALGUARD_CHANNEL_KEY", CHANNEL_KEY)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let started = Instant::now();
        let base = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let text = &text[already.min(text.len())..];
            if let Some(at) = text.find("listening on http://") {
                let rest = &text[at + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "kalguard did not start:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            child,
            base,
            log,
            data_dir: data_dir.to_owned(),
            http: keyed_client(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Whether the process exits within `limit`.
    pub async fn exits_within(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// SIGKILL: no chance to flush or finish anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn health(&self) -> Value {
        self.get_json("/healthz").await
    }

    pub async fn snapshot(&self) -> Value {
        self.get_json("/v1/filter/state?version=0").await
    }

    /// A long-poll for a version above `version`: the snapshot, or None on 304.
    pub fn long_poll(&self, version: u64, wait_secs: u64) -> impl Future<Output = Option<Value>> {
        let request = self.http.get(format!(
            "{}/v1/filter/state?version={version}&wait={wait_secs}",
            self.base
        ));
        async move {
            let response = request.send().await.unwrap();
            match response.status().as_u16() {
                200 => Some(response.json().await.unwrap()),
                304 => None,
                other => panic!("long-poll answered {other}"),
            }
        }
    }

    pub async fn post_events(&self, events: &[Value]) -> Value {
        self.post_body(&json!({ "events": events })).await
    }

    /// Posts events under the filter's idempotency key.
    pub async fn post_batch(&self, batch_id: &str, events: &[Value]) -> Value {
        self.post_body(&json!({ "batchId": batch_id, "events": events }))
            .await
    }

    async fn post_body(&self, body: &Value) -> Value {
        let response = self
            .http
            .post(format!("{}/v1/filter/events", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A filter event as the filter sends it (with the fields that must not leave).
pub fn event(run: &str, n: usize) -> Value {
    json!({
        "eventType": if n.is_multiple_of(3) { "tool_check" } else { "prompt_check" },
        "agentId": format!("agent-{}", n % 4),
        "decision": if n.is_multiple_of(5) { "deny" } else { "allow" },
        "errorCode": if n.is_multiple_of(5) { Value::from("PROMPT_BLOCKED") } else { Value::Null },
        "requestId": format!("req_{run}_{n}"),
        "timestamp": now_ms(),
        "route": "openai.chat",
        "metadata": {"latencyMs": n % 7, "riskScore": 0.25},
    })
}

pub fn events(run: &str, range: std::ops::Range<usize>) -> Vec<Value> {
    range.map(|n| event(run, n)).collect()
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The environment of a control plane bound to `cloud`.
pub fn cloud_env(cloud_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KALGUARD_API_KEY", API_KEY.to_owned()),
        ("KALGUARD_CLOUD_URL", cloud_url.to_owned()),
        ("KALGUARD_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
    ]
}
