//! A request held for a person's approval (`docs/approval.md`).
//!
//! When the policy asks for approval of an inspected request and the filter
//! has a control plane, the exchange does not refuse: it files an
//! [`ApprovalRequest`] (agent, action, tool or model, the SHA-256 of the exact
//! body, or of one MCP call's arguments: each call of a batch is asked for on
//! its own; the rule, the policy version, an expiry) as one call the host makes
//! ([`ApprovalCall`]), and holds the request until the answer comes back
//! ([`Held::read`]). Only an answer that carries the control plane's MAC
//! over this filing's nonce, names this request and these bytes, and
//! approves, lets the request be judged again with that verdict approved;
//! anything else refuses it with `REQUIRE_APPROVAL` and says why.

use crate::approval::{self, ApprovalAnswer, ApprovalRequest, Verdict};
use crate::channel::{Answer, ChannelKey};
use crate::guard::Pending;
use crate::mediation::Approved;
use crate::refusal::{ErrorCode, Refusal};

/// How much longer than the wait the host's call may take: the control
/// plane answers `expired` at the expiry itself, and this leaves it time to.
pub const CALL_MARGIN_MS: u64 = 5_000;
/// Most approvals one request may ask for, one per distinct verdict its body
/// meets (an MCP batch calling several held tools).
const MAX_ROUNDS: u32 = 8;

/// What a refusal says when no one decided before the deadline.
const NO_ANSWER: &str = "no one approved this request in time";

/// The call the host makes to file an approval request: `POST
/// /v1/filter/approvals` with `body`, on the control plane's cluster, with the
/// channel key, given up after `timeout_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalCall {
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

/// The answer to an [`ApprovalCall`] as the host received it: `status` is
/// `None` when the call failed or timed out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallAnswer {
    pub status: Option<String>,
    /// The `x-kalguard-mac` header.
    pub mac: String,
    pub body: Vec<u8>,
}

/// A request waiting for a person.
#[derive(Debug)]
pub(super) struct Held {
    pub pending: Pending,
    /// Body bytes buffered (all of them: the body is complete).
    pub len: usize,
    /// The SHA-256 of those bytes: what is let go once approved must be
    /// what was held.
    pub body_sha256: String,
    pub filed: ApprovalRequest,
    /// The verdict that passes once approved.
    pub asked: Approved,
    /// Unix milliseconds after which no answer approves (the first filing's
    /// expiry: later rounds share it).
    pub deadline_ms: u64,
    pub rounds: u32,
}

/// What an answer means for the held request.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// Judge the body again with this verdict approved.
    Approved(Approved),
    Refused(Refusal),
}

/// What a filing needs to know about the request beyond its pending state.
pub(super) struct Filing<'a> {
    pub request_id: &'a str,
    pub body: &'a [u8],
    pub now_ms: u64,
    pub timeout_ms: u64,
}

impl Held {
    /// Files `refusal`'s verdict for approval, or `None` when it cannot be
    /// asked (not a `REQUIRE_APPROVAL` of the policy, asked already, too many
    /// rounds, past the deadline of an earlier round): then it stands.
    pub fn file(
        pending: Pending,
        refusal: &Refusal,
        filing: &Filing,
        earlier: Option<(u64, u32)>,
    ) -> Option<(Held, ApprovalCall)> {
        let asked = Approved::asked_by(refusal)?;
        let (deadline_ms, rounds) =
            earlier.unwrap_or((filing.now_ms.saturating_add(filing.timeout_ms), 0));
        if rounds >= MAX_ROUNDS || pending.approved.contains(&asked) || filing.now_ms >= deadline_ms
        {
            return None;
        }
        let rounds = rounds + 1;
        let body_sha256 = approval::arguments_sha256(filing.body);
        // A call of an MCP body is filed with its own arguments' hash, and
        // its place when the body makes more than one call.
        let (arguments_sha256, reason) = match asked.call {
            None => (body_sha256.clone(), refusal.message.clone()),
            Some(call) => {
                let calls = tool_calls(filing.body);
                let arguments = calls.get(call)?;
                let reason = match calls.len() {
                    1 => refusal.message.clone(),
                    n => format!(
                        "{} (call {} of {n} in this batch)",
                        refusal.message,
                        call + 1
                    ),
                };
                (approval::arguments_sha256(arguments.as_bytes()), reason)
            }
        };
        let filed = ApprovalRequest {
            nonce: format!("{}.{rounds}", filing.request_id),
            request_id: filing.request_id.to_owned(),
            agent_id: pending.agent.id.to_string(),
            action: asked.action.clone(),
            route: pending.path.clone(),
            model: asked.model.clone(),
            tool: asked.tool.clone(),
            arguments_sha256,
            rule_id: asked.rule_id.clone(),
            policy_version: pending
                .policy
                .as_ref()
                .map(|p| p.version().to_owned())
                .unwrap_or_default(),
            reason,
            expires_at_ms: deadline_ms,
        };
        let call = ApprovalCall {
            body: filed.to_json(),
            timeout_ms: deadline_ms.saturating_sub(filing.now_ms) + CALL_MARGIN_MS,
        };
        let held = Held {
            pending,
            len: filing.body.len(),
            body_sha256,
            filed,
            asked,
            deadline_ms,
            rounds,
        };
        Some((held, call))
    }

    /// What `answer` means: approved only when it verifies under `key` for
    /// this filing's nonce, names this request and its bytes, approves, and
    /// came before the deadline.
    pub fn read(&self, answer: &CallAnswer, key: Option<&ChannelKey>, now_ms: u64) -> Outcome {
        let refused = |why: &str| Outcome::Refused(self.refusal(why));
        let status = answer.status.as_deref();
        match status {
            Some("200") => {}
            None => return refused("no answer came from the control plane in time"),
            Some("401") => {
                log::error!("kalguard: the control plane refused the channel key (401) for an approval: give Envoy and the control plane the same KALGUARD_CHANNEL_KEY");
                return refused("no approval could be asked for");
            }
            Some(other) => {
                log::warn!("kalguard: an approval request was answered {other}");
                return refused("no approval could be asked for");
            }
        }
        let signed = key.is_some_and(|key| {
            key.verify(
                Answer::Approval,
                &self.filed.nonce,
                &answer.body,
                &answer.mac,
            )
        });
        if !signed {
            log::error!("kalguard: {} an approval answer does not carry a valid MAC under KALGUARD_CHANNEL_KEY (is something else listening on the control plane's address?); refusing", self.filed.request_id);
            return refused("the approval answer could not be verified");
        }
        let Some(word) = ApprovalAnswer::parse(&answer.body) else {
            return refused("the approval answer could not be read");
        };
        if !word.answers(&self.filed) {
            return refused("the approval answer is about another request");
        }
        let by = word
            .by
            .as_deref()
            .map(|by| format!(" by {by}"))
            .unwrap_or_default();
        match word.verdict {
            Verdict::Approved if now_ms <= self.deadline_ms => {
                Outcome::Approved(self.asked.clone())
            }
            Verdict::Approved | Verdict::Expired => refused(NO_ANSWER),
            Verdict::Denied => refused(&match word.reason.as_deref() {
                Some(reason) if !reason.is_empty() => format!("denied{by}: {reason}"),
                _ => format!("denied{by}"),
            }),
        }
    }

    /// 403 `REQUIRE_APPROVAL`: the rule's reason, then what became of the
    /// approval, with the approval's facts as data.
    pub fn refusal(&self, why: &str) -> Refusal {
        let mut data = serde_json::Map::new();
        data.insert("agentId".into(), self.filed.agent_id.clone().into());
        data.insert("action".into(), self.filed.action.clone().into());
        data.insert("ruleId".into(), self.filed.rule_id.clone().into());
        for (key, value) in [("tool", &self.filed.tool), ("model", &self.filed.model)] {
            if let Some(value) = value {
                data.insert(key.into(), value.clone().into());
            }
        }
        data.insert("approval".into(), why.into());
        Refusal::new(
            ErrorCode::RequireApproval,
            format!("{} ({why})", self.filed.reason),
        )
        .with_data(serde_json::Value::Object(data))
    }
}

/// The arguments of each `tools/call` of an MCP body (a message or a
/// batch), in order, in canonical form (keys sorted, no whitespace:
/// `crate::pinning::canonical`); `null` for a call that sends none.
fn tool_calls(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let messages = match &value {
        serde_json::Value::Array(batch) => batch.iter().collect(),
        message => vec![message],
    };
    messages
        .into_iter()
        .filter(|m| m.get("method").and_then(serde_json::Value::as_str) == Some("tools/call"))
        .map(|m| {
            let arguments = m.pointer("/params/arguments");
            crate::pinning::canonical(arguments.unwrap_or(&serde_json::Value::Null))
        })
        .collect()
}
