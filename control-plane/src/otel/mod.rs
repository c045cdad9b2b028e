//! OpenTelemetry export: every decision the filter reports leaves as a span
//! ([`span`]) for an OTLP/HTTP collector (`KALGUARD_OTEL_ENDPOINT`, JSON
//! encoding, `POST <endpoint>/v1/traces`). Off when the endpoint is unset.
//!
//! - **Never in the way.** A recorded batch is offered to a bounded in-memory
//!   queue ([`Exporter::offer`]) without waiting; past the bound
//!   (`KALGUARD_OTEL_QUEUE_SPANS`) new spans are dropped and counted
//!   (`kalguard_otel_spans_dropped_total`), the filter's events are audited
//!   and answered as always. The audit log stays the record; spans are a copy.
//! - **Batched and retried.** One task sends up to [`MAX_BATCH`] spans per
//!   request; a collector that cannot take them (network error, timeout, 429,
//!   502, 503, 504, as OTLP/HTTP says) gets the same batch again after a
//!   backoff (250 ms doubling up to 30 s, jittered) while the queue fills;
//!   any other answer drops the batch (`kalguard_otel_spans_rejected_total`).
//!   Spans queued when the process stops are lost.
//! - **Safe to point at.** `https://`, or `http://` on a loopback address
//!   only (spans name agents and decisions); no credentials in the URL (they
//!   would show in `/healthz`); headers for the collector's authentication
//!   come from `KALGUARD_OTEL_HEADERS` (`name=value,…`, environment only) and
//!   never appear in a log line or an error. Redirects are not followed.

mod span;

use crate::cloud::backoff;
use crate::ctx::Ctx;
use kalguard_wire::event::FilterEvent;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};

/// Most spans in one export request.
pub const MAX_BATCH: usize = 512;
/// How long the first span of a batch waits for others to join it.
const GATHER: Duration = Duration::from_millis(200);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// How long one export request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Where OTLP/HTTP takes traces, under the collector's base URL.
const TRACES_PATH: &str = "/v1/traces";
/// Most bytes of a collector's answer read (see [`crate::cloud::read_body`]).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why the OTLP export settings are refused at start. Messages never repeat
/// a header value or a URL's credentials.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("KALGUARD_OTEL_ENDPOINT is not a URL ({0})")]
    NotUrl(String),
    #[error("KALGUARD_OTEL_ENDPOINT must not carry credentials (user:password@); put the collector's authentication in KALGUARD_OTEL_HEADERS")]
    Credentials,
    #[error("KALGUARD_OTEL_ENDPOINT must start with https:// (or http:// on a loopback address), got {0}://")]
    Scheme(String),
    #[error("KALGUARD_OTEL_ENDPOINT uses http:// to {0}, which is not a loopback address: use https:// (spans name agents and decisions)")]
    PlainHttp(String),
    #[error(
        "KALGUARD_OTEL_HEADERS entry {0} is not name=value with a valid header name and value"
    )]
    Header(usize),
    #[error("KALGUARD_OTEL_QUEUE_SPANS must be at least 1")]
    NoQueue,
    #[error("cannot build the HTTP client for the OTLP collector: {0}")]
    Client(reqwest::Error),
}

/// The collector's traces URL from `KALGUARD_OTEL_ENDPOINT` (a base URL;
/// `/v1/traces` is appended unless the path already ends with it).
fn traces_url(endpoint: &str) -> Result<Url, OtelError> {
    let url = Url::parse(endpoint.trim()).map_err(|e| OtelError::NotUrl(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OtelError::Credentials);
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => return Err(OtelError::PlainHttp(host)),
        other => return Err(OtelError::Scheme(other.to_owned())),
    }
    let mut traces = url;
    let path = traces.path().trim_end_matches('/').to_owned();
    if !path.ends_with(TRACES_PATH) {
        traces.set_path(&format!("{path}{TRACES_PATH}"));
    }
    Ok(traces)
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `KALGUARD_OTEL_HEADERS`: `name=value` pairs separated by commas.
fn headers(text: &str) -> Result<HeaderMap, OtelError> {
    let mut map = HeaderMap::new();
    for (index, entry) in text.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let bad = || OtelError::Header(index + 1);
        let (name, value) = entry.split_once('=').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// The export's counters, for `/metrics` and `/healthz`.
#[derive(Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    failures: AtomicU64,
}

/// The handlers' side: offers spans to the queue, never waits.
pub struct Exporter {
    queue: mpsc::Sender<FilterEvent>,
    capacity: usize,
    url: Url,
    counters: Counters,
    /// The queue was full: logged once until it has room again.
    full: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// The sending side, run by [`run`].
pub struct Pump {
    queue: mpsc::Receiver<FilterEvent>,
    http: reqwest::Client,
    headers: HeaderMap,
}

/// The exporter and its pump, or `None` when no endpoint is set.
pub fn open(
    endpoint: Option<&str>,
    header_text: Option<&str>,
    queue_spans: usize,
) -> Result<Option<(Exporter, Pump)>, OtelError> {
    let Some(endpoint) = endpoint.filter(|e| !e.trim().is_empty()) else {
        return Ok(None);
    };
    let url = traces_url(endpoint)?;
    let headers = headers(header_text.unwrap_or_default())?;
    if queue_spans == 0 {
        return Err(OtelError::NoQueue);
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "kalguard-control-plane/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(OtelError::Client)?;
    let (sender, receiver) = mpsc::channel(queue_spans);
    Ok(Some((
        Exporter {
            queue: sender,
            capacity: queue_spans,
            url,
            counters: Counters::default(),
            full: AtomicBool::new(false),
            last_error: Mutex::new(None),
        },
        Pump {
            queue: receiver,
            http,
            headers,
        },
    )))
}

impl Exporter {
    /// Queues one span per event without waiting; past the bound the rest
    /// are dropped and counted.
    pub fn offer(&self, events: &[FilterEvent]) {
        let mut dropped = 0u64;
        for event in events {
            match self.queue.try_send(event.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Closed(_)) => dropped += 1,
            }
        }
        if dropped == 0 {
            if self.full.swap(false, Ordering::Relaxed) {
                tracing::info!("the OTLP span queue has room again");
            }
            return;
        }
        self.counters.dropped.fetch_add(dropped, Ordering::Relaxed);
        if !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the OTLP span queue is full ({} spans; the collector at {} is slow or down): new spans are dropped (kalguard_otel_spans_dropped_total); the audit log has every decision",
                self.capacity,
                self.url
            );
        }
    }

    /// Spans waiting in the queue.
    fn depth(&self) -> usize {
        self.capacity.saturating_sub(self.queue.capacity())
    }

    fn set_error(&self, error: Option<String>) -> Option<String> {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *last, error)
    }
}

/// Sends batches until the queue closes (the process stops).
pub async fn run(ctx: Arc<Ctx>, mut pump: Pump) {
    let Some(exporter) = &ctx.otel else {
        return;
    };
    let mut events = Vec::with_capacity(MAX_BATCH);
    loop {
        if pump.queue.recv_many(&mut events, MAX_BATCH).await == 0 {
            return;
        }
        if events.len() < MAX_BATCH {
            tokio::time::sleep(GATHER).await;
            while events.len() < MAX_BATCH {
                match pump.queue.try_recv() {
                    Ok(event) => events.push(event),
                    Err(_) => break,
                }
            }
        }
        let spans: Vec<_> = events
            .iter()
            .map(|event| span::span(event, rand::random()))
            .collect();
        let body = span::export_request(&spans);
        drop(spans);
        let count = events.len() as u64;
        events.clear();
        pump.deliver(exporter, body, count).await;
    }
}

/// How one export request ended.
enum Sent {
    /// Accepted; the collector may say it rejected some spans.
    Accepted { rejected: u64 },
    /// Worth sending again later.
    Retry(String),
    /// Never accepted as it is.
    Refused(String),
}

impl Pump {
    /// Sends one batch until the collector takes or refuses it.
    async fn deliver(&self, exporter: &Exporter, body: Vec<u8>, count: u64) {
        let counters = &exporter.counters;
        let mut failures: u32 = 0;
        loop {
            match self.send(&exporter.url, body.clone()).await {
                Sent::Accepted { rejected } => {
                    let rejected = rejected.min(count);
                    counters
                        .exported
                        .fetch_add(count - rejected, Ordering::Relaxed);
                    counters.rejected.fetch_add(rejected, Ordering::Relaxed);
                    if exporter.set_error(None).is_some() {
                        tracing::info!("spans reach the OTLP collector at {} again", exporter.url);
                    }
                    return;
                }
                Sent::Refused(why) => {
                    counters.rejected.fetch_add(count, Ordering::Relaxed);
                    let message = format!(
                        "the OTLP collector at {} refused {count} spans for good: {why}",
                        exporter.url
                    );
                    tracing::error!("{message}");
                    exporter.set_error(Some(message));
                    return;
                }
                Sent::Retry(why) => {
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    let message = format!(
                        "the OTLP collector at {} is unavailable: {why}",
                        exporter.url
                    );
                    if failures.is_multiple_of(20) {
                        tracing::warn!(
                            "{message}; {count} spans are sent again with backoff ({} more queued)",
                            exporter.depth()
                        );
                    }
                    exporter.set_error(Some(message));
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(backoff(failures, FIRST_RETRY, LONGEST_RETRY)).await;
                }
            }
        }
    }

    async fn send(&self, url: &Url, body: Vec<u8>) -> Sent {
        let response = self
            .http
            .post(url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return Sent::Retry("timed out".into()),
            Err(e) if e.is_connect() => return Sent::Retry("cannot connect".into()),
            Err(e) => return Sent::Retry(e.without_url().to_string()),
        };
        let status = response.status();
        // A collector's answer names rejected spans or an error: small. One
        // that streams more is cut, and its words are not needed to go on.
        let answer = crate::cloud::read_body(response, MAX_ANSWER_BYTES)
            .await
            .unwrap_or_default();
        if status.is_success() {
            return Sent::Accepted {
                rejected: rejected_spans(&answer),
            };
        }
        let why = format!("HTTP {status}: {}", self.excerpt(&answer));
        match status {
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Sent::Retry(why),
            _ => Sent::Refused(why),
        }
    }

    /// The start of the collector's answer on one line, with any header
    /// value it echoes masked.
    fn excerpt(&self, answer: &[u8]) -> String {
        let mut text: String = String::from_utf8_lossy(answer)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        for value in self.headers.values() {
            if let Ok(secret) = value.to_str() {
                if !secret.is_empty() {
                    text = text.replace(secret, "[KALGUARD_OTEL_HEADERS]");
                }
            }
        }
        if text.is_empty() {
            "empty body".into()
        } else {
            text
        }
    }
}

/// OTLP partial success: `{"partialSuccess": {"rejectedSpans": n}}` (int64,
/// a string or a number in JSON).
fn rejected_spans(answer: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<Value>(answer) else {
        return 0;
    };
    let rejected = &value["partialSuccess"]["rejectedSpans"];
    rejected
        .as_u64()
        .or_else(|| rejected.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// The `otel` object of `/healthz` (`null` when the export is off).
pub fn health(ctx: &Ctx) -> Value {
    let Some(exporter) = &ctx.otel else {
        return Value::Null;
    };
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let counters = &exporter.counters;
    json!({
        "endpoint": exporter.url.as_str(),
        "queueDepth": exporter.depth(),
        "queueCapacity": exporter.capacity,
        "exportedSpans": get(&counters.exported),
        "droppedSpans": get(&counters.dropped),
        "rejectedSpans": get(&counters.rejected),
        "lastError": *exporter.last_error.lock().unwrap_or_else(PoisonError::into_inner),
    })
}

/// Prometheus lines for the export (empty when it is off).
pub fn metrics(ctx: &Ctx) -> String {
    let mut out = String::new();
    let Some(exporter) = &ctx.otel else {
        return out;
    };
    let counters = &exporter.counters;
    for (name, help, counter) in [
        (
            "kalguard_otel_spans_exported_total",
            "Decision spans the OTLP collector accepted.",
            &counters.exported,
        ),
        (
            "kalguard_otel_spans_dropped_total",
            "Decision spans dropped because the OTLP queue was full (the collector slow or down).",
            &counters.dropped,
        ),
        (
            "kalguard_otel_spans_rejected_total",
            "Decision spans the OTLP collector refused for good.",
            &counters.rejected,
        ),
        (
            "kalguard_otel_export_failures_total",
            "OTLP export requests that failed and were retried.",
            &counters.failures,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP kalguard_otel_queue_depth Decision spans waiting for the OTLP collector.\n# TYPE kalguard_otel_queue_depth gauge\nkalguard_otel_queue_depth {}",
        exporter.depth()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalguard_wire::event::EventType;

    #[test]
    fn the_endpoint_is_https_or_loopback_http_without_credentials() {
        for (endpoint, traces) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://localhost:4318/", "http://localhost:4318/v1/traces"),
            ("http://[::1]:4318", "http://[::1]:4318/v1/traces"),
            (
                "https://otel.example/otlp",
                "https://otel.example/otlp/v1/traces",
            ),
            (
                "https://otel.example/v1/traces",
                "https://otel.example/v1/traces",
            ),
        ] {
            assert_eq!(traces_url(endpoint).unwrap().as_str(), traces, "{endpoint}");
        }
        for (endpoint, words) in [
            ("http://otel.example:4318", "not a loopback address"),
            ("http://10.0.0.1:4318", "not a loopback address"),
            ("http://127.0.0.1.evil.example", "not a loopback address"),
            ("ftp://127.0.0.1", "must start with https://"),
            ("otel.example:4318", "must start with https://"),
            ("not a url", "not a URL"),
        ] {
            let error = traces_url(endpoint).unwrap_err().to_string();
            assert!(error.contains(words), "{endpoint}: {error}");
        }
        let error = traces_url("https://user:hunter2@otel.example")
            .unwrap_err()
            .to_string();
        assert!(error.contains("must not carry credentials"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn headers_are_name_value_pairs_and_errors_never_show_a_value() {
        let map = headers("authorization=Bearer s3cr3t, x-scope = team=a ,").unwrap();
        assert_eq!(map["authorization"], "Bearer s3cr3t");
        assert_eq!(map["x-scope"], "team=a");
        assert!(map["authorization"].is_sensitive());
        for bad in ["authorization", "bad name=s3cr3t", "x=s3cr3t\u{7}"] {
            let error = headers(bad).unwrap_err().to_string();
            assert!(error.contains("entry 1"), "{error}");
            assert!(!error.contains("s3cr3t"), "{error}");
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (exporter, _pump) = open(Some("http://127.0.0.1:9"), None, 3).unwrap().unwrap();
        let events: Vec<_> = (0..5)
            .map(|n| FilterEvent::new(EventType::PromptCheck, &format!("r{n}"), n))
            .collect();
        exporter.offer(&events);
        assert_eq!(exporter.depth(), 3);
        assert_eq!(exporter.counters.dropped.load(Ordering::Relaxed), 2);
        exporter.offer(&events[..1]);
        assert_eq!(exporter.counters.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn partial_success_counts_rejected_spans() {
        assert_eq!(
            rejected_spans(br#"{"partialSuccess":{"rejectedSpans":"2"}}"#),
            2
        );
        assert_eq!(
            rejected_spans(br#"{"partialSuccess":{"rejectedSpans":3}}"#),
            3
        );
        assert_eq!(rejected_spans(b"{}"), 0);
        assert_eq!(rejected_spans(b""), 0);
    }

    #[test]
    fn off_without_an_endpoint() {
        assert!(open(None, Some("a=b"), 10).unwrap().is_none());
        assert!(open(Some(" "), None, 10).unwrap().is_none());
        assert!(open(Some("http://127.0.0.1:1"), None, 0).is_err());
    }
}
