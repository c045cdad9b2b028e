//! One HTTP request through the filter: read the head, let the guard decide,
//! buffer and judge the body when asked, then forward or answer locally.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::rc::Rc;

use super::{now_unix, Shared};
use crate::guard::{BodyDecision, Head, HeadDecision, Pending, Reply};
use crate::refusal::{ErrorCode, Refusal};

pub(super) struct Request {
    shared: Rc<Shared>,
    request_id: String,
    /// Set while the body is being buffered for inspection.
    pending: Option<Pending>,
    /// Body bytes buffered so far (for a body that ends in trailers).
    buffered: usize,
}

impl Request {
    pub(super) fn new(shared: Rc<Shared>) -> Request {
        let request_id = shared.request_ids.next();
        Request {
            shared,
            request_id,
            pending: None,
            buffered: 0,
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn refuse(&self, refusal: &Refusal) -> Action {
        self.shared.metrics.refused(refusal.code);
        let retry_after = refusal.retry_after.map(|s| s.to_string());
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-kalguard-request-id", self.request_id.as_str()),
        ];
        if let Some(seconds) = retry_after.as_deref() {
            headers.push(("retry-after", seconds));
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
        let headers = vec![
            ("content-type", "application/json"),
            ("x-kalguard-request-id", self.request_id.as_str()),
        ];
        if hostcalls::send_http_response(reply.status, headers, Some(&reply.body)).is_err() {
            let _ = hostcalls::reset_http_request();
        }
        Action::Pause
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

    fn strip_token_header(&self) -> bool {
        let name = &self.shared.guard.config().token_header;
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
        match self.shared.guard.on_body(&pending, &body, &self.request_id) {
            BodyDecision::Forward(None) => {
                self.shared.metrics.allowed();
                Action::Continue
            }
            BodyDecision::Forward(Some(rewritten)) => {
                if !self.shared.guard.config().hold_request_headers {
                    // The headers, content-length included, already left.
                    return self.unavailable(
                        "cannot rewrite a body whose headers were sent (set hold_request_headers)",
                    );
                }
                let length = rewritten.len().to_string();
                let replaced =
                    hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &rewritten)
                        .is_ok()
                        && hostcalls::set_map_value(
                            MapType::HttpRequestHeaders,
                            "content-length",
                            Some(&length),
                        )
                        .is_ok();
                if !replaced {
                    return self.unavailable("cannot rewrite the request body");
                }
                self.shared.metrics.allowed();
                Action::Continue
            }
            BodyDecision::Respond(reply) => self.reply(&reply),
            BodyDecision::Refuse(refusal) => self.refuse(&refusal),
        }
    }
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(now) = now_unix() else {
            return self.unavailable("cannot read the host clock");
        };
        let (method, path) = (self.header(":method"), self.header(":path"));
        let token = self.header(&self.shared.guard.config().token_header);
        let authorization = self.header("authorization");
        let content_encoding = self.header("content-encoding");
        let head = Head {
            method: method.as_deref().unwrap_or_default(),
            path: path.as_deref().unwrap_or_default(),
            token: token.as_deref(),
            authorization: authorization.as_deref(),
            content_encoding: content_encoding.as_deref(),
            has_body: !end_of_stream,
        };
        let shared = Rc::clone(&self.shared);
        match shared
            .guard
            .on_head(&head, &shared.credentials, now, &self.request_id)
        {
            HeadDecision::Respond(reply) => self.reply(&reply),
            HeadDecision::Refuse(refusal) => self.refuse(&refusal),
            HeadDecision::Forward(_) => {
                if !self.strip_token_header() {
                    return self.unavailable("cannot remove the agent token header");
                }
                self.shared.metrics.allowed();
                Action::Continue
            }
            HeadDecision::Inspect(pending) => {
                if !self.strip_token_header() {
                    return self.unavailable("cannot remove the agent token header");
                }
                self.pending = Some(pending);
                // Without held headers the headers go ahead now; the body is
                // still held until judged, so upstream never gets a complete
                // refused request.
                if self.shared.guard.config().hold_request_headers {
                    Action::Pause
                } else {
                    Action::Continue
                }
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

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _ = hostcalls::set_map_value(
            MapType::HttpResponseHeaders,
            "x-kalguard-request-id",
            Some(&self.request_id),
        );
        Action::Continue
    }
}
