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

#[path = "kalguard_bench/firewall.rs"]
mod firewall;
#[path = "kalguard_bench/pace.rs"]
mod pace;
#[path = "kalguard_bench/sessions.rs"]
mod sessions;

use firewall::*;
use pace::*;

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
