//! The request path as it runs in Envoy: an [`Exchange`] driven callback by
//! callback, with Envoy played by [`Mock`]. This module is the harness (a
//! [`Trip`] per request); `request` and `answer` hold the tests of each side.

mod answer;
mod approval;
mod observe;
mod pins;
mod request;
mod taint;

use serde_json::{json, Value};
use std::sync::Arc;

use super::mock::{Mock, SharedData};
use super::*;
use crate::config::Config;
use crate::event::{Decision, ANSWER};
use crate::firewall::{ResponseMode, Tier};
use crate::quota::Limits;
use crate::state::State;
use crate::token::{mint, token_hash, Claims};

const NOW: i64 = 1_800_000_000;
const SECRET: &str = "guard-test-secret";

fn token(capabilities: &[&str]) -> String {
    mint(
        &Claims {
            sub: "agent-7".into(),
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            exp: NOW + 3600,
            iat: Some(NOW),
            nbf: None,
            iss: Some("kalguard".into()),
            metadata: None,
        },
        SECRET,
    )
}

fn credentials() -> Credentials {
    Credentials {
        signing_secrets: vec![SECRET.into()],
        ..Credentials::default()
    }
}

fn guard() -> Guard {
    Guard::new(Config::default()).unwrap()
}

fn configured(configure: impl FnOnce(&mut Config)) -> Guard {
    let mut config = Config::default();
    configure(&mut config);
    Guard::new(config).unwrap()
}

/// A request's head as the tests write it (the headers Envoy would hand over).
fn head<'a>(method: &'a str, path: &'a str, token: Option<&'a str>) -> Head<'a> {
    Head {
        method,
        path,
        token,
        has_body: ["POST", "PUT", "PATCH"].contains(&method),
        ..Head::default()
    }
}

/// What the agent or the upstream sees after a callback.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The filter answered itself (health, an allowed check).
    Answered(u32, Value),
    /// The filter refused, with this code.
    Refused(ErrorCode),
    /// The request went upstream; `Some` is the body it now has.
    Forwarded(Option<Vec<u8>>),
    /// The body is awaited.
    Inspecting,
    /// The request waits for a person's approval.
    Held,
}

fn refusal_code(seen: Seen) -> ErrorCode {
    match seen {
        Seen::Refused(code) => code,
        other => unreachable!("expected a refusal, got {other:?}"),
    }
}

/// One request through an [`Exchange`], callback by callback.
struct Trip<'g> {
    guard: &'g Guard,
    credentials: Credentials,
    /// The snapshot adopted, if any.
    state: Option<State>,
    now: i64,
    store: SharedData,
    known: KnownAgents,
    exchange: Exchange,
    host: Mock,
    /// Effects already looked at.
    seen: usize,
    /// What reached the agent of the answer's body.
    delivered: Vec<u8>,
    /// The last answer callback let its buffer go.
    answer_sent: bool,
    /// What the last request callback told Envoy.
    flow: Option<Flow>,
}

impl<'g> Trip<'g> {
    fn new(guard: &'g Guard) -> Trip<'g> {
        Trip {
            guard,
            credentials: credentials(),
            state: None,
            now: NOW,
            store: SharedData::default(),
            known: KnownAgents::default(),
            exchange: Exchange::new("req_test".into()),
            host: Mock {
                now_ms: 1_800_000_500_000,
                ..Mock::default()
            },
            seen: 0,
            delivered: Vec::new(),
            answer_sent: true,
            flow: None,
        }
    }

    /// The next request on the same VM (its quota counters and known agents).
    fn next(&mut self) {
        self.exchange = Exchange::new("req_next".into());
        self.host = Mock {
            now_ms: self.host.now_ms,
            ..Mock::default()
        };
        self.seen = 0;
        self.delivered.clear();
        self.answer_sent = true;
    }

    /// Sends `head` (with `more` headers) at `self.now`.
    fn head_with(&mut self, head: &Head, more: &[(&str, &str)]) -> Seen {
        let mut headers = vec![(":method", head.method), (":path", head.path)];
        let token_header = self.guard.config().token_header.as_str();
        headers.extend(head.token.map(|t| (token_header, t)));
        headers.extend(head.authorization.map(|a| ("authorization", a)));
        headers.extend(head.content_encoding.map(|e| ("content-encoding", e)));
        headers.extend(more.iter().copied());
        self.host.request_headers = headers
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let in_force = InForce::new(
            self.guard.config(),
            self.state.as_ref(),
            &self.credentials,
            &self.store,
            &mut self.known,
            u64::try_from(self.now).unwrap() * 1000,
        );
        let flow =
            self.exchange
                .on_request_headers(self.guard, !head.has_body, in_force, &mut self.host);
        self.seen(flow)
    }

    fn head(&mut self, head: &Head) -> Seen {
        self.head_with(head, &[])
    }

    /// The whole body in one callback.
    fn body(&mut self, body: &[u8]) -> Seen {
        self.host.request_body = body.to_vec();
        let flow = self
            .exchange
            .on_request_body(self.guard, body.len(), true, &mut self.host);
        self.seen(flow)
    }

    /// A chunk of the body; `end` ends it.
    fn chunk(&mut self, chunk: &[u8], end: bool) -> Seen {
        self.host.request_body.extend_from_slice(chunk);
        let len = self.host.request_body.len();
        let flow = self
            .exchange
            .on_request_body(self.guard, len, end, &mut self.host);
        self.seen(flow)
    }

    fn request_trailers(&mut self) -> Seen {
        let flow = self
            .exchange
            .on_request_trailers(self.guard, &mut self.host);
        self.seen(flow)
    }

    /// The upstream's answer head; `end` when no body follows.
    fn answer_head(&mut self, headers: &[(&str, &str)], end: bool) -> Flow {
        self.host.answer_headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        self.exchange
            .on_response_headers(self.guard, end, &mut self.host)
    }

    /// A chunk of the answer's body: added to what Envoy buffers while the
    /// exchange holds, and what the agent gets when it goes on.
    fn answer_chunk(&mut self, chunk: &[u8], end: bool) -> Flow {
        if self.answer_sent {
            self.host.answer_body.clear();
        }
        self.host.answer_body.extend_from_slice(chunk);
        let len = self.host.answer_body.len();
        let flow = self
            .exchange
            .on_response_body(self.guard, len, end, &mut self.host);
        self.answer_went(flow)
    }

    fn answer_trailers(&mut self) -> Flow {
        let flow = self
            .exchange
            .on_response_trailers(self.guard, &mut self.host);
        self.answer_went(flow)
    }

    fn answer_went(&mut self, flow: Flow) -> Flow {
        self.answer_sent = flow == Flow::Continue && self.host.replies().is_empty();
        if self.answer_sent {
            self.delivered.extend_from_slice(&self.host.answer_body);
        }
        flow
    }

    /// What the effects since the last look show.
    fn seen(&mut self, flow: Flow) -> Seen {
        self.flow = Some(flow);
        let new = &self.host.effects[self.seen..];
        self.seen = self.host.effects.len();
        let refused = new.iter().find_map(|e| match e {
            Effect::Tally(Tally::Refused(code)) => Some(*code),
            _ => None,
        });
        let reply = new.iter().find_map(|e| match e {
            Effect::Reply(reply) => Some(reply),
            _ => None,
        });
        let rewritten = new.iter().find_map(|e| match e {
            Effect::ReplaceBody {
                side: Side::Request,
                body,
                ..
            } => Some(body.clone()),
            _ => None,
        });
        match (refused, reply) {
            (Some(code), Some(_)) => return Seen::Refused(code),
            (None, Some(reply)) => {
                let body = serde_json::from_slice(&reply.body).unwrap();
                return Seen::Answered(reply.status, body);
            }
            (refused, None) => assert_eq!(refused, None, "a refusal is always answered"),
        }
        if self.exchange.pending.is_some() {
            return Seen::Inspecting;
        }
        if self.exchange.held.is_some() || self.exchange.awaits_pins() {
            assert_eq!(flow, Flow::Pause);
            return Seen::Held;
        }
        assert_eq!(flow, Flow::Continue);
        assert!(self.exchange.answer.is_some(), "forwarded");
        Seen::Forwarded(rewritten)
    }

    /// The request being inspected.
    fn pending(&self) -> &Pending {
        self.exchange.pending.as_ref().unwrap()
    }

    /// The agent the last event names.
    fn event_agent(&self) -> Option<String> {
        self.host.events().last().unwrap().agent_id.clone()
    }
}

/// Sends `head` at `now` with `credentials`; the trip goes on from there.
fn trip<'g>(g: &'g Guard, head: &Head, credentials: &Credentials, now: i64) -> (Seen, Trip<'g>) {
    let mut trip = Trip::new(g);
    trip.credentials = credentials.clone();
    trip.now = now;
    let seen = trip.head(head);
    (seen, trip)
}

fn on_head(g: &Guard, head: &Head, credentials: &Credentials, now: i64) -> Seen {
    trip(g, head, credentials, now).0
}

/// A Cloud snapshot's state on plan `plan`, signing with the test secret.
fn cloud(plan: &str, adjust: impl FnOnce(&mut State)) -> State {
    let mut state = State {
        version: 1,
        mode: crate::state::Mode::Cloud,
        plan: Some(plan.into()),
        credentials: credentials(),
        tier: None,
        limits: Limits::default(),
        cloud_usage: None,
        org_agents: None,
        policy: None,
        policy_error: None,
        custom_policy: true,
    };
    adjust(&mut state);
    state
}
