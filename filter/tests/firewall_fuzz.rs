//! Property tests of the prompt firewall on generated input: no panic, bounded output,
//! deterministic verdicts, and stream redaction equal to whole-text redaction however
//! the stream is cut. A small deterministic generator (no extra dependency) mixes the
//! characters that stress each stage: multibyte and invisible characters, digits and
//! separators, base64/hex alphabets, quotes, chat-template punctuation, trigger words.

use kalguard_filter::firewall::{Firewall, FirewallConfig, Segment, Source, TextForm, Tier};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "ignore",
    " previous ",
    "instructions",
    "忽略",
    "指令",
    "é",
    "😀",
    "\u{200B}",
    "\u{202E}",
    "\u{E0041}",
    "\u{E0069}",
    "ＩＧＮ",
    "𝐢𝐠𝐧",
    "і",
    "0",
    "1",
    "3",
    "4",
    "7",
    "@",
    "$",
    " ",
    "  ",
    "\n",
    "\t",
    "-",
    ".",
    ":",
    "=",
    "'",
    "\"",
    "`",
    "(",
    ")",
    "+",
    "%",
    "%20",
    "%41",
    "\\x41",
    "<|im_start|>",
    "[INST]",
    "![",
    "](http://a.b/?q={x})",
    "AKIA",
    "sk-",
    "eyJ",
    "ghp_",
    "@",
    "4111",
    "1111",
    "555-",
    "0123",
    "GB82",
    "WEST",
    "::",
    "ff",
    "==",
    "QUJD",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    "password=",
    "Xk9#mP2$",
    "you are now",
    "no restrictions",
    "DAN",
    "क्ष",
    "ল্প",
    "ไทย",
    "한국어",
    "\u{0}",
    "\u{7F}",
    "\u{FEFF}",
    "\u{FFFD}",
];

fn random_text(rng: &mut Rng, pieces: usize) -> String {
    let mut s = String::new();
    for _ in 0..pieces {
        s.push_str(PIECES[rng.below(PIECES.len())]);
    }
    s
}

#[allow(clippy::unwrap_used)]
fn firewall() -> Firewall {
    Firewall::new(&FirewallConfig {
        tier: Tier::Advanced,
        max_decode_depth: 4,
        ..FirewallConfig::default()
    })
    .unwrap()
}

#[test]
fn random_inputs_never_panic_and_scores_stay_in_range() {
    let fw = firewall();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for round in 0..1200 {
        let text = random_text(&mut rng, 1 + round % 200);
        let v = fw.inspect(
            &[
                Segment::new(Source::UserMessage, &text),
                Segment::new(Source::ToolResult, &text),
            ],
            Tier::Advanced,
        );
        assert!((0.0..=1.0).contains(&v.score), "{text:?}");
        assert_eq!(
            v,
            fw.inspect(
                &[
                    Segment::new(Source::UserMessage, &text),
                    Segment::new(Source::ToolResult, &text)
                ],
                Tier::Advanced
            )
        );
        let _ = fw.sanitize(&text);
        let _ = fw.scan_response(&text);
        let mut session = fw.redaction_session();
        if let Some(red) = session.redact(&text) {
            assert!(!red.contains("AKIAIOSFODNN7EXAMPLE"));
        }
    }
}

#[test]
fn random_bytes_through_the_stream_redactor() {
    let fw = firewall();
    let mut rng = Rng(0xFACE_FEED_0000_0002);
    for _ in 0..300 {
        let len = rng.below(3000);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut r = fw.stream_redactor();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let n = 1 + rng.below(64);
            let end = (at + n).min(bytes.len());
            out.extend(r.push_bytes(&bytes[at..end]));
            at = end;
        }
        out.extend(r.finish().into_bytes());
        assert!(std::str::from_utf8(&out).is_ok());
    }
}

#[test]
fn stream_redaction_matches_whole_text_redaction_for_any_cut() {
    let fw = firewall();
    let mut rng = Rng(0x0DDB_A110_0000_0003);
    for _ in 0..200 {
        let mut text = String::new();
        for _ in 0..40 {
            text.push_str(match rng.below(8) {
                0 => "mail bob.smith@example.com ",
                1 => "key AKIAIOSFODNN7EXAMPLE ",
                2 => "card 4111 1111 1111 1111 ",
                3 => "tok ghp_abcdefghijklmnopqrstuvwxyz0123456789 ",
                4 => "héllo wörld 😀 ",
                5 => "call +44 20 7946 0958 ",
                _ => "some ordinary words here ",
            });
        }
        let whole = fw
            .redaction_session()
            .redact(&text)
            .unwrap_or_else(|| text.clone());
        let mut r = fw.stream_redactor();
        let mut out = String::new();
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + 1 + rng.below(40)).min(bytes.len());
            out.push_str(&String::from_utf8_lossy(&r.push_bytes(&bytes[at..end])));
            at = end;
        }
        out.push_str(&r.finish());
        assert_eq!(out, whole);
    }
}

/// Pieces of JSON source text, valid and broken: escapes of every kind (surrogate
/// pairs, lone halves, truncated `\u`), values spelled with escapes, quotes.
const JSON_PIECES: &[&str] = &[
    r"bob\u0040example.com ",
    r"\u0062ob@ex\u0061mple.com ",
    r"password: Xk9\\mP2\/vL8q ",
    r"AKIA\u0049OSFODNN7EXAMPLE ",
    r"\ud83d\ude00",
    r"\ud83d",
    r"\ude00",
    r"\u00e9",
    r"\u12",
    r"\",
    r"\\",
    r#"\""#,
    r"\n4111 1111 1111 1111 ",
    r"\x",
    "\"",
    "plain words ",
    "héllo 😀 ",
];

#[test]
fn json_text_in_any_pieces_never_panics_and_stays_json() {
    let fw = firewall();
    let mut rng = Rng(0x1550_0000_0000_0004);
    let mut checked = 0;
    for round in 0..400 {
        // Every other round only from the pieces that keep the JSON valid.
        let valid_pieces = [0, 1, 2, 3, 4, 7, 10, 11, 12, 15, 16];
        let mut inner = String::new();
        for _ in 0..rng.below(60) {
            let piece = if round % 2 == 0 {
                valid_pieces[rng.below(valid_pieces.len())]
            } else {
                rng.below(JSON_PIECES.len())
            };
            inner.push_str(JSON_PIECES[piece]);
        }
        let text = format!("{{\"k\": \"{inner}\"}}");
        let valid = serde_json::from_str::<serde_json::Value>(&text).is_ok();
        assert!(valid || round % 2 == 1, "round {round}: {text}");
        checked += usize::from(valid);
        let whole = fw
            .redaction_session()
            .redact_as(&text, TextForm::Json)
            .unwrap_or_else(|| text.clone());
        let mut r = fw.stream_redactor().of_form(TextForm::Json);
        let mut out = String::new();
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        while at < chars.len() {
            let end = (at + 1 + rng.below(40)).min(chars.len());
            out.push_str(&r.push_text(&chars[at..end].iter().collect::<String>()));
            at = end;
        }
        out.push_str(&r.finish());
        for redacted in [&whole, &out] {
            if valid {
                let value: serde_json::Value = serde_json::from_str(redacted)
                    .unwrap_or_else(|e| panic!("round {round}: {e}: {text} -> {redacted}"));
                let decoded = value.to_string();
                for leaked in ["bob@example.com", "Xk9", "AKIAIOSFODNN7EXAMPLE", "4111"] {
                    assert!(
                        !decoded.contains(leaked),
                        "round {round}: {text} -> {redacted}"
                    );
                }
            }
        }
    }
    assert!(checked >= 200, "{checked} valid texts");
}
