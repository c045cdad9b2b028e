//! MCP tool pinning in Cloud mode, with everything real: Envoy with the
//! filter, the control plane, and the self-hosted Cloud (`kalguard-cloud`,
//! `KALGUARD_CLOUD_BIN` or the workspace's newest build; skipped, loudly,
//! without one unless `KALGUARD_TEST_REQUIRE_ALL=1`). A tool whose
//! definition changes on the stand-in MCP server is held back and its call
//! refused `TOOL_CHANGED`; the control plane relays it to the Cloud's Tools
//! page, where an admin approves it; within seconds the agent's list shows
//! it again and its call goes through. A decision about a definition that
//! changed again since pins nothing.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::real_cloud::*;
use common::*;
use kalguard_e2e::stack::Stack;
use kalguard_e2e::stub::MCP_TOOLS_HEADER;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn plugin_config() -> String {
    json!({"hold_request_headers": true, "mcp_pinning": true, "mcp_paths": ["/mcp", "/mcp/*"]})
        .to_string()
}

/// One MCP request to `/mcp` with the Cloud's agent token.
fn mcp(stack: &Stack, cloud: &Cloud, message: &Value, told: &[(&str, &str)]) -> Reply {
    mcp_post(stack, "/mcp", &cloud.token, message, told)
}

/// The names of the tools a `tools/list` gives the agent, the server listing `tools`.
fn list(stack: &Stack, cloud: &Cloud, tools: &Value) -> Vec<String> {
    let tools = tools.to_string();
    let reply = mcp(
        stack,
        cloud,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        &[(MCP_TOOLS_HEADER, tools.as_str())],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn call(stack: &Stack, cloud: &Cloud, tool: &str) -> Reply {
    mcp(
        stack,
        cloud,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": tool, "arguments": {}}}),
        &[],
    )
}

fn search() -> Value {
    json!({"name": "search", "description": "Search the web",
           "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}})
}

fn delete_repo(visibility: &[&str]) -> Value {
    json!({"name": "delete_repo", "description": "Delete a repository",
           "inputSchema": {"type": "object", "properties": {
               "repo": {"type": "string"},
               "visibility": {"type": "string", "enum": visibility}}}})
}

impl Dashboard {
    /// The held row of `tool` on the Tools page, once the relay put it there:
    /// its ID and the offered SHA-256 its forms carry.
    fn held_tool(&mut self, tool: &str, not: Option<&str>) -> (String, String) {
        let mut found = None;
        wait_for("the held tool to reach the Cloud's Tools page", || {
            let page = self.get("/tools");
            let held = page.split("<h3>Decided</h3>").next().unwrap_or_default();
            found = held
                .split("<tr class=\"held-tool\"")
                .skip(1)
                .filter(|row| row.contains(&format!("<code>{tool}</code>")))
                .map(|row| {
                    let field = |start: &str| {
                        let at = row.find(start).unwrap() + start.len();
                        row[at..at + row[at..].find('"').unwrap()].to_owned()
                    };
                    (field("data-hold-id=\""), field("name=\"sha256\" value=\""))
                })
                .find(|(id, _)| Some(id.as_str()) != not);
            found.is_some()
        });
        found.unwrap()
    }

    /// Decides on the Tools page with the session's CSRF token.
    fn decide_tool(&mut self, id: &str, action: &str, sha256: &str) -> String {
        let csrf = csrf_of(&self.get("/tools"));
        let (status, location) = self.post(
            &format!("/tools/{id}/{action}"),
            &[("csrf", &csrf), ("sha256", sha256)],
        );
        assert_eq!(status, 303, "{action} {id}: {location}");
        location
    }
}

#[test]
fn a_changed_tool_approved_on_the_clouds_tools_page_is_listed_and_callable_again() {
    let Some((cloud, stack)) = cloud_and_stack(plugin_config()) else {
        return;
    };
    let mut owner = Dashboard::login(&cloud);
    let (mut admin, admin_email) = add_admin(&cloud, &mut owner);

    let first = json!([search(), delete_repo(&["private"])]);
    assert_eq!(list(&stack, &cloud, &first), ["search", "delete_repo"]);
    assert_eq!(call(&stack, &cloud, "delete_repo").status, 200);

    // The server widens an enum: held back, refused, and relayed to the Cloud.
    let widened = json!([search(), delete_repo(&["private", "public"])]);
    assert_eq!(list(&stack, &cloud, &widened), ["search"]);
    call(&stack, &cloud, "delete_repo").assert_refused(403, "TOOL_CHANGED");
    let (id, offered) = admin.held_tool("delete_repo", None);
    let page = admin.get("/tools");
    for shown in ["/mcp", "changed: inputSchema", &offered[..16]] {
        assert!(page.contains(shown), "{shown} not on the Tools page");
    }
    assert!(
        !page.contains("Delete a repository"),
        "no description on the Cloud"
    );

    // It changes again before anyone decides: the page's form pins nothing.
    let again = json!([search(), delete_repo(&["private", "public", "internal"])]);
    assert_eq!(list(&stack, &cloud, &again), ["search"]);
    let (newer, newer_offered) = admin.held_tool("delete_repo", Some(&id));
    assert_ne!(newer_offered, offered);
    let csrf = csrf_of(&admin.get("/tools"));
    let (status, _) = admin.post(
        &format!("/tools/{id}/approve"),
        &[("csrf", &csrf), ("sha256", &offered)],
    );
    assert_eq!(status, 404, "the old definition is no longer held");
    call(&stack, &cloud, "delete_repo").assert_refused(403, "TOOL_CHANGED");

    // Approved on the dashboard: listed and callable within seconds.
    let clicked = Instant::now();
    assert_eq!(
        admin.decide_tool(&newer, "approve", &newer_offered),
        "/tools?notice=tool_approved"
    );
    wait_for("the Cloud's approval to reach the control plane", || {
        list(&stack, &cloud, &again) == ["search", "delete_repo"]
    });
    let took = clicked.elapsed();
    assert!(took < Duration::from_secs(5), "picked up after {took:?}");
    assert_eq!(call(&stack, &cloud, "delete_repo").status, 200);
    // Decided once; the Cloud shows what the control plane did, and who.
    assert_eq!(
        admin.decide_tool(&newer, "forget", &newer_offered),
        "/tools?notice=tool_gone"
    );
    wait_for("the Cloud to show the decision applied", || {
        let page = admin.get("/tools");
        let decided = page.split("<h3>Decided</h3>").nth(1).unwrap_or_default();
        decided.contains(&newer) && decided.contains(">applied<")
    });
    let audit = std::fs::read_to_string(stack.data_dir.join("audit.jsonl")).unwrap();
    let approved = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["event"].clone())
        .find(|e| e["eventType"] == "tool_pin" && e["outcome"] == "approved")
        .unwrap();
    assert_eq!(approved["by"], format!("{admin_email} (Cloud)"));
    assert_eq!(approved["sha256"], newer_offered.as_str());
    let log = owner.get("/admin-log");
    assert!(log.contains("mcp_tool.approved") && log.contains(&newer));
}

/// Adds an admin on the Members page and logs them in.
fn add_admin(cloud: &Cloud, owner: &mut Dashboard) -> (Dashboard, String) {
    let email = "admin@e2e.test";
    let password = "another correct horse battery";
    let csrf = csrf_of(&owner.get("/members"));
    let (status, location) = owner.post(
        "/members",
        &[
            ("csrf", &csrf),
            ("email", email),
            ("password", password),
            ("role", "admin"),
        ],
    );
    assert_eq!(status, 303, "{location}");
    (
        Dashboard::login_as(cloud, email, password),
        email.to_owned(),
    )
}
