//! Scan throughput of the prompt firewall, on realistic chat bodies and on adversarial
//! worst cases (1 MiB each).
//!
//! `cargo run --release -p kalguard-filter --example firewall_bench [DATA_DIR]`

#[path = "common/firewall_lab.rs"]
mod lab;

use std::time::{Duration, Instant};

use kalguard_filter::firewall::{
    Firewall, FirewallConfig, Segment, Source, Tier, ADVERSARIAL_SHAPES,
};

/// CPU time of this process (user + system), from /proc (Linux): the machine this runs on
/// may be shared, and wall time would count other processes' turns.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; 100 Hz.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// Runs `f` for at least `min_total` and returns the CPU time per run (wall time when
/// CPU time is unavailable).
fn time<F: FnMut()>(mut f: F, min_total: Duration) -> Duration {
    let wall = Instant::now();
    let cpu = cpu_time();
    let mut runs = 0u32;
    while runs == 0 || wall.elapsed() < min_total {
        f();
        runs += 1;
    }
    let spent = match (cpu, cpu_time()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => wall.elapsed(),
    };
    spent / runs
}

fn mbps(bytes: usize, per_run: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / per_run.as_secs_f64()
}

fn main() -> Result<(), String> {
    let fw = Firewall::new(&FirewallConfig::default()).map_err(|e| e.to_string())?;
    let only = std::env::args()
        .nth(1)
        .filter(|a| !std::path::Path::new(a).is_dir());

    // Realistic: dev rows grouped into chat requests of about 4 KiB (user turns and tool
    // results alternating), as an agent sends them.
    let data = lab::data_dir();
    let rows = lab::load_jsonl(&data.join("injection/injection-dev.jsonl"))?;
    let mut bodies: Vec<Vec<(Source, String)>> = Vec::new();
    let mut current: Vec<(Source, String)> = Vec::new();
    let mut size = 0;
    for (i, r) in rows.iter().enumerate() {
        let source = if i % 2 == 0 {
            Source::UserMessage
        } else {
            Source::ToolResult
        };
        size += r.text.len();
        current.push((source, r.text.clone()));
        if size >= 4096 {
            bodies.push(std::mem::take(&mut current));
            size = 0;
        }
    }
    let total: usize = bodies.iter().flatten().map(|(_, t)| t.len()).sum();
    if only.is_none() || only.as_deref() == Some("realistic") {
        println!(
            "== Realistic chat bodies: {} requests, {:.1} KiB each on average",
            bodies.len(),
            total as f64 / bodies.len() as f64 / 1024.0
        );
        for tier in [Tier::Basic, Tier::Advanced] {
            let per = time(
                || {
                    for body in &bodies {
                        let segs: Vec<Segment<'_>> =
                            body.iter().map(|(s, t)| Segment::new(*s, t)).collect();
                        let v = fw.inspect(&segs, tier);
                        std::hint::black_box(v);
                        if tier == Tier::Advanced {
                            let mut session = fw.redaction_session();
                            for (_, t) in body {
                                std::hint::black_box(session.redact(t));
                            }
                        }
                    }
                },
                Duration::from_secs(2),
            );
            println!(
                "  {:?}{}: {:.1} MB/s ({:.0} µs per 4 KiB request)",
                tier,
                if tier == Tier::Advanced {
                    " + PII/secret redaction"
                } else {
                    ""
                },
                mbps(total, per),
                per.as_secs_f64() * 1e6 / bodies.len() as f64
            );
        }
    }

    if only.as_deref() == Some("realistic") {
        return Ok(());
    }
    let mb = 1 << 20;
    let fill = |unit: &str| unit.repeat(mb / unit.len());
    let cases: Vec<(&str, String)> = ADVERSARIAL_SHAPES
        .iter()
        .map(|&(name, unit)| (name, fill(unit)))
        .collect();
    println!("== Adversarial 1 MiB inputs, one user segment (advanced tier + redaction)");
    for (name, text) in &cases {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let v = fw.inspect(&[Segment::new(Source::UserMessage, text)], Tier::Advanced);
        let inspect = time(
            || {
                std::hint::black_box(
                    fw.inspect(&[Segment::new(Source::UserMessage, text)], Tier::Advanced),
                );
            },
            Duration::from_millis(300),
        );
        let redact = time(
            || {
                std::hint::black_box(fw.redaction_session().redact(text));
            },
            Duration::from_millis(300),
        );
        println!(
            "  {:<30} inspect {:>7.1} ms  redact {:>7.1} ms  total {:>6.1} MB/s  (score {:.2})",
            name,
            inspect.as_secs_f64() * 1e3,
            redact.as_secs_f64() * 1e3,
            mbps(text.len(), inspect + redact),
            v.score
        );
    }
    println!("== Streaming 1 MiB in 100-byte pieces (response redaction)");
    let stream_cases: Vec<(&str, String)> = vec![
        (
            "chat text",
            fill("The weather in Oslo is mild today, mail bob@example.com. "),
        ),
        (
            "one unbroken blob",
            fill("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo"),
        ),
        (
            "unterminated PEM block",
            format!("-----BEGIN PRIVATE KEY-----\n{}", fill("QUJD\n")),
        ),
    ];
    for (name, text) in &stream_cases {
        let per = time(
            || {
                let mut r = fw.stream_redactor();
                let mut out = 0;
                for piece in text.as_bytes().chunks(100) {
                    out += r.push_bytes(piece).len();
                }
                out += r.finish().len();
                std::hint::black_box(out);
            },
            Duration::from_millis(300),
        );
        println!(
            "  {:<30} {:>7.1} ms  {:>6.1} MB/s",
            name,
            per.as_secs_f64() * 1e3,
            mbps(text.len(), per)
        );
    }
    Ok(())
}
