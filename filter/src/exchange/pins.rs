//! MCP tool pinning in the exchange (`docs/mcp-pinning.md`): with
//! `mcp_pinning` on, an MCP request that calls tools is held while the
//! control plane says whether each is pinned (a call to a tool it does not
//! call pinned is refused `TOOL_CHANGED` or `TOOL_SUSPICIOUS`), and an
//! answer that lists tools or carries the server's instructions is held
//! whole while the control plane pins what it lists (first use) or says
//! what changed; the agent receives only the tools pinned with the very
//! definition listed. The reading and rewriting are `crate::pinning`'s.

use super::answer::{Answer, Lists, Who};
use super::{CallAnswer, Effect, Exchange, Failure, Flow, Host, Side};
use crate::channel::ChannelKey;
use crate::event::EventType;
use crate::firewall::Tier;
use crate::guard::{Guard, Pending};
use crate::pinning::{self, Asks, Listing};
use crate::pins::{PinAnswer, PinFiling, PinVerdict};
use crate::refusal::{ErrorCode, Refusal};

/// How long the host's call to the control plane may take: it answers at
/// once (a few file writes at most).
pub const PIN_CALL_TIMEOUT_MS: u64 = 5_000;

/// The call the host makes to file pins: `POST /v1/filter/pins` with
/// `body`, on the control plane's cluster, with the channel key.
#[derive(Clone, Debug, PartialEq)]
pub struct PinCall {
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

impl PinCall {
    fn of(filing: &PinFiling) -> PinCall {
        PinCall {
            body: filing.to_json(),
            timeout_ms: PIN_CALL_TIMEOUT_MS,
        }
    }
}

/// A request's pinning across its callbacks.
#[derive(Debug, Default)]
pub(super) struct Pins {
    /// Set while the request waits for the verdicts on the tools it calls.
    calls: Option<HeldCalls>,
    /// Set when the request's answer must be read for pins (it lists tools
    /// or initialises), until the answer takes it.
    pub read: Option<PinRead>,
    /// Set, with the IDs of the body's requests, when pinning is on and the
    /// answer is not read for pins: any tool list in it (a `tools/list`
    /// result smuggled into the answer to another request) reaches the
    /// agent empty.
    pub unread: Option<Vec<serde_json::Value>>,
}

/// A request held while its calls are checked.
#[derive(Debug)]
struct HeldCalls {
    pending: Pending,
    /// Body bytes buffered (all of them).
    len: usize,
    calls: Vec<String>,
    filing: PinFiling,
}

/// An answer read for pins.
#[derive(Debug)]
pub(super) struct PinRead {
    /// The MCP server: the request's path.
    server: String,
    agent: String,
    tier: Tier,
    /// Set while the answer waits for the verdicts on what it lists.
    waiting: Option<(Listing, PinFiling)>,
}

/// What the answer's hook says.
pub(super) enum AnswerPins {
    /// Nothing (more) to pin: judge the answer as usual, `len` bytes of it.
    Judge(usize),
    /// Held while the control plane decides.
    Held,
}

impl PinRead {
    /// Reads the whole answer (`len` bytes, SSE `events` or one document)
    /// and files what it lists; a list nobody can be asked about loses
    /// every tool at once.
    pub(super) fn file(
        &mut self,
        guard: &Guard,
        who: &Who,
        len: usize,
        events: bool,
        host: &mut dyn Host,
    ) -> Result<AnswerPins, Failure> {
        let body = host
            .body(Side::Answer, len)
            .map_err(|_| Failure("cannot read the answer to pin its tools"))?;
        let max_event_bytes = guard.max_body_bytes();
        // A document no JSON reader takes is refused, not passed unpinned: a
        // lenient client could still read a list in it (a byte-order mark,
        // a lone surrogate, deep nesting).
        if !events && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
            return Err(Failure("cannot read the MCP answer whose tools it pins"));
        }
        let tier = self.tier;
        let scan = |text: &str| guard.flags_tool_text(tier, text);
        let listing = Listing::read(&body, events, max_event_bytes, &scan);
        if !listing.is_empty() {
            let filing = listing.filing(who.request_id, &self.agent, &self.server);
            if host.apply(&Effect::AskPins(PinCall::of(&filing))).is_ok() {
                self.waiting = Some((listing, filing));
                return Ok(AnswerPins::Held);
            }
            log::error!(
                "kalguard: {} cannot file the tools of MCP server {} with the control plane; they are held back",
                who.request_id,
                self.server
            );
        }
        let len = rewrite(&listing, None, None, &body, events, guard, who, host)?;
        Ok(AnswerPins::Judge(len.unwrap_or(body.len())))
    }

    pub(super) fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    pub(super) fn take_waiting(&mut self) -> Option<(Listing, PinFiling)> {
        self.waiting.take()
    }
}

/// Writes the answer with only the tools `answer` pinned (none without
/// one) and reports what went; the new length when it changed.
#[allow(clippy::too_many_arguments)]
fn rewrite(
    listing: &Listing,
    filing: Option<&PinFiling>,
    answer: Option<&PinAnswer>,
    body: &[u8],
    events: bool,
    guard: &Guard,
    who: &Who,
    host: &mut dyn Host,
) -> Result<Option<usize>, Failure> {
    let (rewritten, dropped) = listing.rewrite(body, events, guard.max_body_bytes(), answer);
    let Some(rewritten) = rewritten else {
        return Ok(None);
    };
    // What the event names: no word from the control plane; else a change
    // (or a tool it does not know) over a suspicion; else the suspicion
    // (flagged instructions alone included).
    let code = match (filing, answer) {
        (Some(filing), Some(answer)) if dropped > 0 => {
            let verdicts = filing.tools.iter().map(|t| answer.verdict(&t.name));
            let mut held = verdicts.filter(|v| *v != PinVerdict::Pinned);
            if held.any(|v| matches!(v, PinVerdict::Changed | PinVerdict::Unknown)) {
                ErrorCode::ToolChanged
            } else {
                ErrorCode::ToolSuspicious
            }
        }
        _ if dropped == 0 => ErrorCode::ToolSuspicious,
        _ => ErrorCode::KalguardUnavailable,
    };
    let mut event = super::answer::answer_event(who, EventType::ToolCheck, code, host);
    event.metadata.insert("toolsDropped".into(), dropped.into());
    if listing.instructions_flagged.is_some() {
        event
            .metadata
            .insert("instructionsDropped".into(), 1.into());
    }
    let _ = host.apply(&Effect::Emit(event));
    let len = rewritten.len();
    host.apply(&Effect::ReplaceBody {
        side: Side::Answer,
        len: body.len(),
        body: rewritten,
    })
    .map_err(|_| Failure("cannot rewrite the answer's tool list"))?;
    Ok(Some(len))
}

impl Exchange {
    /// With pinning on for `pending`, files the tools its body calls and
    /// holds it (`Some(Pause)`), and marks its answer for reading when it
    /// lists tools; `None` when nothing is asked.
    pub(super) fn ask_pins(
        &mut self,
        guard: &Guard,
        pending: &Pending,
        body: &[u8],
        host: &mut dyn Host,
    ) -> Option<Flow> {
        if !guard.pins_tools(pending) {
            return None;
        }
        let asks = Asks::of(body);
        let agent = pending.agent.id.to_string();
        if asks.reads_answer {
            self.pins.read = Some(PinRead {
                server: pending.path.clone(),
                agent: agent.clone(),
                tier: pending.tier,
                waiting: None,
            });
        } else {
            self.pins.unread = Some(asks.ids);
        }
        if asks.calls.is_empty() {
            return None;
        }
        let filing = pinning::calls_filing(&self.request_id, &agent, &pending.path, &asks.calls);
        if host.apply(&Effect::AskPins(PinCall::of(&filing))).is_err() {
            return Some(
                self.unavailable(host, Failure("cannot ask the control plane about pins")),
            );
        }
        self.pins.calls = Some(HeldCalls {
            pending: pending.clone(),
            len: body.len(),
            calls: asks.calls,
            filing,
        });
        Some(Flow::Pause)
    }

    /// Whether the request or its answer waits for the control plane's
    /// word on pins (the host's call answer goes to [`Exchange::on_pins`]).
    pub fn awaits_pins(&self) -> bool {
        self.pins.calls.is_some()
            || self
                .answer
                .as_ref()
                .is_some_and(|answer| answer.pins_waiting())
    }

    /// The control plane's word on the pins this request filed: `Continue`
    /// when the request (or its answer, as `Side` says) goes on.
    pub fn on_pins(
        &mut self,
        guard: &Guard,
        call: &CallAnswer,
        key: Option<&ChannelKey>,
        host: &mut dyn Host,
    ) -> (Flow, Side) {
        if let Some(held) = self.pins.calls.take() {
            return (
                self.calls_checked(guard, held, call, key, host),
                Side::Request,
            );
        }
        (self.answer_pinned(guard, call, key, host), Side::Answer)
    }

    fn calls_checked(
        &mut self,
        guard: &Guard,
        held: HeldCalls,
        call: &CallAnswer,
        key: Option<&ChannelKey>,
        host: &mut dyn Host,
    ) -> Flow {
        let server = held.filing.server.clone();
        let answer = match verify(call, key, &held.filing, &self.request_id) {
            Some(answer) => answer,
            None => {
                let refusal = Refusal::new(
                    ErrorCode::KalguardUnavailable,
                    format!("the pins of MCP server {server} could not be checked"),
                );
                return self.refuse(host, &refusal);
            }
        };
        if let Some((tool, verdict)) = pinning::first_refused(&held.calls, &answer) {
            let refusal = pinning::call_refusal(&server, tool, verdict);
            return self.refuse(host, &refusal);
        }
        let body = match host.body(Side::Request, held.len) {
            Ok(body) => body,
            Err(failure) => return self.unavailable(host, failure),
        };
        self.judge_body(guard, held.pending, &body, host, None)
    }

    fn answer_pinned(
        &mut self,
        guard: &Guard,
        call: &CallAnswer,
        key: Option<&ChannelKey>,
        host: &mut dyn Host,
    ) -> Flow {
        let Some(answer) = self.answer.as_mut() else {
            return Flow::Pause;
        };
        let Some((listing, filing, events)) = answer.take_pins_waiting() else {
            return Flow::Pause;
        };
        let who = Who {
            request_id: &self.request_id,
            agent: self.agent.as_deref(),
            check: self.check.unwrap_or(EventType::PromptCheck),
            // Pinning is carried out in observe mode too (docs/observe.md).
            observe: false,
        };
        let verdicts = verify(call, key, &filing, who.request_id);
        let bytes = answer.bytes();
        let judged = host
            .body(Side::Answer, bytes)
            .map_err(|_| Failure("cannot read the answer to pin its tools"))
            .and_then(|body| {
                let written = rewrite(
                    &listing,
                    Some(&filing),
                    verdicts.as_ref(),
                    &body,
                    events,
                    guard,
                    &who,
                    host,
                )?;
                answer.judge_pinned(guard, &who, written.unwrap_or(body.len()), host)
            });
        self.settle_answer(guard, judged, host)
    }
}

/// What a request forwarded unread (after `strip_token`) needs, and how its
/// answer is read: an MCP session's event stream (`session`, as its agent
/// stands) comes uncompressed and any tool list in it is emptied with
/// pinning on (it was never pinned), or reduced to the tools the agent may
/// call with `mcp_filter_tools_list` (not in observe mode, which removes
/// no tool).
pub(super) fn session(
    guard: &Guard,
    session: Option<Pending>,
    observing: bool,
    strip_token: Effect,
) -> (Vec<Effect>, Answer) {
    let config = guard.config();
    let (lists, tier) = match session {
        Some(pending) if config.mcp_pinning => (Lists::emptied(Vec::new()), pending.tier),
        Some(pending) if config.mcp_filter_tools_list && !observing => {
            let tier = pending.tier;
            (Lists::callable(pending, Vec::new()), tier)
        }
        _ => return (vec![strip_token], Answer::unchecked()),
    };
    let plain = Effect::RemoveHeader(Side::Request, "accept-encoding".into());
    let answer = Answer::session_stream(lists, tier, guard.max_body_bytes());
    (vec![strip_token, plain], answer)
}

/// `call`'s answer when it is the control plane's, signed, about `filing`;
/// else `None`, and the log says why.
fn verify(
    call: &CallAnswer,
    key: Option<&ChannelKey>,
    filing: &PinFiling,
    request_id: &str,
) -> Option<PinAnswer> {
    pinning::verified(call.status.as_deref(), &call.mac, &call.body, key, filing)
        .inspect_err(|why| {
            log::error!(
                "kalguard: {request_id} pins of MCP server {}: {why}; its tools are held back",
                filing.server
            );
        })
        .ok()
}
