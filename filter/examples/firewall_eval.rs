//! Measures the prompt firewall: per-source detection and false-positive rates on the dev
//! split, leave-one-source-out and leave-one-language-out figures for the learned scorer
//! (per source and per language: flagged, blocked, false positives), and PII
//! precision/recall per entity type on the Presidio records.
//!
//! `cargo run --release -p kalguard-filter --example firewall_eval [DATA_DIR] [--no-held-out]`
//!
//! "Flagged" means score ≥ the sanitize threshold (0.5): the request would not pass
//! unchanged. "Blocked" means score ≥ the block threshold (0.8).

#[path = "common/firewall_lab.rs"]
mod lab;

use std::collections::BTreeMap;

use kalguard_filter::firewall::{
    Firewall, FirewallConfig, LearnedScorer, SensitiveKind, Source, Tier,
};
use serde::Deserialize;

struct Tally {
    n: usize,
    flagged: usize,
    blocked: usize,
}

fn tally(fw: &Firewall, rows: &[&lab::Row], tier: Tier) -> Tally {
    tally_from(fw, rows, Source::UserMessage, tier)
}

/// [`tally`] of texts read as coming from `source` (a tool result, a document).
fn tally_from(fw: &Firewall, rows: &[&lab::Row], source: Source, tier: Tier) -> Tally {
    let cfg = fw.config();
    let mut t = Tally {
        n: 0,
        flagged: 0,
        blocked: 0,
    };
    for r in rows {
        let s = fw.score_text_from(&r.text, source, tier).score;
        t.n += 1;
        t.flagged += usize::from(s >= cfg.sanitize_threshold);
        t.blocked += usize::from(s >= cfg.block_threshold);
    }
    t
}

fn pct(a: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * a as f64 / n as f64
    }
}

fn by_source(rows: &[lab::Row]) -> BTreeMap<(String, String), Vec<&lab::Row>> {
    let mut m: BTreeMap<(String, String), Vec<&lab::Row>> = BTreeMap::new();
    for r in rows {
        m.entry((r.label.clone(), r.source.clone()))
            .or_default()
            .push(r);
    }
    m
}

fn dev_report(data: &std::path::Path) -> Result<(), String> {
    let dev = lab::load_jsonl(&data.join("injection/injection-dev.jsonl"))?;
    let full = Firewall::new(&FirewallConfig::default()).map_err(|e| e.to_string())?;
    let rules_only = Firewall::with_scorer(
        &FirewallConfig::default(),
        LearnedScorer::from_bytes(&LearnedScorer::to_bytes(8, -30.0, &[0.0; 256]))
            .map_err(|e| e.0.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "== Dev split (never trained on): rate of rows flagged (score >= 0.5) / blocked (>= 0.8)"
    );
    println!(
        "{:<8} {:<22} {:>5} | {:>17} | {:>17} | {:>10}",
        "label", "source", "rows", "advanced flag/blk", "basic flag/blk", "rules only"
    );
    for ((label, source), rows) in by_source(&dev) {
        let adv = tally(&full, &rows, Tier::Advanced);
        let basic = tally(&full, &rows, Tier::Basic);
        let rules = tally(&rules_only, &rows, Tier::Advanced);
        println!(
            "{:<8} {:<22} {:>5} | {:>7.1}% {:>7.1}% | {:>7.1}% {:>7.1}% | {:>9.1}%",
            label,
            source,
            adv.n,
            pct(adv.flagged, adv.n),
            pct(adv.blocked, adv.n),
            pct(basic.flagged, basic.n),
            pct(basic.blocked, basic.n),
            pct(rules.flagged, rules.n),
        );
    }
    println!();
    println!("   by category (advanced, flagged), to see which techniques are missed:");
    let mut by_cat: BTreeMap<(String, String, String), (usize, usize)> = BTreeMap::new();
    for r in &dev {
        let s = full.score_text(&r.text, Tier::Advanced).score;
        let e = by_cat
            .entry((r.label.clone(), r.source.clone(), r.category.clone()))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += usize::from(s >= full.config().sanitize_threshold);
    }
    for ((label, source, category), (n, flagged)) in by_cat {
        if source == "inthewild-jailbreaks" || source == "wildguard-benign" {
            continue;
        }
        println!(
            "   {:<7} {:<20} {:<32} {:>4} rows {:>6.1}%",
            label,
            source,
            category,
            n,
            pct(flagged, n)
        );
    }
    let attacks: Vec<&lab::Row> = dev.iter().filter(|r| r.is_attack()).collect();
    let all = tally(&full, &attacks, Tier::Advanced);
    println!(
        "   all dev attacks: {:.1}% flagged (the original KalGuard firewall: 7.7%)",
        pct(all.flagged, all.n)
    );
    recognisable_report(&full, &dev)?;
    println!(
        "   learned scorer weights compiled in: {} bytes",
        full.scorer_size_bytes()
    );
    Ok(())
}

/// CyberSecEval's attacks split by a blind annotation (`firewall-data/
/// cyberseceval-annotation.jsonl`: an annotator who saw neither scores nor categories
/// judged each row's text alone, keyed by a hash of the text, no text kept): many rows
/// attack a system prompt the row does not include ("only talk about cooking", then a
/// plain question), which no filter reading the user's text can tell from a question.
fn recognisable_report(full: &Firewall, dev: &[lab::Row]) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("firewall-data/cyberseceval-annotation.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut annotated: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let key = v["sha256_16"].as_str().unwrap_or_default().to_string();
        let flag = |k: &str| v[k].as_bool().unwrap_or(false);
        annotated.insert(key, (flag("recognisable"), flag("unsure")));
    }
    // (rows, flagged) for: recognisable, recognisable and sure, not recognisable.
    let mut counts = [(0usize, 0usize); 3];
    let mut missing = 0;
    for row in dev.iter().filter(|r| r.source == "cyberseceval-pi-en") {
        let digest = Sha256::digest(row.text.as_bytes());
        let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let Some(&(recognisable, unsure)) = annotated.get(&key) else {
            missing += 1;
            continue;
        };
        let flagged = usize::from(tally(full, &[row], Tier::Advanced).flagged > 0);
        let mut count = |i: usize| {
            counts[i].0 += 1;
            counts[i].1 += flagged;
        };
        if recognisable {
            count(0);
            if !unsure {
                count(1);
            }
        } else {
            count(2);
        }
    }
    let [(a, fa), (s, fs), (b, fb)] = counts;
    println!(
        "   cyberseceval-pi-en by a blind annotation of each text alone: recognisable as an \
         attack {a} rows, {:.1}% flagged ({s} of them sure: {:.1}%); reads as an ordinary \
         request {b} rows, {:.1}% flagged{}",
        pct(fa, a),
        pct(fs, s),
        pct(fb, b),
        if missing > 0 {
            format!(" ({missing} rows not annotated)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// One line of a held-out table: attacks flagged and blocked, benign rows flagged.
fn held_out_line(name: &str, fw: &Firewall, rows: &[&lab::Row]) {
    held_out_line_from(name, fw, rows, Source::UserMessage);
}

/// [`held_out_line`] with the rows read as coming from `source`.
fn held_out_line_from(name: &str, fw: &Firewall, rows: &[&lab::Row], source: Source) {
    let attacks: Vec<&lab::Row> = rows.iter().copied().filter(|r| r.is_attack()).collect();
    let benign: Vec<&lab::Row> = rows.iter().copied().filter(|r| !r.is_attack()).collect();
    let a = tally_from(fw, &attacks, source, Tier::Advanced);
    let b = tally_from(fw, &benign, source, Tier::Advanced);
    let rate = |hits: usize, t: &Tally| {
        if t.n == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", pct(hits, t.n))
        }
    };
    println!(
        "{:<30} {:>7} {:>8} {:>8} {:>7} {:>9}",
        name,
        a.n,
        rate(a.flagged, &a),
        rate(a.blocked, &a),
        b.n,
        rate(b.flagged, &b),
    );
}

fn held_out_header(title: &str) {
    println!();
    println!("{title}");
    println!(
        "{:<30} {:>7} {:>8} {:>8} {:>7} {:>9}",
        "held out", "attacks", "flagged", "blocked", "benign", "false pos"
    );
}

/// Appends each held-out row's rule and model scores to `$FIREWALL_OOF_DUMP`.
fn dump_out_of_fold(fw: &Firewall, weights: &[u8], rows: &[&lab::Row]) -> Result<(), String> {
    let Ok(path) = std::env::var("FIREWALL_OOF_DUMP") else {
        return Ok(());
    };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    let scorer = LearnedScorer::from_bytes(weights).map_err(|e| e.0.to_string())?;
    for r in rows {
        let s = fw.score_text(&r.text, Tier::Advanced);
        // The scorer's own probability, whether or not the rules let it count.
        let ungated = scorer.probability(&fw.scorer_features(&r.text));
        let line = serde_json::json!({"source": r.source, "label": r.label,
            "language": r.language, "category": r.category, "text": r.text,
            "rules": s.rules, "model": s.model, "ungated": ungated});
        writeln!(f, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Sources whose rows are data an agent reads (e-mails, files, web pages, tool outputs,
/// news and encyclopaedia paragraphs): the held-out table also reads them as a tool's
/// result, where instructions in data weigh more.
const DATA_SOURCES: &[&str] = &[
    "agentdojo",
    "asb",
    "garak-latentinjection",
    "ud-pud",
    "xquad",
];

/// Leave-one-source-out over every training source, then leave-one-language-out over
/// the public multilingual corpus: the scorer is retrained without the held-out rows
/// and the full engine (advanced tier) judges them. Rules were not tuned per fold, so
/// only the scorer is truly held out; rules written while reading a source are marked
/// in `lexicon` by what they describe (a technique), never by a sample.
fn held_out_report() -> Result<(), String> {
    let rows = lab::training_rows()?;
    let public = lab::public_rows()?;
    let base = Firewall::new(&FirewallConfig::default()).map_err(|e| e.to_string())?;
    let examples = lab::featurize(&base, &rows);
    let mut sources: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    held_out_header(
        "== Leave-one-source-out (train split + generated + public multilingual): scorer \
         retrained without the source;\n   flagged = score >= sanitize threshold, blocked = \
         >= block threshold, false pos = benign rows flagged",
    );
    for source in sources {
        let weights = lab::train(&examples, |e| e.source != source);
        let fw = lab::firewall_with(&weights)?;
        let held: Vec<&lab::Row> = rows.iter().filter(|r| r.source == source).collect();
        dump_out_of_fold(&fw, &weights, &held)?;
        held_out_line(source, &fw, &held);
        if DATA_SOURCES.contains(&source) {
            held_out_line_from("  read as a tool result", &fw, &held, Source::ToolResult);
        }
    }
    // Categories never trained on are held out of every model: judge them with the one
    // trained on everything.
    let full = lab::firewall_with(&lab::train(&examples, |_| true))?;
    for category in lab::NOT_TRAINED_CATEGORIES {
        let held: Vec<&lab::Row> = public.iter().filter(|r| r.category == *category).collect();
        held_out_line(&format!("(never trained) {category}"), &full, &held);
    }

    let mut languages: Vec<&str> = public.iter().map(|r| r.language.as_str()).collect();
    languages.sort_unstable();
    languages.dedup();
    held_out_header(
        "== Leave-one-language-out (public multilingual corpus): scorer retrained without \
         the language's rows;\n   its attacks by technique (trained categories), then plain \
         harmful requests (never trained)",
    );
    let mut technique = (0usize, 0usize);
    let mut non_english = (0usize, 0usize);
    for language in languages {
        let weights = lab::train(&examples, |e| e.language != language);
        let fw = lab::firewall_with(&weights)?;
        let held: Vec<&lab::Row> = public.iter().filter(|r| r.language == language).collect();
        dump_out_of_fold(&fw, &weights, &held)?;
        let (trained, plain): (Vec<&lab::Row>, Vec<&lab::Row>) = held
            .iter()
            .partition(|r| !lab::NOT_TRAINED_CATEGORIES.contains(&r.category.as_str()));
        held_out_line(&format!("{language} techniques"), &fw, &trained);
        let plain_attacks: Vec<&lab::Row> =
            plain.iter().copied().filter(|r| r.is_attack()).collect();
        if !plain_attacks.is_empty() {
            held_out_line(&format!("{language} harmful requests"), &fw, &plain_attacks);
        }
        let attacks: Vec<&lab::Row> = trained.iter().copied().filter(|r| r.is_attack()).collect();
        let t = tally(&fw, &attacks, Tier::Advanced);
        technique.0 += t.n;
        technique.1 += t.flagged;
        if language != "en" {
            non_english.0 += t.n;
            non_english.1 += t.flagged;
        }
    }
    println!(
        "   technique attacks, each judged without its language: {:.1}% flagged of {} \
         ({:.1}% of the {} not in English)",
        pct(technique.1, technique.0),
        technique.0,
        pct(non_english.1, non_english.0),
        non_english.0
    );
    Ok(())
}

#[derive(Deserialize)]
struct PiiRecord {
    full_text: String,
    spans: Vec<PiiSpan>,
}

#[derive(Deserialize)]
struct PiiSpan {
    entity_type: String,
    start_position: usize,
    end_position: usize,
}

fn presidio_type(kind: SensitiveKind) -> Option<&'static str> {
    Some(match kind {
        SensitiveKind::Email => "EMAIL_ADDRESS",
        SensitiveKind::Phone => "PHONE_NUMBER",
        SensitiveKind::CreditCard => "CREDIT_CARD",
        SensitiveKind::Iban => "IBAN_CODE",
        SensitiveKind::UsSsn => "US_SSN",
        SensitiveKind::IpAddress => "IP_ADDRESS",
        _ => return None,
    })
}

fn pii_report(data: &std::path::Path) -> Result<(), String> {
    let fw = Firewall::new(&FirewallConfig {
        tier: Tier::Advanced,
        ..FirewallConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let types = [
        "CREDIT_CARD",
        "EMAIL_ADDRESS",
        "IBAN_CODE",
        "IP_ADDRESS",
        "PHONE_NUMBER",
        "US_SSN",
    ];
    // FIREWALL_PII_DUMP=1: every miss and every false find, with its context.
    let dump = std::env::var_os("FIREWALL_PII_DUMP").is_some();
    println!();
    println!("== PII on Presidio synthetic records (overlap match, same type)");
    for file in [
        "presidio-generated-small.json",
        "presidio-generated-large.json",
    ] {
        let path = data.join("pii").join(file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let records: Vec<PiiRecord> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        // (tp_pred, pred, tp_gold, gold) per type.
        let mut m: BTreeMap<&str, [usize; 4]> = types.iter().map(|t| (*t, [0; 4])).collect();
        let mut other_fp = 0usize;
        for rec in &records {
            // Presidio positions count characters; ours are bytes.
            let char_at: Vec<usize> = {
                let mut v: Vec<usize> = rec.full_text.char_indices().map(|(b, _)| b).collect();
                v.push(rec.full_text.len());
                v
            };
            let to_char = |byte: usize| char_at.partition_point(|&b| b < byte);
            let found = fw.find_sensitive(&rec.full_text);
            let preds: Vec<(&str, usize, usize)> = found
                .iter()
                .filter_map(|f| {
                    presidio_type(f.kind).map(|t| (t, to_char(f.start), to_char(f.end)))
                })
                .collect();
            other_fp += found
                .iter()
                .filter(|f| presidio_type(f.kind).is_none())
                .count();
            let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
            let chars: Vec<char> = rec.full_text.chars().collect();
            let show = |s: usize, e: usize| -> String {
                chars.get(s..e).unwrap_or_default().iter().collect()
            };
            for &(t, s, e) in &preds {
                let Some(c) = m.get_mut(t) else { continue };
                c[1] += 1;
                if rec.spans.iter().any(|g| {
                    g.entity_type == t && overlaps((s, e), (g.start_position, g.end_position))
                }) {
                    c[0] += 1;
                } else if dump {
                    let gold: Vec<String> = rec
                        .spans
                        .iter()
                        .filter(|g| overlaps((s, e), (g.start_position, g.end_position)))
                        .map(|g| {
                            format!(
                                "{} {:?}",
                                g.entity_type,
                                show(g.start_position, g.end_position)
                            )
                        })
                        .collect();
                    let context = show(s.saturating_sub(30), (e + 30).min(chars.len()));
                    println!("  FP {t} {:?} gold {gold:?} | {context:?}", show(s, e));
                }
            }
            for g in &rec.spans {
                let Some(c) = m.get_mut(g.entity_type.as_str()) else {
                    continue;
                };
                c[3] += 1;
                if preds.iter().any(|&(t, s, e)| {
                    t == g.entity_type && overlaps((s, e), (g.start_position, g.end_position))
                }) {
                    c[2] += 1;
                } else if dump {
                    println!(
                        "  FN {} {:?}",
                        g.entity_type,
                        show(g.start_position, g.end_position)
                    );
                }
            }
        }
        println!("{file} ({} records)", records.len());
        println!(
            "  {:<15} {:>6} {:>10} {:>6} {:>8}",
            "type", "gold", "precision", "pred", "recall"
        );
        for (t, c) in &m {
            let p = if c[1] == 0 {
                f64::NAN
            } else {
                100.0 * c[0] as f64 / c[1] as f64
            };
            let r = if c[3] == 0 {
                f64::NAN
            } else {
                100.0 * c[2] as f64 / c[3] as f64
            };
            println!(
                "  {:<15} {:>6} {:>9.1}% {:>6} {:>7.1}%",
                t, c[3], p, c[1], r
            );
        }
        println!("  secret-type findings on this PII text (all false positives): {other_fp}");
    }
    Ok(())
}

fn main() -> Result<(), String> {
    let data = lab::data_dir();
    dev_report(&data)?;
    pii_report(&data)?;
    if !std::env::args().any(|a| a == "--no-held-out") {
        held_out_report()?;
    }
    Ok(())
}
