//! Differential tests: the engine's fast paths give exactly what the straightforward
//! implementations they replaced give (kept here as oracles), on the repository's
//! multilingual examples, the development set when it is present, the adversarial
//! shapes and generated text dense in rule words.

use super::super::normalize::normalize;
use super::super::ADVERSARIAL_SHAPES;
use super::*;

/// Texts to compare on: every example row we have at hand, the adversarial shapes, and
/// seeded random sequences of the rules' own words and classes' words.
fn corpus() -> Vec<String> {
    let mut texts = Vec::new();
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        manifest.join("firewall-data/kalguard-generated.jsonl"),
        manifest.join("firewall-data/cyberseceval-annotation.jsonl"),
        manifest.join("../../shared/data/injection/injection-dev.jsonl"),
        manifest.join("../../../shared/data/injection/injection-dev.jsonl"),
    ];
    for file in files {
        let Ok(lines) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in lines.lines() {
            if let Ok(row) = serde_json::from_str::<serde_json::Value>(line) {
                if let Some(text) = row.get("text").and_then(|t| t.as_str()) {
                    texts.push(text.to_owned());
                }
            }
        }
    }
    for (_, unit) in ADVERSARIAL_SHAPES {
        texts.push(unit.repeat(2000 / unit.len() + 1));
    }
    // Words that rules are made of: every literal word of a pattern and a few words of
    // each class, with negations and sentence ends between them.
    let mut vocabulary: Vec<String> = Vec::new();
    for &(_, _, _, pattern) in super::super::lexicon::RULES {
        for part in pattern.split_whitespace() {
            if !part.chars().any(|c| c.is_ascii_uppercase()) && !part.starts_with(['~', '^']) {
                vocabulary.extend(part.split('|').map(str::to_owned));
            }
        }
    }
    for &(_, words) in super::super::lexicon::CLASSES {
        vocabulary.extend(
            words
                .split_whitespace()
                .take(6)
                .map(|w| w.trim_end_matches('*').to_owned()),
        );
    }
    vocabulary.extend([".", "\n", "not", "never", "no", "\"", ":", "the", "and"].map(String::from));
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..3000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 3 + (seed >> 40) as usize % 40;
        let mut text = String::new();
        for _ in 0..len {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Mostly a few nearby words, so multi-step rules complete.
            let pick = (seed >> 33) as usize % vocabulary.len();
            text.push_str(&vocabulary[pick]);
            text.push(' ');
        }
        texts.push(text);
    }
    texts
}

/// Scans `texts` in order with the set-driven matcher and with the oracle, each with
/// one state reused throughout and the matcher with a fresh state too, under exact and
/// typo-tolerant classes; asserts every hit list equal and returns how many fired.
fn hits_as_the_oracles(det: &Detector, texts: &[String]) -> usize {
    let oracle = super::matcher_oracle::Matcher::compile(&det.lexicon).unwrap();
    let mut oracle_state = oracle.state();
    let mut state = det.match_state();
    let mut fired = 0usize;
    for text in texts {
        let norm = normalize(text).text;
        let tokens = tokenize(&norm);
        for classes in [
            det.token_classes(&norm, &tokens),
            det.token_classes_tolerant(&norm, &tokens),
        ] {
            let mut expected = Vec::new();
            oracle.scan(&tokens, &classes, &mut oracle_state, &mut expected);
            let mut got = Vec::new();
            det.matcher.scan(&tokens, &classes, &mut state, &mut got);
            assert_eq!(got, expected, "{text:?}");
            let mut fresh = Vec::new();
            det.matcher
                .scan(&tokens, &classes, &mut det.match_state(), &mut fresh);
            assert_eq!(fresh, expected, "{text:?}");
            fired += expected.len();
        }
    }
    fired
}

/// The set-driven rule matcher fires exactly the hits, in exactly the order, of the
/// list-driven matcher it replaced, text by text and with one state reused throughout.
#[test]
fn rule_matcher_gives_the_oracles_hits() {
    let det = Detector::compile().unwrap();
    let texts = corpus();
    let fired = hits_as_the_oracles(&det, &texts);
    // The corpus exercises the rules, not only quiet text.
    assert!(
        fired > texts.len() / 2,
        "{fired} hits over {} texts",
        texts.len()
    );
}

/// `Detector::token_classes` as it read every token before remembering recent words
/// of every script: each token looked up on its own.
fn token_classes_one_by_one(det: &Detector, text: &str, tokens: &[Token<'_>]) -> Vec<u128> {
    let mut classes: Vec<u128> = tokens.iter().map(|t| det.lexicon.classes(t.text)).collect();
    let mut found = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if !t.text.starts_with(tokenize::is_pair_script) {
            continue;
        }
        det.lexicon
            .run_words(text.get(t.start..).unwrap_or_default(), &mut found);
        for &(mask, chars) in &found {
            for at in [i, i + chars - 2] {
                if let Some(c) = classes.get_mut(at) {
                    *c |= mask;
                }
            }
        }
    }
    classes
}

/// Remembered words give every token, in every script, exactly the classes of its own
/// lookup.
#[test]
fn token_classes_are_each_tokens_own_lookup() {
    let det = Detector::compile().unwrap();
    let mut texts = corpus();
    // Words of many scripts sharing the remembered slots, in changing orders.
    let words = [
        "忽略",
        "之前",
        "指令",
        "無視",
        "игнорируй",
        "инструкции",
        "تجاهل",
        "التعليمات",
        "αγνόησε",
        "เพิกเฉย",
        "ignore",
        "ignora",
        "ignoré",
        "previous",
        "무시",
        "규칙을",
    ];
    for n in 0..200usize {
        let text: Vec<&str> = (0..40)
            .map(|i| words[(i * 7 + n + i / 3) % words.len()])
            .collect();
        texts.push(text.join(" "));
        texts.push(text.concat());
    }
    for text in &texts {
        let norm = normalize(text).text;
        let tokens = tokenize(&norm);
        assert_eq!(
            det.token_classes(&norm, &tokens),
            token_classes_one_by_one(&det, &norm, &tokens),
            "{text:?}"
        );
    }
}

/// Texts aimed at the set-driven matcher's shortcuts: a rule's phrase repeated past its
/// most hits with text going on after it (spent rules), a first step repeated while the
/// rule is under way, one-edit typos of the tolerant anchors, words sharing remembered
/// slots across scripts, words longer than 63 bytes (the literal-word shape table caps
/// lengths there) and words glued across scripts.
fn edge_corpus() -> Vec<String> {
    let mut texts = Vec::new();
    // Each rule's own literal words in pattern order (the first alternative, and the
    // last), and a class word where a class stands.
    let class_word = |class: &str| {
        super::super::lexicon::CLASSES
            .iter()
            .find(|(name, _)| *name == class)
            .and_then(|(_, words)| words.split_whitespace().next())
            .map(|w| w.trim_end_matches('*').to_owned())
    };
    let mut phrases: Vec<Vec<String>> = Vec::new();
    for &(_, _, _, pattern) in super::super::lexicon::RULES {
        for pick_last in [false, true] {
            let mut phrase = Vec::new();
            for part in pattern.split_whitespace() {
                if part.starts_with(['~', '^', '!']) {
                    continue;
                }
                if part.chars().any(|c| c.is_ascii_uppercase()) {
                    phrase.extend(class_word(part));
                } else {
                    let mut alts = part.split('|');
                    let word = if pick_last {
                        alts.next_back()
                    } else {
                        alts.next()
                    };
                    phrase.extend(word.map(str::to_owned));
                }
            }
            phrases.push(phrase);
        }
    }
    let fillers = [
        "and",
        "not",
        ".",
        "\n",
        "the",
        "ignroe",
        "previuos",
        "instrucitons",
        "disregrad",
        "forgett",
        "忽略",
        "игнорируй",
        "ignoreигнорируй",
        "ignore忽略",
    ];
    let long = "a".repeat(63);
    let longer = format!("{}ignore", "b".repeat(60));
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |m: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % m
    };
    for (p, phrase) in phrases.iter().enumerate() {
        // Past the most hits of a data rule, then other phrases after it.
        let mut text = String::new();
        for _ in 0..20 {
            text.push_str(&phrase.join(" "));
            text.push(' ');
        }
        let other = &phrases[(p * 7 + 3) % phrases.len()];
        text.push_str(&other.join(" "));
        text.push(' ');
        text.push_str(&phrase.join(" "));
        texts.push(text);
        // The first step repeated while the rule is under way, with gaps.
        if let Some(first) = phrase.first() {
            let mut text = String::new();
            for _ in 0..6 {
                text.push_str(first);
                text.push(' ');
                if next(2) == 0 {
                    text.push_str(fillers[next(fillers.len())]);
                    text.push(' ');
                }
            }
            text.push_str(&phrase.join(" "));
            text.push(' ');
            text.push_str(&phrase.join(" "));
            texts.push(text);
        }
    }
    for _ in 0..3000 {
        let mut words: Vec<String> = Vec::new();
        for _ in 0..(5 + next(60)) {
            let word = match next(10) {
                0..=5 => {
                    let phrase = &phrases[next(phrases.len())];
                    phrase
                        .get(next(phrase.len().max(1)))
                        .cloned()
                        .unwrap_or_default()
                }
                6 | 7 => fillers[next(fillers.len())].to_owned(),
                8 => [long.clone(), longer.clone(), format!("{long}{long}")][next(3)].clone(),
                _ => {
                    // A rule word with a typo: a byte dropped or two swapped.
                    let phrase = &phrases[next(phrases.len())];
                    let mut w: Vec<u8> = phrase
                        .get(next(phrase.len().max(1)))
                        .map(|w| w.as_bytes().to_vec())
                        .unwrap_or_default();
                    if w.len() > 4 && w.is_ascii() {
                        let at = next(w.len() - 1);
                        if next(2) == 0 {
                            w.remove(at);
                        } else {
                            w.swap(at, at + 1);
                        }
                    }
                    String::from_utf8(w).unwrap_or_default()
                }
            };
            words.push(word);
        }
        texts.push(words.join(" "));
    }
    texts
}

/// The set-driven matcher gives the oracle's hits on [`edge_corpus`], and every token
/// keeps the classes of its own lookup there.
#[test]
fn rule_matcher_gives_the_oracles_hits_on_edge_shapes() {
    let det = Detector::compile().unwrap();
    let texts = edge_corpus();
    for text in &texts {
        let norm = normalize(text).text;
        let tokens = tokenize(&norm);
        assert_eq!(
            det.token_classes(&norm, &tokens),
            token_classes_one_by_one(&det, &norm, &tokens),
            "{text:?}"
        );
    }
    let fired = hits_as_the_oracles(&det, &texts);
    assert!(
        fired > texts.len(),
        "{fired} hits over {} texts",
        texts.len()
    );
}
