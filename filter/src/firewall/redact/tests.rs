//! Tests of `redact`, beside it.
use super::*;

fn scanner() -> Arc<SensitiveScanner> {
    Arc::new(SensitiveScanner::compile(true, true).unwrap())
}

#[test]
fn parts_are_redacted_as_one_text_and_mapped_back() {
    let mut session = RedactionSession::new(scanner());
    let out = session.redact_parts(&[
        "key AKIA",
        "IOSFODNN",
        "7EXAMPLE and",
        " bob@example.com",
        "ok",
    ]);
    assert_eq!(
        out,
        [
            Some("key [AWS_ACCESS_KEY_1]".into()),
            Some(String::new()),
            Some(" and".into()),
            Some(" [EMAIL_1]".into()),
            None,
        ]
    );
    assert_eq!(session.counts().values().sum::<usize>(), 2);
    // A value whole in its part keeps its end there.
    assert_eq!(
        session.redact_parts(&["mail jane@example.com", "Thanks ", "jane@exa", "mple.com"]),
        [
            Some("mail [EMAIL_2]".into()),
            None,
            Some("[EMAIL_2]".into()),
            Some(String::new()),
        ]
    );
    assert_eq!(session.counts().values().sum::<usize>(), 4);
    assert_eq!(session.redact_parts(&["nothing", "here"]), [None, None]);
}

#[test]
fn same_value_same_placeholder_across_texts() {
    let s = scanner();
    let mut session = RedactionSession::new(s.clone());
    let a = session
        .redact("mail bob@example.com or amy@example.com")
        .unwrap();
    let b = session
        .redact("again BOB@example.com, card 4111-1111-1111-1111")
        .unwrap();
    assert_eq!(a, "mail [EMAIL_1] or [EMAIL_2]");
    assert_eq!(b, "again [EMAIL_1], card [CREDIT_CARD_1]");
    assert_eq!(session.counts().get(&SensitiveKind::Email), Some(&3));
    assert!(session.redact("nothing here").is_none());
}

fn stream(pieces: &[&str]) -> String {
    let s = scanner();
    let mut r = StreamRedactor::new(RedactionSession::new(s.clone()));
    let mut out = String::new();
    for p in pieces {
        out.push_str(&r.push_text(p));
    }
    out.push_str(&r.finish());
    out
}

#[test]
fn value_split_across_pieces_is_caught() {
    let key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";
    let text = format!(
        "{} here is the key {key} and mail bob@example.com end",
        "x ".repeat(100)
    );
    let expected = text
        .replace(key, "[OPENAI_KEY_1]")
        .replace("bob@example.com", "[EMAIL_1]");
    for size in [1, 3, 7, 64, 1000] {
        let bytes: Vec<char> = text.chars().collect();
        let pieces: Vec<String> = bytes.chunks(size).map(|c| c.iter().collect()).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(stream(&refs), expected, "piece size {size}");
    }
}

#[test]
fn fullwidth_and_invisible_forms_are_replaced_whole_in_streams() {
    let email = "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ";
    let card = "4111\u{200B}1111\u{200B}1111\u{200B}1111";
    let text = format!(
        "{} mail {email} or john@example.com, card {card}.",
        "x ".repeat(80)
    );
    let expected = text
        .replace(email, "[EMAIL_1]")
        .replace("john@example.com", "[EMAIL_1]")
        .replace(card, "[CREDIT_CARD_1]");
    for size in [1, 5, 64, 1000] {
        let chars: Vec<char> = text.chars().collect();
        let pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(stream(&refs), expected, "piece size {size}");
    }
}

#[test]
fn long_values_longer_than_the_hold_window_are_held_whole() {
    let jwt = format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJ{}.c2lnbmF0dXJlXzEyMw",
        "c3ViIjoiYWdlbnQi".repeat(20)
    );
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n".repeat(10)
    );
    let text = format!("token {jwt} and key {pem} done");
    let chars: Vec<char> = text.chars().collect();
    let pieces: Vec<String> = chars.chunks(7).map(|c| c.iter().collect()).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    assert_eq!(stream(&refs), "token [JWT_1] and key [PRIVATE_KEY_1] done");
}

#[test]
fn multibyte_char_split_across_byte_chunks() {
    let s = scanner();
    let mut r = StreamRedactor::new(RedactionSession::new(s.clone()));
    let text = "héllo wörld 😀 bob@example.com ".repeat(20);
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(5) {
        out.extend(r.push_bytes(chunk));
    }
    out.extend(r.finish().into_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        text.replace("bob@example.com", "[EMAIL_1]")
    );
}

#[test]
fn json_text_is_read_through_its_escapes() {
    let mut session = RedactionSession::new(scanner());
    let mut redact = |text: &str| session.redact_as(text, TextForm::Json);
    // An escaped `@` is read as itself, and the value found.
    assert_eq!(
        redact(r#"{"to": "bob\u0040example.com", "n": 1}"#).as_deref(),
        Some(r#"{"to": "[EMAIL_1]", "n": 1}"#)
    );
    // Digits spelled as escapes, right after a line-break escape.
    assert_eq!(
        redact(r#"{"card": "x\n\u0033\u003782822463\u00310005"}"#).as_deref(),
        Some(r#"{"card": "x\n[CREDIT_CARD_1]"}"#)
    );
    // The letter of an escape is never taken into a value, so the escape stays whole.
    assert_eq!(
        redact(r#"{"note": "a\nbob@example.com\t\"amy@example.com\""}"#).as_deref(),
        Some(r#"{"note": "a\n[EMAIL_1]\t\"[EMAIL_2]\""}"#)
    );
    // A private key without its end line is cut at 16 KiB: never inside an escape.
    for filler in [r"ab\\", r"a\/", r"\u00e9"] {
        let text = format!(
            r#"{{"k": "-----BEGIN PRIVATE KEY-----\n{}"}}"#,
            filler.repeat(9000)
        );
        let out = redact(&text).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{filler}"
        );
        assert!(
            out.starts_with(r#"{"k": "[PRIVATE_KEY_"#),
            "{filler}: {out:.80}"
        );
    }
    // An escaped backslash is not the start of an escape.
    assert_eq!(redact(r#"{"p": "c:\\u0040x"}"#), None);
    // Prose has no escapes: `nbob@example.com` is another address.
    assert_eq!(
        session.redact("a\\nbob@example.com").as_deref(),
        Some("a\\[EMAIL_3]")
    );
}

/// A JSON text of tool arguments whose string values hold `values`, with the
/// characters at every `step`-th place escaped: `/` as `\/`, others as `\uXXXX`
/// (a surrogate pair past the Basic Multilingual Plane), in upper or lower case.
fn escaped_arguments(values: &[&str], step: usize) -> String {
    let plain = serde_json::to_string(&serde_json::json!({ "values": values })).unwrap();
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in plain.chars().enumerate() {
        let plain_char = in_string && !escaped && c != '\\' && c != '"' && !c.is_whitespace();
        if plain_char && i % step == 0 {
            if c == '/' {
                out.push_str("\\/");
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if i % 2 == 0 {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
        } else {
            out.push(c);
        }
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_string = !in_string;
        }
    }
    out
}

#[test]
fn streamed_json_arguments_stay_json_and_lose_every_value() {
    let values = [
        "line one\nbob@example.com",
        "quoted \"amy@example.com\" and tab\t4111 1111 1111 1111",
        "café ünïcode 😀 AKIAIOSFODNN7EXAMPLE end",
        "back\\slash bob@example.com",
        // A credential with characters JSON may escape inside it.
        "password: Xk9\\mP2/vL8qZé3 done",
    ];
    for step in [1, 2, 3, 5, 7, 1000] {
        let text = escaped_arguments(&values, step);
        let chars: Vec<char> = text.chars().collect();
        for size in [1, 2, 5, 6, 7, 64, 10_000] {
            let mut r =
                StreamRedactor::new(RedactionSession::new(scanner())).of_form(TextForm::Json);
            let mut out = String::new();
            for piece in chars.chunks(size) {
                out.push_str(&r.push_text(&piece.iter().collect::<String>()));
            }
            out.push_str(&r.finish());
            let parsed: serde_json::Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("step {step} size {size}: {e}: {out}"));
            let all = parsed.to_string();
            for value in ["bob@example.com", "amy@example.com", "4111", "AKIA", "Xk9"] {
                assert!(!all.contains(value), "step {step} size {size}: {all}");
            }
            assert!(
                all.contains("[EMAIL_1]") && all.contains("[EMAIL_2]"),
                "{all}"
            );
            assert!(
                all.contains("café ünïcode 😀") && all.contains("back\\\\slash"),
                "{all}"
            );
        }
    }
}

#[test]
fn a_json_stream_is_never_split_inside_an_escape() {
    // Long unbroken runs of escapes: the hold limit, not a space, decides the cut.
    let unit = r#"\u00e9\\\/\ud83d\ude00x\""#;
    let text = format!("{{\"k\": \"{}\"}}", unit.repeat(400));
    let whole = JsonText::decode(&text);
    let boundary = |at: usize| whole.boundary_at_or_before(at) == at;
    for size in [1, 5, 7, 64, 333] {
        let mut r = StreamRedactor::new(RedactionSession::new(scanner())).of_form(TextForm::Json);
        let mut out = String::new();
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(size) {
            out.push_str(&r.push_text(&piece.iter().collect::<String>()));
            // Nothing is redacted: what went out is the text's start. The cut and
            // the start of the context kept for the next scan are at an escape.
            let context_at = out.len() - r.context_len;
            assert!(
                boundary(out.len()) && boundary(context_at),
                "size {size}: cut {}, context {context_at}",
                out.len()
            );
        }
        out.push_str(&r.finish());
        assert_eq!(out, text, "size {size}");
    }
}

#[test]
fn stream_releases_text_as_it_goes() {
    let s = scanner();
    let mut r = StreamRedactor::new(RedactionSession::new(s.clone()));
    let out = r.push_text(&"word ".repeat(200));
    assert_eq!(out.len(), 1000);
    // A piece with no space settles nothing: it is batched, then released with the
    // next scan.
    assert_eq!(r.push_text("ab"), "");
    assert!(!r.found_any());
}

/// The output of `pieces` streamed through one redactor, after each piece.
fn stream_steps(pieces: &[&str], form: TextForm) -> Vec<String> {
    let mut r = StreamRedactor::new(RedactionSession::new(scanner())).of_form(form);
    let mut out = String::new();
    let mut steps = Vec::new();
    for piece in pieces {
        out.push_str(&r.push_text(piece));
        steps.push(out.clone());
    }
    out.push_str(&r.finish());
    steps.push(out);
    steps
}

#[test]
fn plain_words_go_out_as_soon_as_their_space_arrives() {
    let words = [
        "The ",
        "quarterly ",
        "figures ",
        "look ",
        "good, ",
        "thanks. ",
    ];
    let steps = stream_steps(&words, TextForm::Prose);
    for (k, step) in steps.iter().take(words.len()).enumerate() {
        assert_eq!(step, &words[..=k].concat(), "after piece {k}");
    }
    // Words that arrive with their space before them: all but the last go out.
    let words = ["The", " quarterly", " figures", " look", " good"];
    let steps = stream_steps(&words, TextForm::Prose);
    assert_eq!(steps[0], "");
    for k in 1..words.len() {
        assert_eq!(
            steps[k],
            format!("{} ", words[..k].concat()),
            "after piece {k}"
        );
    }
    // Scripts without spaces are no value's characters: they go out at once.
    let steps = stream_steps(&["季度数据", "看起来不错。"], TextForm::Prose);
    assert_eq!(steps[0], "季度数据");
    assert_eq!(steps[1], "季度数据看起来不错。");
}

/// Texts with every kind of value, written as people and models write them.
const VALUE_TEXTS: &[&str] = &[
    "Mail jane.roe@example.org today.",
    "Card 4111 1111 1111 1111 expires soon",
    "Card 4111-1111-1111-1111, thanks",
    "Call +1 (415) 555-0134 x12 or 415.555.0134 now",
    "SSN 078-05-1120 on file",
    "IBAN DE89 3704 0044 0532 0130 00 by Friday",
    "iban gb82 west 1234 5698 7654 32 ok",
    "hosts 10.20.30.40 and 2001:db8::8a2e:370:7334 up",
    "key AKIAIOSFODNN7EXAMPLE and ghp_abcdefghijklmnopqrstuvwxyz0123456789 here",
    "use sk-proj-abcdefghijklmnopqrstuvwx1234 now",
    "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlXzEy done",
    "password = \"Tr0ub4dor &3 horse\" ok",
    "DB_PASSWORD:          hunter2xyz and more",
    "Authorization: Bearer abcdef0123456789abcdef0123 sent",
    "run it --password s3cr3t-Value! now",
    "url postgres://app:S3cr3t!pw@db:5432/x then",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- done",
    "邮箱 ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ 和卡 4111\u{200B}1111\u{200B}1111\u{200B}1111 好",
    "phone ٤١٥ ٥٥٥ ٠١٣٤ ok",
];

#[test]
fn a_value_split_at_any_place_is_redacted_as_if_whole() {
    for text in VALUE_TEXTS {
        let expected = RedactionSession::new(scanner())
            .redact(text)
            .unwrap_or_else(|| text.to_string());
        assert_ne!(&expected, text, "a value in {text:?}");
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        for &(at, _) in &chars {
            let (a, b) = text.split_at(at);
            let out = stream_steps(&[a, b], TextForm::Prose).pop().unwrap();
            assert_eq!(out, expected, "{text:?} split at {at}");
        }
        for size in [1, 2, 3, 5] {
            let pieces: Vec<String> = chars
                .chunks(size)
                .map(|c| c.iter().map(|&(_, ch)| ch).collect())
                .collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let out = stream_steps(&refs, TextForm::Prose).pop().unwrap();
            assert_eq!(out, expected, "{text:?} in pieces of {size}");
        }
    }
}

#[test]
fn far_values_are_redacted_as_if_whole() {
    // A value far from its name, and a quoted secret longer than the 256 bytes read.
    let texts = [
        format!("DB_PASSWORD:{}hunter2xyz and more", " ".repeat(300)),
        format!("password = \"Tr0ub4dor&3 {}\" ok", "horse ".repeat(60)),
    ];
    for text in &texts {
        let expected = RedactionSession::new(scanner()).redact(text).unwrap();
        let chars: Vec<char> = text.chars().collect();
        for size in [1, 7, 64] {
            let pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let out = stream_steps(&refs, TextForm::Prose).pop().unwrap();
            assert_eq!(out, expected, "{text:.40} in pieces of {size}");
        }
    }
}

#[test]
fn a_value_split_at_any_place_of_json_text_is_redacted_as_if_whole() {
    let texts = [
        r#"{"to": "jane.roe\u0040example.org", "n": 1}"#,
        r#"{"password": "c0rrect horse b4ttery", "ok": true}"#,
        r#"{"note": "key:\nAKIAIOSFODNN7EXAMPLE now"}"#,
        r#"{"card": "4111 1111 1111 1111"}"#,
    ];
    for text in texts {
        let expected = RedactionSession::new(scanner())
            .redact_as(text, TextForm::Json)
            .unwrap_or_else(|| text.to_string());
        assert_ne!(expected, text, "a value in {text:?}");
        for at in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
            let (a, b) = text.split_at(at);
            let out = stream_steps(&[a, b], TextForm::Json).pop().unwrap();
            assert_eq!(out, expected, "{text:?} split at {at}");
        }
        let chars: Vec<char> = text.chars().collect();
        let pieces: Vec<String> = chars.chunks(1).map(|c| c.iter().collect()).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let out = stream_steps(&refs, TextForm::Json).pop().unwrap();
        assert_eq!(out, expected, "{text:?} one character at a time");
    }
}

#[test]
fn only_what_could_still_grow_is_held() {
    let held = |text: &str| {
        let steps = stream_steps(&[text], TextForm::Prose);
        text.len() - steps[0].len()
    };
    // Settled: words and finished values with their space.
    assert_eq!(held("plain words here "), 0);
    assert_eq!(
        stream_steps(&["mail bob@example.com "], TextForm::Prose)[0],
        "mail [EMAIL_1] "
    );
    // The unfinished word.
    assert_eq!(held("plain words he"), 2);
    // A number run another digit would continue, from its start.
    assert_eq!(held("card 4111 1111 "), "4111 1111 ".len());
    // An IBAN's groups after its country code.
    assert_eq!(held("pay DE89 3704 "), "DE89 3704 ".len());
    // An assignment to a secret name whose value has not begun.
    assert_eq!(held("the DB_PASSWORD =   "), "DB_PASSWORD =   ".len());
    assert_eq!(
        held("Authorization: Bearer "),
        "Authorization: Bearer ".len()
    );
    // A quoted secret value before its closing quote.
    assert_eq!(
        held("password: \"c0rrect horse "),
        "password: \"c0rrect horse ".len()
    );
    // A PEM header before its closing dashes, and a URL's user part.
    assert_eq!(held("key -----BEGIN RSA PRIV"), "-----BEGIN RSA PRIV".len());
    assert_eq!(held("db postgres://app:pass wo"), 2);
    assert_eq!(held("db postgres://app:pässwörd"), "://app:pässwörd".len());
    // A name that is no secret's holds nothing.
    assert_eq!(held("the colour = "), 0);
}
