//! `kalguard-bench`: what the KalGuard filter adds to a request, measured
//! against the same Envoy route without it.
//!
//! Starts the stand-in upstream and three Envoys from the repository's
//! `envoy.yaml`: without a filter (the floor), with a do-nothing proxy-wasm
//! filter (the price of Wasm itself) and with KalGuard in full configuration
//! (token, advanced firewall with PII redaction of requests and answers,
//! decision events). It sends the same OpenAI chat bodies through each on one
//! keep-alive connection, interleaving runs so machine noise hits all alike.
//! Bounded: a fixed number of requests per run, loopback only. Prints p50/p99
//! and what each filter adds.

use kalguard_e2e::stack::{Options, Stack};
use kalguard_filter::token::{mint, Claims};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "bench-signing-secret";
const WARMUP: usize = 200;

struct Settings {
    requests: usize,
    runs: usize,
}

fn main() -> ExitCode {
    let settings = Settings {
        requests: env_number("KALGUARD_BENCH_REQUESTS", 2000),
        runs: env_number("KALGUARD_BENCH_RUNS", 5),
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

/// A realistic chat body of about `size` bytes: system prompt, history, question.
fn chat_body(size: usize) -> String {
    let sentence =
        "Summarise the quarterly revenue figures for the EMEA region and flag any anomalies. ";
    let mut history = String::new();
    while history.len() + 200 < size {
        history.push_str(sentence);
    }
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a careful financial analyst."},
            {"role": "user", "content": history},
        ]
    })
    .to_string()
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

/// Latencies of `count` sequential requests on one keep-alive connection.
fn measure(url: &str, token: &str, body: &str, count: usize) -> Result<Vec<Duration>, String> {
    let agent = ureq::AgentBuilder::new()
        .max_idle_connections(1)
        .timeout(Duration::from_secs(10))
        .build();
    let mut latencies = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let start = Instant::now();
        let response = agent
            .post(url)
            .set("content-type", "application/json")
            .set("x-kalguard-token", token)
            .send_string(body)
            .map_err(|e| format!("request {i} to {url} failed: {e}"))?;
        let _ = response
            .into_string()
            .map_err(|e| format!("reading response {i}: {e}"))?;
        if i >= WARMUP {
            latencies.push(start.elapsed());
        }
    }
    latencies.sort();
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The do-nothing filter's build (`make bench` builds it).
fn noop_wasm() -> std::path::PathBuf {
    std::env::var_os("KALGUARD_NOOP_WASM")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip1/release/kalguard_noop_filter.wasm")
        })
}

fn run(settings: &Settings) -> Result<(), String> {
    let env = vec![("KALGUARD_TOKEN_SECRET".to_owned(), SECRET.to_owned())];
    let start = |options: Options| Stack::start(options).map_err(|e| e.to_string());
    let base = Options {
        concurrency: 1,
        env,
        ..Options::default()
    };
    let bare = start(Options {
        with_filter: false,
        ..base.clone()
    })?;
    let noop = start(Options {
        wasm: Some(noop_wasm()),
        plugin_config: Some("{}".into()),
        ..base.clone()
    })?;
    let full_config = r#"{"hold_request_headers":true,"firewall":{"tier":"advanced"}}"#;
    let guarded = start(Options {
        plugin_config: Some(full_config.into()),
        ..base
    })?;
    let token = token();
    println!(
        "KalGuard latency: {} runs x {} requests (after {WARMUP} warm-up) per configuration, one keep-alive connection, Envoy --concurrency 1",
        settings.runs, settings.requests
    );
    println!("| body | Envoy p50 | + no-op Wasm p50 | + KalGuard p50 | Wasm adds | KalGuard adds | ratio | Envoy p99 | no-op p99 | KalGuard p99 |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for size in [1024, 4608, 32 * 1024, 256 * 1024] {
        let body = chat_body(size);
        let mut p50 = [vec![], vec![], vec![]];
        let mut p99 = [vec![], vec![], vec![]];
        for _ in 0..settings.runs {
            for (i, stack) in [&bare, &noop, &guarded].iter().enumerate() {
                let latencies = measure(
                    &stack.url("/v1/chat/completions"),
                    &token,
                    &body,
                    settings.requests,
                )?;
                p50[i].push(micros(percentile(&latencies, 0.5)));
                p99[i].push(micros(percentile(&latencies, 0.99)));
            }
        }
        let [e, n, k] = [
            median(&mut p50[0]),
            median(&mut p50[1]),
            median(&mut p50[2]),
        ];
        println!(
            "| {:.1} KB | {e:.0} µs | {n:.0} µs | {k:.0} µs | {:+.0} µs | {:+.0} µs | {:.1}x | {:.0} µs | {:.0} µs | {:.0} µs |",
            body.len() as f64 / 1024.0,
            n - e,
            k - e,
            (k - e) / (n - e).max(1.0),
            median(&mut p99[0]),
            median(&mut p99[1]),
            median(&mut p99[2])
        );
    }
    println!("ratio = what KalGuard adds / what the do-nothing Wasm filter adds (target at 4.5 KB: at most 2x)");
    if guarded.upstream_requests().is_empty() {
        return Err(
            "no request reached the upstream through KalGuard: the figures are meaningless".into(),
        );
    }
    Ok(())
}
