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
//!
//! In Cloud mode the control plane also relays the tools it holds back to
//! the Cloud (`x-api-key`, [`CLOUD_PATH`]), so an owner or admin can
//! re-approve one on the dashboard: `POST /api/v1/pins` reports a
//! [`PinReport`] (every tool this control plane holds back now, replacing
//! its previous report) and is answered the [`PinDecisions`] waiting for it;
//! `GET /api/v1/pins/decisions?sidecarId=ID&wait=S` answers them, held up to
//! S seconds while there are none; `POST
//! /api/v1/pins/decisions/{id}/settle?sidecarId=ID` tells the Cloud what the
//! control plane did with one of its own ([`PinSettled`]).
//! A decision names the offered definition's SHA-256 and when its hold
//! began: the control plane applies it only while that very hold waits, so
//! a tool that changed again since is never pinned by a decision about the
//! one before, and a decision delivered again (after a restart) never lands
//! on a later hold of the same definition. The
//! report carries names, hashes and the filter's finding, never a
//! description: a definition's text is the server's, and may carry what
//! the firewall flagged in it (an injected instruction, a key); it stays on
//! the control plane (`kalguard tools list`).

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

/// Why a definition waits for an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// It differs from the pinned one.
    Changed,
    /// The filter (or the book: a look-alike name) flagged it.
    Suspicious,
}

impl Held {
    pub fn as_str(self) -> &'static str {
        match self {
            Held::Changed => "changed",
            Held::Suspicious => "suspicious",
        }
    }

    /// The reason a stored name stands for.
    pub fn parse(name: &str) -> Option<Held> {
        [Held::Changed, Held::Suspicious]
            .into_iter()
            .find(|h| h.as_str() == name)
    }
}

/// A name a server chose (a tool, a server, a field) as a person must see
/// it: every character past printable ASCII escaped (`\u{200b}`), so a
/// zero-width space, a bidi override or a Cyrillic `е` shows for what it is.
pub fn shown_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

/// Free text (a description, a reason) as a person must see it: control
/// characters and the invisible ones (zero-width, bidi controls, soft
/// hyphen, BOM) escaped, every other character as it is.
pub fn shown_text(text: &str) -> String {
    let invisible = |c: char| {
        matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || invisible(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Cloud's route for relayed pins (see the module's head).
pub const CLOUD_PATH: &str = "/api/v1/pins";
/// Longest a Cloud holds `GET {CLOUD_PATH}/decisions?wait=S` open, in seconds.
pub const MAX_CLOUD_WAIT_SECS: u64 = 25;
/// Most held tools one report carries (the rest are counted in
/// [`PinReport::left_out`] and stay with `kalguard tools`).
pub const MAX_CLOUD_HELD: usize = 1_000;
/// Longest sidecar ID.
pub const MAX_SIDECAR_ID_BYTES: usize = 128;

/// What one control plane holds back now, as it reports it to the Cloud.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinReport {
    /// This control plane's ID, kept in its data directory: the same MCP
    /// server path on two sidecars is two servers.
    pub sidecar_id: String,
    /// The host it runs on (`HOSTNAME`: the pod's name), for the person
    /// who must tell sidecars apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub held: Vec<HeldTool>,
    /// Held tools past [`MAX_CLOUD_HELD`], not in this report.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub left_out: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One tool held back, waiting for an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeldTool {
    pub server: String,
    pub tool: String,
    pub held: Held,
    /// The filter's (or the book's) finding, for a suspicious tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The definition in force; `None` for a tool never pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_sha256: Option<String>,
    /// The definition waiting: what an approval pins.
    pub offered_sha256: String,
    /// The top-level fields whose hashes differ from the pinned definition's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_changed: Vec<String>,
    /// Unix milliseconds when the offered definition was first seen.
    pub held_since_ms: u64,
}

/// What an operator decided on the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinAction {
    /// Pin the offered definition (`kalguard tools approve`).
    Approve,
    /// Drop the pin: the next definition is trusted on first use
    /// (`kalguard tools forget SERVER TOOL`).
    Forget,
}

impl PinAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PinAction::Approve => "approve",
            PinAction::Forget => "forget",
        }
    }

    /// The action a stored name stands for.
    pub fn parse(name: &str) -> Option<PinAction> {
        [PinAction::Approve, PinAction::Forget]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// One decision for a control plane to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinDecision {
    /// The Cloud's ID of the decision (one per held definition).
    pub id: String,
    pub server: String,
    pub tool: String,
    pub action: PinAction,
    /// The definition decided on: applied only while it is the one waiting.
    pub offered_sha256: String,
    /// When the hold decided on began ([`HeldTool::held_since_ms`]): applied
    /// only to that hold, never to a later one of the same definition.
    pub held_since_ms: u64,
    /// The member who decided.
    pub by: String,
}

/// The decisions waiting for one control plane.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinDecisions {
    pub decisions: Vec<PinDecision>,
}

/// What a control plane did with a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinOutcome {
    /// Done, as `kalguard tools approve` or `forget` would have.
    Applied,
    /// Another definition waits now: the decision pins nothing.
    Stale,
    /// Nothing waits any more (decided with the CLI first, or forgotten).
    Gone,
}

impl PinOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PinOutcome::Applied => "applied",
            PinOutcome::Stale => "stale",
            PinOutcome::Gone => "gone",
        }
    }

    /// The outcome a stored name stands for.
    pub fn parse(name: &str) -> Option<PinOutcome> {
        [PinOutcome::Applied, PinOutcome::Stale, PinOutcome::Gone]
            .into_iter()
            .find(|o| o.as_str() == name)
    }
}

/// `POST {CLOUD_PATH}/decisions/{id}/settle?sidecarId=ID`: what the
/// control plane did (with a decision for it: another's is refused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinSettled {
    pub outcome: PinOutcome,
    /// Why, when it was not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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
    fn golden_cloud_report_decisions_and_settle() {
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let report: PinReport = assert_round_trip(&format!(
            r#"{{"sidecarId":"sc_1","host":"pod-7","held":[
            {{"server":"/mcp","tool":"delete_repo","held":"changed","pinnedSha256":"{sha}",
              "offeredSha256":"{sha}","fieldsChanged":["inputSchema"],"heldSinceMs":1765000000000}},
            {{"server":"/mcp","tool":"add","held":"suspicious","why":"the firewall flagged it",
              "offeredSha256":"{sha}","heldSinceMs":1765000000001}}],"leftOut":3}}"#
        ));
        assert_eq!(report.held[1].held, Held::Suspicious);
        assert_eq!(report.held[1].pinned_sha256, None);
        let decisions: PinDecisions = assert_round_trip(&format!(
            r#"{{"decisions":[{{"id":"ph_1","server":"/mcp","tool":"delete_repo",
            "action":"approve","offeredSha256":"{sha}","heldSinceMs":1765000000000,
            "by":"alice@example.com"}}]}}"#
        ));
        assert_eq!(decisions.decisions[0].action, PinAction::Approve);
        let settled: PinSettled =
            assert_round_trip(r#"{"outcome":"stale","detail":"another definition waits"}"#);
        assert_eq!(settled.outcome, PinOutcome::Stale);
        for outcome in ["applied", "stale", "gone"] {
            assert_eq!(
                PinOutcome::parse(outcome).map(PinOutcome::as_str),
                Some(outcome)
            );
        }
        for action in ["approve", "forget"] {
            assert_eq!(
                PinAction::parse(action).map(PinAction::as_str),
                Some(action)
            );
        }
        assert_eq!(Held::parse("changed"), Some(Held::Changed));
        assert_eq!(Held::parse("pinned"), None);
        // A description, a key twice (which one would stand?), a number as
        // a string: refused, not read one way by one side and another by the other.
        for refused in [
            r#"{"sidecarId":"sc_1","held":[],"description":"x"}"#,
            r#"{"sidecarId":"sc_1","sidecarId":"sc_2","held":[]}"#,
            r#"{"sidecarId":"sc_1","held":[],"leftOut":"3"}"#,
        ] {
            assert!(
                serde_json::from_str::<PinReport>(refused).is_err(),
                "{refused}"
            );
        }
        let twice = r#"{"outcome":"applied","outcome":"gone"}"#;
        assert!(serde_json::from_str::<PinSettled>(twice).is_err());
    }

    #[test]
    fn names_and_texts_show_what_they_are() {
        assert_eq!(
            shown_name("r\u{435}ad_fi\u{200b}le"),
            "r\\u{435}ad_fi\\u{200b}le"
        );
        assert_eq!(shown_name("rm\u{1b}[2J"), "rm\\u{1b}[2J");
        assert_eq!(shown_name("read_file"), "read_file");
        assert_eq!(
            shown_text("Lisez-moi \u{202e}txt"),
            "Lisez-moi \\u{202e}txt"
        );
        assert_eq!(shown_text("a\u{2066}b\nc"), "a\\u{2066}b\\u{a}c");
        assert_eq!(shown_text("Größe prüfen"), "Größe prüfen");
    }

    #[test]
    fn a_filing_with_a_field_we_do_not_know_is_refused() {
        let extra = FILING.replacen('{', r#"{"prompt":"hi","#, 1);
        assert!(serde_json::from_str::<PinFiling>(&extra).is_err());
    }
}
