//! One request through the filter, as a state machine with no host calls:
//! Envoy's callbacks (the request's headers, body chunks and trailers, then
//! its answer's) come in with the state in force, and out come [`Effect`]s
//! (strip or set a header, replace a body, answer locally, count, report) and
//! a [`Flow`] (hold or go on).
//!
//! The host carries effects out through the one small [`Host`] trait; a host
//! call that fails turns the request (or its answer) into a fail-closed 503
//! here, not in the glue. Every rule about what is held, stripped and answered
//! lives in this module and is tested natively against the [`Exchange`] that
//! runs in Envoy, with the [`Host`] played by a mock.

mod answer;
mod approval;
#[cfg(test)]
mod mock;
mod pins;
mod taint;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::channel::ChannelKey;
use crate::config::Config;
use crate::event::{Event, EventType};
use crate::firewall::Tier;
use crate::guard::{BodyDecision, Credentials, Guard, Head, HeadDecision, Pending, Standing};
use crate::observe;
use crate::policy::{Mode, Policy};
use crate::quota::{CloudUsage, Gate, KnownAgents, Limits, OrgAgents, Store, Usage};
use crate::refusal::{ErrorCode, Refusal};
use crate::route::Route;
use crate::screen::Risk;
use crate::spotlight::Spotlit;
use crate::state::State;
use crate::token::Agent;
use answer::Answer;
pub use approval::{ApprovalCall, CallAnswer};
use approval::{Filing, Held, Outcome};
pub use pins::PinCall;

/// Which of Envoy's header maps and body buffers an effect touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The request, before it leaves for the upstream.
    Request,
    /// The upstream's answer, before it reaches the agent.
    Answer,
}

/// One thing the host does for the exchange, in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Removes a header (every value of it).
    RemoveHeader(Side, String),
    /// Sets a header, replacing any value it had.
    SetHeader(Side, &'static str, String),
    /// Replaces the `len` bytes of body in the buffer with `body`.
    ReplaceBody {
        side: Side,
        len: usize,
        body: Vec<u8>,
    },
    /// Answers locally in place of the upstream (the host resets the stream
    /// if it cannot).
    Reply(LocalReply),
    /// Reports a decision to the control plane.
    Emit(Event),
    /// Counts a decision in Envoy's stats.
    Tally(Tally),
    /// Files an approval request with the control plane; its answer comes
    /// back through [`Exchange::on_approval`].
    AskApproval(ApprovalCall),
    /// Records a taint for the agent named, in shared data every worker
    /// reads (`crate::taint::record`).
    Taint(String, crate::taint::Mark),
    /// Files MCP tools with the control plane for pinning; its answer comes
    /// back through [`Exchange::on_pins`].
    AskPins(PinCall),
}

/// A local answer: a refusal or the filter's own reply (health, an allowed check).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// A decision, as Envoy's stats count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    /// A request forwarded or answered.
    Allowed,
    /// A request refused.
    Refused(ErrorCode),
    /// An answer refused or cut short after its request was allowed.
    AnswerRefused(ErrorCode),
    /// A request observe mode let pass that would have been refused.
    WouldRefuse(ErrorCode),
    /// An answer observe mode let pass that would have been refused or cut.
    AnswerWouldRefuse(ErrorCode),
}

/// What Envoy does with the request or answer after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

impl Flow {
    fn hold_if(hold: bool) -> Flow {
        if hold {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }
}

/// What the filter could not do (a host call that failed, an answer it cannot
/// read): the exchange fails closed, and the words go to the log only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure(pub &'static str);

/// What the exchange needs from Envoy beyond the callbacks' arguments.
pub trait Host {
    /// All of a header map in one call: each call into Envoy costs about as
    /// much as the work of a small request, so a head is read once.
    fn headers(&mut self, side: Side) -> Vec<(String, String)>;
    /// The first `len` bytes of a buffered body.
    fn body(&mut self, side: Side, len: usize) -> Result<Vec<u8>, Failure>;
    /// Unix milliseconds now (an answer's events carry the time they happen).
    fn now_ms(&mut self) -> u64;
    /// Carries out one effect.
    fn apply(&mut self, effect: &Effect) -> Result<(), Failure>;
}

/// The plan a request is held to (the snapshot's in Cloud mode, else the
/// operator's limits).
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    pub limits: Limits,
    pub cloud: Option<CloudUsage>,
    pub org_agents: Option<&'a OrgAgents>,
    /// The plan's name in Cloud mode (`x-kalguard-plan`); `None` otherwise.
    pub name: Option<&'a str>,
}

/// Everything in force when a request's head arrives.
pub struct InForce<'a> {
    pub credentials: &'a Credentials,
    /// The plan's firewall tier; `None` keeps the configuration's.
    pub tier: Option<Tier>,
    pub policy: Option<Arc<Policy>>,
    pub plan: Plan<'a>,
    /// Where the plan's counters live (Envoy's shared data).
    pub store: &'a dyn Store,
    /// The VM's cache of agents admitted today.
    pub known_agents: &'a mut KnownAgents,
    /// When the head arrived, unix milliseconds (one clock read per request).
    pub now_ms: u64,
}

impl<'a> InForce<'a> {
    /// What a request is judged by: the adopted snapshot's `state` (its
    /// credentials, plan, tier and policy), else the VM's own `local`
    /// credentials and the plugin configuration.
    pub fn new(
        config: &'a Config,
        state: Option<&'a State>,
        local: &'a Credentials,
        store: &'a dyn Store,
        known_agents: &'a mut KnownAgents,
        now_ms: u64,
    ) -> InForce<'a> {
        let Some(state) = state else {
            return InForce {
                credentials: local,
                tier: None,
                policy: config.policy.clone(),
                plan: Plan {
                    limits: config.limits,
                    cloud: None,
                    org_agents: None,
                    name: None,
                },
                store,
                known_agents,
                now_ms,
            };
        };
        InForce {
            credentials: &state.credentials,
            tier: state.tier,
            policy: state.policy_in_force(config.policy.as_ref()),
            plan: Plan {
                limits: state.limits(&config.limits),
                cloud: state.cloud_usage,
                org_agents: state.org_agents.as_ref(),
                name: state.cloud_plan(),
            },
            store,
            known_agents,
            now_ms,
        }
    }
}

/// `x-kalguard-plan`, `x-kalguard-usage-remaining` and `x-ratelimit-reset`.
#[derive(Clone, Debug, PartialEq)]
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

/// One request's state across its callbacks.
pub struct Exchange {
    request_id: String,
    /// When the head arrived, unix milliseconds: its events' time.
    started_ms: u64,
    /// Set while the body is being buffered for inspection.
    pending: Option<Pending>,
    /// Body bytes buffered so far (for a body that ends in trailers).
    buffered: usize,
    /// The inspected route, when its answer is scanned for PII and secrets.
    scan: Option<Route>,
    /// The agent, once identified (for the decision event).
    agent: Option<String>,
    /// What kind of check this request is, once known; `None` for requests
    /// that are not checks (health, pass routes), which emit no event.
    check: Option<EventType>,
    plan_headers: Option<PlanHeaders>,
    /// Set once the request went upstream: how its answer is checked.
    answer: Option<Answer>,
    /// What spotlighting did to the forwarded body (for the decision event).
    spotlit: Option<Spotlit>,
    /// The route class and what the firewall found (for the decision event).
    route: Option<&'static str>,
    risk: Option<Risk>,
    /// Set while the request waits for a person's approval.
    held: Option<Held>,
    /// The token the head carried, for checking again when a held request is
    /// approved (it may have been revoked or expired meanwhile).
    token: Option<String>,
    /// Whether refusals are carried out or only recorded (`crate::observe`),
    /// once the agent is verified.
    mode: Mode,
    /// The refusal observe mode let pass, named on the answer's head.
    would_refuse: Option<ErrorCode>,
    /// The request is the check API's, which the filter answers itself.
    check_api: bool,
    /// The model the request names and the policy rule that refused it (for
    /// the decision event).
    model: Option<String>,
    rule_id: Option<String>,
    /// The taint in force for the agent's conversation (`docs/taint.md`).
    taint: Option<crate::taint::Taint>,
    /// The conversation the agent's session header names.
    session: Option<String>,
    /// MCP tool pinning: calls held for their pins, an answer to read.
    pins: pins::Pins,
    /// The tier an MCP call's results are screened at when observe mode
    /// lets the call pass (its result still reaches the agent, and may
    /// taint it as an allowed call's would), and how many bytes of it.
    let_pass_results: Option<(Tier, usize)>,
}

impl Exchange {
    pub fn new(request_id: String) -> Exchange {
        Exchange {
            request_id,
            started_ms: 0,
            pending: None,
            buffered: 0,
            scan: None,
            agent: None,
            check: Some(EventType::PromptCheck),
            plan_headers: None,
            answer: None,
            spotlit: None,
            route: None,
            risk: None,
            held: None,
            token: None,
            mode: Mode::Enforce,
            would_refuse: None,
            check_api: false,
            model: None,
            rule_id: None,
            taint: None,
            session: None,
            pins: pins::Pins::default(),
            let_pass_results: None,
        }
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The headers every answer carries, local or upstream: the request ID,
    /// and the plan's in Cloud mode.
    fn stamp(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("x-kalguard-request-id", self.request_id.clone())];
        if let Some(plan) = &self.plan_headers {
            headers.extend(plan.pairs().map(|(name, value)| (name, value.to_owned())));
        }
        if let Some(code) = self.would_refuse {
            headers.push((observe::HEADER, code.as_str().to_owned()));
        }
        headers
    }

    /// The request's head: identify → authorise → meter, then forward, answer,
    /// or hold the body for inspection.
    pub fn on_request_headers(
        &mut self,
        guard: &Guard,
        end_of_stream: bool,
        in_force: InForce<'_>,
        host: &mut dyn Host,
    ) -> Flow {
        let headers = host.headers(Side::Request);
        let token_header = &guard.config().token_header;
        // Every line: a body coded on its second line is as unreadable as one
        // coded on its first (Envoy joins them today; the guard must not rely on it).
        let encodings = header_list(&headers, "content-encoding");
        let head = Head {
            method: header(&headers, ":method").unwrap_or_default(),
            path: header(&headers, ":path").unwrap_or_default(),
            token: header(&headers, token_header),
            authorization: header(&headers, "authorization"),
            content_encoding: encodings.as_deref(),
            has_body: !end_of_stream,
        };
        self.started_ms = in_force.now_ms;
        let now = i64::try_from(in_force.now_ms / 1000).unwrap_or(i64::MAX);
        let route = guard.classify(&head);
        self.check = EventType::of(route);
        self.check_api = matches!(route, Route::CheckApi(_));
        self.route = route.event_name();
        if matches!(route, Route::Inspect(_)) && !guard.config().control_plane_cluster.is_empty() {
            self.token = head.token.map(str::to_owned);
        }
        let plan = &in_force.plan;
        let gate = Gate {
            limits: &plan.limits,
            cloud: plan.cloud.as_ref(),
            org_agents: plan.org_agents,
            now,
        };
        let (store, known) = (in_force.store, in_force.known_agents);
        let mut usage = None;
        let mut identified = None;
        let mut meter = |agent: &Agent| {
            identified = Some(agent.id.to_string());
            gate.admit_agent(store, known, agent.id.as_str())?;
            usage = Some(gate.meter(store)?);
            Ok(())
        };
        let standing = Standing {
            credentials: in_force.credentials,
            tier: in_force.tier,
            policy: in_force.policy.as_ref(),
            now,
        };
        let decision = guard.on_head(route, &head, &standing, &self.request_id, &mut meter);
        self.plan_headers = plan
            .name
            .map(|name| PlanHeaders::new(name, usage.unwrap_or_else(|| gate.peek(store))));
        // A refusal after identification (plan gate, capability) names its agent.
        self.agent = identified;
        let verified = match &decision {
            HeadDecision::Forward(_) | HeadDecision::Respond(_) => None,
            HeadDecision::Inspect(pending) => Some(pending.agent.id.as_str()),
            // (An expired or revoked token's subject is not a verified agent.)
            HeadDecision::Refuse(refusal) if refusal.code == ErrorCode::CapabilityDenied => {
                refusal.agent_id.as_deref()
            }
            HeadDecision::Refuse(_) => None,
        };
        let policy = in_force.policy.as_deref();
        self.mode = observe::mode(guard.config().mode, policy, verified, head.path);
        // A request observe mode lets pass goes on with its answer unread, and
        // pinning must read an MCP answer: with pinning on, MCP is enforced.
        if guard.config().mcp_pinning
            && matches!(
                route,
                Route::Inspect(crate::route::Format::Mcp) | Route::McpSession
            )
        {
            self.mode = Mode::Enforce;
        }
        let strip_token = Effect::RemoveHeader(Side::Request, token_header.clone());
        match decision {
            HeadDecision::Respond(reply) => self.respond(host, reply.status, reply.body),
            HeadDecision::Refuse(refusal) => {
                if self.agent.is_none() {
                    self.agent.clone_from(&refusal.agent_id);
                }
                // Let pass, the request never takes its token upstream.
                if self.lets_pass(&refusal) {
                    if let Err(failure) = apply_all(host, [strip_token]) {
                        return self.unavailable(host, failure);
                    }
                }
                self.refuse(host, &refusal)
            }
            HeadDecision::Forward(agent) => {
                self.agent = Some(agent.id.to_string());
                // An MCP session's stream: its lists are read as the agent stands.
                let session = (route == Route::McpSession).then(|| Pending {
                    route,
                    agent,
                    tier: in_force.tier.unwrap_or(guard.config().firewall.tier),
                    policy: in_force.policy.clone(),
                    path: crate::route::policy_path(head.path),
                    now,
                    approved: Vec::new(),
                });
                let observing = self.mode == Mode::Observe;
                let (effects, answer) = pins::session(guard, session, observing, strip_token);
                self.forward(host, effects, answer)
            }
            HeadDecision::Inspect(pending) => {
                let hold = guard.config().hold_request_headers;
                let scan = guard.scans_responses(&pending);
                let mut effects = vec![strip_token];
                // A compressed answer could not be scanned: ask for a plain one.
                // (Held headers wait for the body, which tells if the answer's
                // tool calls need checking.)
                if scan || (!hold && guard.may_gate_responses(&pending)) {
                    effects.push(remove_request_header("accept-encoding"));
                }
                // Unless the headers wait for the body, they go ahead now; the
                // body is still held until judged, so upstream never gets a
                // complete refused request. The firewall may rewrite the body,
                // so its length goes too: Envoy frames it (chunked) with
                // whatever length it ends up having.
                if !hold {
                    effects.push(remove_request_header("content-length"));
                }
                self.scan = scan.then_some(pending.route);
                let agent = pending.agent.id.to_string();
                if let Err(failure) =
                    self.read_taint(guard, &headers, &agent, store, in_force.now_ms)
                {
                    return self.unavailable(host, failure);
                }
                self.pending = Some(pending);
                if let Err(failure) = apply_all(host, effects) {
                    return self.unavailable(host, failure);
                }
                Flow::hold_if(hold)
            }
        }
    }

    /// A chunk of the request body: `len` bytes are buffered so far.
    pub fn on_request_body(
        &mut self,
        guard: &Guard,
        len: usize,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Flow {
        if self.pending.is_none() {
            return Flow::Continue;
        }
        self.buffered = len;
        if len > guard.max_body_bytes() {
            self.pending = None;
            return self.refuse(host, &guard.body_too_large());
        }
        if !end_of_stream {
            return Flow::Pause;
        }
        self.finish_body(guard, len, host)
    }

    /// With HTTP/2 trailers the body may never see `end_of_stream`: the
    /// trailers end it, and the body is judged here rather than passed unchecked.
    pub fn on_request_trailers(&mut self, guard: &Guard, host: &mut dyn Host) -> Flow {
        self.finish_body(guard, self.buffered, host)
    }

    /// Fails closed: an internal error (a host call that failed, a clock that
    /// cannot be read) refuses the request, with no detail leaked.
    pub fn unavailable(&mut self, host: &mut dyn Host, failure: Failure) -> Flow {
        log::error!(
            "kalguard: {} {}; refusing (fail closed)",
            self.request_id,
            failure.0
        );
        // Nothing refused is judged later, or let pass.
        self.pending = None;
        self.held = None;
        self.would_refuse = None;
        self.refuse(
            host,
            &Refusal::new(
                ErrorCode::KalguardUnavailable,
                "KalGuard could not judge this request",
            ),
        )
    }

    /// Judges the buffered body once it is complete.
    fn finish_body(&mut self, guard: &Guard, len: usize, host: &mut dyn Host) -> Flow {
        let Some(pending) = self.pending.take() else {
            return Flow::Continue;
        };
        let body = match host.body(Side::Request, len) {
            Ok(body) => body,
            Err(failure) => return self.unavailable(host, failure),
        };
        if let Some(flow) = self.ask_pins(guard, &pending, &body, host) {
            return flow;
        }
        self.judge_body(guard, pending, &body, host, None)
    }

    /// Judges `body` and acts on the decision; a policy that asks for approval
    /// holds the request for a person when it can (`earlier`: the deadline
    /// and rounds of the approvals this request was held for already).
    fn judge_body(
        &mut self,
        guard: &Guard,
        pending: Pending,
        body: &[u8],
        host: &mut dyn Host,
        earlier: Option<(u64, u32)>,
    ) -> Flow {
        let len = body.len();
        let mut judged = guard.judge_body(&pending, body, &self.request_id);
        if let Err(failure) = self.taint_body(guard, &pending, &mut judged, host) {
            return self.unavailable(host, failure);
        }
        if judged.risk.is_some() {
            self.risk = judged.risk;
        }
        self.model = judged.model.filter(|m| crate::event::model_fits(m));
        let observing = self.mode == Mode::Observe;
        // Allowed, the event names the rule that decided: the first whose
        // verdict a person approved, else the first that allowed it.
        let allowed_by = pending
            .approved
            .iter()
            .find_map(|approved| approved.rule_id.clone())
            .or(judged.rule_id)
            .filter(|rule| crate::event::rule_id_fits(rule));
        match judged.decision {
            BodyDecision::Forward(rewritten) => {
                self.rule_id = allowed_by;
                // Held headers have not left yet: a gated answer must come
                // uncompressed, and a rewritten body needs its new length.
                // (Otherwise both were removed with the headers.)
                let hold = guard.config().hold_request_headers;
                let mut effects = Vec::new();
                let pins = self.pins.read.take();
                let unread = self.pins.unread.take();
                if (judged.gate.is_some() || pins.is_some() || unread.is_some()) && hold {
                    effects.push(remove_request_header("accept-encoding"));
                }
                // Observe mode rewrites nothing (redaction, spotlighting).
                if let Some(body) = rewritten.filter(|_| !observing) {
                    let length = body.len().to_string();
                    let side = Side::Request;
                    effects.push(Effect::ReplaceBody { side, len, body });
                    if hold {
                        effects.push(Effect::SetHeader(side, "content-length", length));
                    }
                }
                let answer = Answer::checked(self.scan, judged.gate, guard.max_body_bytes())
                    .observing(observing)
                    // (Observe mode holds no answer for a person: it reports.)
                    .tainted(self.answer_taint(&pending))
                    .screening_results(self.results_screened(guard, &pending, &judged.taint))
                    .pinned(pins, pending.tier)
                    .emptying_lists(unread, pending.tier);
                self.spotlit = judged.spotlit.filter(|_| !observing);
                self.forward(host, effects, answer)
            }
            BodyDecision::Respond(reply) => {
                self.rule_id = allowed_by;
                self.respond(host, reply.status, reply.body)
            }
            BodyDecision::Refuse(refusal) => {
                self.let_pass_results = self
                    .results_screened(guard, &pending, &judged.taint)
                    .map(|tier| (tier, guard.max_body_bytes()));
                // Only a request that goes upstream is held: the check API
                // forwards nothing an approval could be bound to.
                // Observe mode holds nothing: the would-be refusal is recorded.
                let holds = matches!(pending.route, Route::Inspect(_))
                    && !guard.config().control_plane_cluster.is_empty()
                    && !observing;
                let filing = Filing {
                    request_id: &self.request_id,
                    body,
                    now_ms: host.now_ms(),
                    timeout_ms: guard.config().approval_timeout.saturating_mul(1000),
                };
                let Some((held, call)) = holds
                    .then(|| Held::file(pending, &refusal, &filing, earlier))
                    .flatten()
                else {
                    return self.refuse(host, &refusal);
                };
                if host.apply(&Effect::AskApproval(call)).is_err() {
                    return self.refuse(host, &held.refusal("no approval could be asked for"));
                }
                self.held = Some(held);
                Flow::Pause
            }
        }
    }

    /// The control plane's answer to the approval this request is held for:
    /// `Continue` when the request goes on (the host resumes it), `Pause`
    /// when it was answered here or nothing is held.
    pub fn on_approval(
        &mut self,
        guard: &Guard,
        answer: &CallAnswer,
        key: Option<&ChannelKey>,
        in_force: &InForce<'_>,
        host: &mut dyn Host,
    ) -> Flow {
        if self.answering() {
            return self.on_answer_approval(answer, key, host);
        }
        let Some(held) = self.held.take() else {
            return Flow::Pause;
        };
        let approved = match held.read(answer, key, host.now_ms()) {
            Outcome::Approved(approved) => approved,
            Outcome::Refused(refusal) => return self.refuse(host, &refusal),
        };
        let body = match host.body(Side::Request, held.len) {
            Ok(body) => body,
            Err(failure) => return self.unavailable(host, failure),
        };
        if crate::approval::arguments_sha256(&body) != held.body_sha256 {
            return self.refuse(host, &held.refusal("the body changed while it was held"));
        }
        // What changed while a person decided holds: a token revoked or
        // expired meanwhile, another policy, another hour for `timeWindow`.
        let now = i64::try_from(in_force.now_ms / 1000).unwrap_or(i64::MAX);
        match guard.identify_again(self.token.as_deref(), in_force.credentials, now) {
            Ok(agent) if agent.id == held.pending.agent.id => {}
            Ok(_) => {
                return self.refuse(
                    host,
                    &held.refusal("the agent's token changed while the request was held"),
                )
            }
            Err(refusal) => return self.refuse(host, &refusal),
        }
        if held.pending.policy.as_deref() != in_force.policy.as_deref() {
            let changed =
                held.refusal("the policy changed while the request was held; send it again");
            return self.refuse(host, &changed);
        }
        let mut pending = held.pending;
        pending.now = now;
        pending.approved.push(approved);
        let earlier = Some((held.deadline_ms, held.rounds));
        self.judge_body(guard, pending, &body, host, earlier)
    }

    /// Sends the request upstream after `effects` are carried out; `answer`
    /// says how its answer is checked.
    fn forward(
        &mut self,
        host: &mut dyn Host,
        effects: impl IntoIterator<Item = Effect>,
        answer: Answer,
    ) -> Flow {
        if let Err(failure) = apply_all(host, effects) {
            return self.unavailable(host, failure);
        }
        self.answer = Some(answer);
        self.settle(host, Tally::Allowed, None);
        Flow::Continue
    }

    /// Answers locally with the filter's own reply.
    fn respond(&mut self, host: &mut dyn Host, status: u32, body: Vec<u8>) -> Flow {
        self.settle(host, Tally::Allowed, None);
        self.reply(host, status, Vec::new(), body)
    }

    fn refuse(&mut self, host: &mut dyn Host, refusal: &Refusal) -> Flow {
        self.rule_id = observe::rule_id(refusal);
        if self.lets_pass(refusal) {
            return self.let_pass(host, refusal.code);
        }
        self.settle(host, Tally::Refused(refusal.code), Some(refusal.code));
        let mut extra = Vec::new();
        if let Some(seconds) = refusal.retry_after {
            extra.push(("retry-after", seconds.to_string()));
        }
        if let Some(reset) = refusal.rate_limit_reset {
            extra.push(("x-ratelimit-reset", reset.to_string()));
        }
        self.reply(
            host,
            refusal.status(),
            extra,
            refusal.body(&self.request_id),
        )
    }

    /// Observe mode: what would have been refused with `code` goes on as it
    /// came (upstream, its answer unread, as enforce mode would have read
    /// none; or the check API's allow), and is counted, reported and named
    /// on the answer.
    fn let_pass(&mut self, host: &mut dyn Host, code: ErrorCode) -> Flow {
        self.pending = None;
        self.would_refuse = Some(code);
        if self.check_api {
            let data = serde_json::json!({"allowed": true, "wouldRefuse": code.as_str()});
            let body = crate::compat::allowed(&self.request_id, data);
            return self.respond(host, 200, body);
        }
        let answer = match self.let_pass_results.take() {
            Some((tier, max_bytes)) => {
                Answer::checked(None, None, max_bytes).screening_results(Some(tier))
            }
            None => Answer::unchecked(),
        };
        self.forward(host, [], answer)
    }

    /// Whether observe mode lets `refusal` pass.
    fn lets_pass(&self, refusal: &Refusal) -> bool {
        self.mode == Mode::Observe && observe::lets_pass(refusal.code)
    }

    /// Counts the decision and reports it (no prompt text, no token).
    fn settle(&self, host: &mut dyn Host, tally: Tally, refused: Option<ErrorCode>) {
        let tally = match (tally, self.would_refuse) {
            (Tally::Allowed, Some(code)) => Tally::WouldRefuse(code),
            (tally, _) => tally,
        };
        let _ = host.apply(&Effect::Tally(tally));
        let Some(check) = self.check else {
            return;
        };
        let mut event = Event::new(check, &self.request_id, self.started_ms);
        event.agent_id.clone_from(&self.agent);
        event.route = self.route.map(str::to_owned);
        event.model.clone_from(&self.model);
        event.rule_id.clone_from(&self.rule_id);
        if let Some(code) = self.would_refuse {
            event = event.would_refuse(code);
        }
        if let Some(risk) = &self.risk {
            risk.annotate(&mut event.metadata, &mut event.categories);
        }
        if let Some(code) = refused {
            event = event.refused(code);
        }
        if let Some(spotlit) = self.spotlit {
            spotlit.annotate(&mut event.metadata);
        }
        self.annotate_taint(&mut event);
        let _ = host.apply(&Effect::Emit(event));
    }

    /// A local answer with the headers every answer carries; `extra` ones
    /// replace a stamped header of the same name. Once the upstream's head
    /// has left, Envoy resets the stream instead.
    fn reply(
        &self,
        host: &mut dyn Host,
        status: u32,
        extra: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Flow {
        let mut headers = vec![("content-type", "application/json".to_owned())];
        headers.extend(
            self.stamp()
                .into_iter()
                .filter(|(name, _)| !extra.iter().any(|(e, _)| e == name)),
        );
        headers.extend(extra);
        let _ = host.apply(&Effect::Reply(LocalReply {
            status,
            headers,
            body,
        }));
        Flow::Pause
    }
}

fn remove_request_header(name: &str) -> Effect {
    Effect::RemoveHeader(Side::Request, name.to_owned())
}

/// The first value of header `name` (case-insensitive, as Envoy looks them up).
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Every line of header `name` joined as one comma-separated list (how
/// HTTP reads a list header sent on many lines), `None` when absent.
fn header_list(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut lines = headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str());
    let first = lines.next()?;
    Some(lines.fold(first.to_owned(), |list, line| list + ", " + line))
}

/// Carries out `effects` in order, stopping at the first that fails (whose
/// header, if it names one, is logged: never a body).
fn apply_all(
    host: &mut dyn Host,
    effects: impl IntoIterator<Item = Effect>,
) -> Result<(), Failure> {
    effects.into_iter().try_for_each(|effect| {
        host.apply(&effect).inspect_err(|failure| {
            let header = match &effect {
                Effect::RemoveHeader(_, name) => name.as_str(),
                Effect::SetHeader(_, name, _) => name,
                _ => return,
            };
            log::error!("kalguard: {} (header `{header}`)", failure.0);
        })
    })
}
