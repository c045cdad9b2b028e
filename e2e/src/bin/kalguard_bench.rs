//! `kalguard-bench` (`make bench`): what the KalGuard filter costs, measured
//! side by side on the same Envoy binary, on loopback, in one bounded run.
//!
//! 1. The firewall natively: scan throughput (MB/s) on chat text and on
//!    adversarial 1 MiB inputs (the worst case bounds what any input costs), and
//!    answer redaction of 1 MiB streams (`KALGUARD_BENCH_SECTIONS=firewall` runs
//!    only this part, in some 20 s).
//! 2. Three Envoys from the repository's `envoy.yaml`, one worker each: without
//!    a filter (the floor), with a do-nothing proxy-wasm filter (the price of
//!    Wasm itself) and with KalGuard in full configuration (token, a policy
//!    rule, the daily check quota and agent limit, advanced firewall with PII
//!    redaction of requests and answers, decision events).
//!    OpenAI chat bodies of 1, 4.5, 32 and 256 KB, answered as JSON and as an
//!    SSE stream (one event per word), go through each:
//!    - latency p50/p99 on one keep-alive connection, in interleaved rounds so
//!      machine noise hits all three alike;
//!    - throughput at saturation: several connections for a fixed time.
//!
//!    Ratios KalGuard/Envoy and KalGuard/no-op hold on a noisy machine better
//!    than absolute figures.
//! 3. Streamed answers at a model's pace (`pace`): time to the first text and the
//!    gaps between text events, through KalGuard's advanced tier (answers
//!    redacted) against the stand-in upstream directly, for prose, prose with
//!    sensitive values and long key-like runs (what redaction holds longest).
//! 4. The `.wasm` sizes, Envoy's memory per worker with the filter loaded
//!    (one worker against two), and decision events per second through the
//!    real control plane (`kalguard serve`).
//!
//! Every measurement is bounded by a request count and a time limit. The load
//! generator is this process (blocking HTTP/1.1 clients, one thread per
//! connection), on the same machine as Envoy and the stand-in upstream.

use kalguard_e2e::stack::{Options, Stack};
use kalguard_e2e::stub::{CHUNK_DELAY_HEADER, STREAM_PIECES_HEADER};
use kalguard_filter::answer::redact::SseRewriter;
use kalguard_filter::answer::Piped;
use kalguard_filter::firewall::{
    Firewall, FirewallConfig, Scope, Segment, Source, Tier, VerdictCacheConfig, ADVERSARIAL_SHAPES,
};
use kalguard_filter::token::{mint, Claims};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "kalguard_bench/sessions.rs"]
mod sessions;

const SECRET: &str = "bench-signing-secret";
const SIZES: [usize; 4] = [1024, 4608, 32 * 1024, 256 * 1024];
/// The full configuration: held headers, advanced firewall (decode-and-rescan,
/// PII and secret redaction of requests and answers), decision events.
const FULL_CONFIG: &str = r#"{"hold_request_headers":true,"firewall":{"tier":"advanced"},
"limits":{"checks_per_day":1000000000,"max_agents":100},
"policy":{"version":"1","rules":[{"id":"bench-models","match":{"agentIds":["bench-agent"],"actions":["prompt:check"],"models":["gpt-4o*"]},"decision":"allow"}],
"defaultDecision":"deny","defaultReason":"not on the model allowlist"}}"#;

/// Bounds of one run; each can be set from the environment.
struct Settings {
    /// Sections to run (`KALGUARD_BENCH_SECTIONS`, comma-separated: firewall,
    /// sizes, latency, throughput, history, session, pace, memory, events);
    /// all by default.
    sections: Vec<String>,
    /// KalGuard's plugin configuration (`KALGUARD_BENCH_PLUGIN_CONFIG`), to
    /// measure another one than the full configuration.
    plugin_config: String,
    /// Request bodies, in bytes (`KALGUARD_BENCH_SIZES`, comma-separated):
    /// [`SIZES`] by default.
    sizes: Vec<usize>,
    /// Interleaved latency rounds per body (the median round is reported).
    rounds: usize,
    /// Most requests, and most time, per latency round.
    round_requests: usize,
    round_time: Duration,
    /// Connections and duration of a throughput run.
    connections: usize,
    saturation_time: Duration,
}

fn main() -> ExitCode {
    let settings = Settings {
        sections: std::env::var("KALGUARD_BENCH_SECTIONS")
            .unwrap_or_else(|_| {
                "firewall,sizes,latency,throughput,history,session,pace,memory,events".into()
            })
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect(),
        plugin_config: std::env::var("KALGUARD_BENCH_PLUGIN_CONFIG")
            .unwrap_or_else(|_| FULL_CONFIG.into()),
        sizes: std::env::var("KALGUARD_BENCH_SIZES")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .filter(|sizes: &Vec<usize>| !sizes.is_empty())
            .unwrap_or_else(|| SIZES.to_vec()),
        rounds: env_number("KALGUARD_BENCH_ROUNDS", 3),
        round_requests: env_number("KALGUARD_BENCH_REQUESTS", 1000),
        round_time: Duration::from_millis(env_number("KALGUARD_BENCH_ROUND_MS", 800) as u64),
        connections: env_number("KALGUARD_BENCH_CONNECTIONS", 8),
        saturation_time: Duration::from_millis(
            env_number("KALGUARD_BENCH_SATURATION_MS", 1500) as u64
        ),
    };
    match run(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kalguard-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn run(settings: &Settings) -> Result<(), String> {
    let started = Instant::now();
    println!("# KalGuard benchmark");
    println!(
        "machine: {} CPU cores, loopback; Envoy {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        envoy_version()
    );
    println!("KalGuard plugin configuration: {}", settings.plugin_config);
    let runs = |section: &str| settings.sections.iter().any(|s| s == section);
    if runs("firewall") {
        firewall_throughput()?;
    }
    if runs("sizes") {
        wasm_sizes()?;
    }
    let token = token();
    if runs("latency") || runs("throughput") {
        let stacks = Stacks::start(settings)?;
        for mode in [Answer::Json, Answer::Sse] {
            if runs("latency") {
                latency_table(&stacks, &token, mode, settings)?;
            }
        }
        for mode in [Answer::Json, Answer::Sse] {
            if runs("throughput") {
                throughput_table(&stacks, &token, mode, settings)?;
            }
        }
        if stacks.kalguard.upstream_requests().is_empty() {
            return Err(
                "no request reached the upstream through KalGuard: the figures are meaningless"
                    .into(),
            );
        }
    }
    if runs("history") {
        sessions::history_table(&token, settings)?;
    }
    if runs("session") {
        sessions::session_table(&token, settings)?;
    }
    if runs("pace") {
        stream_pace(&token)?;
    }
    if runs("memory") {
        memory_per_worker(&token, settings)?;
    }
    if runs("events") {
        events_per_second(&token, settings)?;
    }
    println!(
        "\n(whole run: {:.0} s)",
        started.elapsed().as_secs_f64().ceil()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Native firewall throughput

/// CPU time of this process (user + system) from /proc: the machine may be
/// shared, and wall time would count other processes' turns.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime, fields 14 and 15 of stat (12 and 13 after the name); 100 Hz.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// CPU time per run of `f`, running it for at least `min_total`.
fn cpu_per_run(mut f: impl FnMut(), min_total: Duration) -> Duration {
    let wall = Instant::now();
    let cpu = cpu_time();
    let mut runs = 0u32;
    while runs < 3 || wall.elapsed() < min_total {
        f();
        runs += 1;
    }
    let spent = match (cpu, cpu_time()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => wall.elapsed(),
    };
    spent / runs
}

fn mb_per_s(bytes: usize, per_run: Duration) -> f64 {
    bytes as f64 / 1e6 / per_run.as_secs_f64().max(1e-9)
}

/// What the filter does to one request text: inspect it, then redact it.
fn inspect_and_redact(fw: &Firewall, text: &str) {
    std::hint::black_box(fw.inspect(&[Segment::new(Source::UserMessage, text)], Tier::Advanced));
    std::hint::black_box(fw.redaction_session().redact(text));
}

fn firewall_throughput() -> Result<(), String> {
    // The scan itself: with the verdict cache on, every run after the first
    // would find the text it measures (see `cached_throughput`).
    let fw = Firewall::new(&FirewallConfig {
        tier: Tier::Advanced,
        verdict_cache: VerdictCacheConfig {
            entries: 0,
            bytes: 0,
        },
        ..FirewallConfig::default()
    })
    .map_err(|e| e.to_string())?;
    println!("\n## Firewall scan throughput, native (advanced tier: inspect + PII/secret redaction, one core)");
    println!("| input | size | time | throughput |");
    println!("|---|---|---|---|");
    let mut typical: Vec<(String, String)> = SIZES
        .iter()
        .map(|&size| (format!("chat text {}", kb(size)), user_text(size)))
        .collect();
    typical.push((
        "chat with PII and secrets".into(),
        "Please email the Q3 report to jane.roe@example.org, call +44 20 7946 0958, \
         charge card 4111 1111 1111 1111 and use key AKIAIOSFODNN7EXAMPLE for the upload. "
            .repeat(24),
    ));
    for (name, text) in &typical {
        let per = cpu_per_run(|| inspect_and_redact(&fw, text), Duration::from_millis(400));
        println!(
            "| {name} | {} | {:.0} µs | {:.1} MB/s |",
            kb(text.len()),
            per.as_secs_f64() * 1e6,
            mb_per_s(text.len(), per)
        );
    }
    let mib = 1 << 20;
    let mut worst_cases: Vec<(&str, String)> = ADVERSARIAL_SHAPES
        .iter()
        .map(|&(name, unit)| (name, unit.repeat(mib / unit.len())))
        .collect();
    // Openers with every closer at the far end (the image scan once looked back from each).
    worst_cases.push((
        "`![x` then `](x`",
        format!("{}{}", "![x".repeat(mib / 6), "](x".repeat(mib / 6)),
    ));
    let mut slowest: Option<(&str, Duration)> = None;
    for (name, text) in &worst_cases {
        let per = cpu_per_run(|| inspect_and_redact(&fw, text), Duration::from_millis(200));
        println!(
            "| adversarial: {name} | {} | {:.1} ms | {:.1} MB/s |",
            kb(text.len()),
            per.as_secs_f64() * 1e3,
            mb_per_s(text.len(), per)
        );
        if slowest.is_none_or(|(_, d)| per > d) {
            slowest = Some((name, per));
        }
    }
    if let Some((name, per)) = slowest {
        println!(
            "worst case: {name}, 1 MiB in {:.0} ms natively ({:.1} MB/s)",
            per.as_secs_f64() * 1e3,
            mb_per_s(mib, per)
        );
    }
    stream_throughput(&fw, mib);
    cached_throughput()
}

/// Text the firewall has read before (a conversation's history): inspected
/// through the verdict cache, found by its keyed hash.
fn cached_throughput() -> Result<(), String> {
    let fw = Firewall::new(&FirewallConfig {
        tier: Tier::Advanced,
        ..FirewallConfig::default()
    })
    .map_err(|e| e.to_string())?;
    for size in [4608, 64 * 1024] {
        let text = user_text(size);
        let per = cpu_per_run(
            || {
                std::hint::black_box(fw.inspect_remembering(
                    &[Segment::new(Source::UserMessage, &text)],
                    Tier::Advanced,
                    Scope("bench-agent"),
                ));
            },
            Duration::from_millis(200),
        );
        println!(
            "| chat text read before (verdict cache hit) | {} | {:.1} µs | {:.0} MB/s |",
            kb(text.len()),
            per.as_secs_f64() * 1e6,
            mb_per_s(text.len(), per)
        );
    }
    Ok(())
}

/// Answers streamed through the redactors, 1 MiB each: plain text in 100-byte pieces
/// (prose, then the shapes that make the redactor hold the most), and an SSE stream of
/// one-character deltas through the event reader.
fn stream_throughput(fw: &Firewall, mib: usize) {
    let fill = |unit: &str| unit.repeat(mib / unit.len());
    let texts = [
        (
            "prose",
            fill("The weather in Oslo is mild today, we walk by the fjord. "),
        ),
        ("one unbroken word", fill("a")),
        (
            "PEM private-key headers",
            fill("-----BEGIN RSA PRIVATE KEY-----"),
        ),
        ("digits and separators", fill("4111-1111 555.0123 (0) ")),
    ];
    for (name, text) in &texts {
        let per = cpu_per_run(
            || {
                let mut stream = fw.stream_redactor();
                for piece in text.as_bytes().chunks(100) {
                    std::hint::black_box(stream.push_bytes(piece));
                }
                std::hint::black_box(stream.finish());
            },
            Duration::from_millis(200),
        );
        println!(
            "| stream redaction, 100-byte pieces: {name} | {} | {:.1} ms | {:.1} MB/s |",
            kb(text.len()),
            per.as_secs_f64() * 1e3,
            mb_per_s(text.len(), per)
        );
    }
    let event = r#"data: {"choices":[{"index":0,"delta":{"content":"a"}}]}"#;
    let choice = r#"{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}"#;
    let choices: Vec<String> = (0..mib / choice.len())
        .map(|i| choice.replace("\"index\":0", &format!("\"index\":{i}")))
        .collect();
    let streams = [
        ("one-character deltas", fill(&format!("{event}\n\n"))),
        (
            "one event of `data:` lines",
            format!("{}\n", fill("data: x\n")),
        ),
        (
            "one event of choices that each close",
            format!("data: {{\"choices\":[{}]}}\n\n", choices.join(",")),
        ),
    ];
    for (name, sse) in &streams {
        let per = cpu_per_run(
            || {
                let mut session = fw.redaction_session();
                let rewriter = SseRewriter::new(fw.stream_redactors(), move |t: &str, form| {
                    session.redact_as(t, form)
                });
                let mut rewriter = Piped::new(rewriter, 4 << 20);
                for chunk in sse.as_bytes().chunks(1024) {
                    std::hint::black_box(rewriter.push(chunk));
                }
                std::hint::black_box(rewriter.finish());
            },
            Duration::from_millis(200),
        );
        println!(
            "| SSE answer redaction, 1 KiB chunks: {name} | {} | {:.1} ms | {:.1} MB/s |",
            kb(sse.len()),
            per.as_secs_f64() * 1e3,
            mb_per_s(sse.len(), per)
        );
    }
}

fn kb(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}

// ---------------------------------------------------------------------------
// Sizes

fn file_size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn wasm_sizes() -> Result<(), String> {
    let kalguard = kalguard_e2e::stack::wasm_path();
    println!("\n## Sizes");
    println!(
        "kalguard_filter.wasm: {} bytes; do-nothing filter: {} bytes",
        file_size(&kalguard)?,
        file_size(&noop_wasm())?
    );
    Ok(())
}

/// The do-nothing filter's build (`make bench` builds it).
fn noop_wasm() -> PathBuf {
    std::env::var_os("KALGUARD_NOOP_WASM")
        .map(Into::into)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip1/release/kalguard_noop_filter.wasm")
        })
}

fn envoy_version() -> String {
    std::process::Command::new(kalguard_e2e::stack::envoy_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.split_whitespace()
                .find(|w| {
                    w.contains('/') && w.chars().next().is_some_and(|c| c.is_ascii_hexdigit())
                })
                .and_then(|w| w.split('/').nth(1))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(version unknown)".into())
}

// ---------------------------------------------------------------------------
// Requests

/// How the stand-in upstream answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// One JSON body (the filter buffers and redacts it whole).
    Json,
    /// An SSE stream, one event per word, as fast as it can (the filter
    /// rewrites it event by event).
    Sse,
}

impl Answer {
    fn name(self) -> &'static str {
        match self {
            Answer::Json => "JSON answer",
            Answer::Sse => "SSE stream answer",
        }
    }
}

/// A user turn of about `size` bytes of ordinary analyst prose.
fn user_text(size: usize) -> String {
    let sentences = [
        "Summarise the quarterly revenue figures for the EMEA region and flag any anomalies. ",
        "Compare the churn rate in Germany with the previous two quarters, by plan. ",
        "The finance team noted that invoices from March were booked late; adjust for that. ",
        "List the three largest accounts whose usage dropped by more than 20% and suggest why. ",
    ];
    let mut text = String::new();
    let mut i = 0;
    while text.len() + 200 < size {
        text.push_str(sentences[i % sentences.len()]);
        i += 1;
    }
    text
}

/// A realistic OpenAI chat body of about `size` bytes; its user message is
/// new on every request ([`FRESH_MARK`]).
fn chat_body(size: usize, answer: Answer) -> String {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "stream": answer == Answer::Sse,
        "messages": [
            {"role": "system", "content": "You are a careful financial analyst."},
            {"role": "user", "content": format!("{FRESH_MARK} {}", user_text(size))},
        ]
    })
    .to_string()
}

/// Where [`send`] writes a number no request had before, so the text it
/// marks is new to KalGuard's verdict cache every time: the benchmark measures
/// new text unless it means to resend some (`sessions`).
const FRESH_MARK: &str = "Request #000000000000.";

/// `body` with its [`FRESH_MARK`] (if any) made unique to this request.
fn fresh(body: &str) -> std::borrow::Cow<'_, str> {
    static SENT: AtomicUsize = AtomicUsize::new(0);
    if !body.contains(FRESH_MARK) {
        return std::borrow::Cow::Borrowed(body);
    }
    let n = SENT.fetch_add(1, Ordering::Relaxed);
    std::borrow::Cow::Owned(body.replacen(FRESH_MARK, &format!("Request #{n:012}."), 1))
}

fn token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let claims = Claims {
        sub: "bench-agent".into(),
        capabilities: vec!["prompt:send".into()],
        exp: now + 3600,
        iat: Some(now),
        nbf: None,
        iss: Some("kalguard".into()),
        metadata: None,
    };
    mint(&claims, SECRET)
}

fn client() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .max_idle_connections(1)
        .timeout(Duration::from_secs(30))
        .build()
}

/// One request, its answer read to the end.
fn send(agent: &ureq::Agent, url: &str, token: &str, body: &str) -> Result<(), String> {
    let response = agent
        .post(url)
        .set("content-type", "application/json")
        .set("x-kalguard-token", token)
        .set(CHUNK_DELAY_HEADER, "0")
        .send_string(&fresh(body))
        .map_err(|e| format!("request to {url} failed: {e}"))?;
    let text = response
        .into_string()
        .map_err(|e| format!("reading the answer from {url}: {e}"))?;
    if text.is_empty() {
        return Err(format!("empty answer from {url}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Streamed answers at a model's pace

/// Milliseconds between the stand-in's events: with pieces of four to ten characters,
/// some 300 to 600 characters a second, a fast model's pace.
const PACE_DELAY_MS: &str = "15";

/// Rounds per answer and path, interleaved.
const PACE_ROUNDS: usize = 3;

/// `text` in pieces as a model's tokenizer sends them: a common word with the space
/// before it, a longer one (a key, a number, an address) cut every four characters.
fn model_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        let chars: Vec<char> = word.chars().collect();
        let size = if chars.len() <= 10
            && chars
                .iter()
                .all(|c| c.is_alphabetic() || ",.;".contains(*c))
        {
            chars.len().max(1)
        } else {
            4
        };
        for (k, chunk) in chars.chunks(size).enumerate() {
            let mut piece = String::new();
            if i > 0 && k == 0 {
                piece.push(' ');
            }
            piece.extend(chunk);
            pieces.push(piece);
        }
    }
    pieces
}

/// The three answers: prose, prose with a value in every sentence, key-like runs.
fn pace_answers() -> [(&'static str, String); 3] {
    let prose = user_text(700);
    let values = [
        "Write to jane.roe@example.org about it. ",
        "Call +1 415 555 0134 before noon. ",
        "The card 4111 1111 1111 1111 was charged. ",
        "Use key AKIAIOSFODNN7EXAMPLE for the bucket. ",
        "Pay IBAN DE89 3704 0044 0532 0130 00 by Friday. ",
    ];
    let with_values = prose
        .split_inclusive(". ")
        .zip(values.iter().cycle())
        .map(|(sentence, value)| format!("{sentence}{value}"))
        .collect::<String>();
    let key_like =
        "c2VjcmV0LXZhbHVlLXRoYXQtbG9va3MtcmFuZG9tLWJ1dC1pcy1ub3QtYS1rZXktYXQtYWxs ".repeat(10);
    [
        ("prose", prose),
        ("prose with values", with_values),
        ("key-like runs", key_like),
    ]
}

/// One streamed answer as the client sees it.
struct Paced {
    /// From sending the request to the first event with text.
    first: Duration,
    /// Between consecutive events with text.
    gaps: Vec<Duration>,
    /// From sending the request to `[DONE]`.
    whole: Duration,
    text: String,
}

fn paced_stream(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    pieces: &str,
) -> Result<Paced, String> {
    let body = serde_json::json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "How did the quarter go?"}]})
    .to_string();
    let started = Instant::now();
    let response = agent
        .post(url)
        .set("content-type", "application/json")
        .set("x-kalguard-token", token)
        .set(CHUNK_DELAY_HEADER, PACE_DELAY_MS)
        .set(STREAM_PIECES_HEADER, pieces)
        .send_string(&body)
        .map_err(|e| format!("request to {url} failed: {e}"))?;
    let mut times = Vec::new();
    let mut text = String::new();
    for line in std::io::BufReader::new(response.into_reader()).lines() {
        let line = line.map_err(|e| format!("reading the stream from {url}: {e}"))?;
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let event: serde_json::Value =
            serde_json::from_str(data).map_err(|e| format!("an event from {url}: {e}"))?;
        let content = event
            .pointer("/choices/0/delta/content")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if !content.is_empty() {
            times.push(started.elapsed());
            text.push_str(content);
        }
    }
    let whole = started.elapsed();
    let first = *times.first().ok_or(format!("no text came from {url}"))?;
    let gaps = times.windows(2).map(|w| w[1] - w[0]).collect();
    Ok(Paced {
        first,
        gaps,
        whole,
        text,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn stream_pace(token: &str) -> Result<(), String> {
    println!("\n== Streamed answers at a model's pace (events every {PACE_DELAY_MS} ms; a common word per event, longer runs 4 characters per event)");
    println!("KalGuard: advanced tier, answers redacted; upstream: the stand-in directly. Median of {PACE_ROUNDS} rounds for first text and whole answer, gaps over all rounds.\n");
    let stack = start(Options {
        plugin_config: Some(r#"{"firewall":{"tier":"advanced"}}"#.into()),
        ..base_options(1)
    })?;
    let direct = format!(
        "http://127.0.0.1:{}/v1/chat/completions",
        stack.upstream_port
    );
    let through = stack.url("/v1/chat/completions");
    let agent = client();
    println!("| answer | path | first text | gap p50 | gap p99 | gap max | whole answer |");
    println!("|---|---|---|---|---|---|---|");
    for (name, text) in pace_answers() {
        let pieces = serde_json::to_string(&model_pieces(&text)).map_err(|e| e.to_string())?;
        let mut runs: [Vec<Paced>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..PACE_ROUNDS {
            for (k, url) in [&direct, &through].into_iter().enumerate() {
                runs[k].push(paced_stream(&agent, url, token, &pieces)?);
            }
        }
        for (k, path) in ["upstream directly", "KalGuard"].into_iter().enumerate() {
            let firsts = median(runs[k].iter().map(|p| p.first.as_secs_f64()).collect());
            let wholes = median(runs[k].iter().map(|p| p.whole.as_secs_f64()).collect());
            let mut gaps: Vec<Duration> = runs[k].iter().flat_map(|p| p.gaps.clone()).collect();
            gaps.sort();
            println!(
                "| {name} | {path} | {} | {:.0} ms | {:.0} ms | {} | {} |",
                ms(Duration::from_secs_f64(firsts)),
                percentile(&gaps, 0.50) / 1e3,
                percentile(&gaps, 0.99) / 1e3,
                ms(gaps.last().copied().unwrap_or_default()),
                ms(Duration::from_secs_f64(wholes)),
            );
        }
        // The figures mean something only if KalGuard redacted what it held.
        let redacted = &runs[1][0].text;
        if name == "prose with values"
            && (redacted.contains("jane.roe@example.org") || !redacted.contains("[EMAIL_1]"))
        {
            return Err(format!(
                "KalGuard did not redact the streamed values: {redacted:.200}"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Latency and throughput in Envoy

struct Stacks {
    bare: Stack,
    noop: Stack,
    kalguard: Stack,
}

fn start(options: Options) -> Result<Stack, String> {
    Stack::start(options).map_err(|e| e.to_string())
}

fn base_options(concurrency: u32) -> Options {
    Options {
        concurrency,
        env: vec![("KALGUARD_TOKEN_SECRET".to_owned(), SECRET.to_owned())],
        ..Options::default()
    }
}

fn kalguard_options(concurrency: u32, settings: &Settings) -> Options {
    Options {
        plugin_config: Some(settings.plugin_config.clone()),
        ..base_options(concurrency)
    }
}

impl Stacks {
    fn start(settings: &Settings) -> Result<Stacks, String> {
        Ok(Stacks {
            bare: start(Options {
                with_filter: false,
                ..base_options(1)
            })?,
            noop: start(Options {
                wasm: Some(noop_wasm()),
                plugin_config: Some("{}".into()),
                ..base_options(1)
            })?,
            kalguard: start(kalguard_options(1, settings))?,
        })
    }

    fn all(&self) -> [&Stack; 3] {
        [&self.bare, &self.noop, &self.kalguard]
    }
}

/// CPU time all threads of process `pid` have run, in nanoseconds (Linux
/// `schedstat`): what a request costs Envoy, whatever else the machine runs.
fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    // A thread that ends meanwhile takes its time with it; the workers do not end.
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// Sorted latencies of up to `settings.round_requests` sequential requests (at
/// most `settings.round_time`, at least 5) on one keep-alive connection.
fn latencies(
    url: &str,
    token: &str,
    body: &str,
    settings: &Settings,
) -> Result<Vec<Duration>, String> {
    let agent = client();
    for _ in 0..5 {
        send(&agent, url, token, body)?;
    }
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < 5
        || (out.len() < settings.round_requests && started.elapsed() < settings.round_time)
    {
        let t = Instant::now();
        send(&agent, url, token, body)?;
        out.push(t.elapsed());
    }
    out.sort();
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default().as_secs_f64() * 1e6
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn latency_table(
    stacks: &Stacks,
    token: &str,
    mode: Answer,
    settings: &Settings,
) -> Result<(), String> {
    println!(
        "\n## Latency, {}: one keep-alive connection, p50 (p99) in µs, median of {} interleaved rounds",
        mode.name(),
        settings.rounds
    );
    println!("| body | Envoy | + no-op Wasm | + KalGuard | no-op adds | KalGuard adds | adds ratio KalGuard/no-op | KalGuard/Envoy | KalGuard/no-op | Envoy CPU µs per request: Envoy / no-op / KalGuard | samples |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &size in &settings.sizes {
        let body = chat_body(size, mode);
        let mut p50 = [vec![], vec![], vec![]];
        let mut p99 = [vec![], vec![], vec![]];
        let mut cpu = [vec![], vec![], vec![]];
        let mut samples = 0;
        for _ in 0..settings.rounds {
            for (i, stack) in stacks.all().iter().enumerate() {
                let before = cpu_ns(stack.envoy_pid());
                let sorted = latencies(&stack.url("/v1/chat/completions"), token, &body, settings)?;
                if let (Some(before), Some(after)) = (before, cpu_ns(stack.envoy_pid())) {
                    cpu[i].push(after.saturating_sub(before) as f64 / 1e3 / sorted.len() as f64);
                }
                p50[i].push(percentile(&sorted, 0.5));
                p99[i].push(percentile(&sorted, 0.99));
                if i == 2 {
                    samples += sorted.len();
                }
            }
        }
        let [e, n, k] = p50.map(median);
        let [e99, n99, k99] = p99.map(median);
        let [ec, nc, kc] = cpu.map(|c| if c.is_empty() { f64::NAN } else { median(c) });
        // What the do-nothing filter adds can vanish in the noise; a ratio to
        // it then means nothing.
        let adds_ratio = if n - e >= 1.0 {
            format!("{:.1}x", (k - e) / (n - e))
        } else {
            "n/a".into()
        };
        println!(
            "| {} | {e:.0} ({e99:.0}) | {n:.0} ({n99:.0}) | {k:.0} ({k99:.0}) | {:+.0} | {:+.0} | {adds_ratio} | {:.2} | {:.2} | {ec:.0} / {nc:.0} / {kc:.0} | {samples} |",
            kb(body.len()),
            n - e,
            k - e,
            k / e.max(1.0),
            k / n.max(1.0),
        );
    }
    Ok(())
}

/// Requests per second with `connections` clients sending back to back for
/// `time` (after a short warm-up), and the number of failed requests. Slow
/// requests extend the run (up to five times `time`) until each connection
/// has completed one, so a rate is never a bare zero.
fn saturate(
    url: &str,
    token: &str,
    body: &str,
    connections: usize,
    time: Duration,
) -> (f64, usize) {
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (done, failed, counting, stop) =
                (done.clone(), failed.clone(), counting.clone(), stop.clone());
            let (url, token, body) = (url.to_owned(), token.to_owned(), body.to_owned());
            std::thread::spawn(move || {
                let agent = client();
                while !stop.load(Ordering::Relaxed) {
                    let ok = send(&agent, &url, &token, &body).is_ok();
                    if counting.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(time);
    while done.load(Ordering::Relaxed) < connections && started.elapsed() < time * 5 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for worker in workers {
        let _ = worker.join();
    }
    (
        done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

fn throughput_table(
    stacks: &Stacks,
    token: &str,
    mode: Answer,
    settings: &Settings,
) -> Result<(), String> {
    println!(
        "\n## Throughput at saturation, {}: {} connections for {:.1} s, requests/s (Envoy one worker; clients and upstream share the machine)",
        mode.name(),
        settings.connections,
        settings.saturation_time.as_secs_f64()
    );
    println!("| body | Envoy | + no-op Wasm | + KalGuard | KalGuard/Envoy | KalGuard/no-op |");
    println!("|---|---|---|---|---|---|");
    for &size in &settings.sizes {
        let body = chat_body(size, mode);
        let mut rates = [0.0; 3];
        for (i, stack) in stacks.all().iter().enumerate() {
            let (rate, failed) = saturate(
                &stack.url("/v1/chat/completions"),
                token,
                &body,
                settings.connections,
                settings.saturation_time,
            );
            if failed > 0 {
                return Err(format!(
                    "{failed} requests failed at saturation ({} body, {})",
                    kb(body.len()),
                    mode.name()
                ));
            }
            if let Some(r) = rates.get_mut(i) {
                *r = rate;
            }
        }
        let [e, n, k] = rates;
        println!(
            "| {} | {e:.1} | {n:.1} | {k:.1} | {:.2} | {:.2} |",
            kb(body.len()),
            k / e.max(1e-9),
            k / n.max(1e-9)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Memory

/// Envoy's resident memory (VmRSS, bytes) and what its allocator holds
/// (admin `/memory` `allocated`, bytes; Wasm linear memory is outside it).
fn envoy_memory(stack: &Stack) -> (u64, u64) {
    let rss = std::fs::read_to_string(format!("/proc/{}/status", stack.envoy_pid()))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:").and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
        })
        .unwrap_or(0)
        * 1024;
    let allocated = serde_json::from_str::<serde_json::Value>(&stack.admin("/memory"))
        .ok()
        .and_then(|m| {
            m.get("allocated")
                .and_then(|a| a.as_str().map(str::to_owned))
        })
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    (rss, allocated)
}

/// Memory after every worker has served requests: several connections, so
/// the kernel spreads them over the workers.
fn warmed_memory(stack: &Stack, token: &str) -> (u64, u64) {
    let body = chat_body(4608, Answer::Json);
    let _ = saturate(
        &stack.url("/v1/chat/completions"),
        token,
        &body,
        8,
        Duration::from_millis(500),
    );
    std::thread::sleep(Duration::from_millis(300));
    envoy_memory(stack)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1 << 20) as f64)
}

fn memory_per_worker(token: &str, settings: &Settings) -> Result<(), String> {
    println!("\n## Envoy memory per worker (after 0.5 s of load on 8 connections)");
    println!("| Envoy | 1 worker RSS | 2 workers RSS | per worker RSS | allocator, per worker |");
    println!("|---|---|---|---|---|");
    let mut one_worker = Vec::new();
    let mut per_worker = Vec::new();
    for (name, options) in [
        (
            "no filter",
            Options {
                with_filter: false,
                ..base_options(1)
            },
        ),
        (
            "no-op Wasm",
            Options {
                wasm: Some(noop_wasm()),
                plugin_config: Some("{}".into()),
                ..base_options(1)
            },
        ),
        ("KalGuard", kalguard_options(1, settings)),
    ] {
        let one = warmed_memory(&start(options.clone())?, token);
        let two = warmed_memory(
            &start(Options {
                concurrency: 2,
                ..options
            })?,
            token,
        );
        let rss = two.0 as f64 - one.0 as f64;
        let allocated = two.1 as f64 - one.1 as f64;
        one_worker.push(one.0 as f64);
        per_worker.push(rss);
        println!(
            "| {name} | {} | {} | {} | {} |",
            mib(one.0 as f64),
            mib(two.0 as f64),
            mib(rss),
            mib(allocated)
        );
    }
    if let (&[bare, noop, kalguard], &[_, noop_worker, kalguard_worker]) =
        (one_worker.as_slice(), per_worker.as_slice())
    {
        println!(
            "with one worker, loading Wasm costs {} (runtime, main-thread and worker VMs), KalGuard {} more than the no-op; each further worker: KalGuard {}, no-op {}",
            mib(noop - bare),
            mib(kalguard - noop),
            mib(kalguard_worker),
            mib(noop_worker)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Events through the control plane

fn control_plane_counter(stack: &Stack, name: &str) -> u64 {
    stack
        .control_plane("/metrics")
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
        })
        .map_or(0, |v| v as u64)
}

fn events_per_second(token: &str, settings: &Settings) -> Result<(), String> {
    println!("\n## Decision events through the control plane (`kalguard serve`, local mode)");
    let stack = start(Options {
        control_plane: Some(vec![(
            "KALGUARD_TOKEN_SECRET".to_owned(),
            SECRET.to_owned(),
        )]),
        ..kalguard_options(1, settings)
    })?;
    const RECEIVED: &str = "kalguard_filter_events_received_total";

    // End to end: requests at saturation through KalGuard; every decision is
    // queued by the filter and posted in batches by the lease holder.
    let before = control_plane_counter(&stack, RECEIVED);
    let started = Instant::now();
    let (rate, failed) = saturate(
        &stack.url("/v1/chat/completions"),
        token,
        &chat_body(1024, Answer::Json),
        settings.connections,
        Duration::from_secs(2),
    );
    let load_time = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = 0;
    let mut last_change = Instant::now();
    while Instant::now() < deadline {
        let now = control_plane_counter(&stack, RECEIVED) - before;
        if now != received {
            received = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let until_last = last_change.duration_since(started);
    println!(
        "end to end: {received} events received in {:.1} s ({:.0} events/s) from {:.1} s of load at {rate:.0} requests/s ({failed} failed); the last arrived {:.1} s after the load ended",
        until_last.as_secs_f64(),
        received as f64 / until_last.as_secs_f64().max(1e-9),
        load_time.as_secs_f64(),
        until_last.saturating_sub(load_time).as_secs_f64()
    );

    // The control plane alone: batches of 500 events (the filter's batch
    // size) posted back to back, as the lease holder does.
    let event = r#"{"eventType":"prompt_check","agentId":"bench-agent","decision":"allow","requestId":"req_bench","timestamp":1750000000000,"route":"openai.chat"}"#;
    let batch = format!("{{\"events\":[{}]}}", vec![event; 500].join(","));
    let url = format!(
        "http://127.0.0.1:{}/v1/filter/events",
        stack.control_plane_port
    );
    let agent = client();
    let before = control_plane_counter(&stack, RECEIVED);
    let started = Instant::now();
    let mut posts = 0;
    while started.elapsed() < Duration::from_secs(2) {
        agent
            .post(&url)
            .set("content-type", "application/json")
            .set(kalguard_filter::channel::KEY_HEADER, &stack.channel_key)
            .send_string(&batch)
            .map_err(|e| format!("posting events to {url}: {e}"))?;
        posts += 1;
    }
    let elapsed = started.elapsed();
    let accepted = control_plane_counter(&stack, RECEIVED) - before;
    println!(
        "control plane alone: {accepted} events accepted in {posts} posts of 500 in {:.1} s: {:.0} events/s (each batch written to the audit log and fsync'd)",
        elapsed.as_secs_f64(),
        accepted as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
