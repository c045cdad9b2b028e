//! The authenticated channel between the filter and the control plane
//! (DESIGN.md, "Filter ↔ control plane"): one definition shared by both sides.
//!
//! - **Who may call.** Every call to the control plane carries the
//!   per-deployment channel key ([`ENV_VAR`], at least [`MIN_KEY_BYTES`] bytes)
//!   in [`KEY_HEADER`]; the control plane compares it in constant time
//!   ([`ChannelKey::matches`]) and answers 401 otherwise. A header rather than a
//!   signed request: the answer (the snapshot) carries the signing secrets in
//!   clear, so whoever can read the transport already holds more than a signed
//!   request would hide; confidentiality comes from the transport (a Unix
//!   socket, or a loopback no one else can sniff), authenticity from the key.
//! - **Who may answer.** Every snapshot carries, in [`MAC_HEADER`], an
//!   HMAC-SHA256 under the key over the poll's nonce and the body's exact
//!   bytes ([`ChannelKey::mac`]). The nonce is fresh per poll, so a snapshot
//!   answers one poll only: whoever squats the port cannot forge one, nor
//!   replay a genuine one recorded earlier. An event post's answer is signed
//!   the same way over its batch ID, so a squatter cannot make the filter
//!   drop events by acknowledging them: they wait for the real control plane.
//! - **Which snapshot wins.** Each control-plane process draws a random epoch
//!   at start and counts versions within it. A verified, fresh snapshot of a
//!   new epoch is adopted whatever its version (a restarted control plane, a
//!   clock set back); within one epoch only a higher version is
//!   ([`Position::supersedes`]). No ordering across epochs is needed: a
//!   snapshot is only ever adopted as the live control plane's answer to the
//!   filter's own poll.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The environment variable that holds the key, for the control plane and
/// (through Envoy's `host_env_keys`) the filter.
pub const ENV_VAR: &str = "KALGUARD_CHANNEL_KEY";
/// Shortest key accepted: 256 bits of a random hex or base64 string.
pub const MIN_KEY_BYTES: usize = 32;
/// The request header that carries the key.
pub const KEY_HEADER: &str = "x-kalguard-channel-key";
/// The response header that carries an answer's MAC (lowercase hex).
pub const MAC_HEADER: &str = "x-kalguard-mac";
/// Longest nonce the control plane accepts in a poll.
pub const MAX_NONCE_BYTES: usize = 128;
/// How to make a key, for messages.
pub const HOW_TO_SET: &str = "generate one with `openssl rand -hex 32` and give the same value to the control plane and to Envoy (vm_config.environment_variables.host_env_keys)";

/// What a signed answer is. Each kind has its own MAC domain, so one can
/// never pass for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `GET /v1/filter/state` (200), bound to the poll's nonce.
    Snapshot,
    /// `POST /v1/filter/events` (200), bound to the batch ID.
    EventsAck,
    /// `POST /v1/filter/approvals` (200), bound to the request's nonce: a
    /// person's word on a held request ([`crate::approval`]).
    Approval,
    /// `POST /v1/filter/pins` (200), bound to the filing's nonce: the
    /// verdicts on an MCP server's tools ([`crate::pins`]).
    Pins,
}

impl Answer {
    fn domain(self) -> &'static [u8] {
        match self {
            Answer::Snapshot => b"kalguard-snapshot-v1\n",
            Answer::EventsAck => b"kalguard-events-ack-v1\n",
            Answer::Approval => b"kalguard-approval-v1\n",
            Answer::Pins => b"kalguard-pins-v1\n",
        }
    }
}

/// The channel key. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey(Vec<u8>);

/// Why a key was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not set, or empty.
    Missing,
    /// Shorter than [`MIN_KEY_BYTES`] (its length).
    TooShort(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Missing => write!(f, "{ENV_VAR} is not set; {HOW_TO_SET}"),
            KeyError::TooShort(len) => write!(
                f,
                "{ENV_VAR} is {len} bytes long; it must be at least {MIN_KEY_BYTES}: {HOW_TO_SET}"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelKey({} bytes)", self.0.len())
    }
}

impl ChannelKey {
    /// The key from a variable's value (surrounding whitespace ignored: a
    /// trailing newline from a file or a Secret is not part of the key).
    pub fn parse(value: Option<&str>) -> Result<ChannelKey, KeyError> {
        let value = value.map(str::trim).unwrap_or_default();
        match value.len() {
            0 => Err(KeyError::Missing),
            len if len < MIN_KEY_BYTES => Err(KeyError::TooShort(len)),
            _ => Ok(ChannelKey(value.as_bytes().to_vec())),
        }
    }

    /// The value to send in [`KEY_HEADER`].
    pub fn header_value(&self) -> &str {
        // Built from a `&str` in `parse`, so always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether `presented` is the key, in time that does not depend on where
    /// they differ (only on the presented length).
    pub fn matches(&self, presented: &[u8]) -> bool {
        if presented.len() != self.0.len() {
            return false;
        }
        let difference = self
            .0
            .iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }

    fn hmac(&self, answer: Answer, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
        // The key is at least 32 bytes and HMAC takes any length: this cannot
        // fail, and the empty key in the fallback would only make MACs no
        // one else verifies.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        mac.update(answer.domain());
        mac.update(&(nonce.len() as u64).to_be_bytes());
        mac.update(nonce.as_bytes());
        mac.update(body);
        mac
    }

    /// The MAC of an `answer` whose `body` answers the call that sent
    /// `nonce` (a poll's nonce, a post's batch ID), as lowercase hex for
    /// [`MAC_HEADER`].
    pub fn mac(&self, answer: Answer, nonce: &str, body: &[u8]) -> String {
        hex(&self.hmac(answer, nonce, body).finalize().into_bytes())
    }

    /// Whether `mac_hex` is the MAC of `body` as `answer` for `nonce`
    /// (constant-time).
    pub fn verify(&self, answer: Answer, nonce: &str, body: &[u8], mac_hex: &str) -> bool {
        let Some(mac) = unhex(mac_hex.trim()) else {
            return false;
        };
        self.hmac(answer, nonce, body).verify_slice(&mac).is_ok()
    }
}

/// Where a snapshot sits in the control plane's history: its process's epoch
/// and its version within it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub version: u64,
}

impl Position {
    /// Whether a verified, fresh snapshot at `self` replaces the one at
    /// `held` (`None` before the first): a new epoch always does, the same
    /// epoch only with a higher version.
    pub fn supersedes(&self, held: Option<&Position>) -> bool {
        match held {
            None => true,
            Some(held) if held.epoch != self.epoch => true,
            Some(held) => self.version > held.version,
        }
    }

    /// The form kept in shared data: `<version> <epoch>`.
    pub fn encode(&self) -> String {
        format!("{} {}", self.version, self.epoch)
    }

    /// Reads [`Position::encode`]'s form; `None` for anything else.
    pub fn decode(text: &str) -> Option<Position> {
        let (version, epoch) = text.split_once(' ')?;
        Some(Position {
            epoch: epoch.to_owned(),
            version: version.parse().ok()?,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn key() -> ChannelKey {
        ChannelKey::parse(Some(KEY)).unwrap()
    }

    #[test]
    fn a_key_is_at_least_32_bytes_and_its_errors_name_the_variable() {
        assert_eq!(ChannelKey::parse(None), Err(KeyError::Missing));
        assert_eq!(ChannelKey::parse(Some("  \n")), Err(KeyError::Missing));
        assert_eq!(
            ChannelKey::parse(Some(&KEY[1..])),
            Err(KeyError::TooShort(31))
        );
        assert_eq!(ChannelKey::parse(Some(&format!(" {KEY}\n"))), Ok(key()));
        for error in [KeyError::Missing, KeyError::TooShort(3)] {
            let message = error.to_string();
            assert!(message.contains(ENV_VAR), "{message}");
            assert!(message.contains("openssl rand -hex 32"), "{message}");
        }
    }

    #[test]
    fn golden_macs_from_an_independent_implementation() {
        // Python's hmac over domain, 8-byte big-endian nonce length, nonce, body:
        // the control plane and every filter build must agree on these bytes.
        let snapshot = br#"{"version":1,"mode":"local"}"#;
        let mac = "81e6061e4d971123d7c419c03ab4fe53e1c8c341af863ca9971faff883da36cb";
        assert_eq!(key().mac(Answer::Snapshot, "n1", snapshot), mac);
        assert!(key().verify(Answer::Snapshot, "n1", snapshot, mac));
        let ack = br#"{"accepted":1}"#;
        let mac = "e0d641aeac670e8ca4bf42a55a5797d3824a51395cea9fd7515cecbcd3dea95d";
        assert_eq!(key().mac(Answer::EventsAck, "b1", ack), mac);
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(format!("{:?}", key()), "ChannelKey(32 bytes)");
    }

    #[test]
    fn only_the_exact_key_matches() {
        let key = key();
        assert!(key.matches(KEY.as_bytes()));
        assert!(!key.matches(b""));
        assert!(!key.matches(&KEY.as_bytes()[..31]));
        assert!(!key.matches(format!("{KEY}0").as_bytes()));
        let mut last_differs = KEY.as_bytes().to_vec();
        last_differs[31] ^= 1;
        assert!(!key.matches(&last_differs));
        let mut first_differs = KEY.as_bytes().to_vec();
        first_differs[0] ^= 0x80;
        assert!(!key.matches(&first_differs));
        assert!(!key.matches(KEY.to_uppercase().as_bytes()));
    }

    #[test]
    fn a_snapshot_verifies_only_under_its_key_nonce_and_exact_bytes() {
        let body = br#"{"version":5,"epoch":"e1","mode":"local"}"#;
        let mac = key().mac(Answer::Snapshot, "n1", body);
        assert_eq!(mac.len(), 64);
        assert!(key().verify(Answer::Snapshot, "n1", body, &mac));
        assert!(key().verify(Answer::Snapshot, "n1", body, &mac.to_uppercase()));
        let other = ChannelKey::parse(Some(&KEY.replace('0', "x"))).unwrap();
        assert!(
            !other.verify(Answer::Snapshot, "n1", body, &mac),
            "another key"
        );
        assert!(
            !key().verify(Answer::Snapshot, "n2", body, &mac),
            "another poll"
        );
        assert!(!key().verify(Answer::Snapshot, "", body, &mac), "no nonce");
        let mut changed = body.to_vec();
        changed[12] = b'9';
        assert!(
            !key().verify(Answer::Snapshot, "n1", &changed, &mac),
            "a changed body"
        );
        let mut longer = body.to_vec();
        longer.push(b' ');
        assert!(
            !key().verify(Answer::Snapshot, "n1", &longer, &mac),
            "a longer body"
        );
        for bad in ["", "zz", &mac[..63], &mac[..62], &format!("{mac}00")] {
            assert!(!key().verify(Answer::Snapshot, "n1", body, bad), "{bad:?}");
        }
    }

    #[test]
    fn a_snapshot_mac_is_not_an_events_ack_and_the_reverse() {
        let body = br#"{"accepted":1}"#;
        let ack = key().mac(Answer::EventsAck, "batch-1", body);
        assert!(key().verify(Answer::EventsAck, "batch-1", body, &ack));
        assert!(!key().verify(Answer::Snapshot, "batch-1", body, &ack));
        assert!(!key().verify(Answer::EventsAck, "batch-2", body, &ack));
        let snapshot = key().mac(Answer::Snapshot, "batch-1", body);
        assert!(!key().verify(Answer::EventsAck, "batch-1", body, &snapshot));
    }

    #[test]
    fn an_approval_mac_is_no_other_answer_and_no_other_answer_is_an_approval() {
        let body = br#"{"verdict":"approved"}"#;
        let approval = key().mac(Answer::Approval, "n1", body);
        assert!(key().verify(Answer::Approval, "n1", body, &approval));
        assert!(!key().verify(Answer::Snapshot, "n1", body, &approval));
        assert!(!key().verify(Answer::EventsAck, "n1", body, &approval));
        assert!(!key().verify(Answer::Approval, "n2", body, &approval));
        for other in [Answer::Snapshot, Answer::EventsAck] {
            let mac = key().mac(other, "n1", body);
            assert!(!key().verify(Answer::Approval, "n1", body, &mac));
        }
    }

    #[test]
    fn a_pins_mac_is_no_other_answer_and_no_other_answer_is_a_pins_one() {
        let body = br#"{"verdicts":{"search":"pinned"}}"#;
        let pins = key().mac(Answer::Pins, "n1", body);
        assert!(key().verify(Answer::Pins, "n1", body, &pins));
        assert!(!key().verify(Answer::Pins, "n2", body, &pins));
        for other in [Answer::Snapshot, Answer::EventsAck, Answer::Approval] {
            assert!(!key().verify(other, "n1", body, &pins));
            let mac = key().mac(other, "n1", body);
            assert!(!key().verify(Answer::Pins, "n1", body, &mac));
        }
    }

    #[test]
    fn nonce_and_body_cannot_trade_bytes() {
        // The nonce's length is part of the MAC: "ab" + "c…" is not "a" + "bc…".
        let mac = key().mac(Answer::Snapshot, "ab", b"cd");
        assert!(!key().verify(Answer::Snapshot, "a", b"bcd", &mac));
    }

    #[test]
    fn a_new_epoch_supersedes_whatever_its_version_and_an_old_version_never_does() {
        let at = |epoch: &str, version| Position {
            epoch: epoch.into(),
            version,
        };
        assert!(at("a", 1).supersedes(None));
        assert!(at("a", 2).supersedes(Some(&at("a", 1))));
        assert!(!at("a", 1).supersedes(Some(&at("a", 1))));
        assert!(!at("a", 1).supersedes(Some(&at("a", 2))));
        assert!(at("b", 1).supersedes(Some(&at("a", u64::MAX))));
    }

    #[test]
    fn positions_round_trip_through_shared_data() {
        let position = Position {
            epoch: "9f86d081884c7d65".into(),
            version: 1_750_000_000_123,
        };
        assert_eq!(Position::decode(&position.encode()), Some(position));
        for bad in ["", "12", "x e", "-1 e"] {
            assert_eq!(Position::decode(bad), None, "{bad:?}");
        }
    }
}
