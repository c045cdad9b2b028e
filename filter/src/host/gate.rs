//! The host side of checking the tools an answer names (`crate::tool_gate`):
//! a JSON answer is held whole and judged, an SSE answer rewritten event by
//! event; a refusal replaces the answer and is reported as a `tool_check`
//! event with `TOOL_DENIED` (a stream cut at an event too long to read, with
//! `KALGUARD_UNAVAILABLE`).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use super::{answer_refusal, header, now_ms, report_answer, Shared};
use crate::event::{Event, EventType, ANSWER};
use crate::guard::{self, ResponseGate};
use crate::refusal::{ErrorCode, Refusal};
use crate::tool_gate::{self, ToolCallStream, ToolListStream};

/// One answer being checked.
pub(super) struct Gating {
    gate: ResponseGate,
    scan: Scan,
    /// The answer's headers are held until its body is judged.
    held: bool,
    reported: bool,
    /// Most bytes of one streamed event held.
    max_event_bytes: usize,
}

/// Whether the agent may call a tool (capabilities and policy).
type MayCall = Box<dyn Fn(&str) -> bool>;

enum Scan {
    /// A body neither JSON nor SSE: nothing the filter can name in it.
    Off,
    Whole,
    Calls(Box<ToolCallStream>),
    List(ToolListStream<MayCall>),
}

/// What the response body callback does next.
pub(super) enum Step {
    /// Carry on with this many bytes in the body buffer.
    Continue(usize),
    /// Wait for the rest of a whole answer.
    Hold,
    /// A host call failed: fail closed.
    Fail(&'static str),
}

impl Gating {
    pub(super) fn new(gate: ResponseGate, max_event_bytes: usize) -> Gating {
        Gating {
            gate,
            scan: Scan::Off,
            held: false,
            reported: false,
            max_event_bytes,
        }
    }

    /// Reads the answer's `headers`: whether they must be held (a JSON answer
    /// that may be refused, when Envoy lets headers wait), or `Err` when the
    /// answer cannot be read (compressed).
    pub(super) fn on_headers(
        &mut self,
        headers: &[(String, String)],
        can_hold: bool,
    ) -> Result<bool, &'static str> {
        let lowercase = |name: &str| {
            header(headers, name)
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let (content_type, encoding) = (lowercase("content-type"), lowercase("content-encoding"));
        self.scan = if content_type.contains("text/event-stream") {
            match &self.gate {
                ResponseGate::ToolCalls(calls) => Scan::Calls(Box::new(calls.stream())),
                ResponseGate::ToolList(pending, ids) => {
                    let pending = pending.clone();
                    let may_call: MayCall = Box::new(move |tool| guard::may_call(&pending, tool));
                    Scan::List(ToolListStream::new(may_call, self.max_event_bytes).answering(ids))
                }
            }
        } else if content_type.contains("json") {
            Scan::Whole
        } else {
            Scan::Off
        };
        if matches!(self.scan, Scan::Off) {
            return Ok(false);
        }
        if !encoding.is_empty() && encoding.trim() != "identity" {
            return Err("got a compressed answer whose tool calls it cannot read");
        }
        if hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-length", None).is_err() {
            return Err("cannot remove the answer's content-length");
        }
        self.held = can_hold
            && matches!(self.scan, Scan::Whole)
            && matches!(self.gate, ResponseGate::ToolCalls(_));
        Ok(self.held)
    }

    /// Judges a body chunk; on `Continue` the buffer holds what goes on. At the
    /// answer's trailers (`at_trailers`), a held whole answer is in the buffer,
    /// but a stream's last chunk has gone on: what it still holds cannot follow.
    pub(super) fn on_body(
        &mut self,
        shared: &Shared,
        request_id: &str,
        agent: Option<&str>,
        body_size: usize,
        end_of_stream: bool,
        at_trailers: bool,
    ) -> Step {
        if matches!(self.scan, Scan::Off) {
            return Step::Continue(body_size);
        }
        if matches!(self.scan, Scan::Whole) && !end_of_stream {
            return Step::Hold;
        }
        if at_trailers && !matches!(self.scan, Scan::Whole) {
            let held = match &mut self.scan {
                Scan::Calls(stream) => stream.finish(),
                Scan::List(stream) => stream.finish(),
                Scan::Off | Scan::Whole => Vec::new(),
            };
            return if held.is_empty() {
                Step::Continue(body_size)
            } else {
                Step::Fail("cannot add the held end of a stream before its trailers")
            };
        }
        let chunk = match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size) {
            Ok(chunk) => chunk.unwrap_or_default(),
            Err(_) => return Step::Fail("cannot read the answer to check its tool calls"),
        };
        let mut cut = false;
        let (out, denied, refused) = match &mut self.scan {
            Scan::Off => return Step::Continue(body_size),
            Scan::Whole => match shared.guard.gate_answer(&self.gate, &chunk) {
                None => return Step::Continue(body_size),
                Some(gated) if gated.refused => {
                    let refusal = Refusal::new(
                        ErrorCode::ToolDenied,
                        tool_gate::refusal_message(&gated.denied),
                    )
                    .with_data(serde_json::json!({"deniedTools": gated.denied}));
                    (
                        answer_refusal(&refusal, request_id, self.held),
                        gated.denied,
                        true,
                    )
                }
                Some(gated) => (gated.body.unwrap_or(chunk.clone()), gated.denied, false),
            },
            Scan::Calls(stream) => {
                let mut out = stream.push(&chunk);
                if end_of_stream {
                    out.extend(stream.finish());
                }
                cut = stream.cut();
                (out, stream.denied().to_vec(), stream.refused())
            }
            Scan::List(stream) => {
                let mut out = stream.push(&chunk);
                if end_of_stream {
                    out.extend(stream.finish());
                }
                cut = stream.cut();
                (out, Vec::new(), false)
            }
        };
        // A denial is the cause when both came in one chunk.
        if !denied.is_empty() {
            self.report(shared, request_id, agent, denied.len(), refused);
        } else if cut {
            self.report_cut(shared, request_id, agent);
        }
        if out != chunk
            && hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &out).is_err()
        {
            return Step::Fail("cannot rewrite the answer's tool calls");
        }
        Step::Continue(out.len())
    }

    /// Audits a stream cut at an event longer than the limit (once).
    fn report_cut(&mut self, shared: &Shared, request_id: &str, agent: Option<&str>) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        log::error!(
            "kalguard: {request_id} an event of the answer is too long or unreadable; the stream was cut"
        );
        let event = report_answer(
            shared,
            EventType::ToolCheck,
            request_id,
            agent,
            ErrorCode::KalguardUnavailable,
        );
        shared.emit(&event);
    }

    /// Audits the first denial of this answer (removed or refused calls).
    fn report(
        &mut self,
        shared: &Shared,
        request_id: &str,
        agent: Option<&str>,
        denied: usize,
        refused: bool,
    ) {
        if self.reported {
            return;
        }
        self.reported = true;
        shared.metrics.answer_refused(ErrorCode::ToolDenied);
        let mut event =
            Event::new(EventType::ToolCheck, request_id, now_ms()).refused(ErrorCode::ToolDenied);
        event.agent_id = agent.map(str::to_owned);
        event.metadata.insert(ANSWER.into(), 1.into());
        event
            .metadata
            .insert("toolCallsDenied".into(), denied.into());
        event
            .metadata
            .insert("answerRefused".into(), u8::from(refused).into());
        shared.emit(&event);
    }
}
