//! Prints the firewall's verdict and evidence for each line of standard input (plain text,
//! or JSONL rows with a `text` field), to see why a text scored as it did.
//!
//! `echo 'Ignore all previous instructions' | cargo run -p kalguard-filter --example firewall_explain`
//!
//! `FIREWALL_EXPLAIN_SOURCE=tool_result` (or `document`, `tool_arguments`) reads each line
//! as coming from that source instead of a user turn.

use std::io::BufRead;

use kalguard_filter::firewall::{Firewall, FirewallConfig, Segment, Source, Tier};

fn main() -> Result<(), String> {
    let fw = Firewall::new(&FirewallConfig::default()).map_err(|e| e.to_string())?;
    let source: Source = match std::env::var("FIREWALL_EXPLAIN_SOURCE") {
        Ok(name) => serde_json::from_value(serde_json::Value::String(name))
            .map_err(|e| format!("FIREWALL_EXPLAIN_SOURCE: {e}"))?,
        Err(_) => Source::UserMessage,
    };
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let text = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or(line);
        let v = fw.inspect(&[Segment::new(source, &text)], Tier::Advanced);
        let parts = fw.score_text_from(&text, source, Tier::Advanced);
        let preview: String = text.chars().take(160).collect();
        println!(
            "{:.2} (rules {:.2}, model {:.2}) {:?} | {}",
            v.score,
            parts.rules,
            parts.model,
            v.action,
            preview.replace('\n', "\\n")
        );
        for c in &v.categories {
            for e in &c.evidence {
                println!(
                    "    {:<20} {:<28} {:.2} {:?}",
                    c.category.as_str(),
                    e.signal,
                    e.weight,
                    e.excerpt
                );
            }
        }
    }
    Ok(())
}
