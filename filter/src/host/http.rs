//! One HTTP request through the filter: each callback hands Envoy's word to
//! the request's [`Exchange`] (the pure core decides) and carries out the
//! effects it returns with proxy-wasm host calls.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::rc::Rc;

use super::{header_map, host_time, now_ms, Shared};
use crate::channel::KEY_HEADER;
use crate::exchange::{Effect, Exchange, Failure, Flow, Host, Side, Tally};

pub(super) struct Request {
    shared: Rc<Shared>,
    exchange: Exchange,
}

/// Filter state key of the request ID (`wasm.kalguard_request_id` in Envoy's
/// formatters and CEL), read by envoy.yaml's local reply mapping.
const REQUEST_ID_PROPERTY: &str = "kalguard_request_id";

/// Envoy, as an [`Exchange`] sees it.
struct Envoy<'a>(&'a Shared);

fn maps(side: Side) -> (MapType, BufferType) {
    match side {
        Side::Request => (MapType::HttpRequestHeaders, BufferType::HttpRequestBody),
        Side::Answer => (MapType::HttpResponseHeaders, BufferType::HttpResponseBody),
    }
}

impl Host for Envoy<'_> {
    fn headers(&mut self, side: Side) -> Vec<(String, String)> {
        header_map(maps(side).0)
    }

    fn body(&mut self, side: Side, len: usize) -> Result<Vec<u8>, Failure> {
        hostcalls::get_buffer(maps(side).1, 0, len)
            .map(Option::unwrap_or_default)
            .map_err(|_| match side {
                Side::Request => Failure("cannot read the request body"),
                Side::Answer => Failure("cannot read the answer's body"),
            })
    }

    fn now_ms(&mut self) -> u64 {
        now_ms()
    }

    fn apply(&mut self, effect: &Effect) -> Result<(), Failure> {
        match effect {
            Effect::RemoveHeader(side, name) => hostcalls::set_map_value(maps(*side).0, name, None)
                .map_err(|_| Failure("cannot remove a header")),
            Effect::SetHeader(side, name, value) => {
                hostcalls::set_map_value(maps(*side).0, name, Some(value))
                    .map_err(|_| Failure("cannot set a header"))
            }
            Effect::ReplaceBody { side, len, body } => {
                hostcalls::set_buffer(maps(*side).1, 0, *len, body)
                    .map_err(|_| Failure("cannot rewrite a body"))
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
            Effect::AskApproval(call) => self.call_control_plane(
                crate::approval::PATH,
                &call.body,
                call.timeout_ms,
                "cannot call the control plane for an approval",
            ),
            Effect::AskPins(call) => self.call_control_plane(
                crate::pins::PATH,
                &call.body,
                call.timeout_ms,
                "cannot call the control plane for MCP tool pins",
            ),
            Effect::Taint(agent, mark) => {
                crate::taint::record(&super::SharedData, agent, mark, now_ms()).map_err(|error| {
                    log::error!(
                        "kalguard: cannot record agent {agent}'s taint in shared data ({error:?})"
                    );
                    Failure("cannot record the agent's taint")
                })
            }
            Effect::Tally(tally) => {
                match *tally {
                    Tally::Allowed => self.0.metrics.allowed(),
                    Tally::Refused(code) => self.0.metrics.refused(code),
                    Tally::AnswerRefused(code) => self.0.metrics.answer_refused(code),
                    Tally::WouldRefuse(code) => self.0.metrics.would_refuse(code, true),
                    Tally::AnswerWouldRefuse(code) => self.0.metrics.would_refuse(code, false),
                }
                // A request's decision is where the firewall last used its cache.
                self.0
                    .metrics
                    .verdict_cache(self.0.guard.verdict_cache_counts());
                Ok(())
            }
        }
    }
}

impl Envoy<'_> {
    /// Posts `body` to `path` on the control plane's cluster (an approval
    /// request, MCP tool pins); its answer comes to this request's context
    /// ([`Request::on_http_call_response`]).
    fn call_control_plane(
        &self,
        path: &str,
        body: &[u8],
        timeout_ms: u64,
        failed: &'static str,
    ) -> Result<(), Failure> {
        let key = self
            .0
            .channel_key
            .as_ref()
            .ok_or(Failure("no channel key"))?;
        let headers = vec![
            (":method", "POST"),
            (":path", path),
            (":authority", "kalguard-control-plane"),
            (KEY_HEADER, key.header_value()),
            ("content-type", "application/json"),
        ];
        let cluster = &self.0.guard.config().control_plane_cluster;
        let timeout = std::time::Duration::from_millis(timeout_ms);
        hostcalls::dispatch_http_call(cluster, headers, Some(body), vec![], timeout)
            .map(|_| ())
            .map_err(|_| Failure(failed))
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
        }
    }
}

impl Context for Request {
    /// A request's calls are its approval requests (for the request, or for
    /// its answer in a tainted conversation) and its MCP tool pins: the
    /// answer (or its failure, with no status) goes to the exchange, and a
    /// request or answer the exchange lets go on is resumed.
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let answer = super::call_answer(body_size);
        let shared = Rc::clone(&self.shared);
        let mut envoy = Envoy(&shared);
        let key = shared.channel_key.as_ref();
        if self.exchange.awaits_pins() {
            let (flow, side) = self
                .exchange
                .on_pins(&shared.guard, &answer, key, &mut envoy);
            if flow != Flow::Continue {
                return;
            }
            let resumed = match side {
                Side::Request => hostcalls::resume_http_request(),
                Side::Answer => hostcalls::resume_http_response(),
            };
            if resumed.is_err() {
                log::error!(
                    "kalguard: {} cannot resume after its MCP tool pins; resetting it",
                    self.exchange.request_id()
                );
                let _ = hostcalls::reset_http_request();
            }
            return;
        }
        // The approval is judged by the state in force now, not the head's.
        shared.refresh();
        let now_ms = host_time().map_or(u64::MAX, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
        });
        // Asked for the answer once the request went upstream (the answer
        // to a request approved now is yet to come).
        let answering = self.exchange.answering();
        let flow = shared.with_enforcement(now_ms, |in_force| {
            self.exchange
                .on_approval(&shared.guard, &answer, key, &in_force, &mut envoy)
        });
        // An answer held for approval goes on the way back; a request upstream.
        let resumed = match flow {
            Flow::Pause => Ok(()),
            Flow::Continue if answering => hostcalls::resume_http_response(),
            Flow::Continue => hostcalls::resume_http_request(),
        };
        if resumed.is_err() {
            log::error!(
                "kalguard: {} cannot resume an approved request or answer; resetting it",
                self.exchange.request_id()
            );
            let _ = hostcalls::reset_http_request();
        }
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let shared = Rc::clone(&self.shared);
        let mut envoy = Envoy(&shared);
        let Some(clock) = host_time() else {
            let failure = Failure("cannot read the host clock");
            return action(self.exchange.unavailable(&mut envoy, failure));
        };
        // Envoy's own refusals of this request (envoy.yaml's local_reply_config,
        // e.g. a 503 from the router) carry the same request ID as the filter's.
        // Without it they still carry one of Envoy's: nothing to fail on.
        let request_id = self.exchange.request_id().as_bytes();
        let _ = hostcalls::set_property(vec![REQUEST_ID_PROPERTY], Some(request_id));
        shared.refresh();
        let now_ms = u64::try_from(clock.as_millis()).unwrap_or(u64::MAX);
        action(shared.with_enforcement(now_ms, |in_force| {
            self.exchange
                .on_request_headers(&shared.guard, end_of_stream, in_force, &mut envoy)
        }))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (guard, mut envoy) = (&self.shared.guard, Envoy(&self.shared));
        let flow = self
            .exchange
            .on_request_body(guard, body_size, end_of_stream, &mut envoy);
        action(flow)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let (guard, mut envoy) = (&self.shared.guard, Envoy(&self.shared));
        action(self.exchange.on_request_trailers(guard, &mut envoy))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let (guard, mut envoy) = (&self.shared.guard, Envoy(&self.shared));
        let flow = self
            .exchange
            .on_response_headers(guard, end_of_stream, &mut envoy);
        action(flow)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (guard, mut envoy) = (&self.shared.guard, Envoy(&self.shared));
        let flow = self
            .exchange
            .on_response_body(guard, body_size, end_of_stream, &mut envoy);
        action(flow)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        let (guard, mut envoy) = (&self.shared.guard, Envoy(&self.shared));
        action(self.exchange.on_response_trailers(guard, &mut envoy))
    }
}
