//! The guarded path: identify → authorise → inspect → forward or refuse.
//!
//! Plain Rust with no host calls. A request's [`Exchange`](crate::exchange)
//! hands the guard its head ([`Head`]) with the state in force ([`Standing`])
//! and, when asked, its whole body; the guard answers with what to do, and the
//! exchange turns that into effects. Everything a request is judged by is in
//! [`Guard`] (prepared once per configuration) and [`Standing`] (the
//! credentials, tier and policy in force).

use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

use crate::answer::mcp;
use crate::answer::redact::{self, DeltaRedactor, SseRewriter};
use crate::answer::tool_calls::{Gated, ToolCallGate, ToolCallMode};
use crate::capability::Capability;
use crate::compat;
use crate::config::{Config, ConfigError};
use crate::firewall::{CacheCounts, Firewall, ResponseMode, Scope, StreamRedactor, TextForm, Tier};
use crate::mediation::{self, Approved};
use crate::policy::Policy;
use crate::refusal::{ErrorCode, Refusal};
use crate::request::{self, InspectedRequest};
use crate::route::{self, CheckEndpoint, Format, Route};
use crate::screen::{self, Risk, Screened};
use crate::spotlight::{self, MarkerKey, Spotlit};
use crate::stream;
use crate::taint;
use crate::token::{refused_subject, Agent, TokenError, VerifiedTokens, Verifier};

/// Identity material in force: where tokens are verified against.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Credentials {
    /// Accepted signing secrets, current first (a rotated-out one may follow).
    pub signing_secrets: Vec<String>,
    /// Lowercase hex SHA-256 of revoked tokens.
    pub revoked_token_hashes: HashSet<String>,
    /// Token used when a request carries none (one sidecar per agent).
    pub default_agent_token: Option<String>,
    /// Tokens verified against these credentials (see [`VerifiedTokens`]).
    pub verified: VerifiedTokens,
}

/// A request's head, as far as the guard needs it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Head<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The configured token header's value.
    pub token: Option<&'a str>,
    /// `authorization`, read only on the check API (elsewhere it is the
    /// provider's key and none of our business).
    pub authorization: Option<&'a str>,
    /// Every `content-encoding` line, joined as one list.
    pub content_encoding: Option<&'a str>,
    /// Whether a body follows the headers.
    pub has_body: bool,
}

/// A local answer that is not a refusal (health, an allowed check).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u32,
    pub body: Vec<u8>,
}

/// What to do once the head is read.
#[derive(Debug, PartialEq)]
pub enum HeadDecision {
    Respond(Reply),
    Refuse(Refusal),
    /// Forward without reading the body.
    Forward(Agent),
    /// Buffer the body (up to [`Guard::max_body_bytes`]) and call [`Guard::judge_body`].
    Inspect(Pending),
}

/// The state a request is judged against: what the plugin configuration
/// says, unless the snapshot in force replaces it.
#[derive(Clone, Copy, Debug)]
pub struct Standing<'a> {
    pub credentials: &'a Credentials,
    /// The plan's firewall tier; `None` keeps the configuration's.
    pub tier: Option<Tier>,
    /// The policy in force (the snapshot's, else the configuration's).
    pub policy: Option<&'a Arc<Policy>>,
    /// Unix seconds (token expiry, policy `timeWindow`).
    pub now: i64,
}

/// A request waiting for its body.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub route: Route,
    pub agent: Agent,
    /// The firewall tier for this request: the plugin configuration's, unless
    /// the plan in force selects one ([`Standing::tier`]).
    pub tier: Tier,
    /// The policy in force ([`Standing::policy`]).
    pub policy: Option<Arc<Policy>>,
    /// The request path without its query string (policy `routes`).
    pub path: String,
    /// Unix seconds when the head was judged (policy `timeWindow`).
    pub now: i64,
    /// The `require_approval` verdicts a person approved for this request
    /// (none until the exchange asked).
    pub approved: Vec<Approved>,
}

/// What to do once the body is read.
#[derive(Debug, PartialEq)]
pub enum BodyDecision {
    /// Forward; `Some` replaces the body (its length changes with it).
    Forward(Option<Vec<u8>>),
    Respond(Reply),
    Refuse(Refusal),
}

/// What the answer to a forwarded request is checked for: the tools it names.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseGate {
    /// An LLM answer: tool calls outside the gate's allowed set.
    ToolCalls(ToolCallGate),
    /// An MCP answer: every tool list in it (whatever the request) reduced to
    /// what the agent may call. With the IDs of the body's requests, each answered with a JSON-RPC error
    /// if the answer is cut.
    ToolList(Pending, Vec<Value>),
}

/// A body's decision, and what its answer must be checked for.
#[derive(Debug, PartialEq)]
pub struct Judged {
    pub decision: BodyDecision,
    /// Set only when the decision forwards the request.
    pub gate: Option<ResponseGate>,
    /// What spotlighting did to the forwarded body, if anything.
    pub spotlit: Option<Spotlit>,
    /// What the firewall found, when it read the body.
    pub risk: Option<Risk>,
    /// The model the request names, when its body was read.
    pub model: Option<String>,
    /// What taint escalation needs of the body (`crate::taint`).
    pub taint: taint::Seen,
    /// The policy rule that allowed the request, when one did.
    pub rule_id: mediation::Allowed,
}

/// Whether `pending`'s agent may call `tool`: capabilities, then the policy.
pub fn may_call(pending: &Pending, tool: &str) -> bool {
    pending.agent.capabilities.allows_tool(tool) && mediate(pending).may_call(tool)
}

/// A streamed response's rewriter. It owns what it needs (a handle on the
/// firewall's scanner), so it can live across a response's callbacks.
pub type ResponseStream = SseRewriter<
    StreamRedactor,
    Box<dyn FnMut(TextForm) -> StreamRedactor>,
    Box<dyn FnMut(&str, TextForm) -> Option<String>>,
>;

impl DeltaRedactor for StreamRedactor {
    fn push(&mut self, text: &str) -> String {
        self.push_text(text)
    }

    fn finish(&mut self) -> String {
        StreamRedactor::finish(self)
    }

    fn found_any(&self) -> bool {
        StreamRedactor::found_any(self)
    }
}

/// What becomes of a whole (non-streaming) LLM answer.
#[derive(Debug, PartialEq)]
pub enum AnswerDecision {
    /// Nothing found: it goes on as it came.
    Clean,
    /// PII and secrets replaced by placeholders (`response_mode` redact).
    Redacted(Vec<u8>),
    /// PII or secrets found with `response_mode` block: the refusal replaces it.
    Blocked(Refusal),
}

/// The guard for one plugin configuration, its firewall compiled once.
#[derive(Debug)]
pub struct Guard {
    config: Config,
    firewall: Firewall,
    /// Spotlighting's per-VM secret for its per-request markers.
    markers: MarkerKey,
}

impl Guard {
    pub fn new(config: Config) -> Result<Guard, ConfigError> {
        let firewall = Firewall::new(&config.firewall).map_err(|e| ConfigError {
            field: format!("firewall.{}", e.field),
            reason: e.to_string(),
        })?;
        Ok(Guard {
            config,
            firewall,
            markers: MarkerKey::random(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the firewall's verdict cache counted so far, for Envoy stats.
    pub fn verdict_cache_counts(&self) -> CacheCounts {
        self.firewall.cache_counts()
    }

    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// The refusal for a body that outgrew the limit.
    pub fn body_too_large(&self) -> Refusal {
        Refusal::new(
            ErrorCode::BodyTooLarge,
            format!(
                "request body exceeds the {} byte limit of this route",
                self.config.max_body_bytes
            ),
        )
    }

    /// What kind of traffic `head` is.
    pub fn classify(&self, head: &Head) -> Route {
        route::classify(&self.config, head.method, head.path, head.has_body)
    }

    /// Judges a request's head once its route is known (see [`Guard::classify`]):
    /// identify → meter → authorise → inspect, against the state in force.
    /// `meter` is the plan gate (agent limit, daily checks): it runs once per
    /// check, right after the agent is identified, so a check refused later
    /// (capability, firewall) still counts, as it does in the Cloud.
    pub fn on_head(
        &self,
        route: Route,
        head: &Head,
        standing: &Standing,
        request_id: &str,
        meter: &mut dyn FnMut(&Agent) -> Result<(), Refusal>,
    ) -> HeadDecision {
        let now = standing.now;
        let token = match route {
            Route::CheckApi(CheckEndpoint::Health) => {
                return HeadDecision::Respond(Reply {
                    status: 200,
                    body: compat::health(request_id),
                })
            }
            Route::CheckApi(CheckEndpoint::Unknown) => {
                return HeadDecision::Refuse(Refusal::new(ErrorCode::NotFound, "Not Found"))
            }
            Route::Deny => {
                return HeadDecision::Refuse(Refusal::new(
                    ErrorCode::PolicyDeny,
                    format!(
                        "{} {} is not allowed by the KalGuard configuration",
                        head.method,
                        head.path.split('?').next().unwrap_or_default()
                    ),
                ))
            }
            Route::Malformed(malformed) => {
                return HeadDecision::Refuse(Refusal::new(
                    ErrorCode::BadRequest,
                    malformed.message(),
                ))
            }
            Route::CheckApi(_) => head.token.or_else(|| head.authorization.and_then(bearer)),
            Route::Inspect(_) | Route::McpSession | Route::Pass => head.token,
        };
        let agent = match self.identify(token, standing.credentials, now) {
            Ok(agent) => agent,
            Err(refusal) => return HeadDecision::Refuse(refusal),
        };
        let forwarded_unread = matches!(route, Route::Pass | Route::McpSession);
        if !forwarded_unread {
            if let Err(refusal) = meter(&agent) {
                return HeadDecision::Refuse(refusal);
            }
        }
        let required = match route {
            Route::Inspect(Format::Mcp) | Route::Pass => None,
            Route::CheckApi(CheckEndpoint::ToolCheck) | Route::McpSession => {
                (!agent.capabilities.allows_some_tool()).then_some("tool:execute")
            }
            _ => (!agent.capabilities.has(&Capability::PromptSend)).then_some("prompt:send"),
        };
        if let Some(capability) = required {
            return HeadDecision::Refuse(capability_denied(&agent, capability));
        }
        if forwarded_unread {
            return HeadDecision::Forward(agent);
        }
        if let Some(encoding) = head.content_encoding.filter(|e| crate::route::coded(e)) {
            return HeadDecision::Refuse(Refusal::new(
                ErrorCode::BadRequest,
                format!("content-encoding `{encoding}` cannot be inspected; send the request body uncompressed"),
            ));
        }
        if !head.has_body {
            return HeadDecision::Refuse(Refusal::new(
                ErrorCode::BadRequest,
                "request body is required on this route",
            ));
        }
        HeadDecision::Inspect(Pending {
            route,
            agent,
            tier: standing.tier.unwrap_or(self.config.firewall.tier),
            policy: standing.policy.cloned(),
            path: route::policy_path(head.path),
            now,
            approved: Vec::new(),
        })
    }

    /// Judges the whole body of a request [`Guard::on_head`] asked to inspect,
    /// and what its answer must be checked for when it goes ahead.
    pub fn judge_body(&self, pending: &Pending, body: &[u8], request_id: &str) -> Judged {
        if body.len() > self.config.max_body_bytes {
            return Judged {
                decision: BodyDecision::Refuse(self.body_too_large()),
                gate: None,
                spotlit: None,
                risk: None,
                model: None,
                taint: taint::Seen::default(),
                rule_id: None,
            };
        }
        let agent = &pending.agent;
        let mut gate = None;
        let mut spotlit = None;
        let mut risk = None;
        let mut model = None;
        let mut seen = taint::Seen::default();
        let mut rule_id = None;
        let decision = match pending.route {
            Route::Inspect(format) => match request::parse(format, body) {
                Ok(request) => {
                    model.clone_from(&request.model);
                    gate = self.response_gate(pending, &request);
                    // The tools called, or run by the provider for the request.
                    let mcp_tools = request.mcp_calls.iter().filter_map(|c| c.tool.clone());
                    seen.calls = mcp_tools
                        .chain(request.provider_tools.iter().cloned())
                        .collect();
                    let (decision, marked, found, rule) =
                        self.screen_request(pending, request, request_id, &mut seen);
                    rule_id = rule;
                    spotlit = marked;
                    risk = found;
                    decision
                }
                Err(bad) => BodyDecision::Refuse(Refusal::new(ErrorCode::BadRequest, bad.0)),
            },
            Route::CheckApi(CheckEndpoint::PromptCheck) => {
                match compat::prompt_check_segments(body) {
                    Ok(segments) => match mediate(pending).prompt(None) {
                        Ok(rule) => {
                            rule_id = rule;
                            let (decision, found) =
                                self.prompt_check(pending, body, &segments, request_id);
                            risk = Some(found);
                            decision
                        }
                        Err(refusal) => BodyDecision::Refuse(refusal),
                    },
                    Err(bad) => BodyDecision::Refuse(Refusal::new(ErrorCode::BadRequest, bad.0)),
                }
            }
            Route::CheckApi(CheckEndpoint::ToolCheck) => match compat::parse_tool_check(body) {
                Ok(check) if agent.capabilities.allows_tool(&check.tool) => {
                    seen.calls.push(check.tool.clone());
                    match mediate(pending).tool_check(&self.firewall, &check.tool, &check.arguments)
                    {
                        Ok(rule) => {
                            rule_id = rule;
                            BodyDecision::Respond(Reply {
                                status: 200,
                                body: compat::allowed(request_id, json!({"allowed": true})),
                            })
                        }
                        Err(refusal) => BodyDecision::Refuse(refusal),
                    }
                }
                Ok(check) => BodyDecision::Refuse(capability_denied(
                    agent,
                    &format!("tool:execute:{}", check.tool),
                )),
                Err(bad) => BodyDecision::Refuse(Refusal::new(ErrorCode::BadRequest, bad.0)),
            },
            // `on_head` never asks for these bodies; refusing keeps the path closed.
            Route::CheckApi(_)
            | Route::McpSession
            | Route::Pass
            | Route::Deny
            | Route::Malformed(_) => BodyDecision::Refuse(Refusal::new(
                ErrorCode::KalguardUnavailable,
                "internal error: unexpected body inspection",
            )),
        };
        if !matches!(decision, BodyDecision::Forward(_)) {
            gate = None;
        }
        if matches!(decision, BodyDecision::Refuse(_)) {
            rule_id = None;
        }
        Judged {
            decision,
            gate,
            spotlit,
            risk,
            model,
            taint: seen,
            rule_id,
        }
    }

    /// Whether answers on `pending`'s route may need a [`ResponseGate`]: the
    /// exchange then asks upstream for an uncompressed answer, which it can read.
    pub fn may_gate_responses(&self, pending: &Pending) -> bool {
        match pending.route {
            Route::Inspect(Format::Mcp) => {
                self.config.mcp_filter_tools_list || self.config.mcp_pinning
            }
            Route::Inspect(_) => self.config.response_tool_calls != ToolCallMode::Off,
            _ => false,
        }
    }

    /// What the answer to `request` must be checked for: an MCP answer's
    /// tool lists (in the answer to any request) reduced to the callable
    /// tools; an LLM answer's tool calls, when the
    /// request offers the model a tool the agent may not call.
    fn response_gate(&self, pending: &Pending, request: &InspectedRequest) -> Option<ResponseGate> {
        if !self.may_gate_responses(pending) {
            return None;
        }
        if request.format == Format::Mcp {
            // Whatever the request: a server may put a list in any answer.
            let ids = request.mcp_calls.iter().filter_map(|c| c.id.clone());
            return self
                .config
                .mcp_filter_tools_list
                .then(|| ResponseGate::ToolList(pending.clone(), ids.collect()));
        }
        let mut allowed: HashSet<String> = request
            .declared_tools
            .iter()
            .filter(|tool| may_call(pending, tool))
            .cloned()
            .collect();
        // Stored state may offer tools the request does not show: unless the
        // agent may call every tool, its answer may call only the tools the
        // agent is granted by name.
        let hidden =
            request.stored_tools && !pending.agent.capabilities.has(&Capability::ToolExecute);
        if hidden {
            let named = pending.agent.capabilities.named_tools();
            allowed.extend(
                named
                    .filter(|tool| may_call(pending, tool))
                    .map(str::to_owned),
            );
        }
        let denied = hidden
            || request
                .declared_tools
                .iter()
                .any(|tool| !allowed.contains(tool));
        denied.then(|| {
            ResponseGate::ToolCalls(
                ToolCallGate::new(allowed, self.config.response_tool_calls)
                    .dialect(stream::dialect(request.format)),
            )
        })
    }

    /// Gates a whole answer; `None` when it passes unchanged.
    pub fn gate_answer(&self, gate: &ResponseGate, body: &[u8]) -> Option<Gated> {
        let gated = match gate {
            ResponseGate::ToolCalls(calls) => calls.body(body),
            ResponseGate::ToolList(pending, _) => Gated {
                body: mcp::filter_tool_list_body(body, &|tool| may_call(pending, tool)),
                ..Gated::default()
            },
        };
        (gated.refused || gated.body.is_some()).then_some(gated)
    }

    /// Whether an injection split across tool results that other turns
    /// separate is flagged when its halves are read together
    /// ([`taint::split_results`]). The pairs go through the verdict cache, so
    /// a conversation's older pairs cost nothing when it is sent again.
    fn flags_split_results(
        &self,
        pending: &Pending,
        segments: &[request::Segment],
    ) -> Option<taint::Flagged> {
        let pairs = taint::split_results(segments);
        if pairs.is_empty() {
            return None;
        }
        let source = crate::firewall::Source::ToolResult;
        let texts: Vec<_> = pairs
            .iter()
            .map(|text| crate::firewall::Segment::new(source, text))
            .collect();
        let scope = crate::firewall::Scope(pending.agent.id.as_str());
        let verdict = self
            .firewall
            .inspect_remembering(&texts, pending.tier, scope);
        (verdict.score >= self.config.firewall.sanitize_threshold).then(|| taint::Flagged {
            source: taint::SourceKind::ToolResult,
            categories: verdict.category_names(),
        })
    }

    /// Whether `text`, a tool's result on its way to the agent (an MCP
    /// answer), carries what the firewall flags: the taint it sets
    /// (`crate::taint`).
    pub fn flags_tool_result(&self, text: &str, tier: Tier) -> Option<taint::Flagged> {
        let segment = [crate::firewall::Segment::new(
            crate::firewall::Source::ToolResult,
            text,
        )];
        let verdict = self.firewall.inspect(&segment, tier);
        (verdict.score >= self.config.firewall.sanitize_threshold).then(|| taint::Flagged {
            source: taint::SourceKind::ToolResult,
            categories: verdict.category_names(),
        })
    }

    /// A server's ask of the agent's model or user (`params` of a
    /// `sampling/createMessage` or `elicitation/create`, see
    /// [`mcp::asks_the_agent`]), screened as a tool's result is: dropped
    /// when the firewall, reading its strings as tool-sourced text at
    /// `tier`, would sanitise or block them (the words would reach the
    /// model as a prompt: no marker can fence a system prompt); else its
    /// PII and secrets redacted in place.
    pub fn screen_ask(&self, tier: Tier, params: &mut Value) -> mcp::Ask {
        if self
            .flags_tool_text(tier, &mcp::ask_texts(params))
            .is_some()
        {
            return mcp::Ask::Drop;
        }
        let mut session = self.firewall.redaction_session();
        if redact::redact_strings(params, &mut |text, form| session.redact_as(text, form)) {
            mcp::Ask::Changed
        } else {
            mcp::Ask::Pass
        }
    }

    /// Whether `pending`'s MCP tools are pinned (`mcp_pinning`).
    pub fn pins_tools(&self, pending: &Pending) -> bool {
        self.config.mcp_pinning && pending.route == Route::Inspect(Format::Mcp)
    }

    /// Why the firewall reads `text` (a tool's definition, a server's
    /// instructions) as hidden directives, at `tier`: the categories that
    /// scored when it would sanitise or block it; `None` when it is clean.
    pub fn flags_tool_text(&self, tier: Tier, text: &str) -> Option<String> {
        let segment = crate::firewall::Segment::new(crate::firewall::Source::ToolResult, text);
        let verdict = self.firewall.inspect(&[segment], tier);
        (verdict.action != crate::firewall::Action::Allow)
            .then(|| verdict.category_names().join(", "))
    }

    /// Whether responses on `route` are scanned for PII and secrets: the
    /// advanced tier with `response_mode` redact or block, on LLM routes.
    pub fn scans_responses(&self, pending: &Pending) -> bool {
        let llm = matches!(
            pending.route,
            Route::Inspect(
                Format::OpenAiChat
                    | Format::OpenAiResponses
                    | Format::OpenAiCompletions
                    | Format::AnthropicMessages
            )
        );
        llm && pending.tier == Tier::Advanced
            && self.config.firewall.response_mode != ResponseMode::Off
    }

    /// Whether an answer with PII or a secret is refused rather than redacted.
    pub fn blocks_answers(&self) -> bool {
        self.config.firewall.response_mode == ResponseMode::Block
    }

    /// Judges a whole response body: PII and secrets are replaced, or in `block`
    /// mode the answer is refused, naming the kinds found (never the values).
    pub fn judge_answer(&self, body: &[u8]) -> AnswerDecision {
        let mut session = self.firewall.redaction_session();
        let Some(redacted) =
            redact::redact_body(body, &mut |text, form| session.redact_as(text, form))
        else {
            return AnswerDecision::Clean;
        };
        // (The body also changes when only its logprobs went.)
        if !self.blocks_answers() || session.counts().is_empty() {
            return AnswerDecision::Redacted(redacted);
        }
        let kinds: Vec<&str> = session.counts().keys().map(|kind| kind.label()).collect();
        AnswerDecision::Blocked(
            Refusal::new(
                ErrorCode::PromptBlocked,
                format!("{} ({})", stream::ANSWER_BLOCKED, kinds.join(", ")),
            )
            .with_data(json!({"answer": true, "found": kinds})),
        )
    }

    /// A rewriter for one streamed (SSE) response to a request on `route`; it holds
    /// at most `max_body_bytes` of one event.
    pub fn response_stream(&self, route: Route) -> ResponseStream {
        let mut session = self.firewall.redaction_session();
        let rewriter: ResponseStream = SseRewriter::new(
            Box::new(self.firewall.stream_redactors()),
            Box::new(move |text: &str, form| session.redact_as(text, form)),
        );
        let dialect = match route {
            Route::Inspect(format) => stream::dialect(format),
            _ => None,
        };
        rewriter.blocking(self.blocks_answers()).dialect(dialect)
    }

    /// Screens `segments` of a request by `agent`, whose earlier texts the
    /// firewall may remember.
    fn screen(&self, tier: Tier, segments: &[request::Segment], agent: &Agent) -> Screened {
        let scope = Scope(agent.id.as_str());
        screen::screen(&self.firewall, tier, segments, scope)
    }

    /// Authorises a parsed request, lets the firewall judge and rewrite it,
    /// then spotlights its tool results (after redaction, which reads them as
    /// they came).
    fn screen_request(
        &self,
        pending: &Pending,
        mut request: InspectedRequest,
        request_id: &str,
        seen: &mut taint::Seen,
    ) -> (
        BodyDecision,
        Option<Spotlit>,
        Option<Risk>,
        mediation::Allowed,
    ) {
        let rule = match authorise(&pending.agent, &request)
            .and_then(|()| mediate(pending).request(&self.firewall, &request))
        {
            Ok(rule) => rule,
            Err(refusal) => return (BodyDecision::Refuse(refusal), None, None, None),
        };
        let screened = self.screen(pending.tier, &request.segments, &pending.agent);
        let risk = Some(screened.risk_facts());
        if self.config.taint.enabled {
            // Read before any rewrite: a blocked body taints as a passed one does.
            let verdict = &screened.verdict;
            seen.flagged = taint::flagged(
                &request.segments,
                &verdict.segment_scores,
                &request.body,
                self.config.firewall.sanitize_threshold,
                &verdict.category_names(),
            );
            if seen.flagged.is_none() {
                seen.flagged = self.flags_split_results(pending, &request.segments);
            }
        }
        if let Some(refusal) = screened.refusal() {
            return (BodyDecision::Refuse(refusal), None, risk, None);
        }
        let mut body =
            screen::rewrite_body(&mut request.body, &request.segments, &screened.rewrites);
        let spotlit = self.spotlights(pending).then(|| {
            let marker = self.markers.marker(request_id);
            let config = &self.config.spotlight;
            let policy = mediate(pending);
            let mode_of = |tool: Option<&str>| {
                policy
                    .spotlight(tool)
                    .unwrap_or_else(|| config.mode_for(tool))
            };
            spotlight::apply(request.format, &mut request.body, &marker, &mode_of)
        });
        let spotlit = spotlit.flatten();
        if spotlit.is_some() {
            body = serde_json::to_vec(&request.body).ok();
        }
        (BodyDecision::Forward(body), spotlit, risk, rule)
    }

    /// Whether `pending`'s tool results may be spotlighted: the configuration
    /// or a rule of the policy in force turns it on.
    fn spotlights(&self, pending: &Pending) -> bool {
        self.config.spotlight.is_on() || pending.policy.as_ref().is_some_and(|p| p.spotlights())
    }

    /// `POST /v1/prompt/check`: the firewall's verdict in the original sidecar's shape.
    fn prompt_check(
        &self,
        pending: &Pending,
        body: &[u8],
        segments: &[request::Segment],
        request_id: &str,
    ) -> (BodyDecision, Risk) {
        let screened = self.screen(pending.tier, segments, &pending.agent);
        let risk = screened.risk_facts();
        if let Some(refusal) = screened.refusal() {
            return (BodyDecision::Refuse(refusal), risk);
        }
        let mut data = screened.risk();
        data["allowed"] = json!(true);
        if !screened.rewrites.is_empty() {
            data["sanitizedMessages"] =
                compat::sanitized_messages(body, segments, &screened.rewrites);
        }
        let reply = Reply {
            status: 200,
            body: compat::allowed(request_id, data),
        };
        (BodyDecision::Respond(reply), risk)
    }

    /// The agent `token` (or the default agent token) names under
    /// `credentials` at `now`: a held request's token checked again when a
    /// person approves it.
    pub fn identify_again(
        &self,
        token: Option<&str>,
        credentials: &Credentials,
        now: i64,
    ) -> Result<Agent, Refusal> {
        self.identify(token, credentials, now)
    }

    fn identify(
        &self,
        token: Option<&str>,
        credentials: &Credentials,
        now: i64,
    ) -> Result<Agent, Refusal> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .or(credentials.default_agent_token.as_deref())
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::AuthFailed,
                    format!(
                        "missing agent token: send it in the `{}` header",
                        self.config.token_header
                    ),
                )
            })?;
        let is_revoked = |hash: &str| credentials.revoked_token_hashes.contains(hash);
        let verifier = Verifier {
            secrets: &credentials.signing_secrets,
            is_revoked: &is_revoked,
        };
        verifier
            .verify_cached(token, now, &credentials.verified)
            .map_err(|error| {
                let (code, authentic) = match error {
                    TokenError::Invalid(_) => (ErrorCode::AuthFailed, false),
                    TokenError::Expired => (ErrorCode::TokenExpired, true),
                    TokenError::Revoked => (ErrorCode::TokenRevoked, true),
                    TokenError::NoSecret => (ErrorCode::KalguardUnavailable, false),
                };
                let mut refusal = Refusal::new(code, error.to_string());
                if authentic {
                    refusal.agent_id = refused_subject(token).map(|id| id.to_string());
                }
                refusal
            })
    }
}

/// Capability checks that need the body: the model asked for, the MCP tools
/// called, and the tools the provider would run for the agent (`mcp:<label>`,
/// `web_fetch`).
fn authorise(agent: &Agent, request: &InspectedRequest) -> Result<(), Refusal> {
    if request.format != Format::Mcp && !agent.capabilities.allows_model(request.model.as_deref()) {
        let model = request.model.as_deref().unwrap_or("(none)");
        return Err(capability_denied(agent, &format!("model:{model}")));
    }
    let called = request
        .mcp_calls
        .iter()
        .filter_map(|call| call.tool.as_ref());
    for tool in called.chain(&request.provider_tools) {
        if !agent.capabilities.allows_tool(tool) {
            return Err(capability_denied(agent, &format!("tool:execute:{tool}")));
        }
    }
    Ok(())
}

fn mediate(pending: &Pending) -> mediation::Context<'_> {
    mediation::Context {
        policy: pending.policy.as_deref(),
        agent: &pending.agent,
        path: &pending.path,
        now: pending.now,
        approved: &pending.approved,
    }
}

/// (Names its verified agent for the audit trail, and for the mode the
/// request is judged in: `crate::observe`.)
fn capability_denied(agent: &Agent, capability: &str) -> Refusal {
    let mut refusal = Refusal::new(
        ErrorCode::CapabilityDenied,
        format!("agent {} lacks capability {capability}", agent.id),
    )
    .with_data(json!({"agentId": agent.id.as_str(), "requiredCapability": capability}));
    refusal.agent_id = Some(agent.id.to_string());
    refusal
}

fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[cfg(test)]
mod tests;
