//! The sidecar API (`/api/v1/license/validate`, `/api/v1/usage/report`) on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{app, backends, event};
use kalguard_cloud::store::{orgs, tokens};
use kalguard_cloud::time_util::{next_midnight, now};
use serde_json::json;

#[tokio::test]
async fn license_carries_plan_limits_secret_and_reset() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        let r = app.api("/api/v1/license/validate", &key, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text());
        let l = r.json();
        assert_eq!(l["valid"], true);
        assert_eq!(l["tier"], "free");
        assert_eq!(l["orgId"], org_id.as_str());
        assert_eq!(l["limits"]["checksPerDay"], 1000);
        assert_eq!(l["limits"]["maxAgents"], 1);
        assert_eq!(l["limits"]["auditRetentionDays"], 7);
        assert_eq!(l["limits"]["features"], json!(["firewall:basic"]));
        assert_eq!(l["remaining"], 1000);
        assert_eq!(l["resetAt"], next_midnight(now()));
        assert!(l["tokenSigningSecret"].as_str().unwrap().len() >= 32);
        assert_eq!(l["revokedTokenHashes"], json!([]));
        assert!(l["expiresAt"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn license_accepts_an_empty_body_like_the_original_sidecar() {
    for url in backends() {
        let app = app(&url).await;
        let (_, key) = app.org("Acme").await;
        let req = axum::http::Request::post("/api/v1/license/validate")
            .header("x-api-key", &key)
            .body(axum::body::Body::empty())
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["valid"], true);
    }
}

#[tokio::test]
async fn bad_keys_get_401_json() {
    for url in backends() {
        let app = app(&url).await;
        for key in [
            "",
            "kg_live_doesnotexist",
            "sk_live_abc",
            "kg_live_' OR 1=1 --",
        ] {
            let r = app.api("/api/v1/license/validate", key, json!({})).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{key}");
            assert_eq!(r.json()["error"]["code"], "INVALID_API_KEY");
            let r = app
                .api("/api/v1/usage/report", key, json!({"events": []}))
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
    }
}

#[tokio::test]
async fn usage_is_counted_once_per_batch_and_per_request() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        let events: Vec<_> = (0..10)
            .map(|i| event("agent-a", "allow", &format!("req-{i}"), None))
            .collect();
        let batch = json!({"batchId": "b-1", "events": events});
        let r = app.api("/api/v1/usage/report", &key, batch.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let a = r.json();
        assert_eq!(a["accepted"], 10);
        assert_eq!(a["counted"], 10);
        assert_eq!(a["remaining"], 990);
        assert_eq!(a["resetAt"], next_midnight(now()));

        // The same batch again (a retry): acknowledged, not counted.
        let a = app.api("/api/v1/usage/report", &key, batch).await.json();
        assert_eq!(
            (
                a["accepted"].as_i64(),
                a["counted"].as_i64(),
                a["remaining"].as_i64()
            ),
            (Some(10), Some(0), Some(990))
        );

        // A new batch ID carrying already-seen request IDs (spool re-sent differently).
        let mixed: Vec<_> = (5..15)
            .map(|i| event("agent-a", "allow", &format!("req-{i}"), None))
            .collect();
        let a = app
            .api(
                "/api/v1/usage/report",
                &key,
                json!({"batchId": "b-2", "events": mixed}),
            )
            .await
            .json();
        assert_eq!(a["counted"], 5);
        assert_eq!(a["remaining"], 985);

        // No batchId (a server-agnostic sidecar): request IDs still deduplicate.
        let again = vec![event("agent-a", "allow", "req-0", None)];
        let a = app
            .api("/api/v1/usage/report", &key, json!({"events": again}))
            .await
            .json();
        assert_eq!(a["counted"], 0);

        // The license sees the same count.
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["remaining"], 985);

        // A sidecar's own quota refusals are audited but are not checks.
        let refused: Vec<_> = [
            "RATE_LIMIT_EXCEEDED",
            "AGENT_LIMIT_EXCEEDED",
            "PROMPT_BLOCKED",
        ]
        .iter()
        .enumerate()
        .map(|(i, code)| event("agent-a", "deny", &format!("gate-{i}"), Some(code)))
        .collect();
        let a = app
            .api("/api/v1/usage/report", &key, json!({"events": refused}))
            .await
            .json();
        assert_eq!(
            (a["counted"].as_i64(), a["remaining"].as_i64()),
            (Some(1), Some(984))
        );
        // An answer refused after its request was allowed (a tool call denied in it,
        // a value found in block mode) is audited, but its request was the check.
        let mut answer = event("agent-a", "deny", "req-1", Some("TOOL_DENIED"));
        answer["eventType"] = json!("tool_check");
        answer["metadata"] = json!({"answer": 1, "toolCallsDenied": 1});
        let a = app
            .api("/api/v1/usage/report", &key, json!({"events": [answer]}))
            .await
            .json();
        assert_eq!(
            (
                a["accepted"].as_i64(),
                a["counted"].as_i64(),
                a["remaining"].as_i64()
            ),
            (Some(1), Some(0), Some(984)),
            "stored, but not a check"
        );
        // An answer refused by the firewall has the type of its request's allowed
        // check: both are kept in the audit log, and a re-sent one only once.
        let mut blocked = event("agent-a", "deny", "req-2", Some("PROMPT_BLOCKED"));
        blocked["metadata"] = json!({"answer": 1});
        for _ in 0..2 {
            let a = app
                .api(
                    "/api/v1/usage/report",
                    &key,
                    json!({"events": [blocked.clone()]}),
                )
                .await
                .json();
            assert_eq!(
                (a["counted"].as_i64(), a["remaining"].as_i64()),
                (Some(0), Some(984))
            );
        }
        let page = kalguard_cloud::store::audit::search(
            &app.state.db,
            &org_id,
            &Default::default(),
            None,
            100,
        )
        .await
        .unwrap();
        let req_2: Vec<(&str, &str, bool)> = page
            .events
            .iter()
            .filter(|e| e.request_id == "req-2")
            .map(|e| {
                let answer = e.phase == kalguard_cloud::store::usage::Phase::Answer;
                (e.event_type.as_str(), e.decision.as_str(), answer)
            })
            .collect();
        assert_eq!(req_2.len(), 2, "{req_2:?}");
        assert!(
            req_2.contains(&("prompt_check", "allow", false)),
            "{req_2:?}"
        );
        assert!(req_2.contains(&("prompt_check", "deny", true)), "{req_2:?}");
        // A free plan limits agents: both answers list who checked in today.
        assert_eq!(a["agentsToday"], json!(["agent-a"]));
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["agentsToday"], json!(["agent-a"]));
    }
}

#[tokio::test]
async fn remaining_is_shared_by_every_key_and_sidecar_of_an_org_and_not_across_orgs() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key1) = app.org("Acme").await;
        let key2 = kalguard_cloud::store::keys::create(
            &app.state.db,
            &org_id,
            "second",
            kalguard_cloud::secrets::KeyMode::Test,
        )
        .await
        .unwrap();
        assert!(key2.starts_with("kg_test_"));
        let (_, other) = app.org("Other").await;
        let e1: Vec<_> = (0..3)
            .map(|i| event("a", "allow", &format!("s1-{i}"), None))
            .collect();
        let e2: Vec<_> = (0..4)
            .map(|i| event("a", "deny", &format!("s2-{i}"), Some("PROMPT_BLOCKED")))
            .collect();
        app.api(
            "/api/v1/usage/report",
            &key1,
            json!({"batchId": "x", "events": e1, "sidecarId": "s1"}),
        )
        .await;
        let a = app
            .api(
                "/api/v1/usage/report",
                &key2,
                json!({"batchId": "x2", "events": e2, "sidecarId": "s2"}),
            )
            .await
            .json();
        assert_eq!(a["remaining"], 993);
        // The other organisation reuses the same batch and request IDs: independent.
        let e3: Vec<_> = (0..3)
            .map(|i| event("a", "allow", &format!("s1-{i}"), None))
            .collect();
        let a = app
            .api(
                "/api/v1/usage/report",
                &other,
                json!({"batchId": "x", "events": e3}),
            )
            .await
            .json();
        assert_eq!(a["counted"], 3);
        assert_eq!(a["remaining"], 997);
    }
}

#[tokio::test]
async fn plan_limits_follow_the_org_plan() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        orgs::set_plan(&app.state.db, &org_id, kalguard_cloud::plan::Plan::Pro)
            .await
            .unwrap();
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["tier"], "pro");
        assert_eq!(l["limits"]["checksPerDay"], 100_000);
        assert_eq!(l["limits"]["maxAgents"], -1);
        assert_eq!(l["limits"]["auditRetentionDays"], 90);
        assert!(l["limits"]["features"]
            .as_array()
            .unwrap()
            .contains(&json!("firewall:advanced")));
        orgs::set_plan(
            &app.state.db,
            &org_id,
            kalguard_cloud::plan::Plan::Enterprise,
        )
        .await
        .unwrap();
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["limits"]["checksPerDay"], -1);
        assert_eq!(l["remaining"], -1);
        assert_eq!(l["limits"]["auditRetentionDays"], 365);
    }
}

#[tokio::test]
async fn bad_reports_get_400_with_the_field_named() {
    for url in backends() {
        let app = app(&url).await;
        let (_, key) = app.org("Acme").await;
        let cases = [
            (json!({"nope": 1}), "missing field `events`"),
            (
                json!({"events": [{"eventType": "prompt_check", "agentId": "a", "decision": "perhaps"}]}),
                "events[0].decision",
            ),
            (
                json!({"events": [{"eventType": "prompt_check", "decision": "allow"}]}),
                "events[0].agentId is required",
            ),
            (
                json!({"events": [{"eventType": "prompt_check", "agentId": "a", "decision": "allow", "timestamp": "soon"}]}),
                "events[0].timestamp",
            ),
            (json!({"events": [], "batchId": ""}), "batchId"),
        ];
        for (body, want) in cases {
            let r = app.api("/api/v1/usage/report", &key, body).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
            assert!(msg.contains(want), "{msg} should mention {want}");
        }
        let req = axum::http::Request::post("/api/v1/usage/report")
            .header("x-api-key", &key)
            .body(axum::body::Body::from("{not json"))
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json()["error"]["code"], "BAD_REQUEST");
    }
}

#[tokio::test]
async fn revoked_tokens_and_rotated_secrets_reach_the_license() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        let org = orgs::get(&app.state.db, &org_id).await.unwrap().unwrap();
        let new = tokens::NewToken {
            name: "bot".into(),
            agent_id: "agent-1".into(),
            capabilities: vec!["prompt:send".into()],
            ttl_secs: 3600,
        };
        let token = tokens::create(&app.state.db, &org, &new).await.unwrap();
        // The token verifies with the license's secret, through the filter's own code.
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        let secret = l["tokenSigningSecret"].as_str().unwrap().to_string();
        let secrets = vec![secret.clone()];
        let verifier = kalguard_wire::token::Verifier {
            secrets: &secrets,
            is_revoked: &|_: &str| false,
        };
        let agent = verifier.verify(&token, now()).unwrap();
        assert_eq!(agent.id.as_str(), "agent-1");

        let listed = tokens::list(&app.state.db, &org_id).await.unwrap();
        assert!(tokens::revoke(&app.state.db, &org_id, &listed[0].id)
            .await
            .unwrap());
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(
            l["revokedTokenHashes"],
            json!([kalguard_wire::token::token_hash(&token)])
        );

        assert!(orgs::rotate_signing_secret(&app.state.db, &org_id, 600)
            .await
            .unwrap());
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        let current = l["tokenSigningSecret"].as_str().unwrap();
        assert_ne!(current, secret);
        assert_eq!(l["tokenSigningSecrets"], json!([current, secret]));
        // Grace over: only the new secret remains.
        assert!(orgs::rotate_signing_secret(&app.state.db, &org_id, -1)
            .await
            .unwrap());
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["tokenSigningSecrets"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn sidecars_that_name_themselves_appear_in_the_fleet() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        app.api(
            "/api/v1/license/validate",
            &key,
            json!({"sidecarId": "pod-1", "version": "0.1.0", "mode": "cloud"}),
        )
        .await;
        app.api(
            "/api/v1/usage/report",
            &key,
            json!({"events": [], "sidecarId": "pod-2", "version": "0.2.0", "mode": "degraded"}),
        )
        .await;
        app.api("/api/v1/license/validate", &key, json!({})).await;
        let fleet = kalguard_cloud::store::sidecars::list(&app.state.db, &org_id)
            .await
            .unwrap();
        let mut ids: Vec<_> = fleet
            .iter()
            .map(|s| (s.sidecar_id.as_str(), s.version.as_str(), s.mode.as_str()))
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            vec![("pod-1", "0.1.0", "cloud"), ("pod-2", "0.2.0", "degraded")]
        );
    }
}

#[tokio::test]
async fn revoked_and_rotated_api_keys() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        let listed = kalguard_cloud::store::keys::list(&app.state.db, &org_id)
            .await
            .unwrap();
        let kalguard_cloud::store::keys::Rotation::Rotated(new) =
            kalguard_cloud::store::keys::rotate(&app.state.db, &org_id, &listed[0].id, 3600)
                .await
                .unwrap()
        else {
            panic!("an active key rotates")
        };
        // During the grace period both keys work.
        for k in [&key, &new] {
            assert_eq!(
                app.api("/api/v1/license/validate", k, json!({}))
                    .await
                    .status,
                StatusCode::OK
            );
        }
        assert!(
            kalguard_cloud::store::keys::revoke(&app.state.db, &org_id, &listed[0].id)
                .await
                .unwrap()
        );
        assert_eq!(
            app.api("/api/v1/license/validate", &key, json!({}))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.api("/api/v1/license/validate", &new, json!({}))
                .await
                .status,
            StatusCode::OK
        );
        let listed = kalguard_cloud::store::keys::list(&app.state.db, &org_id)
            .await
            .unwrap();
        assert!(listed.iter().any(|k| k.last_used_at.is_some()));
    }
}

#[tokio::test]
async fn audit_pages_keep_a_requests_two_phases_apart() {
    use kalguard_cloud::store::{audit, usage};
    for url in backends() {
        let app = app(&url).await;
        let (org_id, _) = app.org("Acme").await;
        // One request, allowed, then refused at its answer, in the same millisecond.
        let event = |phase, decision: &str, code: &str| usage::Event {
            request_id: "req-1".into(),
            event_type: "prompt_check".into(),
            agent_id: "a".into(),
            decision: decision.into(),
            error_code: code.into(),
            ts_ms: now() * 1000,
            phase,
            signals: Default::default(),
        };
        let events = [
            event(usage::Phase::Request, "allow", ""),
            event(usage::Phase::Answer, "deny", "PROMPT_BLOCKED"),
        ];
        usage::ingest(&app.state.db, &org_id, None, &events, now())
            .await
            .unwrap();
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let page = audit::search(
                &app.state.db,
                &org_id,
                &Default::default(),
                cursor.as_ref(),
                1,
            )
            .await
            .unwrap();
            seen.extend(page.events.iter().map(|e| (e.phase, e.decision.clone())));
            let Some(next) = page.next else { break };
            // The cursor goes through its text form, as the dashboard's links do.
            cursor = audit::Cursor::decode(&next.encode());
            assert!(cursor.is_some() && seen.len() < 3, "{seen:?}");
        }
        // Both, once each: in the same millisecond the phase breaks the tie (its
        // stored text, descending).
        assert_eq!(
            seen,
            [
                (usage::Phase::Request, "allow".to_string()),
                (usage::Phase::Answer, "deny".to_string())
            ]
        );
    }
}

#[tokio::test]
async fn retention_purge_follows_the_plan() {
    for url in backends() {
        let app = app(&url).await;
        let (org_id, key) = app.org("Acme").await;
        let old = now() - 10 * 86_400;
        let mut e = event("a", "allow", "old-1", None);
        e["timestamp"] = json!(old * 1000);
        let fresh = event("a", "allow", "new-1", None);
        app.api("/api/v1/usage/report", &key, json!({"events": [e, fresh]}))
            .await;
        // More old events than one purge chunk (5,000), straight into the store.
        let old_events: Vec<_> = (0..5_100)
            .map(|i| kalguard_cloud::store::usage::Event {
                request_id: format!("bulk-{i}"),
                event_type: "prompt_check".into(),
                agent_id: "a".into(),
                decision: "allow".into(),
                error_code: String::new(),
                ts_ms: (old - 86_400) * 1000 + i,
                phase: kalguard_cloud::store::usage::Phase::Request,
                signals: Default::default(),
            })
            .collect();
        kalguard_cloud::store::usage::ingest(&app.state.db, &org_id, None, &old_events, now())
            .await
            .unwrap();
        let purged = kalguard_cloud::store::usage::purge(&app.state.db, &org_id, 7, now())
            .await
            .unwrap();
        assert_eq!(purged, 5_101);
        let page = kalguard_cloud::store::audit::search(
            &app.state.db,
            &org_id,
            &Default::default(),
            None,
            10,
        )
        .await
        .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0].request_id, "new-1");
        // The 90-day plan keeps what the 7-day plan drops.
        let mut e = event("a", "allow", "old-2", None);
        e["timestamp"] = json!(old * 1000);
        app.api("/api/v1/usage/report", &key, json!({"events": [e]}))
            .await;
        assert_eq!(
            kalguard_cloud::store::usage::purge(&app.state.db, &org_id, 90, now())
                .await
                .unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn concurrent_reports_from_many_sidecars_are_all_counted() {
    for url in backends() {
        let app = std::sync::Arc::new(app(&url).await);
        let (org_id, key) = app.org("Acme").await;
        orgs::set_plan(&app.state.db, &org_id, kalguard_cloud::plan::Plan::Pro)
            .await
            .unwrap();
        let mut handles = Vec::new();
        for s in 0..8 {
            let app = app.clone();
            let key = key.clone();
            handles.push(tokio::spawn(async move {
                for b in 0..5 {
                    // Every batch touches the same 20 agents' rollup rows, in its own order.
                    let events: Vec<_> = (0..40)
                        .map(|i| {
                            event(
                                &format!("agent-{}", (i * (s + 1)) % 20),
                                if i % 3 == 0 { "deny" } else { "allow" },
                                &format!("s{s}-b{b}-{i}"),
                                Some("POLICY_DENY"),
                            )
                        })
                        .collect();
                    let r = app
                        .api(
                            "/api/v1/usage/report",
                            &key,
                            json!({"batchId": format!("s{s}-b{b}"), "events": events}),
                        )
                        .await;
                    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["remaining"], 100_000 - 8 * 5 * 40, "{url}");
    }
}

#[tokio::test]
async fn unknown_api_paths_get_json_404() {
    let url = backends().remove(0);
    let app = app(&url).await;
    let r = app.api("/api/v1/nope", "kg_live_x", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "NOT_FOUND");
    let req = axum::http::Request::get("/nope")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("There is no such page."));
}

#[tokio::test]
async fn two_replicas_on_one_database_count_a_retried_batch_once() {
    for url in backends() {
        // Two Cloud processes (separate pools and state) sharing the database.
        let a = app(&url).await;
        let b = app(&url).await;
        let (_, key) = a.org("Acme").await;
        let events: Vec<_> = (0..50)
            .map(|i| event("agent-a", "allow", &format!("r-{i}"), None))
            .collect();
        let batch = json!({"batchId": "same-batch", "events": events});
        let (ra, rb) = tokio::join!(
            a.api("/api/v1/usage/report", &key, batch.clone()),
            b.api("/api/v1/usage/report", &key, batch.clone())
        );
        assert_eq!(
            (ra.status, rb.status),
            (StatusCode::OK, StatusCode::OK),
            "{} {}",
            ra.text(),
            rb.text()
        );
        let counted =
            ra.json()["counted"].as_i64().unwrap() + rb.json()["counted"].as_i64().unwrap();
        assert_eq!(counted, 50, "{url}");
        let la = a
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        let lb = b
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(la["remaining"], 950);
        assert_eq!(lb["remaining"], 950);
    }
}

#[tokio::test]
async fn an_oversized_body_gets_the_json_error() {
    for url in backends() {
        let app = app(&url).await;
        let (_, key) = app.org("Acme").await;
        let filler = "x".repeat(3 << 20);
        for path in [
            "/api/v1/usage/report",
            "/api/v1/license/validate",
            "/api/v1/stripe/webhook",
        ] {
            let req = axum::http::Request::post(path)
                .header("x-api-key", &key)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(format!(
                    "{{\"events\":[],\"batchId\":\"{filler}\"}}"
                )))
                .unwrap();
            let r = app.send(req).await;
            assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            let body = r.json();
            assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{path}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains("bytes"),
                "{path}: {body}"
            );
        }
        // Without a Content-Length (chunked), the limit holds as the body streams in.
        let chunks =
            (0..40).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 64 << 10])));
        let req = axum::http::Request::post("/api/v1/usage/report")
            .header("x-api-key", &key)
            .body(axum::body::Body::from_stream(futures_util::stream::iter(
                chunks,
            )))
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.json()["error"]["code"], "PAYLOAD_TOO_LARGE");
        // Just under the limit is read (and answered on its content).
        let events: Vec<_> = (0..5_000)
            .map(|i| event("agent-a", "allow", &format!("r-{i}"), None))
            .collect();
        let r = app
            .api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

#[tokio::test]
async fn counted_is_the_checks_a_report_added() {
    for url in backends() {
        let app = app(&url).await;
        let (_, key) = app.org("Acme").await;
        let mut answer = event("agent-a", "deny", "req-1", Some("PROMPT_BLOCKED"));
        answer["metadata"] = json!({"answer": 1, "errorCode": "PROMPT_BLOCKED"});
        let events = vec![
            event("agent-a", "allow", "req-1", None),
            event("agent-a", "deny", "req-2", Some("POLICY_DENY")),
            event(
                "agent-a",
                "require_approval",
                "req-3",
                Some("REQUIRE_APPROVAL"),
            ),
            event("agent-a", "deny", "gate-1", Some("TOKEN_REVOKED")),
            event("agent-a", "deny", "gate-2", Some("TOKEN_EXPIRED")),
            event("agent-a", "deny", "gate-3", Some("RATE_LIMIT_EXCEEDED")),
            answer,
        ];
        let a = app
            .api("/api/v1/usage/report", &key, json!({"events": events}))
            .await
            .json();
        assert_eq!(a["accepted"], 7);
        assert_eq!(a["counted"], 3, "{a}");
        assert_eq!(a["remaining"], 997, "{a}");
    }
}

/// Migration 0005 on a database written before it: require_approval leaves
/// `denied`, allowed checks fill `allowed`, and the refusals that were not checks
/// and are still in the audit log join `denied`. SQLite only: the test needs a
/// database stopped at migration 0004, and a shared Postgres is migrated already.
#[tokio::test]
async fn the_rollup_upgrade_counts_every_event_by_decision() {
    use kalguard_cloud::store::usage;
    let dir = std::env::temp_dir().join(format!(
        "kalguard-cloud-upgrade-{}",
        kalguard_cloud::secrets::random_string(8)
    ));
    let old = dir.join("migrations");
    std::fs::create_dir_all(&old).unwrap();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for f in std::fs::read_dir(&here).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0005" {
            std::fs::copy(&f, old.join(name)).unwrap();
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.join("cloud.db").display());
    let db = kalguard_cloud::Db::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&db.pool)
        .await
        .unwrap();
    let day = kalguard_cloud::time_util::day_of(now());
    let ts = day * 86_400_000 + 1_000;
    for (code, checks, denied) in [
        ("", 5, 0),
        ("PROMPT_BLOCKED", 3, 3),
        ("REQUIRE_APPROVAL", 2, 2),
        ("TOKEN_REVOKED", 0, 0),
    ] {
        sqlx::query(
            "INSERT INTO usage_daily (org_id, day, agent_id, error_code, checks, denied, last_seen_ms) \
             VALUES ('org_1', $1, 'a', $2, $3, $4, $5)",
        )
        .bind(day)
        .bind(code)
        .bind(checks)
        .bind(denied)
        .bind(ts)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    for (i, (code, phase)) in [
        ("PROMPT_BLOCKED", "request"),
        ("PROMPT_BLOCKED", "request"),
        ("PROMPT_BLOCKED", "request"),
        ("PROMPT_BLOCKED", "answer"),
        ("TOKEN_REVOKED", "request"),
        ("TOKEN_REVOKED", "request"),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO events (org_id, request_id, event_type, phase, agent_id, decision, error_code, ts_ms) \
             VALUES ('org_1', $1, 'prompt_check', $2, 'a', 'deny', $3, $4)",
        )
        .bind(format!("r{i}"))
        .bind(phase)
        .bind(code)
        .bind(ts)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    db.migrate().await.unwrap();
    let d = usage::daily(&db, "org_1", day, 1).await.unwrap();
    assert_eq!(
        (d[0].checks, d[0].allowed, d[0].denied, d[0].approval),
        (10, 5, 3 + 1 + 2, 2)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn agent_ids_that_render_like_another_are_refused() {
    for url in backends() {
        let app = app(&url).await;
        let (_, key) = app.org("Acme").await;
        for (agent, code) in [
            ("support-bot\u{200B}", "U+200B"),
            ("support-bot\u{FEFF}", "U+FEFF"),
            ("support\u{202E}tob-", "U+202E"),
            ("support-bot\u{2069}", "U+2069"),
            ("support-bot ", "U+0020"),
            ("support\u{00A0}bot", "U+00A0"),
        ] {
            let events = vec![
                event("fine-agent", "allow", "r-1", None),
                event(agent, "allow", "r-2", None),
            ];
            let r = app
                .api("/api/v1/usage/report", &key, json!({"events": events}))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{agent:?}");
            let message = r.json()["error"]["message"].as_str().unwrap().to_string();
            assert!(message.starts_with("events[1].agentId "), "{message}");
            assert!(message.contains(code), "{agent:?}: {message}");
        }
        let ok = vec![event("Ünïcödé-агент-支援", "allow", "r-3", None)];
        let r = app
            .api("/api/v1/usage/report", &key, json!({"events": ok}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}
