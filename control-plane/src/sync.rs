//! License sync: validates the API key with the Cloud at start and every
//! `KALGUARD_CLOUD_SYNC_INTERVAL_MS`, and moves between `cloud` and `degraded`.
//!
//! - Valid license → `cloud`; it is cached in `license.json`. A changed signing
//!   secret keeps the previous one in the snapshot until the next sync.
//! - Cloud unavailable (network, timeout, 5xx, 429) → retried with backoff and
//!   jitter (1 s doubling up to 60 s, never beyond the interval); the license in
//!   force stays until its `expiresAt`, then `degraded`.
//! - Key refused (401/403, `valid: false`) → not retried: an error log line,
//!   `/healthz` status `error`, `degraded`, the cache is dropped; the next attempt
//!   is the next regular sync (or SIGHUP).

use crate::clock::now_ms;
use crate::cloud::{backoff, CloudError};
use crate::ctx::Ctx;
use crate::license::License;
use crate::metrics::add;
use crate::state::Mode;
use std::sync::Arc;
use std::time::Duration;

/// How one validation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Valid,
    Unavailable,
    Refused,
}

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(60);
/// Longest wait for the Cloud before the filter API opens.
const FIRST_SYNC_LIMIT: Duration = Duration::from_secs(5);

/// Runs forever after the first validation's `outcome`.
pub async fn run(ctx: Arc<Ctx>, mut outcome: Outcome) {
    let mut failures: u32 = u32::from(outcome == Outcome::Unavailable);
    loop {
        let delay = match outcome {
            Outcome::Unavailable => {
                backoff(failures, FIRST_RETRY, LONGEST_RETRY.min(ctx.sync_interval))
            }
            Outcome::Valid | Outcome::Refused => ctx.sync_interval,
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.sync_now.notified() => {}
        }
        outcome = sync_once(&ctx).await;
        failures = match outcome {
            Outcome::Unavailable => failures.saturating_add(1),
            _ => 0,
        };
    }
}

/// The validation at start, bounded so that a Cloud that does not answer
/// delays the filter API by [`FIRST_SYNC_LIMIT`] at most (the sync goes on
/// retrying in the background).
pub async fn first_sync(ctx: &Arc<Ctx>) -> Outcome {
    match tokio::time::timeout(FIRST_SYNC_LIMIT, sync_once(ctx)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let url = ctx.cloud.as_ref().map_or("", |c| c.url.as_str());
            let message = format!(
                "the Cloud at {url} did not answer within {} s at start",
                FIRST_SYNC_LIMIT.as_secs()
            );
            tracing::warn!(
                "{message}; serving in mode {} meanwhile",
                ctx.state.current().mode.as_str()
            );
            ctx.health().last_sync_error = Some(message);
            Outcome::Unavailable
        }
    }
}

/// Validates the license once and applies the result.
pub async fn sync_once(ctx: &Arc<Ctx>) -> Outcome {
    let Some(cloud) = &ctx.cloud else {
        return Outcome::Valid;
    };
    let result = cloud.client.validate().await.and_then(|answer| {
        License::from_answer(answer, now_ms()).map_err(|why| CloudError::Unavailable {
            url: format!("{}/api/v1/license/validate", cloud.url),
            why: why.to_string(),
        })
    });
    match result {
        Ok(license) => {
            accept(ctx, license).await;
            Outcome::Valid
        }
        Err(CloudError::Refused { url, why }) => {
            add(&ctx.metrics.license_syncs_refused, 1);
            let message = CloudError::Refused { url, why }.to_string();
            tracing::error!(
                "{message}. Running DEGRADED (no plan limits, no Cloud license) until a valid key is \
                 configured; not retrying before the next sync in {} s",
                ctx.sync_interval.as_secs()
            );
            {
                let mut health = ctx.health();
                health.api_key_refused = true;
                health.last_sync_error = Some(message);
            }
            ctx.state.update(|inputs| {
                inputs.mode = Mode::Degraded;
                inputs.license = None;
                inputs.previous_secret = None;
            });
            cloud.cache.remove();
            Outcome::Refused
        }
        Err(error) => {
            add(&ctx.metrics.license_syncs_failed, 1);
            let now = now_ms();
            let expired = ctx.state.update(|inputs| {
                let in_force = inputs.license.as_ref().is_some_and(|l| l.in_force(now));
                if !in_force {
                    inputs.mode = Mode::Degraded;
                    inputs.license = None;
                }
                !in_force
            });
            let first_failure = ctx.health().last_sync_error.is_none();
            if expired {
                tracing::warn!(
                    "{error}; no license in force: running degraded (no plan limits, local \
                     enforcement unchanged), retrying with backoff"
                );
            } else if first_failure {
                tracing::warn!(
                    "{error}; the cached license stays in force until it expires, retrying with backoff"
                );
            }
            let mut health = ctx.health();
            health.last_sync_error = Some(error.to_string());
            Outcome::Unavailable
        }
    }
}

async fn accept(ctx: &Arc<Ctx>, license: License) {
    add(&ctx.metrics.license_syncs_ok, 1);
    let (was, rotated) = ctx.state.update(|inputs| {
        let was = inputs.mode;
        let old_secret = inputs
            .license
            .as_ref()
            .and_then(License::current_secret)
            .map(str::to_owned);
        inputs.previous_secret =
            old_secret.filter(|old| Some(old.as_str()) != license.current_secret());
        if license.remaining.is_some() {
            inputs.remaining = license.remaining;
        }
        if license.reset_at.is_some() {
            inputs.reset_at = license.reset_at;
        }
        inputs.agents_today.clone_from(&license.agents_today);
        if let Some(old) = inputs
            .license
            .as_ref()
            .filter(|old| old.tier != license.tier)
        {
            tracing::info!("the plan changed from {} to {}", old.tier, license.tier);
        }
        inputs.license = Some(license.clone());
        inputs.mode = Mode::Cloud;
        (was, inputs.previous_secret.is_some())
    });
    let (recovered, was_refused) = {
        let mut health = ctx.health();
        let recovered = health.last_sync_error.take().is_some();
        let was_refused = std::mem::take(&mut health.api_key_refused);
        health.last_sync_ok_ms = Some(license.validated_at_ms);
        (recovered, was_refused)
    };
    if was != Mode::Cloud || recovered || was_refused {
        tracing::info!(
            "license valid: plan {}, organisation {}, in force until {} (unix ms); mode cloud",
            license.tier,
            license.org_id,
            license.expires_at_ms
        );
    }
    if rotated {
        tracing::info!("the token signing secret was rotated: the previous one stays valid until the next sync");
    }
    let ctx = Arc::clone(ctx);
    let persisted = tokio::task::spawn_blocking(move || {
        crate::audit::enforce_retention(&ctx.audit_path, ctx.state.current().audit_retention_days);
        match &ctx.cloud {
            Some(cloud) => cloud.cache.save(&license),
            None => Ok(()),
        }
    })
    .await;
    let failed = match persisted {
        Ok(saved) => saved.err().map(|e| e.to_string()),
        Err(task) => Some(task.to_string()),
    };
    if let Some(e) = failed {
        tracing::warn!(
            "cannot cache the license (a restart during a Cloud outage would run degraded): {e}"
        );
    }
}
