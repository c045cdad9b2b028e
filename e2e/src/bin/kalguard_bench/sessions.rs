//! Conversations whose history comes back on every turn, as agents send them:
//! what the firewall's verdict cache saves.
//!
//! - `history`: a request with 64 KB of unchanged history and a new 1 KB
//!   message against a single new 1 KB message, latency p50 and Envoy CPU per
//!   request, through Envoy alone, the no-op filter and KalGuard with the
//!   cache on and off.
//! - `session`: 30-turn agent sessions (each turn resends the whole
//!   conversation and adds a user message and the assistant's answer of about
//!   1 KB each), Envoy CPU and wall time per session, cache on and off; then
//!   Envoy's resident memory before and after one worker's cache is filled.
//!
//! Every session and every request's new message is text the filter has
//! never seen (see `fresh`), so only the history can be found in the cache.

use serde_json::{json, Value};

use super::{
    base_options, cpu_ns, kalguard_options, median, noop_wasm, percentile, send, start, user_text,
    Settings, FRESH_MARK,
};
use kalguard_e2e::stack::{Options, Stack};
use std::time::Instant;

/// Turns of one agent session.
const SESSION_TURNS: usize = 30;

/// `settings`' plugin configuration with the verdict cache off.
fn cache_off(plugin_config: &str) -> Result<String, String> {
    let mut config: Value = serde_json::from_str(plugin_config)
        .map_err(|e| format!("the plugin configuration is not JSON: {e}"))?;
    let object = config
        .as_object_mut()
        .ok_or("the plugin configuration is not a JSON object")?;
    let firewall = object.entry("firewall").or_insert_with(|| json!({}));
    if let Some(firewall) = firewall.as_object_mut() {
        firewall.insert("verdict_cache".into(), json!({"entries": 0}));
    }
    Ok(config.to_string())
}

/// KalGuard with the verdict cache as configured, and with it off.
fn kalguard_pair(settings: &Settings) -> Result<(Stack, Stack), String> {
    let on = start(kalguard_options(1, settings))?;
    let off = start(Options {
        plugin_config: Some(cache_off(&settings.plugin_config)?),
        ..base_options(1)
    })?;
    Ok((on, off))
}

/// An assistant's answer of about 1 KB.
fn answer_text(tag: &str) -> String {
    format!(
        "{tag}: the EMEA revenue rose 4% quarter on quarter, driven by Germany and the Nordics. \
         Churn in Germany fell from 3.1% to 2.7% on the business plan and stayed flat elsewhere. \
         The late March invoices move 0.8 M from Q1 into Q2; adjusted, the trend is unchanged. \
         The three accounts with the largest drops are in retail, where seasonal usage explains \
         most of it; one of them also migrated part of its workload to another region. \
         I suggest a follow-up with the account owners and a second look at the retail cohort \
         once the April figures are final, and a note to finance on the March booking delay. \
         Tell me if you want the figures as a table or the anomalies flagged in the dashboard."
    )
}

/// The request bodies of one session, turn by turn.
fn session_bodies(session: usize) -> Vec<String> {
    let mut messages =
        vec![json!({"role": "system", "content": "You are a careful financial analyst."})];
    let mut bodies = Vec::with_capacity(SESSION_TURNS);
    for turn in 0..SESSION_TURNS {
        let tag = format!("Session {session}, turn {turn}");
        messages.push(json!({"role": "user", "content": format!("{tag}: {}", user_text(1024))}));
        bodies.push(json!({"model": "gpt-4o-mini", "messages": messages}).to_string());
        messages.push(json!({"role": "assistant", "content": answer_text(&tag)}));
    }
    bodies
}

/// A body with `history_bytes` of earlier turns and a new user message of
/// about 1 KB, which [`send`] makes new on every request.
fn history_body(history_bytes: usize) -> String {
    let mut messages =
        vec![json!({"role": "system", "content": "You are a careful financial analyst."})];
    let mut history = 0;
    let mut turn = 0;
    while history < history_bytes {
        let user = format!("Earlier turn {turn}: {}", user_text(1024));
        let answer = answer_text(&format!("Earlier answer {turn}"));
        history += user.len() + answer.len();
        messages.push(json!({"role": "user", "content": user}));
        messages.push(json!({"role": "assistant", "content": answer}));
        turn += 1;
    }
    messages.push(json!({"role": "user", "content": format!("{FRESH_MARK} {}", user_text(1024))}));
    json!({"model": "gpt-4o-mini", "messages": messages}).to_string()
}

pub(super) fn history_table(token: &str, settings: &Settings) -> Result<(), String> {
    let bare = start(Options {
        with_filter: false,
        ..base_options(1)
    })?;
    let noop = start(Options {
        wasm: Some(noop_wasm()),
        plugin_config: Some("{}".into()),
        ..base_options(1)
    })?;
    let (on, off) = kalguard_pair(settings)?;
    let stacks = [&bare, &noop, &on, &off];
    println!(
        "\n## Resent history: latency p50 in µs (Envoy CPU µs per request), JSON answer, median of {} interleaved rounds; the last message is new on every request",
        settings.rounds
    );
    println!("| request | body | Envoy | + no-op Wasm | + KalGuard, cache on | + KalGuard, cache off | KalGuard adds, cache on | cache off |");
    println!("|---|---|---|---|---|---|---|---|");
    let single = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a careful financial analyst."},
        {"role": "user", "content": format!("{FRESH_MARK} {}", user_text(1024))}]})
    .to_string();
    let mut adds = Vec::new();
    for (name, body) in [
        ("1 KB single message", single),
        (
            "64 KB unchanged history + 1 KB new",
            history_body(64 * 1024),
        ),
    ] {
        let mut p50 = [vec![], vec![], vec![], vec![]];
        let mut cpu = [vec![], vec![], vec![], vec![]];
        for _ in 0..settings.rounds {
            for (i, stack) in stacks.iter().enumerate() {
                let before = cpu_ns(stack.envoy_pid());
                let sorted =
                    super::latencies(&stack.url("/v1/chat/completions"), token, &body, settings)?;
                if let (Some(before), Some(after)) = (before, cpu_ns(stack.envoy_pid())) {
                    cpu[i].push(after.saturating_sub(before) as f64 / 1e3 / sorted.len() as f64);
                }
                p50[i].push(percentile(&sorted, 0.5));
            }
        }
        let [e, n, k_on, k_off] = p50.map(median);
        let [ec, nc, kc_on, kc_off] = cpu.map(median);
        println!(
            "| {name} | {} | {e:.0} ({ec:.0}) | {n:.0} ({nc:.0}) | {k_on:.0} ({kc_on:.0}) | {k_off:.0} ({kc_off:.0}) | {:+.0} | {:+.0} |",
            super::kb(body.len()),
            k_on - e,
            k_off - e
        );
        adds.push((k_on - e, k_off - e));
    }
    if let [(single_on, _), (history_on, history_off)] = adds[..] {
        println!(
            "64 KB history + 1 KB new adds {:.1}x what a 1 KB message adds with the cache on ({:.1}x with it off)",
            history_on / single_on.max(1.0),
            history_off / single_on.max(1.0)
        );
    }
    Ok(())
}

pub(super) fn session_table(token: &str, settings: &Settings) -> Result<(), String> {
    let bare = start(Options {
        with_filter: false,
        ..base_options(1)
    })?;
    let (on, off) = kalguard_pair(settings)?;
    let stacks = [&bare, &on, &off];
    println!(
        "\n## A {SESSION_TURNS}-turn agent session (the whole conversation resent on every turn, 1 KB user message and 1 KB answer per turn): Envoy CPU ms (wall ms) per session, median of {} sessions each",
        settings.rounds
    );
    let agent = super::client();
    let url = |stack: &Stack| stack.url("/v1/chat/completions");
    let mut cpu = [vec![], vec![], vec![]];
    let mut wall = [vec![], vec![], vec![]];
    let mut last_body = 0;
    for round in 0..settings.rounds {
        for (i, stack) in stacks.iter().enumerate() {
            // A session no stack has seen: only its own history can be cached.
            let bodies = session_bodies(round * stacks.len() + i);
            last_body = bodies.last().map_or(0, String::len);
            let before = cpu_ns(stack.envoy_pid());
            let started = Instant::now();
            for body in &bodies {
                send(&agent, &url(stack), token, body)?;
            }
            wall[i].push(started.elapsed().as_secs_f64() * 1e3);
            if let (Some(before), Some(after)) = (before, cpu_ns(stack.envoy_pid())) {
                cpu[i].push(after.saturating_sub(before) as f64 / 1e6);
            }
        }
    }
    let [e, k_on, k_off] = cpu.map(median);
    let [we, wk_on, wk_off] = wall.map(median);
    println!("| Envoy | + KalGuard, cache on | + KalGuard, cache off | KalGuard adds, cache on | cache off | last turn's body |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {e:.1} ({we:.0}) | {k_on:.1} ({wk_on:.0}) | {k_off:.1} ({wk_off:.0}) | {:+.1} | {:+.1} | {} |",
        k_on - e,
        k_off - e,
        super::kb(last_body)
    );
    let [hits, misses, evictions] = cache_counts(&on);
    println!("verdict cache (cache on): {hits} hits, {misses} misses, {evictions} evictions");
    cache_full_memory(token, settings)
}

/// The verdict cache's hit, miss and evict counters of `stack`.
fn cache_counts(stack: &Stack) -> [u64; 3] {
    let stats = stack.admin("/stats?filter=kalguard_verdict_cache");
    ["hit", "miss", "evict"].map(|outcome| {
        let name = format!("wasmcustom.kalguard_verdict_cache.outcome.{outcome}: ");
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    })
}

/// Envoy's resident memory with one worker, warmed up, then once its verdict
/// cache is full (it evicts) of new 1 KB messages; at most about 30 s of load.
fn cache_full_memory(token: &str, settings: &Settings) -> Result<(), String> {
    let stack = start(kalguard_options(1, settings))?;
    let url = stack.url("/v1/chat/completions");
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": format!("{FRESH_MARK} {}", user_text(1024))}]})
    .to_string();
    let warm = std::time::Duration::from_millis(300);
    let _ = super::saturate(&url, token, &body, 4, warm);
    let (before, _) = super::envoy_memory(&stack);
    let (before_misses, started) = (cache_counts(&stack)[1], Instant::now());
    while cache_counts(&stack)[2] == 0 && started.elapsed().as_secs() < 30 {
        let _ = super::saturate(
            &url,
            token,
            &body,
            4,
            std::time::Duration::from_millis(1000),
        );
    }
    let _ = super::saturate(&url, token, &body, 4, warm);
    let (after, _) = super::envoy_memory(&stack);
    let [_, misses, evictions] = cache_counts(&stack);
    println!(
        "memory, one worker: Envoy RSS {} warmed up, {} once the verdict cache is full ({} new texts, {evictions} evictions): {:+.1} MiB",
        super::mib(before as f64),
        super::mib(after as f64),
        misses - before_misses,
        (after as f64 - before as f64) / (1 << 20) as f64
    );
    Ok(())
}
