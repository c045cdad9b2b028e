//! Events keyed by time (migration `0018_events_by_time`): a database of the
//! old schema upgrades with its events, tags and dedup intact; an event's
//! identity is its time, request, type and phase, so a re-sent event is counted
//! once whatever else a sender changes in it, and the same request reported at
//! another time is another event; events far in the past or the future land in
//! the key without breaking pages, counts or the retention purge. On every backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{app, backends};
use kalguard_cloud::store::audit::{self, Cursor, Filter};
use kalguard_cloud::store::usage::{self, Event, Phase, Signals};
use kalguard_cloud::time_util::{day_of, now};
use kalguard_cloud::Db;

fn event(request_id: &str, ts_ms: i64, agent: &str, decision: &str) -> Event {
    Event {
        request_id: request_id.into(),
        event_type: "prompt_check".into(),
        agent_id: agent.into(),
        decision: decision.into(),
        error_code: if decision == "allow" {
            String::new()
        } else {
            "PROMPT_BLOCKED".into()
        },
        ts_ms,
        phase: Phase::Request,
        signals: Signals::default(),
    }
}

async fn one_number(db: &Db, sql: &str, org_id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(org_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    n
}

/// Events stored and events rolled up for `org_id`.
async fn stored_and_rolled(db: &Db, org_id: &str) -> (i64, i64) {
    (
        one_number(db, "SELECT COUNT(*) FROM events WHERE org_id = $1", org_id).await,
        one_number(
            db,
            "SELECT CAST(COALESCE(SUM(allowed + denied + approval), 0) AS BIGINT) \
             FROM usage_daily WHERE org_id = $1",
            org_id,
        )
        .await,
    )
}

/// A sender re-sending an event under a new batch ID with other contents
/// (another agent, a refusal instead of an allow) changes nothing: the first
/// copy stays, counted once. The same request and type at another time is
/// another event.
#[tokio::test]
async fn a_resent_event_with_other_contents_is_counted_once_and_keeps_the_first() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, _) = app.org("Resend").await;
        let ts = (now() - 60) * 1000;
        let first = usage::ingest(
            db,
            &org_id,
            Some("b1"),
            &[event("req_a", ts, "agent-1", "allow")],
            now(),
        )
        .await
        .unwrap();
        assert_eq!(first.counted, 1, "{url}");
        let forged = usage::ingest(
            db,
            &org_id,
            Some("b2"),
            &[event("req_a", ts, "agent-2", "deny")],
            now(),
        )
        .await
        .unwrap();
        assert_eq!((forged.accepted, forged.counted), (1, 0), "{url}");
        let page = audit::search(db, &org_id, &Filter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1, "{url}");
        assert_eq!(
            (
                page.events[0].agent_id.as_str(),
                page.events[0].decision.as_str()
            ),
            ("agent-1", "allow"),
            "{url}: the first copy is kept"
        );
        assert_eq!(stored_and_rolled(db, &org_id).await, (1, 1), "{url}");

        let later = usage::ingest(
            db,
            &org_id,
            Some("b3"),
            &[event("req_a", ts + 1, "agent-1", "allow")],
            now(),
        )
        .await
        .unwrap();
        assert_eq!(later.counted, 1, "{url}: another time is another event");
        assert_eq!(stored_and_rolled(db, &org_id).await, (2, 2), "{url}");
    }
}

/// Events dated far in the past (the epoch) or far in the future (kept in the
/// key as sent, counted at most five minutes after receipt) are stored
/// once, re-sent once, paged newest first with cursors, and the retention purge
/// removes the old ones and those dated beyond it ahead, from the key and from
/// the tags.
#[tokio::test]
async fn events_far_in_the_past_or_future_page_count_and_purge() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, _) = app.org("Edges").await;
        let now_ms = now() * 1000;
        let times = [0, 1, now_ms - 60_000, now_ms, i64::MAX / 2];
        let mut events: Vec<Event> = times
            .iter()
            .enumerate()
            .map(|(i, &ts)| event(&format!("req_{i}"), ts, "agent-1", "deny"))
            .collect();
        events[0].signals = Signals {
            risk_milli: Some(950),
            categories: vec!["exfiltration".into()],
        };
        let stored = usage::ingest(db, &org_id, None, &events, now())
            .await
            .unwrap();
        assert_eq!(stored.counted, 5, "{url}");
        let again = usage::ingest(db, &org_id, None, &events, now())
            .await
            .unwrap();
        assert_eq!(again.counted, 0, "{url}");

        // Newest first, two at a time, forward then back.
        let filter = Filter::default();
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = audit::search(db, &org_id, &filter, cursor.as_ref(), 2)
                .await
                .unwrap();
            seen.extend(page.events.iter().map(|e| e.ts_ms));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut newest_first = times.to_vec();
        newest_first.reverse();
        assert_eq!(seen, newest_first, "{url}");
        let oldest = Cursor::of(&events[0]);
        let (newer, more) = audit::search_newer(db, &org_id, &filter, &oldest, 2)
            .await
            .unwrap();
        assert_eq!(
            newer.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            [now_ms - 60_000, 1],
            "{url}"
        );
        assert!(more, "{url}");
        // The epoch event is found through its tag, joined on the whole key.
        let tagged = Filter {
            category: Some("exfiltration".into()),
            ..Filter::default()
        };
        let page = audit::search(db, &org_id, &tagged, None, 10).await.unwrap();
        assert_eq!(
            page.events.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            [0],
            "{url}"
        );

        // Retention: everything older than 30 days goes, tags too, and what is
        // dated more than 30 days ahead (`i64::MAX / 2`).
        usage::purge(db, &org_id, 30, now()).await.unwrap();
        assert_eq!(
            one_number(db, "SELECT COUNT(*) FROM events WHERE org_id = $1", &org_id).await,
            2,
            "{url}"
        );
        assert_eq!(
            one_number(
                db,
                "SELECT COUNT(*) FROM event_tags WHERE org_id = $1",
                &org_id
            )
            .await,
            0,
            "{url}"
        );
        let today = day_of(now_ms / 1000);
        assert_eq!(
            usage::checks_on_day(db, &org_id, today).await.unwrap(),
            times
                .iter()
                .filter(|&&t| day_of(t.min(now_ms + 300_000) / 1000) == today)
                .count() as i64,
            "{url}: today's events are today's checks, the future's too (at most \
             five minutes after receipt)"
        );
    }
}

/// A fresh database on the same server as `url` (a new SQLite file; a new
/// Postgres database), dropped by [`drop_fresh`].
async fn fresh(url: &str) -> (String, Option<String>) {
    let name = format!(
        "kg_upgrade_{}",
        kalguard_cloud::secrets::random_string(10).to_lowercase()
    );
    if url.starts_with("sqlite:") {
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        return (
            format!("sqlite://{}?mode=rwc", dir.join("c.db").display()),
            None,
        );
    }
    let admin = Db::connect(url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin.pool)
        .await
        .unwrap();
    admin.pool.close().await;
    let base = url.rsplit_once('/').unwrap().0;
    (format!("{base}/{name}"), Some(name))
}

/// `FORCE`: a closed pool's server sessions may still be ending.
async fn drop_fresh(url: &str, name: Option<String>) {
    if let Some(name) = name {
        let admin = Db::connect(url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin.pool)
            .await
            .unwrap();
    }
}

/// A database populated under the schema before `0018_events_by_time` (events
/// keyed by request, with their tags and rollup) upgrades: every event is kept
/// with its columns, pages read newest first on the new key, tags still join to
/// their events, an old event re-sent is not counted again and a new one is.
#[tokio::test]
async fn an_old_schema_database_upgrades_with_its_events_and_dedup() {
    for url in backends() {
        let (fresh_url, name) = fresh(&url).await;
        let db = Db::connect(&fresh_url).await.unwrap();
        // The migrations before 0018, from a copy of the directory.
        let old = std::env::temp_dir().join(format!(
            "kg_old_migrations_{}",
            kalguard_cloud::secrets::random_string(10)
        ));
        std::fs::create_dir_all(&old).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            if file.as_str() < "0018" {
                std::fs::copy(&path, old.join(&file)).unwrap();
            }
        }
        sqlx::migrate::Migrator::new(old.clone())
            .await
            .unwrap()
            .run(&db.pool)
            .await
            .unwrap();
        std::fs::remove_dir_all(&old).ok();
        let org_id = kalguard_cloud::store::orgs::create_with_owner(&db, "Old", "o@old.test", "x")
            .await
            .unwrap()
            .org_id;
        // Events stored by the old code: old key order, both phases, a tagged one.
        let base = (now() - 3_600) * 1000;
        let old_events: Vec<Event> = (0..40)
            .map(|i: i64| {
                let mut e = event(
                    &format!("req_{:04x}", (i * 7_919) % 65_536),
                    base + i * 1000,
                    &format!("agent-{}", i % 3),
                    if i % 4 == 0 { "deny" } else { "allow" },
                );
                if i % 10 == 0 {
                    e.phase = Phase::Answer;
                }
                if i == 5 {
                    e.signals = Signals {
                        risk_milli: Some(910),
                        categories: vec!["role_play".into()],
                    };
                }
                e
            })
            .collect();
        for e in &old_events {
            sqlx::query(
                "INSERT INTO events (org_id, request_id, event_type, phase, agent_id, decision, \
                 error_code, ts_ms, risk_milli, categories) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&org_id)
            .bind(&e.request_id)
            .bind(&e.event_type)
            .bind(e.phase.as_str())
            .bind(&e.agent_id)
            .bind(&e.decision)
            .bind(&e.error_code)
            .bind(e.ts_ms)
            .bind(e.signals.risk_milli)
            .bind(e.signals.categories.join(","))
            .execute(&db.pool)
            .await
            .unwrap();
            for tag in e.signals.tags() {
                sqlx::query(
                    "INSERT INTO event_tags (org_id, tag, ts_ms, request_id, event_type, phase, \
                     agent_id, decision, error_code, risk_milli) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&org_id)
                .bind(tag)
                .bind(e.ts_ms)
                .bind(&e.request_id)
                .bind(&e.event_type)
                .bind(e.phase.as_str())
                .bind(&e.agent_id)
                .bind(&e.decision)
                .bind(&e.error_code)
                .bind(e.signals.risk_milli.unwrap_or(-1))
                .execute(&db.pool)
                .await
                .unwrap();
            }
        }

        db.migrate().await.unwrap();

        // Every event, every column, newest first on the new key.
        let page = audit::search(&db, &org_id, &Filter::default(), None, 100)
            .await
            .unwrap();
        let mut expected = old_events.clone();
        expected.reverse();
        let shape = |e: &Event| {
            (
                e.ts_ms,
                e.request_id.clone(),
                e.phase,
                e.agent_id.clone(),
                e.decision.clone(),
                e.error_code.clone(),
                e.signals.clone(),
            )
        };
        assert_eq!(
            page.events.iter().map(shape).collect::<Vec<_>>(),
            expected.iter().map(shape).collect::<Vec<_>>(),
            "{url}"
        );
        let by_risk = Filter {
            min_risk: Some(900),
            ..Filter::default()
        };
        let page = audit::search(&db, &org_id, &by_risk, None, 10)
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1, "{url}");
        assert_eq!(page.events[0].request_id, old_events[5].request_id, "{url}");
        // The time index is the key now; the filter indexes are rebuilt.
        let by_agent = Filter {
            agents: Some(vec!["agent-1".into()]),
            decision: Some("allow".into()),
            ..Filter::default()
        };
        assert_eq!(
            audit::count(&db, &org_id, &by_agent, 1_000).await.unwrap(),
            Some(
                old_events
                    .iter()
                    .filter(|e| e.agent_id == "agent-1" && e.decision == "allow")
                    .count() as i64
            ),
            "{url}"
        );

        // Re-sent old events are not counted again; a new one is, and so is an
        // old request reported at another time (the new key).
        let mut resent = old_events[..10].to_vec();
        resent.push(event("req_new", base + 100_000, "agent-1", "allow"));
        let mut later = old_events[1].clone();
        later.ts_ms += 1;
        resent.push(later);
        let ingested = usage::ingest(&db, &org_id, Some("after"), &resent, now())
            .await
            .unwrap();
        assert_eq!((ingested.accepted, ingested.counted), (12, 2), "{url}");
        assert_eq!(
            one_number(
                &db,
                "SELECT COUNT(*) FROM events WHERE org_id = $1",
                &org_id
            )
            .await,
            42,
            "{url}"
        );
        db.pool.close().await;
        drop_fresh(&url, name).await;
    }
}

/// The rollup's checks of `org_id` per day, as (day, checks).
async fn rolled_days(db: &Db, org_id: &str) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT day, CAST(SUM(checks) AS BIGINT) FROM usage_daily WHERE org_id = $1 \
         GROUP BY day ORDER BY day",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Asserts that `org_id` holds one event, rolled up once, as a check of `day`.
async fn stored_once_on(db: &Db, org_id: &str, day: i64, url: &str) {
    assert_eq!(stored_and_rolled(db, org_id).await, (1, 1), "{url}");
    assert_eq!(rolled_days(db, org_id).await, [(day, 1)], "{url}");
}

/// A sidecar whose clock runs an hour ahead re-sends its report (a lost
/// answer) under another batch ID, and without one as the original sidecar
/// does: every receipt is at another millisecond, so a time clamped to the
/// receipt would be another key each time. The event is stored and counted
/// once, on the day of its first receipt (never a future day).
#[tokio::test]
async fn a_future_dated_event_resent_is_counted_once_on_its_receipt_day() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, key) = app.org("Skewed").await;
        let ahead_ms = (now() + 3_600) * 1000;
        let event = serde_json::json!({"eventType": "prompt_check", "agentId": "a1",
            "decision": "allow", "requestId": "req_skewed", "timestamp": ahead_ms});
        let mut counted = 0;
        for batch in [Some("b1"), Some("b2"), None, None] {
            let mut body = serde_json::json!({"events": [event.clone()]});
            if let Some(b) = batch {
                body["batchId"] = b.into();
            }
            let reply = app.api("/api/v1/usage/report", &key, body).await;
            assert_eq!(reply.status, 200, "{url}: {}", reply.text());
            counted += reply.json()["counted"].as_i64().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        assert_eq!(counted, 1, "{url}: counted once");
        stored_once_on(db, &org_id, day_of(now()), &url).await;
    }
}

/// The same future-dated event received again once its time has come (the
/// sidecar's spool re-sent it after an outage, under a new batch ID after a
/// reinstall): no longer ahead of the receipt, it is still the stored event.
#[tokio::test]
async fn a_future_dated_event_resent_after_its_time_is_counted_once() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, _) = app.org("Later").await;
        let at = now();
        let ts = (at + 3 * 86_400) * 1000;
        let e = [event("req_later", ts, "agent-1", "allow")];
        let first = usage::ingest(db, &org_id, Some("b1"), &e, at)
            .await
            .unwrap();
        let later = usage::ingest(db, &org_id, Some("b2"), &e, at + 4 * 86_400)
            .await
            .unwrap();
        assert_eq!((first.counted, later.counted), (1, 0), "{url}");
        // On its first receipt's day, not three days ahead.
        stored_once_on(db, &org_id, day_of(at), &url).await;
    }
}

/// A denial dated a day ahead (a sidecar clock running ahead, or a sender
/// choosing so) is kept with its time, so it must not sit in every denial-spike
/// window until then: the spike counts denials no later than the counting
/// bound (five minutes after now), as the rollup does.
#[tokio::test]
async fn a_future_dated_denial_is_not_in_every_spike_window() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, key) = app.org("Spike").await;
        let ahead_ms = (now() + 86_400) * 1000;
        let body = serde_json::json!({"batchId": "b1", "events": [{"eventType": "prompt_check",
            "agentId": "a1", "decision": "deny", "errorCode": "PROMPT_BLOCKED",
            "requestId": "req_ahead", "timestamp": ahead_ms}]});
        let reply = app.api("/api/v1/usage/report", &key, body).await;
        assert_eq!(reply.status, 200, "{url}: {}", reply.text());
        let window = kalguard_cloud::alerts::SPIKE_WINDOW_SECS;
        // The spike window now, then once the denial's time has come.
        for (at, expected) in [(now(), 0), (ahead_ms / 1000, 1)] {
            let denials = kalguard_cloud::store::alerts::denials_between(
                db,
                &org_id,
                (at - window) * 1000,
                at * 1000 + usage::AHEAD_MS,
            )
            .await
            .unwrap();
            assert_eq!(denials, expected, "{url}: at {at}");
        }
    }
}

/// The API accepts event types with a colon (`mcp:tools_call`); the audit
/// pages' cursor, carried as text in the page links, must bring such an event
/// back exactly, or the next page is unreachable. Three events at one
/// millisecond, one per page, followed through encoded cursors.
#[tokio::test]
async fn pages_follow_cursors_of_event_types_with_a_colon() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, _) = app.org("Colon").await;
        let ts = (now() - 60) * 1000;
        let events: Vec<Event> = [
            ("mcp:answer", Phase::Request),
            ("mcp:call", Phase::Request),
            ("mcp:call", Phase::Answer),
        ]
        .iter()
        .map(|&(event_type, phase)| Event {
            event_type: event_type.into(),
            phase,
            ..event("req_same", ts, "agent-1", "deny")
        })
        .collect();
        usage::ingest(db, &org_id, None, &events, now())
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        for _ in 0..5 {
            let page = audit::search(db, &org_id, &Filter::default(), cursor.as_ref(), 1)
                .await
                .unwrap();
            seen.extend(page.events.iter().map(|e| (e.event_type.clone(), e.phase)));
            let Some(next) = page.next else { break };
            let text = next.encode();
            assert_eq!(Cursor::decode(&text).as_ref(), Some(&next), "{url}: {text}");
            cursor = Cursor::decode(&text);
        }
        seen.sort();
        let mut expected: Vec<_> = events
            .iter()
            .map(|e| (e.event_type.clone(), e.phase))
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "{url}");
    }
}

/// Pages read through the tag join (category, risk band, with an agent and a
/// decision besides) list exactly the matching events in the key's order, on
/// ties of the time as well, forward and back, beside another organisation's
/// events with the same keys and tags.
#[tokio::test]
async fn tagged_pages_walk_ties_both_ways_within_the_organisation() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, _) = app.org("Tagged").await;
        let (other, _) = app.org("Other").await;
        let ts = (now() - 60) * 1000;
        let events: Vec<Event> = (0..23)
            .map(|i: i64| {
                let mut e = event(
                    &format!("req_{}", i % 5),
                    ts - (i / 5) * 1000,
                    if i % 3 == 0 { "agent-a" } else { "agent-b" },
                    if i % 4 == 0 { "allow" } else { "deny" },
                );
                e.phase = if i % 2 == 0 {
                    Phase::Request
                } else {
                    Phase::Answer
                };
                e.event_type = if i % 7 == 0 {
                    "tool_check"
                } else {
                    "prompt_check"
                }
                .into();
                e.signals = Signals {
                    risk_milli: Some(if i % 2 == 0 { 950 } else { 600 }),
                    categories: vec!["exfiltration".into()],
                };
                e
            })
            .collect();
        usage::ingest(db, &org_id, None, &events, now())
            .await
            .unwrap();
        usage::ingest(db, &other, None, &events, now())
            .await
            .unwrap();
        let filters = [
            Filter {
                category: Some("exfiltration".into()),
                ..Filter::default()
            },
            Filter {
                min_risk: Some(900),
                ..Filter::default()
            },
            Filter {
                category: Some("exfiltration".into()),
                agents: Some(vec!["agent-b".into()]),
                decision: Some("deny".into()),
                ..Filter::default()
            },
        ];
        let all = audit::search(db, &org_id, &Filter::default(), None, 1000)
            .await
            .unwrap();
        assert_eq!(all.events.len(), 23, "{url}");
        for filter in &filters {
            let expected: Vec<Cursor> = all
                .events
                .iter()
                .filter(|e| {
                    filter
                        .min_risk
                        .is_none_or(|r| e.signals.risk_milli >= Some(r))
                })
                .filter(|e| filter.decision.as_ref().is_none_or(|d| &e.decision == d))
                .filter(|e| {
                    filter
                        .agents
                        .as_ref()
                        .is_none_or(|a| a.contains(&e.agent_id))
                })
                .map(Cursor::of)
                .collect();
            let mut forward = Vec::new();
            let mut cursor: Option<Cursor> = None;
            loop {
                let page = audit::search(db, &org_id, filter, cursor.as_ref(), 2)
                    .await
                    .unwrap();
                forward.extend(page.events.iter().map(Cursor::of));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(forward, expected, "{url}: {filter:?}");
            assert_eq!(
                audit::count(db, &org_id, filter, 1000).await.unwrap(),
                Some(expected.len() as i64),
                "{url}: {filter:?}"
            );
            // Back from the last row, two at a time.
            let mut back = vec![expected.last().unwrap().clone()];
            loop {
                let (page, more) = audit::search_newer(db, &org_id, filter, &back[0], 2)
                    .await
                    .unwrap();
                let mut page: Vec<Cursor> = page.iter().map(Cursor::of).collect();
                page.extend(back);
                back = page;
                if !more {
                    break;
                }
            }
            assert_eq!(back, expected, "{url}: back, {filter:?}");
        }
    }
}

/// An event is kept with the time its sender gave, however far ahead; the
/// retention purge must still bound how long a row stays: one dated beyond the
/// retention period ahead (year 9999, say) is deleted with its tags, so no sender
/// plants rows no purge ever reaches. One a day ahead is kept.
#[tokio::test]
async fn the_purge_bounds_events_dated_far_ahead() {
    for url in backends() {
        let app = app(&url).await;
        let db = &app.state.db;
        let (org_id, _) = app.org("Ahead").await;
        let at = now();
        let mut far = event("req_far", 253_402_300_799_000, "agent-1", "deny");
        far.signals = Signals {
            risk_milli: Some(950),
            categories: vec!["exfiltration".into()],
        };
        let near = event("req_near", (at + 86_400) * 1000, "agent-1", "deny");
        usage::ingest(db, &org_id, None, &[far, near], at)
            .await
            .unwrap();
        usage::purge(db, &org_id, 30, at).await.unwrap();
        let page = audit::search(db, &org_id, &Filter::default(), None, 10)
            .await
            .unwrap();
        let kept: Vec<&str> = page.events.iter().map(|e| e.request_id.as_str()).collect();
        assert_eq!(kept, ["req_near"], "{url}");
        assert_eq!(
            one_number(
                db,
                "SELECT COUNT(*) FROM event_tags WHERE org_id = $1",
                &org_id
            )
            .await,
            0,
            "{url}"
        );
    }
}
