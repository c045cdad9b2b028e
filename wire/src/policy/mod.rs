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
//!
//! A document may also set the mode its refusals are carried out in
//! (`"mode"`, and per agent or route `"modes"`: [`mode`]; `docs/observe.md`).

mod mode;

pub use mode::Mode;

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
    /// The document's `mode`, if it sets one.
    mode: Option<Mode>,
    /// The document's `modes`, per agent or route.
    modes: Vec<mode::Scoped>,
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

const DOCUMENT_FIELDS: [&str; 8] = [
    "version",
    "mode",
    "modes",
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
            mode: mode::parse_mode(document.get("mode"), "mode")?,
            modes: mode::parse_modes(document.get("modes"))?,
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
            mode: None,
            modes: Vec::new(),
        }
    }

    /// The mode the policy sets for a request by `agent_id` (the verified
    /// token's `sub`) on `route` (the path rules match): its most specific
    /// `modes` entry that holds, else its `mode`; `None` leaves it to the
    /// plugin configuration.
    pub fn mode_for(&self, agent_id: &str, route: &str) -> Option<Mode> {
        mode::mode_for(self.mode, &self.modes, agent_id, route)
    }

    /// Whether the document says anything about the mode (`mode`, `modes`).
    pub fn sets_mode(&self) -> bool {
        self.mode.is_some() || !self.modes.is_empty()
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
        self.judge(facts).err()
    }

    /// [`Policy::refusal`], or when the policy allows `facts`, the rule that
    /// allowed them (`None` when the default did): what a decision event
    /// names as its `ruleId`.
    pub fn judge(&self, facts: &Facts) -> Result<Option<&str>, Refusal> {
        let verdict = self.evaluate(facts);
        let code = match (verdict.decision, facts.action) {
            (Decision::Allow, _) => return Ok(verdict.rule),
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
        Err(Refusal::new(code, verdict.reason).with_data(Value::Object(data)))
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
mod tests;
