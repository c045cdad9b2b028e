//! Policy and tool mediation for a request whose body is known: the policy
//! judges LLM requests (`prompt:check`) and every tool call (`tool:execute`),
//! and a tool call whose arguments carry a secret is refused.
//!
//! Capabilities are checked before this (a policy never grants what a token
//! lacks); the firewall screens after it.

use serde_json::Value;

use crate::firewall::Firewall;
use crate::policy::{Action, Facts, Policy, SpotlightMode};
use crate::refusal::{ErrorCode, Refusal};
use crate::request::{InspectedRequest, Role};
use crate::route::Format;
use crate::token::Agent;

/// What an allowed judgement says: the policy rule that allowed it (or, for
/// a `require_approval` a person approved, the rule that asked), `None` when
/// no rule applied (no policy, or its default decided).
pub type Allowed = Option<String>;

/// Who asks, where and when: the facts every policy judgement shares.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub policy: Option<&'a Policy>,
    pub agent: &'a Agent,
    /// The request path without its query string.
    pub path: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// The `require_approval` verdicts a person approved for this request.
    pub approved: &'a [Approved],
}

/// A `require_approval` verdict, as a person is asked to approve it: the
/// rule, the action and the tool or model, and for an MCP `tools/call` which
/// call of the body it is. Approving one lets only that verdict pass, for
/// the one request it was asked on; any other the request meets (another
/// call of the same tool in a batch too) is asked on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approved {
    pub rule_id: Option<String>,
    pub action: String,
    pub tool: Option<String>,
    pub model: Option<String>,
    /// The position of the call among the body's `tools/call` messages
    /// (0 for the first); `None` for a verdict on the whole request.
    pub call: Option<usize>,
}

/// `refusal`, when it asks for approval, bound to the `call`-th
/// `tools/call` of the body (its data's `call`): a batch that calls a tool
/// twice asks twice, and each approval passes its own call only.
pub fn of_call(refusal: Refusal, call: usize) -> Refusal {
    if refusal.code != ErrorCode::RequireApproval {
        return refusal;
    }
    let mut data = match refusal.data {
        Some(Value::Object(data)) => data,
        _ => serde_json::Map::new(),
    };
    data.insert("call".into(), call.into());
    Refusal {
        data: Some(Value::Object(data)),
        ..refusal
    }
}

impl Approved {
    /// The verdict a `REQUIRE_APPROVAL` refusal from the policy stands for
    /// (read from the data [`Policy::refusal`] gives it); `None` for any
    /// other refusal.
    pub fn asked_by(refusal: &Refusal) -> Option<Approved> {
        if refusal.code != ErrorCode::RequireApproval {
            return None;
        }
        let data = refusal.data.as_ref()?;
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        let call = data
            .get("call")
            .and_then(Value::as_u64)
            .and_then(|call| usize::try_from(call).ok());
        Some(Approved {
            rule_id: text("ruleId"),
            action: text("action")?,
            tool: text("tool"),
            model: text("model"),
            call,
        })
    }
}

impl<'a> Context<'a> {
    fn facts(&self, action: Action) -> Facts<'a> {
        Facts {
            agent_id: self.agent.id.as_str(),
            action,
            model: None,
            route: Some(self.path),
            tool: None,
            capabilities: &self.agent.granted,
            resource: None,
            attributes: self.agent.metadata.as_ref(),
            now: self.now,
        }
    }

    /// An LLM request (or a prompt check) for `model`: allowed, by the rule
    /// that allowed it ([`Allowed`]), or refused.
    pub fn prompt(&self, model: Option<&str>) -> Result<Allowed, Refusal> {
        let Some(policy) = self.policy else {
            return Ok(None);
        };
        let facts = Facts {
            model,
            resource: model,
            ..self.facts(Action::PromptCheck)
        };
        self.judge(policy, &facts, None)
    }

    /// The policy's refusal of `facts` (of the `call`-th `tools/call` of
    /// the body, when it is one), unless it asks for an approval a person
    /// gave (then the rule that asked allowed them).
    fn judge(
        &self,
        policy: &Policy,
        facts: &Facts,
        call: Option<usize>,
    ) -> Result<Allowed, Refusal> {
        let refusal = match (policy.judge(facts), call) {
            (Ok(rule), _) => return Ok(rule.map(str::to_owned)),
            (Err(refusal), Some(call)) => of_call(refusal, call),
            (Err(refusal), None) => refusal,
        };
        match Approved::asked_by(&refusal) {
            Some(asked) if self.approved.contains(&asked) => Ok(asked.rule_id),
            _ => Err(refusal),
        }
    }

    /// A call of `tool`.
    pub fn tool(&self, tool: &str) -> Result<Allowed, Refusal> {
        self.tool_call(tool, None)
    }

    /// A call of `tool`: the `call`-th `tools/call` of an MCP body, or
    /// (`None`) one the request as a whole makes.
    fn tool_call(&self, tool: &str, call: Option<usize>) -> Result<Allowed, Refusal> {
        let Some(policy) = self.policy else {
            return Ok(None);
        };
        let facts = Facts {
            tool: Some(tool),
            resource: Some(tool),
            ..self.facts(Action::ToolExecute)
        };
        self.judge(policy, &facts, call)
    }

    /// How the policy marks the result of `tool` (`None` when the body does
    /// not name it), if the rule deciding a call of it says
    /// ([`Policy::spotlight`]).
    pub fn spotlight(&self, tool: Option<&str>) -> Option<SpotlightMode> {
        let facts = Facts {
            tool,
            resource: tool,
            ..self.facts(Action::ToolExecute)
        };
        self.policy?.spotlight(&facts)
    }

    /// Whether the policy lets the agent call `tool` (for filtering lists).
    pub fn may_call(&self, tool: &str) -> bool {
        self.tool(tool).is_ok()
    }

    /// Judges a parsed request: each MCP `tools/call` as `tool:execute` (its
    /// arguments free of secrets), any other format as `prompt:check`, and each
    /// tool the provider would run for it as `tool:execute`. Allowed, the
    /// first rule that allowed one of its judgements names it.
    pub fn request(
        &self,
        firewall: &Firewall,
        request: &InspectedRequest,
    ) -> Result<Allowed, Refusal> {
        let mut first: Allowed = None;
        if request.format != Format::Mcp {
            for tool in &request.provider_tools {
                let rule = self.tool(tool)?;
                first = first.or(rule);
            }
            let rule = self.prompt(request.model.as_deref())?;
            return Ok(first.or(rule));
        }
        let calls = request.mcp_calls.iter().filter_map(|c| c.tool.as_deref());
        for (call, tool) in calls.enumerate() {
            let rule = self.tool_call(tool, Some(call))?;
            first = first.or(rule);
        }
        let arguments = request
            .segments
            .iter()
            .filter(|s| s.role == Role::ToolCall)
            .map(|s| s.text.as_str());
        secret_refusal(firewall, arguments)?;
        Ok(first)
    }

    /// `POST /v1/tool/check`: the policy, then the arguments.
    pub fn tool_check(
        &self,
        firewall: &Firewall,
        tool: &str,
        arguments: &serde_json::Map<String, Value>,
    ) -> Result<Allowed, Refusal> {
        let rule = self.tool(tool)?;
        let mut texts = Vec::new();
        for value in arguments.values() {
            strings(value, &mut texts);
        }
        secret_refusal(firewall, texts.into_iter())?;
        Ok(rule)
    }
}

/// Refuses tool arguments that carry a credential (API key, private key, JWT,
/// a password assigned to a secret-looking name): a tool has no business
/// receiving one, and replacing it with a placeholder would break the call
/// silently. Personal data is left to the firewall's redaction.
fn secret_refusal<'t>(
    firewall: &Firewall,
    texts: impl Iterator<Item = &'t str>,
) -> Result<(), Refusal> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for text in texts {
        for finding in firewall.find_sensitive(text) {
            if finding.kind.is_secret() && !kinds.contains(&finding.kind.label()) {
                kinds.push(finding.kind.label());
            }
        }
    }
    if kinds.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        ErrorCode::ToolDenied,
        format!(
            "tool arguments carry a secret ({}); KalGuard does not pass credentials to tools",
            kinds.join(", ")
        ),
    )
    .with_data(serde_json::json!({"secretKinds": kinds})))
}

fn strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::CapabilitySet;
    use crate::firewall::FirewallConfig;
    use crate::request::parse;
    use crate::token::AgentId;
    use serde_json::json;

    fn agent(id: &str, granted: &[&str]) -> Agent {
        let granted: Vec<String> = granted.iter().map(|c| c.to_string()).collect();
        Agent {
            id: AgentId::new(id).unwrap(),
            capabilities: CapabilitySet::parse(&granted),
            expires_at: 0,
            granted,
            metadata: json!({"team": "research"}).as_object().cloned(),
        }
    }

    fn policy() -> Policy {
        Policy::from_value(&json!({"rules":[
            {"id":"no-delete","match":{"actions":["tool:execute"],"tools":["delete_*"]},"decision":"deny","reason":"no deletes"},
            {"id":"research-models","match":{"attributes":{"team":"research"},"models":["gpt-4o*"]},"decision":"allow"},
            {"id":"prompts","match":{"actions":["prompt:check"]},"decision":"deny","reason":"model not allowed"}],
            "defaultDecision":"allow"}))
        .unwrap()
    }

    fn firewall() -> Firewall {
        Firewall::new(&FirewallConfig::default()).unwrap()
    }

    #[test]
    fn llm_requests_are_judged_as_prompt_checks_with_their_model() {
        let (policy, agent) = (policy(), agent("a", &["prompt:send"]));
        let context = Context {
            policy: Some(&policy),
            agent: &agent,
            path: "/v1/chat/completions",
            now: 0,
            approved: &[],
        };
        let body = |model: &str| {
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}).to_string()
        };
        let ok = parse(Format::OpenAiChat, body("gpt-4o-mini").as_bytes()).unwrap();
        // Allowed, the rule that allowed it is named.
        assert_eq!(
            context.request(&firewall(), &ok).unwrap().as_deref(),
            Some("research-models")
        );
        let other = parse(Format::OpenAiChat, body("o1").as_bytes()).unwrap();
        let refusal = context.request(&firewall(), &other).unwrap_err();
        assert_eq!(
            (refusal.code, refusal.message.as_str()),
            (ErrorCode::PolicyDeny, "model not allowed")
        );
        let unguarded = Context {
            policy: None,
            ..context
        };
        assert_eq!(unguarded.request(&firewall(), &other), Ok(None));
    }

    #[test]
    fn every_tool_call_in_an_mcp_batch_is_judged() {
        let (policy, agent) = (policy(), agent("a", &["tool:execute"]));
        let context = Context {
            policy: Some(&policy),
            agent: &agent,
            path: "/mcp",
            now: 0,
            approved: &[],
        };
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}},
                         {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_repo","arguments":{}}}]"#;
        let refusal = context
            .request(&firewall(), &parse(Format::Mcp, batch).unwrap())
            .unwrap_err();
        assert_eq!(refusal.code, ErrorCode::ToolDenied);
        assert_eq!(refusal.data.unwrap()["tool"], "delete_repo");
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(context
            .request(&firewall(), &parse(Format::Mcp, list).unwrap())
            .is_ok());
        assert!(context.may_call("search"));
        assert!(!context.may_call("delete_branch"));
    }

    #[test]
    fn secrets_in_tool_arguments_are_refused_personal_data_is_not() {
        let agent = agent("a", &["tool:execute"]);
        let context = Context {
            policy: None,
            agent: &agent,
            path: "/mcp",
            now: 0,
            approved: &[],
        };
        let call = |args: Value| {
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"http_post","arguments":args}}).to_string()
        };
        let leak = call(json!({"headers": {"auth": "AKIAIOSFODNN7EXAMPLE"}}));
        let refusal = context
            .request(&firewall(), &parse(Format::Mcp, leak.as_bytes()).unwrap())
            .unwrap_err();
        assert_eq!(refusal.code, ErrorCode::ToolDenied);
        assert!(
            refusal.message.contains("AWS_ACCESS_KEY"),
            "{}",
            refusal.message
        );
        let mail = call(json!({"to": "jane@example.org"}));
        assert!(context
            .request(&firewall(), &parse(Format::Mcp, mail.as_bytes()).unwrap())
            .is_ok());
        let arguments =
            json!({"nested": ["sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"]});
        let refusal = context
            .tool_check(&firewall(), "http_post", arguments.as_object().unwrap())
            .unwrap_err();
        assert_eq!(refusal.code, ErrorCode::ToolDenied);
    }

    #[test]
    fn an_approval_lets_only_the_verdict_it_was_asked_for_pass() {
        let policy = Policy::from_value(&json!({"rules":[
            {"id":"pay","match":{"tools":["send_payment"]},"decision":"require_approval","reason":"payments need a human"},
            {"id":"mail","match":{"tools":["send_mail"]},"decision":"require_approval"},
            {"id":"no-delete","match":{"tools":["delete_*"]},"decision":"deny"}],
            "defaultDecision":"allow"}))
        .unwrap();
        let agent = agent("a", &["tool:execute"]);
        let ask = |approved: &[Approved], tool: &str| {
            let context = Context {
                policy: Some(&policy),
                agent: &agent,
                path: "/mcp",
                now: 0,
                approved,
            };
            context.tool(tool)
        };
        let refusal = ask(&[], "send_payment").unwrap_err();
        assert_eq!(refusal.code, ErrorCode::RequireApproval);
        let asked = Approved::asked_by(&refusal).unwrap();
        assert_eq!(
            asked,
            Approved {
                rule_id: Some("pay".into()),
                action: "tool:execute".into(),
                tool: Some("send_payment".into()),
                model: None,
                call: None,
            }
        );
        let approved = [asked];
        assert!(ask(&approved, "send_payment").is_ok());
        // Another rule's verdict, or a deny, is not approved by it.
        assert_eq!(
            ask(&approved, "send_mail").unwrap_err().code,
            ErrorCode::RequireApproval
        );
        assert_eq!(
            ask(&approved, "delete_repo").unwrap_err().code,
            ErrorCode::ToolDenied
        );
        // A deny never stands for an approval.
        let denied = ask(&[], "delete_repo").unwrap_err();
        assert_eq!(Approved::asked_by(&denied), None);
    }
}
