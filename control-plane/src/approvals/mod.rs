//! Approvals: the requests the filter holds for a person, and the standing
//! grants a person may give (`docs/approval.md`).
//!
//! The filter files one [`ApprovalRequest`] per held request and waits on
//! the call ([`http`]); a person lists, approves or denies with `kalguard
//! approvals` ([`cli`]) or, in Cloud mode, on the Cloud's dashboard
//! ([`relay`]). Each approval is single use: it answers the one
//! filing it was made for and leaves the book when decided, expired or
//! abandoned, so a replayed or changed request is filed, and asked, again.
//! A standing grant ("approve for N minutes") answers later filings of the
//! same agent, action, route, tool or model, rule and policy version at once until
//! it lapses; a new policy version voids it. The book lives in memory: a
//! restarted control plane has no pending approvals (their filters' calls
//! fail, and the held requests are refused).

pub mod cli;
pub mod http;
pub mod relay;

use kalguard_wire::approval::{ApprovalAnswer, ApprovalRequest, Verdict, MAX_ID_BYTES};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// Most approvals waiting at once: a filter flooding the book is refused
/// (its requests then refuse) rather than growing it without bound.
pub const MAX_PENDING: usize = 1_000;
/// Most approvals one agent may have waiting: each holds a request (and its
/// body) in Envoy, so an agent cannot hold the proxy's memory, nor crowd out
/// other agents' approvals, by sending held calls in a loop.
pub const MAX_PENDING_PER_AGENT: usize = 20;
/// Longest standing grant, in minutes (a day).
pub const MAX_GRANT_MINUTES: u64 = 24 * 60;

/// What went wrong with an approval, and where.
#[derive(Debug, PartialEq, Eq)]
pub enum ApprovalError {
    /// A filing that is not an approval request (the field at fault).
    Malformed(String),
    /// [`MAX_PENDING`] approvals wait already.
    Full,
    /// [`MAX_PENDING_PER_AGENT`] of this agent's approvals wait already.
    AgentFull(String),
    /// No approval by this ID waits (decided, expired, abandoned or never filed).
    NotPending(String),
    /// A standing grant's length out of range (the minutes given).
    GrantTooLong(u64),
}

impl fmt::Display for ApprovalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApprovalError::Malformed(why) => write!(f, "not an approval request: {why}"),
            ApprovalError::Full => write!(
                f,
                "{MAX_PENDING} approvals wait already; decide some with `kalguard approvals`"
            ),
            ApprovalError::AgentFull(agent) => write!(
                f,
                "agent {agent} has {MAX_PENDING_PER_AGENT} approvals waiting already"
            ),
            ApprovalError::NotPending(id) => write!(
                f,
                "approval {id} is not pending (decided, expired, abandoned or never filed); see `kalguard approvals list`"
            ),
            ApprovalError::GrantTooLong(minutes) => write!(
                f,
                "--for-minutes {minutes}: a standing grant lasts 1 to {MAX_GRANT_MINUTES} minutes"
            ),
        }
    }
}

impl std::error::Error for ApprovalError {}

/// A person's decision on one approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub by: String,
    pub reason: Option<String>,
}

/// An approval waiting for a person, as `kalguard approvals list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub id: String,
    #[serde(flatten)]
    pub request: ApprovalRequest,
    pub filed_at_ms: u64,
}

/// What filing a request gives.
pub enum Filed {
    /// A standing grant covers it: approved at once.
    Granted(ApprovalAnswer),
    /// It waits for a person; the decision comes on `decided`.
    Waiting {
        id: String,
        decided: oneshot::Receiver<Decision>,
    },
}

/// "Approve for N minutes": later filings with these facts are approved.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grant {
    /// The approval it was given on.
    id: String,
    by: String,
    facts: Facts,
    until_ms: u64,
}

/// What a standing grant covers: everything but the arguments. The route is
/// in it: a grant given for a tool on one MCP server's path is not one for
/// the same tool name on another's.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Facts {
    agent_id: String,
    action: String,
    route: String,
    tool: Option<String>,
    model: Option<String>,
    rule_id: Option<String>,
    policy_version: String,
}

impl Facts {
    fn of(request: &ApprovalRequest) -> Facts {
        Facts {
            agent_id: request.agent_id.clone(),
            action: request.action.clone(),
            route: request.route.clone(),
            tool: request.tool.clone(),
            model: request.model.clone(),
            rule_id: request.rule_id.clone(),
            policy_version: request.policy_version.clone(),
        }
    }
}

struct Entry {
    waiting: Waiting,
    decide: oneshot::Sender<Decision>,
}

#[derive(Default)]
struct Book {
    pending: HashMap<String, Entry>,
    grants: Vec<Grant>,
}

/// The approvals book, shared by the filter's calls and the CLI's.
#[derive(Default)]
pub struct Approvals {
    book: Mutex<Book>,
}

impl Approvals {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Files `request` at `now_ms`: approved at once by a live standing grant,
    /// else waiting under a fresh ID.
    pub fn file(&self, request: ApprovalRequest, now_ms: u64) -> Result<Filed, ApprovalError> {
        check(&request)?;
        let mut book = self.book();
        book.grants.retain(|grant| grant.until_ms > now_ms);
        let facts = Facts::of(&request);
        if let Some(grant) = book.grants.iter().find(|grant| grant.facts == facts) {
            return Ok(Filed::Granted(ApprovalAnswer {
                id: grant.id.clone(),
                request_id: request.request_id,
                arguments_sha256: request.arguments_sha256,
                verdict: Verdict::Approved,
                by: Some(format!("{} (standing grant {})", grant.by, grant.id)),
                reason: None,
            }));
        }
        if book.pending.len() >= MAX_PENDING {
            return Err(ApprovalError::Full);
        }
        let agent = &request.agent_id;
        let agents = book.pending.values();
        if agents
            .filter(|e| &e.waiting.request.agent_id == agent)
            .count()
            >= MAX_PENDING_PER_AGENT
        {
            return Err(ApprovalError::AgentFull(agent.clone()));
        }
        let id = new_id();
        let (decide, decided) = oneshot::channel();
        let waiting = Waiting {
            id: id.clone(),
            request,
            filed_at_ms: now_ms,
        };
        book.pending.insert(id.clone(), Entry { waiting, decide });
        Ok(Filed::Waiting { id, decided })
    }

    /// Decides approval `id` (single use: it leaves the book); with
    /// `grant_minutes`, an approval also stands for later filings of the
    /// same facts. The approval as it was filed comes back, for the audit.
    pub fn decide(
        &self,
        id: &str,
        decision: Decision,
        grant_minutes: Option<u64>,
        now_ms: u64,
    ) -> Result<Waiting, ApprovalError> {
        if let Some(minutes) = grant_minutes.filter(|m| !(1..=MAX_GRANT_MINUTES).contains(m)) {
            return Err(ApprovalError::GrantTooLong(minutes));
        }
        let mut book = self.book();
        let entry = book
            .pending
            .remove(id)
            .ok_or_else(|| ApprovalError::NotPending(id.to_owned()))?;
        if let (Some(minutes), Verdict::Approved) = (grant_minutes, decision.verdict) {
            book.grants.push(Grant {
                id: id.to_owned(),
                by: decision.by.clone(),
                facts: Facts::of(&entry.waiting.request),
                until_ms: now_ms.saturating_add(minutes * 60_000),
            });
        }
        // The filter's call may have just gone: then the decision is moot,
        // and its request was refused.
        let _ = entry.decide.send(decision);
        Ok(entry.waiting)
    }

    /// Takes approval `id` out of the book unanswered (expired or
    /// abandoned); `None` when a decision took it first.
    pub fn withdraw(&self, id: &str) -> Option<Waiting> {
        self.book().pending.remove(id).map(|entry| entry.waiting)
    }

    /// The approvals waiting, oldest first.
    pub fn list(&self) -> Vec<Waiting> {
        let mut waiting: Vec<Waiting> = self
            .book()
            .pending
            .values()
            .map(|entry| entry.waiting.clone())
            .collect();
        waiting.sort_by(|a, b| (a.filed_at_ms, &a.id).cmp(&(b.filed_at_ms, &b.id)));
        waiting
    }
}

/// Longest text a filing may show a person (agent, action, route, model,
/// tool, rule, policy version, reason).
const MAX_TEXT_CHARS: usize = 1024;

/// Refuses filings whose identifiers are too long to bind or show, whose hash
/// is not one, or whose text carries control characters: the agent chooses
/// the model and tool names, and a newline or a terminal escape in them could
/// rewrite the lines a person reads in `kalguard approvals list` or the log.
fn check(request: &ApprovalRequest) -> Result<(), ApprovalError> {
    let shown = [
        ("agentId", Some(&request.agent_id)),
        ("action", Some(&request.action)),
        ("route", Some(&request.route)),
        ("model", request.model.as_ref()),
        ("tool", request.tool.as_ref()),
        ("ruleId", request.rule_id.as_ref()),
        ("policyVersion", Some(&request.policy_version)),
        ("reason", Some(&request.reason)),
    ];
    for (field, value) in shown {
        let Some(value) = value else { continue };
        if value.chars().count() > MAX_TEXT_CHARS || value.chars().any(char::is_control) {
            return Err(ApprovalError::Malformed(format!(
                "{field} must be at most {MAX_TEXT_CHARS} characters, none of them a control character"
            )));
        }
    }
    for (field, value) in [
        ("nonce", &request.nonce),
        ("requestId", &request.request_id),
    ] {
        if value.is_empty() || value.len() > MAX_ID_BYTES {
            return Err(ApprovalError::Malformed(format!(
                "{field} must be 1 to {MAX_ID_BYTES} bytes"
            )));
        }
    }
    let hash = &request.arguments_sha256;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ApprovalError::Malformed(
            "argumentsSha256 must be 64 lowercase hex digits".into(),
        ));
    }
    Ok(())
}

/// An unguessable approval ID: a CLI user names it, and no one else should
/// be able to decide an approval they were not shown.
fn new_id() -> String {
    format!(
        "ap_{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(request_id: &str, arguments: &[u8]) -> ApprovalRequest {
        ApprovalRequest {
            nonce: format!("{request_id}.1"),
            request_id: request_id.into(),
            agent_id: "billing-bot".into(),
            action: "tool:execute".into(),
            route: "/mcp".into(),
            model: None,
            tool: Some("send_payment".into()),
            arguments_sha256: kalguard_wire::approval::arguments_sha256(arguments),
            rule_id: Some("payments".into()),
            policy_version: "3".into(),
            reason: "payments need a human".into(),
            expires_at_ms: 200_000,
        }
    }

    fn decision(verdict: Verdict) -> Decision {
        Decision {
            verdict,
            by: "alice".into(),
            reason: None,
        }
    }

    fn waiting(filed: Filed) -> (String, oneshot::Receiver<Decision>) {
        match filed {
            Filed::Waiting { id, decided } => (id, decided),
            Filed::Granted(_) => unreachable!("expected to wait"),
        }
    }

    #[test]
    fn an_approval_is_decided_once_and_then_leaves_the_book() {
        let book = Approvals::default();
        let (id, mut decided) = waiting(book.file(request("r1", b"{}"), 1_000).unwrap());
        assert!(id.starts_with("ap_") && id.len() == 35, "{id}");
        let listed = book.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].id.as_str(), listed[0].filed_at_ms),
            (id.as_str(), 1_000)
        );
        let filed = book
            .decide(&id, decision(Verdict::Approved), None, 2_000)
            .unwrap();
        assert_eq!(filed.request.request_id, "r1");
        assert_eq!(decided.try_recv().unwrap(), decision(Verdict::Approved));
        assert!(book.list().is_empty());
        // Single use: neither a second decision nor a withdrawal finds it.
        assert_eq!(
            book.decide(&id, decision(Verdict::Denied), None, 3_000),
            Err(ApprovalError::NotPending(id.clone()))
        );
        assert_eq!(book.withdraw(&id), None);
    }

    #[test]
    fn a_filing_with_control_characters_in_what_a_person_reads_is_refused() {
        let book = Approvals::default();
        let forged = "o1-mini\u{1b}[2K\r\u{1b}[1Aap_0000  agent billing-bot\n    routine";
        let mut with_model = request("r1", b"{}");
        with_model.model = Some(forged.into());
        let mut with_tool = request("r2", b"{}");
        with_tool.tool = Some("send_payment\n".into());
        let mut long_reason = request("r3", b"{}");
        long_reason.reason = "x".repeat(MAX_TEXT_CHARS + 1);
        for bad in [with_model, with_tool, long_reason] {
            assert!(
                matches!(book.file(bad, 1_000), Err(ApprovalError::Malformed(_))),
                "filed"
            );
        }
        assert!(book.list().is_empty());
        assert!(book.file(request("r4", b"{}"), 1_000).is_ok());
    }

    #[test]
    fn the_same_request_filed_again_waits_again_under_a_new_id() {
        let book = Approvals::default();
        let (first, _keep) = waiting(book.file(request("r1", b"{}"), 1_000).unwrap());
        book.decide(&first, decision(Verdict::Approved), None, 1_500)
            .unwrap();
        let (second, _keep2) = waiting(book.file(request("r1", b"{}"), 2_000).unwrap());
        assert_ne!(first, second);
    }

    #[test]
    fn an_expired_approval_cannot_be_decided_after() {
        let book = Approvals::default();
        let (id, _decided) = waiting(book.file(request("r1", b"{}"), 1_000).unwrap());
        assert!(book.withdraw(&id).is_some());
        assert!(matches!(
            book.decide(&id, decision(Verdict::Approved), None, 2_000),
            Err(ApprovalError::NotPending(_))
        ));
    }

    #[test]
    fn a_standing_grant_covers_the_same_facts_until_it_lapses() {
        let book = Approvals::default();
        let (id, _d) = waiting(book.file(request("r1", b"a"), 0).unwrap());
        book.decide(&id, decision(Verdict::Approved), Some(10), 1_000)
            .unwrap();
        // Other arguments, same agent, tool, rule and policy version: granted.
        let Filed::Granted(answer) = book.file(request("r2", b"b"), 60_000).unwrap() else {
            unreachable!("the grant covers it")
        };
        assert_eq!(answer.verdict, Verdict::Approved);
        assert_eq!(answer.request_id, "r2");
        assert_eq!(
            answer.arguments_sha256,
            request("r2", b"b").arguments_sha256
        );
        assert!(answer.by.unwrap().contains(&id));
        // Another tool, agent, policy version or route (another MCP server's
        // path): asked.
        let mut other_tool = request("r3", b"b");
        other_tool.tool = Some("send_mail".into());
        let mut other_agent = request("r4", b"b");
        other_agent.agent_id = "other".into();
        let mut new_policy = request("r5", b"b");
        new_policy.policy_version = "4".into();
        let mut other_route = request("r7", b"b");
        other_route.route = "/mcp/prod".into();
        for other in [other_tool, other_agent, new_policy, other_route] {
            assert!(matches!(
                book.file(other, 60_000),
                Ok(Filed::Waiting { .. })
            ));
        }
        // Lapsed: asked again.
        assert!(matches!(
            book.file(request("r6", b"b"), 1_000 + 10 * 60_000),
            Ok(Filed::Waiting { .. })
        ));
    }

    #[test]
    fn a_denial_grants_nothing_and_grants_are_bounded() {
        let book = Approvals::default();
        let (id, _d) = waiting(book.file(request("r1", b"a"), 0).unwrap());
        assert_eq!(
            book.decide(&id, decision(Verdict::Approved), Some(0), 0),
            Err(ApprovalError::GrantTooLong(0))
        );
        assert_eq!(
            book.decide(
                &id,
                decision(Verdict::Approved),
                Some(MAX_GRANT_MINUTES + 1),
                0
            ),
            Err(ApprovalError::GrantTooLong(MAX_GRANT_MINUTES + 1))
        );
        book.decide(&id, decision(Verdict::Denied), Some(10), 0)
            .unwrap();
        assert!(matches!(
            book.file(request("r2", b"a"), 1),
            Ok(Filed::Waiting { .. })
        ));
    }

    #[test]
    fn one_agent_cannot_fill_the_book() {
        let book = Approvals::default();
        let mut receivers = Vec::new();
        for n in 0..MAX_PENDING_PER_AGENT {
            receivers.push(waiting(
                book.file(request(&format!("r{n}"), b"a"), 0).unwrap(),
            ));
        }
        assert_eq!(
            book.file(request("one-more", b"a"), 0).err(),
            Some(ApprovalError::AgentFull("billing-bot".into()))
        );
        let mut other = request("other", b"a");
        other.agent_id = "other-bot".into();
        assert!(book.file(other, 0).is_ok());
    }

    #[test]
    fn the_book_is_bounded_and_filings_are_checked() {
        let book = Approvals::default();
        let mut receivers = Vec::new();
        for n in 0..MAX_PENDING {
            let mut filed = request(&format!("r{n}"), b"a");
            filed.agent_id = format!("agent-{}", n % 100);
            receivers.push(waiting(book.file(filed, 0).unwrap()));
        }
        assert!(matches!(
            book.file(request("one-more", b"a"), 0),
            Err(ApprovalError::Full)
        ));
        let mut bad_hash = request("r", b"a");
        bad_hash.arguments_sha256 = "ABC".into();
        let mut long_id = request("r", b"a");
        long_id.request_id = "x".repeat(MAX_ID_BYTES + 1);
        let mut no_nonce = request("r", b"a");
        no_nonce.nonce.clear();
        let fresh = Approvals::default();
        for bad in [bad_hash, long_id, no_nonce] {
            assert!(matches!(
                fresh.file(bad, 0),
                Err(ApprovalError::Malformed(_))
            ));
        }
    }
}
