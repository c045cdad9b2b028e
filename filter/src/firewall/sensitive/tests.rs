//! Tests of `sensitive`, beside it.
use super::*;

fn kinds(text: &str) -> Vec<(SensitiveKind, String)> {
    let s = SensitiveScanner::compile(true, true).unwrap();
    s.scan(text)
        .into_iter()
        .map(|f| (f.kind, text[f.start..f.end].to_string()))
        .collect()
}

#[test]
fn cards_need_luhn_issuer_and_length() {
    assert_eq!(
        kinds("card 4111 1111 1111 1111 ok"),
        [(SensitiveKind::CreditCard, "4111 1111 1111 1111".into())]
    );
    assert_eq!(
        kinds("amex 378282246310005")[0].0,
        SensitiveKind::CreditCard
    );
    // A millisecond timestamp and an order number are not cards.
    assert!(kinds("ts 1700000000000").is_empty());
    assert!(kinds("order 1234567812345678").is_empty());
}

#[test]
fn a_date_and_time_is_not_a_phone_number() {
    for text in [
        "When: 1970-11-23 02:26:26",
        "at 2013/03/14 12:53",
        "on 23.11.1970 02:26",
        "on 11/23/1970 14:02",
    ] {
        assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
    }
    // Digits that only look like a date's start are still a phone.
    assert_eq!(kinds("call 2125-55-1234 12 now")[0].0, SensitiveKind::Phone);
    assert_eq!(
        kinds("call 0049-30-12 34 56 now")[0].0,
        SensitiveKind::Phone
    );
}

#[test]
fn phones_in_international_formats() {
    for p in [
        "+1 (415) 555-0132",
        "+44 20 7946 0958",
        "001-668-040-8670x1711",
        "438.812.1525",
        "(027) 7972-805",
        "+91 98765 43210",
    ] {
        let found = kinds(&format!("call {p} now"));
        assert_eq!(found, [(SensitiveKind::Phone, p.to_string())], "{p}");
    }
    assert!(kinds("on 2024-05-17 we paid 3.14159").is_empty());
}

#[test]
fn ssn_validity_rules() {
    assert_eq!(kinds("ssn 536-32-3065")[0].0, SensitiveKind::UsSsn);
    assert_ne!(
        kinds("ssn 666-32-3065").first().map(|f| f.0),
        Some(SensitiveKind::UsSsn)
    );
    assert_ne!(
        kinds("ssn 536-00-3065").first().map(|f| f.0),
        Some(SensitiveKind::UsSsn)
    );
}

#[test]
fn iban_email_ip() {
    assert_eq!(
        kinds("iban GB82 WEST 1234 5698 7654 32.")[0].0,
        SensitiveKind::Iban
    );
    assert!(kinds("GB82WEST12345698765433").is_empty());
    assert_eq!(
        kinds("mail Lars.Wiik@jourrapide.com."),
        [(SensitiveKind::Email, "Lars.Wiik@jourrapide.com".into())]
    );
    assert_eq!(
        kinds("hosts 10.218.6.131 and 2001:db8::8a2e:370:7334"),
        [
            (SensitiveKind::IpAddress, "10.218.6.131".into()),
            (SensitiveKind::IpAddress, "2001:db8::8a2e:370:7334".into())
        ]
    );
    assert!(kinds("at 12:30:45 version 1.2").is_empty());
}

#[test]
fn provider_secrets() {
    let cases = [
        ("AKIAIOSFODNN7EXAMPLE", SensitiveKind::AwsAccessKey),
        (
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            SensitiveKind::GithubToken,
        ),
        ("glpat-abcdefghij0123456789", SensitiveKind::GitlabToken),
        (
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            SensitiveKind::OpenaiKey,
        ),
        (
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
            SensitiveKind::AnthropicKey,
        ),
        ("sk_live_abcdefghijklmnop1234", SensitiveKind::StripeKey),
        ("xoxb-1234567890-abcdefghij", SensitiveKind::SlackToken),
        (
            "hf_abcdefghijklmnopqrstuvwxyz01234567",
            SensitiveKind::HuggingfaceToken,
        ),
        (
            "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
            SensitiveKind::GcpApiKey,
        ),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlXzEyMw",
            SensitiveKind::Jwt,
        ),
    ];
    for (secret, kind) in cases {
        assert_eq!(
            kinds(&format!("use {secret} here")),
            [(kind, secret.to_string())],
            "{secret}"
        );
    }
}

#[test]
fn pem_and_assigned_credentials() {
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
    assert_eq!(
        kinds(&format!("k: {pem}\nbye")),
        [(SensitiveKind::PrivateKey, pem.into())]
    );
    assert_eq!(
        kinds(r#"{"db_password": "Xk9#mP2$vL8q"}"#),
        [(SensitiveKind::Credential, "Xk9#mP2$vL8q".into())]
    );
    assert!(kinds("password = your_password_here").is_empty());
    assert!(kinds("the key: important").is_empty());
}

/// `digits` (without its check digit) completed with a Luhn check digit.
fn with_luhn(digits: &str) -> String {
    (0..10)
        .map(|d| format!("{digits}{d}"))
        .find(|n| luhn(&n.bytes().map(|b| b - b'0').collect::<Vec<_>>()))
        .unwrap()
}

#[test]
fn cards_of_every_network_and_length() {
    let cases = [
        ("4", 13),    // Visa
        ("4", 19),    // Visa
        ("2221", 16), // Mastercard 2-series
        ("2720", 16), // Mastercard 2-series
        ("55", 16),   // Mastercard
        ("37", 15),   // Amex
        ("6011", 19), // Discover
        ("3095", 14), // Diners
        ("36", 19),   // Diners
        ("3530", 15), // JCB
        ("1800", 15), // JCB 15-digit
        ("2131", 15), // JCB 15-digit
        ("5018", 12), // Maestro
        ("6759", 19), // Maestro
        ("2200", 16), // Mir
        ("2204", 19), // Mir
        ("8200", 16), // RuPay
        ("9792", 16), // Troy
        ("1", 15),    // UATP
        ("31", 19),   // China T-Union
        ("9704", 19), // NAPAS
    ];
    for (prefix, len) in cases {
        let body = format!("{prefix}{}", "3".repeat(len - 1 - prefix.len()));
        let number = with_luhn(&body);
        assert_eq!(
            kinds(&format!("pay with {number} today")),
            [(SensitiveKind::CreditCard, number.clone())],
            "{prefix} × {len}"
        );
    }
    assert_eq!(
        kinds("card 4111.1111.1111.1111 ok"),
        [(SensitiveKind::CreditCard, "4111.1111.1111.1111".into())]
    );
    // UnionPay numbers without a Luhn digit are cards too.
    let unionpay = "6212345678901235";
    assert!(!luhn(
        &unionpay.bytes().map(|b| b - b'0').collect::<Vec<_>>()
    ));
    assert_eq!(kinds(unionpay)[0].0, SensitiveKind::CreditCard);
    // Other networks need the Luhn digit, the issuer range and the length.
    let visa = with_luhn("411111111111111");
    let wrong_check = format!("{}{}", &visa[..15], (visa.as_bytes()[15] - b'0' + 1) % 10);
    assert!(kinds(&wrong_check).is_empty(), "{wrong_check}");
    assert!(
        kinds(&with_luhn("3700000000000")).is_empty(),
        "Amex is 15 digits"
    );
    assert!(
        kinds(&with_luhn("7000000000000000")).is_empty(),
        "no network at 7"
    );
}

#[test]
fn an_iban_ends_where_its_country_says() {
    assert_eq!(
        kinds("Pay to IBAN DE89 3704 0044 0532 0130 00 by Friday"),
        [(SensitiveKind::Iban, "DE89 3704 0044 0532 0130 00".into())]
    );
    assert_eq!(
        kinds("IBAN: GB29NWBK60161331926819, thanks"),
        [(SensitiveKind::Iban, "GB29NWBK60161331926819".into())]
    );
    assert_eq!(
        kinds("IBAN DE89-3704-0044-0532-0130-00."),
        [(SensitiveKind::Iban, "DE89-3704-0044-0532-0130-00".into())]
    );
    // One character too many in an unbroken token is no IBAN.
    assert!(kinds("DE893704004405320130001").is_empty());
}

#[test]
fn ibans_of_registry_countries() {
    for iban in [
        "AL47 2121 1009 0000 0002 3569 8741",
        "BI42 1000 0100 0100 0033 2045 181",
        "EG38 0019 0005 0000 0000 2631 8000 2",
        "LC55 HEMM 0001 0001 0012 0012 0002 3015",
        "MU17 BOMM 0101 1010 3030 0200 000M UR",
        "NO93 8601 1117 947",
        "SC18 SSCB 1101 0000 0000 0000 1497 USD",
        "XK05 1212 0123 4567 8906",
        "VA59 0011 2300 0012 3456 78",
    ] {
        assert_eq!(
            kinds(&format!("account {iban} please")),
            [(SensitiveKind::Iban, iban.to_string())],
            "{iban}"
        );
    }
    assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
}

#[test]
fn fullwidth_and_invisible_forms_are_found_where_written() {
    let email = "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ";
    assert_eq!(
        kinds(&format!("mail {email} now")),
        [(SensitiveKind::Email, email.into())]
    );
    let card = "4111\u{200B}1111\u{200B}1111\u{200B}1111";
    assert_eq!(
        kinds(&format!("card {card}.")),
        [(SensitiveKind::CreditCard, card.into())]
    );
    let key = "AKIA\u{200D}IOSF\u{2060}ODNN7EXAMPLE";
    assert_eq!(
        kinds(&format!("key {key} here")),
        [(SensitiveKind::AwsAccessKey, key.into())]
    );
    let fullwidth_card = "４１１１ １１１１ １１１１ １１１１";
    assert_eq!(kinds(fullwidth_card)[0].0, SensitiveKind::CreditCard);
    let bold = "𝐣𝐨𝐡𝐧@𝐞𝐱𝐚𝐦𝐩𝐥𝐞.𝐜𝐨𝐦";
    assert_eq!(kinds(bold), [(SensitiveKind::Email, bold.into())]);
    let double_struck = "𝔸𝕂𝕀𝔸𝕀𝕆𝕊𝔽𝕆𝔻ℕℕ𝟟𝔼𝕏𝔸𝕄ℙ𝕃𝔼";
    assert_eq!(
        kinds(&format!("key {double_struck} ok")),
        [(SensitiveKind::AwsAccessKey, double_struck.into())]
    );
    let accented = "4\u{0301}111 1111 1111 1111";
    assert_eq!(kinds(accented)[0].0, SensitiveKind::CreditCard);
    let arabic_digits = "٤١١١١١١١١١١١١١١١";
    assert_eq!(kinds(arabic_digits)[0].0, SensitiveKind::CreditCard);
    assert!(kinds("日本語のテキスト、メールなし。").is_empty());
}

#[test]
fn key_value_credentials() {
    for (text, value) in [
        ("password=hunter22", "hunter22"),
        ("DB_PASS=s3cr3t!x", "s3cr3t!x"),
        ("export PGPASSWORD='Tr0ub4dor'", "Tr0ub4dor"),
        ("Authorization: Bearer abc123def456ghi", "abc123def456ghi"),
        ("-H 'authorization: Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz"),
        ("api_key: a1b2c3d4e5", "a1b2c3d4e5"),
        (r#"{"secret": "my s3cret phrase"}"#, "my s3cret phrase"),
        (r#"{"clientSecret":"Zq9-Lm2"}"#, "Zq9-Lm2"),
        ("X-Api-Key: key-12345678", "key-12345678"),
        ("login --password hunter2x", "hunter2x"),
        ("Passwort: Geheim123", "Geheim123"),
        (
            "DATABASE_URL=postgres://app:S3cr3t!x@db.internal:5432/app",
            "S3cr3t!x",
        ),
        (
            "clone https://bob:tok3n!abc@git.example.net/repo.git",
            "tok3n!abc",
        ),
    ] {
        assert_eq!(
            kinds(text),
            [(SensitiveKind::Credential, value.to_string())],
            "{text}"
        );
    }
}

#[test]
fn credential_names_without_a_secret_are_left_alone() {
    for text in [
        "password=",
        "password: ",
        "password=your_password_here",
        "password = <password>",
        "password=${DB_PASS}",
        "password=$DB_PASS",
        "password=os.getenv('DB_PASS')",
        "password=self.password",
        "DB_PASS=DB_PASSWORD_FILE",
        "password: str",
        "password: String,",
        "token: access_token",
        "max_tokens: 4096",
        "token_count=12345678",
        "\"password\": \"Passwort eingeben\"",
        "Bearer tokens are short-lived.",
        "the password: reset it weekly",
        "password: ********",
        "postgres://user:password@localhost/db",
        "https://example.com/a:b@c",
        "redis://:${REDIS_PASSWORD}@cache:6379",
        "see https://docs.example.net/path?x=1 and http://[::1]:8080/a@b",
    ] {
        assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
    }
}

#[test]
fn clues_probe_as_a_byte_by_byte_pass() {
    // The old single pass: every byte read, the key run counted byte by byte.
    fn by_bytes(bytes: &[u8]) -> (bool, bool) {
        let (mut run, mut long, mut double_dash, mut prev) = (0usize, false, false, 0u8);
        for &b in bytes {
            double_dash |= b == b'-' && prev == b'-';
            prev = b;
            run = (run + 1) * usize::from(CLUE_CLASSES[usize::from(b)] & KEY_BYTE);
            long |= run >= MIN_KEY_LEN;
        }
        (long, double_dash)
    }
    let units: [&[u8]; 9] = [
        b"a",
        b"Z9",
        b" ",
        b"-",
        b"--",
        b"/",
        b"sk_live_",
        b".",
        b"\xc3\xa9",
    ];
    let mut seed = 9u64;
    for _ in 0..20_000 {
        let mut text = Vec::new();
        for _ in 0..(seed % 40) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = units[(seed >> 33) as usize % units.len()];
            for _ in 0..=((seed >> 50) % 12) {
                text.extend_from_slice(unit);
            }
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let clues = Clues::of(&text);
        let (long, double_dash) = by_bytes(&text);
        assert_eq!(
            clues.long_key_run,
            long,
            "{:?}",
            String::from_utf8_lossy(&text)
        );
        let colon_or_equals = text.iter().any(|&b| b == b':' || b == b'=');
        assert_eq!(clues.assignment, colon_or_equals || double_dash);
    }
}

/// Every rule of `tail::growing_in`, none skipped: what the skipping must agree with.
fn growing_in_ungated(b: &[u8]) -> usize {
    use tail::*;
    [
        unfinished_word(b),
        open_number_run(b),
        open_iban(b),
        open_assignment(b),
        open_secret_quote(b),
        open_pem_header(b),
        open_url_userinfo(b),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(b.len())
}

#[test]
fn growing_tail_skips_only_rules_that_find_nothing() {
    // Texts of pieces every rule reads, up to past the furthest byte a rule's gate looks
    // at (260), so each needed byte lands at and around each gate's edge.
    let units = [
        "4111 ",
        "7",
        "-",
        "-----BEGIN ",
        "password = ",
        "\"",
        "'",
        "`",
        "://",
        "DE89 ",
        "3704 ",
        "Bearer ",
        "--token ",
        "api_key: ",
        "a",
        "word ",
        "prose goes on ",
        " ",
        "\n",
        ":",
        "x",
        "(",
        "+",
        ".",
        "postgres://app:",
        "-----",
    ];
    let mut seed = 17u64;
    for _ in 0..20_000 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut text = String::new();
        let target = (seed >> 40) as usize % 330;
        while text.len() < target {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            text.push_str(units[(seed >> 33) as usize % units.len()]);
        }
        let b = text.as_bytes();
        assert_eq!(tail::growing_in(b), growing_in_ungated(b), "{text:?}");
    }
    // Each piece a rule starts from, then `n` bytes of filler: every distance from the
    // end, on both sides of each gate's edge.
    let pieces = [
        "\"",
        "password = \"",
        "token: '",
        "DE89",
        "GB82 WEST",
        "-----BEGIN ",
        "-----BEGIN RSA",
        "://",
        "postgres://app:",
        "4111",
        "+1 (",
        "12-",
        "x",
    ];
    let fillers = ["a", " ", "ab ", "1", "1 ", "a-", "A1", "\n", "x:", "Z"];
    for piece in pieces {
        for filler in fillers {
            for n in 0..300 {
                let mut text = format!("lead {piece}");
                text.push_str(&filler.repeat(n / filler.len() + 1)[..n]);
                let b = text.as_bytes();
                assert_eq!(tail::growing_in(b), growing_in_ungated(b), "{text:?}");
            }
        }
    }
}
