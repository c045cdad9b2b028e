//! The state snapshot the filter long-polls (`GET /v1/filter/state`), built
//! from the mode, the license in force and the local settings.
//!
//! Each process draws a random epoch at start ([`new_epoch`]); versions count
//! within it (unix milliseconds at least one above the previous version). The
//! filter adopts a new epoch's snapshot whatever its version, so a restart
//! (or a clock set back) never leaves it on an old state
//! ([`kalguard_wire::channel`]). The snapshot's JSON is
//! `kalguard_wire::snapshot`'s.

use crate::clock::now_ms;
use crate::license::License;
use crate::reported::ReportedChecks;
use kalguard_wire::cloud::{Limits, CUSTOM_POLICY_FEATURE};
use kalguard_wire::snapshot::Snapshot;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// How the control plane runs: the snapshot's mode.
pub use kalguard_wire::snapshot::Mode;

/// What the snapshot is made of.
pub struct Inputs {
    pub mode: Mode,
    /// The license in force (`Cloud` mode only).
    pub license: Option<License>,
    /// The signing secret replaced by the last sync: still valid until the next.
    pub previous_secret: Option<String>,
    /// Checks left today, from the last license sync or usage report.
    pub remaining: Option<i64>,
    /// Unix seconds of the next reset.
    pub reset_at: Option<u64>,
    /// This sidecar's checks in the reports the Cloud accepted today.
    pub reported: ReportedChecks,
    /// The organisation's agents with a check today, from the last license
    /// sync or usage report (plans that limit agents).
    pub agents_today: Option<Vec<String>>,
    /// `KALGUARD_TOKEN_SECRET` (local and degraded modes).
    pub local_secret: Option<String>,
    /// `KALGUARD_AGENT_TOKEN`.
    pub default_agent_token: Option<String>,
    /// Audit retention outside Cloud mode (-1: keep forever).
    pub local_audit_retention_days: i64,
    /// The operator's validated policy document (`KALGUARD_POLICY_PATH`).
    pub policy: Option<Value>,
}

/// One published snapshot.
pub struct Published {
    pub version: u64,
    pub epoch: Arc<str>,
    pub mode: Mode,
    pub audit_retention_days: i64,
    /// The snapshot's JSON.
    pub body: String,
}

/// Holds the inputs and publishes a new snapshot version whenever they change
/// what the filter would see.
pub struct StateStore {
    inner: Mutex<Inner>,
    tx: watch::Sender<Arc<Published>>,
}

struct Inner {
    inputs: Inputs,
    epoch: Arc<str>,
    /// The last snapshot's JSON without its version, to detect changes.
    last_content: String,
    version: u64,
}

impl StateStore {
    pub fn new(inputs: Inputs, epoch: String) -> Self {
        let epoch: Arc<str> = epoch.into();
        let version = now_ms();
        let (published, content) = publish(&inputs, &epoch, version);
        let (tx, _) = watch::channel(Arc::new(published));
        Self {
            inner: Mutex::new(Inner {
                inputs,
                epoch,
                last_content: content,
                version,
            }),
            tx,
        }
    }

    /// Changes the inputs; publishes a new version if the snapshot changed.
    pub fn update<R>(&self, change: impl FnOnce(&mut Inputs) -> R) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let result = change(&mut inner.inputs);
        let (_, content) = publish(&inner.inputs, &inner.epoch, 0);
        if content != inner.last_content {
            let version = (inner.version + 1).max(now_ms());
            let (published, content) = publish(&inner.inputs, &inner.epoch, version);
            inner.version = version;
            inner.last_content = content;
            self.tx.send_replace(Arc::new(published));
        }
        result
    }

    /// Reads the inputs.
    pub fn read<R>(&self, look: impl FnOnce(&Inputs) -> R) -> R {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        look(&inner.inputs)
    }

    pub fn current(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }
}

/// A fresh epoch: 128 random bits in hex.
pub fn new_epoch() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The published snapshot at `version`, and its JSON without the version.
fn publish(inputs: &Inputs, epoch: &Arc<str>, version: u64) -> (Published, String) {
    let mut snapshot = build(inputs, epoch, version);
    let audit_retention_days = snapshot.limits.audit_retention_days;
    let body = serde_json::to_string(&snapshot).unwrap_or_default();
    snapshot.version = 0;
    let content = serde_json::to_string(&snapshot).unwrap_or_default();
    let published = Published {
        version,
        epoch: Arc::clone(epoch),
        mode: inputs.mode,
        audit_retention_days,
        body,
    };
    (published, content)
}

/// What a sidecar without a Cloud license may use: everything. Plans shape Cloud mode,
/// not the open-source sidecar. The filter takes its tier from the plugin configuration
/// outside Cloud mode (advanced unless it says `basic`); the snapshot states the grant
/// for whoever reads it.
const LOCAL_FEATURES: [&str; 3] = ["firewall:advanced", "pii:redact", CUSTOM_POLICY_FEATURE];

fn build(inputs: &Inputs, epoch: &str, version: u64) -> Snapshot {
    let local = || Snapshot {
        version,
        epoch: epoch.to_owned(),
        mode: inputs.mode,
        plan: None,
        limits: Limits {
            features: LOCAL_FEATURES.map(String::from).to_vec(),
            ..Limits::unlimited(inputs.local_audit_retention_days)
        },
        remaining: None,
        reset_at: None,
        checks_reported: 0,
        agents_today: None,
        signing_secrets: inputs.local_secret.iter().cloned().collect(),
        revoked_token_hashes: Vec::new(),
        default_agent_token: inputs.default_agent_token.clone(),
        policy: inputs.policy.clone(),
        firewall: None,
    };
    match (&inputs.mode, &inputs.license) {
        (Mode::Cloud, Some(license)) => {
            let mut secrets = license.signing_secrets.clone();
            if let Some(previous) = &inputs.previous_secret {
                if !secrets.contains(previous) {
                    secrets.push(previous.clone());
                }
            }
            Snapshot {
                plan: Some(license.tier.clone()),
                limits: license.limits.clone(),
                remaining: inputs.remaining,
                reset_at: inputs.reset_at,
                checks_reported: inputs
                    .reset_at
                    .map_or(0, |reset_at| inputs.reported.on_day_ending(reset_at)),
                agents_today: inputs.agents_today.clone(),
                signing_secrets: secrets,
                revoked_token_hashes: license.revoked_token_hashes.clone(),
                ..local()
            }
        }
        _ => local(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            mode: Mode::Local,
            license: None,
            previous_secret: None,
            remaining: None,
            reset_at: None,
            reported: ReportedChecks::default(),
            agents_today: None,
            local_secret: Some("local-secret".into()),
            default_agent_token: Some("tok".into()),
            local_audit_retention_days: -1,
            policy: None,
        }
    }

    fn json(store: &StateStore) -> Value {
        serde_json::from_str(&store.current().body).unwrap()
    }

    #[test]
    fn local_snapshot_has_every_field() {
        let store = StateStore::new(inputs(), "e1".into());
        let snapshot = json(&store);
        assert_eq!(snapshot["mode"], "local");
        assert_eq!(
            snapshot["signingSecrets"],
            serde_json::json!(["local-secret"])
        );
        assert_eq!(snapshot["defaultAgentToken"], "tok");
        assert_eq!(snapshot["limits"]["checksPerDay"], -1);
        assert_eq!(
            snapshot["limits"]["features"],
            serde_json::json!(["firewall:advanced", "pii:redact", "policy:custom"]),
            "no license: the whole engine"
        );
        for field in ["plan", "remaining", "resetAt", "policy", "firewall"] {
            assert!(snapshot[field].is_null(), "{field}");
        }
        assert_eq!(snapshot["version"].as_u64(), Some(store.current().version));
        assert_eq!(snapshot["epoch"], "e1");
    }

    #[test]
    fn every_process_draws_its_own_epoch() {
        let (a, b) = (new_epoch(), new_epoch());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_policy_change_publishes_a_new_version_in_every_mode() {
        let store = StateStore::new(inputs(), "e1".into());
        let first = store.current().version;
        let policy = serde_json::json!({"rules": [], "defaultDecision": "deny"});
        store.update(|i| i.policy = Some(policy.clone()));
        assert!(store.current().version > first);
        assert_eq!(json(&store)["policy"], policy);
        store.update(|i| i.mode = Mode::Cloud);
        assert_eq!(json(&store)["policy"], policy);
    }

    #[test]
    fn the_version_moves_only_when_the_content_changes() {
        let store = StateStore::new(inputs(), "e1".into());
        let first = store.current().version;
        store.update(|i| i.local_audit_retention_days = -1);
        assert_eq!(store.current().version, first);
        store.update(|i| i.mode = Mode::Degraded);
        assert!(store.current().version > first);
        assert_eq!(json(&store)["mode"], "degraded");
    }
}
