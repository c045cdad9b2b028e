//! The policy engine's rules, one behaviour per test.
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
    // Allowed, the rule that allowed it is named; by the default, none.
    assert_eq!(p.judge(&gpt), Ok(Some("ok")));
    let open = policy(
        json!({"rules":[{"id":"no-rm","match":{"tools":["rm"]},"decision":"deny"}], "defaultDecision":"allow"}),
    );
    assert_eq!(open.judge(&gpt), Ok(None));
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

#[test]
fn the_most_specific_mode_wins_then_the_document_then_none() {
    let p = policy(
        json!({"rules":[{"id":"r","match":{},"decision":"allow"}],"defaultDecision":"deny",
        "mode":"enforce",
        "modes":[
            {"routes":["/mcp*"],"mode":"observe"},
            {"agentIds":["beta-*"],"mode":"observe"},
            {"agentIds":["beta-*"],"routes":["/mcp*"],"mode":"enforce"},
            {"agentIds":["beta-1"],"mode":"enforce"}]}),
    );
    let mode = |agent: &str, route: &str| p.mode_for(agent, route);
    // Agents and routes beat agents only, which beat routes only.
    assert_eq!(mode("beta-1", "/mcp"), Some(Mode::Enforce));
    assert_eq!(mode("beta-1", "/v1/chat/completions"), Some(Mode::Observe));
    assert_eq!(mode("prod", "/mcp"), Some(Mode::Observe));
    // Among equals the first listed wins (beta-* before beta-1).
    assert_eq!(mode("beta-2", "/v1/chat/completions"), Some(Mode::Observe));
    // Nothing holds: the document's mode; a document without one: none.
    assert_eq!(mode("prod", "/v1/chat/completions"), Some(Mode::Enforce));
    let bare = policy(
        json!({"rules":[{"id":"r","match":{},"decision":"allow"}],"defaultDecision":"deny"}),
    );
    assert_eq!(bare.mode_for("beta-1", "/mcp"), None);
    assert_eq!(Policy::deny_all("x".into()).mode_for("a", "/"), None);
}

#[test]
fn mode_errors_name_the_field() {
    let field = |extra: Value| {
        let mut document =
            json!({"rules":[{"id":"r","match":{},"decision":"allow"}],"defaultDecision":"deny"});
        for (key, value) in extra.as_object().unwrap() {
            document[key] = value.clone();
        }
        Policy::from_value(&document).unwrap_err().field
    };
    assert_eq!(field(json!({"mode":"block"})), "mode");
    assert_eq!(field(json!({"modes":{"agentIds":["a"]}})), "modes");
    assert_eq!(field(json!({"modes":[{"mode":"observe"}]})), "modes[0]");
    assert_eq!(
        field(json!({"modes":[{"agentIds":["a"]}]})),
        "modes[0].mode"
    );
    assert_eq!(
        field(json!({"modes":[{"agentIds":[],"mode":"observe"}]})),
        "modes[0].agentIds"
    );
    assert_eq!(
        field(json!({"modes":[{"agent":["a"],"mode":"observe"}]})),
        "modes[0].agent"
    );
    assert_eq!(
        field(json!({"modes":[{"routes":["/x"],"mode":"Observe"}]})),
        "modes[0].mode"
    );
}
