//! The dashboard: sign-up, sessions, CSRF, keys, tokens, audit search, CSV,
//! the usage chart, and isolation between organisations, on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{header, StatusCode};
use common::{app, backends, between, csrf_of, event, Browser};
use kalguard_cloud::store::{orgs, tokens};
use kalguard_cloud::time_util::now;
use serde_json::json;

#[tokio::test]
async fn signup_shows_the_first_key_once_and_it_works_for_sidecars() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let l = app.api("/api/v1/license/validate", &key, json!({})).await;
        assert_eq!(l.status, StatusCode::OK);
        // The keys page lists the key by prefix, never in full.
        let page = b.get("/keys").await.text();
        assert!(page.contains(&key[..14]));
        assert!(!page.contains(&key));
        assert!(page.contains("Default key"));
    }
}

#[tokio::test]
async fn pages_need_a_session_and_carry_security_headers() {
    for url in backends() {
        let app = app(&url).await;
        let mut anon = Browser {
            app: &app,
            cookies: vec![],
        };
        for path in [
            "/",
            "/usage",
            "/agents",
            "/audit",
            "/audit.csv",
            "/keys",
            "/tokens",
            "/sidecars",
            "/billing",
            "/members",
            "/admin-log",
            "/admin-log.csv",
        ] {
            let r = anon.get(path).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
            // To the login page, which returns to the page asked for.
            let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
            assert_eq!(r.location(), format!("/login?next={next}"));
        }
        let r = anon.post("/keys", &[("name", "x")]).await;
        assert_eq!(r.location(), "/login");

        let (mut b, _) = app.signup("Acme").await;
        for path in [
            "/usage",
            "/agents",
            "/audit",
            "/keys",
            "/tokens",
            "/sidecars",
            "/billing",
            "/members",
            "/login",
            "/signup",
        ] {
            let r = b.get(path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
            let csp = r
                .headers
                .get(header::CONTENT_SECURITY_POLICY)
                .unwrap()
                .to_str()
                .unwrap();
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
                "{csp}"
            );
            assert_eq!(r.headers.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
            let html = r.text();
            // No inline script or handlers: the CSP would block them anyway.
            assert!(
                !html.contains("<script>") && !html.contains(" onclick="),
                "{path}"
            );
            for (i, _) in html.match_indices("<script") {
                assert!(html[i..i + 40].contains("src="), "{path}");
            }
        }
    }
}

#[tokio::test]
async fn session_cookie_is_httponly_samesite_and_logout_ends_it() {
    for url in backends() {
        let app = app(&url).await;
        let mut b = Browser {
            app: &app,
            cookies: vec![],
        };
        let csrf = csrf_of(&b.get("/signup").await.text());
        let r = b
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("org_name", "Acme"),
                    (
                        "email",
                        &format!(
                            "{}@acme.test",
                            kalguard_cloud::secrets::random_string(8).to_lowercase()
                        ),
                    ),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        let cookie = r
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("kg_session="))
            .unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let session = b.cookies.clone();
        let csrf = b.csrf().await;
        let r = b.post("/logout", &[("csrf", &csrf)]).await;
        assert_eq!(r.location(), "/login");
        // The old cookie is dead server-side, not just cleared in this browser.
        let mut replay = Browser {
            app: &app,
            cookies: session,
        };
        assert_eq!(replay.get("/keys").await.location(), "/login?next=%2Fkeys");
    }
}

#[tokio::test]
async fn login_checks_the_password_and_is_rate_limited() {
    for url in backends() {
        let app = app(&url).await;
        let mut b = Browser {
            app: &app,
            cookies: vec![],
        };
        let email = format!(
            "{}@acme.test",
            kalguard_cloud::secrets::random_string(8).to_lowercase()
        );
        let csrf = csrf_of(&b.get("/signup").await.text());
        b.post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("org_name", "Acme"),
                ("email", &email),
                ("password", "correct horse battery"),
            ],
        )
        .await;

        let mut other = Browser {
            app: &app,
            cookies: vec![],
        };
        let csrf = csrf_of(&other.get("/login").await.text());
        let r = other
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("email", &email),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), "/usage");
        assert_eq!(other.get("/keys").await.status, StatusCode::OK);

        let mut attacker = Browser {
            app: &app,
            cookies: vec![],
        };
        for _ in 0..5 {
            let csrf = csrf_of(&attacker.get("/login").await.text());
            let r = attacker
                .post(
                    "/login",
                    &[
                        ("csrf", &csrf),
                        ("email", &email),
                        ("password", "wrong password!"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            assert!(r.text().contains("Wrong email or password."));
        }
        let csrf = csrf_of(&attacker.get("/login").await.text());
        let r = attacker
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("email", &email),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.text().contains("Too many failed attempts"));

        // A login form without its CSRF cookie is refused.
        let mut forged = Browser {
            app: &app,
            cookies: vec![],
        };
        let r = forged
            .post(
                "/login",
                &[
                    ("csrf", "abc"),
                    ("email", &email),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn signup_explains_bad_input() {
    for url in backends() {
        let app = app(&url).await;
        let mut b = Browser {
            app: &app,
            cookies: vec![],
        };
        let csrf = csrf_of(&b.get("/signup").await.text());
        let r = b
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("org_name", "Acme"),
                    ("email", "a@acme.test"),
                    ("password", "short"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r
            .text()
            .contains("Password must be at least 10 characters."));
        let csrf = csrf_of(&r.text());
        let r = b
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("org_name", "Acme"),
                    ("email", "not-an-email"),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert!(r.text().contains("Enter a valid email address."));
    }
}

#[tokio::test]
async fn state_changes_without_the_session_csrf_token_are_refused() {
    for url in backends() {
        let app = app(&url).await;
        let (mut a, _) = app.signup("Acme").await;
        let (mut b, _) = app.signup("Other").await;
        let b_csrf = b.csrf().await;
        for csrf in ["", "guess", b_csrf.as_str()] {
            let r = a.post("/keys", &[("csrf", csrf), ("name", "evil")]).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{csrf}");
            assert!(r.text().contains("Reload the page"));
        }
        let page = a.get("/keys").await.text();
        assert!(!page.contains("evil"));
    }
}

#[tokio::test]
async fn api_keys_create_rotate_revoke() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, first) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let r = b
            .post(
                "/keys",
                &[("csrf", &csrf), ("name", "ci"), ("mode", "test")],
            )
            .await;
        let test_key = between(&r.text(), "<code id=\"new-api-key\">", "</code>");
        assert!(test_key.starts_with("kg_test_"));
        assert_eq!(
            app.api("/api/v1/license/validate", &test_key, json!({}))
                .await
                .status,
            StatusCode::OK
        );

        let page = b.get("/keys").await.text();
        let first_id = key_id_of(&page, &first[..14]);
        let r = b
            .post(&format!("/keys/{first_id}/rotate"), &[("csrf", &csrf)])
            .await;
        let rotated = between(&r.text(), "<code id=\"new-api-key\">", "</code>");
        assert!(r.text().contains("rotated; works until"));
        assert_eq!(
            app.api("/api/v1/license/validate", &first, json!({}))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            app.api("/api/v1/license/validate", &rotated, json!({}))
                .await
                .status,
            StatusCode::OK
        );

        let r = b
            .post(
                &format!("/keys/{first_id}/revoke"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.location(), "/keys?notice=key_revoked");
        assert_eq!(
            app.api("/api/v1/license/validate", &first, json!({}))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        let r = b
            .post(
                &format!("/keys/{first_id}/revoke"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

/// The ID of the key row whose prefix is shown.
fn key_id_of(page: &str, prefix: &str) -> String {
    let at = page.find(prefix).unwrap();
    let row_start = page[..at].rfind("data-key-id=\"").unwrap();
    between(&page[row_start..], "data-key-id=\"", "\"")
}

#[tokio::test]
async fn access_tokens_are_shown_once_verify_and_revoke() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let r = b
            .post(
                "/tokens",
                &[
                    ("csrf", &csrf),
                    ("name", "support bot"),
                    ("agent_id", "support-bot"),
                    ("capability", "prompt:send"),
                    ("capability", "tool:execute"),
                    ("custom_capabilities", "model:gpt-4o"),
                    ("expiry", "7d"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let html = r.text();
        let token = between(&html, "<code id=\"new-token\">", "</code>");
        assert!(html.contains(&format!("KALGUARD_AGENT_TOKEN={token}")));
        // Shown once: the list page never contains it again.
        assert!(!b.get("/tokens").await.text().contains(&token));

        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        let secrets: Vec<String> = vec![l["tokenSigningSecret"].as_str().unwrap().to_string()];
        let verifier = kalguard_wire::token::Verifier {
            secrets: &secrets,
            is_revoked: &|_: &str| false,
        };
        let agent = verifier.verify(&token, now()).unwrap();
        assert_eq!(agent.id.as_str(), "support-bot");
        assert!(agent.expires_at > now() + 6 * 86_400 && agent.expires_at <= now() + 7 * 86_400);

        let page = b.get("/tokens").await.text();
        let id = between(&page, "data-token-id=\"", "\"");
        let r = b
            .post(
                &format!("/tokens/{id}/revoke"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.location(), "/tokens?notice=token_revoked");
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(
            l["revokedTokenHashes"],
            json!([kalguard_wire::token::token_hash(&token)])
        );

        let r = b
            .post(
                "/tokens",
                &[
                    ("csrf", &csrf),
                    ("name", "x"),
                    ("agent_id", "a"),
                    ("expiry", "7d"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("Choose at least one capability."));
    }
}

#[tokio::test]
async fn quarantine_revokes_every_token_of_one_agent() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        for (agent, n) in [("bad-agent", 3), ("good-agent", 1)] {
            for i in 0..n {
                let name = format!("t{i}");
                b.post(
                    "/tokens",
                    &[
                        ("csrf", &csrf),
                        ("name", &name),
                        ("agent_id", agent),
                        ("capability", "prompt:send"),
                        ("expiry", "1h"),
                    ],
                )
                .await;
            }
        }
        let r = b
            .post(
                "/agents/quarantine",
                &[
                    ("csrf", &csrf),
                    ("agent_id", "bad-agent"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.location(), "/agents?notice=quarantined&count=3");
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["revokedTokenHashes"].as_array().unwrap().len(), 3);
        let page = b.get("/agents?notice=quarantined&count=3").await.text();
        assert!(page.contains("Agent quarantined: 3 token(s) revoked."));
    }
}

#[tokio::test]
async fn audit_log_filters_pages_and_exports() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let mut events = Vec::new();
        for i in 0..120 {
            let (agent, decision, code) = match i % 3 {
                0 => ("agent-a", "allow", None),
                1 => ("agent-b", "deny", Some("PROMPT_BLOCKED")),
                _ => ("agent-c", "deny", Some("CAPABILITY_DENIED")),
            };
            let mut e = event(agent, decision, &format!("req-{i:03}"), code);
            e["timestamp"] = json!((now() - 3600) * 1000 + i * 1000);
            events.push(e);
        }
        let r = app
            .api(
                "/api/v1/usage/report",
                &key,
                json!({"batchId": "audit", "events": events}),
            )
            .await;
        assert_eq!(r.json()["counted"], 120);

        // Page through everything: 50 + 50 + 20, newest first, no row twice.
        let mut seen = Vec::new();
        let mut path = "/audit".to_string();
        loop {
            let html = b.get(&path).await.text();
            let ids: Vec<String> = html
                .match_indices("<td class=\"request-id\">")
                .map(|(i, _)| between(&html[i..], ">", "<"))
                .collect();
            seen.extend(ids);
            match html.find("id=\"next-page\"") {
                Some(at) => {
                    // The Next link's own href (a Previous link may come first).
                    let i = html[..at].rfind("<a href=\"/audit?").unwrap();
                    let href = between(&html[i..], "<a href=\"", "\"").replace("&amp;", "&");
                    let _ = href.find("cursor=").unwrap();
                    path = href;
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 120);
        assert_eq!(seen[0], "req-119");
        assert_eq!(seen[119], "req-000");
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 120);

        let html = b
            .get("/audit?agent=agent-b&decision=deny&code=PROMPT_BLOCKED")
            .await
            .text();
        assert_eq!(html.matches("<tr class=\"event\">").count(), 40);
        assert!(!html.contains("agent-c"));
        let html = b.get("/audit?code=CAPABILITY_DENIED").await.text();
        assert_eq!(html.matches("<tr class=\"event\">").count(), 40);
        let r = b.get("/audit?from=not-a-date").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("is not a date"));
        let tomorrow =
            kalguard_cloud::time_util::day_label(kalguard_cloud::time_util::day_of(now()) + 1);
        let html = b.get(&format!("/audit?from={tomorrow}")).await.text();
        assert!(html.contains("No events match."));

        let csv = b.get("/audit.csv?decision=deny").await;
        assert_eq!(
            csv.headers.get(header::CONTENT_TYPE).unwrap(),
            "text/csv; charset=utf-8"
        );
        let text = csv.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "\"time\",\"type\",\"agent\",\"decision\",\"error_code\",\"request_id\",\"phase\",\"risk_score\",\"categories\""
        );
        assert_eq!(lines.len(), 81);
        assert!(lines.iter().skip(1).all(|l| l.contains("\"deny\"")));
        let all = b.get("/audit.csv").await.text();
        assert_eq!(all.lines().count(), 121);
    }
}

#[tokio::test]
async fn the_usage_chart_bars_match_the_counts() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let today = now();
        let mut events = Vec::new();
        for (days_ago, allowed, denied) in [(0, 5, 2), (2, 3, 0), (6, 0, 4)] {
            for i in 0..allowed + denied {
                let mut e = event(
                    "agent-a",
                    if i < allowed { "allow" } else { "deny" },
                    &format!("d{days_ago}-{i}"),
                    Some("POLICY_DENY"),
                );
                e["timestamp"] = json!((today - days_ago * 86_400) * 1000);
                events.push(e);
            }
        }
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        let html = b.get("/usage?days=7").await.text();
        assert_eq!(html.matches("<g class=\"bar\"").count(), 7);
        let day = |ago: i64| {
            kalguard_cloud::time_util::day_label(kalguard_cloud::time_util::day_of(
                today - ago * 86_400,
            ))
        };
        assert!(html.contains(&format!(
            "data-day=\"{}\" data-checks=\"7\" data-allowed=\"5\" data-denied=\"2\"",
            day(0)
        )));
        assert!(html.contains(&format!(
            "data-day=\"{}\" data-checks=\"3\" data-allowed=\"3\" data-denied=\"0\"",
            day(2)
        )));
        assert!(html.contains(&format!(
            "data-day=\"{}\" data-checks=\"4\" data-allowed=\"0\" data-denied=\"4\"",
            day(6)
        )));
        assert!(html.contains("<span class=\"value\" id=\"total-checks\">14</span>"));
        assert!(html.contains("<span class=\"value\" id=\"total-denied\">6</span>"));
        assert!(between(&html, "<table id=\"by-code\">", "</table>")
            .contains("<td class=\"code\">POLICY_DENY</td><td>6</td>"));
        let html = b.get("/agents").await.text();
        assert!(html.contains("<td class=\"agent\">agent-a</td>"));
        assert_eq!(
            b.get("/usage?days=90")
                .await
                .text()
                .matches("<g class=\"bar\"")
                .count(),
            90
        );
    }
}

#[tokio::test]
async fn one_org_can_never_touch_another_orgs_data() {
    for url in backends() {
        let app = app(&url).await;
        let (mut alice, alice_key) = app.signup("Alice").await;
        let (mut bob, _) = app.signup("Bob").await;
        let a_csrf = alice.csrf().await;
        let b_csrf = bob.csrf().await;

        // Alice has a token and events.
        alice
            .post(
                "/tokens",
                &[
                    ("csrf", &a_csrf),
                    ("name", "alice-bot"),
                    ("agent_id", "alice-agent"),
                    ("capability", "prompt:send"),
                    ("expiry", "1h"),
                ],
            )
            .await;
        app.api("/api/v1/usage/report", &alice_key, json!({"events": [event("alice-agent", "deny", "alice-req", Some("PROMPT_BLOCKED"))], "sidecarId": "alice-pod"})).await;
        let a_keys = alice.get("/keys").await.text();
        let a_key_id = between(&a_keys, "data-key-id=\"", "\"");
        let a_token_id = between(&alice.get("/tokens").await.text(), "data-token-id=\"", "\"");

        // Bob sees none of it …
        for path in [
            "/keys",
            "/tokens",
            "/audit",
            "/audit?agent=alice-agent",
            "/agents",
            "/sidecars",
            "/usage",
            "/members",
            "/billing",
        ] {
            let mut html = bob.get(path).await.text();
            // The search form echoes the filter the user typed; only results count.
            html = html
                .replace("value=\"alice-agent\"", "")
                .replace("/audit.csv?agent=alice-agent", "");
            for secret in [
                &a_key_id,
                &a_token_id,
                "alice-agent",
                "alice-req",
                "alice-pod",
                "Alice",
            ] {
                assert!(!html.contains(secret), "{path} leaks {secret}");
            }
        }
        let csv = bob.get("/audit.csv?agent=alice-agent").await.text();
        assert_eq!(csv.lines().count(), 1, "{csv}");
        // … and cannot act on it by ID.
        for path in [
            format!("/keys/{a_key_id}/revoke"),
            format!("/keys/{a_key_id}/rotate"),
            format!("/tokens/{a_token_id}/revoke"),
        ] {
            let r = bob.post(&path, &[("csrf", &b_csrf)]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = bob
            .post(
                "/agents/quarantine",
                &[
                    ("csrf", &b_csrf),
                    ("agent_id", "alice-agent"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.location(), "/agents?notice=quarantined&count=0");
        // Alice's key and token are untouched.
        assert_eq!(
            app.api("/api/v1/license/validate", &alice_key, json!({}))
                .await
                .status,
            StatusCode::OK
        );
        let l = app
            .api("/api/v1/license/validate", &alice_key, json!({}))
            .await
            .json();
        assert_eq!(l["revokedTokenHashes"], json!([]));
        let alice_org = l["orgId"].as_str().unwrap().to_string();
        let toks = tokens::list(&app.state.db, &alice_org).await.unwrap();
        assert!(toks.iter().all(|t| t.revoked_at.is_none()));
        // Alice's secret never appears in Bob's license.
        let bob_key = {
            let csrf = bob.csrf().await;
            let r = bob.post("/keys", &[("csrf", &csrf), ("name", "k")]).await;
            between(&r.text(), "<code id=\"new-api-key\">", "</code>")
        };
        let bl = app
            .api("/api/v1/license/validate", &bob_key, json!({}))
            .await
            .json();
        assert_ne!(bl["tokenSigningSecret"], l["tokenSigningSecret"]);
        assert_ne!(bl["orgId"], l["orgId"]);
        let alice = orgs::get(&app.state.db, &alice_org).await.unwrap().unwrap();
        assert_eq!(alice.name, "Alice");
    }
}

#[tokio::test]
async fn members_share_their_org() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Acme").await;
        let csrf = owner.csrf().await;
        let email = format!(
            "{}@acme.test",
            kalguard_cloud::secrets::random_string(8).to_lowercase()
        );
        let r = owner
            .post(
                "/members",
                &[
                    ("csrf", &csrf),
                    ("email", &email),
                    ("password", "member password 1"),
                ],
            )
            .await;
        assert_eq!(r.location(), "/members?notice=member_added");
        let mut m = Browser {
            app: &app,
            cookies: vec![],
        };
        let c = csrf_of(&m.get("/login").await.text());
        m.post(
            "/login",
            &[
                ("csrf", &c),
                ("email", &email),
                ("password", "member password 1"),
            ],
        )
        .await;
        let html = m.get("/members").await.text();
        assert!(html.contains(&email) && html.contains("owner"));
        assert!(html.contains("<span id=\"org-name\">Acme</span>"));
        // A member (a viewer, the default) cannot remove the owner; the owner
        // removes the member, whose session ends at once. Another org cannot
        // remove anyone here.
        let owner_row = html[..html.find("<td class=\"role\">owner</td>").unwrap()]
            .rfind("data-member-id=")
            .unwrap();
        let owner_id = between(&html[owner_row..], "data-member-id=\"", "\"");
        let m_csrf = m.csrf().await;
        let r = m
            .post(&format!("/members/{owner_id}/remove"), &[("csrf", &m_csrf)])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let page = owner.get("/members").await.text();
        let at = page.find(&email).unwrap();
        let member_id = between(
            &page[page[..at].rfind("data-member-id=").unwrap()..],
            "data-member-id=\"",
            "\"",
        );
        let (mut other, _) = app.signup("Other").await;
        let o_csrf = other.csrf().await;
        let r = other
            .post(
                &format!("/members/{member_id}/remove"),
                &[("csrf", &o_csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = owner
            .post(
                &format!("/members/{member_id}/remove"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.location(), "/members?notice=member_removed");
        assert_eq!(m.get("/keys").await.location(), "/login?next=%2Fkeys");
        assert!(!owner.get("/members").await.text().contains(&email));
    }
}

#[tokio::test]
async fn the_login_limit_is_shared_by_replicas() {
    for url in backends() {
        let a = app(&url).await;
        let b = app(&url).await;
        let (mut owner, _) = a.signup("Acme").await;
        let page = owner.get("/members").await.text();
        let email = between(
            &page[page.find("data-member-id=").unwrap()..],
            "<td class=\"wrap\">",
            "</td>",
        );
        let mut attacker = Browser {
            app: &a,
            cookies: vec![],
        };
        for _ in 0..5 {
            let csrf = csrf_of(&attacker.get("/login").await.text());
            let r = attacker
                .post(
                    "/login",
                    &[
                        ("csrf", &csrf),
                        ("email", &email),
                        ("password", "wrong password!"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let mut elsewhere = Browser {
            app: &b,
            cookies: vec![],
        };
        let csrf = csrf_of(&elsewhere.get("/login").await.text());
        let r = elsewhere
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("email", &email),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{url}");
    }
}

/// The HTML of one row of the keys page.
fn key_row(page: &str, id: &str) -> String {
    let start = page.find(&format!("data-key-id=\"{id}\"")).unwrap();
    between(&page[start..], ">", "</tr>")
}

#[tokio::test]
async fn a_rotated_key_keeps_its_deadline_and_cannot_be_rotated_again() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, first) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let page = b.get("/keys").await.text();
        let first_id = key_id_of(&page, &first[..14]);
        let r = b
            .post(&format!("/keys/{first_id}/rotate"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let replacement = between(&r.text(), "<code id=\"new-api-key\">", "</code>");
        let org_id = app
            .api("/api/v1/license/validate", &first, json!({}))
            .await
            .json()["orgId"]
            .as_str()
            .unwrap()
            .to_string();
        let deadline = |keys: &[kalguard_cloud::store::keys::ApiKey]| {
            keys.iter().find(|k| k.id == first_id).unwrap().expires_at
        };
        let before = kalguard_cloud::store::keys::list(&app.state.db, &org_id)
            .await
            .unwrap();
        assert_eq!(before.len(), 2);
        assert!(deadline(&before).is_some());

        // The rotated key offers no Rotate button, and posting anyway changes nothing.
        let page = b.get("/keys").await.text();
        assert!(!key_row(&page, &first_id).contains("/rotate"));
        assert!(key_row(&page, &first_id).contains("class=\"danger revoke\""));
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = b
            .post(&format!("/keys/{first_id}/rotate"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        assert!(r.text().contains("Rotate its replacement instead"));
        assert!(!r.text().contains("new-api-key"));
        let after = kalguard_cloud::store::keys::list(&app.state.db, &org_id)
            .await
            .unwrap();
        assert_eq!(after.len(), 2, "no second replacement");
        assert_eq!(
            deadline(&after),
            deadline(&before),
            "the deadline did not move"
        );

        // The replacement is the chain's current key: it can be rotated.
        let page = b.get("/keys").await.text();
        let replacement_id = key_id_of(&page, &replacement[..14]);
        let r = b
            .post(
                &format!("/keys/{replacement_id}/rotate"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            kalguard_cloud::store::keys::list(&app.state.db, &org_id)
                .await
                .unwrap()
                .len(),
            3
        );
    }
}

/// The HTML of the tokens-table row of the token named `name`.
fn token_row(page: &str, name: &str) -> String {
    let table = between(page, "<table id=\"tokens\">", "</table>");
    table
        .split("<tr class=\"token\"")
        .find(|row| row.contains(&format!("<td class=\"wrap\">{name}</td>")))
        .unwrap_or_else(|| panic!("no token {name} in {table}"))
        .to_string()
}

#[tokio::test]
async fn tokens_signed_with_a_retired_secret_are_not_listed_as_active() {
    for url in backends() {
        let mut config = kalguard_cloud::Config::for_tests();
        config.secret_grace_secs = 0;
        let app = common::app_with(&url, config).await;
        let (mut b, key) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let mint = |name: &'static str, agent: &'static str| {
            [
                ("name", name),
                ("agent_id", agent),
                ("capability", "prompt:send"),
                ("expiry", "7d"),
            ]
        };
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(mint("old-bot", "old-agent"));
        let r = b.post("/tokens", &fields).await;
        let old = between(&r.text(), "<code id=\"new-token\">", "</code>");
        let r = b
            .post(
                "/tokens/rotate-secret",
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.location(), "/tokens?notice=secret_rotated");
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(mint("new-bot", "new-agent"));
        b.post("/tokens", &fields).await;

        // The license no longer carries the old secret, so the old token cannot verify.
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        let secrets: Vec<String> = l["tokenSigningSecrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(secrets.len(), 1);
        let verifier = kalguard_wire::token::Verifier {
            secrets: &secrets,
            is_revoked: &|_: &str| false,
        };
        assert!(verifier.verify(&old, now()).is_err());

        let page = b.get("/tokens").await.text();
        let row = token_row(&page, "old-bot");
        assert!(!row.contains("<td class=\"status\">active</td>"), "{row}");
        assert!(row.contains("signing secret retired"), "{row}");
        assert!(!row.contains("class=\"danger revoke\""), "{row}");
        let row = token_row(&page, "new-bot");
        assert!(row.contains("<td class=\"status\">active</td>"), "{row}");
        assert!(row.contains("class=\"danger revoke\""), "{row}");
        // Quarantine only offers agents that still hold a working token.
        let select = between(&page, "id=\"quarantine-agent\"", "</select>");
        assert!(
            select.contains("new-agent") && !select.contains("old-agent"),
            "{select}"
        );
    }
}

/// The claims of a JWT, read without verifying it.
fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn custom_capabilities_do_not_repeat_ticked_ones() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, _) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let r = b
            .post(
                "/tokens",
                &[
                    ("csrf", &csrf),
                    ("name", "bot"),
                    ("agent_id", "agent-1"),
                    ("capability", "prompt:send"),
                    ("capability", "tool:execute"),
                    (
                        "custom_capabilities",
                        "prompt:send, model:gpt-4o,tool:execute model:gpt-4o\nprompt:send",
                    ),
                    ("expiry", "7d"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let token = between(&r.text(), "<code id=\"new-token\">", "</code>");
        assert_eq!(
            jwt_claims(&token)["capabilities"],
            json!(["prompt:send", "tool:execute", "model:gpt-4o"])
        );
        let page = b.get("/tokens").await.text();
        assert!(page.contains("<td class=\"wrap\">prompt:send, tool:execute, model:gpt-4o</td>"));
    }
}

#[tokio::test]
async fn the_token_form_keeps_its_inputs_after_an_error() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, _) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let r = b
            .post(
                "/tokens",
                &[
                    ("csrf", &csrf),
                    ("name", "my \"bot\""),
                    ("agent_id", "agent-7"),
                    ("capability", "tool:execute"),
                    ("capability", "llm:call"),
                    ("custom_capabilities", "model:gpt-4o, tool:execute:search"),
                    ("expiry", "custom"),
                    ("custom_amount", "0"),
                    ("custom_unit", "hours"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let html = r.text();
        assert!(html.contains("Expiry must be between 1 minute and 3 years."));
        let form = between(&html, "<form method=\"post\" action=\"/tokens\"", "</form>");
        assert!(
            form.contains("value=\"my &#34;bot&#34;\"")
                || form.contains("value=\"my &quot;bot&quot;\""),
            "{form}"
        );
        assert!(form.contains("value=\"agent-7\""), "{form}");
        assert!(form.contains("value=\"tool:execute\" checked"), "{form}");
        assert!(form.contains("value=\"llm:call\" checked"), "{form}");
        assert!(!form.contains("value=\"prompt:send\" checked"), "{form}");
        assert!(
            form.contains("value=\"model:gpt-4o, tool:execute:search\""),
            "{form}"
        );
        assert!(form.contains("value=\"custom\" checked"), "{form}");
        assert!(!form.contains("value=\"30d\" checked"), "{form}");
        assert!(form.contains("value=\"0\""), "{form}");
        assert!(form.contains("<option value=\"hours\" selected>"), "{form}");
        assert!(!form.contains("<option value=\"days\" selected>"), "{form}");

        // A fresh form starts from the defaults.
        let html = b.get("/tokens").await.text();
        let form = between(&html, "<form method=\"post\" action=\"/tokens\"", "</form>");
        assert!(form.contains("value=\"prompt:send\" checked"), "{form}");
        assert!(form.contains("value=\"30d\" checked"), "{form}");
        assert!(form.contains("<option value=\"days\" selected>"), "{form}");
    }
}

#[tokio::test]
async fn the_audit_to_date_includes_its_whole_day() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let today = kalguard_cloud::time_util::day_of(now());
        let midnight = today * 86_400;
        let mut events = Vec::new();
        // Three events today (first and last second of the day when they are past),
        // one yesterday, at most "now" so none is clamped.
        for (i, ts) in [midnight, (midnight + now()) / 2, now(), midnight - 1]
            .into_iter()
            .enumerate()
        {
            let mut e = event("agent-a", "allow", &format!("to-{i}"), None);
            e["timestamp"] = json!(ts * 1000);
            events.push(e);
        }
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        let day = kalguard_cloud::time_util::day_label(today);
        let html = b.get(&format!("/audit?from={day}&to={day}")).await.text();
        assert_eq!(html.matches("<tr class=\"event\">").count(), 3, "{html}");
        assert!(html.contains("To (UTC, inclusive)"));
        let csv = b
            .get(&format!("/audit.csv?from={day}&to={day}"))
            .await
            .text();
        assert_eq!(csv.lines().count(), 4);
        // To alone, yesterday: only yesterday's event.
        let yesterday = kalguard_cloud::time_util::day_label(today - 1);
        let html = b.get(&format!("/audit?to={yesterday}")).await.text();
        assert_eq!(html.matches("<tr class=\"event\">").count(), 1, "{html}");
        // A To with a time includes that minute.
        let minute = kalguard_cloud::time_util::rfc3339(midnight);
        let minute = &minute[..16];
        let html = b
            .get(&format!("/audit?from={day}&to={minute}"))
            .await
            .text();
        assert_eq!(html.matches("<tr class=\"event\">").count(), 1, "{html}");
        // From after To is said, not silently empty.
        let r = b.get(&format!("/audit?from={day}&to={yesterday}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("after the To date"), "{}", r.text());
    }
}

#[tokio::test]
async fn quarantine_without_an_agent_returns_to_the_page_with_a_message() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, _) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        // No agent holds a token: the form offers nothing to submit.
        let page = b.get("/tokens").await.text();
        assert!(
            !page.contains("id=\"quarantine\""),
            "no button without agents"
        );
        assert!(page.contains("No agent holds an active token."));
        // Submitted anyway (a stale page): back to the page, with the reason.
        for (back, page) in [("tokens", "/tokens"), ("", "/agents")] {
            let r = b
                .post(
                    "/agents/quarantine",
                    &[("csrf", &csrf), ("agent_id", ""), ("back", back)],
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
            assert_eq!(r.location(), format!("{page}?notice=choose_agent"));
            let html = b.get(r.location()).await.text();
            assert!(
                html.contains(
                    "<p class=\"notice error\" id=\"notice\">Choose an agent to quarantine."
                ),
                "{html}"
            );
        }
    }
}

#[tokio::test]
async fn wrong_methods_get_a_page_not_a_blank_405() {
    for url in backends() {
        let app = app(&url).await;
        let mut anon = Browser {
            app: &app,
            cookies: vec![],
        };
        assert_eq!(anon.get("/logout").await.location(), "/login");
        let (mut b, _) = app.signup("Acme").await;
        // GET /logout (a typed or bookmarked URL): a page with the log-out button.
        let r = b.get("/logout").await;
        assert_eq!(r.status, StatusCode::OK);
        let html = r.text();
        assert!(
            html.contains("<form method=\"post\" action=\"/logout\""),
            "{html}"
        );
        assert!(html.contains("id=\"logout-confirm\""), "{html}");
        // Still logged in: GET changed nothing.
        assert_eq!(b.get("/keys").await.status, StatusCode::OK);

        let send = |method: &str, path: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header(
                    header::COOKIE,
                    b.cookies
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
                .body(axum::body::Body::empty())
                .unwrap()
        };
        for (method, path, allow) in [
            ("GET", "/keys/key_x/rotate", "POST"),
            ("GET", "/agents/quarantine", "POST"),
            ("GET", "/tokens/rotate-secret", "POST"),
            ("POST", "/usage", "GET,HEAD"),
            ("PUT", "/login", "GET,HEAD,POST"),
            ("DELETE", "/members", "GET,HEAD,POST"),
        ] {
            let r = app.send(send(method, path)).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                r.headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
                "{method} {path}"
            );
            assert!(
                r.text().contains("does not accept"),
                "{method} {path}: {}",
                r.text()
            );
            let got = r.headers[header::ALLOW].to_str().unwrap().replace(' ', "");
            assert_eq!(got, allow, "{method} {path}");
            assert!(r.headers.contains_key(header::CONTENT_SECURITY_POLICY));
        }
        for path in [
            "/api/v1/usage/report",
            "/api/v1/license/validate",
            "/api/v1/stripe/webhook",
        ] {
            let r = app.send(send("GET", path)).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert_eq!(r.json()["error"]["code"], "METHOD_NOT_ALLOWED", "{path}");
        }
    }
}

#[tokio::test]
async fn an_oversized_form_gets_a_page() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, _) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        let huge = "x".repeat(3 << 20);
        let r = b.post("/tokens", &[("csrf", &csrf), ("name", &huge)]).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{:?}",
            r.headers
        );
        assert!(r.text().contains("too large"), "{}", r.text());
    }
}

/// The number in a usage card.
fn card(html: &str, id: &str) -> i64 {
    between(html, &format!("<span class=\"value\" id=\"{id}\">"), "<")
        .replace(',', "")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn usage_figures_reconcile_with_the_audit_log_and_csv() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let mut events = Vec::new();
        for i in 0..5 {
            events.push(event("agent-a", "allow", &format!("ok-{i}"), None));
        }
        for i in 0..3 {
            events.push(event(
                "agent-a",
                "deny",
                &format!("blocked-{i}"),
                Some("PROMPT_BLOCKED"),
            ));
        }
        for (i, code) in [
            "TOKEN_REVOKED",
            "TOKEN_REVOKED",
            "TOKEN_EXPIRED",
            "RATE_LIMIT_EXCEEDED",
        ]
        .into_iter()
        .enumerate()
        {
            events.push(event("agent-a", "deny", &format!("gate-{i}"), Some(code)));
        }
        for i in 0..2 {
            // The answers of two allowed requests, refused.
            let mut e = event("agent-a", "deny", &format!("ok-{i}"), None);
            e["metadata"] = json!({"answer": 1, "errorCode": "SENSITIVE_DATA"});
            events.push(e);
        }
        for i in 0..2 {
            events.push(event(
                "agent-a",
                "require_approval",
                &format!("ask-{i}"),
                Some("REQUIRE_APPROVAL"),
            ));
        }
        let r = app
            .api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        assert_eq!(r.json()["accepted"], 16);

        let html = b.get("/usage?days=7").await.text();
        assert_eq!(
            card(&html, "total-checks"),
            10,
            "5 allowed + 3 denied + 2 held"
        );
        assert_eq!(card(&html, "total-allowed"), 5);
        assert_eq!(
            card(&html, "total-denied"),
            9,
            "every refusal, at any phase"
        );
        assert_eq!(
            card(&html, "total-approval"),
            2,
            "held for approval is not denied"
        );
        assert_eq!(card(&html, "total-events"), 16);
        // Each figure says what it counts.
        for id in [
            "total-checks",
            "total-allowed",
            "total-denied",
            "total-approval",
            "total-events",
        ] {
            let at = html.find(&format!("id=\"{id}\"")).unwrap();
            let card_html = &html[at..at + html[at..].find("</div>").unwrap()];
            assert!(
                card_html.contains("<span class=\"what\">"),
                "{id}: {card_html}"
            );
        }
        let by_code = between(&html, "<table id=\"by-code\">", "</table>");
        for (code, n) in [
            ("PROMPT_BLOCKED", 3),
            ("TOKEN_REVOKED", 2),
            ("TOKEN_EXPIRED", 1),
            ("RATE_LIMIT_EXCEEDED", 1),
            ("SENSITIVE_DATA", 2),
        ] {
            assert!(
                by_code.contains(&format!("<td class=\"code\">{code}</td><td>{n}</td>")),
                "{code}: {by_code}"
            );
        }
        assert!(
            by_code.contains("<td class=\"code\">REQUIRE_APPROVAL</td><td>0</td><td>2</td>"),
            "{by_code}"
        );
        let today = kalguard_cloud::time_util::day_label(kalguard_cloud::time_util::day_of(now()));
        assert!(html.contains(&format!(
            "data-day=\"{today}\" data-checks=\"10\" data-allowed=\"5\" data-denied=\"9\" data-approval=\"2\""
        )), "{html}");

        // The CSV of the same window has one row per event, split the same way.
        let link = between(&html, "id=\"window-csv\" href=\"", "\"").replace("&amp;", "&");
        let csv = b.get(&link).await.text();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(rows.len() as i64, card(&html, "total-events"));
        let count = |d: &str| {
            rows.iter()
                .filter(|r| r.contains(&format!(",\"{d}\",")))
                .count() as i64
        };
        assert_eq!(count("allow"), card(&html, "total-allowed"));
        assert_eq!(count("deny"), card(&html, "total-denied"));
        assert_eq!(count("require_approval"), card(&html, "total-approval"));

        // The agents page counts the same way.
        let agents = b.get("/agents").await.text();
        let row = between(&agents, "<td class=\"agent\">agent-a</td>", "</tr>");
        assert!(row.contains("<td>10</td><td>9</td><td>2</td>"), "{row}");
    }
}

#[tokio::test]
async fn the_usage_page_says_when_the_audit_log_has_purged_events_it_counts() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let old = now() - 10 * 86_400;
        let mut events = Vec::new();
        for i in 0..4 {
            let mut e = event("agent-a", "allow", &format!("old-{i}"), None);
            e["timestamp"] = json!(old * 1000);
            events.push(e);
        }
        events.push(event("agent-a", "allow", "new-1", None));
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
        kalguard_cloud::app::purge_once(&app.state.db, 1_800)
            .await
            .unwrap();
        let html = b.get("/usage?days=30").await.text();
        assert_eq!(card(&html, "total-events"), 5);
        let note = between(&html, "<p class=\"hint\" id=\"retention-note\">", "</p>");
        let cutoff = kalguard_cloud::time_util::day_label(kalguard_cloud::time_util::day_of(
            now() - 7 * 86_400,
        ));
        assert!(note.contains("7 days"), "{note}");
        assert!(note.contains(&cutoff), "{note}");
        assert!(note.contains("purged"), "{note}");
        // The CSV of the window holds what retention kept, as the note says.
        let link = between(&html, "id=\"window-csv\" href=\"", "\"").replace("&amp;", "&");
        assert_eq!(b.get(&link).await.text().lines().count(), 2);
        // A 7-day window is inside the retention: nothing to warn about.
        let html = b.get("/usage?days=7").await.text();
        assert!(!html.contains("id=\"retention-note\""));
    }
}

#[tokio::test]
async fn agent_ids_that_render_like_another_are_refused_and_shown_escaped() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, key) = app.signup("Acme").await;
        let csrf = b.csrf().await;
        for agent in [
            "support-bot\u{200B}",
            "support\u{202E}tob-",
            "support-bot\u{2060}",
        ] {
            let r = b
                .post(
                    "/tokens",
                    &[
                        ("csrf", &csrf),
                        ("name", "bot"),
                        ("agent_id", agent),
                        ("capability", "prompt:send"),
                        ("expiry", "7d"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{agent:?}");
            assert!(
                r.text().contains("invisible, direction-changing"),
                "{}",
                r.text()
            );
            assert!(!r.text().contains("new-token"));
        }
        // Stored before the rule (straight into the store): shown escaped, never as
        // the plain ID it imitates.
        let org_id = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json()["orgId"]
            .as_str()
            .unwrap()
            .to_string();
        let e = kalguard_cloud::store::usage::Event {
            request_id: "old-1".into(),
            event_type: "prompt_check".into(),
            agent_id: "support-bot\u{200B}".into(),
            decision: "deny".into(),
            error_code: "PROMPT_BLOCKED".into(),
            ts_ms: now() * 1000,
            phase: kalguard_cloud::store::usage::Phase::Request,
            signals: Default::default(),
        };
        kalguard_cloud::store::usage::ingest(&app.state.db, &org_id, None, &[e], now())
            .await
            .unwrap();
        for page in ["/audit", "/agents", "/usage"] {
            let html = b.get(page).await.text();
            assert!(html.contains("support-bot\\u{200B}"), "{page}: {html}");
            // Only the quarantine form's hidden field carries the stored bytes.
            assert!(!html.contains(">support-bot\u{200B}<"), "{page}");
        }
    }
}

#[tokio::test]
async fn passwords_are_checked_bounded_and_taken_as_typed() {
    for url in backends() {
        let app = app(&url).await;
        let mut b = Browser {
            app: &app,
            cookies: vec![],
        };
        let email = format!(
            "{}@acme.test",
            kalguard_cloud::secrets::random_string(10).to_lowercase()
        );
        let long = "correct horse battery ".repeat(6);
        for (password, says) in [
            ("1234567890", "too easy to guess (only digits)"),
            (
                "qwertyuiop",
                "too easy to guess (a keyboard or alphabet sequence)",
            ),
            ("Password123!", "too easy to guess (a common password"),
            (long.as_str(), "at most 128 characters"),
        ] {
            let csrf = csrf_of(&b.get("/signup").await.text());
            let r = b
                .post(
                    "/signup",
                    &[
                        ("csrf", &csrf),
                        ("org_name", "Acme"),
                        ("email", &email),
                        ("password", password),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{password:?}");
            assert!(r.text().contains(says), "{password:?}: {}", r.text());
        }
        // A space at the end is part of the password, not trimmed away.
        let csrf = csrf_of(&b.get("/signup").await.text());
        let r = b
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("org_name", "Acme"),
                    ("email", &email),
                    ("password", " correct horse battery "),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let login = |password: &'static str| {
            let app = &app;
            let email = email.clone();
            async move {
                let mut b = Browser {
                    app,
                    cookies: vec![],
                };
                let csrf = csrf_of(&b.get("/login").await.text());
                b.post(
                    "/login",
                    &[("csrf", &csrf), ("email", &email), ("password", password)],
                )
                .await
                .status
            }
        };
        assert_eq!(
            login("correct horse battery").await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            login(" correct horse battery ").await,
            StatusCode::SEE_OTHER
        );

        // An account whose password was stored trimmed (before) still logs in
        // with what its owner types.
        let old_email = format!(
            "{}@acme.test",
            kalguard_cloud::secrets::random_string(10).to_lowercase()
        );
        let hash = kalguard_cloud::web::auth::hash_password("old horse battery".into(), 256)
            .await
            .unwrap();
        orgs::create_with_owner(&app.state.db, "Old", &old_email, &hash)
            .await
            .unwrap();
        let mut b = Browser {
            app: &app,
            cookies: vec![],
        };
        let csrf = csrf_of(&b.get("/login").await.text());
        let r = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("email", &old_email),
                    ("password", "old horse battery "),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);

        // A new member's initial password follows the same rule.
        let (mut owner, _) = app.signup("Members").await;
        let csrf = owner.csrf().await;
        let r = owner
            .post(
                "/members",
                &[
                    ("csrf", &csrf),
                    ("email", "m@members.test"),
                    ("password", "1234567890"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("too easy to guess"), "{}", r.text());
    }
}

/// An organisation's owner, admin and viewer, each logged in.
async fn three_roles(app: &common::TestApp) -> (Browser<'_>, Browser<'_>, Browser<'_>, String) {
    let (mut owner, _) = app.signup("Roles").await;
    let (admin, _) = owner.add_member("admin").await;
    let (viewer, _) = owner.add_member("viewer").await;
    let org = orgs::user_by_email(&app.state.db, &owner_email(&mut owner).await)
        .await
        .unwrap()
        .unwrap()
        .org_id;
    (owner, admin, viewer, org)
}

#[tokio::test]
async fn every_action_is_refused_to_roles_below_it() {
    use kalguard_cloud::role::{Permission, Role};
    for url in backends() {
        let app = app(&url).await;
        let (owner, admin, viewer, org_id) = three_roles(&app).await;
        let mut owner = owner;
        for (role, mut b) in [
            (Role::Viewer, viewer),
            (Role::Admin, admin),
            (
                Role::Owner,
                app.login(&owner_email(&mut owner).await, "correct horse battery")
                    .await
                    .0,
            ),
        ] {
            // Fresh targets for each role: the allowed attempts use them up.
            let key_name = format!("target-{role}");
            kalguard_cloud::store::keys::create(
                &app.state.db,
                &org_id,
                &key_name,
                kalguard_cloud::secrets::KeyMode::Live,
            )
            .await
            .unwrap();
            let key_id = kalguard_cloud::store::keys::list(&app.state.db, &org_id)
                .await
                .unwrap()
                .into_iter()
                .find(|k| k.name == key_name)
                .unwrap()
                .id;
            let org = orgs::get(&app.state.db, &org_id).await.unwrap().unwrap();
            let agent = format!("agent-{}", role.as_str());
            tokens::create(
                &app.state.db,
                &org,
                &tokens::NewToken {
                    name: "target".into(),
                    agent_id: agent.clone(),
                    capabilities: vec!["prompt:send".into()],
                    ttl_secs: 3600,
                },
            )
            .await
            .unwrap();
            let token_id = tokens::list(&app.state.db, &org_id)
                .await
                .unwrap()
                .into_iter()
                .find(|t| t.agent_id == agent)
                .unwrap()
                .id;
            let (_, target_email) = owner.add_member("viewer").await;
            let member_id = owner.member_id(&target_email).await;
            let (_, spare_email) = owner.add_member("viewer").await;
            let spare_id = owner.member_id(&spare_email).await;
            let csrf = b.csrf().await;
            let new_email = format!("new-{}@member.test", role.as_str());
            type Action<'a> = (String, Vec<(&'a str, &'a str)>, Permission);
            let actions: Vec<Action> = vec![
                ("/keys".into(), vec![("name", "k")], Permission::Operate),
                (
                    format!("/keys/{key_id}/rotate"),
                    vec![],
                    Permission::Operate,
                ),
                (
                    format!("/keys/{key_id}/revoke"),
                    vec![],
                    Permission::Operate,
                ),
                (
                    "/tokens".into(),
                    vec![
                        ("name", "t"),
                        ("agent_id", "a-1"),
                        ("capability", "prompt:send"),
                        ("expiry", "7d"),
                    ],
                    Permission::Operate,
                ),
                (
                    format!("/tokens/{token_id}/revoke"),
                    vec![],
                    Permission::Operate,
                ),
                (
                    "/agents/quarantine".into(),
                    vec![("agent_id", agent.as_str())],
                    Permission::Operate,
                ),
                (
                    "/tokens/rotate-secret".into(),
                    vec![],
                    Permission::Administer,
                ),
                (
                    "/billing/checkout".into(),
                    vec![("plan", "pro")],
                    Permission::Administer,
                ),
                ("/billing/portal".into(), vec![], Permission::Administer),
                (
                    "/members".into(),
                    vec![
                        ("email", new_email.as_str()),
                        ("password", "member password 1"),
                        ("role", "owner"),
                    ],
                    Permission::Administer,
                ),
                (
                    format!("/members/{spare_id}/role"),
                    vec![("role", "owner")],
                    Permission::Administer,
                ),
                (
                    format!("/members/{spare_id}/unlock"),
                    vec![],
                    Permission::Administer,
                ),
                (
                    format!("/members/{member_id}/remove"),
                    vec![],
                    Permission::Administer,
                ),
            ];
            for (path, fields, permission) in actions {
                let mut fields = fields;
                fields.push(("csrf", &csrf));
                fields.push(("confirm", "yes"));
                let r = b.post(&path, &fields).await;
                if role.allows(permission) {
                    let billing = path.starts_with("/billing/");
                    assert!(
                        r.status.is_success()
                            || r.status.is_redirection()
                            || (billing && r.status == StatusCode::BAD_REQUEST),
                        "{role} {path}: {} {}",
                        r.status,
                        r.text()
                    );
                } else {
                    assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} {path}");
                    assert!(r.text().contains("cannot do this"), "{role} {path}");
                }
            }
            // Nothing a refused role asked for happened.
            let key_after = kalguard_cloud::store::keys::list(&app.state.db, &org_id)
                .await
                .unwrap()
                .into_iter()
                .find(|k| k.id == key_id)
                .unwrap();
            assert_eq!(
                key_after.revoked_at.is_some(),
                role.allows(Permission::Operate),
                "{role}"
            );
            let members = orgs::members(&app.state.db, &org_id).await.unwrap();
            assert_eq!(
                members.iter().any(|m| m.id == member_id),
                !role.allows(Permission::Administer),
                "{role}"
            );
        }
    }
}

/// The email of the organisation's owner, from the members page.
async fn owner_email(b: &mut Browser<'_>) -> String {
    let page = b.get("/members").await.text();
    let role = page.find("<td class=\"role\">owner</td>").unwrap();
    let row = page[..role].rfind("data-member-id=").unwrap();
    between(&page[row..], "<td class=\"wrap\">", "</td>")
}

#[tokio::test]
async fn pages_show_each_role_only_the_buttons_it_can_use() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, mut admin, mut viewer, _) = three_roles(&app).await;
        for (b, role) in [
            (&mut owner, "owner"),
            (&mut admin, "admin"),
            (&mut viewer, "viewer"),
        ] {
            let keys = b.get("/keys").await.text();
            let tokens = b.get("/tokens").await.text();
            let members = b.get("/members").await.text();
            assert!(keys.contains(&format!("<span id=\"role\">{role}</span>")));
            let operates = role != "viewer";
            let owns = role == "owner";
            assert_eq!(keys.contains("id=\"create-key\""), operates, "{role}");
            assert_eq!(keys.contains("class=\"danger revoke\""), operates, "{role}");
            assert_eq!(tokens.contains("id=\"create-token\""), operates, "{role}");
            assert_eq!(tokens.contains("id=\"rotate-secret\""), owns, "{role}");
            assert_eq!(members.contains("id=\"add-member\""), owns, "{role}");
            assert_eq!(
                members.contains("class=\"danger remove-member\""),
                owns,
                "{role}"
            );
        }
    }
}

#[tokio::test]
async fn a_role_change_applies_at_once_and_an_owner_always_remains() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Roles").await;
        let (mut viewer, viewer_email) = owner.add_member("viewer").await;
        let csrf = viewer.csrf().await;
        let r = viewer
            .post("/keys", &[("csrf", &csrf), ("name", "k")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let viewer_id = owner.member_id(&viewer_email).await;
        let csrf_o = owner.csrf().await;
        let r = owner
            .post(
                &format!("/members/{viewer_id}/role"),
                &[("csrf", &csrf_o), ("role", "admin")],
            )
            .await;
        assert_eq!(r.location(), "/members?notice=role_changed");
        // The viewer's open session is an admin's now.
        let r = viewer
            .post("/keys", &[("csrf", &csrf), ("name", "k")])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        // The only owner cannot step down.
        let owner_address = owner_email(&mut owner).await;
        let owner_id = owner.member_id(&owner_address).await;
        let r = owner
            .post(
                &format!("/members/{owner_id}/role"),
                &[("csrf", &csrf_o), ("role", "viewer")],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.text().contains("needs an owner"));
        let r = owner
            .post(
                &format!("/members/{viewer_id}/role"),
                &[("csrf", &csrf_o), ("role", "root")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn members_stored_before_roles_migrate_as_admins() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Old").await;
        let (mut member, email) = owner.add_member("viewer").await;
        // What a member looked like before roles, then the migration's statement.
        sqlx::query("UPDATE users SET role = 'member' WHERE email = $1")
            .bind(&email)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        sqlx::query(include_str!("../migrations/0006_roles.sql"))
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        let page = member.get("/keys").await.text();
        assert!(page.contains("<span id=\"role\">admin</span>"), "{page}");
        assert!(owner
            .get("/members")
            .await
            .text()
            .contains("<td class=\"role\">owner</td>"));
    }
}

const ATTACKER: &str = "198.51.100.7:40000";

#[tokio::test]
async fn failed_logins_from_one_address_lock_out_no_one_else() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Acme").await;
        // `a` logged in before from this browser: it is a known device for `a`.
        let (mut a_browser, a) = owner.add_member("admin").await;
        let (_, b) = owner.add_member("viewer").await;
        let mut attacker = app.browser();
        for i in 0..20 {
            let target = if i < 6 {
                a.clone()
            } else {
                format!("nobody{i}@acme.test")
            };
            let r = attacker
                .login_from(&target, "wrong password!", ATTACKER, None)
                .await;
            let expected = if i == 5 {
                // a's sixth try from this address waits.
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(r.status, expected, "attempt {i}");
        }
        // Another account behind the same address logs in.
        let r = app
            .browser()
            .login_from(&b, common::MEMBER_PASSWORD, ATTACKER, None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        // `a` from that address, in a new browser, waits, and is told how long;
        // the password is not checked while it waits.
        let r = app
            .browser()
            .login_from(&a, common::MEMBER_PASSWORD, ATTACKER, None)
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let wait: i64 = r.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((25..=30).contains(&wait), "{wait}");
        assert!(
            r.text().contains(&format!("Try again in {wait} seconds")),
            "{}",
            r.text()
        );
        // `a` from anywhere else, or from the attacker's address in the browser
        // `a` logged in with before, gets in.
        let r = app
            .browser()
            .login_from(&a, common::MEMBER_PASSWORD, "203.0.113.5:1", None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = a_browser
            .login_from(&a, common::MEMBER_PASSWORD, ATTACKER, None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        // The owner sees the lock and lifts it.
        let page = owner.get("/members").await.text();
        let a_id = owner.member_id(&a).await;
        let row = &page[page.find(&format!("data-member-id=\"{a_id}\"")).unwrap()..];
        assert!(row[..row.find("</tr>").unwrap()].contains("login locked until"));
        let csrf = owner.csrf().await;
        let r = owner
            .post(&format!("/members/{a_id}/unlock"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.location(), "/members?notice=unlocked");
        assert!(!owner
            .get("/members")
            .await
            .text()
            .contains("login locked until"));
        let r = app
            .browser()
            .login_from(&a, common::MEMBER_PASSWORD, ATTACKER, None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn many_addresses_guessing_one_account_delay_it_and_never_its_known_browsers() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Acme").await;
        let (mut known, a) = owner.add_member("admin").await;
        for i in 0..20 {
            let r = app
                .browser()
                .login_from(&a, "wrong password!", &format!("198.51.100.{i}:1"), None)
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        // A new address waits (a delay of seconds, not a lock-out)...
        let r = app
            .browser()
            .login_from(&a, common::MEMBER_PASSWORD, "203.0.113.9:1", None)
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let wait: i64 = r.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=10).contains(&wait), "{wait}");
        // ...while the browser `a` logged in with before does not.
        let r = known
            .login_from(&a, common::MEMBER_PASSWORD, "203.0.113.9:1", None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    }
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_trusted_proxies() {
    for url in backends() {
        let mut config = kalguard_cloud::Config::for_tests();
        config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        let app = common::app_with(&url, config).await;
        let (mut owner, _) = app.signup("Acme").await;
        let (_, a) = owner.add_member("admin").await;
        let (_, b) = owner.add_member("admin").await;
        // Behind the proxy: one client's failures make that client wait, not
        // everyone the proxy serves.
        for i in 0..5 {
            let r = app
                .browser()
                .login_from(&a, "wrong password!", "10.0.0.2:1", Some("203.0.113.1"))
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        let r = app
            .browser()
            .login_from(
                &a,
                common::MEMBER_PASSWORD,
                "10.0.0.2:1",
                Some("203.0.113.1"),
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let r = app
            .browser()
            .login_from(
                &a,
                common::MEMBER_PASSWORD,
                "10.0.0.3:1",
                Some("203.0.113.2, 10.0.0.9"),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        // A client that is not a trusted proxy cannot pick a new address for
        // each guess.
        for i in 0..5 {
            let r = app
                .browser()
                .login_from(
                    &b,
                    "wrong password!",
                    ATTACKER,
                    Some(&format!("192.0.2.{i}")),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        let r = app
            .browser()
            .login_from(&b, common::MEMBER_PASSWORD, ATTACKER, Some("192.0.2.200"))
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    }
}

#[tokio::test]
async fn sign_up_does_not_say_which_emails_exist_and_is_rate_limited() {
    for url in backends() {
        let app = app(&url).await;
        let email = format!(
            "{}@signup.test",
            kalguard_cloud::secrets::random_string(8).to_lowercase()
        );
        let signup = |email: String, peer: &'static str| {
            let app = &app;
            async move {
                let mut b = app.browser();
                let csrf = csrf_of(&b.get("/signup").await.text());
                b.post_from(
                    "/signup",
                    &[
                        ("csrf", &csrf),
                        ("org_name", "Acme"),
                        ("email", &email),
                        ("password", "correct horse battery"),
                    ],
                    peer,
                    None,
                )
                .await
            }
        };
        assert_eq!(
            signup(email.clone(), "192.0.2.1:1").await.status,
            StatusCode::OK
        );
        let r = signup(email.clone(), "192.0.2.1:1").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let text = r.text();
        assert!(text.contains(
            kalguard_cloud::web::auth::SIGNUP_REFUSED
                .split(' ')
                .next()
                .unwrap()
        ));
        assert!(
            !text.contains("exists") && !text.contains("taken"),
            "{text}"
        );
        for i in 2..10 {
            let r = signup(format!("new{i}-{email}"), "192.0.2.1:1").await;
            assert_eq!(r.status, StatusCode::OK, "sign-up {i}");
        }
        let r = signup(format!("new-{email}"), "192.0.2.1:1").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.text().contains("Too many sign-ups"));
        let r = signup(format!("other-{email}"), "192.0.2.2:1").await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn admin_actions_are_recorded_in_an_append_only_hash_chain() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Acme").await;
        let owner_address = owner_email(&mut owner).await;
        let (mut admin, admin_email) = owner.add_member("admin").await;
        let (mut viewer, viewer_email) = owner.add_member("viewer").await;
        let csrf = owner.csrf().await;
        let ok = |r: common::Reply| {
            assert!(
                r.status.is_success() || r.status.is_redirection(),
                "{}",
                r.text()
            );
        };
        ok(owner
            .post("/keys", &[("csrf", &csrf), ("name", "ci")])
            .await);
        let keys_page = owner.get("/keys").await.text();
        let default_id = key_id_of(&keys_page, "Default key");
        ok(owner
            .post(
                "/tokens",
                &[
                    ("csrf", &csrf),
                    ("name", "bot token"),
                    ("agent_id", "bot-1"),
                    ("capability", "prompt:send"),
                    ("expiry", "7d"),
                ],
            )
            .await);
        let token_id = tokens::list(
            &app.state.db,
            &orgs::user_by_email(&app.state.db, &owner_address)
                .await
                .unwrap()
                .unwrap()
                .org_id,
        )
        .await
        .unwrap()[0]
            .id
            .clone();
        ok(owner
            .post(
                &format!("/tokens/{token_id}/revoke"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await);
        ok(owner
            .post(
                &format!("/keys/{default_id}/revoke"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await);
        ok(owner
            .post(
                "/agents/quarantine",
                &[("csrf", &csrf), ("agent_id", "bot-1"), ("confirm", "yes")],
            )
            .await);
        ok(owner
            .post(
                "/tokens/rotate-secret",
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await);
        let viewer_id = owner.member_id(&viewer_email).await;
        ok(owner
            .post(
                &format!("/members/{viewer_id}/role"),
                &[("csrf", &csrf), ("role", "admin")],
            )
            .await);
        ok(owner
            .post(&format!("/members/{viewer_id}/unlock"), &[("csrf", &csrf)])
            .await);
        // An admin's action names the admin.
        let a_csrf = admin.csrf().await;
        ok(admin
            .post("/keys", &[("csrf", &a_csrf), ("name", "admin key")])
            .await);
        // A refused action is not recorded.
        let v_csrf = viewer.csrf().await;
        ok(owner
            .post(
                &format!("/members/{viewer_id}/role"),
                &[("csrf", &csrf), ("role", "viewer")],
            )
            .await);
        let r = viewer
            .post(
                "/tokens/rotate-secret",
                &[("csrf", &v_csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        ok(owner
            .post(
                &format!("/members/{viewer_id}/remove"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await);

        let page = owner.get("/admin-log").await.text();
        let actions: Vec<String> = page
            .match_indices("<td class=\"action\">")
            .map(|(i, _)| between(&page[i..], "<td class=\"action\">", "</td>"))
            .collect();
        let expected = [
            "member.removed",
            "member.role_changed",
            "api_key.created",
            "member.login_unlocked",
            "member.role_changed",
            "signing_secret.rotated",
            "agent.quarantined",
            "api_key.revoked",
            "token.revoked",
            "token.created",
            "api_key.created",
            "member.added",
            "member.added",
            "org.created",
        ];
        assert_eq!(actions, expected, "{page}");
        assert!(
            page.contains("Hash chain intact: 14 entries verified."),
            "{page}"
        );
        assert!(page.contains(&admin_email) && page.contains(&owner_address));
        assert!(page.contains("Default key (kg_live_"), "{page}");
        assert!(page.contains("viewer → admin"), "{page}");
        // Every role reads it (a viewer, before being removed, included).
        assert_eq!(admin.get("/admin-log").await.status, StatusCode::OK);

        // The CSV holds every entry, oldest first, each linked to the one before.
        let csv = owner.get("/admin-log.csv").await.text();
        let rows: Vec<Vec<String>> = csv
            .lines()
            .skip(1)
            .map(|l| {
                l.split("\",\"")
                    .map(|f| f.trim_matches('"').to_string())
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), 14);
        assert_eq!(rows[0][3], "org.created");
        assert_eq!(rows[0][6], kalguard_cloud::store::admin_log::GENESIS);
        for pair in rows.windows(2) {
            assert_eq!(pair[1][6], pair[0][7]);
        }

        // Another organisation sees only its own.
        let (mut other, _) = app.signup("Other").await;
        let other_page = other.get("/admin-log").await.text();
        assert!(other_page.contains("Hash chain intact: 1 entries verified."));
        assert!(!other_page.contains(&owner_address));

        // An entry changed in the database breaks the chain, and the page says so.
        sqlx::query("UPDATE admin_log SET actor_email = 'someone@else.test' WHERE seq = 3 AND actor_email = $1")
            .bind(&owner_address)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        let page = owner.get("/admin-log").await.text();
        assert!(page.contains("Hash chain broken at entry #3"), "{page}");
        // So does an entry removed: the next one no longer follows its predecessor.
        let o_csrf = other.csrf().await;
        for name in ["one", "two"] {
            other
                .post("/keys", &[("csrf", &o_csrf), ("name", name)])
                .await;
        }
        assert!(other
            .get("/admin-log")
            .await
            .text()
            .contains("Hash chain intact: 3 entries verified."));
        sqlx::query("DELETE FROM admin_log WHERE seq = 2 AND target LIKE 'one (%'")
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        let page = other.get("/admin-log").await.text();
        assert!(page.contains("Hash chain broken at entry #2"), "{page}");
    }
}

#[tokio::test]
async fn sessions_end_after_their_idle_time_and_live_while_used() {
    for url in backends() {
        let app = app(&url).await;
        let (mut b, _) = app.signup("Acme").await;
        let set_last_seen = |ago: i64| {
            let db = app.state.db.clone();
            async move {
                sqlx::query("UPDATE sessions SET last_seen_at = $1")
                    .bind(now() - ago)
                    .execute(&db.pool)
                    .await
                    .unwrap();
            }
        };
        // Used 29 minutes ago: still live, and this request counts as use.
        set_last_seen(29 * 60).await;
        assert_eq!(b.get("/keys").await.status, StatusCode::OK);
        let (last,): (i64,) = sqlx::query_as("SELECT MAX(last_seen_at) FROM sessions")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert!(last >= now() - 5, "{last}");
        // Idle for longer than 30 minutes: over.
        set_last_seen(30 * 60 + 1).await;
        assert_eq!(b.get("/keys").await.location(), "/login?next=%2Fkeys");
    }
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_other_sessions() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Acme").await;
        let (mut here, email) = owner.add_member("viewer").await;
        let (mut elsewhere, _) = app.login(&email, common::MEMBER_PASSWORD).await;
        let csrf = here.csrf().await;
        let change = |current: &'static str, new: &'static str, again: &'static str| {
            [
                ("csrf", csrf.clone()),
                ("current_password", current.to_string()),
                ("new_password", new.to_string()),
                ("new_password_again", again.to_string()),
            ]
        };
        for (fields, says) in [
            (
                change(
                    "wrong password!",
                    "a new long passphrase",
                    "a new long passphrase",
                ),
                "current password is not right",
            ),
            (
                change(common::MEMBER_PASSWORD, "1234567890", "1234567890"),
                "too easy to guess",
            ),
            (
                change(
                    common::MEMBER_PASSWORD,
                    "a new long passphrase",
                    "a new long passphrase!",
                ),
                "differ",
            ),
        ] {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = here.post("/account/password", &fields).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{says}");
            assert!(r.text().contains(says), "{}", r.text());
        }
        assert_eq!(elsewhere.get("/keys").await.status, StatusCode::OK);
        let fields = change(
            common::MEMBER_PASSWORD,
            "a new long passphrase",
            "a new long passphrase",
        );
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = here.post("/account/password", &fields).await;
        assert_eq!(
            r.location(),
            "/account?notice=password_changed",
            "{}",
            r.text()
        );
        // This session lives on; the other one is over.
        assert_eq!(here.get("/keys").await.status, StatusCode::OK);
        assert_eq!(
            elsewhere.get("/keys").await.location(),
            "/login?next=%2Fkeys"
        );
        assert_eq!(
            app.login(&email, common::MEMBER_PASSWORD).await.1.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.login(&email, "a new long passphrase").await.1.status,
            StatusCode::SEE_OTHER
        );
        let log = owner.get("/admin-log").await.text();
        assert!(log.contains("account.password_changed"), "{log}");
        // Even a viewer can do it: it is their own account.
        assert!(here
            .get("/account")
            .await
            .text()
            .contains("id=\"change-password\""));
    }
}

#[tokio::test]
async fn sign_out_other_sessions_ends_every_session_but_this_one() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, _) = app.signup("Acme").await;
        let (mut here, email) = owner.add_member("admin").await;
        let (mut b, _) = app.login(&email, common::MEMBER_PASSWORD).await;
        let (mut c, _) = app.login(&email, common::MEMBER_PASSWORD).await;
        let page = here.get("/account").await.text();
        assert_eq!(
            between(&page, "<strong id=\"session-count\">", "</strong>"),
            "3"
        );
        let csrf = here.csrf().await;
        let r = here
            .post("/account/sessions/end-others", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.location(), "/account?notice=sessions_ended&count=2");
        assert_eq!(b.get("/keys").await.location(), "/login?next=%2Fkeys");
        assert_eq!(c.get("/keys").await.location(), "/login?next=%2Fkeys");
        let page = here.get("/account").await.text();
        assert_eq!(
            between(&page, "<strong id=\"session-count\">", "</strong>"),
            "1"
        );
        // Other members' sessions are untouched.
        assert_eq!(owner.get("/keys").await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    for url in backends() {
        for (public_url, secure) in [
            ("https://cloud.example.com", true),
            ("HTTPS://cloud.example.com", true),
            ("http://127.0.0.1:9393", false),
        ] {
            let mut config = kalguard_cloud::Config::for_tests();
            config.public_url = public_url.to_string();
            let app = common::app_with(&url, config).await;
            let mut b = app.browser();
            let page = b.get("/signup").await;
            let email = format!(
                "{}@secure.test",
                kalguard_cloud::secrets::random_string(8).to_lowercase()
            );
            let r = b
                .post(
                    "/signup",
                    &[
                        ("csrf", &csrf_of(&page.text())),
                        ("org_name", "Acme"),
                        ("email", &email),
                        ("password", "correct horse battery"),
                    ],
                )
                .await;
            let (_, login) = app.login(&email, "correct horse battery").await;
            let cookies: Vec<String> = [&page, &r, &login]
                .iter()
                .flat_map(|r| r.headers.get_all(header::SET_COOKIE))
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            for name in ["kg_csrf=", "kg_session=", "kg_device="] {
                assert!(
                    cookies.iter().any(|c| c.starts_with(name)),
                    "{name} {cookies:?}"
                );
            }
            for c in &cookies {
                assert_eq!(c.ends_with("; Secure"), secure, "{public_url}: {c}");
            }
        }
    }
}

#[tokio::test]
async fn destructive_actions_ask_first_and_act_only_when_confirmed() {
    for url in backends() {
        let app = app(&url).await;
        let (mut owner, key) = app.signup("Acme").await;
        let (_, member_email) = owner.add_member("viewer").await;
        let member_id = owner.member_id(&member_email).await;
        let org_id = orgs::user_by_email(&app.state.db, &owner_email(&mut owner).await)
            .await
            .unwrap()
            .unwrap()
            .org_id;
        let csrf = owner.csrf().await;
        for (name, agent) in [("bot", "bot-1"), ("other", "bot-2")] {
            let r = owner
                .post(
                    "/tokens",
                    &[
                        ("csrf", &csrf),
                        ("name", name),
                        ("agent_id", agent),
                        ("capability", "prompt:send"),
                        ("expiry", "7d"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
        }
        let token_id = tokens::list(&app.state.db, &org_id)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.agent_id == "bot-1")
            .unwrap()
            .id;
        let key_id = key_id_of(&owner.get("/keys").await.text(), "Default key");
        let secret_before = orgs::get(&app.state.db, &org_id)
            .await
            .unwrap()
            .unwrap()
            .signing_secret;
        /// Path, its form's own fields, the question asked, where it lands when done.
        type Destructive<'a> = (String, Vec<(&'a str, &'a str)>, &'a str, &'a str);
        let actions: [Destructive; 5] = [
            (
                format!("/keys/{key_id}/revoke"),
                vec![],
                "Revoke this API key?",
                "/keys?notice=key_revoked",
            ),
            (
                format!("/tokens/{token_id}/revoke"),
                vec![],
                "Revoke this token?",
                "/tokens?notice=token_revoked",
            ),
            (
                "/agents/quarantine".into(),
                vec![("agent_id", "bot-2"), ("back", "tokens")],
                "Quarantine this agent?",
                "/tokens?notice=quarantined&count=1",
            ),
            (
                "/tokens/rotate-secret".into(),
                vec![],
                "Rotate the token-signing secret?",
                "/tokens?notice=secret_rotated",
            ),
            (
                format!("/members/{member_id}/remove"),
                vec![],
                "Remove this member?",
                "/members?notice=member_removed",
            ),
        ];
        for (path, fields, title, _) in &actions {
            let mut first = fields.clone();
            first.push(("csrf", &csrf));
            // The list's button: a page that asks, and nothing done yet.
            let r = owner.post(path, &first).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
            let page = r.text();
            assert!(page.contains(title), "{page}");
            assert!(page.contains(&format!("action=\"{path}\"")), "{page}");
            assert!(page.contains("name=\"confirm\" value=\"yes\""));
            assert_eq!(csrf_of(&page), csrf);
            for (k, v) in fields {
                assert!(
                    page.contains(&format!("name=\"{k}\" value=\"{v}\"")),
                    "{page}"
                );
            }
            // A confirmation without the session's CSRF token is refused.
            let mut forged = fields.clone();
            forged.extend([("csrf", "forged"), ("confirm", "yes")]);
            assert_eq!(
                owner.post(path, &forged).await.status,
                StatusCode::FORBIDDEN
            );
        }
        // Nothing happened yet.
        assert_eq!(
            app.api("/api/v1/license/validate", &key, json!({}))
                .await
                .status,
            StatusCode::OK
        );
        let l = app
            .api("/api/v1/license/validate", &key, json!({}))
            .await
            .json();
        assert_eq!(l["revokedTokenHashes"].as_array().unwrap().len(), 0);
        assert_eq!(l["tokenSigningSecret"], secret_before.as_str());
        assert!(owner.get("/members").await.text().contains(&member_email));
        // The confirmation acts.
        for (path, fields, _, done) in &actions {
            let mut second = fields.clone();
            second.extend([("csrf", csrf.as_str()), ("confirm", "yes")]);
            let r = owner.post(path, &second).await;
            assert_eq!(r.location(), *done, "{path}: {}", r.text());
        }
        assert_eq!(
            app.api("/api/v1/license/validate", &key, json!({}))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert!(!owner.get("/members").await.text().contains(&member_email));
    }
}
