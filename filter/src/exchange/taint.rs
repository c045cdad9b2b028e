//! Taint escalation in one request (`docs/taint.md`; the rules are
//! `crate::taint`'s): the taint in force for the agent is read at the head;
//! a body with flagged text in a tool result or document records the
//! agent's taint in shared data; in a tainted conversation an MCP
//! `tools/call` of an outbound tool, or an LLM request that has the provider
//! run one (`web_fetch`), becomes a `REQUIRE_APPROVAL` verdict (held for a
//! person like a policy's), and an LLM answer that calls one is held whole
//! until a person approves it.
//!
//! An answer cannot be asked again (a retry is another answer of the model,
//! with other arguments), so it is held in place: filed with the SHA-256 of
//! the exact answer, released unchanged when approved, replaced by the
//! refusal when denied or when no one decides within `approval_timeout`.

use std::collections::HashSet;

use super::approval::{Filing, Held, Outcome};
use super::{header, CallAnswer, Effect, Exchange, Failure, Flow, Host, Side};
use crate::answer::tool_calls::{ToolCallGate, ToolCallMode};
use crate::answer::Pipeline;
use crate::approval::arguments_sha256;
use crate::channel::ChannelKey;
use crate::firewall::Tier;
use crate::guard::{BodyDecision, Guard, Judged, Pending};
use crate::quota::Store;
use crate::refusal::Refusal;
use crate::route::{Format, Route};
use crate::taint::{self, Flagged, Mark, Seen, Taint, TaintConfig};

/// What an LLM answer in a tainted conversation is checked for.
#[derive(Clone, Debug)]
pub(super) struct AnswerTaint {
    pub taint: Taint,
    /// The request's pending state (its agent, policy, approvals) for the filing.
    pub pending: Pending,
}

impl AnswerTaint {
    /// The refusal naming the outbound tools the whole answer `body` calls
    /// (JSON, or every event of a stream when `events`) that no one approved
    /// for this request; `None` when it calls none.
    pub fn refusal(
        &self,
        config: &TaintConfig,
        body: &[u8],
        events: bool,
        max_event_bytes: usize,
        now_ms: u64,
    ) -> Option<Refusal> {
        // A gate that allows nothing, in remove mode, names every call.
        let gate = ToolCallGate::new(HashSet::new(), ToolCallMode::Remove);
        let called = if events {
            let mut stream = gate.stream();
            let mut pipeline = Pipeline::new(max_event_bytes);
            pipeline.push(body, &mut [&mut stream]);
            pipeline.finish(&mut [&mut stream]);
            // A stream the gate had to refuse (a Responses stream, an event
            // too long to read) may call more than it named: it waits, its
            // first call standing for all of them (`*` when none was named).
            if stream.refused() || stream.cut() {
                let first = stream.denied().first().map_or("*", String::as_str);
                return Some(self.taint.refusal(first, now_ms));
            }
            stream.denied().to_vec()
        } else {
            gate.body(body).denied
        };
        // One approval covers the whole answer (its exact bytes): it names
        // every outbound tool the answer calls.
        let mut held: Vec<&str> = Vec::new();
        for tool in &called {
            if config.is_outbound(tool)
                && !approved(&self.pending, tool, None)
                && !held.contains(&tool.as_str())
            {
                held.push(tool);
            }
        }
        (!held.is_empty()).then(|| self.taint.refusal(&held.join(", "), now_ms))
    }

    /// The dialect of the error event that ends a refused stream.
    pub fn dialect(&self) -> Option<&'static str> {
        match self.pending.route {
            Route::Inspect(format) => crate::stream::dialect(format),
            _ => None,
        }
    }
}

/// Whether a person approved `pending`'s call of `tool` in a tainted
/// conversation: that `call` of an MCP body, or (`None`) the request's.
fn approved(pending: &Pending, tool: &str, call: Option<usize>) -> bool {
    pending.approved.iter().any(|a| {
        a.rule_id.as_deref() == Some(taint::RULE_ID)
            && a.action == "tool:execute"
            && a.tool.as_deref() == Some(tool)
            && a.call == call
    })
}

impl Exchange {
    /// At the head of an inspected request by `agent`: the taint in force
    /// for it (and for the conversation its session header names).
    pub(super) fn read_taint(
        &mut self,
        guard: &Guard,
        headers: &[(String, String)],
        agent: &str,
        store: &dyn Store,
        now_ms: u64,
    ) -> Result<(), Failure> {
        let config = &guard.config().taint;
        if !config.enabled {
            return Ok(());
        }
        if !config.session_header.is_empty() {
            self.session = header(headers, &config.session_header).map(str::to_owned);
        }
        let session = self.session.as_deref();
        let mark = taint::lookup(store, agent, session, now_ms)
            .map_err(|_| Failure("cannot read the agent's taint from shared data"))?;
        self.taint = mark.map(|mark| Taint { mark, here: false });
        Ok(())
    }

    /// Once the guard judged the body: flagged text records the agent's
    /// taint (whether or not the body passes), and in a tainted conversation
    /// an MCP call of an outbound tool, or a provider-run one, no one
    /// approved yet is refused with a `REQUIRE_APPROVAL` the exchange holds
    /// for a person.
    pub(super) fn taint_body(
        &mut self,
        guard: &Guard,
        pending: &Pending,
        judged: &mut Judged,
        host: &mut dyn Host,
    ) -> Result<(), Failure> {
        let config = &guard.config().taint;
        if !config.enabled {
            return Ok(());
        }
        let now_ms = host.now_ms();
        if let Some(flagged) = &judged.taint.flagged {
            self.record_taint(guard, flagged, host)?;
        }
        let Some(taint) = &self.taint else {
            return Ok(());
        };
        // Forwarded, or answered allowed by the check API (`/v1/tool/check`).
        if !matches!(
            judged.decision,
            BodyDecision::Forward(_) | BodyDecision::Respond(_)
        ) {
            return Ok(());
        }
        // Each call of an MCP body is asked for on its own; what the
        // provider would run is the request's as a whole.
        let mcp = pending.route == Route::Inspect(Format::Mcp);
        let mut calls = judged.taint.calls.iter().enumerate();
        let call_of = |at: usize| mcp.then_some(at);
        if let Some((at, tool)) = calls
            .find(|(at, tool)| config.is_outbound(tool) && !approved(pending, tool, call_of(*at)))
        {
            let refusal = taint.refusal(tool, now_ms);
            let refusal = match call_of(at) {
                Some(call) => crate::mediation::of_call(refusal, call),
                None => refusal,
            };
            judged.decision = BodyDecision::Refuse(refusal);
            judged.gate = None;
        }
        Ok(())
    }

    /// Records `flagged` as the agent's taint (in shared data, for every
    /// worker) and as this request's.
    pub(super) fn record_taint(
        &mut self,
        guard: &Guard,
        flagged: &Flagged,
        host: &mut dyn Host,
    ) -> Result<(), Failure> {
        let Some(agent) = self.agent.clone() else {
            return Ok(());
        };
        let window_ms = guard.config().taint.window_ms;
        let session = self.session.as_deref();
        let mark = Mark::new(flagged, session, &self.request_id, host.now_ms(), window_ms);
        host.apply(&Effect::Taint(agent, mark.clone()))?;
        self.taint = Some(Taint { mark, here: true });
        Ok(())
    }

    /// The firewall tier an MCP `tools/call`'s answer is screened at: its
    /// result reaches the agent as a tool result, and may taint it at once.
    pub(super) fn results_screened(
        &self,
        guard: &Guard,
        pending: &Pending,
        seen: &Seen,
    ) -> Option<Tier> {
        let mcp = pending.route == Route::Inspect(Format::Mcp);
        (guard.config().taint.enabled && mcp && !seen.calls.is_empty()).then_some(pending.tier)
    }

    /// What the answer to a forwarded LLM request in a tainted conversation
    /// is checked for.
    pub(super) fn answer_taint(&self, pending: &Pending) -> Option<AnswerTaint> {
        let llm = matches!(pending.route, Route::Inspect(format) if format != Format::Mcp);
        let taint = self.taint.clone().filter(|_| llm)?;
        Some(AnswerTaint {
            taint,
            pending: pending.clone(),
        })
    }

    /// Files the approval a whole answer waits for (`len` bytes in the
    /// buffer, judged to call an outbound tool: `refusal`) and holds it; with
    /// no control plane, or when filing fails, the refusal replaces it.
    pub(super) fn hold_answer(
        &mut self,
        guard: &Guard,
        refusal: &Refusal,
        len: usize,
        host: &mut dyn Host,
    ) -> Flow {
        let Some(pending) = self
            .answer
            .as_ref()
            .and_then(|a| a.taint())
            .map(|t| t.pending.clone())
        else {
            return self.refuse_held_answer(refusal, len, host);
        };
        let body = match host.body(Side::Answer, len) {
            Ok(body) => body,
            Err(failure) => return self.answer_failed(host, failure),
        };
        let holds = !guard.config().control_plane_cluster.is_empty();
        let filing = Filing {
            request_id: &self.request_id,
            body: &body,
            now_ms: host.now_ms(),
            timeout_ms: guard.config().approval_timeout.saturating_mul(1000),
        };
        let Some((held, call)) = holds
            .then(|| Held::file(pending, refusal, &filing, None))
            .flatten()
        else {
            return self.refuse_held_answer(refusal, len, host);
        };
        if host.apply(&Effect::AskApproval(call)).is_err() {
            let refusal = held.refusal("no approval could be asked for");
            return self.refuse_held_answer(&refusal, len, host);
        }
        self.held = Some(held);
        Flow::Pause
    }

    /// The control plane's answer to the approval an answer is held for: the
    /// answer goes on unchanged when approved and still the bytes filed, else
    /// the refusal replaces it. Either way the host lets it go on.
    pub(super) fn on_answer_approval(
        &mut self,
        answer: &CallAnswer,
        key: Option<&ChannelKey>,
        host: &mut dyn Host,
    ) -> Flow {
        let Some(held) = self.held.take() else {
            return Flow::Pause;
        };
        let refusal = match held.read(answer, key, host.now_ms()) {
            Outcome::Approved(_) => match host.body(Side::Answer, held.len) {
                Ok(body) if arguments_sha256(&body) == held.body_sha256 => return Flow::Continue,
                Ok(_) => held.refusal("the answer changed while it was held"),
                Err(failure) => return self.answer_failed(host, failure),
            },
            Outcome::Refused(refusal) => refusal,
        };
        self.refuse_held_answer(&refusal, held.len, host)
    }

    /// Whether the request went upstream: an approval asked now is its
    /// answer's. (Read before the approval's answer is handed over: a request
    /// approved then goes upstream in that call.)
    pub fn answering(&self) -> bool {
        self.answer.is_some()
    }

    /// Annotates the request's decision event with the taint in force.
    pub(super) fn annotate_taint(&self, event: &mut crate::event::Event) {
        if let Some(taint) = &self.taint {
            taint.annotate(&mut event.metadata, &mut event.categories);
        }
    }
}
