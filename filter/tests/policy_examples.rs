//! Every policy in `examples/policies/` does what its `description` says.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kalguard_filter::policy::{Action, Decision, Facts, Policy};
use kalguard_filter::refusal::ErrorCode;
use std::path::PathBuf;

/// 2027-01-04, a Monday, 00:00 UTC.
const MONDAY: i64 = 1_799_020_800;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn example(name: &str) -> Policy {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/policies")
        .join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Policy::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn prompt<'a>(agent: &'a str, route: &'a str, model: &'a str) -> Facts<'a> {
    Facts {
        agent_id: agent,
        action: Action::PromptCheck,
        model: Some(model),
        route: Some(route),
        tool: None,
        capabilities: &[],
        resource: Some(model),
        attributes: None,
        now: MONDAY + 10 * HOUR,
    }
}

fn tool<'a>(agent: &'a str, name: &'a str) -> Facts<'a> {
    Facts {
        action: Action::ToolExecute,
        model: None,
        route: Some("/mcp"),
        tool: Some(name),
        resource: Some(name),
        ..prompt(agent, "/mcp", "")
    }
}

fn decision(policy: &Policy, facts: &Facts) -> Decision {
    policy.evaluate(facts).decision
}

#[test]
fn every_example_is_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            Policy::parse(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
    }
    assert_eq!(count, 4);
}

#[test]
fn model_allowlist_per_agent() {
    let p = example("model-allowlist-per-agent.json");
    let chat = "/v1/chat/completions";
    assert_eq!(
        decision(&p, &prompt("support-bot", chat, "gpt-4o-mini")),
        Decision::Allow
    );
    assert_eq!(
        decision(
            &p,
            &prompt("support-bot", "/v1/messages", "claude-3-5-haiku-latest")
        ),
        Decision::Allow
    );
    let refusal = p.refusal(&prompt("support-bot", chat, "gpt-4o")).unwrap();
    assert_eq!(refusal.code, ErrorCode::PolicyDeny);
    assert_eq!(refusal.message, "this agent may not use that model");
    assert_eq!(
        decision(&p, &prompt("research-bot", chat, "o3-mini")),
        Decision::Allow
    );
    assert_eq!(
        decision(&p, &prompt("research-bot", chat, "gpt-4o-mini")),
        Decision::Deny
    );
    assert_eq!(
        decision(&p, &prompt("other-bot", chat, "anything")),
        Decision::Allow
    );
    // `POST /v1/prompt/check` names no model: not a model choice to refuse.
    let check = Facts {
        model: None,
        resource: None,
        ..prompt("support-bot", "/v1/prompt/check", "")
    };
    assert_eq!(decision(&p, &check), Decision::Allow);
    // Tool calls are not this policy's business.
    assert_eq!(
        decision(&p, &tool("support-bot", "search")),
        Decision::Allow
    );
}

#[test]
fn read_only_tools() {
    let p = example("read-only-tools.json");
    for allowed in [
        "search",
        "fetch_url",
        "read_file",
        "list_repos",
        "get_issue",
    ] {
        assert_eq!(
            decision(&p, &tool("a", allowed)),
            Decision::Allow,
            "{allowed}"
        );
    }
    for denied in ["write_file", "delete_repo", "shell", "searchAndReplace"] {
        let refusal = p.refusal(&tool("a", denied)).unwrap();
        assert_eq!(refusal.code, ErrorCode::ToolDenied, "{denied}");
        assert_eq!(refusal.message, "only read-only tools are allowed");
    }
    assert_eq!(
        decision(&p, &prompt("a", "/v1/chat/completions", "gpt-4o")),
        Decision::Allow
    );
}

#[test]
fn business_hours() {
    let p = example("business-hours.json");
    let at = |now: i64, agent: &'static str| Facts {
        now,
        ..prompt(agent, "/v1/chat/completions", "gpt-4o")
    };
    assert_eq!(decision(&p, &at(MONDAY + 8 * HOUR, "a")), Decision::Allow);
    assert_eq!(
        decision(&p, &at(MONDAY + 18 * HOUR - 1, "a")),
        Decision::Allow
    );
    assert_eq!(
        decision(&p, &at(MONDAY + 4 * DAY + 12 * HOUR, "a")),
        Decision::Allow
    ); // Friday
    let refusal = p.refusal(&at(MONDAY + 18 * HOUR, "a")).unwrap();
    assert_eq!(refusal.code, ErrorCode::PolicyDeny);
    assert!(refusal.message.contains("outside business hours"));
    assert_eq!(decision(&p, &at(MONDAY + 7 * HOUR, "a")), Decision::Deny);
    assert_eq!(
        decision(&p, &at(MONDAY + 5 * DAY + 12 * HOUR, "a")),
        Decision::Deny
    ); // Saturday
    let night_tool = Facts {
        now: MONDAY + 2 * HOUR,
        ..tool("a", "search")
    };
    assert_eq!(p.refusal(&night_tool).unwrap().code, ErrorCode::ToolDenied);
    assert_eq!(
        decision(&p, &at(MONDAY + 6 * DAY + 3 * HOUR, "on-call-1")),
        Decision::Allow
    );
}

#[test]
fn single_route() {
    let p = example("single-route.json");
    assert_eq!(
        decision(&p, &prompt("a", "/v1/chat/completions", "gpt-4o")),
        Decision::Allow
    );
    for route in [
        "/v1/messages",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/prompt/check",
    ] {
        let refusal = p.refusal(&prompt("a", route, "gpt-4o")).unwrap();
        assert_eq!(refusal.code, ErrorCode::PolicyDeny, "{route}");
        assert_eq!(refusal.message, "only /v1/chat/completions is open");
    }
    assert_eq!(
        p.refusal(&tool("a", "search")).unwrap().code,
        ErrorCode::ToolDenied
    );
}
