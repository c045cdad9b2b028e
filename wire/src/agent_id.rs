//! What an agent ID may contain. People read agent IDs (dashboard, CSV) and sidecars
//! match them, so two IDs that render alike must not be two agents:
//! `support-bot\u{200B}` or one with a right-to-left override would show as
//! `support-bot`. Control characters, whitespace, bidirectional controls and
//! invisible characters (zero-width, other format characters, fillers, variation
//! selectors, tags) are refused wherever an agent ID enters: the filter refuses a token
//! whose `sub` has one (401 `AUTH_FAILED`, audited under no agent), `kalguard token
//! create` and the Cloud's token form, `token create` and usage reports refuse to take
//! one. IDs the Cloud stored before this rule are shown with those characters escaped
//! ([`shown`]).

/// Whether `c` is invisible, changes the direction of text, or is a control or
/// space: a character a reader cannot see for what it is.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            // Unicode general category Cf (format): soft hyphen, Arabic marks,
            // zero-width space/joiners, LRM/RLM, embeddings and overrides, word
            // joiner and invisible operators, isolates, BOM, annotation marks, tags.
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
                // Not Cf, yet drawn as nothing: the combining grapheme joiner,
                // Hangul fillers, the Braille blank, variation selectors.
                | '\u{034F}'
                | '\u{115F}'..='\u{1160}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{2800}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// The first hidden character of `id` and its position (in characters, from 1).
pub fn first_hidden(id: &str) -> Option<(usize, char)> {
    id.chars()
        .enumerate()
        .find(|(_, c)| is_hidden(*c))
        .map(|(i, c)| (i + 1, c))
}

/// Why `id` is refused, naming the character; `None` when it is fine.
pub fn problem(id: &str) -> Option<String> {
    first_hidden(id).map(|(at, c)| {
        format!(
            "has an invisible, direction-changing, control or space character (U+{:04X} at character {at}); agent IDs must read as what they are",
            u32::from(c)
        )
    })
}

/// `id` with every hidden character written as `\u{…}`, for showing IDs stored
/// before the rule without letting them pass for another ID.
pub fn shown(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        if is_hidden(c) {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_render_like_another_are_refused() {
        for bad in [
            "support-bot\u{200B}",
            "support-bot\u{200D}",
            "\u{FEFF}support-bot",
            "support\u{202E}tob-",
            "support-bot\u{2066}",
            "support-bot\u{200F}",
            "support-bot\u{00AD}",
            "support-bot\u{E0041}",
            "support-bot\u{FE0F}",
            "support-bot\u{3164}",
            "support-bot ",
            "support\u{00A0}bot",
            "support-bot\u{7}",
            "support-bot\u{85}",
        ] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
        for good in [
            "support-bot",
            "agent_7.eu-west",
            "Ünïcödé-агент",
            "支援ボット",
            "a:b/c@d",
        ] {
            assert_eq!(problem(good), None, "{good:?}");
        }
        assert_eq!(first_hidden("ab\u{200B}c"), Some((3, '\u{200B}')));
        assert!(problem("ab\u{200B}")
            .unwrap()
            .contains("U+200B at character 3"));
    }

    #[test]
    fn hidden_characters_are_shown_escaped() {
        assert_eq!(shown("support-bot\u{200B}"), "support-bot\\u{200B}");
        assert_eq!(shown("a\u{202E}b"), "a\\u{202E}b");
        assert_eq!(shown("plain-id"), "plain-id");
    }
}
