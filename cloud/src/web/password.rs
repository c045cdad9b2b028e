//! The password rule for every password the Cloud sets (sign-up, a new member,
//! `org create`): 10 to 128 characters, taken exactly as typed (never trimmed), and
//! not one an attacker tries first: only digits, an alphabet or keyboard run
//! (`1234567890`, `qwertyuiop`), a handful of characters repeated, a well-known
//! password with digits or symbols around it, or the e-mail's own name.

/// Shortest and longest password accepted, in characters.
pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 128;

/// Runs people type for a password; any stretch of them (or of them reversed) is
/// refused. Each is written twice so a run may wrap around.
const RUNS: [&str; 6] = [
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "01234567890123456789",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnmqwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbnazertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
];

/// The letters of passwords at the top of every leaked-password list.
const COMMON: [&str; 20] = [
    "password",
    "passwort",
    "passw",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "administrator",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "trustno",
    "master",
    "secret",
    "changeme",
    "login",
    "qwerty",
];

/// Why `password` is refused for the account `email`, as a sentence; `None` when it
/// is accepted.
pub fn problem(password: &str, email: &str) -> Option<String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Some(format!(
            "Password must be at least {MIN_PASSWORD_LEN} characters."
        ));
    }
    if len > MAX_PASSWORD_LEN {
        return Some(format!(
            "Password must be at most {MAX_PASSWORD_LEN} characters."
        ));
    }
    guessable(password, email).map(|why| {
        format!(
            "This password is too easy to guess ({why}). A few unrelated words make a strong one."
        )
    })
}

fn guessable(password: &str, email: &str) -> Option<&'static str> {
    let lower = password.to_lowercase();
    if lower.chars().all(|c| c.is_ascii_digit()) {
        return Some("only digits");
    }
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Some("too few different characters");
    }
    let reversed: String = lower.chars().rev().collect();
    if RUNS
        .iter()
        .any(|run| run.contains(lower.as_str()) || run.contains(reversed.as_str()))
    {
        return Some("a keyboard or alphabet sequence");
    }
    let letters: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if COMMON.contains(&letters.as_str())
        || (letters.chars().count() >= 4 && RUNS.iter().any(|run| run.contains(letters.as_str())))
    {
        return Some("a common password with digits or symbols added");
    }
    let name = email.split('@').next().unwrap_or("").to_lowercase();
    if name.chars().count() >= 4 && lower.contains(&name) {
        return Some("it contains your e-mail address's name");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_passwords_are_refused() {
        for weak in [
            "1234567890",
            "0987654321",
            "12345678901234",
            "5555555555",
            "abcdefghijk",
            "qwertyuiop",
            "QWERTYUIOP",
            "poiuytrewq",
            "asdfghjkl;",
            "1qaz2wsx3edc",
            "aaaaabbbbb",
            "abababababab",
            "Password123!",
            "letmein2024!",
            "jane.doe-2024",
        ] {
            assert!(problem(weak, "jane.doe@acme.test").is_some(), "{weak:?}");
        }
    }

    #[test]
    fn ordinary_strong_passwords_pass() {
        for strong in [
            "correct horse battery",
            "journey horse battery",
            "kalguard-demo-1",
            "member password 1",
            "Tr0ub4dor&3-xyz",
            "日本語のパスワード語",
        ] {
            assert_eq!(problem(strong, "owner@acme.test"), None, "{strong:?}");
        }
    }

    #[test]
    fn length_is_bounded_both_ways() {
        assert!(problem("short", "a@b.io").unwrap().contains("at least 10"));
        let long = "correct horse battery ".repeat(6);
        assert!(problem(&long, "a@b.io").unwrap().contains("at most 128"));
        assert_eq!(problem(&long[..128], "a@b.io"), None);
    }
}
