//! Reports sent at the same time, with overlapping request IDs, each one twice
//! at once (a batch retried while the first copy is still in flight) and all
//! again under other batch IDs: every unique event is stored once and counted
//! once, and the counters (the answers' `counted`, the daily rollup, the per-key
//! usage) reconcile with the audit log, on every backend. SQLite stores waiting
//! reports in shared transactions and Postgres runs them concurrently; both must
//! hold this.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use axum::body::Body;
use axum::http::Request;
use common::{app, backends};
use http_body_util::BodyExt;
use kalguard_cloud::time_util::now;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Reports sent at once.
const REPORTS: usize = 12;
/// Events per report; report `r` holds request IDs `r * 100 .. r * 100 + 200`,
/// so each overlaps its neighbours by half.
const PER_REPORT: usize = 200;

/// Report `r`'s events: 50 agents mixed, one refusal in seven, random-looking
/// request IDs. A third of the IDs are a tool check in even reports and a
/// prompt check in odd ones: two events of one request, both kept.
fn events_of(r: usize, ts_ms: i64) -> Vec<Value> {
    (r * 100..r * 100 + PER_REPORT)
        .map(|n| {
            let denied = n % 7 == 0;
            let tool = n % 3 == 0 && r.is_multiple_of(2);
            json!({
                "eventType": if tool { "tool_check" } else { "prompt_check" },
                "agentId": format!("agent-{}", n % 50),
                "decision": if denied { "deny" } else { "allow" },
                "errorCode": if denied { "PROMPT_BLOCKED" } else { "" },
                "timestamp": ts_ms + n as i64,
                "requestId": format!("req_{:032x}", (n as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)),
            })
        })
        .collect()
}

/// Sends every report at once; returns each answer's `(accepted, counted)`.
async fn send_all(
    router: &axum::Router,
    key: &str,
    reports: &[(String, &Vec<Value>)],
) -> Vec<(i64, i64)> {
    let calls: Vec<_> = reports
        .iter()
        .map(|(batch, events)| {
            let body = json!({"batchId": batch, "events": events}).to_string();
            let req = Request::post("/api/v1/usage/report")
                .header("x-api-key", key)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            tokio::spawn(router.clone().oneshot(req))
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        let res = call.await.unwrap().unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).unwrap();
        answers.push((
            answer["accepted"].as_i64().unwrap(),
            answer["counted"].as_i64().unwrap(),
        ));
    }
    answers
}

async fn one_number(db: &kalguard_cloud::Db, sql: &str, org_id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(org_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overlapping_and_resent_reports_store_and_count_each_event_once() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Concurrent").await;
        let ts_ms = (now() - 60) * 1000;
        let reports: Vec<Vec<Value>> = (0..REPORTS).map(|r| events_of(r, ts_ms)).collect();
        let unique: HashSet<(String, String)> = reports
            .iter()
            .flatten()
            .map(|e| {
                let field = |name: &str| e[name].as_str().unwrap().to_string();
                (field("requestId"), field("eventType"))
            })
            .collect();
        let unique_denied = reports
            .iter()
            .flatten()
            .filter(|e| e["decision"] == "deny")
            .map(|e| (e["requestId"].as_str(), e["eventType"].as_str()))
            .collect::<HashSet<_>>()
            .len() as i64;
        let unique = unique.len() as i64;
        assert!(
            unique > (REPORTS * 100) as i64,
            "the overlap holds both types"
        );

        // Every report twice at once under its batch ID, then all of them again
        // at once under new batch IDs.
        let twice: Vec<(String, &Vec<Value>)> = reports
            .iter()
            .enumerate()
            .flat_map(|(r, events)| {
                [
                    (format!("batch-{r}"), events),
                    (format!("batch-{r}"), events),
                ]
            })
            .collect();
        let mut answers = send_all(&app.router, &key, &twice).await;
        let renamed: Vec<(String, &Vec<Value>)> = reports
            .iter()
            .enumerate()
            .map(|(r, events)| (format!("again-{r}"), events))
            .collect();
        let again = send_all(&app.router, &key, &renamed).await;
        assert!(
            again.iter().all(|&(_, counted)| counted == 0),
            "{url}: {again:?}"
        );
        answers.extend(again);

        assert!(answers
            .iter()
            .all(|&(accepted, _)| accepted == PER_REPORT as i64));
        let counted: i64 = answers.iter().map(|&(_, counted)| counted).sum();
        assert_eq!(counted, unique, "{url}: each unique check counted once");

        let db = &app.state.db;
        let rows = one_number(db, "SELECT COUNT(*) FROM events WHERE org_id = $1", &org_id).await;
        assert_eq!(rows, unique, "{url}: each unique event stored once");
        let rollup = |column: &str| {
            format!("SELECT CAST(COALESCE(SUM({column}), 0) AS BIGINT) FROM usage_daily WHERE org_id = $1")
        };
        assert_eq!(
            one_number(db, &rollup("checks"), &org_id).await,
            unique,
            "{url}"
        );
        assert_eq!(
            one_number(db, &rollup("allowed + denied + approval"), &org_id).await,
            rows,
            "{url}: the rollup adds up to the audit log"
        );
        assert_eq!(
            one_number(db, &rollup("denied"), &org_id).await,
            unique_denied,
            "{url}"
        );
        let keys = |column: &str| {
            format!("SELECT CAST(COALESCE(SUM({column}), 0) AS BIGINT) FROM key_usage_daily WHERE org_id = $1")
        };
        let sent = answers.len() as i64;
        assert_eq!(
            one_number(db, &keys("reports"), &org_id).await,
            sent,
            "{url}"
        );
        assert_eq!(
            one_number(db, &keys("events"), &org_id).await,
            sent * PER_REPORT as i64,
            "{url}"
        );
        assert_eq!(
            one_number(db, &keys("checks"), &org_id).await,
            unique,
            "{url}"
        );
    }
}

/// Two reports holding the same new events in opposite orders, sent at once,
/// round after round: each waits for the other's uncommitted rows on Postgres,
/// so inserted in the order sent they could deadlock and one report would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_events_in_opposite_orders_at_once_are_stored_once_without_failing() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Opposite").await;
        let ts_ms = (now() - 60) * 1000;
        for round in 0..20 {
            let events: Vec<Value> = events_of(round, ts_ms)
                .into_iter()
                .map(|mut e| {
                    e["requestId"] = format!("{round}-{}", e["requestId"].as_str().unwrap()).into();
                    e
                })
                .collect();
            let reversed: Vec<Value> = events.iter().rev().cloned().collect();
            let answers = send_all(
                &app.router,
                &key,
                &[
                    (format!("forward-{round}"), &events),
                    (format!("backward-{round}"), &reversed),
                ],
            )
            .await;
            let counted: i64 = answers.iter().map(|&(_, counted)| counted).sum();
            assert_eq!(counted, PER_REPORT as i64, "{url}: round {round}");
        }
        let rows = one_number(
            &app.state.db,
            "SELECT COUNT(*) FROM events WHERE org_id = $1",
            &org_id,
        )
        .await;
        assert_eq!(rows, 20 * PER_REPORT as i64, "{url}");
    }
}
