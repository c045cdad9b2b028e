//! One HTTP request through the filter: read the head, let the guard decide,
//! buffer and judge the body when asked, then forward or answer locally; on
//! the way back, scan the LLM's answer when the guard says so.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::rc::Rc;

use super::gate::{Gating, Step};
use super::{answer_refusal, header, header_map, host_time, report_answer, Shared, SharedData};
use crate::event::{Event, EventType};
use crate::guard::{
    AnswerDecision, BodyDecision, Head, HeadDecision, Pending, Reply, ResponseStream,
};
use crate::quota::{Gate, Usage};
use crate::refusal::{ErrorCode, Refusal};
use crate::response::StreamStop;
use crate::route::Route;
use crate::token::Agent;

pub(super) struct Request {
    shared: Rc<Shared>,
    request_id: String,
    /// Set while the body is being buffered for inspection.
    pending: Option<Pending>,
    /// Body bytes buffered so far (for a body that ends in trailers).
    buffered: usize,
    /// Whether the upstream's answer is scanned (decided with the route).
    scan_response: bool,
    /// The inspected route (the dialect of a stream's error event).
    route: Option<Route>,
    /// Set once the request went upstream.
    forwarded: bool,
    response: ResponseScan,
    /// The answer's headers wait for its body (a JSON answer that may be refused).
    response_held: bool,
    /// Bytes of the answer's body in the buffer at the last body callback (for an
    /// answer that ends in trailers).
    answer_bytes: usize,
    /// The answer was refused or cut short (reported once).
    answer_stopped: bool,
    /// The agent, once identified (for the decision event).
    agent: Option<String>,
    /// What kind of check this request is, once known; `None` for requests
    /// that are not checks (health, pass routes), which emit no event.
    check: Option<EventType>,
    /// The tools the answer names, checked on the way back.
    gating: Option<Gating>,
    /// The plan headers every response carries in Cloud mode.
    plan_headers: Option<PlanHeaders>,
    /// When the request's head arrived, unix milliseconds: its events' time (one
    /// clock read per request).
    started_ms: u64,
}

/// `x-kalguard-plan`, `x-kalguard-usage-remaining` and `x-ratelimit-reset`.
struct PlanHeaders {
    plan: String,
    remaining: String,
    reset: String,
}

impl PlanHeaders {
    fn new(plan: &str, usage: Usage) -> PlanHeaders {
        PlanHeaders {
            plan: plan.to_owned(),
            remaining: usage.remaining_header(),
            reset: usage.reset_at.to_string(),
        }
    }

    fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            ("x-kalguard-plan", self.plan.as_str()),
            ("x-kalguard-usage-remaining", self.remaining.as_str()),
            ("x-ratelimit-reset", self.reset.as_str()),
        ]
    }
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

impl Request {
    pub(super) fn new(shared: Rc<Shared>) -> Request {
        Request {
            request_id: shared.request_ids.next(),
            shared,
            pending: None,
            buffered: 0,
            scan_response: false,
            route: None,
            forwarded: false,
            response: ResponseScan::Off,
            response_held: false,
            answer_bytes: 0,
            answer_stopped: false,
            agent: None,
            check: Some(EventType::PromptCheck),
            plan_headers: None,
            gating: None,
            started_ms: 0,
        }
    }

    /// Headers of an answer the filter gives itself.
    fn local_headers(&self) -> Vec<(&str, &str)> {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-kalguard-request-id", self.request_id.as_str()),
        ];
        if let Some(plan) = &self.plan_headers {
            headers.extend(plan.pairs());
        }
        headers
    }

    /// Reports the decision to the control plane (no prompt text, no token).
    fn emit(&self, refused: Option<ErrorCode>) {
        let Some(check) = self.check else {
            return;
        };
        let mut event = Event::new(check, &self.request_id, self.started_ms);
        event.agent_id = self.agent.clone();
        if let Some(code) = refused {
            event = event.refused(code);
        }
        self.shared.emit(&event);
    }

    fn refuse(&self, refusal: &Refusal) -> Action {
        self.shared.metrics.refused(refusal.code);
        self.emit(Some(refusal.code));
        self.send_refusal(refusal)
    }

    /// Answers with `refusal` in place of the upstream (once the upstream's head
    /// has left, Envoy resets the stream instead).
    fn send_refusal(&self, refusal: &Refusal) -> Action {
        let retry_after = refusal.retry_after.map(|s| s.to_string());
        let reset = refusal.rate_limit_reset.map(|s| s.to_string());
        let mut headers = self.local_headers();
        if let Some(seconds) = retry_after.as_deref() {
            headers.push(("retry-after", seconds));
        }
        if let Some(reset) = reset.as_deref() {
            headers.retain(|(name, _)| *name != "x-ratelimit-reset");
            headers.push(("x-ratelimit-reset", reset));
        }
        if let Err(status) = hostcalls::send_http_response(
            refusal.status(),
            headers,
            Some(&refusal.body(&self.request_id)),
        ) {
            log::error!(
                "kalguard: {} cannot send the refusal ({status:?}); resetting the request",
                self.request_id
            );
            let _ = hostcalls::reset_http_request();
        }
        Action::Pause
    }

    fn reply(&self, reply: &Reply) -> Action {
        self.shared.metrics.allowed();
        self.emit(None);
        let headers = self.local_headers();
        if hostcalls::send_http_response(reply.status, headers, Some(&reply.body)).is_err() {
            let _ = hostcalls::reset_http_request();
        }
        Action::Pause
    }

    /// Fail closed on the way back: the answer is refused, counted and audited as
    /// the answer's (its request was allowed and counted already).
    fn answer_failed(&mut self, what: &str) -> Action {
        log::error!(
            "kalguard: {} {what}; refusing the answer (fail closed)",
            self.request_id
        );
        self.answer_stopped(ErrorCode::KalguardUnavailable);
        self.send_refusal(&Refusal::new(
            ErrorCode::KalguardUnavailable,
            "KalGuard could not judge this answer",
        ))
    }

    /// Fail closed: an internal error refuses the request, with no detail leaked.
    fn unavailable(&self, what: &str) -> Action {
        log::error!(
            "kalguard: {} {what}; refusing (fail closed)",
            self.request_id
        );
        self.refuse(&Refusal::new(
            ErrorCode::KalguardUnavailable,
            "KalGuard could not judge this request",
        ))
    }

    fn forward(&mut self) -> Action {
        self.shared.metrics.allowed();
        self.emit(None);
        self.forwarded = true;
        Action::Continue
    }

    fn strip_request_header(&self, name: &str) -> bool {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None).is_ok()
    }

    /// Judges the buffered body once it is complete.
    fn finish_body(&mut self, body_size: usize) -> Action {
        let Some(pending) = self.pending.take() else {
            return Action::Continue;
        };
        let body = match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            Ok(body) => body.unwrap_or_default(),
            Err(_) => return self.unavailable("cannot read the request body"),
        };
        let judged = self
            .shared
            .guard
            .judge_body(&pending, &body, &self.request_id);
        let max_event_bytes = self.shared.guard.max_body_bytes();
        self.gating = judged.gate.map(|gate| Gating::new(gate, max_event_bytes));
        if self.gating.is_some()
            && self.shared.guard.config().hold_request_headers
            && !self.strip_request_header("accept-encoding")
        {
            return self.unavailable("cannot remove accept-encoding");
        }
        match judged.decision {
            BodyDecision::Forward(None) => self.forward(),
            BodyDecision::Forward(Some(rewritten)) => {
                if hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &rewritten)
                    .is_err()
                {
                    return self.unavailable("cannot rewrite the request body");
                }
                // Held headers have not left yet: give them the new length.
                // (Otherwise content-length was removed with the headers.)
                if self.shared.guard.config().hold_request_headers {
                    let length = rewritten.len().to_string();
                    if hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "content-length",
                        Some(&length),
                    )
                    .is_err()
                    {
                        return self.unavailable("cannot set the rewritten body's content-length");
                    }
                }
                self.forward()
            }
            BodyDecision::Respond(reply) => self.reply(&reply),
            BodyDecision::Refuse(refusal) => self.refuse(&refusal),
        }
    }
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(clock) = host_time() else {
            return self.unavailable("cannot read the host clock");
        };
        let now = i64::try_from(clock.as_secs()).unwrap_or(i64::MAX);
        self.started_ms = u64::try_from(clock.as_millis()).unwrap_or(u64::MAX);
        // Envoy's own refusals of this request (envoy.yaml's local_reply_config,
        // e.g. a 503 from the router) carry the same request ID as the filter's.
        // Without it they still carry one of Envoy's: nothing to fail on.
        let _ =
            hostcalls::set_property(vec![REQUEST_ID_PROPERTY], Some(self.request_id.as_bytes()));
        let shared = Rc::clone(&self.shared);
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
        let route = guard.classify(&head);
        self.check = EventType::of(route);
        let request_id = &self.request_id;
        let (decision, tier, plan_headers, identified) =
            shared.with_enforcement(|credentials, tier, plan| {
                let gate = Gate {
                    limits: &plan.limits,
                    cloud: plan.cloud.as_ref(),
                    org_agents: plan.org_agents,
                    now,
                };
                let mut usage = None;
                let mut identified = None;
                let mut meter = |agent: &Agent| {
                    identified = Some(agent.id.to_string());
                    let mut known = shared.known_agents.borrow_mut();
                    gate.admit_agent(&SharedData, &mut known, agent.id.as_str())?;
                    usage = Some(gate.meter(&SharedData)?);
                    Ok(())
                };
                let decision =
                    guard.on_route(route, &head, credentials, now, request_id, &mut meter);
                let headers = plan.name.as_deref().map(|name| {
                    PlanHeaders::new(name, usage.unwrap_or_else(|| gate.peek(&SharedData)))
                });
                (decision, tier, headers, identified)
            });
        self.plan_headers = plan_headers;
        // A refusal after identification (plan gate, capability) names its agent.
        self.agent = identified;
        match decision {
            HeadDecision::Respond(reply) => self.reply(&reply),
            HeadDecision::Refuse(refusal) => {
                if self.agent.is_none() {
                    self.agent.clone_from(&refusal.agent_id);
                }
                self.refuse(&refusal)
            }
            HeadDecision::Forward(agent) => {
                self.agent = Some(agent.id.to_string());
                if !self.strip_request_header(&guard.config().token_header) {
                    return self.unavailable("cannot remove the agent token header");
                }
                self.forward()
            }
            HeadDecision::Inspect(mut pending) => {
                // `self.agent` is set: every inspected route passes the plan gate.
                if let Some(tier) = tier {
                    pending.tier = tier;
                }
                pending.policy = self.shared.policy();
                if !self.strip_request_header(&guard.config().token_header) {
                    return self.unavailable("cannot remove the agent token header");
                }
                self.scan_response = guard.scans_responses(&pending);
                self.route = Some(pending.route);
                // A compressed answer could not be scanned: ask for a plain one.
                // (Held headers wait for the body, which tells if the answer's
                // tool calls need checking.)
                let hold = guard.config().hold_request_headers;
                if (self.scan_response || (!hold && guard.may_gate_responses(&pending)))
                    && !self.strip_request_header("accept-encoding")
                {
                    return self.unavailable("cannot remove accept-encoding");
                }
                self.pending = Some(pending);
                if guard.config().hold_request_headers {
                    return Action::Pause;
                }
                // The headers go ahead now; the body is still held until judged,
                // so upstream never gets a complete refused request. The firewall
                // may rewrite the body, so its length goes too: Envoy frames it
                // (chunked) with whatever length it ends up having.
                if !self.strip_request_header("content-length") {
                    return self.unavailable("cannot remove content-length");
                }
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.pending.is_none() {
            return Action::Continue;
        }
        self.buffered = body_size;
        if body_size > self.shared.guard.max_body_bytes() {
            self.pending = None;
            return self.refuse(&self.shared.guard.body_too_large());
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.finish_body(body_size)
    }

    /// With HTTP/2 trailers the body may never see `end_of_stream`: the trailers
    /// end it, and the body is judged here rather than passed unchecked.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.finish_body(self.buffered)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let _ = hostcalls::set_map_value(
            MapType::HttpResponseHeaders,
            "x-kalguard-request-id",
            Some(&self.request_id),
        );
        if let Some(plan) = &self.plan_headers {
            for (name, value) in plan.pairs() {
                let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
            }
        }
        // The answer's head, read once for the tool gate and the scan, and only
        // when one of them looks at it.
        let reads_head = self.forwarded && (self.gating.is_some() || self.scan_response);
        let headers = if reads_head {
            header_map(MapType::HttpResponseHeaders)
        } else {
            Vec::new()
        };
        let mut hold = false;
        // Headers with no body to follow are never held: nothing would release them.
        let can_hold = self.shared.guard.config().hold_request_headers && !end_of_stream;
        if let Some(gating) = self.gating.as_mut().filter(|_| self.forwarded) {
            match gating.on_headers(&headers, can_hold) {
                Ok(held) => hold = held,
                Err(what) => return self.answer_failed(what),
            }
        }
        if !(self.scan_response && self.forwarded) {
            return if hold {
                Action::Pause
            } else {
                Action::Continue
            };
        }
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
            let route = self.route.unwrap_or(Route::Pass);
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
                &self.request_id,
                self.agent.as_deref(),
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
                        answer_refusal(&refusal, &self.request_id, self.response_held)
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
                            self.request_id
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
        let check = self.check.unwrap_or(EventType::PromptCheck);
        let event = report_answer(
            &self.shared,
            check,
            &self.request_id,
            self.agent.as_deref(),
            code,
        );
        self.shared.emit(&event);
    }
}
