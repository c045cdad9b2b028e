//! Trains the prompt firewall's learned scorer and writes
//! `filter/src/firewall/scorer.bin` (compiled into the filter).
//!
//! Training data: `../shared/data/injection/injection-train.jsonl`, our own
//! `filter/firewall-data/kalguard-generated.jsonl` and the public multilingual corpus
//! `filter/firewall-data/public-multilingual.jsonl` (see `lab::training_rows`). The dev
//! split is never read here.
//!
//! `cargo run --release -p kalguard-filter --example firewall_train [DATA_DIR]`

#[path = "common/firewall_lab.rs"]
mod lab;

use std::path::Path;

use kalguard_filter::firewall::{Firewall, FirewallConfig};

fn main() -> Result<(), String> {
    let rows = lab::training_rows()?;
    let fw = Firewall::new(&FirewallConfig::default()).map_err(|e| e.to_string())?;
    let examples = lab::featurize(&fw, &rows);
    let weights = lab::train(&examples, |_| true);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/firewall/scorer.bin");
    std::fs::write(&out, &weights).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "trained on {} rows ({} attack); wrote {} ({} bytes)",
        rows.len(),
        rows.iter().filter(|r| r.is_attack()).count(),
        out.display(),
        weights.len()
    );
    Ok(())
}
