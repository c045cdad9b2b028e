//! Name skeletons: tool and model names folded so that names a reader (or a
//! lenient server) would take for the same are equal. Deny rules match on
//! skeletons, so `delete_*` also refuses `Delete_repo`, `ｄｅｌｅｔｅ_repo`,
//! `dеlete_repo` (Cyrillic `е`), `delete\u{200b}_repo`, `delete-repo` and
//! `deleteRepo`. Allow rules and capabilities match names exactly: folding
//! there would widen what an agent may do.
//!
//! The fold, character by character, in one pass:
//! - invisible format characters (zero-width spaces and joiners, bidi
//!   controls, soft hyphen, BOM) and combining marks are dropped;
//! - full-width ASCII forms become ASCII; mathematical alphanumeric letters
//!   and digits become plain ones; Latin-1 letters lose their accents;
//! - Cyrillic and Greek letters that look like Latin ones become those;
//! - separators (`_`, `-`, `.`, `:`, `/`, spaces, dashes, low-line look-alikes)
//!   become one `_`; leading and trailing separators go;
//! - letters are lowercased, either flat (`deletE_repo` is `delete_repo`) or
//!   with a CamelCase boundary read as a separator (`deleteRepo` is
//!   `delete_repo`): [`skeletons`] gives both.
//!
//! `*` is kept, so a pattern folds with the same function as the names it
//! matches.

/// How CamelCase is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Camel {
    /// Case is only lowercased: `deletE_repo` is `delete_repo`, as a
    /// case-insensitive server reads it.
    Flat,
    /// A CamelCase boundary is a separator too: `deleteRepo` is `delete_repo`.
    Split,
}

/// Both skeletons of `name`: a deny pattern matches a name when any of the
/// pattern's skeletons matches any of the name's.
pub fn skeletons(name: &str) -> [String; 2] {
    [skeleton(name, Camel::Flat), skeleton(name, Camel::Split)]
}

/// The skeleton of `name` (see the module head). Linear in its length.
pub fn skeleton(name: &str, camel: Camel) -> String {
    let mut out = String::with_capacity(name.len());
    // A separator is owed before the next kept character.
    let mut pending_separator = false;
    // The previous kept character, before lowercasing.
    let mut previous: Option<char> = None;
    let mut chars = name.chars().filter_map(fold_char).peekable();
    while let Some(folded) = chars.next() {
        let Folded::Char(c) = folded else {
            pending_separator = true;
            continue;
        };
        let boundary = camel == Camel::Split && c.is_ascii_uppercase() && {
            let next_is_lower =
                matches!(chars.peek(), Some(Folded::Char(n)) if n.is_ascii_lowercase());
            previous.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next_is_lower)
            })
        };
        if previous.is_some() && (pending_separator || boundary) {
            out.push('_');
        }
        pending_separator = false;
        out.push(c.to_ascii_lowercase());
        previous = Some(c);
    }
    out
}

/// One character after folding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Folded {
    Char(char),
    Separator,
}

/// Folds one character; `None` drops it.
fn fold_char(c: char) -> Option<Folded> {
    let c = u32::from(c);
    let folded = match c {
        // Invisible format characters and combining marks.
        0x00AD
        | 0x034F
        | 0x061C
        | 0x115F
        | 0x1160
        | 0x17B4
        | 0x17B5
        | 0x180B..=0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x206F
        | 0x3164
        | 0xFE00..=0xFE0F
        | 0xFEFF
        | 0xFFA0
        | 0x0300..=0x036F
        | 0x1AB0..=0x1AFF
        | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF
        | 0xFE20..=0xFE2F
        | 0xE0000..=0xE0FFF => return None,
        // Separators and their look-alikes.
        0x20
        | 0x2D
        | 0x2E
        | 0x2F
        | 0x3A
        | 0x5F
        | 0xA0
        | 0x2010..=0x2017
        | 0x2000..=0x200A
        | 0x2022
        | 0x2027
        | 0x202F
        | 0x203F
        | 0x2040
        | 0x205F
        | 0x2212
        | 0x2215
        | 0x3000
        | 0x30FB
        | 0xFE33
        | 0xFE34
        | 0xFE4D..=0xFE4F
        | 0xFE58
        | 0xFE63
        | 0xFF65 => return Some(Folded::Separator),
        // Full-width ASCII.
        0xFF01..=0xFF5E => c - 0xFEE0,
        0x1D400..=0x1D6A3 => math_letter(c)?,
        0x1D7CE..=0x1D7FF => u32::from(b'0') + (c - 0x1D7CE) % 10,
        _ => u32::from(latin_look_alike(c).unwrap_or(char::from_u32(c)?)),
    };
    match char::from_u32(folded)? {
        '_' | '-' | '.' | ':' | '/' | ' ' => Some(Folded::Separator),
        c => Some(Folded::Char(c)),
    }
}

/// Mathematical alphanumeric letters (bold, italic, script, …): each style is
/// a run of 52 (A–Z, a–z).
fn math_letter(c: u32) -> Option<u32> {
    let i = (c - 0x1D400) % 52;
    Some(if i < 26 {
        u32::from(b'A') + i
    } else {
        u32::from(b'a') + i - 26
    })
}

/// The Latin letter a Cyrillic, Greek or accented Latin letter is read as.
fn latin_look_alike(c: u32) -> Option<char> {
    Some(match c {
        // Cyrillic.
        0x0430 => 'a',
        0x0410 => 'A',
        0x0412 => 'B',
        0x0432 => 'b',
        0x0441 => 'c',
        0x0421 => 'C',
        0x0501 => 'd',
        0x0435 | 0x0450 | 0x0451 => 'e',
        0x0415 | 0x0400 | 0x0401 => 'E',
        0x04BB => 'h',
        0x041D | 0x04BA => 'H',
        0x0456 | 0x0457 => 'i',
        0x0406 | 0x0407 | 0x04C0 => 'I',
        0x0458 => 'j',
        0x0408 => 'J',
        0x043A => 'k',
        0x041A => 'K',
        0x04CF => 'l',
        0x041C => 'M',
        0x043C => 'm',
        0x043E => 'o',
        0x041E => 'O',
        0x0440 => 'p',
        0x0420 => 'P',
        0x051B => 'q',
        0x0455 => 's',
        0x0405 => 'S',
        0x0442 => 't',
        0x0422 => 'T',
        0x0443 => 'y',
        0x0423 | 0x04AE => 'Y',
        0x051D => 'w',
        0x051C => 'W',
        0x0445 => 'x',
        0x0425 => 'X',
        // Greek.
        0x03B1 => 'a',
        0x0391 => 'A',
        0x0392 => 'B',
        0x03B5 => 'e',
        0x0395 => 'E',
        0x0396 => 'Z',
        0x0397 => 'H',
        0x03B9 => 'i',
        0x0399 => 'I',
        0x03BA => 'k',
        0x039A => 'K',
        0x039C => 'M',
        0x03BD => 'v',
        0x039D => 'N',
        0x03BF => 'o',
        0x039F => 'O',
        0x03C1 => 'p',
        0x03A1 => 'P',
        0x03C4 => 't',
        0x03A4 => 'T',
        0x03C5 => 'u',
        0x03A5 => 'Y',
        0x03C7 => 'x',
        0x03A7 => 'X',
        // Latin-1 letters with accents.
        0x00E0..=0x00E5 => 'a',
        0x00C0..=0x00C5 => 'A',
        0x00E7 => 'c',
        0x00C7 => 'C',
        0x00E8..=0x00EB => 'e',
        0x00C8..=0x00CB => 'E',
        0x00EC..=0x00EF => 'i',
        0x00CC..=0x00CF => 'I',
        0x00F1 => 'n',
        0x00D1 => 'N',
        0x00F2..=0x00F6 | 0x00F8 => 'o',
        0x00D2..=0x00D6 | 0x00D8 => 'O',
        0x00F9..=0x00FC => 'u',
        0x00D9..=0x00DC => 'U',
        0x00FD | 0x00FF => 'y',
        0x00DD => 'Y',
        // Dotless i, long s, script small l.
        0x0131 => 'i',
        0x017F => 's',
        0x2113 => 'l',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{skeleton, skeletons, Camel};

    #[test]
    fn look_alike_spellings_share_a_skeleton() {
        for name in [
            "delete_repo",
            "Delete_repo",
            "DELETE_REPO",
            "deletE_repo",
            "ｄｅｌｅｔｅ_repo",
            "ＤＥＬＥＴＥ＿ＲＥＰＯ",
            "d\u{0435}lete_repo",
            "del\u{0435}t\u{0415}_r\u{0435}p\u{043e}",
            "delete\u{200b}_repo",
            "\u{200d}delete_repo\u{feff}",
            "dele\u{0301}te_repo",
            "délete_repo",
            "delete-repo",
            "delete.repo",
            "delete repo",
            "delete\u{00a0}repo",
            "delete\u{2010}repo",
            "delete__repo",
            "_delete_repo_",
            "\u{1D41D}\u{1D41E}\u{1D425}\u{1D41E}\u{1D42D}\u{1D41E}_repo",
            "d\u{03b5}l\u{03b5}t\u{03b5}_r\u{03b5}p\u{03bf}",
        ] {
            assert_eq!(skeleton(name, Camel::Flat), "delete_repo", "{name:?}");
        }
        for name in ["deleteRepo", "DeleteRepo", "ｄｅｌｅｔｅＲｅｐｏ"] {
            assert_eq!(skeleton(name, Camel::Split), "delete_repo", "{name:?}");
            assert!(skeletons(name).contains(&"delete_repo".to_owned()));
        }
    }

    #[test]
    fn camel_case_boundaries_and_acronyms() {
        assert_eq!(
            skeleton("getHTTPResponse", Camel::Split),
            "get_http_response"
        );
        assert_eq!(skeleton("getHTTPResponse", Camel::Flat), "gethttpresponse");
        assert_eq!(skeleton("readFile2Fast", Camel::Split), "read_file2_fast");
        assert_eq!(skeleton("gpt-4o-mini", Camel::Split), "gpt_4o_mini");
    }

    #[test]
    fn wildcards_keep_their_place() {
        for camel in [Camel::Flat, Camel::Split] {
            assert_eq!(skeleton("delete_*", camel), "delete_*");
            assert_eq!(skeleton("delete*", camel), "delete*");
            assert_eq!(skeleton("*_ADMIN", camel), "*_admin");
            assert_eq!(skeleton("*", camel), "*");
        }
    }

    #[test]
    fn different_names_stay_different() {
        assert_ne!(skeletons("delete_repo"), skeletons("deleterepo"));
        assert_ne!(skeletons("read_file"), skeletons("read_files"));
        assert_eq!(skeleton("", Camel::Split), "");
        assert_eq!(skeleton("\u{200b}-", Camel::Split), "");
    }

    #[test]
    fn folding_is_linear() {
        let long = "aB\u{200b}-".repeat(100_000);
        assert_eq!(
            skeleton(&long, Camel::Split).len(),
            "a_b_".len() * 100_000 - 1
        );
        assert_eq!(
            skeleton(&long, Camel::Flat).len(),
            "ab_".len() * 100_000 - 1
        );
    }
}
