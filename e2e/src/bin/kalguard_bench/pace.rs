//! Streamed answers at a model's pace: time to the first text and the gaps
//! between text events, through KalGuard against the stand-in directly.

use super::*;

/// Milliseconds between the stand-in's events: with pieces of four to ten characters,
/// some 300 to 600 characters a second, a fast model's pace.
pub(super) const PACE_DELAY_MS: &str = "15";

/// Rounds per answer and path, interleaved.
pub(super) const PACE_ROUNDS: usize = 3;

/// `text` in pieces as a model's tokenizer sends them: a common word with the space
/// before it, a longer one (a key, a number, an address) cut every four characters.
pub(super) fn model_pieces(text: &str) -> Vec<String> {
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
pub(super) fn pace_answers() -> [(&'static str, String); 3] {
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
pub(super) struct Paced {
    /// From sending the request to the first event with text.
    first: Duration,
    /// Between consecutive events with text.
    gaps: Vec<Duration>,
    /// From sending the request to `[DONE]`.
    whole: Duration,
    text: String,
}

pub(super) fn paced_stream(
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

pub(super) fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

pub(super) fn stream_pace(token: &str) -> Result<(), String> {
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
