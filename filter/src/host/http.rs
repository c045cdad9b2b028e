//! One HTTP request through the filter: the request side is the pure core's
//! [`Exchange`] (this file reads Envoy's head and carries out its effects); on
//! the way back, the answer is scanned and its tools gated when the exchange
//! says so.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::rc::Rc;

use super::gate::{Gating, Step};
use super::{answer_refusal, header, header_map, host_time, report_answer, Shared};
use crate::event::EventType;
use crate::exchange::{Effect, Exchange, Flow, Host, HostFailure, Tally};
use crate::guard::{AnswerDecision, Head, ResponseStream};
use crate::refusal::{ErrorCode, Refusal};
use crate::response::StreamStop;

pub(super) struct Request {
    shared: Rc<Shared>,
    exchange: Exchange,
    response: ResponseScan,
    /// The tools the answer names, checked on the way back.
    gating: Option<Gating>,
    /// The answer's headers wait for its body (a JSON answer that may be refused).
    response_held: bool,
    /// Bytes of the answer's body in the buffer at the last body callback (for an
    /// answer that ends in trailers).
    answer_bytes: usize,
    /// The answer was refused or cut short (reported once).
    answer_stopped: bool,
}

/// Filter state key of the request ID (`wasm.kalguard_request_id` in Envoy's
/// formatters and CEL), read by envoy.yaml's local reply mapping.
const REQUEST_ID_PROPERTY: &str = "kalguard_request_id";

/// How the upstream's response body is being scanned.
enum ResponseScan {
    Off,
    /// A JSON body, buffered and redacted whole.
    Whole,
    /// An SSE stream, rewritten chunk by chunk with a bounded hold-back.
    Stream(Box<ResponseStream>),
}

/// Carries out an [`Exchange`]'s effects with proxy-wasm host calls.
struct Envoy<'a>(&'a Shared);

impl Host for Envoy<'_> {
    fn request_body(&mut self, len: usize) -> Result<Vec<u8>, HostFailure> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, len)
            .map(Option::unwrap_or_default)
            .map_err(|_| HostFailure("cannot read the request body"))
    }

    fn apply(&mut self, effect: &Effect) -> Result<(), HostFailure> {
        let headers = MapType::HttpRequestHeaders;
        match effect {
            Effect::RemoveHeader(name) => hostcalls::set_map_value(headers, name, None)
                .map_err(|_| HostFailure("cannot remove a request header")),
            Effect::SetHeader(name, value) => hostcalls::set_map_value(headers, name, Some(value))
                .map_err(|_| HostFailure("cannot set a request header")),
            Effect::ReplaceBody { len, body } => {
                hostcalls::set_buffer(BufferType::HttpRequestBody, 0, *len, body)
                    .map_err(|_| HostFailure("cannot rewrite the request body"))
            }
            Effect::Reply(reply) => {
                let headers = reply
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect();
                if let Err(status) =
                    hostcalls::send_http_response(reply.status, headers, Some(&reply.body))
                {
                    log::error!(
                        "kalguard: cannot send a local answer ({status:?}); resetting the request"
                    );
                    let _ = hostcalls::reset_http_request();
                }
                Ok(())
            }
            Effect::Emit(event) => {
                self.0.emit(event);
                Ok(())
            }
            Effect::Tally(Tally::Allowed) => {
                self.0.metrics.allowed();
                Ok(())
            }
            Effect::Tally(Tally::Refused(code)) => {
                self.0.metrics.refused(*code);
                Ok(())
            }
        }
    }
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

impl Request {
    pub(super) fn new(shared: Rc<Shared>) -> Request {
        Request {
            exchange: Exchange::new(shared.request_ids.next()),
            shared,
            response: ResponseScan::Off,
            gating: None,
            response_held: false,
            answer_bytes: 0,
            answer_stopped: false,
        }
    }

    /// Answers with `refusal` in place of the upstream's answer (once the
    /// upstream's head has left, Envoy resets the stream instead).
    fn send_refusal(&self, refusal: &Refusal) -> Action {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(self.exchange.stamp());
        let body = refusal.body(self.exchange.request_id());
        if let Err(status) = hostcalls::send_http_response(refusal.status(), headers, Some(&body)) {
            log::error!(
                "kalguard: {} cannot send the refusal ({status:?}); resetting the request",
                self.exchange.request_id()
            );
            let _ = hostcalls::reset_http_request();
        }
        Action::Pause
    }

    /// Fail closed on the way back: the answer is refused, counted and audited as
    /// the answer's (its request was allowed and counted already).
    fn answer_failed(&mut self, what: &str) -> Action {
        log::error!(
            "kalguard: {} {what}; refusing the answer (fail closed)",
            self.exchange.request_id()
        );
        self.answer_stopped(ErrorCode::KalguardUnavailable);
        self.send_refusal(&Refusal::new(
            ErrorCode::KalguardUnavailable,
            "KalGuard could not judge this answer",
        ))
    }
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let shared = Rc::clone(&self.shared);
        let mut envoy = Envoy(&shared);
        let Some(clock) = host_time() else {
            let failure = HostFailure("cannot read the host clock");
            return action(self.exchange.unavailable(&mut envoy, failure));
        };
        // Envoy's own refusals of this request (envoy.yaml's local_reply_config,
        // e.g. a 503 from the router) carry the same request ID as the filter's.
        // Without it they still carry one of Envoy's: nothing to fail on.
        let request_id = self.exchange.request_id().as_bytes();
        let _ = hostcalls::set_property(vec![REQUEST_ID_PROPERTY], Some(request_id));
        let guard = &shared.guard;
        let headers = header_map(MapType::HttpRequestHeaders);
        let head = Head {
            method: header(&headers, ":method").unwrap_or_default(),
            path: header(&headers, ":path").unwrap_or_default(),
            token: header(&headers, &guard.config().token_header),
            authorization: header(&headers, "authorization"),
            content_encoding: header(&headers, "content-encoding"),
            has_body: !end_of_stream,
        };
        shared.refresh();
        let now_ms = u64::try_from(clock.as_millis()).unwrap_or(u64::MAX);
        let flow = shared.with_enforcement(now_ms, |in_force| {
            self.exchange
                .on_request_headers(guard, &head, in_force, &mut envoy)
        });
        action(flow)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mut envoy = Envoy(&self.shared);
        action(self.exchange.on_request_body(
            &self.shared.guard,
            body_size,
            end_of_stream,
            &mut envoy,
        ))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let mut envoy = Envoy(&self.shared);
        action(
            self.exchange
                .on_request_trailers(&self.shared.guard, &mut envoy),
        )
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        for (name, value) in self.exchange.stamp() {
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
        }
        let max_event_bytes = self.shared.guard.max_body_bytes();
        let (forwarded, scan) = match self.exchange.forwarded() {
            Some(forwarded) => {
                self.gating = forwarded
                    .gate
                    .take()
                    .map(|gate| Gating::new(gate, max_event_bytes));
                (true, forwarded.scan)
            }
            None => (false, None),
        };
        // The answer's head, read once for the tool gate and the scan, and only
        // when one of them looks at it.
        let reads_head = forwarded && (self.gating.is_some() || scan.is_some());
        let headers = if reads_head {
            header_map(MapType::HttpResponseHeaders)
        } else {
            Vec::new()
        };
        let mut hold = false;
        // Headers with no body to follow are never held: nothing would release them.
        let can_hold = self.shared.guard.config().hold_request_headers && !end_of_stream;
        if let Some(gating) = self.gating.as_mut() {
            match gating.on_headers(&headers, can_hold) {
                Ok(held) => hold = held,
                Err(what) => return self.answer_failed(what),
            }
        }
        let Some(route) = scan else {
            return if hold {
                Action::Pause
            } else {
                Action::Continue
            };
        };
        if header(&headers, "content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
        {
            return self.answer_failed("got a compressed response it cannot scan");
        }
        let content_type = header(&headers, "content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        // Any text is judged: JSON and other text whole (a body that is not JSON is
        // redacted as text), SSE as a stream; audio, images and other bytes pass.
        self.response = if content_type.contains("text/event-stream") {
            ResponseScan::Stream(Box::new(self.shared.guard.response_stream(route)))
        } else if content_type.is_empty()
            || content_type.contains("json")
            || content_type.starts_with("text/")
        {
            ResponseScan::Whole
        } else {
            ResponseScan::Off
        };
        // Redaction changes the length; Envoy frames the body instead.
        if !matches!(self.response, ResponseScan::Off)
            && hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-length", None)
                .is_err()
        {
            return self.answer_failed("cannot remove the response content-length");
        }
        // A JSON answer that may be refused keeps its headers until it is judged,
        // when Envoy lets them wait, so the refusal gets its own status.
        self.response_held = can_hold
            && self.shared.guard.blocks_answers()
            && matches!(self.response, ResponseScan::Whole);
        if hold || self.response_held {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.answer_bytes = body_size;
        self.answer_body(body_size, end_of_stream, false)
    }

    /// With trailers the body callbacks may never see `end_of_stream`: a held
    /// answer is judged here, never passed unchecked.
    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.answer_body(self.answer_bytes, true, true)
    }
}

impl Request {
    /// Judges the answer's body. `body_size` bytes are in the buffer; at the
    /// trailers (`at_trailers`), a held whole answer is in it, but a stream's
    /// chunk has already gone on and nothing can be added to it any more.
    fn answer_body(&mut self, body_size: usize, end_of_stream: bool, at_trailers: bool) -> Action {
        let body_size = match self.gating.as_mut() {
            Some(gating) => match gating.on_body(
                &self.shared,
                self.exchange.request_id(),
                self.exchange.agent(),
                body_size,
                end_of_stream,
                at_trailers,
            ) {
                Step::Continue(size) => size,
                Step::Hold => return Action::Pause,
                Step::Fail(what) => return self.answer_failed(what),
            },
            None => body_size,
        };
        match &mut self.response {
            ResponseScan::Off => Action::Continue,
            ResponseScan::Whole => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let Ok(body) = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
                else {
                    return self.answer_failed("cannot read the response body");
                };
                let new_body = match self.shared.guard.judge_answer(&body.unwrap_or_default()) {
                    AnswerDecision::Clean => return Action::Continue,
                    AnswerDecision::Redacted(redacted) => redacted,
                    AnswerDecision::Blocked(refusal) => {
                        self.answer_stopped(refusal.code);
                        answer_refusal(&refusal, self.exchange.request_id(), self.response_held)
                    }
                };
                if hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &new_body)
                    .is_err()
                {
                    return self.answer_failed("cannot rewrite the response body");
                }
                Action::Continue
            }
            ResponseScan::Stream(rewriter) if at_trailers => {
                if rewriter.finish().is_empty() {
                    Action::Continue
                } else {
                    self.answer_failed("cannot add the held end of a stream before its trailers")
                }
            }
            ResponseScan::Stream(rewriter) => {
                let chunk = match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
                {
                    Ok(chunk) => chunk.unwrap_or_default(),
                    Err(_) => return self.answer_failed("cannot read the response stream"),
                };
                let mut out = rewriter.push(&chunk);
                if end_of_stream {
                    out.extend(rewriter.finish());
                }
                let stopped = rewriter.stopped();
                if out != chunk
                    && hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &out)
                        .is_err()
                {
                    return self.answer_failed("cannot rewrite the response stream");
                }
                if let Some(stop) = stopped {
                    if stop == StreamStop::Unreadable {
                        log::error!(
                            "kalguard: {} an event of the answer is longer than max_body_bytes; the stream was cut",
                            self.exchange.request_id()
                        );
                    }
                    self.answer_stopped(stop.code());
                }
                Action::Continue
            }
        }
    }

    /// Counts and audits an answer refused or cut short (once).
    fn answer_stopped(&mut self, code: ErrorCode) {
        if std::mem::replace(&mut self.answer_stopped, true) {
            return;
        }
        let check = self.exchange.check().unwrap_or(EventType::PromptCheck);
        let event = report_answer(
            &self.shared,
            check,
            self.exchange.request_id(),
            self.exchange.agent(),
            code,
        );
        self.shared.emit(&event);
    }
}
