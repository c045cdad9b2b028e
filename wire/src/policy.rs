//! The policy engine: the operator's declarative rules, judged per request.
//!
//! The file format is the original KalGuard's (`version`, `rules[]` with `id`,
//! `description`, `match`, `decision`, `reason`; `defaultDecision`,
//! `defaultReason`), extended with the match fields `models`, `routes`,
//! `tools`, `capabilities` and `timeWindow`, and `*` wildcards in every match
//! string. Rules are tried in order; the first whose `match` holds decides,
//! else `defaultDecision` does. All fields of a `match` must hold (AND); a
//! list holds when any of its patterns matches (OR).
//!
//! A policy is parsed and validated once ([`Policy::parse`]); every error names
//! the rule (index and id) and the field at fault. Unknown fields are errors, so
//! a typo (`agentID`) can never silently widen a rule. A rule that constrains a
//! fact the request does not have (a `models` list on a request without a
//! model) does not match: an absent fact never satisfies a constraint.
//!
//! A rule may also say how the results of the tools it matches are marked
//! before the model reads them: `"spotlight": "datamark" | "encode" | "off"`
//! ([`Policy::spotlight`]; `docs/spotlighting.md`).
//!
//! Rules that refuse (`deny`, `require_approval`) match tool, resource and
//! model names on their skeletons ([`crate::skeleton`]): case, look-alike
//! letters, invisible characters and separators cannot dodge them
//! (`delete_*` refuses `Delete_repo` and `ｄｅｌｅｔｅ-repo`). Rules that
//! allow match names exactly, so folding never widens what is allowed.

use serde_json::{Map, Value};
use std::fmt;

use crate::glob;
use crate::refusal::{ErrorCode, Refusal};
use crate::skeleton::skeletons;

/// What a rule (or the default) decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// Held for a person's approval where the filter can hold the request
    /// (`docs/approval.md`), else refused with `REQUIRE_APPROVAL`.
    RequireApproval,
}

impl Decision {
    fn parse(value: &Value) -> Option<Decision> {
        match value.as_str()? {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            "require_approval" => Some(Decision::RequireApproval),
            _ => None,
        }
    }
}

/// How untrusted text (tool results) is marked as data before the model
/// reads it: a rule's `spotlight`, and the filter's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpotlightMode {
    #[default]
    Off,
    /// A random marker replaces the text's whitespace.
    Datamark,
    /// The text becomes its base64.
    Encode,
}

impl SpotlightMode {
    /// Reads `datamark`, `encode` or `off`.
    pub fn parse(text: &str) -> Option<SpotlightMode> {
        match text {
            "off" => Some(SpotlightMode::Off),
            "datamark" => Some(SpotlightMode::Datamark),
            "encode" => Some(SpotlightMode::Encode),
            _ => None,
        }
    }
}

/// What the agent is doing, as rules name it in `actions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// An LLM request, or `POST /v1/prompt/check`.
    PromptCheck,
    /// An MCP `tools/call`, or `POST /v1/tool/check`.
    ToolExecute,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::PromptCheck => "prompt:check",
            Action::ToolExecute => "tool:execute",
        }
    }
}

/// The facts of one request a policy is judged on.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub agent_id: &'a str,
    pub action: Action,
    /// The model asked for (LLM requests).
    pub model: Option<&'a str>,
    /// The request path without its query string.
    pub route: Option<&'a str>,
    /// The tool called (`tool:execute`).
    pub tool: Option<&'a str>,
    /// The capability strings of the agent's token, as written.
    pub capabilities: &'a [String],
    /// What is acted on: the tool for `tool:execute`, the model for `prompt:check`.
    pub resource: Option<&'a str>,
    /// The token's `metadata` object.
    pub attributes: Option<&'a Map<String, Value>>,
    /// Unix seconds (UTC), for `timeWindow`.
    pub now: i64,
}

/// A prepared policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    version: String,
    rules: Vec<Rule>,
    default_decision: Decision,
    default_reason: String,
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    id: String,
    matcher: Match,
    decision: Decision,
    reason: Option<String>,
    /// How the results of the tools the rule matches are marked, if it says.
    spotlight: Option<SpotlightMode>,
}

/// A rule's `match`: `None` fields are unconstrained.
#[derive(Clone, Debug, Default, PartialEq)]
struct Match {
    agent_ids: Option<Vec<String>>,
    actions: Option<Vec<String>>,
    resources: Option<Names>,
    models: Option<Names>,
    routes: Option<Vec<String>>,
    tools: Option<Names>,
    capabilities: Option<Vec<String>>,
    attributes: Option<Map<String, Value>>,
    time_window: Option<TimeWindow>,
}

/// Name patterns (`tools`, `resources`, `models`).
#[derive(Clone, Debug, PartialEq)]
enum Names {
    /// Matched as written (rules that allow).
    Exact(Vec<String>),
    /// Each pattern's skeletons, matched against the name's (rules that refuse).
    Skeletons(Vec<[String; 2]>),
}

impl Names {
    fn for_decision(patterns: Option<Vec<String>>, decision: Decision) -> Option<Names> {
        let patterns = patterns?;
        Some(match decision {
            Decision::Allow => Names::Exact(patterns),
            Decision::Deny | Decision::RequireApproval => {
                Names::Skeletons(patterns.iter().map(|p| skeletons(p)).collect())
            }
        })
    }

    fn hold(names: &Option<Names>, fact: Option<&str>, folded: Option<&[String; 2]>) -> bool {
        match names {
            None => true,
            Some(Names::Exact(patterns)) => {
                fact.is_some_and(|fact| patterns.iter().any(|p| glob::matches(p, fact)))
            }
            Some(Names::Skeletons(patterns)) => folded.is_some_and(|views| {
                patterns
                    .iter()
                    .flatten()
                    .any(|pattern| views.iter().any(|view| glob::matches(pattern, view)))
            }),
        }
    }
}

/// The skeletons of a request's names, worked out once per judgement.
struct FoldedFacts {
    tool: Option<[String; 2]>,
    resource: Option<[String; 2]>,
    model: Option<[String; 2]>,
}

impl FoldedFacts {
    fn of(facts: &Facts) -> FoldedFacts {
        FoldedFacts {
            tool: facts.tool.map(skeletons),
            resource: facts.resource.map(skeletons),
            model: facts.model.map(skeletons),
        }
    }
}

/// `timeWindow`: UTC weekdays and a UTC time-of-day range.
#[derive(Clone, Debug, PartialEq)]
struct TimeWindow {
    /// Bit 0 is Monday … bit 6 Sunday.
    days: u8,
    /// Minutes after midnight, `start` inclusive, `end` exclusive; a window
    /// with `start > end` runs over midnight.
    start: u16,
    end: u16,
}

/// The outcome of judging one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict<'p> {
    pub decision: Decision,
    pub reason: String,
    /// The rule that decided; `None` when the default did.
    pub rule: Option<&'p str>,
}

/// Why a policy document is invalid: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The field at fault: `rules[2] (id "no-gpt4").match.models[0]`.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid policy: `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for PolicyError {}

fn error(field: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        reason: reason.into(),
    }
}

const DOCUMENT_FIELDS: [&str; 6] = [
    "version",
    "description",
    "rules",
    "defaultDecision",
    "defaultReason",
    "$schema",
];
const RULE_FIELDS: [&str; 6] = [
    "id",
    "description",
    "match",
    "decision",
    "reason",
    "spotlight",
];
const MATCH_FIELDS: [&str; 9] = [
    "agentIds",
    "actions",
    "resources",
    "models",
    "routes",
    "tools",
    "capabilities",
    "attributes",
    "timeWindow",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Policy {
    /// Parses and validates a policy file's bytes.
    pub fn parse(raw: &[u8]) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_slice(raw)
            .map_err(|e| error("(root)", format!("not valid JSON: {e}")))?;
        Policy::from_value(&value)
    }

    /// Validates a policy already read as JSON (the plugin configuration's
    /// `policy`, the snapshot's `policy`).
    pub fn from_value(value: &Value) -> Result<Policy, PolicyError> {
        let document = object(value, "(root)")?;
        known_fields(document, &DOCUMENT_FIELDS, "")?;
        let version = match document.get("version") {
            None | Some(Value::Null) => "1.0".to_owned(),
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(error("version", "must be a string")),
        };
        let default_decision = decision(document.get("defaultDecision"), "defaultDecision")?;
        let default_reason = optional_string(document.get("defaultReason"), "defaultReason")?
            .unwrap_or_else(|| "default policy".to_owned());
        let Some(Value::Array(raw_rules)) = document.get("rules") else {
            return Err(error("rules", "must be an array of rules"));
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(raw_rules.len());
        for (i, raw) in raw_rules.iter().enumerate() {
            let rule = rule(raw, i)?;
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(error(
                    format!("rules[{i}].id"),
                    format!(
                        "`{}` is the id of an earlier rule; ids must be unique",
                        rule.id
                    ),
                ));
            }
            rules.push(rule);
        }
        if rules.is_empty() && default_decision == Decision::Allow {
            // As the original: an empty allow-all document is a mistake, not a policy.
            return Err(error(
                "defaultDecision",
                "a policy with no rules must not default to allow",
            ));
        }
        Ok(Policy {
            version,
            rules,
            default_decision,
            default_reason,
        })
    }

    /// A policy that refuses everything with `reason`: what is enforced when
    /// the policy meant to be in force cannot be read.
    pub fn deny_all(reason: String) -> Policy {
        Policy {
            version: "1.0".to_owned(),
            rules: Vec::new(),
            default_decision: Decision::Deny,
            default_reason: reason,
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Judges `facts`: the first matching rule decides, else the default.
    pub fn evaluate(&self, facts: &Facts) -> Verdict<'_> {
        let folded = FoldedFacts::of(facts);
        for rule in &self.rules {
            if rule.matcher.holds(facts, &folded) {
                return Verdict {
                    decision: rule.decision,
                    reason: rule
                        .reason
                        .clone()
                        .unwrap_or_else(|| format!("rule: {}", rule.id)),
                    rule: Some(&rule.id),
                };
            }
        }
        Verdict {
            decision: self.default_decision,
            reason: self.default_reason.clone(),
            rule: None,
        }
    }

    /// How the result of the tool in `facts` (a `tool:execute` whose `tool` is
    /// the result's, `None` when the body does not name it) is marked, if
    /// the rule that decides those facts says.
    pub fn spotlight(&self, facts: &Facts) -> Option<SpotlightMode> {
        let folded = FoldedFacts::of(facts);
        let rule = self
            .rules
            .iter()
            .find(|r| r.matcher.holds(facts, &folded))?;
        rule.spotlight
    }

    /// Whether any rule turns spotlighting on.
    pub fn spotlights(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.spotlight.is_some_and(|mode| mode != SpotlightMode::Off))
    }

    /// The refusal for `facts`, if the policy does not allow them: deny →
    /// 403 `POLICY_DENY` (`TOOL_DENIED` for a tool call), require_approval →
    /// 403 `REQUIRE_APPROVAL`; the message is the rule's reason, the data
    /// names the agent, action, rule, tool and model (what an approval is
    /// bound to).
    pub fn refusal(&self, facts: &Facts) -> Option<Refusal> {
        let verdict = self.evaluate(facts);
        let code = match (verdict.decision, facts.action) {
            (Decision::Allow, _) => return None,
            (Decision::RequireApproval, _) => ErrorCode::RequireApproval,
            (Decision::Deny, Action::ToolExecute) => ErrorCode::ToolDenied,
            (Decision::Deny, Action::PromptCheck) => ErrorCode::PolicyDeny,
        };
        let mut data = Map::new();
        data.insert("agentId".into(), facts.agent_id.into());
        data.insert("action".into(), facts.action.as_str().into());
        data.insert(
            "ruleId".into(),
            verdict.rule.map_or(Value::Null, Value::from),
        );
        if let Some(tool) = facts.tool {
            data.insert("tool".into(), tool.into());
        }
        if let Some(model) = facts.model {
            data.insert("model".into(), model.into());
        }
        Some(Refusal::new(code, verdict.reason).with_data(Value::Object(data)))
    }
}

impl Match {
    fn holds(&self, facts: &Facts, folded: &FoldedFacts) -> bool {
        let any = |patterns: &Option<Vec<String>>, fact: Option<&str>| match patterns {
            None => true,
            Some(patterns) => {
                fact.is_some_and(|fact| patterns.iter().any(|p| glob::matches(p, fact)))
            }
        };
        any(&self.agent_ids, Some(facts.agent_id))
            && any(&self.actions, Some(facts.action.as_str()))
            && Names::hold(&self.resources, facts.resource, folded.resource.as_ref())
            && Names::hold(&self.models, facts.model, folded.model.as_ref())
            && any(&self.routes, facts.route)
            && Names::hold(&self.tools, facts.tool, folded.tool.as_ref())
            && self.capabilities.as_ref().is_none_or(|patterns| {
                facts
                    .capabilities
                    .iter()
                    .any(|c| patterns.iter().any(|p| glob::matches(p, c)))
            })
            && self.attributes.as_ref().is_none_or(|wanted| {
                facts.attributes.is_some_and(|have| {
                    wanted.iter().all(|(key, want)| {
                        have.get(key).is_some_and(|v| attribute_matches(want, v))
                    })
                })
            })
            && self
                .time_window
                .as_ref()
                .is_none_or(|window| window.contains(facts.now))
    }
}

/// A string attribute may use `*` wildcards; anything else must be equal.
fn attribute_matches(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::String(pattern), Value::String(value)) => glob::matches(pattern, value),
        _ => want == have,
    }
}

impl TimeWindow {
    fn contains(&self, now: i64) -> bool {
        let days = now.div_euclid(86_400);
        // 1970-01-01 was a Thursday (index 3 from Monday).
        let weekday = (days + 3).rem_euclid(7);
        let minute = u16::try_from(now.rem_euclid(86_400) / 60).unwrap_or(0);
        let in_hours = if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        };
        self.days & (1 << weekday) != 0 && in_hours
    }
}

fn object<'v>(value: &'v Value, at: &str) -> Result<&'v Map<String, Value>, PolicyError> {
    value
        .as_object()
        .ok_or_else(|| error(at, "must be a JSON object"))
}

fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn known_fields(map: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), PolicyError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(error(
            path(at, unknown),
            format!("unknown field; known fields are {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn decision(value: Option<&Value>, at: &str) -> Result<Decision, PolicyError> {
    value
        .and_then(Decision::parse)
        .ok_or_else(|| error(at, "must be \"allow\", \"deny\" or \"require_approval\""))
}

fn optional_string(value: Option<&Value>, at: &str) -> Result<Option<String>, PolicyError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(at, "must be a string")),
    }
}

fn rule(raw: &Value, i: usize) -> Result<Rule, PolicyError> {
    let at_index = format!("rules[{i}]");
    let map = object(raw, &at_index)?;
    let id = match map.get("id") {
        None | Some(Value::Null) => format!("rule-{i}"),
        Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
        Some(_) => return Err(error(path(&at_index, "id"), "must be a non-empty string")),
    };
    let at = format!("rules[{i}] (id \"{id}\")");
    known_fields(map, &RULE_FIELDS, &at)?;
    optional_string(map.get("description"), &path(&at, "description"))?;
    let decision = decision(map.get("decision"), &path(&at, "decision"))?;
    let matcher = match map.get("match") {
        None | Some(Value::Null) => {
            return Err(error(
                path(&at, "match"),
                "is required (use {} to match every request)",
            ))
        }
        Some(value) => parse_match(value, &path(&at, "match"), decision)?,
    };
    Ok(Rule {
        id,
        matcher,
        decision,
        reason: optional_string(map.get("reason"), &path(&at, "reason"))?,
        spotlight: match map.get("spotlight") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_str().and_then(SpotlightMode::parse).ok_or_else(
                || {
                    error(
                        path(&at, "spotlight"),
                        "must be `datamark`, `encode` or `off`",
                    )
                },
            )?),
        },
    })
}

/// A rule's `match`; its name patterns are prepared for the rule's `decision`.
fn parse_match(value: &Value, at: &str, decision: Decision) -> Result<Match, PolicyError> {
    let map = object(value, at)?;
    known_fields(map, &MATCH_FIELDS, at)?;
    let list = |field: &str| patterns(map.get(field), &path(at, field));
    let actions = list("actions")?;
    for (j, action) in actions.iter().flatten().enumerate() {
        let known = [Action::PromptCheck, Action::ToolExecute]
            .iter()
            .any(|a| glob::matches(action, a.as_str()));
        if !known {
            return Err(error(
                format!("{}[{j}]", path(at, "actions")),
                format!(
                    "`{action}` matches no action the filter judges (prompt:check, tool:execute)"
                ),
            ));
        }
    }
    let attributes = match map.get("attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(attributes)) if !attributes.is_empty() => Some(attributes.clone()),
        Some(_) => {
            return Err(error(
                path(at, "attributes"),
                "must be a non-empty object of token metadata values",
            ))
        }
    };
    let time_window = match map.get("timeWindow") {
        None | Some(Value::Null) => None,
        Some(value) => Some(time_window(value, &path(at, "timeWindow"))?),
    };
    Ok(Match {
        agent_ids: list("agentIds")?,
        actions,
        resources: Names::for_decision(list("resources")?, decision),
        models: Names::for_decision(list("models")?, decision),
        routes: list("routes")?,
        tools: Names::for_decision(list("tools")?, decision),
        capabilities: list("capabilities")?,
        attributes,
        time_window,
    })
}

/// A non-empty list of non-empty pattern strings. An empty list is refused:
/// read as "anything" it would widen the rule, read as "nothing" it would
/// disable it, and either way the author meant something else.
fn patterns(value: Option<&Value>, at: &str) -> Result<Option<Vec<String>>, PolicyError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            return Err(error(
                at,
                "must not be empty (leave the field out to match anything)",
            ))
        }
        Some(_) => return Err(error(at, "must be an array of strings")),
    };
    items
        .iter()
        .enumerate()
        .map(|(j, item)| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(error(format!("{at}[{j}]"), "must be a non-empty string")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn time_window(value: &Value, at: &str) -> Result<TimeWindow, PolicyError> {
    let map = object(value, at)?;
    known_fields(map, &["days", "start", "end"], at)?;
    let days = match map.get("days") {
        None | Some(Value::Null) => 0x7f,
        Some(_) => {
            let mut bits = 0u8;
            for (j, day) in patterns(map.get("days"), &path(at, "days"))?
                .into_iter()
                .flatten()
                .enumerate()
            {
                let index = DAYS
                    .iter()
                    .position(|d| d.eq_ignore_ascii_case(&day))
                    .ok_or_else(|| {
                        error(
                            format!("{}[{j}]", path(at, "days")),
                            format!("`{day}` is not one of {}", DAYS.join(", ")),
                        )
                    })?;
                bits |= 1 << index;
            }
            bits
        }
    };
    let minute = |field: &str| -> Result<u16, PolicyError> {
        let at = path(at, field);
        let text = map
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| error(&at, "is required: a UTC time \"HH:MM\""))?;
        parse_minute(text).ok_or_else(|| {
            error(
                &at,
                format!("`{text}` is not a UTC time \"HH:MM\" (00:00 to 24:00)"),
            )
        })
    };
    let (start, end) = (minute("start")?, minute("end")?);
    if start == end {
        return Err(error(
            path(at, "end"),
            "must differ from start (an empty window never matches)",
        ));
    }
    Ok(TimeWindow { days, start, end })
}

fn parse_minute(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= 24 * 60).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2027-01-04 (a Monday) 00:00 UTC.
    const MONDAY: i64 = 1_799_020_800;
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;

    fn policy(value: Value) -> Policy {
        Policy::from_value(&value).unwrap()
    }

    fn facts(agent: &str, action: Action) -> Facts<'static> {
        Facts {
            agent_id: Box::leak(agent.to_owned().into_boxed_str()),
            action,
            model: None,
            route: None,
            tool: None,
            capabilities: &[],
            resource: None,
            attributes: None,
            now: MONDAY + 10 * HOUR,
        }
    }

    fn decide(policy: &Policy, facts: &Facts) -> Decision {
        policy.evaluate(facts).decision
    }

    #[test]
    fn monday_constant_is_a_monday() {
        let window = TimeWindow {
            days: 1,
            start: 0,
            end: 24 * 60,
        };
        assert!(window.contains(MONDAY));
        assert!(!window.contains(MONDAY - 1));
        assert!(!window.contains(MONDAY + DAY));
    }

    #[test]
    fn first_match_wins_then_the_default() {
        let p = policy(json!({"version":"1.0","rules":[
            {"id":"a","match":{"agentIds":["bot-*"]},"decision":"deny","reason":"bots are out"},
            {"id":"b","match":{"agentIds":["bot-1"]},"decision":"allow"},
            {"id":"c","match":{"actions":["tool:execute"]},"decision":"require_approval"}],
            "defaultDecision":"allow","defaultReason":"nothing matched"}));
        let verdict = p.evaluate(&facts("bot-1", Action::PromptCheck));
        assert_eq!(
            verdict,
            Verdict {
                decision: Decision::Deny,
                reason: "bots are out".into(),
                rule: Some("a")
            }
        );
        let verdict = p.evaluate(&facts("human", Action::ToolExecute));
        assert_eq!(verdict.decision, Decision::RequireApproval);
        assert_eq!(verdict.reason, "rule: c");
        let verdict = p.evaluate(&facts("human", Action::PromptCheck));
        assert_eq!(
            (verdict.decision, verdict.reason.as_str(), verdict.rule),
            (Decision::Allow, "nothing matched", None)
        );
    }

    #[test]
    fn every_match_field_constrains() {
        let caps = vec!["prompt:send".to_owned(), "model:gpt-*".to_owned()];
        let metadata = json!({"team":"billing","tier":2});
        let full = Facts {
            model: Some("gpt-4o-mini"),
            route: Some("/v1/chat/completions"),
            tool: Some("search"),
            capabilities: &caps,
            resource: Some("search"),
            attributes: metadata.as_object(),
            ..facts("agent-7", Action::ToolExecute)
        };
        let cases = [
            (
                json!({"agentIds":["agent-7"]}),
                json!({"agentIds":["agent-8"]}),
            ),
            (
                json!({"actions":["tool:*"]}),
                json!({"actions":["prompt:check"]}),
            ),
            (
                json!({"resources":["sea*"]}),
                json!({"resources":["delete"]}),
            ),
            (
                json!({"models":["gpt-4o*"]}),
                json!({"models":["claude-*"]}),
            ),
            (json!({"routes":["/v1/*"]}), json!({"routes":["/mcp"]})),
            (json!({"tools":["search"]}), json!({"tools":["rm"]})),
            (
                json!({"capabilities":["model:*"]}),
                json!({"capabilities":["tool:execute"]}),
            ),
            (
                json!({"attributes":{"team":"bill*","tier":2}}),
                json!({"attributes":{"team":"billing","tier":3}}),
            ),
            (
                json!({"timeWindow":{"days":["mon"],"start":"09:00","end":"17:00"}}),
                json!({"timeWindow":{"days":["tue"],"start":"09:00","end":"17:00"}}),
            ),
        ];
        for (holds, fails) in cases {
            let p = policy(
                json!({"rules":[{"id":"r","match":holds,"decision":"deny"}],"defaultDecision":"allow"}),
            );
            assert_eq!(decide(&p, &full), Decision::Deny, "{holds}");
            let p = policy(
                json!({"rules":[{"id":"r","match":fails,"decision":"deny"}],"defaultDecision":"allow"}),
            );
            assert_eq!(decide(&p, &full), Decision::Allow, "{fails}");
        }
    }

    #[test]
    fn an_absent_fact_never_satisfies_a_constraint() {
        let p = policy(json!({"rules":[
            {"id":"models","match":{"models":["*"]},"decision":"allow"},
            {"id":"tools","match":{"tools":["*"]},"decision":"allow"},
            {"id":"attrs","match":{"attributes":{"team":"*"}},"decision":"allow"}],
            "defaultDecision":"deny"}));
        assert_eq!(decide(&p, &facts("a", Action::PromptCheck)), Decision::Deny);
        let with_model = Facts {
            model: Some("m"),
            ..facts("a", Action::PromptCheck)
        };
        assert_eq!(decide(&p, &with_model), Decision::Allow);
    }

    #[test]
    fn an_empty_match_matches_everything() {
        let p = policy(
            json!({"rules":[{"id":"all","match":{},"decision":"deny","reason":"closed"}],"defaultDecision":"allow"}),
        );
        assert_eq!(
            decide(&p, &facts("anyone", Action::ToolExecute)),
            Decision::Deny
        );
    }

    #[test]
    fn time_windows_are_utc_and_may_wrap_midnight() {
        let office = TimeWindow {
            days: 0b001_1111,
            start: 9 * 60,
            end: 17 * 60,
        };
        assert!(office.contains(MONDAY + 9 * HOUR));
        assert!(office.contains(MONDAY + 17 * HOUR - 1));
        assert!(!office.contains(MONDAY + 17 * HOUR));
        assert!(!office.contains(MONDAY + 8 * HOUR + 59 * 60));
        assert!(office.contains(MONDAY + 4 * DAY + 12 * HOUR)); // Friday
        assert!(!office.contains(MONDAY + 5 * DAY + 12 * HOUR)); // Saturday
        assert!(!office.contains(MONDAY + 6 * DAY + 12 * HOUR)); // Sunday
        let night = TimeWindow {
            days: 0x7f,
            start: 22 * 60,
            end: 6 * 60,
        };
        assert!(night.contains(MONDAY + 23 * HOUR));
        assert!(night.contains(MONDAY + 2 * HOUR));
        assert!(!night.contains(MONDAY + 12 * HOUR));
        let parsed = policy(
            json!({"rules":[{"id":"w","match":{"timeWindow":{"start":"22:00","end":"06:00"}},"decision":"allow"}],"defaultDecision":"deny"}),
        );
        assert_eq!(parsed.rules[0].matcher.time_window, Some(night));
        let until_midnight = policy(
            json!({"rules":[{"id":"w","match":{"timeWindow":{"start":"18:00","end":"24:00"}},"decision":"allow"}],"defaultDecision":"deny"}),
        );
        let late = Facts {
            now: MONDAY + 23 * HOUR + 59 * 60,
            ..facts("a", Action::PromptCheck)
        };
        assert_eq!(decide(&until_midnight, &late), Decision::Allow);
    }

    #[test]
    fn refusing_rules_match_names_on_skeletons_allowing_rules_exactly() {
        let p = policy(json!({"rules":[
            {"id":"drafts","match":{"tools":["delete_draft"]},"decision":"allow"},
            {"id":"no-delete","match":{"tools":["delete_*"]},"decision":"deny"},
            {"id":"ask","match":{"resources":["Drop*"]},"decision":"require_approval"},
            {"id":"no-o1","match":{"models":["o1*"]},"decision":"deny"},
            {"id":"search","match":{"tools":["search"]},"decision":"allow"}],
            "defaultDecision":"deny"}));
        let decide_tool = |tool: &'static str| {
            let f = Facts {
                tool: Some(tool),
                resource: Some(tool),
                ..facts("a", Action::ToolExecute)
            };
            decide(&p, &f)
        };
        assert_eq!(decide_tool("delete_draft"), Decision::Allow);
        for dodge in [
            "Delete_draft",
            "Delete_repo",
            "DELETE_REPO",
            "ｄｅｌｅｔｅ_repo",
            "d\u{0435}lete_repo",
            "delete\u{200b}_repo",
            "delete-repo",
            "deleteRepo",
        ] {
            assert_eq!(decide_tool(dodge), Decision::Deny, "{dodge}");
        }
        assert_eq!(decide_tool("drop_table"), Decision::RequireApproval);
        assert_eq!(decide_tool("DROP-TABLE"), Decision::RequireApproval);
        assert_eq!(decide_tool("search"), Decision::Allow);
        // Allowing is exact: a look-alike of an allowed name is not allowed.
        for look_alike in ["Search", "ｓｅａｒｃｈ", "s\u{0435}arch", "search\u{200b}"] {
            assert_eq!(decide_tool(look_alike), Decision::Deny, "{look_alike}");
        }
        let f = Facts {
            model: Some("O1-Preview"),
            ..facts("a", Action::PromptCheck)
        };
        assert_eq!(p.evaluate(&f).rule, Some("no-o1"));
    }

    #[test]
    fn refusals_map_to_documented_codes() {
        let p = policy(json!({"rules":[
            {"id":"no-rm","match":{"tools":["rm"]},"decision":"deny","reason":"rm is off limits"},
            {"id":"ask","match":{"models":["o1*"]},"decision":"require_approval","reason":"o1 needs a human"},
            {"id":"ok","match":{"models":["gpt-*"]},"decision":"allow"}],
            "defaultDecision":"deny","defaultReason":"not on the list"}));
        let tool = Facts {
            tool: Some("rm"),
            ..facts("a", Action::ToolExecute)
        };
        let refusal = p.refusal(&tool).unwrap();
        assert_eq!(refusal.code, ErrorCode::ToolDenied);
        assert_eq!(refusal.message, "rm is off limits");
        assert_eq!(
            refusal.data,
            Some(json!({"agentId":"a","action":"tool:execute","ruleId":"no-rm","tool":"rm"}))
        );
        let o1 = Facts {
            model: Some("o1-mini"),
            ..facts("a", Action::PromptCheck)
        };
        let refusal = p.refusal(&o1).unwrap();
        assert_eq!(refusal.code, ErrorCode::RequireApproval);
        assert_eq!(refusal.status(), 403);
        // The model is named, so an approval can be bound to it.
        assert_eq!(
            refusal.data,
            Some(json!({"agentId":"a","action":"prompt:check","ruleId":"ask","model":"o1-mini"}))
        );
        let other = Facts {
            model: Some("claude-3"),
            ..facts("a", Action::PromptCheck)
        };
        let refusal = p.refusal(&other).unwrap();
        assert_eq!(refusal.code, ErrorCode::PolicyDeny);
        assert_eq!(refusal.message, "not on the list");
        assert_eq!(refusal.data.unwrap()["ruleId"], Value::Null);
        let gpt = Facts {
            model: Some("gpt-4o"),
            ..facts("a", Action::PromptCheck)
        };
        assert!(p.refusal(&gpt).is_none());
    }

    #[test]
    fn the_original_format_parses_with_its_defaults() {
        let p = Policy::parse(
            br#"{"rules":[{"match":{"agentIds":["a1"],"actions":["tool:execute"],"resources":["search"],"attributes":{"env":"prod"}},"decision":"allow","description":"legacy"}],
                 "defaultDecision":"deny"}"#,
        )
        .unwrap();
        assert_eq!(p.version(), "1.0");
        assert_eq!(p.rules[0].id, "rule-0");
        assert_eq!(p.default_reason, "default policy");
        assert_eq!(p.rule_count(), 1);
    }

    fn field_of(value: Value) -> String {
        Policy::from_value(&value).unwrap_err().field
    }

    #[test]
    fn errors_name_the_rule_and_field() {
        let deny = |m: Value| json!({"rules":[{"id":"r1","match":m,"decision":"deny"}],"defaultDecision":"allow"});
        assert_eq!(field_of(json!([])), "(root)");
        assert_eq!(field_of(json!({"rules":[]})), "defaultDecision");
        assert_eq!(
            field_of(json!({"rules":[],"defaultDecision":"allow"})),
            "defaultDecision"
        );
        assert_eq!(
            field_of(json!({"rules":[],"defaultDecision":"maybe"})),
            "defaultDecision"
        );
        assert_eq!(field_of(json!({"defaultDecision":"deny"})), "rules");
        assert_eq!(
            field_of(json!({"rules":[],"defaultDecision":"deny","rulez":[]})),
            "rulez"
        );
        assert_eq!(
            field_of(json!({"rules":[3],"defaultDecision":"deny"})),
            "rules[0]"
        );
        assert_eq!(
            field_of(
                json!({"rules":[{"id":"","match":{},"decision":"deny"}],"defaultDecision":"deny"})
            ),
            "rules[0].id"
        );
        assert_eq!(
            field_of(json!({"rules":[{"id":"r1","decision":"deny"}],"defaultDecision":"deny"})),
            "rules[0] (id \"r1\").match"
        );
        assert_eq!(
            field_of(
                json!({"rules":[{"id":"r1","match":{},"decision":"permit"}],"defaultDecision":"deny"})
            ),
            "rules[0] (id \"r1\").decision"
        );
        assert_eq!(
            field_of(
                json!({"rules":[{"id":"r1","match":{},"decision":"deny","why":"x"}],"defaultDecision":"deny"})
            ),
            "rules[0] (id \"r1\").why"
        );
        assert_eq!(
            field_of(deny(json!({"agentID":["x"]}))),
            "rules[0] (id \"r1\").match.agentID"
        );
        assert_eq!(
            field_of(deny(json!({"models":[]}))),
            "rules[0] (id \"r1\").match.models"
        );
        assert_eq!(
            field_of(deny(json!({"models":"gpt-4o"}))),
            "rules[0] (id \"r1\").match.models"
        );
        assert_eq!(
            field_of(deny(json!({"tools":["ok", 3]}))),
            "rules[0] (id \"r1\").match.tools[1]"
        );
        assert_eq!(
            field_of(deny(json!({"actions":["llm:call"]}))),
            "rules[0] (id \"r1\").match.actions[0]"
        );
        assert_eq!(
            field_of(deny(json!({"attributes":{}}))),
            "rules[0] (id \"r1\").match.attributes"
        );
        assert_eq!(
            field_of(deny(json!({"timeWindow":{"start":"9:00","end":"17:00"}}))),
            "rules[0] (id \"r1\").match.timeWindow.start"
        );
        assert_eq!(
            field_of(deny(json!({"timeWindow":{"start":"09:00","end":"24:01"}}))),
            "rules[0] (id \"r1\").match.timeWindow.end"
        );
        assert_eq!(
            field_of(deny(json!({"timeWindow":{"start":"09:00","end":"09:00"}}))),
            "rules[0] (id \"r1\").match.timeWindow.end"
        );
        assert_eq!(
            field_of(deny(
                json!({"timeWindow":{"days":["monday"],"start":"09:00","end":"10:00"}})
            )),
            "rules[0] (id \"r1\").match.timeWindow.days[0]"
        );
        assert_eq!(
            field_of(
                json!({"rules":[{"id":"r","match":{},"decision":"deny"},{"id":"r","match":{},"decision":"allow"}],"defaultDecision":"deny"})
            ),
            "rules[1].id"
        );
        let message = Policy::parse(b"{").unwrap_err().to_string();
        assert!(
            message.starts_with("invalid policy: `(root)`: not valid JSON"),
            "{message}"
        );
    }

    #[test]
    fn rules_say_how_the_results_of_their_tools_are_spotlighted() {
        let p = policy(json!({"rules": [
            {"id": "mail", "match": {"tools": ["read_email", "web_*"]}, "decision": "allow", "spotlight": "datamark"},
            {"id": "calc", "match": {"tools": ["calculator"]}, "decision": "allow", "spotlight": "off"},
            {"id": "bot", "match": {"agentIds": ["bot"]}, "decision": "allow", "spotlight": "encode"}
        ], "defaultDecision": "allow"}));
        assert!(p.spotlights());
        let result = |agent: &str, tool: Option<&'static str>| {
            p.spotlight(&Facts {
                tool,
                resource: tool,
                ..facts(agent, Action::ToolExecute)
            })
        };
        assert_eq!(
            result("a", Some("web_fetch")),
            Some(SpotlightMode::Datamark)
        );
        assert_eq!(result("a", Some("calculator")), Some(SpotlightMode::Off));
        assert_eq!(result("a", Some("other")), None);
        assert_eq!(
            result("a", None),
            None,
            "an unnamed tool matches no `tools`"
        );
        assert_eq!(result("bot", None), Some(SpotlightMode::Encode));
        let off = policy(
            json!({"rules": [{"match": {}, "decision": "allow", "spotlight": "off"}], "defaultDecision": "deny"}),
        );
        assert!(!off.spotlights());
        let error = Policy::from_value(&json!({"rules": [
            {"id": "x", "match": {}, "decision": "allow", "spotlight": "on"}], "defaultDecision": "deny"}))
        .unwrap_err();
        assert_eq!(error.field, "rules[0] (id \"x\").spotlight");
        assert!(error.reason.contains("datamark"));
    }
}
