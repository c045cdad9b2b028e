//! Links the whole firewall into a `wasm32-wasip1` binary to measure what it adds to the
//! filter's `.wasm` (the cdylib only links it once the host layer calls it):
//!
//! `cargo build --release --target wasm32-wasip1 -p kalguard-filter --example firewall_wasm_probe`

use std::io::Read;

use kalguard_filter::firewall::{Firewall, FirewallConfig, Segment, Source, Tier};

fn main() {
    let mut text = String::new();
    if std::io::stdin().read_to_string(&mut text).is_err() {
        return;
    }
    let Ok(fw) = Firewall::new(&FirewallConfig::default()) else {
        return;
    };
    let v = fw.inspect(&[Segment::new(Source::UserMessage, &text)], Tier::Advanced);
    let redacted = fw.redaction_session().redact(&text);
    let mut stream = fw.stream_redactor();
    let mut out = stream.push_bytes(text.as_bytes());
    out.extend(stream.finish().into_bytes());
    println!(
        "{:.2} {:?} {} {}",
        v.score,
        v.action,
        redacted.is_some(),
        out.len()
    );
}
