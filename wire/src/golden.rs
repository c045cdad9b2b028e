//! The golden-JSON check every message's tests use: a fixed document parses,
//! re-serialises to the same JSON, and the parsed value is handed back so the
//! test can check it field by field.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Parses `golden`, checks that serialising the result gives the same JSON
/// value (no field lost, renamed or added), and returns the parsed message.
pub fn assert_round_trip<T: DeserializeOwned + Serialize>(golden: &str) -> T {
    let expected: Value = serde_json::from_str(golden).unwrap();
    let message: T = serde_json::from_str(golden).unwrap();
    let again = serde_json::to_value(&message).unwrap();
    assert_eq!(
        again, expected,
        "re-serialised JSON differs from the golden document"
    );
    message
}
