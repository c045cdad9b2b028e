//! The operator's policy file (`KALGUARD_POLICY_PATH`): read and validated
//! with the filter's own code at start, watched while the control plane runs,
//! and pushed to the filter in the state snapshot.
//!
//! A file that does not validate never replaces the policy in force: at start
//! `kalguard serve` refuses to run (naming the file and the field), at run time
//! the previous policy stays and the error shows in the log, `/healthz` and
//! `kalguard_policy_reloads_total{result="invalid"}`.

use crate::clock::now_ms;
use crate::ctx::Ctx;
use crate::state::Mode;
use kalguard_wire::cloud::CUSTOM_POLICY_FEATURE;
use kalguard_wire::policy::{Policy, PolicyError as Invalid};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How often the file is re-read. Policy files are small: reading and
/// comparing the bytes is cheaper and surer than trusting mtimes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// A policy file that validated: its JSON and what it says.
pub struct Loaded {
    pub document: Value,
    pub rules: usize,
    pub version: String,
}

/// Why a policy file cannot be used; names the file (and the field at fault).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the policy file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("policy file {}: {why}", .path.display())]
    Invalid { path: PathBuf, why: Invalid },
}

/// Reads and validates `path`; the error names the file and the field.
pub fn load(path: &Path) -> Result<(Loaded, Vec<u8>), PolicyError> {
    let raw = std::fs::read(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let loaded = validate(&raw).map_err(|why| PolicyError::Invalid {
        path: path.to_owned(),
        why,
    })?;
    Ok((loaded, raw))
}

fn validate(raw: &[u8]) -> Result<Loaded, Invalid> {
    let document: Value = serde_json::from_slice(raw).map_err(|e| Invalid {
        field: "(root)".into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let policy = Policy::from_value(&document)?;
    Ok(Loaded {
        document,
        rules: policy.rule_count(),
        version: policy.version().to_owned(),
    })
}

/// What `/healthz` and `/metrics` say about the policy file.
pub struct PolicyStatus {
    pub path: PathBuf,
    pub rules: usize,
    pub version: String,
    pub loaded_at_ms: u64,
    /// The error of the file on disk, while it does not validate.
    pub last_error: Option<String>,
    /// Whether the last check found custom rules enforced (for logging changes).
    enforced: Option<bool>,
    pub reloads_ok: AtomicU64,
    pub reloads_invalid: AtomicU64,
}

/// The watched file's status, shared with the API handlers.
pub struct Watched {
    status: Mutex<PolicyStatus>,
}

impl Watched {
    pub fn new(path: PathBuf, loaded: &Loaded) -> Self {
        Self {
            status: Mutex::new(PolicyStatus {
                path,
                rules: loaded.rules,
                version: loaded.version.clone(),
                loaded_at_ms: now_ms(),
                last_error: None,
                enforced: None,
                reloads_ok: AtomicU64::new(0),
                reloads_invalid: AtomicU64::new(0),
            }),
        }
    }

    pub fn status(&self) -> MutexGuard<'_, PolicyStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether the operator's rules are enforced in this mode: always outside
/// Cloud mode; in Cloud mode only when the plan has `policy:custom`.
pub fn enforced(ctx: &Ctx) -> bool {
    ctx.state.read(|inputs| {
        inputs.mode != Mode::Cloud
            || inputs
                .license
                .as_ref()
                .is_some_and(|l| l.limits.features.iter().any(|f| f == CUSTOM_POLICY_FEATURE))
    })
}

/// The `policy` object of `/healthz` (`null` without a policy file).
pub fn health(ctx: &Ctx) -> Value {
    let Some(watched) = &ctx.policy else {
        return Value::Null;
    };
    let enforced = enforced(ctx);
    let status = watched.status();
    json!({
        "path": status.path.display().to_string(),
        "valid": status.last_error.is_none(),
        "rules": status.rules,
        "version": status.version,
        "loadedAtMs": status.loaded_at_ms,
        "lastError": status.last_error,
        "enforced": enforced,
        "note": (!enforced).then(|| format!(
            "the Cloud plan lacks `{CUSTOM_POLICY_FEATURE}`: custom policy rules are not enforced"
        )),
    })
}

/// Prometheus lines for the policy file (empty without one).
pub fn metrics(ctx: &Ctx) -> String {
    let mut out = String::new();
    let Some(watched) = &ctx.policy else {
        return out;
    };
    let status = watched.status();
    let _ = writeln!(
        out,
        "# HELP kalguard_policy_reloads_total Policy file changes, by result (an invalid one leaves the previous policy in force).\n# TYPE kalguard_policy_reloads_total counter"
    );
    for (result, counter) in [
        ("ok", &status.reloads_ok),
        ("invalid", &status.reloads_invalid),
    ] {
        let _ = writeln!(
            out,
            "kalguard_policy_reloads_total{{result=\"{result}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP kalguard_policy_valid Whether the policy file on disk validates (0: the previous policy is in force).\n# TYPE kalguard_policy_valid gauge\nkalguard_policy_valid {}",
        u8::from(status.last_error.is_none())
    );
    let _ = writeln!(
        out,
        "# HELP kalguard_policy_rules Rules in the policy in force.\n# TYPE kalguard_policy_rules gauge\nkalguard_policy_rules {}",
        status.rules
    );
    out
}

/// Re-reads the file every [`POLL_INTERVAL`]; a changed file that validates
/// goes into the snapshot (a new version: the filter's long-poll returns at
/// once); one that does not is reported and ignored.
pub async fn watch(ctx: Arc<Ctx>, mut last: Vec<u8>) {
    let Some(watched) = &ctx.policy else {
        return;
    };
    let path = watched.status().path.clone();
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        report_enforcement(&ctx, watched);
        let raw = match tokio::fs::read(&path).await {
            Ok(raw) => raw,
            Err(e) => {
                let error = PolicyError::Read {
                    path: path.clone(),
                    source: e,
                };
                refuse(watched, error.to_string());
                // Whatever comes back is validated afresh, even the same bytes.
                last.clear();
                continue;
            }
        };
        if raw == last {
            continue;
        }
        match validate(&raw) {
            Ok(loaded) => {
                tracing::info!(
                    "policy file {} reloaded: version {}, {} rules",
                    path.display(),
                    loaded.version,
                    loaded.rules
                );
                ctx.state
                    .update(|inputs| inputs.policy = Some(loaded.document));
                let mut status = watched.status();
                status.rules = loaded.rules;
                status.version = loaded.version;
                status.loaded_at_ms = now_ms();
                status.last_error = None;
                status.reloads_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                let error = PolicyError::Invalid {
                    path: path.clone(),
                    why,
                }
                .to_string();
                watched
                    .status()
                    .reloads_invalid
                    .fetch_add(1, Ordering::Relaxed);
                refuse(watched, error);
            }
        }
        last = raw;
    }
}

/// Records an unusable file; logs each distinct error once.
fn refuse(watched: &Watched, error: String) {
    let mut status = watched.status();
    if status.last_error.as_deref() != Some(&error) {
        tracing::error!("{error}; the previous policy stays in force");
        status.last_error = Some(error);
    }
}

/// Logs when custom rules stop or start being enforced (Cloud plan changes).
fn report_enforcement(ctx: &Ctx, watched: &Watched) {
    let now = enforced(ctx);
    let mut status = watched.status();
    if status.enforced == Some(now) {
        return;
    }
    if !now {
        tracing::warn!(
            "the Cloud plan lacks `{CUSTOM_POLICY_FEATURE}`: the rules of {} are not enforced (local and degraded modes enforce them)",
            status.path.display()
        );
    } else if status.enforced.is_some() {
        tracing::info!(
            "custom policy rules of {} are enforced again",
            status.path.display()
        );
    }
    status.enforced = Some(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_is_the_filters() {
        let ok = validate(br#"{"version":"2","rules":[{"id":"r","match":{"models":["gpt-*"]},"decision":"allow"}],"defaultDecision":"deny"}"#).unwrap();
        assert_eq!((ok.rules, ok.version.as_str()), (1, "2"));
        let error = validate(br#"{"rules":[{"id":"r","match":{"model":["x"]},"decision":"allow"}],"defaultDecision":"deny"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("rules[0] (id \"r\").match.model"), "{error}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("kalguard-policy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.json");
        std::fs::write(&path, br#"{"rules":[],"defaultDecision":"allow"}"#).unwrap();
        let error = load(&path).err().unwrap().to_string();
        assert!(
            error.contains("policy.json") && error.contains("defaultDecision"),
            "{error}"
        );
        let missing = load(&dir.join("nope.json")).err().unwrap().to_string();
        assert!(missing.contains("nope.json"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
