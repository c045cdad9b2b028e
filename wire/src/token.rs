//! Agent tokens: HS256 JWTs carrying an agent ID and its capabilities.
//!
//! The format is fixed by DESIGN.md ("Agent identity — tokens") and is compatible
//! with tokens minted by the KalGuard dashboard and the original `kalguard-core`:
//! header `{"alg":"HS256","typ":"JWT"}`, claims `sub`, `capabilities`, `exp`
//! (required), `iat`, `nbf`, `iss`, `metadata`. The HMAC key is the secret
//! string's UTF-8 bytes. Every other algorithm (`none` included) is refused, and a
//! token is never trusted without a verified signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use crate::capability::CapabilitySet;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 30;

/// The issuer KalGuard writes into the tokens it mints.
pub const ISSUER: &str = "kalguard";

type HmacSha256 = Hmac<Sha256>;

/// The claims of an agent token, as they appear on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The agent ID.
    pub sub: String,
    /// Capability strings; unknown ones are carried but grant nothing.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Expiry, unix seconds.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A verified agent: who it is and what it may do.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub id: AgentId,
    pub capabilities: CapabilitySet,
    /// Expiry of the token that identified the agent, unix seconds.
    pub expires_at: i64,
    /// The token's capability strings as written, unknown ones included
    /// (policy rules match them).
    pub granted: Vec<String>,
    /// The token's `metadata` object (policy rules match it as `attributes`).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An agent ID (the token's `sub`), never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(String);

impl AgentId {
    /// Returns `None` for an empty ID, or one with a character a reader cannot
    /// see for what it is ([`crate::agent_id::is_hidden`]): two IDs that render
    /// alike must not be two agents.
    pub fn new(id: &str) -> Option<AgentId> {
        if id.is_empty() || crate::agent_id::first_hidden(id).is_some() {
            None
        } else {
            Some(AgentId(id.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a token was refused. Each maps to one documented error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts, undecodable JSON, a non-HS256 algorithm, a bad
    /// signature, a missing `sub` or `exp`, or not yet valid.
    Invalid(&'static str),
    /// `exp` is in the past (beyond the tolerated skew).
    Expired,
    /// The token's hash is on the revocation list.
    Revoked,
    /// No signing secret is configured, so nothing can be verified.
    NoSecret,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Invalid(why) => write!(f, "invalid agent token: {why}"),
            TokenError::Expired => f.write_str("agent token has expired"),
            TokenError::Revoked => f.write_str("agent token has been revoked"),
            TokenError::NoSecret => f.write_str(
                "no token signing secret configured (set KALGUARD_TOKEN_SECRET or connect the control plane to KalGuard Cloud)",
            ),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
}

/// What a token is checked against: the accepted secrets (current first, then the
/// previous one kept for a rotation) and the revoked token hashes.
pub struct Verifier<'a> {
    pub secrets: &'a [String],
    pub is_revoked: &'a dyn Fn(&str) -> bool,
}

impl Verifier<'_> {
    /// Verifies `token` at unix time `now` and returns the agent it names.
    pub fn verify(&self, token: &str, now: i64) -> Result<Agent, TokenError> {
        self.verify_once(token, now).map(|verified| verified.agent)
    }

    /// As [`Verifier::verify`], answered from `cache` for a token this VM verified
    /// before: the signature and the token's hash are not computed again, but whether
    /// its secret is still accepted, whether it is revoked now and whether it has
    /// expired are, so the answer is the same as without the cache.
    pub fn verify_cached(
        &self,
        token: &str,
        now: i64,
        cache: &VerifiedTokens,
    ) -> Result<Agent, TokenError> {
        if let Some(agent) = cache.get(token, self, now) {
            return Ok(agent);
        }
        let verified = self.verify_once(token, now)?;
        let agent = verified.agent.clone();
        cache.insert(token, verified);
        Ok(agent)
    }

    fn verify_once(&self, token: &str, now: i64) -> Result<Verified, TokenError> {
        if self.secrets.is_empty() {
            return Err(TokenError::NoSecret);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid("expected three dot-separated parts"));
        };
        let header: Header = decode_json(header_b64).ok_or(TokenError::Invalid("bad header"))?;
        if header.alg != "HS256" {
            return Err(TokenError::Invalid("only HS256 is accepted"));
        }
        if header
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return Err(TokenError::Invalid("typ must be JWT"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Invalid("signature is not base64url"))?;
        let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
        let Some(secret) = self
            .secrets
            .iter()
            .find(|secret| signature_matches(secret, signed, &signature))
        else {
            return Err(TokenError::Invalid("bad signature"));
        };
        let hash = token_hash(token);
        if (self.is_revoked)(&hash) {
            return Err(TokenError::Revoked);
        }
        let claims: Claims = decode_json(claims_b64).ok_or(TokenError::Invalid("bad claims"))?;
        if now > claims.exp.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECS))
        {
            return Err(TokenError::Invalid("not valid yet (nbf)"));
        }
        let id = AgentId::new(&claims.sub).ok_or(TokenError::Invalid(
            "missing sub, or an agent ID with an invisible, control or space character",
        ))?;
        Ok(Verified {
            agent: Agent {
                id,
                capabilities: CapabilitySet::parse(&claims.capabilities),
                expires_at: claims.exp,
                granted: claims.capabilities,
                metadata: claims.metadata,
            },
            secret: secret.clone(),
            hash,
        })
    }
}

/// A token that passed every check: its agent, the secret that signed it and its hash.
struct Verified {
    agent: Agent,
    secret: String,
    hash: String,
}

/// Tokens one VM verified, so an agent's next request skips the HMAC and the SHA-256
/// (most of what identifying it costs). An entry answers only while its secret is
/// still accepted, its hash is not revoked and it has not expired; otherwise the token
/// is verified again, so a rotated secret, a revocation or an expiry takes effect at
/// once. Only tokens that passed are kept (refusals are always recomputed, and junk
/// cannot fill the cache); at [`VerifiedTokens::MAX`] entries it starts over.
#[derive(Default)]
pub struct VerifiedTokens(RefCell<BTreeMap<String, Verified>>);

impl VerifiedTokens {
    /// Most tokens kept (about 1 KiB each).
    pub const MAX: usize = 1024;

    /// Number of tokens kept.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, token: &str, verifier: &Verifier<'_>, now: i64) -> Option<Agent> {
        let cache = self.0.borrow();
        let entry = cache.get(token)?;
        let still_valid = verifier.secrets.contains(&entry.secret)
            && !(verifier.is_revoked)(&entry.hash)
            && now <= entry.agent.expires_at.saturating_add(CLOCK_SKEW_SECS);
        still_valid.then(|| entry.agent.clone())
    }

    fn insert(&self, token: &str, verified: Verified) {
        let mut cache = self.0.borrow_mut();
        if cache.len() >= Self::MAX {
            cache.clear();
        }
        cache.insert(token.to_owned(), verified);
    }
}

/// Not part of what credentials are: a copy starts empty, and two caches compare equal.
impl Clone for VerifiedTokens {
    fn clone(&self) -> Self {
        VerifiedTokens::default()
    }
}

impl PartialEq for VerifiedTokens {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedTokens({} tokens)", self.len())
    }
}

/// The `sub` of a token [`Verifier::verify`] refused as expired or revoked. It
/// refuses those only after the signature matched, so the subject is
/// authentic and the refusal can be attributed to its agent in the audit trail.
/// Never use it to identify a token that was not verified.
pub fn refused_subject(token: &str) -> Option<AgentId> {
    let claims: Claims = decode_json(token.split('.').nth(1)?)?;
    AgentId::new(&claims.sub)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn signature_matches(secret: &str, signed: &str, signature: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(signed.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(signature).is_ok()
}

/// Mints an HS256 token for `claims` with `secret`.
pub fn mint(claims: &Claims, secret: &str) -> String {
    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
    // Serialising a struct of strings, integers and JSON values cannot fail.
    let claims_json = serde_json::to_vec(claims).unwrap_or_default();
    let mut token = URL_SAFE_NO_PAD.encode(HEADER);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims_json));
    let signature = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(token.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => Vec::new(),
    };
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
}

/// Lowercase hex SHA-256 of the whole token string: the form revocation lists use.
pub fn token_hash(token: &str) -> String {
    hex_lower(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Capability;

    const NOW: i64 = 1_800_000_000;
    const SECRET: &str = "test-secret-0123456789";

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "agent-1".into(),
            capabilities: vec!["prompt:send".into(), "frobnicate".into()],
            exp,
            iat: Some(NOW - 10),
            nbf: None,
            iss: Some(ISSUER.into()),
            metadata: None,
        }
    }

    fn verify(token: &str, secrets: &[&str], revoked: &[String]) -> Result<Agent, TokenError> {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let is_revoked = |hash: &str| revoked.iter().any(|r| r == hash);
        Verifier {
            secrets: &secrets,
            is_revoked: &is_revoked,
        }
        .verify(token, NOW)
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn verify_cached(
        cache: &VerifiedTokens,
        token: &str,
        secrets: &[&str],
        revoked: &[String],
        now: i64,
    ) -> Result<Agent, TokenError> {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let is_revoked = |hash: &str| revoked.iter().any(|r| r == hash);
        Verifier {
            secrets: &secrets,
            is_revoked: &is_revoked,
        }
        .verify_cached(token, now, cache)
    }

    #[test]
    fn a_cached_token_is_still_checked_for_revocation_rotation_and_expiry() {
        let cache = VerifiedTokens::default();
        let token = mint(&claims(NOW + 60), SECRET);
        let first = verify_cached(&cache, &token, &[SECRET], &[], NOW).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(
            verify_cached(&cache, &token, &[SECRET], &[], NOW),
            Ok(first)
        );
        assert!(matches!(
            verify_cached(&cache, &token, &[SECRET], &[token_hash(&token)], NOW),
            Err(TokenError::Revoked)
        ));
        assert!(matches!(
            verify_cached(&cache, &token, &["rotated-secret"], &[], NOW),
            Err(TokenError::Invalid("bad signature"))
        ));
        assert!(matches!(
            verify_cached(
                &cache,
                &token,
                &[SECRET],
                &[],
                NOW + 60 + CLOCK_SKEW_SECS + 1
            ),
            Err(TokenError::Expired)
        ));
        // The same answers as without a cache.
        assert!(verify_cached(&cache, &token, &[SECRET], &[], NOW).is_ok());
    }

    #[test]
    fn only_tokens_that_pass_are_cached_and_the_cache_is_bounded() {
        let cache = VerifiedTokens::default();
        let forged = mint(&claims(NOW + 60), "not-the-secret");
        assert!(verify_cached(&cache, &forged, &[SECRET], &[], NOW).is_err());
        let expired = mint(&claims(NOW - 3600), SECRET);
        assert!(verify_cached(&cache, &expired, &[SECRET], &[], NOW).is_err());
        assert!(cache.is_empty());
        for i in 0..=VerifiedTokens::MAX {
            let token = mint(&claims(NOW + 60 + i as i64), SECRET);
            assert!(verify_cached(&cache, &token, &[SECRET], &[], NOW).is_ok());
        }
        assert!(cache.len() <= VerifiedTokens::MAX);
    }

    #[test]
    fn minted_token_verifies_and_carries_capabilities() {
        let token = mint(&claims(NOW + 60), SECRET);
        let agent = verify(&token, &[SECRET], &[]).unwrap();
        assert_eq!(agent.id.as_str(), "agent-1");
        assert!(agent.capabilities.has(&Capability::PromptSend));
        assert!(!agent.capabilities.has(&Capability::ToolExecute));
    }

    #[test]
    fn previous_secret_still_verifies_after_rotation() {
        let token = mint(&claims(NOW + 60), "old-secret");
        assert!(verify(&token, &["new-secret", "old-secret"], &[]).is_ok());
        assert_eq!(
            verify(&token, &["new-secret"], &[]),
            Err(TokenError::Invalid("bad signature"))
        );
    }

    #[test]
    fn known_vector_from_an_independent_implementation() {
        // Token computed with Python's hmac/base64 for claims
        // {"sub":"agent-1","capabilities":["prompt:send"],"exp":1800000060}.
        let header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64(r#"{"sub":"agent-1","capabilities":["prompt:send"],"exp":1800000060}"#);
        let signing_input = format!("{header}.{payload}");
        let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            sig, "KLrf1CRDzWi2LOkyoSMBRfCKlrJywbEePWVeQAHbPKY",
            "HMAC-SHA256 output changed: the key must be the secret's UTF-8 bytes"
        );
        assert!(verify(&format!("{signing_input}.{sig}"), &[SECRET], &[]).is_ok());
    }

    #[test]
    fn tampered_claims_are_refused() {
        let token = mint(&claims(NOW + 60), SECRET);
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(
            r#"{"sub":"admin","capabilities":["prompt:send","tool:execute"],"exp":1900000000}"#,
        );
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(
            verify(&tampered, &[SECRET], &[]),
            Err(TokenError::Invalid("bad signature"))
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let payload = b64(r#"{"sub":"agent-1","capabilities":["prompt:send"],"exp":1900000000}"#);
        for alg in ["none", "None", "HS512", "RS256", "hs256"] {
            let header = b64(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            for sig in ["", "AAAA"] {
                let token = format!("{header}.{payload}.{sig}");
                assert_eq!(
                    verify(&token, &[SECRET], &[]),
                    Err(TokenError::Invalid("only HS256 is accepted")),
                    "alg {alg}"
                );
            }
        }
    }

    #[test]
    fn expiry_honours_thirty_seconds_of_skew() {
        let just_expired = mint(&claims(NOW - CLOCK_SKEW_SECS), SECRET);
        assert!(verify(&just_expired, &[SECRET], &[]).is_ok());
        let expired = mint(&claims(NOW - CLOCK_SKEW_SECS - 1), SECRET);
        assert_eq!(verify(&expired, &[SECRET], &[]), Err(TokenError::Expired));
    }

    #[test]
    fn not_before_in_the_future_is_refused() {
        let mut c = claims(NOW + 600);
        c.nbf = Some(NOW + CLOCK_SKEW_SECS + 5);
        let token = mint(&c, SECRET);
        assert_eq!(
            verify(&token, &[SECRET], &[]),
            Err(TokenError::Invalid("not valid yet (nbf)"))
        );
    }

    #[test]
    fn missing_sub_or_exp_is_refused() {
        let mut c = claims(NOW + 60);
        for sub in ["", " ", "support-bot\u{200B}", "support\u{202E}tob-", "a b"] {
            c.sub = sub.into();
            assert_eq!(
                verify(&mint(&c, SECRET), &[SECRET], &[]),
                Err(TokenError::Invalid(
                    "missing sub, or an agent ID with an invisible, control or space character"
                )),
                "{sub:?}"
            );
        }

        let header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64(r#"{"sub":"agent-1","capabilities":[]}"#);
        let signing_input = format!("{header}.{payload}");
        let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            verify(&format!("{signing_input}.{sig}"), &[SECRET], &[]),
            Err(TokenError::Invalid("bad claims"))
        );
    }

    #[test]
    fn revoked_token_is_refused() {
        let token = mint(&claims(NOW + 60), SECRET);
        assert_eq!(
            verify(&token, &[SECRET], &[token_hash(&token)]),
            Err(TokenError::Revoked)
        );
    }

    #[test]
    fn no_secret_means_no_trust() {
        let token = mint(&claims(NOW + 60), SECRET);
        assert_eq!(verify(&token, &[], &[]), Err(TokenError::NoSecret));
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        for token in [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            "!!!.@@@.###",
            "eyJ.eyJ.",
            "\u{1F600}.\u{1F600}.x",
        ] {
            assert!(
                matches!(verify(token, &[SECRET], &[]), Err(TokenError::Invalid(_))),
                "{token:?}"
            );
        }
    }

    #[test]
    fn token_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
