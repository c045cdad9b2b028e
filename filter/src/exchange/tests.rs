//! The request path as it runs in Envoy: an [`Exchange`] driven callback by
//! callback, with Envoy played by [`Mock`].

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

#[test]
fn valid_token_on_llm_route_asks_for_the_body_then_forwards() {
    let t = token(&["prompt:send"]);
    let g = guard();
    let (seen, mut trip) = trip(
        &g,
        &head("POST", "/v1/chat/completions", Some(&t)),
        &credentials(),
        NOW,
    );
    assert_eq!(seen, Seen::Inspecting);
    assert_eq!(trip.pending().agent.id.as_str(), "agent-7");
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(trip.body(body), Seen::Forwarded(None));
}

#[test]
fn identity_failures_map_to_documented_codes() {
    let g = guard();
    let c = credentials();
    let path = "/v1/chat/completions";
    assert_eq!(
        refusal_code(on_head(&g, &head("POST", path, None), &c, NOW)),
        ErrorCode::AuthFailed
    );
    assert_eq!(
        refusal_code(on_head(&g, &head("POST", path, Some("  ")), &c, NOW)),
        ErrorCode::AuthFailed
    );
    assert_eq!(
        refusal_code(on_head(&g, &head("POST", path, Some("x.y.z")), &c, NOW)),
        ErrorCode::AuthFailed
    );
    let t = token(&["prompt:send"]);
    assert_eq!(
        refusal_code(on_head(&g, &head("POST", path, Some(&t)), &c, NOW + 7200)),
        ErrorCode::TokenExpired
    );
    let revoked = Credentials {
        revoked_token_hashes: [token_hash(&t)].into(),
        ..credentials()
    };
    assert_eq!(
        refusal_code(on_head(&g, &head("POST", path, Some(&t)), &revoked, NOW)),
        ErrorCode::TokenRevoked
    );
    // Authentic but refused tokens name their agent for the audit trail;
    // a forged one does not.
    let agent_of = |credentials: &Credentials, token: &str, now: i64| {
        let (seen, trip) = trip(&g, &head("POST", path, Some(token)), credentials, now);
        assert!(matches!(seen, Seen::Refused(_)), "{seen:?}");
        trip.event_agent()
    };
    assert_eq!(agent_of(&revoked, &t, NOW).as_deref(), Some("agent-7"));
    assert_eq!(agent_of(&c, &t, NOW + 7200).as_deref(), Some("agent-7"));
    let forged = mint(
        &Claims {
            sub: "someone-else".into(),
            capabilities: vec![],
            exp: NOW - 10,
            iat: None,
            nbf: None,
            iss: None,
            metadata: None,
        },
        "not-the-secret",
    );
    assert_eq!(agent_of(&c, &forged, NOW), None);
    assert_eq!(
        refusal_code(on_head(
            &g,
            &head("POST", path, Some(&t)),
            &Credentials::default(),
            NOW
        )),
        ErrorCode::KalguardUnavailable
    );
}

#[test]
fn default_agent_token_is_used_when_none_is_sent() {
    let c = Credentials {
        default_agent_token: Some(token(&["prompt:send"])),
        ..credentials()
    };
    let g = guard();
    let (seen, trip) = trip(&g, &head("POST", "/v1/messages", None), &c, NOW);
    assert_eq!(seen, Seen::Inspecting);
    assert_eq!(trip.pending().agent.id.as_str(), "agent-7");
}

#[test]
fn missing_capability_is_refused() {
    let t = token(&["tool:execute"]);
    let seen = on_head(
        &guard(),
        &head("POST", "/v1/chat/completions", Some(&t)),
        &credentials(),
        NOW,
    );
    assert_eq!(refusal_code(seen), ErrorCode::CapabilityDenied);
}

#[test]
fn unreadable_bodies_are_refused() {
    let t = token(&["prompt:send"]);
    let g = guard();
    let (_, mut trip) = trip(
        &g,
        &head("POST", "/v1/messages", Some(&t)),
        &credentials(),
        NOW,
    );
    assert_eq!(refusal_code(trip.body(b"{not json")), ErrorCode::BadRequest);
    let gzip = Head {
        content_encoding: Some("gzip"),
        ..head("POST", "/v1/messages", Some(&t))
    };
    assert_eq!(
        refusal_code(on_head(&g, &gzip, &credentials(), NOW)),
        ErrorCode::BadRequest
    );
    let empty = Head {
        has_body: false,
        ..head("POST", "/v1/messages", Some(&t))
    };
    assert_eq!(
        refusal_code(on_head(&g, &empty, &credentials(), NOW)),
        ErrorCode::BadRequest
    );
    let small = configured(|c| c.max_body_bytes = 8);
    let (_, mut trip) = self::trip(
        &small,
        &head("POST", "/v1/messages", Some(&t)),
        &credentials(),
        NOW,
    );
    assert_eq!(
        refusal_code(trip.body(b"0123456789")),
        ErrorCode::BodyTooLarge
    );
}

#[test]
fn check_api_takes_bearer_tokens_and_health_needs_none() {
    let g = guard();
    let c = credentials();
    assert!(matches!(
        on_head(&g, &head("GET", "/health", None), &c, NOW),
        Seen::Answered(200, _)
    ));
    assert_eq!(
        refusal_code(on_head(&g, &head("POST", "/v1/tool/nope", None), &c, NOW)),
        ErrorCode::NotFound
    );
    let auth = format!("Bearer {}", token(&["prompt:send"]));
    let h = Head {
        authorization: Some(&auth),
        ..head("POST", "/v1/prompt/check", None)
    };
    let (seen, mut trip) = trip(&g, &h, &c, NOW);
    assert_eq!(seen, Seen::Inspecting);
    let body = br#"{"messages":[{"role":"user","content":"hello"}]}"#;
    assert!(matches!(trip.body(body), Seen::Answered(200, _)));
    // On LLM routes `authorization` is the provider key, never an agent token.
    let llm = Head {
        authorization: Some(&auth),
        ..head("POST", "/v1/chat/completions", None)
    };
    assert_eq!(
        refusal_code(on_head(&g, &llm, &c, NOW)),
        ErrorCode::AuthFailed
    );
}

#[test]
fn denied_and_passed_routes() {
    let g = guard();
    let t = token(&[]);
    assert_eq!(
        refusal_code(on_head(
            &g,
            &head("GET", "/v1/models", Some(&t)),
            &credentials(),
            NOW
        )),
        ErrorCode::PolicyDeny
    );
    // MCP's session requests need a tool capability, and no body.
    assert_eq!(
        refusal_code(on_head(
            &g,
            &head("GET", "/mcp", Some(&t)),
            &credentials(),
            NOW
        )),
        ErrorCode::CapabilityDenied
    );
    let tools = token(&["tool:execute:search"]);
    for method in ["GET", "DELETE"] {
        assert!(matches!(
            on_head(&g, &head(method, "/mcp", Some(&tools)), &credentials(), NOW),
            Seen::Forwarded(_)
        ));
    }
    let with_body = Head {
        has_body: true,
        ..head("GET", "/mcp", Some(&tools))
    };
    assert_eq!(
        refusal_code(on_head(&g, &with_body, &credentials(), NOW)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        refusal_code(on_head(&g, &head("GET", "/mcp", None), &credentials(), NOW)),
        ErrorCode::AuthFailed
    );
}

#[test]
fn malformed_requests_are_refused_before_identification() {
    let g = configured(|c| {
        c.routes = vec![crate::route::RouteRule {
            path: "/v1/models*".into(),
            action: crate::route::RouteAction::Pass,
            format: None,
            methods: None,
        }]
    });
    let c = credentials();
    for (method, path) in [
        ("POST", "/v1/models/../chat/completions"),
        ("POST", "/v1/models/%2e%2e/chat/completions"),
        ("POST", "/v1/models#/../chat/completions"),
    ] {
        let refused = on_head(&g, &head(method, path, None), &c, NOW);
        assert_eq!(refusal_code(refused), ErrorCode::BadRequest, "{path}");
    }
    let t = token(&["prompt:send"]);
    let with_body = Head {
        has_body: true,
        ..head("GET", "/v1/models", Some(&t))
    };
    assert_eq!(
        refusal_code(on_head(&g, &with_body, &c, NOW)),
        ErrorCode::BadRequest
    );
    assert!(matches!(
        on_head(&g, &head("GET", "/v1/models", Some(&t)), &c, NOW),
        Seen::Forwarded(_)
    ));
    // Policy rules judge the normal form of the path.
    let (seen, trip) = trip(
        &g,
        &head("POST", "/v1/chat/completions?x=1", Some(&t)),
        &c,
        NOW,
    );
    assert_eq!(seen, Seen::Inspecting);
    assert_eq!(trip.pending().path, "/v1/chat/completions");
}

const PII_CHAT: &[u8] =
    br#"{"model":"m","messages":[{"role":"user","content":"Call me on jane@example.org please"}]}"#;

/// A chat request with a PII body, sent with `more` headers.
fn chat_with_pii<'g>(g: &'g Guard, more: &[(&str, &str)]) -> Trip<'g> {
    let t = token(&["prompt:send"]);
    let mut trip = Trip::new(g);
    let seen = trip.head_with(&head("POST", "/v1/chat/completions", Some(&t)), more);
    assert_eq!(seen, Seen::Inspecting);
    trip
}

#[test]
fn headers_that_go_ahead_lose_the_token_and_the_length() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let length = PII_CHAT.len().to_string();
    let mut trip = chat_with_pii(
        &g,
        &[("content-length", &length), ("accept-encoding", "gzip")],
    );
    // Not held: the headers leave now, the body waits.
    assert_eq!(trip.flow, Some(Flow::Continue));
    assert_eq!(
        trip.host.removed(Side::Request),
        ["x-kalguard-token", "accept-encoding", "content-length"]
    );
    let Seen::Forwarded(Some(rewritten)) = trip.body(PII_CHAT) else {
        unreachable!("the body must be rewritten")
    };
    assert!(String::from_utf8(rewritten).unwrap().contains("[EMAIL_1]"));
    // Envoy frames the new body: no length is set on headers that left.
    assert_eq!(trip.host.header(Side::Request, "content-length"), None);
    assert_eq!(trip.host.header(Side::Request, "x-kalguard-token"), None);
}

#[test]
fn held_headers_wait_for_the_body_and_get_its_new_length() {
    let g = configured(|c| {
        c.hold_request_headers = true;
        c.firewall.tier = Tier::Advanced;
    });
    let length = PII_CHAT.len().to_string();
    let mut trip = chat_with_pii(
        &g,
        &[("content-length", &length), ("accept-encoding", "gzip")],
    );
    assert_eq!(trip.flow, Some(Flow::Pause));
    // The answer is scanned: it must come uncompressed.
    assert_eq!(
        trip.host.removed(Side::Request),
        ["x-kalguard-token", "accept-encoding"]
    );
    let Seen::Forwarded(Some(rewritten)) = trip.body(PII_CHAT) else {
        unreachable!("the body must be rewritten")
    };
    let length = rewritten.len().to_string();
    assert_eq!(
        trip.host.header(Side::Request, "content-length"),
        Some(length.as_str())
    );
    assert_eq!(trip.host.request_body, rewritten);
}

#[test]
fn held_headers_ask_for_a_plain_answer_only_when_its_tools_are_checked() {
    let g = configured(|c| c.hold_request_headers = true);
    let t = token(&["prompt:send", "tool:execute:search"]);
    let offering = |tools: &[&str]| {
        let tools: Vec<_> = tools
            .iter()
            .map(|t| json!({"type":"function","function":{"name":t}}))
            .collect();
        json!({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":tools}).to_string()
    };
    for (tools, stripped) in [(&["search"][..], false), (&["search", "rm"][..], true)] {
        let mut trip = Trip::new(&g);
        let h = head("POST", "/v1/chat/completions", Some(&t));
        trip.head_with(&h, &[("accept-encoding", "gzip")]);
        assert_eq!(trip.host.removed(Side::Request), ["x-kalguard-token"]);
        assert_eq!(trip.body(offering(tools).as_bytes()), Seen::Forwarded(None));
        let encoding = trip.host.header(Side::Request, "accept-encoding");
        assert_eq!(encoding.is_none(), stripped, "{tools:?}");
    }
}

#[test]
fn a_body_is_held_until_its_end_or_its_trailers_and_refused_once_too_large() {
    let g = configured(|c| {
        c.max_body_bytes = 90;
        c.firewall.tier = Tier::Advanced;
    });
    let mut trip = chat_with_pii(&g, &[]);
    let (first, rest) = PII_CHAT.split_at(20);
    assert_eq!(trip.chunk(first, false), Seen::Inspecting);
    assert_eq!(trip.flow, Some(Flow::Pause));
    assert_eq!(trip.chunk(rest, false), Seen::Inspecting);
    // HTTP/2 trailers end the body: it is judged, never passed unread.
    assert!(matches!(trip.request_trailers(), Seen::Forwarded(Some(_))));

    let small = configured(|c| c.max_body_bytes = 60);
    let mut trip = chat_with_pii(&small, &[]);
    assert_eq!(trip.chunk(&PII_CHAT[..60], false), Seen::Inspecting);
    assert_eq!(
        trip.chunk(&PII_CHAT[60..], false),
        Seen::Refused(ErrorCode::BodyTooLarge)
    );
    assert_eq!(trip.host.replies()[0].status, 413);
}

#[test]
fn a_host_call_that_fails_refuses_the_request() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = Trip::new(&g);
    trip.host.fails =
        Some(|e| matches!(e, Effect::RemoveHeader(_, name) if name == "content-length"));
    let t = token(&["prompt:send"]);
    let seen = trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    assert_eq!(seen, Seen::Refused(ErrorCode::KalguardUnavailable));
    assert_eq!(trip.host.replies()[0].status, 503);
    // Nothing refused is judged later, nor forwarded.
    assert!(trip.exchange.pending.is_none() && trip.exchange.answer.is_none());
    assert_eq!(
        trip.host.tallies(),
        [Tally::Refused(ErrorCode::KalguardUnavailable)]
    );

    let mut trip = chat_with_pii(&g, &[]);
    trip.host.fails = Some(|e| matches!(e, Effect::ReplaceBody { .. }));
    let refused = trip.body(PII_CHAT);
    assert_eq!(refused, Seen::Refused(ErrorCode::KalguardUnavailable));
    assert!(trip.exchange.answer.is_none());

    let mut trip = chat_with_pii(&g, &[]);
    trip.host.unreadable = true;
    let refused = trip.body(PII_CHAT);
    assert_eq!(refused, Seen::Refused(ErrorCode::KalguardUnavailable));
}

#[test]
fn every_answer_carries_the_request_id_and_the_plan() {
    let g = guard();
    let t = token(&["prompt:send"]);
    let h = head("POST", "/v1/chat/completions", Some(&t));
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let mut trip = Trip::new(&g);
    trip.state = Some(cloud("team", |state| {
        state.limits.checks_per_day = Some(1);
    }));
    trip.head(&h);
    assert_eq!(trip.body(body), Seen::Forwarded(None));
    assert_eq!(
        trip.answer_head(&[("content-type", "application/json")], false),
        Flow::Continue
    );
    let stamped = |trip: &Trip, name| trip.host.header(Side::Answer, name).map(str::to_owned);
    assert_eq!(
        stamped(&trip, "x-kalguard-request-id").as_deref(),
        Some("req_test")
    );
    assert_eq!(stamped(&trip, "x-kalguard-plan").as_deref(), Some("team"));
    assert_eq!(
        stamped(&trip, "x-kalguard-usage-remaining").as_deref(),
        Some("0")
    );

    // The day's one check is spent: 429, with one reset time and a retry time.
    trip.next();
    assert_eq!(trip.head(&h), Seen::Refused(ErrorCode::RateLimitExceeded));
    let reply = trip.host.replies()[0].clone();
    let names: Vec<_> = reply.headers.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "x-kalguard-request-id",
            "x-kalguard-plan",
            "x-kalguard-usage-remaining",
            "retry-after",
            "x-ratelimit-reset"
        ]
    );
    assert_eq!(trip.event_agent().as_deref(), Some("agent-7"));
}

#[test]
fn checks_are_reported_once_and_other_traffic_not_at_all() {
    let g = guard();
    let t = token(&["prompt:send", "tool:execute"]);
    let mut trip = Trip::new(&g);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    trip.body(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
    let events = trip.host.events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].event_type,
            events[0].decision,
            events[0].timestamp
        ),
        (EventType::PromptCheck, Decision::Allow, 1_800_000_000_000)
    );
    assert_eq!(events[0].agent_id.as_deref(), Some("agent-7"));
    for (method, path) in [("GET", "/mcp"), ("GET", "/health")] {
        let mut trip = Trip::new(&g);
        assert!(!matches!(
            trip.head(&head(method, path, Some(&t))),
            Seen::Refused(_)
        ));
        assert!(trip.host.events().is_empty(), "{method} {path}");
        assert_eq!(trip.host.tallies(), [Tally::Allowed]);
    }
}

const PII_ANSWER: &[u8] = br#"{"choices":[{"message":{"role":"assistant","content":"Write to jane.doe@example.com today."}}]}"#;

/// A chat request forwarded (its answer scanned when `g` says so).
fn scanned<'g>(g: &'g Guard) -> Trip<'g> {
    let mut trip = Trip::new(g);
    let t = token(&["prompt:send"]);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(trip.body(body), Seen::Forwarded(None));
    trip
}

#[test]
fn a_whole_answer_is_held_to_its_end_and_redacted() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    let json = [
        ("content-type", "application/json"),
        ("content-length", "90"),
    ];
    assert_eq!(trip.answer_head(&json, false), Flow::Continue);
    assert_eq!(trip.host.removed(Side::Answer), ["content-length"]);
    let (first, rest) = PII_ANSWER.split_at(40);
    assert_eq!(trip.answer_chunk(first, false), Flow::Pause);
    assert_eq!(trip.answer_chunk(rest, true), Flow::Continue);
    let delivered = String::from_utf8(trip.delivered.clone()).unwrap();
    assert!(
        delivered.contains("[EMAIL_1]") && !delivered.contains("jane.doe"),
        "{delivered}"
    );
    // A redaction is no refusal.
    assert_eq!(trip.host.tallies(), [Tally::Allowed]);
}

#[test]
fn a_blocked_answer_gets_the_refusal_status_when_its_headers_wait() {
    for hold in [true, false] {
        let g = configured(|c| {
            c.hold_request_headers = hold;
            c.firewall.tier = Tier::Advanced;
            c.firewall.response_mode = ResponseMode::Block;
        });
        let mut trip = scanned(&g);
        let json = [(":status", "200"), ("content-type", "application/json")];
        assert_eq!(trip.answer_head(&json, false), Flow::hold_if(hold));
        assert_eq!(trip.answer_chunk(PII_ANSWER, true), Flow::Continue);
        let status = trip.host.header(Side::Answer, ":status");
        assert_eq!(status, Some(if hold { "403" } else { "200" }));
        let delivered: Value = serde_json::from_slice(&trip.delivered).unwrap();
        assert_eq!(delivered["errorCode"], "PROMPT_BLOCKED");
        let events = trip.host.events();
        let answer = events.last().unwrap();
        assert_eq!(answer.error_code, Some("PROMPT_BLOCKED"));
        assert_eq!(answer.metadata[ANSWER], 1);
        assert_eq!(answer.timestamp, 1_800_000_500_000, "the time it happened");
        assert_eq!(
            trip.host.tallies().last(),
            Some(&Tally::AnswerRefused(ErrorCode::PromptBlocked))
        );
        // Headers with no body to follow are never held.
        let mut trip = scanned(&g);
        assert_eq!(trip.answer_head(&json, true), Flow::Continue);
    }
}

#[test]
fn an_answer_that_cannot_be_read_is_refused() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    let gzip = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    assert_eq!(trip.answer_head(&gzip, false), Flow::Pause);
    let reply = &trip.host.replies()[0];
    assert_eq!(reply.status, 503);
    assert_eq!(
        trip.host.tallies().last(),
        Some(&Tally::AnswerRefused(ErrorCode::KalguardUnavailable))
    );
    // Audio, images and other bytes pass unread.
    let mut trip = scanned(&g);
    assert_eq!(
        trip.answer_head(&[("content-type", "audio/mpeg")], false),
        Flow::Continue
    );
    assert!(trip.host.removed(Side::Answer).is_empty());
    assert_eq!(
        trip.answer_chunk(b"ID3 jane.doe@example.com", true),
        Flow::Continue
    );
    assert_eq!(trip.delivered, b"ID3 jane.doe@example.com");
}

#[test]
fn a_streamed_answer_is_redacted_across_chunks() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    let sse = [("content-type", "text/event-stream")];
    assert_eq!(trip.answer_head(&sse, false), Flow::Continue);
    let event = |text: &str| {
        let delta = json!({"choices":[{"index":0,"delta":{"content":text}}]});
        format!("data: {delta}\n\n")
    };
    let stream = [
        event("mail jane.doe@"),
        event("example.com now "),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    for piece in stream.as_bytes().chunks(7) {
        assert_eq!(trip.answer_chunk(piece, false), Flow::Continue);
    }
    assert_eq!(trip.answer_chunk(b"", true), Flow::Continue);
    let delivered = String::from_utf8(trip.delivered.clone()).unwrap();
    assert!(
        !delivered.contains("jane.doe") && delivered.contains("[DONE]"),
        "{delivered}"
    );
}

#[test]
fn a_json_answer_calling_a_tool_the_agent_may_not_call_is_refused_whole() {
    let g = configured(|c| c.hold_request_headers = true);
    let t = token(&["prompt:send", "tool:execute:search"]);
    let mut trip = Trip::new(&g);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    let offer = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"search"}},{"type":"function","function":{"name":"rm"}}]});
    assert_eq!(
        trip.body(offer.to_string().as_bytes()),
        Seen::Forwarded(None)
    );
    let json = [
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", "80"),
    ];
    assert_eq!(trip.answer_head(&json, false), Flow::Pause);
    let call = json!({"choices":[{"message":{"tool_calls":[{"function":{"name":"rm","arguments":"{}"}}]}}]});
    let call = call.to_string();
    let (first, rest) = call.as_bytes().split_at(30);
    assert_eq!(trip.answer_chunk(first, false), Flow::Pause);
    assert_eq!(trip.answer_chunk(rest, true), Flow::Continue);
    assert_eq!(trip.host.header(Side::Answer, ":status"), Some("403"));
    let delivered: Value = serde_json::from_slice(&trip.delivered).unwrap();
    assert_eq!(delivered["errorCode"], "TOOL_DENIED");
    assert_eq!(delivered["data"]["deniedTools"], json!(["rm"]));
    let events = trip.host.events();
    let answer = events.last().unwrap();
    assert_eq!(answer.event_type, EventType::ToolCheck);
    assert_eq!(
        (
            answer.metadata["toolCallsDenied"].clone(),
            answer.metadata["answerRefused"].clone()
        ),
        (json!(1), json!(1))
    );
}

#[test]
fn a_stream_that_ends_in_trailers_with_an_event_held_is_refused() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    assert_eq!(
        trip.answer_head(&[("content-type", "text/event-stream")], false),
        Flow::Continue
    );
    assert_eq!(
        trip.answer_chunk(b"data: {\"choices\":[", false),
        Flow::Continue
    );
    assert_eq!(trip.answer_trailers(), Flow::Pause);
    assert_eq!(trip.host.replies()[0].status, 503);
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

#[test]
fn the_snapshot_in_force_replaces_the_vm_s_own_state() {
    let closed = |reason: &str| {
        let policy = json!({"rules":[],"defaultDecision":"deny","defaultReason":reason});
        Arc::new(crate::policy::Policy::from_value(&policy).unwrap())
    };
    let g = configured(|c| c.policy = Some(closed("configured")));
    let t = token(&["prompt:send"]);
    let h = head("POST", "/v1/chat/completions", Some(&t));
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    // No snapshot: the VM's own secret and the configured policy.
    let mut trip = Trip::new(&g);
    assert_eq!(trip.head(&h), Seen::Inspecting);
    assert_eq!(trip.pending().tier, Tier::Basic);
    assert_eq!(trip.body(body), Seen::Refused(ErrorCode::PolicyDeny));
    assert_eq!(trip.host.replies()[0].headers.len(), 2, "no plan headers");

    // A snapshot: its secret, its plan's tier and name, its policy.
    let mut trip = Trip::new(&g);
    trip.credentials = Credentials::default();
    trip.state = Some(cloud("pro", |state| {
        state.tier = Some(Tier::Advanced);
        state.policy = Some(closed("snapshot"));
    }));
    assert_eq!(trip.head(&h), Seen::Inspecting);
    assert_eq!(trip.pending().tier, Tier::Advanced);
    assert_eq!(trip.body(body), Seen::Refused(ErrorCode::PolicyDeny));
    let reply = &trip.host.replies()[0];
    let refusal: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(refusal["message"], "snapshot");
    assert!(reply.headers.contains(&("x-kalguard-plan", "pro".into())));

    // A plan without custom policy enforces none, the configured one included.
    let mut trip = Trip::new(&g);
    trip.state = Some(cloud("free", |state| state.custom_policy = false));
    assert_eq!(trip.head(&h), Seen::Inspecting);
    assert_eq!(trip.body(body), Seen::Forwarded(None));

    // The snapshot's credentials replace the VM's: another secret is refused.
    let mut trip = Trip::new(&g);
    trip.state = Some(cloud("pro", |state| {
        state.credentials.signing_secrets = vec!["another-secret".into()];
    }));
    assert_eq!(trip.head(&h), Seen::Refused(ErrorCode::AuthFailed));
}

/// A chat request offering `search` and `rm` from an agent that may call
/// only `search`, its answer both gated (calls removed) and scanned.
fn gated_and_scanned(g: &Guard) -> Trip<'_> {
    let t = token(&["prompt:send", "tool:execute:search"]);
    let mut trip = Trip::new(g);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    let offer = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"search"}},{"type":"function","function":{"name":"rm"}}]});
    assert_eq!(
        trip.body(offer.to_string().as_bytes()),
        Seen::Forwarded(None)
    );
    trip
}

#[test]
fn the_tool_gate_and_the_scan_rewrite_one_answer_in_turn() {
    let g = configured(|c| {
        c.firewall.tier = Tier::Advanced;
        c.response_tool_calls = crate::tool_gate::ToolCallMode::Remove;
    });
    // Whole: the denied call goes, then the address in the text.
    let mut trip = gated_and_scanned(&g);
    assert_eq!(
        trip.answer_head(&[("content-type", "application/json")], false),
        Flow::Continue
    );
    let answer = json!({"choices":[{"index":0,"message":{"role":"assistant",
        "content":"Mail jane.doe@example.com now.",
        "tool_calls":[{"id":"c1","type":"function","function":{"name":"rm","arguments":"{}"}}]}}]})
    .to_string();
    let (first, rest) = answer.as_bytes().split_at(50);
    assert_eq!(trip.answer_chunk(first, false), Flow::Pause);
    assert_eq!(trip.answer_chunk(rest, true), Flow::Continue);
    let delivered: Value = serde_json::from_slice(&trip.delivered).unwrap();
    let message = &delivered["choices"][0]["message"];
    assert_eq!(message["content"], "Mail [EMAIL_1] now.", "{delivered}");
    assert!(
        !trip.delivered.windows(4).any(|w| w == b"\"rm\""),
        "{delivered}"
    );

    // Streamed: each chunk passes the gate, then the scan.
    let mut trip = gated_and_scanned(&g);
    let sse = [("content-type", "text/event-stream")];
    assert_eq!(trip.answer_head(&sse, false), Flow::Continue);
    let event = |delta: Value| {
        format!(
            "data: {}\n\n",
            json!({"choices":[{"index":0,"delta":delta}]})
        )
    };
    let stream = [
        event(json!({"content":"mail jane.doe@"})),
        event(json!({"content":"example.com now "})),
        event(json!({"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"rm","arguments":""}}]})),
        event(json!({"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    for piece in stream.as_bytes().chunks(11) {
        assert_eq!(trip.answer_chunk(piece, false), Flow::Continue);
    }
    assert_eq!(trip.answer_chunk(b"", true), Flow::Continue);
    let delivered = String::from_utf8(trip.delivered.clone()).unwrap();
    assert!(!delivered.contains("jane.doe"), "{delivered}");
    assert!(!delivered.contains("\"rm\""), "{delivered}");
    assert!(delivered.ends_with("data: [DONE]\n\n"), "{delivered}");
    let denied = trip.host.events();
    assert_eq!(denied.last().unwrap().metadata["toolCallsDenied"], 1);
}
