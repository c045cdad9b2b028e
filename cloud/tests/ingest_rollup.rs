//! The daily rollup a mixed batch writes (`usage_daily`, aggregated in memory and
//! upserted once per organisation, day, agent and code) equals what its stored
//! events say, event by event, on every backend: no count lost or doubled by
//! duplicates inside a batch, a retried batch or events already stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashSet};

use common::{app, backends};
use kalguard_cloud::store::usage::{self, Event, Phase};
use kalguard_cloud::time_util::{day_of, now};

/// `(day, agent, code)` → `(checks, allowed, denied, approval, last_seen_ms)`.
type Truth = BTreeMap<(i64, String, String), (i64, i64, i64, i64, i64)>;

/// One `usage_daily` row as selected below.
type RollupRow = (i64, String, String, i64, i64, i64, i64, i64);

fn mixed_batch(tag: &str, base_ms: i64) -> Vec<Event> {
    let codes = [
        "PROMPT_BLOCKED",
        "TOKEN_REVOKED",
        "REQUIRE_APPROVAL",
        "POLICY_DENY",
    ];
    (0..300)
        .map(|i: i64| {
            // Every 10th event repeats the key (time, request ID, type, phase)
            // of the one before it, with other contents: the first copy is kept.
            let k = if i % 10 == 9 { i - 1 } else { i };
            let decision = match i % 5 {
                0 | 1 => "allow",
                2 => "require_approval",
                _ => "deny",
            };
            Event {
                request_id: format!("{tag}-{k}"),
                event_type: if k % 3 == 0 {
                    "tool_check"
                } else {
                    "prompt_check"
                }
                .into(),
                agent_id: format!("agent-{}", i % 50),
                decision: decision.into(),
                error_code: if decision == "allow" {
                    String::new()
                } else {
                    codes[(i % 4) as usize].into()
                },
                // Two UTC days, and times out of order within the batch.
                ts_ms: base_ms - (k % 2) * 86_400_000 - (k * 7_919 % 600) * 1000,
                phase: if k % 7 == 0 {
                    Phase::Answer
                } else {
                    Phase::Request
                },
                signals: Default::default(),
            }
        })
        .collect()
}

/// The rollup recomputed from events one at a time, first copy of each key
/// (`Event::key`) kept.
fn truth_of(batches: &[&[Event]]) -> Truth {
    let mut seen = HashSet::new();
    let mut truth = Truth::new();
    for e in batches.iter().flat_map(|b| b.iter()) {
        if !seen.insert((e.ts_ms, e.request_id.clone(), e.event_type.clone(), e.phase)) {
            continue;
        }
        let row = truth
            .entry((
                day_of(e.ts_ms / 1000),
                e.agent_id.clone(),
                e.error_code.clone(),
            ))
            .or_default();
        row.0 += i64::from(e.is_check());
        match e.decision.as_str() {
            "allow" => row.1 += 1,
            "require_approval" => row.3 += 1,
            _ => row.2 += 1,
        }
        row.4 = row.4.max(e.ts_ms);
    }
    truth
}

#[tokio::test]
async fn a_mixed_batchs_rollup_equals_its_events_one_by_one() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, _) = app.org("Rollup").await;
        let base_ms = (now() - 60) * 1000;
        let first = mixed_batch("a", base_ms);
        // A second batch: half new events, half already stored by the first.
        let mut second = mixed_batch("b", base_ms);
        second.truncate(150);
        second.extend(first[..150].iter().cloned());

        let db = &app.state.db;
        let one = usage::ingest(db, &org_id, Some("batch-1"), &first, now())
            .await
            .unwrap();
        let two = usage::ingest(db, &org_id, Some("batch-2"), &second, now())
            .await
            .unwrap();
        // A retried batch counts nothing.
        let again = usage::ingest(db, &org_id, Some("batch-1"), &first, now())
            .await
            .unwrap();
        assert_eq!(again.counted, 0, "{url}");

        let truth = truth_of(&[&first, &second]);
        let expected_checks: i64 = truth.values().map(|r| r.0).sum();
        assert_eq!(one.counted + two.counted, expected_checks, "{url}");

        let rows: Vec<RollupRow> = sqlx::query_as(
            "SELECT day, agent_id, error_code, checks, allowed, denied, approval, last_seen_ms \
             FROM usage_daily WHERE org_id = $1",
        )
        .bind(&org_id)
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let stored: Truth = rows
            .into_iter()
            .map(|(d, a, c, ch, al, de, ap, ls)| ((d, a, c), (ch, al, de, ap, ls)))
            .collect();
        assert_eq!(stored, truth, "{url}");
        assert!(
            truth.len() >= 50,
            "the batch spans many rollup rows: {}",
            truth.len()
        );

        // And the audit log holds exactly the unique events.
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events WHERE org_id = $1")
            .bind(&org_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        let events: i64 = truth.values().map(|r| r.1 + r.2 + r.3).sum();
        assert_eq!(n, events, "{url}");
    }
}
