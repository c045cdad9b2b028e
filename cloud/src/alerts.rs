//! Alerts: webhooks an organisation sets on the Alerts page hear about
//!
//! - a **denial spike**: at least the hook's number of denied events within
//!   [`SPIKE_WINDOW_SECS`] (once per window);
//! - the **daily quota** reaching 80 % and 100 % (once each per UTC day);
//! - a **sidecar that stopped reporting** for the hook's silence (once per silence).
//!
//! [`evaluate_once`] looks at the organisations that have hooks and queues what
//! fired; [`deliver_once`] sends what is due. The payload is Slack-compatible
//! (`text`, plus `kind`, `orgId`, `at`, `detail` for programs); it is signed like
//! Stripe's webhooks: `x-kalguard-signature: t=<unix s>,v1=<hex HMAC-SHA256 of
//! "t.body" under the hook's secret>`. A delivery that does not get a 2xx is
//! retried after [`RETRY_AFTER_SECS`], then marked failed; every attempt is in the
//! delivery log. [`spawn`] runs both every `--alert-interval-secs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;

use crate::app::AppState;
use crate::db::Db;
use crate::store::alerts::{self, Hook};
use crate::store::{orgs, sidecars, usage};
use crate::time_util::{day_of, display, rfc3339};

/// The window of a denial spike, seconds.
pub const SPIKE_WINDOW_SECS: i64 = 300;

/// Waits before the 2nd, 3rd, … attempt; after the last, the delivery has failed.
pub const RETRY_AFTER_SECS: [i64; 4] = [30, 120, 600, 3_600];

/// How long one delivery attempt may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries sent per round.
const DELIVERIES_PER_ROUND: i64 = 100;

/// Why a webhook URL is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the URL must start with https:// or http://")]
    Scheme,
    #[error("the URL is not a valid address")]
    Invalid,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("the URL points into this server's own network (loopback, private or link-local); the Cloud's operator can allow that with --alert-allow-private-targets")]
    Private,
}

/// Checks a webhook URL: http(s), no credentials, and no loopback, private or
/// link-local address unless the operator allows it (so a dashboard member cannot
/// make the Cloud call into its own network). Host names are not resolved here.
pub fn check_target(url: &str, allow_private: bool) -> Result<(), TargetError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(TargetError::Scheme);
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| TargetError::Invalid)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let host = parsed.host_str().ok_or(TargetError::Invalid)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let private = match bare.parse::<IpAddr>() {
        Ok(ip) => inside(ip),
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(TargetError::Private);
    }
    Ok(())
}

fn inside(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| inside(IpAddr::V4(v4)))
        }
    }
}

/// What fired, for one hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    Spike {
        denials: i64,
        threshold: i64,
    },
    Quota {
        percent: i64,
        used: i64,
        limit: i64,
    },
    Silent {
        sidecar_id: String,
        last_sync_at: i64,
    },
    /// "Send a test" on the Alerts page.
    Test,
}

impl Alert {
    pub fn kind(&self) -> &'static str {
        match self {
            Alert::Spike { .. } => "denial_spike",
            Alert::Quota { percent: 100, .. } => "quota_100",
            Alert::Quota { .. } => "quota_80",
            Alert::Silent { .. } => "sidecar_silent",
            Alert::Test => "test",
        }
    }

    /// The JSON body: Slack's `text`, and the same facts for programs.
    pub fn payload(&self, org_id: &str, org_name: &str, at: i64) -> String {
        let (text, detail) = match self {
            Alert::Spike { denials, threshold } => (
                format!(
                    "KalGuard: {denials} requests denied in the last {} minutes in {org_name} (alert at {threshold}).",
                    SPIKE_WINDOW_SECS / 60
                ),
                json!({"denials": denials, "threshold": threshold, "windowSecs": SPIKE_WINDOW_SECS}),
            ),
            Alert::Quota {
                percent,
                used,
                limit,
            } => (
                format!(
                    "KalGuard: {org_name} has used {percent} % of today's checks ({} of {}); the quota resets at midnight UTC.",
                    crate::web::thousands(*used),
                    crate::web::thousands(*limit)
                ),
                json!({"percent": percent, "used": used, "limit": limit}),
            ),
            Alert::Silent {
                sidecar_id,
                last_sync_at,
            } => (
                format!(
                    "KalGuard: sidecar {sidecar_id} of {org_name} has not reported since {} UTC.",
                    display(*last_sync_at)
                ),
                json!({"sidecarId": sidecar_id, "lastSyncAt": rfc3339(*last_sync_at)}),
            ),
            Alert::Test => (
                format!("KalGuard: a test alert from {org_name}'s Alerts page."),
                json!({}),
            ),
        };
        json!({"text": slack_escaped(&text), "kind": self.kind(), "orgId": org_id, "at": rfc3339(at), "detail": detail})
            .to_string()
    }
}

/// Text with Slack's control characters escaped as Slack asks (`&`, `<`, `>`), so a
/// name chosen by a member or a sidecar (`<!channel>`, `<https://x|click>`) cannot
/// ping a channel or make a link in the alert.
fn slack_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What fires for `hook` at `at`, each with the key that makes it fire once.
fn due_alerts(
    hook: &Hook,
    at: i64,
    used_limit: (i64, i64),
    denials: i64,
    fleet: &[sidecars::Sidecar],
) -> Vec<(String, Alert)> {
    let mut out = Vec::new();
    let (used, limit) = used_limit;
    if hook.quota != 0 && limit > 0 {
        for percent in [80, 100] {
            if used * 100 >= limit * percent {
                out.push((
                    format!("{}:quota:{percent}:{}", hook.id, day_of(at)),
                    Alert::Quota {
                        percent,
                        used,
                        limit,
                    },
                ));
            }
        }
    }
    if hook.spike_denials > 0 && denials >= hook.spike_denials {
        out.push((
            format!("{}:spike:{}", hook.id, at.div_euclid(SPIKE_WINDOW_SECS)),
            Alert::Spike {
                denials,
                threshold: hook.spike_denials,
            },
        ));
    }
    if hook.silent_secs > 0 {
        for s in fleet
            .iter()
            .filter(|s| at - s.last_sync_at >= hook.silent_secs)
        {
            out.push((
                format!("{}:silent:{}:{}", hook.id, s.sidecar_id, s.last_sync_at),
                Alert::Silent {
                    sidecar_id: s.sidecar_id.clone(),
                    last_sync_at: s.last_sync_at,
                },
            ));
        }
    }
    out
}

/// Queues every alert that fires at `at` and has not fired before; returns how many.
pub async fn evaluate_once(db: &Db, at: i64) -> Result<usize, sqlx::Error> {
    let mut by_org: HashMap<String, Vec<Hook>> = HashMap::new();
    for hook in alerts::all(db).await? {
        by_org.entry(hook.org_id.clone()).or_default().push(hook);
    }
    let mut queued = 0;
    for (org_id, hooks) in by_org {
        let Some(org) = orgs::get(db, &org_id).await? else {
            continue;
        };
        let used_limit = if hooks.iter().any(|h| h.quota != 0) {
            let (plan, used) = usage::plan_and_checks_on_day(db, &org_id, day_of(at))
                .await?
                .unwrap_or((org.plan, 0));
            (used, plan.limits().checks_per_day)
        } else {
            (0, -1)
        };
        let denials = if hooks.iter().any(|h| h.spike_denials > 0) {
            // Up to the latest time an event counts at (`Event::counted_ms`).
            let until_ms = at * 1000 + crate::store::usage::AHEAD_MS;
            alerts::denials_between(db, &org_id, (at - SPIKE_WINDOW_SECS) * 1000, until_ms).await?
        } else {
            0
        };
        let fleet = if hooks.iter().any(|h| h.silent_secs > 0) {
            sidecars::list(db, &org_id).await?
        } else {
            Vec::new()
        };
        for hook in &hooks {
            for (key, alert) in due_alerts(hook, at, used_limit, denials, &fleet) {
                if alerts::fire_once(db, &org_id, &key, at).await? {
                    let payload = alert.payload(&org_id, &org.name, at);
                    alerts::enqueue(db, hook, alert.kind(), &payload, at).await?;
                    queued += 1;
                }
            }
        }
    }
    Ok(queued)
}

/// Sends the deliveries due at `at`; returns how many were attempted.
pub async fn deliver_once(db: &Db, http: &reqwest::Client, at: i64) -> Result<usize, sqlx::Error> {
    let due = alerts::due(db, at, DELIVERIES_PER_ROUND).await?;
    let mut hooks: HashMap<String, Hook> = HashMap::new();
    for d in &due {
        if !hooks.contains_key(&d.org_id) {
            for h in alerts::list(db, &d.org_id).await? {
                hooks.insert(h.id.clone(), h);
            }
        }
    }
    let lease_until = at + i64::try_from(SEND_TIMEOUT.as_secs()).unwrap_or(10) * 3;
    for d in &due {
        if !alerts::claim(db, &d.id, at, lease_until).await? {
            continue;
        }
        let Some(hook) = hooks.get(&d.hook_id) else {
            alerts::attempted(db, &d.id, "failed", at, "the webhook was deleted", at).await?;
            continue;
        };
        let sent = http
            .post(&hook.url)
            .timeout(SEND_TIMEOUT)
            .header("content-type", "application/json")
            .header(
                "x-kalguard-signature",
                crate::stripe::sign(d.payload.as_bytes(), &hook.secret, at),
            )
            .header("x-kalguard-delivery", &d.id)
            .body(d.payload.clone())
            .send()
            .await;
        let result = match sent {
            Ok(r) if r.status().is_success() => Ok(format!("HTTP {}", r.status().as_u16())),
            Ok(r) if r.status().is_redirection() => Err(format!(
                "HTTP {} (redirects are not followed; give the final URL)",
                r.status().as_u16()
            )),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Err("timed out".to_owned()),
            Err(e) if e.is_connect() => Err("cannot connect".to_owned()),
            Err(_) => Err("request failed".to_owned()),
        };
        match result {
            Ok(ok) => alerts::attempted(db, &d.id, "delivered", at, &ok, at).await?,
            Err(why) => {
                let retry = usize::try_from(d.attempts)
                    .ok()
                    .and_then(|n| RETRY_AFTER_SECS.get(n));
                match retry {
                    Some(wait) => {
                        let next = at + wait;
                        let why = format!("{why}; retrying at {} UTC", display(next));
                        alerts::attempted(db, &d.id, "pending", next, &why, at).await?;
                    }
                    None => {
                        let why = format!("{why}; gave up after {} attempts", d.attempts + 1);
                        alerts::attempted(db, &d.id, "failed", at, &why, at).await?;
                    }
                }
            }
        }
    }
    Ok(due.len())
}

/// Evaluates and delivers every `interval`, logging failures.
pub fn spawn(state: AppState, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let at = crate::time_util::now();
            if let Err(e) = evaluate_once(&state.db, at).await {
                tracing::error!(error = %e, "evaluating alerts failed; retrying next interval");
            }
            if let Err(e) = deliver_once(&state.db, &state.webhooks, at).await {
                tracing::error!(error = %e, "delivering alerts failed; retrying next interval");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(spike: i64, quota: bool, silent: i64) -> Hook {
        Hook {
            id: "hook_1".into(),
            org_id: "org_1".into(),
            url: "https://hooks.example/x".into(),
            secret: "s".into(),
            spike_denials: spike,
            quota: i64::from(quota),
            silent_secs: silent,
            created_at: 0,
        }
    }

    #[test]
    fn quota_fires_at_80_and_100_percent_once_a_day() {
        let h = hook(0, true, 0);
        let at = 1_800_000_000;
        assert!(due_alerts(&h, at, (799, 1000), 0, &[]).is_empty());
        let fired = due_alerts(&h, at, (800, 1000), 0, &[]);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].1.kind(), "quota_80");
        let fired = due_alerts(&h, at, (1000, 1000), 0, &[]);
        let kinds: Vec<_> = fired.iter().map(|(_, a)| a.kind()).collect();
        assert_eq!(kinds, ["quota_80", "quota_100"]);
        assert!(fired[0].0.ends_with(&format!(":{}", day_of(at))));
        assert!(
            due_alerts(&h, at, (5_000, -1), 0, &[]).is_empty(),
            "unlimited"
        );
    }

    #[test]
    fn spikes_and_silent_sidecars_fire_past_their_thresholds() {
        let h = hook(5, false, 600);
        let at = 1_800_000_000;
        assert!(due_alerts(&h, at, (0, -1), 4, &[]).is_empty());
        assert_eq!(
            due_alerts(&h, at, (0, -1), 5, &[])[0].1.kind(),
            "denial_spike"
        );
        let fleet = [
            sidecars::Sidecar {
                sidecar_id: "quiet".into(),
                version: String::new(),
                mode: String::new(),
                last_sync_at: at - 600,
            },
            sidecars::Sidecar {
                sidecar_id: "busy".into(),
                version: String::new(),
                mode: String::new(),
                last_sync_at: at - 10,
            },
        ];
        let fired = due_alerts(&h, at, (0, -1), 0, &fleet);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].0, format!("hook_1:silent:quiet:{}", at - 600));
    }

    #[test]
    fn the_payload_is_slack_text_plus_facts() {
        let p = Alert::Quota {
            percent: 80,
            used: 80_000,
            limit: 100_000,
        }
        .payload("org_1", "Acme", 1_800_000_000);
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert!(v["text"]
            .as_str()
            .unwrap()
            .contains("80 % of today's checks (80,000 of 100,000)"));
        assert_eq!(v["kind"], "quota_80");
        assert_eq!(v["detail"]["limit"], 100_000);
    }

    #[test]
    fn names_in_the_text_cannot_ping_or_link() {
        let p = Alert::Silent {
            sidecar_id: "<!channel> <https://evil.example|fix here>".into(),
            last_sync_at: 1_800_000_000,
        }
        .payload("org_1", "A&B", 1_800_000_000);
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;!channel&gt; &lt;https://evil.example|fix here&gt;"),
            "{text}"
        );
        assert!(text.contains("A&amp;B") && !text.contains('<'));
        assert_eq!(
            v["detail"]["sidecarId"], "<!channel> <https://evil.example|fix here>",
            "the facts stay as they are"
        );
    }

    #[test]
    fn targets_inside_the_servers_network_are_refused_unless_allowed() {
        assert_eq!(check_target("ftp://x", false), Err(TargetError::Scheme));
        assert_eq!(
            check_target("https://u:p@hooks.slack.com/x", false),
            Err(TargetError::Credentials)
        );
        for private in [
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/x",
            "http://169.254.169.254/latest",
            "http://[::1]/x",
            "http://[::ffff:192.168.0.1]/x",
            "http://localhost:8080/x",
            "http://100.64.0.1/x",
        ] {
            assert_eq!(
                check_target(private, false),
                Err(TargetError::Private),
                "{private}"
            );
            assert!(check_target(private, true).is_ok());
        }
        assert!(check_target("https://hooks.slack.com/services/T/B/X", false).is_ok());
    }
}
