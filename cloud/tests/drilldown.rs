//! Drill-down: chart bars and refusal rows lead to exactly their events in the
//! audit log; per-agent and per-key pages count what that agent or key did, within
//! the organisation only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{app, backends, between, event};
use kalguard_cloud::store::keys;
use kalguard_cloud::time_util::{day_label, day_of, now};
use serde_json::json;

/// The audit rows of a page (`<tr class="event">`).
fn rows(html: &str) -> usize {
    html.matches("<tr class=\"event\">").count()
}

/// `href` values of links with `class`, HTML entities undone.
fn links(html: &str, class: &str) -> Vec<String> {
    html.split(&format!("class=\"{class}\" href=\""))
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn a_day_bar_and_a_code_row_open_exactly_their_events() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Drill").await;
        let mut events = Vec::new();
        for i in 0..4 {
            events.push(event("bot-a", "allow", &format!("ok-{i}"), None));
        }
        for i in 0..3 {
            events.push(event(
                "bot-a",
                "deny",
                &format!("pb-{i}"),
                Some("PROMPT_BLOCKED"),
            ));
        }
        events.push(event("bot-b", "deny", "pd-0", Some("POLICY_DENY")));
        let r = app
            .api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        let usage = b.get("/usage?days=7").await.text();
        let today = day_label(day_of(now()));
        let bars = links(&usage, "bar-link");
        assert_eq!(bars.len(), 7);
        let today_bar = bars.iter().find(|h| h.contains(&today)).unwrap();
        assert_eq!(today_bar, &format!("/audit?from={today}&to={today}"));
        assert_eq!(
            rows(&b.get(today_bar).await.text()),
            8,
            "{url}: the day's 8 events"
        );

        let by_code = between(&usage, "<table id=\"by-code\">", "</table>");
        let code_link = links(&by_code, "drill")
            .into_iter()
            .find(|h| h.contains("PROMPT_BLOCKED"))
            .unwrap();
        let page = b.get(&code_link).await.text();
        assert_eq!(rows(&page), 3, "{url}: {code_link}");
        assert!(!page.contains("POLICY_DENY"));
        let by_agent = between(&usage, "<table id=\"by-agent\">", "</table>");
        assert!(links(&by_agent, "drill").contains(&"/agent?id=bot-b&days=7".to_string()));
    }
}

#[tokio::test]
async fn the_agent_page_counts_that_agent_only_within_the_organisation() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Agents").await;
        let (_, other_key) = app.org("Other").await;
        let mut events: Vec<_> = (0..1_200)
            .map(|i| event("bot/α-1", "allow", &format!("a-{i}"), None))
            .collect();
        events.push(event("bot/α-1", "deny", "d-0", Some("TOOL_DENIED")));
        events.push(event(
            "bot/α-1",
            "require_approval",
            "h-0",
            Some("REQUIRE_APPROVAL"),
        ));
        events.push(event("someone-else", "deny", "x-0", Some("POLICY_DENY")));
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        // The same agent ID in another organisation: none of it shows here.
        let theirs: Vec<_> = (0..5)
            .map(|i| event("bot/α-1", "deny", &format!("t-{i}"), Some("PROMPT_BLOCKED")))
            .collect();
        app.api(
            "/api/v1/usage/report",
            &other_key,
            json!({"events": theirs}),
        )
        .await;
        let csrf = b.csrf().await;
        let r = b
            .post(
                "/tokens",
                &[
                    ("csrf", &csrf),
                    ("name", "alpha token"),
                    ("agent_id", "bot/α-1"),
                    ("capability", "prompt:send"),
                    ("expiry", "7d"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        let agents = b.get("/agents").await.text();
        let link = links(&agents, "drill")
            .into_iter()
            .find(|h| h.starts_with("/agent?id=bot%2F"))
            .unwrap();
        assert_eq!(link, "/agent?id=bot%2F%CE%B1-1");
        let page = b.get(&link).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        let value = |id: &str| between(&html, &format!("id=\"{id}\">"), "<");
        assert_eq!(
            value("agent-checks"),
            "1,202",
            "{url}: thousands separators"
        );
        assert_eq!(value("agent-allowed"), "1,200");
        assert_eq!(value("agent-denied"), "1", "{url}: not the other org's 5");
        assert_eq!(value("agent-approval"), "1");
        assert_ne!(value("agent-last-seen"), "never");
        let by_code = between(&html, "<table id=\"agent-by-code\">", "</table>");
        assert!(by_code.contains("TOOL_DENIED") && by_code.contains("REQUIRE_APPROVAL"));
        assert!(!by_code.contains("PROMPT_BLOCKED") && !by_code.contains("POLICY_DENY"));
        let tokens_html = between(&html, "<table id=\"agent-tokens\">", "</table>");
        assert!(tokens_html.contains("alpha token") && tokens_html.contains("active"));
        assert_eq!(rows(&html), 10, "the latest ten events");
        // Its audit link lists its events only: 1,202 of them, 50 a page.
        let audit = between(&html, "id=\"agent-audit\"", "</a>");
        assert!(audit.contains("1,202 audit events"), "{audit}");
        let href =
            between(&html, "<a href=\"/audit?", "\" id=\"agent-audit\"").replace("&amp;", "&");
        let listed = b.get(&format!("/audit?{href}")).await.text();
        assert_eq!(rows(&listed), 50);
        assert!(!listed.contains("someone-else"));

        // An agent never seen here: zeros, no tokens, nothing of the other org.
        let html = b.get("/agent?id=ghost").await.text();
        assert_eq!(between(&html, "id=\"agent-last-seen\">", "<"), "never");
        assert_eq!(b.get("/agent").await.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn each_key_counts_what_its_sidecars_reported() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, first) = app.signup("Keys").await;
        let first_id = keys::authenticate(&app.state.db, &first)
            .await
            .unwrap()
            .unwrap();
        let second = keys::create(
            &app.state.db,
            &first_id.org_id,
            "second",
            kalguard_cloud::secrets::KeyMode::Live,
        )
        .await
        .unwrap();
        let second_id = keys::authenticate(&app.state.db, &second)
            .await
            .unwrap()
            .unwrap()
            .key_id;
        let batch = |prefix: &str, n: usize| {
            let events: Vec<_> = (0..n)
                .map(|i| event("bot", "allow", &format!("{prefix}-{i}"), None))
                .collect();
            json!({"batchId": format!("batch-{prefix}"), "events": events})
        };
        app.api("/api/v1/usage/report", &first, batch("one", 7))
            .await;
        // Retried: a second report with the same events, no new checks.
        app.api("/api/v1/usage/report", &first, batch("one", 7))
            .await;
        app.api("/api/v1/usage/report", &second, batch("two", 3))
            .await;

        let list = b.get("/keys").await.text();
        let row = |id: &str| {
            let at = list.find(&format!("data-key-id=\"{id}\"")).unwrap();
            list[at..at + list[at..].find("</tr>").unwrap()].to_string()
        };
        let first_row = row(&first_id.key_id);
        assert!(
            first_row.contains("<td class=\"key-events\">14</td><td class=\"key-checks\">7</td>"),
            "{url}: {first_row}"
        );
        assert!(row(&second_id)
            .contains("<td class=\"key-events\">3</td><td class=\"key-checks\">3</td>"));

        let page = b.get(&format!("/keys/{}", first_id.key_id)).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        assert_eq!(between(&html, "id=\"key-reports\">", "<"), "2");
        assert_eq!(between(&html, "id=\"key-events\">", "<"), "14");
        assert_eq!(between(&html, "id=\"key-checks\">", "<"), "7");
        assert_eq!(html.matches("<tr class=\"day\">").count(), 30);

        // Another organisation's key is not found here.
        let (_, their_key) = app.org("Theirs").await;
        let theirs = keys::authenticate(&app.state.db, &their_key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            b.get(&format!("/keys/{}", theirs.key_id)).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn refusals_by_agent_are_paged_not_cut() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Fleet").await;
        let events: Vec<_> = (0..45)
            .map(|i| {
                event(
                    &format!("agent-{i:02}"),
                    "deny",
                    &format!("d-{i}"),
                    Some("POLICY_DENY"),
                )
            })
            .collect();
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        let agents = |html: &str| {
            between(html, "<table id=\"by-agent\">", "</table>")
                .matches("<td class=\"agent\">")
                .count()
        };
        let first = b.get("/usage?days=7").await.text();
        assert_eq!(agents(&first), 20, "{url}");
        assert!(first.contains("id=\"agents-next\" href=\"/usage?days=7&amp;agents_page=1\""));
        assert!(!first.contains("agents-previous"));
        let second = b.get("/usage?days=7&agents_page=1").await.text();
        assert_eq!(agents(&second), 20);
        assert!(second.contains("id=\"agents-previous\"") && second.contains("agents_page=2"));
        let third = b.get("/usage?days=7&agents_page=2").await.text();
        assert_eq!(agents(&third), 5, "{url}: all 45 agents over three pages");
        assert!(!third.contains("agents-next"));
        assert!(third.contains("<td class=\"agent\">agent-44</td>"));
    }
}

#[tokio::test]
async fn the_audit_page_says_how_many_events_match() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Counted").await;
        let mut events: Vec<_> = (0..7)
            .map(|i| event("bot", "allow", &format!("ok-{i}"), None))
            .collect();
        events.push(event("bot", "deny", "pd-0", Some("POLICY_DENY")));
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        let count = |html: String| between(&html, "<p class=\"hint\" id=\"result-count\">", "</p>");
        assert_eq!(
            count(b.get("/audit").await.text()),
            "8 events match.",
            "{url}"
        );
        assert_eq!(
            count(b.get("/audit?code=POLICY_DENY").await.text()),
            "1 event matches."
        );
        assert_eq!(
            count(b.get("/audit?agent=nobody").await.text()),
            "0 events match."
        );
        // Past the cap the count stops counting.
        let org_id = kalguard_cloud::store::keys::authenticate(&app.state.db, &key)
            .await
            .unwrap()
            .unwrap()
            .org_id;
        let many: Vec<_> = (0..10_000)
            .map(|i| kalguard_cloud::store::usage::Event {
                request_id: format!("m-{i}"),
                event_type: "prompt_check".into(),
                agent_id: "bulk".into(),
                decision: "allow".into(),
                error_code: String::new(),
                ts_ms: kalguard_cloud::time_util::now_ms(),
                phase: kalguard_cloud::store::usage::Phase::Request,
                signals: Default::default(),
            })
            .collect();
        kalguard_cloud::store::usage::ingest(&app.state.db, &org_id, None, &many, now())
            .await
            .unwrap();
        assert_eq!(
            count(b.get("/audit?agent=bulk").await.text()),
            "10,000 events match."
        );
        assert_eq!(
            count(b.get("/audit").await.text()),
            "More than 10,000 events match."
        );
    }
}

#[tokio::test]
async fn the_audit_log_pages_back_as_well_as_forward() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Pager").await;
        let events: Vec<_> = (0..120)
            .map(|i| {
                let mut e = event("bot", "allow", &format!("r-{i:03}"), None);
                e["timestamp"] = json!((now() - 1_000 + i) * 1000);
                e
            })
            .collect();
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        let ids = |html: &str| -> Vec<String> {
            html.split("<td class=\"request-id\">")
                .skip(1)
                .map(|s| s[..s.find('<').unwrap()].to_owned())
                .collect()
        };
        let link = |html: &str, id: &str| -> Option<String> {
            let at = html.find(&format!("id=\"{id}\""))?;
            let start = html[..at].rfind("href=\"")? + 6;
            Some(html[start..start + html[start..].find('"')?].replace("&amp;", "&"))
        };
        let one = b.get("/audit").await.text();
        assert_eq!(ids(&one).first().unwrap(), "r-119");
        assert!(link(&one, "previous-page").is_none());
        let two = b.get(&link(&one, "next-page").unwrap()).await.text();
        let three = b.get(&link(&two, "next-page").unwrap()).await.text();
        assert_eq!(ids(&three).len(), 20, "{url}");
        assert!(link(&three, "next-page").is_none());
        let back_two = b.get(&link(&three, "previous-page").unwrap()).await.text();
        assert_eq!(ids(&back_two), ids(&two), "{url}: the same page going back");
        assert!(link(&back_two, "next-page").is_some());
        let back_one = b
            .get(&link(&back_two, "previous-page").unwrap())
            .await
            .text();
        assert_eq!(ids(&back_one), ids(&one), "{url}");
        assert!(
            link(&back_one, "previous-page").is_none(),
            "the newest page has none"
        );
        // Filters stay on while paging back.
        let filtered = b.get("/audit?agent=bot").await.text();
        let next = link(&filtered, "next-page").unwrap();
        let back = link(&b.get(&next).await.text(), "previous-page").unwrap();
        assert!(back.starts_with("/audit?agent=bot&newer="), "{back}");
        assert_eq!(
            b.get("/audit?newer=garbage").await.status,
            StatusCode::BAD_REQUEST
        );
    }
}
