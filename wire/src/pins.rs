//! MCP tool pinning on the filter ↔ control-plane channel
//! (`docs/mcp-pinning.md`): what the filter files about the tools an MCP
//! server lists or an agent calls ([`PinFiling`], `POST /v1/filter/pins`),
//! and the control plane's word on each tool ([`PinAnswer`]).
//!
//! The control plane keeps the pins (per server, per tool: the SHA-256 of
//! the tool's canonical definition) and answers at once, signed under the
//! channel key as [`crate::channel::Answer::Pins`] over the filing's nonce
//! and the answer's exact bytes. The filter lets a tool through only when
//! that MAC verifies, the answer names its request and server, and the
//! tool's verdict is [`PinVerdict::Pinned`]; anything else (no answer, a
//! forged one, another request's, a tool the answer does not name) drops
//! the tool from the list or refuses the call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The control plane's route the filter files pins on.
pub const PATH: &str = "/v1/filter/pins";
/// Most tools one filing names: the tools of a longer list past this many
/// are dropped by the filter and never filed (the control plane refuses a
/// longer filing).
pub const MAX_TOOLS: usize = 1_000;
/// Longest tool name, server or description excerpt kept, in characters.
pub const MAX_TEXT_CHARS: usize = 512;

/// What the filter saw of one tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolSeen {
    pub name: String,
    /// Lowercase hex SHA-256 of the tool's canonical definition, when the
    /// server listed it; `None` when an agent calls it (the call names no
    /// definition: the pin in force decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// SHA-256 of each top-level field of the definition (`description`,
    /// `inputSchema`, …), so an operator sees which parts changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The first [`MAX_TEXT_CHARS`] characters of the description, for the
    /// operator who reviews a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Why the filter finds the tool suspicious (its firewall's finding, a
    /// name listed twice or outside the allowed characters); `None` if not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspicious: Option<String>,
}

/// One filing: the tools of one server that one request listed or called.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinFiling {
    /// Fresh per filing; the answer's MAC is bound to it.
    pub nonce: String,
    /// The request's `x-kalguard-request-id`.
    pub request_id: String,
    pub agent_id: String,
    /// The MCP server: the request path it is served on.
    pub server: String,
    pub tools: Vec<ToolSeen>,
}

impl PinFiling {
    /// The filing's JSON, as serde writes it, built with the JSON map code
    /// the filter has anyway (as [`crate::approval::ApprovalRequest::to_json`]
    /// does, for the `.wasm`'s size); a test holds the two equal.
    pub fn to_json(&self) -> Vec<u8> {
        let tools = self.tools.iter().map(ToolSeen::to_value).collect();
        let mut map = Map::new();
        map.insert("nonce".into(), self.nonce.as_str().into());
        map.insert("requestId".into(), self.request_id.as_str().into());
        map.insert("agentId".into(), self.agent_id.as_str().into());
        map.insert("server".into(), self.server.as_str().into());
        map.insert("tools".into(), Value::Array(tools));
        Value::Object(map).to_string().into_bytes()
    }
}

impl ToolSeen {
    fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("name".into(), self.name.as_str().into());
        for (key, value) in [
            ("sha256", &self.sha256),
            ("description", &self.description),
            ("suspicious", &self.suspicious),
        ] {
            if let Some(value) = value {
                map.insert(key.into(), value.as_str().into());
            }
        }
        if !self.fields.is_empty() {
            let mut fields = Map::new();
            for (field, hash) in &self.fields {
                fields.insert(field.clone(), hash.as_str().into());
            }
            map.insert("fields".into(), Value::Object(fields));
        }
        Value::Object(map)
    }
}

/// The control plane's word on one tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinVerdict {
    /// Pinned (now, on first use, or earlier) with this definition, and
    /// nothing waits for an operator: the tool may be listed and called.
    Pinned,
    /// Its definition differs from the pin: an operator must approve the
    /// new one (`kalguard tools approve`).
    Changed,
    /// Flagged (hidden directives, a look-alike name): an operator must
    /// approve it.
    Suspicious,
    /// Never listed by this server (or past the control plane's bounds).
    Unknown,
}

impl PinVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            PinVerdict::Pinned => "pinned",
            PinVerdict::Changed => "changed",
            PinVerdict::Suspicious => "suspicious",
            PinVerdict::Unknown => "unknown",
        }
    }

    fn parse(text: &str) -> Option<PinVerdict> {
        Some(match text {
            "pinned" => PinVerdict::Pinned,
            "changed" => PinVerdict::Changed,
            "suspicious" => PinVerdict::Suspicious,
            "unknown" => PinVerdict::Unknown,
            _ => return None,
        })
    }
}

/// The control plane's answer to one [`PinFiling`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinAnswer {
    /// Echoed from the filing: the filter checks both.
    pub request_id: String,
    pub server: String,
    /// Each tool filed, by name.
    pub verdicts: BTreeMap<String, PinVerdict>,
}

impl PinAnswer {
    /// Reads an answer from JSON as serde would (unknown fields ignored),
    /// by hand for the same reason as [`PinFiling::to_json`].
    pub fn parse(json: &[u8]) -> Option<PinAnswer> {
        let value: Value = serde_json::from_slice(json).ok()?;
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        // Inserted one by one: collecting into a B-tree sorts (a stable
        // sort's code in the `.wasm`), and the map's keys come sorted anyway.
        let mut verdicts = BTreeMap::new();
        for (name, verdict) in value.get("verdicts")?.as_object()? {
            verdicts.insert(name.clone(), PinVerdict::parse(verdict.as_str()?)?);
        }
        Some(PinAnswer {
            request_id: text("requestId")?,
            server: text("server")?,
            verdicts,
        })
    }

    /// Whether this answer is about `filing` (its request and server).
    pub fn answers(&self, filing: &PinFiling) -> bool {
        self.request_id == filing.request_id && self.server == filing.server
    }

    /// The verdict on `tool`; a tool the answer does not name is
    /// [`PinVerdict::Unknown`].
    pub fn verdict(&self, tool: &str) -> PinVerdict {
        self.verdicts
            .get(tool)
            .copied()
            .unwrap_or(PinVerdict::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::assert_round_trip;

    const FILING: &str = r#"{"nonce":"req_1.pins","requestId":"req_1","agentId":"bot",
        "server":"/mcp","tools":[
        {"name":"search","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
         "fields":{"description":"aa","inputSchema":"bb","name":"cc"},"description":"Search the web"},
        {"name":"send","sha256":"00","suspicious":"description: exfiltration"},
        {"name":"called"}]}"#;

    #[test]
    fn golden_filing_and_answer() {
        let filing: PinFiling = assert_round_trip(FILING);
        assert_eq!(filing.tools.len(), 3);
        assert_eq!(filing.tools[2].sha256, None);
        let answer: PinAnswer = assert_round_trip(
            r#"{"requestId":"req_1","server":"/mcp",
               "verdicts":{"search":"pinned","send":"suspicious","called":"unknown"}}"#,
        );
        assert!(answer.answers(&filing));
        assert_eq!(answer.verdict("search"), PinVerdict::Pinned);
        assert_eq!(answer.verdict("send"), PinVerdict::Suspicious);
        assert_eq!(answer.verdict("not-named"), PinVerdict::Unknown);
        let other = PinAnswer {
            server: "/mcp/other".into(),
            ..answer
        };
        assert!(!other.answers(&filing));
    }

    #[test]
    fn the_hand_written_forms_agree_with_serde() {
        let filing: PinFiling = serde_json::from_str(FILING).unwrap();
        let by_hand: Value = serde_json::from_slice(&filing.to_json()).unwrap();
        assert_eq!(by_hand, serde_json::to_value(&filing).unwrap());
        let answers = [
            r#"{"requestId":"r","server":"/mcp","verdicts":{}}"#,
            r#"{"requestId":"r","server":"/mcp","verdicts":{"a":"changed","b":"pinned"},"x":1}"#,
        ];
        for answer in answers {
            let by_serde: PinAnswer = serde_json::from_str(answer).unwrap();
            assert_eq!(PinAnswer::parse(answer.as_bytes()), Some(by_serde));
        }
        for refused in [
            "",
            "[]",
            r#"{"requestId":"r","server":"/mcp","verdicts":{"a":"yes"}}"#,
            r#"{"requestId":"r","verdicts":{}}"#,
            r#"{"requestId":"r","server":"/mcp","verdicts":[]}"#,
        ] {
            assert!(
                serde_json::from_str::<PinAnswer>(refused).is_err(),
                "{refused}"
            );
            assert_eq!(PinAnswer::parse(refused.as_bytes()), None, "{refused}");
        }
    }

    #[test]
    fn a_filing_with_a_field_we_do_not_know_is_refused() {
        let extra = FILING.replacen('{', r#"{"prompt":"hi","#, 1);
        assert!(serde_json::from_str::<PinFiling>(&extra).is_err());
    }
}
