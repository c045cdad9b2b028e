//! Inline human approval on the filter ↔ control-plane channel: the request
//! the filter files for a call a `require_approval` rule holds
//! ([`ApprovalRequest`], `POST /v1/filter/approvals`), and the control
//! plane's word on it ([`ApprovalAnswer`]).
//!
//! The control plane holds the call open until a person approves or denies,
//! or the request's expiry passes, and answers 200 with the answer signed
//! under the channel key as [`crate::channel::Answer::Approval`] over the
//! request's `nonce` and the answer's exact bytes. The filter acts on an
//! answer only when that MAC verifies, it names the request and the
//! arguments' hash it asked about, and it approves: anything else (no answer,
//! a forged or replayed one, another request's) refuses with
//! `REQUIRE_APPROVAL`. An approval is bound to one filed request (agent,
//! action, tool or model, arguments' hash, rule, policy version) and answers
//! that one call only: the next request, identical or not, is filed again.
//!
//! In Cloud mode the control plane also relays each waiting approval to the
//! Cloud (`x-api-key`, [`CLOUD_PATH`]), so a person can decide on its
//! dashboard: `POST /api/v1/approvals` files a [`Relayed`] approval;
//! `GET /api/v1/approvals/{id}?wait=S` answers its [`Outcome`], held up to S
//! seconds while it is [`Status::Pending`]; `POST
//! /api/v1/approvals/{id}/settle` tells the Cloud how it ended on the control
//! plane (an [`Outcome`]). The control plane's book stays the one that lets a
//! request go: the first decision it takes wins, from the CLI or the Cloud.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The control plane's route the filter files approval requests on.
pub const PATH: &str = "/v1/filter/approvals";
/// Longest a request may be held for a person (the plugin's
/// `approval_timeout` is capped here, and so is the control plane's hold).
pub const MAX_WAIT_MS: u64 = 3_600_000;
/// Longest nonce or request ID the control plane accepts.
pub const MAX_ID_BYTES: usize = 128;

/// The [`ApprovalRequest::arguments_sha256`] of a request body: lowercase
/// hex SHA-256 of its exact bytes (one changed byte is another request).
pub fn arguments_sha256(body: &[u8]) -> String {
    crate::token::hex_lower(&Sha256::digest(body))
}

/// What the filter asks a person to approve. No prompt text, no arguments:
/// only their SHA-256, so the person sees who wants what and the filter can
/// tell that the bytes approved are the bytes that go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalRequest {
    /// Fresh per filing; the answer's MAC is bound to it.
    pub nonce: String,
    /// The held request's `x-kalguard-request-id`.
    pub request_id: String,
    pub agent_id: String,
    /// `prompt:check` or `tool:execute`, as policy rules name it.
    pub action: String,
    /// The request path (without its query string).
    pub route: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Lowercase hex SHA-256 of the request body's exact bytes; for a call
    /// of an MCP body (one filing per call of a batch), of that call's
    /// `arguments` in canonical form.
    pub arguments_sha256: String,
    /// The rule that asks for approval (`None`: the policy's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    pub policy_version: String,
    /// The rule's reason, shown to the person deciding.
    pub reason: String,
    /// Unix milliseconds after which the filter stops waiting.
    pub expires_at_ms: u64,
}

impl ApprovalRequest {
    /// The request's JSON, as serde writes it, built with the JSON map code
    /// the filter has anyway (serde's derived code for the two approval
    /// messages adds about 4 KB to the `.wasm`); a test holds the two equal.
    pub fn to_json(&self) -> Vec<u8> {
        let mut map = Map::new();
        let mut put = |key: &str, value: Value| {
            map.insert(key.to_owned(), value);
        };
        put("nonce", self.nonce.as_str().into());
        put("requestId", self.request_id.as_str().into());
        put("agentId", self.agent_id.as_str().into());
        put("action", self.action.as_str().into());
        put("route", self.route.as_str().into());
        for (key, value) in [
            ("model", &self.model),
            ("tool", &self.tool),
            ("ruleId", &self.rule_id),
        ] {
            if let Some(value) = value {
                put(key, value.as_str().into());
            }
        }
        put("argumentsSha256", self.arguments_sha256.as_str().into());
        put("policyVersion", self.policy_version.as_str().into());
        put("reason", self.reason.as_str().into());
        put("expiresAtMs", self.expires_at_ms.into());
        Value::Object(map).to_string().into_bytes()
    }
}

/// A person's word, or the lack of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    Denied,
    /// No one decided before the request's expiry.
    Expired,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Denied => "denied",
            Verdict::Expired => "expired",
        }
    }
}

/// The control plane's answer to one [`ApprovalRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalAnswer {
    /// The approval's ID, as `kalguard approvals list` shows it.
    pub id: String,
    /// Echoed from the request: the filter checks both.
    pub request_id: String,
    pub arguments_sha256: String,
    pub verdict: Verdict,
    /// Who decided (the CLI's user, or the standing grant that covered it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why, when a person denied with a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ApprovalAnswer {
    /// Reads an answer from JSON as serde would (unknown fields ignored),
    /// by hand for the same reason as [`ApprovalRequest::to_json`].
    pub fn parse(json: &[u8]) -> Option<ApprovalAnswer> {
        let value: Value = serde_json::from_slice(json).ok()?;
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let optional = |key: &str| match value.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(text)) => Some(Some(text.clone())),
            Some(_) => None,
        };
        let verdict = match value.get("verdict")?.as_str()? {
            "approved" => Verdict::Approved,
            "denied" => Verdict::Denied,
            "expired" => Verdict::Expired,
            _ => return None,
        };
        Some(ApprovalAnswer {
            id: text("id")?,
            request_id: text("requestId")?,
            arguments_sha256: text("argumentsSha256")?,
            verdict,
            by: optional("by")?,
            reason: optional("reason")?,
        })
    }

    /// Whether this answer approves exactly `request`'s call.
    pub fn approves(&self, request: &ApprovalRequest) -> bool {
        self.verdict == Verdict::Approved && self.answers(request)
    }

    /// Whether this answer is about `request` (its ID and arguments' hash).
    pub fn answers(&self, request: &ApprovalRequest) -> bool {
        self.request_id == request.request_id && self.arguments_sha256 == request.arguments_sha256
    }
}

/// The Cloud's route for relayed approvals (see the module's head).
pub const CLOUD_PATH: &str = "/api/v1/approvals";
/// Longest a Cloud holds `GET {CLOUD_PATH}/{id}?wait=S` open, in seconds.
pub const MAX_CLOUD_WAIT_SECS: u64 = 25;

/// An approval the control plane relays to the Cloud: its ID in the control
/// plane's book and what the filter filed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Relayed {
    pub id: String,
    pub request: ApprovalRequest,
}

/// Where a relayed approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody has decided yet.
    Pending,
    Approved,
    Denied,
    /// Nobody decided before its expiry.
    Expired,
    /// The filter stopped waiting (the agent hung up).
    Abandoned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Abandoned => "abandoned",
        }
    }

    /// The status a stored or sent name stands for.
    pub fn parse(name: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Approved,
            Status::Denied,
            Status::Expired,
            Status::Abandoned,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl From<Verdict> for Status {
    fn from(verdict: Verdict) -> Status {
        match verdict {
            Verdict::Approved => Status::Approved,
            Verdict::Denied => Status::Denied,
            Verdict::Expired => Status::Expired,
        }
    }
}

/// A relayed approval's standing: the Cloud's answer to the control plane's
/// poll (a decision taken on the dashboard), and the control plane's word on
/// how it ended (`settle`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status: Status,
    /// Who decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why, when a person denied with a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An approval that also stands for the same calls this many minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_minutes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::assert_round_trip;

    const REQUEST: &str = r#"{"nonce":"req_1.1","requestId":"req_1","agentId":"billing-bot",
        "action":"tool:execute","route":"/mcp","tool":"send_payment",
        "argumentsSha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "ruleId":"payments","policyVersion":"3","reason":"payments need a human",
        "expiresAtMs":1750000120000}"#;

    #[test]
    fn golden_request_and_answer() {
        let request: ApprovalRequest = assert_round_trip(REQUEST);
        assert_eq!(request.tool.as_deref(), Some("send_payment"));
        assert_eq!(request.model, None);
        let answer: ApprovalAnswer = assert_round_trip(
            r#"{"id":"ap_1","requestId":"req_1","verdict":"approved","by":"alice",
            "argumentsSha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
        );
        assert!(answer.approves(&request));
        let denied: ApprovalAnswer = assert_round_trip(
            r#"{"id":"ap_1","requestId":"req_1","verdict":"denied","reason":"not today",
            "argumentsSha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
        );
        assert!(denied.answers(&request) && !denied.approves(&request));
    }

    #[test]
    fn an_approval_of_another_request_or_other_bytes_approves_nothing() {
        let request: ApprovalRequest = serde_json::from_str(REQUEST).unwrap();
        let approved = ApprovalAnswer {
            id: "ap_1".into(),
            request_id: request.request_id.clone(),
            arguments_sha256: request.arguments_sha256.clone(),
            verdict: Verdict::Approved,
            by: None,
            reason: None,
        };
        assert!(approved.approves(&request));
        let other_request = ApprovalAnswer {
            request_id: "req_2".into(),
            ..approved.clone()
        };
        assert!(!other_request.approves(&request));
        let other_bytes = ApprovalAnswer {
            arguments_sha256: "0".repeat(64),
            ..approved
        };
        assert!(!other_bytes.approves(&request));
    }

    #[test]
    fn the_hand_written_forms_agree_with_serde() {
        let request: ApprovalRequest = serde_json::from_str(REQUEST).unwrap();
        let mut bare = request.clone();
        (bare.model, bare.tool, bare.rule_id) = (Some("o1".into()), None, None);
        for request in [request, bare] {
            let by_hand: Value = serde_json::from_slice(&request.to_json()).unwrap();
            assert_eq!(by_hand, serde_json::to_value(&request).unwrap());
        }
        let answers = [
            r#"{"id":"a","requestId":"r","argumentsSha256":"h","verdict":"approved"}"#,
            r#"{"id":"a","requestId":"r","argumentsSha256":"h","verdict":"denied","by":"bo","reason":"no","extra":1}"#,
            r#"{"id":"a","requestId":"r","argumentsSha256":"h","verdict":"expired","by":null}"#,
        ];
        for answer in answers {
            let by_serde: ApprovalAnswer = serde_json::from_str(answer).unwrap();
            assert_eq!(ApprovalAnswer::parse(answer.as_bytes()), Some(by_serde));
        }
        let refused = [
            "",
            "[]",
            r#"{"id":"a","requestId":"r","argumentsSha256":"h","verdict":"yes"}"#,
            r#"{"id":"a","requestId":"r","verdict":"approved"}"#,
            r#"{"id":"a","requestId":"r","argumentsSha256":"h","verdict":"approved","by":1}"#,
            r#"{"id":1,"requestId":"r","argumentsSha256":"h","verdict":"approved"}"#,
        ];
        for answer in refused {
            assert!(
                serde_json::from_str::<ApprovalAnswer>(answer).is_err(),
                "{answer}"
            );
            assert_eq!(ApprovalAnswer::parse(answer.as_bytes()), None, "{answer}");
        }
    }

    #[test]
    fn the_arguments_hash_is_sha256_of_the_exact_bytes() {
        assert_eq!(
            arguments_sha256(b"test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_ne!(arguments_sha256(b"test "), arguments_sha256(b"test"));
    }

    #[test]
    fn golden_relayed_approval_and_outcomes() {
        let relayed: Relayed =
            assert_round_trip(&format!(r#"{{"id":"ap_1","request":{REQUEST}}}"#));
        assert_eq!(relayed.request.request_id, "req_1");
        let decided: Outcome =
            assert_round_trip(r#"{"status":"approved","by":"alice@example.com","forMinutes":10}"#);
        assert_eq!(decided.status, Status::Approved);
        assert_eq!(decided.for_minutes, Some(10));
        let pending: Outcome = assert_round_trip(r#"{"status":"pending"}"#);
        assert_eq!((pending.by, pending.reason), (None, None));
        let settled: Outcome =
            assert_round_trip(r#"{"status":"denied","by":"bob","reason":"not today"}"#);
        assert_eq!(settled.status, Status::from(Verdict::Denied));
        for status in ["pending", "approved", "denied", "expired", "abandoned"] {
            assert_eq!(Status::parse(status).map(Status::as_str), Some(status));
        }
        assert_eq!(Status::parse("maybe"), None);
    }

    #[test]
    fn a_request_with_a_field_we_do_not_know_is_refused() {
        let extra = REQUEST.replacen('{', r#"{"prompt":"hi","#, 1);
        assert!(serde_json::from_str::<ApprovalRequest>(&extra).is_err());
    }
}
