//! Random identifiers and secrets, hashing and constant-time comparison.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `len` random characters from [0-9a-zA-Z], from the OS generator.
pub fn random_string(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // 256 = 4 * 62 + 8: reject the top 8 values so every character is equally likely.
    let mut out = String::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        if i == bytes.len() {
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            i = 0;
        }
        let b = bytes[i];
        i += 1;
        if b < 248 {
            out.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    out
}

/// A new record ID with a readable prefix, e.g. `org_…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_string(20))
}

/// Lowercase hex SHA-256 of a string: how API keys, session tokens and revoked
/// agent tokens are stored.
pub fn sha256_hex(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A short fingerprint of a token-signing secret, recorded with each token so the
/// dashboard knows which secret minted it (the secret itself sits in `orgs`).
pub fn secret_id(signing_secret: &str) -> String {
    sha256_hex(signing_secret)[..16].to_string()
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether an API key is live or test; both authenticate the same organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    Live,
    Test,
}

impl KeyMode {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyMode::Live => "kg_live_",
            KeyMode::Test => "kg_test_",
        }
    }
}

/// A freshly generated API key: the full key (shown once) and what is stored.
pub struct NewApiKey {
    pub key: String,
    pub key_hash: String,
    /// The first characters, enough to recognise the key in a list.
    pub display_prefix: String,
}

pub fn new_api_key(mode: KeyMode) -> NewApiKey {
    let key = format!("{}{}", mode.prefix(), random_string(40));
    let display_prefix = format!("{}…", &key[..mode.prefix().len() + 6]);
    NewApiKey {
        key_hash: sha256_hex(&key),
        key,
        display_prefix,
    }
}

/// Whether a string has the shape of an API key (checked before any lookup).
pub fn looks_like_api_key(key: &str) -> bool {
    (key.starts_with("kg_live_") || key.starts_with("kg_test_"))
        && key.len() <= 128
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_their_prefix_and_are_stored_hashed() {
        let k = new_api_key(KeyMode::Live);
        assert!(k.key.starts_with("kg_live_"));
        assert!(looks_like_api_key(&k.key));
        assert_eq!(k.key_hash, sha256_hex(&k.key));
        assert!(!k.key_hash.contains(&k.key[8..]));
        assert!(new_api_key(KeyMode::Test).key.starts_with("kg_test_"));
        assert!(!looks_like_api_key("sk_live_abc"));
        assert!(!looks_like_api_key("kg_live_abc'--"));
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn random_strings_differ() {
        assert_eq!(random_string(32).len(), 32);
        assert_ne!(random_string(32), random_string(32));
    }
}
