//! Audit search people can use, on every backend: agent and code filters match
//! prefixes in any case (the drill-down links match one value exactly), pages
//! through several matched values stay in order forward and back, and the risk
//! score and categories reported with an event are kept, shown, exported and
//! filterable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{app, backends, between, event, Browser};
use kalguard_cloud::time_util::now;
use serde_json::json;

/// The request IDs of a page's rows, top to bottom.
fn request_ids(html: &str) -> Vec<String> {
    html.match_indices("<td class=\"request-id\">")
        .map(|(i, _)| between(&html[i..], ">", "<"))
        .collect()
}

/// The href of the link with `id` on the page, unescaped.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let i = html[..at].rfind("<a href=\"")?;
    Some(between(&html[i..], "<a href=\"", "\"").replace("&amp;", "&"))
}

/// Every row a filter finds, following Next links, and then back again with
/// Previous links from the last page (each page's rows in page order).
async fn all_pages(b: &mut Browser<'_>, first: &str) -> (Vec<String>, Vec<String>) {
    let (mut forward, mut pages) = (Vec::new(), Vec::new());
    let mut path = first.to_string();
    loop {
        let html = b.get(&path).await.text();
        let ids = request_ids(&html);
        forward.extend(ids.clone());
        pages.push(ids);
        match link(&html, "next-page") {
            Some(next) => path = next,
            None => break,
        }
    }
    let mut backward = pages.pop().unwrap_or_default();
    loop {
        let html = b.get(&path).await.text();
        match link(&html, "previous-page") {
            Some(previous) => {
                path = previous;
                let html = b.get(&path).await.text();
                let mut ids = request_ids(&html);
                ids.extend(backward);
                backward = ids;
            }
            None => break,
        }
    }
    (forward, backward)
}

#[tokio::test]
async fn agent_and_code_match_prefixes_in_any_case() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let agents = [
            "Support-Bot",
            "support-bot-2",
            "sales-bot",
            "agent-1",
            "agent-10",
            "agent-2",
        ];
        let codes = ["PROMPT_BLOCKED", "PROMPT_INJECTION", "POLICY_DENY"];
        let mut events = Vec::new();
        for i in 0..180i64 {
            let agent = agents[(i % 6) as usize];
            let code = codes[(i % 3) as usize];
            let mut e = event(agent, "deny", &format!("req-{i:03}"), Some(code));
            e["timestamp"] = json!((now() - 3600) * 1000 + i * 1000);
            events.push(e);
        }
        let r = app
            .api(
                "/api/v1/usage/report",
                &key,
                json!({"batchId": "search", "events": events}),
            )
            .await;
        assert_eq!(r.status, 200);

        // "SUPPORT" finds both support agents, whatever their case: 60 events.
        let html = b.get("/audit?agent=SUPPORT").await.text();
        assert!(html.contains("60 events match."), "{html}");
        let (forward, backward) = all_pages(&mut b, "/audit?agent=SUPPORT").await;
        let mut expected: Vec<String> = (0..180)
            .rev()
            .filter(|i| i % 6 < 2)
            .map(|i| format!("req-{i:03}"))
            .collect();
        assert_eq!(forward, expected, "newest first, each row once");
        assert_eq!(backward, expected, "the same rows paging back");

        // A prefix also matches longer IDs; "are exactly" (the drill-down links)
        // matches the ID alone, as typed.
        let html = b.get("/audit?agent=agent-1").await.text();
        assert!(html.contains("60 events match."), "agent-1 and agent-10");
        let html = b.get("/audit?agent=agent-1&match=exact").await.text();
        assert!(html.contains("30 events match."));
        assert!(!html.contains("agent-10"));
        let html = b.get("/audit?agent=AGENT-1&match=exact").await.text();
        assert!(html.contains("No events match."));
        let html = b.get("/audit?agent=nobody").await.text();
        assert!(html.contains("0 events match.") && html.contains("No events match."));

        // Codes by prefix in any case, combined with an agent prefix.
        let html = b.get("/audit?code=prompt_").await.text();
        assert!(html.contains("120 events match."), "{html}");
        let html = b.get("/audit?code=Prompt_B&agent=sales").await.text();
        let ids = request_ids(&html);
        expected = (0..180)
            .rev()
            .filter(|i| i % 6 == 2 && i % 3 == 0)
            .map(|i| format!("req-{i:03}"))
            .collect();
        assert_eq!(ids, expected);

        // The CSV export finds the same rows.
        let csv = b.get("/audit.csv?agent=support").await.text();
        assert_eq!(csv.lines().count(), 61);

        // The page's form keeps the choice, and the links carry it.
        let html = b.get("/audit?agent=agent-1&match=exact").await.text();
        assert!(html.contains("<option value=\"exact\" selected>"));
        assert!(html.contains("/audit.csv?agent=agent-1&amp;match=exact"));
    }
}

#[tokio::test]
async fn drill_down_links_match_their_agent_exactly() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let events: Vec<_> = ["bot", "bot-2"]
            .iter()
            .enumerate()
            .map(|(i, a)| event(a, "allow", &format!("r{i}"), None))
            .collect();
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        let html = b.get("/agent?id=bot").await.text();
        let href = link(&html, "agent-audit").unwrap();
        assert!(href.contains("match=exact"), "{href}");
        let html = b.get(&href).await.text();
        assert_eq!(request_ids(&html), ["r0"]);
    }
}

#[tokio::test]
async fn risk_scores_and_categories_are_kept_shown_and_filterable() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let mut events = Vec::new();
        for i in 0..120i64 {
            let mut e = event(
                "agent-a",
                "deny",
                &format!("req-{i:03}"),
                Some("PROMPT_BLOCKED"),
            );
            e["timestamp"] = json!((now() - 3600) * 1000 + i * 1000);
            // Every 4th: exfiltration at 0.95; every 4th + 1: role play at 0.6;
            // the rest no findings.
            match i % 4 {
                0 => {
                    e["metadata"]["riskScore"] = json!(0.95);
                    e["categories"] = json!(["exfiltration", "instruction_override"]);
                }
                1 => {
                    e["metadata"]["riskScore"] = json!(0.6);
                    e["categories"] = json!(["role_play"]);
                }
                _ => e["metadata"]["riskScore"] = json!(0.1),
            }
            events.push(e);
        }
        let r = app
            .api(
                "/api/v1/usage/report",
                &key,
                json!({"batchId": "risk", "events": events}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        // A score out of range is refused, naming the field.
        let mut bad = event("agent-a", "deny", "bad", Some("PROMPT_BLOCKED"));
        bad["metadata"]["riskScore"] = json!(7);
        let r = app
            .api("/api/v1/usage/report", &key, json!({"events": [bad]}))
            .await;
        assert_eq!(r.status, 400);
        assert!(r.text().contains("events[0].metadata.riskScore"));

        // Shown on the page.
        let html = b.get("/audit").await.text();
        let row = &html[html.find("req-116").unwrap()..];
        assert_eq!(between(row, "<td class=\"risk\">", "<"), "0.95");
        assert_eq!(
            between(row, "<td class=\"categories\">", "<"),
            "exfiltration, instruction_override"
        );
        // The category select offers what the log holds.
        for c in ["exfiltration", "instruction_override", "role_play"] {
            assert!(html.contains(&format!("<option value=\"{c}\"")), "{c}");
        }

        // Filters: a category, a minimum risk, both; paged through in order.
        let every = |step: i64, rest: &[i64]| -> Vec<String> {
            (0..120)
                .rev()
                .filter(|i| rest.contains(&(i % step)))
                .map(|i| format!("req-{i:03}"))
                .collect()
        };
        let (forward, backward) = all_pages(&mut b, "/audit?category=exfiltration").await;
        assert_eq!(forward, every(4, &[0]));
        assert_eq!(backward, forward);
        let (forward, _) = all_pages(&mut b, "/audit?risk=0.5").await;
        assert_eq!(forward, every(4, &[0, 1]));
        let html = b.get("/audit?risk=0.9").await.text();
        assert!(html.contains("30 events match."));
        assert!(html.contains("<option value=\"0.9\" selected>"));
        let html = b
            .get("/audit?risk=0.5&agent=AGENT&decision=deny")
            .await
            .text();
        assert!(html.contains("60 events match."));
        let html = b.get("/audit?risk=0.5&decision=allow").await.text();
        assert!(html.contains("No events match."));
        let html = b.get("/audit?category=role_play&risk=0.7").await.text();
        assert!(html.contains("No events match."));
        let html = b.get("/audit?category=ROLE_PLAY&risk=0.5").await.text();
        assert!(html.contains("30 events match."));
        let r = b.get("/audit?risk=0.6").await;
        assert_eq!(r.status, 400);

        // Exported.
        let csv = b.get("/audit.csv?category=exfiltration").await.text();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 31);
        assert!(
            lines[1].ends_with(",\"0.95\",\"exfiltration instruction_override\""),
            "{}",
            lines[1]
        );
    }
}
