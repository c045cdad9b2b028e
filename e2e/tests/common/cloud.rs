//! A stand-in KalGuard Cloud on loopback: the license and usage-report
//! endpoints of DESIGN.md, with an organisation the test can change.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use kalguard_e2e::stack::Options;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The organisation as the stand-in Cloud sees it.
pub struct Org {
    /// Checks per day of the plan (`free` in the license).
    pub checks_per_day: i64,
    pub max_agents: i64,
    pub signing_secret: String,
    pub remaining: AtomicI64,
    /// Checks another sidecar of the organisation spends at the next report.
    pub other_sidecar_spends: AtomicI64,
    pub revoked_token_hashes: Mutex<Vec<String>>,
    pub validations: AtomicUsize,
    pub reports: AtomicUsize,
    /// `agentId errorCode` of every refusal reported.
    pub refusals: Mutex<Vec<String>>,
    /// Agents with a check today: those of other sidecars the test sets, then
    /// those this sidecar reports (the license's `agentsToday`).
    pub agents_today: Mutex<Vec<String>>,
}

impl Org {
    pub fn free(checks_per_day: i64, max_agents: i64, signing_secret: &str) -> Arc<Org> {
        Arc::new(Org {
            checks_per_day,
            max_agents,
            signing_secret: signing_secret.to_owned(),
            remaining: AtomicI64::new(checks_per_day),
            other_sidecar_spends: AtomicI64::new(0),
            revoked_token_hashes: Mutex::new(Vec::new()),
            validations: AtomicUsize::new(0),
            reports: AtomicUsize::new(0),
            refusals: Mutex::new(Vec::new()),
            agents_today: Mutex::new(Vec::new()),
        })
    }
}

/// A running stand-in; dropping it stops the server.
pub struct Cloud {
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl Cloud {
    pub fn start(org: Arc<Org>) -> Cloud {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/api/v1/license/validate", post(validate))
            .route("/api/v1/usage/report", post(report))
            .with_state(org);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Cloud {
            url,
            _runtime: runtime,
        }
    }
}

impl Cloud {
    /// A stack whose control plane runs in Cloud mode against this stand-in.
    /// Envoy gets no local secret: only the license's verifies tokens.
    pub fn options(&self) -> Options {
        Options {
            control_plane: Some(vec![
                ("KALGUARD_API_KEY".into(), "kg_test_e2e".into()),
                ("KALGUARD_CLOUD_URL".into(), self.url.clone()),
            ]),
            env: Vec::new(),
            concurrency: 2,
            ..super::options()
        }
    }
}

pub fn next_midnight() -> i64 {
    (super::now().div_euclid(86_400) + 1) * 86_400
}

async fn validate(State(org): State<Arc<Org>>) -> Json<Value> {
    org.validations.fetch_add(1, Ordering::SeqCst);
    let revoked = org.revoked_token_hashes.lock().unwrap().clone();
    Json(json!({
        "valid": true, "tier": "free", "orgId": "org_e2e",
        "limits": {"checksPerDay": org.checks_per_day, "maxAgents": org.max_agents,
                   "auditRetentionDays": 7, "features": ["firewall:basic"]},
        "expiresAt": "2099-01-01T00:00:00Z",
        "tokenSigningSecret": org.signing_secret,
        "revokedTokenHashes": revoked,
        "remaining": org.remaining.load(Ordering::SeqCst),
        "resetAt": next_midnight(),
        "agentsToday": *org.agents_today.lock().unwrap(),
    }))
}

async fn report(State(org): State<Arc<Org>>, Json(body): Json<Value>) -> Json<Value> {
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let is_check = |e: &&Value| {
        let answer = e["metadata"][kalguard_filter::event::ANSWER] == 1;
        kalguard_filter::refusal::is_check(e["errorCode"].as_str(), answer)
    };
    for e in events.iter().filter(is_check) {
        let agent = e["agentId"].as_str().unwrap_or("-").to_owned();
        let mut agents = org.agents_today.lock().unwrap();
        if !agents.contains(&agent) {
            agents.push(agent);
        }
    }
    let checks = events.iter().filter(is_check).count() as i64;
    for e in &events {
        if let Some(code) = e["errorCode"].as_str() {
            let agent = e["agentId"].as_str().unwrap_or("-");
            org.refusals.lock().unwrap().push(format!("{agent} {code}"));
        }
    }
    let others = org.other_sidecar_spends.swap(0, Ordering::SeqCst);
    org.remaining.fetch_sub(checks + others, Ordering::SeqCst);
    org.reports.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "accepted": events.len(),
        "remaining": org.remaining.load(Ordering::SeqCst).max(0),
        "resetAt": next_midnight(),
        "agentsToday": *org.agents_today.lock().unwrap(),
    }))
}
