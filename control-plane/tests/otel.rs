//! The OTLP span export through a real `kalguard serve` and a stand-in
//! collector: events posted as the filter posts them leave as spans with the
//! event's fields only; a collector answering 503 gets the batch again, one
//! answering 400 has it dropped and counted; settings that would leak or go
//! out in clear text stop the start with a message naming the setting.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const COLLECTOR_KEY: &str = "collector-key-never-shown-42";

/// A stand-in OTLP/HTTP collector answering `status` to `POST /v1/traces`.
struct Collector {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

type Shared = (Arc<AtomicU16>, Arc<Mutex<Vec<(HeaderMap, Value)>>>);

/// Where a collector answering 307 sends its client.
static ELSEWHERE: Mutex<String> = Mutex::new(String::new());

async fn traces(
    State((status, bodies)): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let code = StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
    if code == StatusCode::TEMPORARY_REDIRECT {
        let location = ELSEWHERE.lock().unwrap().clone();
        return (code, [("location", location)], "").into_response();
    }
    answer(code, &bodies, headers, &body).into_response()
}

fn answer(
    code: StatusCode,
    bodies: &Mutex<Vec<(HeaderMap, Value)>>,
    headers: HeaderMap,
    body: &str,
) -> (StatusCode, String) {
    if code.is_success() {
        bodies
            .lock()
            .unwrap()
            .push((headers, serde_json::from_str(body).unwrap()));
        return (code, "{}".into());
    }
    // A collector that echoes what it was sent: the header must not reach a log.
    (code, format!("refused: {headers:?}"))
}

impl Collector {
    async fn start(status: u16) -> Collector {
        let status = Arc::new(AtomicU16::new(status));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state((Arc::clone(&status), Arc::clone(&bodies)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Collector {
            addr,
            status,
            bodies,
        }
    }

    fn spans(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, body)| {
                body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KALGUARD_TOKEN_SECRET", "otel-test-token-secret".into()),
            ("KALGUARD_OTEL_ENDPOINT", format!("http://{}", self.addr)),
            (
                "KALGUARD_OTEL_HEADERS",
                format!("x-collector-key={COLLECTOR_KEY}"),
            ),
        ]
    }
}

fn attributes(span: &Value) -> Value {
    let mut map = serde_json::Map::new();
    for attribute in span["attributes"].as_array().unwrap() {
        let value = &attribute["value"];
        let value = ["stringValue", "intValue", "doubleValue", "boolValue"]
            .iter()
            .find_map(|kind| value.get(*kind).cloned())
            .unwrap();
        map.insert(attribute["key"].as_str().unwrap().to_owned(), value);
    }
    Value::Object(map)
}

/// A public route's body (`/metrics` needs no key).
async fn text(cp: &ControlPlane, path: &str) -> String {
    reqwest::get(format!("{}{path}", cp.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_recorded_event_leaves_as_a_span_with_its_fields_only() {
    let collector = Collector::start(200).await;
    let dir = test_dir("otel-fields");
    let cp = ControlPlane::start(&dir, &collector.env()).await;
    let mut refused = event("otel", 5);
    refused["route"] = "anthropic_messages".into();
    refused["prompt"] = "the launch code is tangerine-42".into();
    refused["metadata"]["note"] = "tangerine-42 in metadata".into();
    let allowed = event("otel", 1);
    let answer = cp.post_batch("f-otel-1", &[refused, allowed]).await;
    assert_eq!(answer["accepted"], 2);
    // A retried post is recorded once, and exported once.
    cp.post_batch("f-otel-1", &[event("otel", 5), event("otel", 1)])
        .await;
    eventually(
        Duration::from_secs(10),
        "two spans at the collector",
        || async { collector.spans().len() >= 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let spans = collector.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let by_id = |id: &str| {
        spans
            .iter()
            .map(attributes)
            .find(|a| a["kalguard.request_id"] == id)
            .unwrap()
    };
    let refused = by_id("req_otel_5");
    assert_eq!(
        refused,
        json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.system": "anthropic",
            "gen_ai.agent.id": "agent-1",
            "gen_ai.agent.name": "agent-1",
            "kalguard.decision": "deny",
            "kalguard.error_code": "PROMPT_BLOCKED",
            "error.type": "PROMPT_BLOCKED",
            "kalguard.event_type": "prompt_check",
            "kalguard.request_id": "req_otel_5",
            "kalguard.route": "anthropic_messages",
            "kalguard.metadata.latencyMs": "5",
            "kalguard.risk_score": 0.25,
        })
    );
    let allowed = by_id("req_otel_1");
    assert_eq!(allowed["kalguard.decision"], "allow");
    assert_eq!(allowed["gen_ai.operation.name"], "chat");
    assert!(allowed.get("error.type").is_none());
    let (headers, _) = collector.bodies.lock().unwrap()[0].clone();
    assert_eq!(headers["x-collector-key"], COLLECTOR_KEY);
    let everything = format!("{:?}", collector.bodies.lock().unwrap());
    assert!(!everything.contains("tangerine"), "{everything}");

    let metrics = text(&cp, "/metrics").await;
    assert_eq!(metric(&metrics, "kalguard_otel_spans_exported_total"), 2);
    assert_eq!(metric(&metrics, "kalguard_otel_spans_dropped_total"), 0);
    let health = cp.health().await;
    assert_eq!(health["otel"]["exportedSpans"], 2);
    assert!(!health.to_string().contains(COLLECTOR_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_and_a_400_drops_the_batch_without_showing_the_header() {
    let collector = Collector::start(503).await;
    let dir = test_dir("otel-retry");
    let cp = ControlPlane::start(&dir, &collector.env()).await;
    cp.post_events(&events("retry", 0..3)).await;
    eventually(Duration::from_secs(10), "a failed export", || async {
        metric(
            &text(&cp, "/metrics").await,
            "kalguard_otel_export_failures_total",
        ) >= 2
    })
    .await;
    collector.status.store(200, Ordering::SeqCst);
    eventually(
        Duration::from_secs(10),
        "the retried batch accepted",
        || async { collector.spans().len() == 3 },
    )
    .await;

    collector.status.store(400, Ordering::SeqCst);
    cp.post_events(&events("refused", 0..2)).await;
    eventually(
        Duration::from_secs(10),
        "the refused batch counted",
        || async {
            metric(
                &text(&cp, "/metrics").await,
                "kalguard_otel_spans_rejected_total",
            ) == 2
        },
    )
    .await;
    let health = cp.health().await;
    let error = health["otel"]["lastError"].as_str().unwrap().to_owned();
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(!error.contains(COLLECTOR_KEY), "{error}");
    assert!(!cp.log_text().contains(COLLECTOR_KEY));
    assert_eq!(collector.spans().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_settings_stop_the_start_naming_the_setting() {
    for (endpoint, headers, words, hidden) in [
        ("http://otel.example:4318", "", "not a loopback address", ""),
        (
            "https://user:hunter2@otel.example",
            "",
            "must not carry credentials",
            "hunter2",
        ),
        (
            "https://otel.example",
            "authorization",
            "KALGUARD_OTEL_HEADERS entry 1",
            "",
        ),
        (
            "https://otel.example",
            "bad name=s3cr3t-value",
            "KALGUARD_OTEL_HEADERS entry 1",
            "s3cr3t-value",
        ),
    ] {
        let dir = test_dir("otel-refuse");
        let output = std::process::Command::new(binary())
            .arg("serve")
            .env_clear()
            .env("KALGUARD_LISTEN", "127.0.0.1:0")
            .env("KALGUARD_DATA_DIR", &*dir)
            .env("KALGUARD_CHANNEL_KEY", CHANNEL_KEY)
            .env("KALGUARD_OTEL_ENDPOINT", endpoint)
            .env("KALGUARD_OTEL_HEADERS", headers)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{endpoint}: {stderr}");
        assert!(stderr.starts_with("kalguard: "), "{stderr}");
        assert!(stderr.contains(words), "{endpoint}: {stderr}");
        if !hidden.is_empty() {
            assert!(!stderr.contains(hidden), "{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_so_the_headers_reach_no_other_host() {
    let elsewhere = Collector::start(200).await;
    *ELSEWHERE.lock().unwrap() = format!("http://{}/v1/traces", elsewhere.addr);
    let collector = Collector::start(307).await;
    let dir = test_dir("otel-redirect");
    let cp = ControlPlane::start(&dir, &collector.env()).await;
    cp.post_events(&events("redirect", 0..2)).await;
    eventually(
        Duration::from_secs(10),
        "the redirected batch counted",
        || async {
            metric(
                &text(&cp, "/metrics").await,
                "kalguard_otel_spans_rejected_total",
            ) == 2
        },
    )
    .await;
    assert!(
        elsewhere.bodies.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
}
