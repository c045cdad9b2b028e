//! `*` wildcards in match strings (policy rules, route patterns, model names).

/// Whether `text` matches `pattern`, where `*` matches any run of characters
/// (including none) and every other character matches itself. No backtracking
/// blow-up on adversarial input: at most one pass over `text` per character of
/// `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    matches_by(pattern.as_bytes(), text.as_bytes(), |p, t| p == t)
}

/// [`matches`] with ASCII letters matching either case.
pub fn matches_ignore_ascii_case(pattern: &str, text: &str) -> bool {
    matches_by(pattern.as_bytes(), text.as_bytes(), |p, t| {
        p.eq_ignore_ascii_case(&t)
    })
}

fn matches_by(p: &[u8], t: &[u8], same: impl Fn(u8, u8) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            resume = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && same(p[pi], t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((star, matched)) = resume {
            pi = star + 1;
            ti = matched + 1;
            resume = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::{matches, matches_ignore_ascii_case};

    #[test]
    fn wildcards() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("/v1/models*", "/v1/models"));
        assert!(matches("/v1/models*", "/v1/models/gpt-4o"));
        assert!(matches("claude-*-sonnet", "claude-3-5-sonnet"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(!matches("/v1/models", "/v1/models/x"));
        assert!(!matches("gpt-4o", "gpt-4o-mini"));
    }

    #[test]
    fn case_folded_matching_ignores_ascii_case_only() {
        assert!(matches_ignore_ascii_case("/v1/Models*", "/V1/MODELS/x"));
        assert!(!matches("/v1/Models*", "/V1/MODELS/x"));
        assert!(!matches_ignore_ascii_case("/v1/models", "/v1/modelß"));
    }

    #[test]
    fn adversarial_input_stays_fast() {
        let text = "a".repeat(100_000);
        assert!(!matches("*a*a*a*a*a*b", &text));
        assert!(!matches_ignore_ascii_case("*A*A*A*A*A*B", &text));
    }
}
