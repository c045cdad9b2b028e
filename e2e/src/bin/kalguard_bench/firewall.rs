//! The firewall natively: scan throughput on chat text and adversarial inputs,
//! through the verdict cache, and answer redaction of long streams.

use super::*;

/// CPU time of this process (user + system) from /proc: the machine may be
/// shared, and wall time would count other processes' turns.
pub(super) fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime, fields 14 and 15 of stat (12 and 13 after the name); 100 Hz.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// CPU time per run of `f`, running it for at least `min_total`.
pub(super) fn cpu_per_run(mut f: impl FnMut(), min_total: Duration) -> Duration {
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

pub(super) fn mb_per_s(bytes: usize, per_run: Duration) -> f64 {
    bytes as f64 / 1e6 / per_run.as_secs_f64().max(1e-9)
}

/// What the filter does to one request text: inspect it, then redact it.
pub(super) fn inspect_and_redact(fw: &Firewall, text: &str) {
    std::hint::black_box(fw.inspect(&[Segment::new(Source::UserMessage, text)], Tier::Advanced));
    std::hint::black_box(fw.redaction_session().redact(text));
}

pub(super) fn firewall_throughput() -> Result<(), String> {
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
pub(super) fn cached_throughput() -> Result<(), String> {
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
pub(super) fn stream_throughput(fw: &Firewall, mib: usize) {
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
