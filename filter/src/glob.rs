//! `*` wildcards in match strings (policy rules, route patterns, model names).

/// Whether `text` matches `pattern`, where `*` matches any run of characters
/// (including none) and every other character matches itself. Linear in the
/// lengths of both strings: no backtracking blow-up on adversarial input.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            resume = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
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
    use super::matches;

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
    fn adversarial_input_stays_fast() {
        let text = "a".repeat(100_000);
        assert!(!matches("*a*a*a*a*a*b", &text));
    }
}
