//! MCP tools held back by control planes: reported over the API, decided once
//! on the Tools page by owners and admins (CSRF-checked, bound to the offered
//! definition, in the admin log), delivered to a held poll at once, settled
//! by the control plane, and kept within the organisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, backends, csrf_of, Browser, TestApp};
use serde_json::{json, Value};

const PINNED: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OFFERED: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const AGAIN: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn held(tool: &str, offered: &str) -> Value {
    json!({"server": "/mcp", "tool": tool, "held": "changed", "pinnedSha256": PINNED,
        "offeredSha256": offered, "fieldsChanged": ["inputSchema"], "heldSinceMs": 1_765_000_000_000u64})
}

fn report(sidecar: &str, held: Vec<Value>) -> Value {
    json!({"sidecarId": sidecar, "host": "pod-7", "held": held})
}

/// Reports `held` for `sidecar` as its control plane does.
async fn send_report(app: &TestApp, key: &str, sidecar: &str, held: Vec<Value>) -> common::Reply {
    app.api("/api/v1/pins", key, report(sidecar, held)).await
}

async fn get(app: &TestApp, path: &str, key: &str) -> common::Reply {
    let req = Request::get(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    app.send(req).await
}

/// The ID of the held row for `tool` on the Tools page.
async fn hold_id(b: &mut Browser<'_>, tool: &str) -> String {
    let page = b.get("/tools").await.text();
    let held = page.split("<h3>Decided</h3>").next().unwrap();
    let row = held
        .split("<tr class=\"held-tool\"")
        .find(|row| row.contains(&format!("<code>{tool}</code>")))
        .unwrap_or_else(|| panic!("{tool} not held on the page: {page}"));
    common::between(row, "data-hold-id=\"", "\"")
}

/// Decides on the Tools page as `b`, with its CSRF token and `sha256` (a
/// forget confirmed, as its confirmation page posts it).
async fn decide(b: &mut Browser<'_>, id: &str, action: &str, sha256: &str) -> common::Reply {
    let csrf = csrf_of(&b.get("/tools").await.text());
    let confirm = if action == "forget" { "yes" } else { "" };
    b.post(
        &format!("/tools/{id}/{action}"),
        &[("csrf", &csrf), ("sha256", sha256), ("confirm", confirm)],
    )
    .await
}

/// Settles decision `id` as `sidecar`'s control plane does.
async fn settle(
    app: &TestApp,
    key: &str,
    sidecar: &str,
    id: &str,
    settled: Value,
) -> common::Reply {
    let path = format!("/api/v1/pins/decisions/{id}/settle?sidecarId={sidecar}");
    app.api(&path, key, settled).await
}

async fn decisions(app: &TestApp, key: &str, sidecar: &str, wait: u64) -> Value {
    let r = get(
        app,
        &format!("/api/v1/pins/decisions?sidecarId={sidecar}&wait={wait}"),
        key,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn a_tool_approved_on_the_dashboard_reaches_the_held_poll_once_and_is_settled() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Pins").await;
        let both = || vec![held("delete_repo", OFFERED), held("search", OFFERED)];
        let r = send_report(&app, &key, "sc_a", both()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json(), json!({"decisions": []}));
        // Reported again unchanged: the same rows.
        let id = hold_id(&mut owner, "delete_repo").await;
        send_report(&app, &key, "sc_a", both()).await;
        assert_eq!(hold_id(&mut owner, "delete_repo").await, id);
        let page = owner.get("/tools").await.text();
        for shown in [
            "pod-7",
            "/mcp",
            "changed: inputSchema",
            &OFFERED[..16],
            &PINNED[..16],
        ] {
            assert!(page.contains(shown), "{shown} not on the Tools page");
        }
        assert!(
            page.contains("href=\"/tools\" class=\"active\""),
            "in the navigation"
        );

        // The control plane's poll is held, and answered the moment the owner approves.
        let started = Instant::now();
        let poll = decisions(&app, &key, "sc_a", 20);
        let approve = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            decide(&mut owner, &id, "approve", OFFERED).await
        };
        let (polled, approved) = tokio::join!(poll, approve);
        assert_eq!(
            approved.location(),
            "/tools?notice=tool_approved",
            "{}",
            approved.text()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let decision = &polled["decisions"][0];
        assert_eq!(polled["decisions"].as_array().unwrap().len(), 1, "{polled}");
        assert_eq!(decision["id"], id.as_str());
        assert_eq!(decision["tool"], "delete_repo");
        assert_eq!(decision["action"], "approve");
        assert_eq!(decision["offeredSha256"], OFFERED);
        assert_eq!(
            decision["heldSinceMs"], 1_765_000_000_000u64,
            "the hold decided on"
        );
        assert!(decision["by"].as_str().unwrap().ends_with("@pins.test"));
        // Replayed, or the other button: decided once.
        for action in ["approve", "forget"] {
            let r = decide(&mut owner, &id, action, OFFERED).await;
            assert_eq!(r.location(), "/tools?notice=tool_gone");
        }
        // Another sidecar of the organisation gets none of it.
        assert_eq!(
            decisions(&app, &key, "sc_b", 0).await,
            json!({"decisions": []})
        );

        // Settled: no longer delivered; the page says what happened.
        let r = settle(&app, &key, "sc_a", &id, json!({"outcome": "applied"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(
            decisions(&app, &key, "sc_a", 0).await,
            json!({"decisions": []})
        );
        // The control plane no longer holds it: the decided row stays as history.
        send_report(&app, &key, "sc_a", vec![held("search", OFFERED)]).await;
        let page = owner.get("/tools").await.text();
        let (held_part, decided_part) = page.split_once("<h3>Decided</h3>").unwrap();
        assert!(!held_part.contains("delete_repo") && held_part.contains("search"));
        assert!(
            decided_part.contains("delete_repo") && decided_part.contains("applied"),
            "{decided_part}"
        );
        let log = owner.get("/admin-log").await.text();
        assert!(
            log.contains("mcp_tool.approved") && log.contains(&id),
            "{log}"
        );
        assert!(log.contains("MCP server /mcp, tool delete_repo"), "{log}");
    }
}

#[tokio::test]
async fn a_decision_about_a_definition_that_changed_again_decides_nothing() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Stale").await;
        send_report(&app, &key, "sc_a", vec![held("delete_repo", OFFERED)]).await;
        let id = hold_id(&mut owner, "delete_repo").await;
        // The form names another definition than the one held.
        let r = decide(&mut owner, &id, "approve", AGAIN).await;
        assert_eq!(r.location(), "/tools?notice=tool_stale");
        // The tool changed again: the page's form (the old hash) decides nothing,
        // and the old row is gone.
        send_report(&app, &key, "sc_a", vec![held("delete_repo", AGAIN)]).await;
        let newer = hold_id(&mut owner, "delete_repo").await;
        assert_ne!(newer, id, "a new definition is a new row");
        let r = decide(&mut owner, &id, "approve", OFFERED).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert_eq!(
            decisions(&app, &key, "sc_a", 0).await,
            json!({"decisions": []})
        );
        let r = decide(&mut owner, &newer, "forget", AGAIN).await;
        assert_eq!(r.location(), "/tools?notice=tool_forgotten");
        let polled = decisions(&app, &key, "sc_a", 0).await;
        assert_eq!(polled["decisions"][0]["action"], "forget");
        assert_eq!(polled["decisions"][0]["offeredSha256"], AGAIN);
        // The control plane found another definition waiting: it says so.
        let r = settle(
            &app,
            &key,
            "sc_a",
            &newer,
            json!({"outcome": "stale", "detail": "sha256 4444 waits now"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let page = owner.get("/tools").await.text();
        assert!(
            page.contains("not applied: the definition changed again"),
            "{page}"
        );
        assert!(owner
            .get("/admin-log")
            .await
            .text()
            .contains("mcp_tool.forgotten"));
    }
}

#[tokio::test]
async fn viewers_read_and_every_decision_needs_the_csrf_token() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Roles").await;
        send_report(&app, &key, "sc_a", vec![held("delete_repo", OFFERED)]).await;
        let id = hold_id(&mut owner, "delete_repo").await;
        let (mut viewer, _) = owner.add_member("viewer").await;
        let (mut admin, admin_email) = owner.add_member("admin").await;

        let page = viewer.get("/tools").await.text();
        assert!(page.contains(&format!("data-hold-id=\"{id}\"")));
        assert!(
            !page.contains(&format!("/tools/{id}/approve")),
            "a viewer gets no buttons"
        );
        let r = decide(&mut viewer, &id, "approve", OFFERED).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        for (b, csrf) in [(&mut owner, ""), (&mut admin, "forged")] {
            let r = b
                .post(
                    &format!("/tools/{id}/approve"),
                    &[("csrf", csrf), ("sha256", OFFERED)],
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
        assert_eq!(
            decisions(&app, &key, "sc_a", 0).await,
            json!({"decisions": []})
        );

        let r = decide(&mut admin, &id, "approve", OFFERED).await;
        assert_eq!(r.location(), "/tools?notice=tool_approved");
        let polled = decisions(&app, &key, "sc_a", 0).await;
        assert_eq!(polled["decisions"][0]["by"], admin_email.as_str());
    }
}

#[tokio::test]
async fn names_show_what_they_are_and_reports_are_checked_and_bounded() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Names").await;
        let mut odd = held(
            "read_fi\u{200b}le<script>alert(1)</script>\u{202e}",
            OFFERED,
        );
        odd["held"] = json!("suspicious");
        odd["why"] = json!("its name has characters outside A-Z\u{202e} <b>");
        let r = send_report(&app, &key, "sc_a", vec![odd]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let page = owner.get("/tools").await.text();
        assert!(
            page.contains("read_fi\\u{200b}le&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}"),
            "{page}"
        );
        assert!(page.contains("suspicious: its name has characters outside A-Z\\u{202e} &lt;b&gt;"));
        assert!(
            !page.contains('\u{202e}') && !page.contains('\u{200b}') && !page.contains("<script>")
        );

        for (field, value) in [
            ("tool", json!("a\u{0}b")),
            ("server", json!("")),
            ("offeredSha256", json!("ABC")),
            ("tool", json!("x".repeat(513))),
            ("description", json!("do not relay me")),
        ] {
            let mut bad = held("t", OFFERED);
            bad[field] = value;
            let r = send_report(&app, &key, "sc_a", vec![bad]).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text());
        }
        let too_many: Vec<Value> = (0..1_001)
            .map(|i| held(&format!("t{i}"), OFFERED))
            .collect();
        let r = send_report(&app, &key, "sc_a", too_many).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = send_report(&app, &key, "../sc", vec![]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = get(
            &app,
            "/api/v1/pins/decisions?sidecarId=sc_a&wait=soon",
            &key,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = get(&app, "/api/v1/pins/decisions", &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = app
            .api("/api/v1/pins", "kg_live_nope", report("sc_a", vec![]))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // A thousand held tools fit and the page shows them bounded.
        let many: Vec<Value> = (0..1_000)
            .map(|i| held(&format!("t{i}"), OFFERED))
            .collect();
        let r = send_report(&app, &key, "sc_b", many).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let page = owner.get("/tools").await.text();
        assert_eq!(page.matches("<tr class=\"held-tool\"").count(), 500);
        assert!(
            page.contains("501 more held tools are not shown"),
            "one odd + 1,000 − 500"
        );
    }
}

#[tokio::test]
async fn another_organisation_can_neither_see_nor_decide() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Mine").await;
        let (mut other_owner, other_key) = app.signup("Theirs").await;
        send_report(&app, &key, "sc_a", vec![held("delete_repo", OFFERED)]).await;
        let id = hold_id(&mut owner, "delete_repo").await;

        assert!(!other_owner
            .get("/tools")
            .await
            .text()
            .contains("delete_repo"));
        let r = decide(&mut other_owner, &id, "approve", OFFERED).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // Their key, even naming our sidecar, reads and settles nothing of ours.
        send_report(&app, &other_key, "sc_a", vec![]).await;
        assert_eq!(
            hold_id(&mut owner, "delete_repo").await,
            id,
            "their report retires nothing of ours"
        );
        decide(&mut owner, &id, "approve", OFFERED).await;
        assert_eq!(
            decisions(&app, &other_key, "sc_a", 0).await,
            json!({"decisions": []})
        );
        let r = settle(&app, &other_key, "sc_a", &id, json!({"outcome": "gone"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let ours = decisions(&app, &key, "sc_a", 0).await;
        assert_eq!(
            ours["decisions"][0]["id"],
            id.as_str(),
            "still waiting for our control plane"
        );
    }
}

#[tokio::test]
async fn only_the_sidecar_a_decision_is_for_settles_it() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Sidecars").await;
        // The same server path on two sidecars: two held tools.
        send_report(&app, &key, "sc_a", vec![held("delete_repo", OFFERED)]).await;
        send_report(&app, &key, "sc_b", vec![held("delete_repo", OFFERED)]).await;
        let page = owner.get("/tools").await.text();
        assert_eq!(page.matches("<tr class=\"held-tool\"").count(), 2, "{page}");
        let id = hold_id(&mut owner, "delete_repo").await;
        decide(&mut owner, &id, "approve", OFFERED).await;
        let for_a = decisions(&app, &key, "sc_a", 0).await;
        let for_b = decisions(&app, &key, "sc_b", 0).await;
        let (mine, theirs) = if for_a["decisions"][0]["id"] == id.as_str() {
            ("sc_a", "sc_b")
        } else {
            ("sc_b", "sc_a")
        };
        assert_eq!(
            [&for_a, &for_b]
                .iter()
                .filter(|d| d["decisions"][0]["id"] == id.as_str())
                .count(),
            1,
            "delivered to one sidecar: {for_a} {for_b}"
        );

        // The other sidecar (or one that names none) cannot settle it away.
        let r = settle(&app, &key, theirs, &id, json!({"outcome": "gone"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        let path = format!("/api/v1/pins/decisions/{id}/settle");
        let r = app.api(&path, &key, json!({"outcome": "gone"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        let still = decisions(&app, &key, mine, 0).await;
        assert_eq!(still["decisions"][0]["id"], id.as_str(), "still delivered");

        let r = settle(&app, &key, mine, &id, json!({"outcome": "applied"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(
            decisions(&app, &key, mine, 0).await,
            json!({"decisions": []})
        );
    }
}

#[tokio::test]
async fn sidecars_gone_silent_leave_room_for_new_ones() {
    // A control plane restarted with a new data directory (an emptyDir in
    // a pod) is a new sidecar; the old one's held tools stay until purged.
    // Those silent sidecars must not fill the organisation's room for good.
    use kalguard_cloud::store::pins::{self, Reported, MAX_SIDECARS_PER_ORG, SIDECAR_SILENT_SECS};
    use kalguard_wire::pins::PinReport;
    let report_of = |sidecar: &str| -> PinReport {
        serde_json::from_value(report(sidecar, vec![held("delete_repo", OFFERED)])).unwrap()
    };
    for url in backends() {
        let app = app(&url).await;
        let (org_id, _) = app.org("Fleet").await;
        let db = &app.state.db;
        let then = 1_765_000_000;
        for i in 0..MAX_SIDECARS_PER_ORG {
            let stored = pins::report(db, &org_id, &report_of(&format!("sc_{i}")), then).await;
            assert!(matches!(stored, Ok(Reported::Stored(_))), "{i}: {stored:?}");
        }
        let new = report_of("sc_new");
        assert_eq!(
            pins::report(db, &org_id, &new, then + 60).await.unwrap(),
            Reported::Full,
            "the live sidecars fill the room"
        );
        let later = then + SIDECAR_SILENT_SECS + 1;
        assert!(matches!(
            pins::report(db, &org_id, &new, later).await.unwrap(),
            Reported::Stored(_)
        ));
        // A sidecar that still reports is counted again.
        pins::report(db, &org_id, &report_of("sc_0"), later)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn reports_of_one_sidecar_racing_keep_one_row_per_tool() {
    // The relay retries a report after 10 s while the first may still be
    // running: on Postgres (no write turn) the two must not both add rows.
    use kalguard_cloud::store::pins;
    use kalguard_wire::pins::PinReport;
    for url in backends() {
        let app = app(&url).await;
        let (org_id, _) = app.org("Racing").await;
        let db = &app.state.db;
        let reports: Vec<PinReport> = (0..8)
            .map(|i| {
                let sha = format!("{:064x}", i + 1);
                serde_json::from_value(report("sc_a", vec![held("delete_repo", &sha)])).unwrap()
            })
            .collect();
        let racing = reports
            .iter()
            .map(|r| pins::report(db, &org_id, r, 1_765_000_000));
        let done = futures_util::future::join_all(racing).await;
        assert!(done.iter().any(Result::is_ok), "{done:?}");
        let (held, all) = pins::held(db, &org_id, 100).await.unwrap();
        assert_eq!((held.len(), all), (1, 1), "{url}: {held:?}");
    }
}

#[tokio::test]
async fn forgetting_asks_first_and_nothing_is_decided_until_confirmed() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Forget").await;
        send_report(&app, &key, "sc_a", vec![held("delete_repo", OFFERED)]).await;
        let id = hold_id(&mut owner, "delete_repo").await;
        // The button's post answers the confirmation page, naming the tool,
        // its server and sidecar, with the same form again.
        let csrf = csrf_of(&owner.get("/tools").await.text());
        let path = format!("/tools/{id}/forget");
        let asked = owner
            .post(&path, &[("csrf", &csrf), ("sha256", OFFERED)])
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
        let page = asked.text();
        for shown in [
            "id=\"confirm\"",
            "trusted on first use",
            "delete_repo",
            "pod-7",
            OFFERED,
            &format!("action=\"{path}\""),
        ] {
            assert!(
                page.contains(shown),
                "{shown} not on the confirmation: {page}"
            );
        }
        assert_eq!(
            decisions(&app, &key, "sc_a", 0).await,
            json!({"decisions": []}),
            "nothing decided before the confirmation"
        );
        assert_eq!(hold_id(&mut owner, "delete_repo").await, id, "still held");
        // A stale form is told so before any confirmation; a viewer cannot
        // even ask; a forged confirmation without the token does nothing.
        let stale = owner
            .post(&path, &[("csrf", &csrf), ("sha256", AGAIN)])
            .await;
        assert_eq!(stale.location(), "/tools?notice=tool_stale");
        let forged = owner
            .post(&path, &[("sha256", OFFERED), ("confirm", "yes")])
            .await;
        assert_ne!(forged.location(), "/tools?notice=tool_forgotten");
        assert_eq!(
            decisions(&app, &key, "sc_a", 0).await,
            json!({"decisions": []})
        );
        // Confirmed: decided, and once decided, no confirmation is asked again.
        let r = decide(&mut owner, &id, "forget", OFFERED).await;
        assert_eq!(r.location(), "/tools?notice=tool_forgotten");
        let polled = decisions(&app, &key, "sc_a", 0).await;
        assert_eq!(polled["decisions"][0]["action"], "forget");
        let again = owner
            .post(&path, &[("csrf", &csrf), ("sha256", OFFERED)])
            .await;
        assert_eq!(again.location(), "/tools?notice=tool_gone");
    }
}

#[tokio::test]
async fn tools_a_report_left_out_and_what_a_control_plane_did_are_shown() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Left").await;
        // A report past its bounds names how many held tools it left out.
        let mut over = report("sc_big", vec![held("delete_repo", OFFERED)]);
        over["leftOut"] = json!(1_234);
        let r = app.api("/api/v1/pins", &key, over).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let page = owner.get("/tools").await.text();
        let left = page
            .split("<table id=\"left-out\">")
            .nth(1)
            .unwrap_or_else(|| panic!("no left-out table: {page}"));
        assert!(
            left.contains("pod-7 (sc_big)") && left.contains("1,234"),
            "{left}"
        );
        assert!(page.contains("kalguard tools list"), "{page}");
        // The next report carries them all: the note goes.
        send_report(&app, &key, "sc_big", vec![held("delete_repo", OFFERED)]).await;
        let page = owner.get("/tools").await.text();
        assert!(!page.contains("id=\"left-out\""), "{page}");

        // A decision delivered again after a restart is settled as applied
        // before; one the CLI took first, as already decided there.
        send_report(
            &app,
            &key,
            "sc_a",
            vec![held("rm", OFFERED), held("search", OFFERED)],
        )
        .await;
        let rm = hold_id(&mut owner, "rm").await;
        let search = hold_id(&mut owner, "search").await;
        decide(&mut owner, &rm, "approve", OFFERED).await;
        decide(&mut owner, &search, "approve", OFFERED).await;
        let before =
            json!({"outcome": "applied", "detail": "applied before the control plane restarted"});
        settle(&app, &key, "sc_a", &rm, before).await;
        let first =
            json!({"outcome": "gone", "detail": "pinned by bob (sha256 2222222222222222…)"});
        settle(&app, &key, "sc_a", &search, first).await;
        let page = owner.get("/tools").await.text();
        let decided = page.split("<h3>Decided</h3>").nth(1).unwrap();
        let outcome = |id: &str| {
            let row = decided
                .split("<tr class=\"decided-tool\"")
                .find(|row| row.contains(id))
                .unwrap();
            common::between(row, "class=\"wrap outcome\">", "</td>")
        };
        assert_eq!(
            outcome(&rm),
            "applied (applied before the control plane restarted)"
        );
        assert_eq!(
            outcome(&search),
            "not applied: already decided on the control plane (pinned by bob (sha256 2222222222222222…))"
        );
    }
}

#[tokio::test]
async fn reports_that_only_leave_tools_out_keep_within_the_room() {
    // A report holding no tool but a `leftOut` count takes a row too: new
    // sidecar IDs without end must not grow the organisation's rows without
    // end, past the room its held tools have.
    use kalguard_cloud::store::pins::{self, Reported, MAX_SIDECARS_PER_ORG};
    use kalguard_wire::pins::PinReport;
    let left_only = |sidecar: &str| -> PinReport {
        let mut r = report(sidecar, vec![]);
        r["leftOut"] = json!(7);
        serde_json::from_value(r).unwrap()
    };
    for url in backends() {
        let app = app(&url).await;
        let (org_id, _) = app.org("Flood").await;
        let db = &app.state.db;
        let at = 1_765_000_000;
        for i in 0..MAX_SIDECARS_PER_ORG {
            let stored = pins::report(db, &org_id, &left_only(&format!("sc_{i}")), at).await;
            assert!(matches!(stored, Ok(Reported::Stored(_))), "{i}: {stored:?}");
        }
        assert_eq!(
            pins::report(db, &org_id, &left_only("sc_more"), at)
                .await
                .unwrap(),
            Reported::Full
        );
        let with_tools: PinReport =
            serde_json::from_value(report("sc_tools", vec![held("rm", OFFERED)])).unwrap();
        assert_eq!(
            pins::report(db, &org_id, &with_tools, at).await.unwrap(),
            Reported::Full
        );
        let shown = pins::left_out(db, &org_id, 0, i64::MAX).await.unwrap();
        assert_eq!(shown.len(), MAX_SIDECARS_PER_ORG as usize);
        // A sidecar already in the room still reports.
        assert!(matches!(
            pins::report(db, &org_id, &left_only("sc_0"), at + 1)
                .await
                .unwrap(),
            Reported::Stored(_)
        ));
    }
}
