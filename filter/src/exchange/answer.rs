//! The answer to a forwarded request, on its way back, through the one answer
//! pipeline (`crate::answer`): its body is classified once from its head; a
//! whole answer is held to its end, its tools checked against what the agent
//! may call and its text scanned for PII and secrets; a streamed answer is
//! split into events once and each event passes the tool gate, then the
//! redactor. What is held, stripped, rewritten or refused is decided here; a
//! refusal replaces the answer and is reported as an event marked [`ANSWER`]
//! (the request's own event counted the check). In observe mode the same
//! checks run and report what they find as would-be refusals, and the answer
//! goes on as it came (its head has left by then: the event and the stats
//! say it, not a header).

use super::pins::{AnswerPins, PinRead};
use super::taint::AnswerTaint;
use super::{header, header_list, Effect, Exchange, Failure, Flow, Host, Side, Tally};
use crate::answer::mcp::{self, ToolListStream, Unlisted};
use crate::answer::tool_calls::ToolCallGate;
use crate::answer::tool_calls::{self, ToolCallStream};
use crate::answer::{Body, Pipeline, Transform};
use crate::event::{Event, EventType, ANSWER};
use crate::firewall::Tier;
use crate::guard::{self, AnswerDecision, Guard, Pending, ResponseGate, ResponseStream};
use crate::pinning::Listing;
use crate::pins::PinFiling;
use crate::refusal::{ErrorCode, Refusal};
use crate::route::Route;
use crate::stream::{error_event, StreamStop};
use crate::taint::{self, Flagged};
use serde_json::Value;
use std::rc::Rc;

/// How one answer is checked, across its callbacks.
pub(super) struct Answer {
    /// The route, when the answer is scanned for PII and secrets.
    scan_route: Option<Route>,
    /// The tools the answer names, when they are checked.
    gating: Option<Gating>,
    reading: Reading,
    /// Most bytes of one streamed event held.
    max_event_bytes: usize,
    /// The answer's headers wait for its body (a JSON answer that may be refused).
    held: bool,
    /// Bytes of the body in the buffer at the last body callback (for an
    /// answer that ends in trailers).
    bytes: usize,
    /// The answer was refused or cut short (reported once).
    stopped: bool,
    /// Observe mode: nothing is held, rewritten or refused, only reported.
    observe: bool,
    /// Set in a tainted conversation: the answer is held whole and its
    /// outbound tool calls need approval (`super::taint`).
    taint: Option<Box<AnswerTaint>>,
    /// The approval the whole answer waits for, once judged: what a person
    /// is asked, and the bytes of the answer in the buffer.
    pub(super) asks: Option<(Refusal, usize)>,
    /// Set on the answer to an MCP `tools/call` (taint on): its result is
    /// screened as a tool result, with the request's firewall tier.
    results: Option<Tier>,
    /// What that screening flagged, for the exchange to record as a taint.
    pub(super) flagged: Option<Flagged>,
    /// Set when the answer is held whole and its tools pinned first.
    pins: Option<PinRead>,
    /// An MCP session's event stream (its `GET`): read as events whatever
    /// its label, its tool lists treated as `lists` says.
    session: bool,
    /// An MCP answer's tool lists, wherever they are (`docs/mcp-pinning.md`).
    lists: Option<Lists>,
    /// Tools emptied from the lists of an answer no filing read (reported once).
    emptied_reported: bool,
    /// The firewall tier a server's asks of the agent's model or user
    /// (`sampling/createMessage`, `elicitation/create`) are screened at: set
    /// wherever an MCP answer's tool lists are read, by a list filing too.
    asks_screened: Option<Tier>,
    /// A server's ask of the agent's model or user dropped (reported once).
    asks_reported: bool,
}

/// How every tool list of an MCP answer is reduced: the `result.tools` of
/// any message, whatever request it answers, JSON or SSE, single or batch.
/// A server may put a list in the answer to any request (under the ID of a
/// `tools/list` the client sent on another POST, or none), and a client that
/// matches answers by ID takes it. An answer that may carry a list and cannot
/// be read is refused.
pub(super) struct Lists {
    /// The IDs of the request's requests: a cut answers each one still
    /// unanswered with an error.
    ids: Vec<Value>,
    /// The tools that stay (`mcp_filter_tools_list`); `None` empties every
    /// list, audited `TOOL_SUSPICIOUS` (pinning on: only a list filing
    /// pins tools, and none read this one).
    keep: Option<Keep>,
}

impl Lists {
    /// Every list of the answer emptied (pinning on, no filing read it).
    pub(super) fn emptied(ids: Vec<Value>) -> Lists {
        Lists { ids, keep: None }
    }

    /// Every list of the answer reduced to the tools `pending`'s agent may call.
    pub(super) fn callable(pending: Pending, ids: Vec<Value>) -> Lists {
        let keep: Keep = Rc::new(move |tool: &str| guard::may_call(&pending, tool));
        Lists {
            ids,
            keep: Some(keep),
        }
    }

    /// Whether `tool` stays in a list.
    fn may_call(&self, tool: &str) -> bool {
        self.keep.as_ref().is_some_and(|keep| keep(tool))
    }

    /// The stage that reduces the lists of an SSE answer.
    fn stream(&self) -> GateStream {
        let keep = self.keep.clone();
        let may_call: MayCall = Box::new(move |tool| keep.as_ref().is_some_and(|keep| keep(tool)));
        GateStream::List(ToolListStream::new(may_call).answering(&self.ids))
    }
}

/// How the answer's body is read, once its head told what it is.
enum Reading {
    /// Not read: passed as it comes.
    Off,
    /// Held to its end, then judged whole: the tool gate, then the scan.
    Whole,
    /// Split into events once, each through the tool gate, then the redactor.
    Stream(Box<Streamed>),
    /// Passed as it comes, a copy kept to screen an MCP call's results at
    /// its end (`crate::taint`).
    Watched(Copied),
}

/// The first `max_body_bytes` of an answer that passes as it comes, kept to
/// screen its MCP results at its end (`crate::taint`).
#[derive(Default)]
struct Copied {
    bytes: Vec<u8>,
    /// The answer went past the copy's end.
    cut: bool,
}

impl Copied {
    /// Keeps what fits of the `len` bytes of `chunk` (read only if some fit).
    fn keep(
        &mut self,
        chunk: &mut Chunk,
        max_bytes: usize,
        host: &mut dyn Host,
    ) -> Result<(), Failure> {
        let room = max_bytes.saturating_sub(self.bytes.len());
        if chunk.len == 0 {
            return Ok(());
        }
        if chunk.len > room {
            self.cut = true;
        }
        if room > 0 {
            let bytes = chunk.bytes(host, "cannot read the answer")?;
            self.bytes
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        Ok(())
    }

    /// What the firewall flags in the results copied, at `tier`: a result
    /// too long to read whole cannot be vouched for.
    fn flagged(&mut self, guard: &Guard, tier: Tier) -> Option<Flagged> {
        let flagged = if self.cut {
            Some(Flagged::unscreened())
        } else {
            guard.flags_tool_result(&taint::result_texts(&self.bytes), tier)
        };
        self.bytes.clear();
        flagged
    }
}

/// A streamed answer's pipeline and its stages.
struct Streamed {
    pipeline: Pipeline,
    gate: Option<GateStream>,
    redactor: Option<ResponseStream>,
    /// A copy of the stream, judged at its end: an MCP call's results
    /// screened, or in observe mode a tainted conversation's tool calls.
    copy: Option<Copied>,
}

/// The tool gate of a streamed answer.
enum GateStream {
    Calls(ToolCallStream),
    List(ToolListStream<MayCall>),
}

/// Whether the agent may call a tool (capabilities and policy).
type MayCall = Box<dyn Fn(&str) -> bool>;

/// [`MayCall`], shared by a list's readers.
type Keep = Rc<dyn Fn(&str) -> bool>;

impl Streamed {
    /// Adds a chunk of the answer (and at its `end`, what is still held);
    /// returns the bytes to forward now.
    fn push(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let mut stages = stages(&mut self.gate, &mut self.redactor);
        let mut out = self.pipeline.push(chunk, &mut stages);
        if end {
            out.extend(self.pipeline.finish(&mut stages));
        }
        out
    }

    /// The stream's end, at its trailers: what the stages still hold.
    fn finish(&mut self) -> Vec<u8> {
        let mut stages = stages(&mut self.gate, &mut self.redactor);
        self.pipeline.finish(&mut stages)
    }
}

/// The chain, in order: the tool gate, then the redactor.
fn stages<'a>(
    gate: &'a mut Option<GateStream>,
    redactor: &'a mut Option<ResponseStream>,
) -> Vec<&'a mut dyn Transform> {
    let mut stages: Vec<&mut dyn Transform> = Vec::with_capacity(2);
    match gate {
        Some(GateStream::Calls(calls)) => stages.push(calls),
        Some(GateStream::List(list)) => stages.push(list),
        None => {}
    }
    if let Some(redactor) = redactor {
        stages.push(redactor);
    }
    stages
}

/// Who an answer's events name.
pub(super) struct Who<'a> {
    pub request_id: &'a str,
    pub agent: Option<&'a str>,
    pub check: EventType,
    /// What is found is reported as would-be refusals (observe mode).
    pub observe: bool,
}

impl Answer {
    /// The answer to a request forwarded unread: passed as it comes.
    pub(super) fn unchecked() -> Answer {
        Answer::checked(None, None, 0)
    }

    /// The answer to an inspected request: scanned when `scan_route` is set,
    /// its tools checked against `gate`; one streamed event is held up to
    /// `max_event_bytes`.
    pub(super) fn checked(
        scan_route: Option<Route>,
        gate: Option<ResponseGate>,
        max_event_bytes: usize,
    ) -> Answer {
        let (gating, lists, asks_screened) = match gate {
            Some(ResponseGate::ToolCalls(calls)) => (Some(Gating::new(calls)), None, None),
            Some(ResponseGate::ToolList(pending, ids)) => {
                let tier = pending.tier;
                (None, Some(Lists::callable(pending, ids)), Some(tier))
            }
            None => (None, None, None),
        };
        Answer {
            scan_route,
            gating,
            reading: Reading::Off,
            max_event_bytes,
            held: false,
            bytes: 0,
            stopped: false,
            observe: false,
            taint: None,
            asks: None,
            results: None,
            flagged: None,
            pins: None,
            session: false,
            lists,
            emptied_reported: false,
            asks_screened,
            asks_reported: false,
        }
    }

    /// In observe mode (`observe`), the answer's checks only report (and
    /// no tool is removed from a list: `docs/observe.md`; a server's ask
    /// enforce mode would drop is reported from a copy).
    pub(super) fn observing(mut self, observe: bool) -> Answer {
        self.observe = observe;
        if observe && self.lists.as_ref().is_some_and(|l| l.keep.is_some()) {
            self.lists = None;
        }
        self
    }

    /// Screens the answer's tool results (an MCP `tools/call`'s) with the
    /// firewall at `tier`, read whole, when no other check reads it.
    pub(super) fn screening_results(mut self, tier: Option<Tier>) -> Answer {
        self.results = tier;
        self
    }

    /// Holds the answer for approval of its outbound tool calls, in a
    /// tainted conversation.
    pub(super) fn tainted(mut self, taint: Option<AnswerTaint>) -> Answer {
        self.taint = taint.map(Box::new);
        self
    }

    /// The tainted conversation's facts, when the answer is held for one.
    pub(super) fn taint(&self) -> Option<&AnswerTaint> {
        self.taint.as_deref()
    }

    /// The answer to an MCP session's `GET` (its event stream): a tool list
    /// in it (a malicious server's answer to a pending `tools/list`, or a
    /// resumed stream's) is reduced as `lists` says (with pinning on,
    /// emptied: it was never pinned); everything else passes.
    pub(super) fn session_stream(lists: Lists, tier: Tier, max_event_bytes: usize) -> Answer {
        Answer {
            session: true,
            lists: Some(lists),
            asks_screened: Some(tier),
            ..Answer::checked(None, None, max_event_bytes)
        }
    }

    /// With pinning on, an MCP POST's answer no filing reads (`ids`: its
    /// request's IDs): its tool lists reach the agent empty.
    pub(super) fn emptying_lists(mut self, ids: Option<Vec<Value>>, tier: Tier) -> Answer {
        if let Some(ids) = ids {
            self.lists = Some(Lists::emptied(ids));
            self.asks_screened = Some(tier);
        }
        self
    }

    /// This answer, held whole to pin the tools it lists first (`read`);
    /// the server's asks in it screened at `tier`, as in any other MCP
    /// answer whose lists are read (an ask can sit beside the list).
    pub(super) fn pinned(mut self, read: Option<PinRead>, tier: Tier) -> Answer {
        if read.is_some() {
            self.asks_screened = Some(tier);
        }
        self.pins = read;
        self
    }

    /// Whether the answer waits for the control plane's word on its tools.
    pub(super) fn pins_waiting(&self) -> bool {
        self.pins.as_ref().is_some_and(PinRead::is_waiting)
    }

    /// What the answer filed, and whether it is read as SSE events.
    pub(super) fn take_pins_waiting(&mut self) -> Option<(Listing, PinFiling, bool)> {
        let (listing, filing) = self.pins.as_mut()?.take_waiting()?;
        let events = matches!(self.reading, Reading::Stream(_));
        Some((listing, filing, events))
    }

    /// Bytes of the body in the buffer at the last body callback.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Judges the whole answer, `len` bytes now that its tools are pinned.
    pub(super) fn judge_pinned(
        &mut self,
        guard: &Guard,
        who: &Who,
        len: usize,
        host: &mut dyn Host,
    ) -> Result<Flow, Failure> {
        self.pins = None;
        self.bytes = len;
        // A stream held whole for its pins is here whole: its MCP results
        // are screened now (a document's are, on the way, in `on_body`).
        if let (Some(tier), Reading::Stream(_)) = (self.results, &self.reading) {
            let body = host
                .body(Side::Answer, len)
                .map_err(|_| Failure("cannot read the answer"))?;
            self.flagged = guard.flags_tool_result(&taint::result_texts(&body), tier);
        }
        self.on_body(guard, who, len, true, false, host)
    }

    /// Reads the answer's head (only when a check looks at it): whether it is
    /// held, or `Err` when it cannot be checked.
    fn on_headers(
        &mut self,
        guard: &Guard,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Result<Flow, Failure> {
        if self.gating.is_none()
            && self.scan_route.is_none()
            && self.taint.is_none()
            && self.results.is_none()
            && self.pins.is_none()
            && self.lists.is_none()
            && self.asks_screened.is_none()
        {
            return Ok(Flow::Continue);
        }
        let headers = host.headers(Side::Answer);
        let body = Body::of(
            header(&headers, "content-type"),
            header_list(&headers, "content-encoding").as_deref(),
        );
        // Any text is read: JSON and other text whole (a body that is not JSON
        // is redacted as text), SSE as a stream; audio, images and other bytes
        // pass.
        let pinning = self.pins.is_some() || self.lists.is_some();
        // An MCP session's stream is read as events whatever its label: a
        // client may read events in a body labelled JSON.
        let body = match body {
            Body::Document if self.session => Body::Events,
            body => body,
        };
        self.reading = match body {
            Body::Compressed => return Err(Failure("got a compressed answer it cannot read")),
            // A client may still parse a list out of bytes of any label.
            Body::Opaque if pinning => {
                return Err(Failure(
                    "got an MCP answer of a type it cannot read for pins",
                ))
            }
            Body::Opaque => Reading::Off,
            // Only an MCP call's results are screened: read as they pass.
            Body::Document | Body::Events
                if self.gating.is_none()
                    && self.scan_route.is_none()
                    && self.taint.is_none()
                    && !pinning =>
            {
                Reading::Watched(Copied::default())
            }
            Body::Document => Reading::Whole,
            Body::Events => Reading::Stream(Box::new(Streamed {
                pipeline: Pipeline::new(self.max_event_bytes),
                gate: match (&self.gating, &self.lists) {
                    (Some(gating), _) => Some(gating.stream()),
                    (None, Some(lists)) => Some(lists.stream()),
                    (None, None) => None,
                },
                redactor: self.scan_route.map(|route| guard.response_stream(route)),
                // (An answer held whole for its pins is screened whole; in
                // enforce mode a tainted conversation's stream is held whole.)
                copy: ((self.results.is_some() && self.pins.is_none())
                    || (self.taint.is_some() && self.observe))
                    .then(Copied::default),
            })),
        };
        if matches!(self.reading, Reading::Off | Reading::Watched(_)) {
            return Ok(Flow::Continue);
        }
        // The checks may change the body's length; Envoy frames it instead.
        host.apply(&Effect::RemoveHeader(Side::Answer, "content-length".into()))
            .map_err(|_| Failure("cannot remove the answer's content-length"))?;
        // A JSON answer that may be refused (its tool calls, PII with
        // `response_mode: block`, an MCP answer that may list tools and
        // cannot be read) keeps its headers until it is judged, when Envoy
        // lets them wait, so the refusal gets its own status. Headers with
        // no body to follow are never held: nothing would release them.
        let refusable = self.gating.as_ref().is_some()
            || (self.scan_route.is_some() && guard.blocks_answers())
            || self.taint.is_some()
            || self.pins.is_some()
            || self.lists.is_some();
        self.held = guard.config().hold_request_headers
            && !self.observe
            && !end_of_stream
            && matches!(self.reading, Reading::Whole)
            && refusable;
        Ok(Flow::hold_if(self.held))
    }

    /// Judges the answer's body. `len` bytes are in the buffer; at the
    /// trailers (`at_trailers`), a held whole answer is in it, but a stream's
    /// chunk has already gone on and nothing can be added to it any more.
    fn on_body(
        &mut self,
        guard: &Guard,
        who: &Who,
        len: usize,
        end_of_stream: bool,
        at_trailers: bool,
        host: &mut dyn Host,
    ) -> Result<Flow, Failure> {
        let read = !matches!(self.reading, Reading::Off);
        if let (true, Some(pins)) = (read, self.pins.as_mut()) {
            // Held whole (a stream too: a POST's answer ends after its
            // messages); then pinned, then judged as usual.
            if len > self.max_event_bytes {
                return Err(Failure(
                    "an MCP answer held to pin its tools outgrew max_body_bytes",
                ));
            }
            if !end_of_stream {
                return Ok(Flow::Pause);
            }
            let events = matches!(self.reading, Reading::Stream(_));
            match pins.file(guard, who, len, events, host)? {
                AnswerPins::Held => return Ok(Flow::Pause),
                AnswerPins::Judge(len) => return self.judge_pinned(guard, who, len, host),
            }
        }
        let mut chunk = Chunk::new(len);
        // A streamed answer's copy, once it ended.
        let mut copied = None;
        match &mut self.reading {
            Reading::Off => {}
            Reading::Watched(copied) => {
                // A copy of what passes, up to max_body_bytes, screened at the end.
                if !at_trailers {
                    copied.keep(&mut chunk, self.max_event_bytes, host)?;
                }
                if end_of_stream {
                    let mut copy = std::mem::take(copied);
                    // (Observe mode: a server's ask is reported, never dropped.)
                    if self.asks_screened.is_some() {
                        let _ = self.screen_asks(guard, who, &copy.bytes, host);
                    }
                    if let Some(tier) = self.results {
                        self.flagged = copy.flagged(guard, tier);
                    }
                }
            }
            Reading::Whole if self.lists.is_some() && len > self.max_event_bytes => {
                return Err(Failure(
                    "an MCP answer held to empty its tool lists outgrew max_body_bytes",
                ))
            }
            Reading::Whole if !end_of_stream => return Ok(Flow::Pause),
            Reading::Whole => {
                if let Some(lists) = &self.lists {
                    let body = chunk.bytes(host, "cannot read the MCP answer")?;
                    let may_call = |tool: &str| lists.may_call(tool);
                    let emptying = lists.keep.is_none();
                    match mcp::filter_tool_lists(body, self.max_event_bytes, &lists.ids, &may_call)
                    {
                        Unlisted::Unchanged => {}
                        Unlisted::Emptied { body, dropped, cut } => {
                            if dropped > 0 && emptying {
                                self.report_emptied(who, dropped, host);
                            }
                            if cut {
                                self.stop(who, StreamStop::Unreadable.code(), host);
                            }
                            chunk.replace(body);
                        }
                        Unlisted::Unreadable => {
                            return Err(Failure("cannot read an MCP answer that may list tools"))
                        }
                    }
                }
                if self.asks_screened.is_some() {
                    let body = chunk.bytes(host, "cannot read the MCP answer")?;
                    if let Some(screened) = self.screen_asks(guard, who, body, host) {
                        chunk.replace(screened?);
                    }
                }
                if let Some(gating) = self.gating.as_mut() {
                    gating.judge_whole(who, &mut chunk, self.held, host)?;
                }
                if self.scan_route.is_some() {
                    let body = chunk.bytes(host, "cannot read the answer")?;
                    match guard.judge_answer(body) {
                        AnswerDecision::Clean => {}
                        AnswerDecision::Redacted(_) if self.observe => {}
                        AnswerDecision::Redacted(redacted) => chunk.replace(redacted),
                        AnswerDecision::Blocked(refusal) => {
                            self.stop(who, refusal.code, host);
                            if !self.observe {
                                let body = refusal_body(&refusal, who.request_id, self.held, host);
                                chunk.replace(body);
                            }
                        }
                    }
                }
                chunk.write(host, "cannot rewrite the answer")?;
                if let Some(tier) = self.results {
                    let body = chunk.bytes(host, "cannot read the answer")?;
                    self.flagged = guard.flags_tool_result(&taint::result_texts(body), tier);
                }
                return self.ask_taint(guard, who, &mut chunk, false, host);
            }
            // In a tainted conversation a stream is held whole (Envoy buffers
            // it) so that its tool calls are judged before any of it leaves;
            // observe mode holds nothing and judges a copy at its end.
            Reading::Stream(_) if self.taint.is_some() && !self.observe && !end_of_stream => {
                if len > self.max_event_bytes {
                    return Err(Failure(
                        "a streamed answer held in a tainted conversation outgrew max_body_bytes",
                    ));
                }
                return Ok(Flow::Pause);
            }
            Reading::Stream(streamed) if self.taint.is_some() && !self.observe => {
                let bytes = chunk.bytes(host, "cannot read the answer's stream")?;
                let mut out = streamed.push(bytes, true);
                if let (Some(gating), Some(gate)) = (self.gating.as_mut(), &streamed.gate) {
                    gating.report_stream(gate, who, host);
                }
                let stopped = streamed.redactor.as_ref().and_then(|r| r.stopped());
                if let Some(screened) = self.screen_asks(guard, who, &out, host) {
                    out = screened?;
                }
                chunk.replace(out);
                chunk.write(host, "cannot rewrite the answer's stream")?;
                if let Some(stop) = stopped {
                    self.stop(who, stop.code(), host);
                }
                return self.ask_taint(guard, who, &mut chunk, true, host);
            }
            Reading::Stream(streamed) if at_trailers => {
                copied = streamed.copy.take();
                // (In observe mode what the stages hold back went on as it came.)
                if !streamed.finish().is_empty() && !self.observe {
                    return Err(Failure(
                        "cannot add the held end of a stream before its trailers",
                    ));
                }
            }
            Reading::Stream(streamed) => {
                if let Some(copy) = streamed.copy.as_mut() {
                    copy.keep(&mut chunk, self.max_event_bytes, host)?;
                }
                let bytes = chunk.bytes(host, "cannot read the answer's stream")?;
                let mut out = streamed.push(bytes, end_of_stream);
                if let (Some(gating), Some(gate)) = (self.gating.as_mut(), &streamed.gate) {
                    gating.report_stream(gate, who, host);
                }
                if let Some(GateStream::List(list)) = &streamed.gate {
                    let emptying = self.lists.as_ref().is_some_and(|l| l.keep.is_none());
                    if emptying && list.dropped() > 0 {
                        let dropped = list.dropped();
                        report_emptied(&mut self.emptied_reported, who, dropped, host);
                    }
                }
                // A list reader of its own (no gate's) cut the stream.
                let list_cut = self.gating.is_none()
                    && matches!(&streamed.gate, Some(GateStream::List(list)) if list.cut());
                if end_of_stream {
                    copied = streamed.copy.take();
                }
                let stopped = streamed.redactor.as_ref().and_then(|r| r.stopped());
                if let Some(screened) = self.screen_asks(guard, who, &out, host) {
                    out = screened?;
                }
                if !self.observe {
                    chunk.replace(out);
                    chunk.write(host, "cannot rewrite the answer's stream")?;
                }
                if let Some(stop) = stopped {
                    if stop == StreamStop::Unreadable && !self.observe {
                        log::error!(
                            "kalguard: {} an event of the answer is longer than max_body_bytes; the stream was cut",
                            who.request_id
                        );
                    }
                    self.stop(who, stop.code(), host);
                }
                if list_cut {
                    self.stop(who, StreamStop::Unreadable.code(), host);
                }
            }
        }
        if let Some(mut copied) = copied {
            match self.results {
                Some(tier) => self.flagged = copied.flagged(guard, tier),
                None => self.observe_taint(guard, who, &copied, host),
            }
        }
        Ok(Flow::Continue)
    }

    /// Observe mode, in a tainted conversation: what enforce mode would have
    /// done with the whole stream `copied` is reported as enforce mode
    /// reports it when no one approves (`REQUIRE_APPROVAL` for an outbound
    /// call, `KALGUARD_UNAVAILABLE` for a stream too long to hold), marked
    /// as would-be.
    fn observe_taint(&mut self, guard: &Guard, who: &Who, copied: &Copied, host: &mut dyn Host) {
        let Some(taint) = self.taint.as_deref().filter(|_| self.observe) else {
            return;
        };
        if copied.cut {
            self.stop(who, ErrorCode::KalguardUnavailable, host);
            return;
        }
        let config = &guard.config().taint;
        let now_ms = host.now_ms();
        if let Some(refusal) =
            taint.refusal(config, &copied.bytes, true, self.max_event_bytes, now_ms)
        {
            self.stop_for(who, &refusal, host);
        }
    }

    /// In a tainted conversation, whether the whole answer in `chunk` (JSON,
    /// or a stream's `events`) calls an outbound tool no one approved: then
    /// it waits (`asks`) for the exchange to file the approval; in observe
    /// mode it goes on, and the refusal it would meet unapproved is reported.
    fn ask_taint(
        &mut self,
        guard: &Guard,
        who: &Who,
        chunk: &mut Chunk,
        events: bool,
        host: &mut dyn Host,
    ) -> Result<Flow, Failure> {
        let Some(taint) = self.taint.as_deref() else {
            return Ok(Flow::Continue);
        };
        let now_ms = host.now_ms();
        let body = chunk.bytes(host, "cannot read the answer")?;
        let config = &guard.config().taint;
        match taint.refusal(config, body, events, self.max_event_bytes, now_ms) {
            Some(refusal) if self.observe => {
                self.stop_for(who, &refusal, host);
                Ok(Flow::Continue)
            }
            Some(refusal) => {
                self.asks = Some((refusal, body.len()));
                Ok(Flow::Pause)
            }
            None => Ok(Flow::Continue),
        }
    }

    /// Screens the server's asks of the agent's model or user in `body` (a
    /// whole answer, or a stream's complete events) when its tool lists are
    /// read (`docs/mcp-pinning.md`): `Some` with what goes on when it
    /// changed, audited `PROMPT_BLOCKED` when an ask was dropped; `Err`
    /// when the answer was one ask, dropped.
    fn screen_asks(
        &mut self,
        guard: &Guard,
        who: &Who,
        body: &[u8],
        host: &mut dyn Host,
    ) -> Option<Result<Vec<u8>, Failure>> {
        let tier = self.asks_screened?;
        if !mcp::may_ask(body) {
            return None;
        }
        let mut screen = |params: &mut Value| guard.screen_ask(tier, params);
        let asked = mcp::screen_asks(body, self.max_event_bytes, &mut screen);
        if asked.dropped > 0 && !std::mem::replace(&mut self.asks_reported, true) {
            let done = if self.observe { "would be" } else { "was" };
            log::warn!(
                "kalguard: {} an MCP server asked the agent's model or user with words the firewall flags; the ask {done} dropped",
                who.request_id
            );
            let code = ErrorCode::PromptBlocked;
            let mut event = answer_event(who, EventType::ToolCheck, code, host);
            event
                .metadata
                .insert("asksDropped".into(), asked.dropped.into());
            let _ = host.apply(&Effect::Emit(event));
        }
        if self.observe {
            return None;
        }
        if asked.refused {
            return Some(Err(Failure(
                "got an MCP answer that is one ask the firewall flags",
            )));
        }
        asked.body.map(Ok)
    }

    /// Audits the tools emptied from the lists of an answer no filing read.
    fn report_emptied(&mut self, who: &Who, dropped: usize, host: &mut dyn Host) {
        report_emptied(&mut self.emptied_reported, who, dropped, host);
    }

    /// Counts and audits an answer refused or cut short (once).
    fn stop(&mut self, who: &Who, code: ErrorCode, host: &mut dyn Host) {
        self.stop_naming(who, code, None, host);
    }

    /// Counts and audits an answer refused (once) by `refusal`, naming the
    /// rule it names (`taint` for a tainted conversation's).
    fn stop_for(&mut self, who: &Who, refusal: &Refusal, host: &mut dyn Host) {
        self.stop_naming(who, refusal.code, crate::observe::rule_id(refusal), host);
    }

    fn stop_naming(
        &mut self,
        who: &Who,
        code: ErrorCode,
        rule_id: Option<String>,
        host: &mut dyn Host,
    ) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let mut event = answer_event(who, who.check, code, host);
        event.rule_id = rule_id;
        let _ = host.apply(&Effect::Emit(event));
    }
}

impl Exchange {
    /// The answer's head: stamped with the request ID (and the plan), then
    /// held or let go as its checks need.
    pub fn on_response_headers(
        &mut self,
        guard: &Guard,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Flow {
        for (name, value) in self.stamp() {
            let _ = host.apply(&Effect::SetHeader(Side::Answer, name, value));
        }
        // In observe mode only the filter names a refusal it let pass.
        if self.mode == crate::policy::Mode::Observe && self.would_refuse.is_none() {
            let name = crate::observe::HEADER.to_owned();
            let _ = host.apply(&Effect::RemoveHeader(Side::Answer, name));
        }
        let Some(answer) = self.answer.as_mut() else {
            return Flow::Continue;
        };
        match answer.on_headers(guard, end_of_stream, host) {
            Ok(flow) => flow,
            Err(failure) => self.answer_failed(host, failure),
        }
    }

    /// A chunk of the answer's body: `len` bytes are in the buffer.
    pub fn on_response_body(
        &mut self,
        guard: &Guard,
        len: usize,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Flow {
        self.answer_body(guard, Some(len), end_of_stream, host)
    }

    /// With trailers the body callbacks may never see `end_of_stream`: a held
    /// answer is judged here, never passed unchecked.
    pub fn on_response_trailers(&mut self, guard: &Guard, host: &mut dyn Host) -> Flow {
        self.answer_body(guard, None, true, host)
    }

    /// Judges the answer's body: a chunk of `len` bytes, or at the trailers
    /// (`None`) what the last body callback left in the buffer.
    fn answer_body(
        &mut self,
        guard: &Guard,
        len: Option<usize>,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Flow {
        let Some(answer) = self.answer.as_mut() else {
            return Flow::Continue;
        };
        if let Some(len) = len {
            answer.bytes = len;
        }
        let who = Who {
            request_id: &self.request_id,
            agent: self.agent.as_deref(),
            check: self.check.unwrap_or(EventType::PromptCheck),
            observe: answer.observe,
        };
        let bytes = answer.bytes;
        let judged = answer.on_body(guard, &who, bytes, end_of_stream, len.is_none(), host);
        self.settle_answer(guard, judged, host)
    }

    /// After the answer was judged: records the taint its MCP results set,
    /// holds it for the approval its tool calls need, or goes on with `judged`.
    pub(super) fn settle_answer(
        &mut self,
        guard: &Guard,
        judged: Result<Flow, Failure>,
        host: &mut dyn Host,
    ) -> Flow {
        let (asks, flagged) = match self.answer.as_mut() {
            Some(answer) => (answer.asks.take(), answer.flagged.take()),
            None => (None, None),
        };
        if let Some(flagged) = flagged {
            if let Err(failure) = self.record_taint(guard, &flagged, host) {
                return self.answer_failed(host, failure);
            }
        }
        match (judged, asks) {
            (Ok(_), Some((refusal, len))) => self.hold_answer(guard, &refusal, len, host),
            (Ok(flow), None) => flow,
            (Err(failure), _) => self.answer_failed(host, failure),
        }
    }

    /// Replaces a whole answer held for approval (`len` bytes in the buffer)
    /// with `refusal`, counted and audited as the answer's; the host then
    /// lets it go on. Headers still held get the refusal's status; a stream
    /// whose headers left ends with the dialect's error event.
    pub(super) fn refuse_held_answer(
        &mut self,
        refusal: &Refusal,
        len: usize,
        host: &mut dyn Host,
    ) -> Flow {
        let Some(answer) = self.answer.as_mut() else {
            return Flow::Continue;
        };
        let who = Who {
            request_id: &self.request_id,
            agent: self.agent.as_deref(),
            check: self.check.unwrap_or(EventType::PromptCheck),
            observe: answer.observe,
        };
        answer.stop_for(&who, refusal, host);
        let body = match (&answer.reading, answer.taint.as_deref()) {
            (Reading::Stream(_), Some(taint)) if !answer.held => {
                error_event(taint.dialect(), refusal.code, &refusal.message)
            }
            _ => refusal_body(refusal, &self.request_id, answer.held, host),
        };
        let effect = Effect::ReplaceBody {
            side: Side::Answer,
            len,
            body,
        };
        match host.apply(&effect) {
            Ok(()) => Flow::Continue,
            Err(_) => self.answer_failed(host, Failure("cannot replace the held answer")),
        }
    }

    /// Fail closed on the way back: the answer is refused, counted and audited
    /// as the answer's (its request was allowed and counted already).
    pub(super) fn answer_failed(&mut self, host: &mut dyn Host, failure: Failure) -> Flow {
        log::error!(
            "kalguard: {} {}; refusing the answer (fail closed)",
            self.request_id,
            failure.0
        );
        if let Some(answer) = self.answer.as_mut() {
            // (Failing closed is no finding: it is carried out in every mode.)
            let who = Who {
                request_id: &self.request_id,
                agent: self.agent.as_deref(),
                check: self.check.unwrap_or(EventType::PromptCheck),
                observe: false,
            };
            answer.stop(&who, ErrorCode::KalguardUnavailable, host);
        }
        let refusal = Refusal::new(
            ErrorCode::KalguardUnavailable,
            "KalGuard could not judge this answer",
        );
        self.reply(
            host,
            refusal.status(),
            Vec::new(),
            refusal.body(&self.request_id),
        )
    }
}

/// The answer's body in one callback: read from the host at most once, and
/// written back only when a check changed it.
struct Chunk {
    /// Bytes in the host's buffer.
    len: usize,
    bytes: Option<Vec<u8>>,
    changed: bool,
}

impl Chunk {
    fn new(len: usize) -> Chunk {
        Chunk {
            len,
            bytes: None,
            changed: false,
        }
    }

    fn bytes(&mut self, host: &mut dyn Host, what: &'static str) -> Result<&[u8], Failure> {
        let bytes = match self.bytes.take() {
            Some(bytes) => bytes,
            None => host
                .body(Side::Answer, self.len)
                .map_err(|_| Failure(what))?,
        };
        Ok(self.bytes.insert(bytes))
    }

    fn replace(&mut self, body: Vec<u8>) {
        if self.bytes.as_ref() != Some(&body) {
            self.changed = true;
        }
        self.bytes = Some(body);
    }

    /// Puts a changed body in the host's buffer.
    fn write(&mut self, host: &mut dyn Host, what: &'static str) -> Result<(), Failure> {
        if !self.changed {
            return Ok(());
        }
        let Some(body) = self.bytes.take() else {
            return Ok(());
        };
        let effect = Effect::ReplaceBody {
            side: Side::Answer,
            len: self.len,
            body,
        };
        let applied = host.apply(&effect);
        // The body is kept (without a copy) for the checks after this one.
        if let Effect::ReplaceBody { body, .. } = effect {
            self.len = body.len();
            self.bytes = Some(body);
        }
        applied.map_err(|_| Failure(what))?;
        self.changed = false;
        Ok(())
    }
}

/// The body of a refusal that replaces an upstream answer; when the answer's
/// headers were `held`, they get the refusal's status and content type too
/// (otherwise the upstream's status has already left).
fn refusal_body(refusal: &Refusal, request_id: &str, held: bool, host: &mut dyn Host) -> Vec<u8> {
    if held {
        let status = refusal.status().to_string();
        let _ = host.apply(&Effect::SetHeader(Side::Answer, ":status", status));
        let json = "application/json".to_owned();
        let _ = host.apply(&Effect::SetHeader(Side::Answer, "content-type", json));
    }
    refusal.body(request_id)
}

/// Counts an answer refused or cut short after its request was allowed (or
/// that would have been, in observe mode), and returns its event: the
/// refusal's `code`, on an event of `check` marked [`ANSWER`].
pub(super) fn answer_event(
    who: &Who,
    check: EventType,
    code: ErrorCode,
    host: &mut dyn Host,
) -> Event {
    let event = Event::new(check, who.request_id, host.now_ms());
    let (tally, mut event) = if who.observe {
        (Tally::AnswerWouldRefuse(code), event.would_refuse(code))
    } else {
        (Tally::AnswerRefused(code), event.refused(code))
    };
    let _ = host.apply(&Effect::Tally(tally));
    event.agent_id = who.agent.map(str::to_owned);
    event.metadata.insert(ANSWER.into(), 1.into());
    event
}

/// Audits (once per answer, `reported`) the `dropped` tools emptied from
/// the lists of an MCP answer no filing read: a server that answers one
/// request with a tool list of another is trying to smuggle unpinned tools.
fn report_emptied(reported: &mut bool, who: &Who, dropped: usize, host: &mut dyn Host) {
    if std::mem::replace(reported, true) {
        return;
    }
    log::warn!(
        "kalguard: {} an MCP answer carried a tool list no list filing read; it reaches the agent empty",
        who.request_id
    );
    let code = ErrorCode::ToolSuspicious;
    let mut event = answer_event(who, EventType::ToolCheck, code, host);
    event.metadata.insert("toolsDropped".into(), dropped.into());
    let _ = host.apply(&Effect::Emit(event));
}

/// The tool calls one LLM answer names, checked against what the agent may call.
struct Gating {
    calls: ToolCallGate,
    reported: bool,
}

impl Gating {
    fn new(calls: ToolCallGate) -> Gating {
        Gating {
            calls,
            reported: false,
        }
    }

    /// The gate of a streamed answer.
    fn stream(&self) -> GateStream {
        GateStream::Calls(self.calls.stream())
    }

    /// Judges a whole answer, leaving in `chunk` what goes on; a refusal gets
    /// its own status when the answer's headers were `held`.
    fn judge_whole(
        &mut self,
        who: &Who,
        chunk: &mut Chunk,
        held: bool,
        host: &mut dyn Host,
    ) -> Result<(), Failure> {
        let body = chunk.bytes(host, "cannot read the answer to check its tool calls")?;
        let gated = self.calls.body(body);
        if !gated.refused && gated.body.is_none() {
            return Ok(());
        }
        if who.observe {
            if !gated.denied.is_empty() {
                self.report(who, gated.denied.len(), gated.refused, host);
            }
            return Ok(());
        }
        let out = if gated.refused {
            let refusal = Refusal::new(
                ErrorCode::ToolDenied,
                tool_calls::refusal_message(&gated.denied),
            )
            .with_data(serde_json::json!({"deniedTools": gated.denied}));
            refusal_body(&refusal, who.request_id, held, host)
        } else {
            gated.body.unwrap_or_else(|| body.to_vec())
        };
        if !gated.denied.is_empty() {
            self.report(who, gated.denied.len(), gated.refused, host);
        }
        chunk.replace(out);
        Ok(())
    }

    /// Reports what the gate of a stream did so far: a denial is the cause
    /// when both came in one chunk.
    fn report_stream(&mut self, gate: &GateStream, who: &Who, host: &mut dyn Host) {
        let (denied, refused, cut) = match gate {
            GateStream::Calls(calls) => (calls.denied().len(), calls.refused(), calls.cut()),
            GateStream::List(list) => (0, false, list.cut()),
        };
        if denied > 0 {
            self.report(who, denied, refused, host);
        } else if cut {
            self.report_cut(who, host);
        }
    }

    /// Audits a stream cut at an event longer than the limit (once).
    fn report_cut(&mut self, who: &Who, host: &mut dyn Host) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        log::error!(
            "kalguard: {} an event of the answer is too long or unreadable; the stream was cut",
            who.request_id
        );
        let code = ErrorCode::KalguardUnavailable;
        let event = answer_event(who, EventType::ToolCheck, code, host);
        let _ = host.apply(&Effect::Emit(event));
    }

    /// Audits the first denial of this answer (removed or refused calls).
    fn report(&mut self, who: &Who, denied: usize, refused: bool, host: &mut dyn Host) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        let code = ErrorCode::ToolDenied;
        let mut event = answer_event(who, EventType::ToolCheck, code, host);
        event
            .metadata
            .insert("toolCallsDenied".into(), denied.into());
        event
            .metadata
            .insert("answerRefused".into(), u8::from(refused).into());
        let _ = host.apply(&Effect::Emit(event));
    }
}
