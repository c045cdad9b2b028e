//! The license channel: holds `GET /api/v1/license/watch` open on the Cloud and
//! asks the license sync to run the moment the Cloud says the organisation's
//! license changed (a token revoked, an agent quarantined, the key revoked, the
//! secret rotated, the plan changed), so a revocation reaches Envoy in about a
//! second instead of at the next `KALGUARD_CLOUD_SYNC_INTERVAL_MS`. The periodic
//! sync stays the fallback: a Cloud without the channel (404) is not asked again,
//! and one that fails is retried with backoff while the periodic sync goes on.

use crate::cloud::{backoff, CloudError};
use crate::ctx::Ctx;
use std::sync::Arc;
use std::time::Duration;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(60);
/// The least time between two watches: a server or proxy that answers at once
/// without a change must not turn the channel into a busy loop.
const LEAST_GAP: Duration = Duration::from_secs(1);

/// Watches until the process ends (or the Cloud has no channel).
pub async fn run(ctx: Arc<Ctx>) {
    let Some(cloud) = &ctx.cloud else {
        return;
    };
    let mut seen: Option<i64> = None;
    let mut failures: u32 = 0;
    loop {
        let asked = tokio::time::Instant::now();
        match cloud.client.watch(seen).await {
            Ok(None) => {
                tracing::info!(
                    "the Cloud at {} has no license watch channel: license changes arrive at the periodic sync",
                    cloud.url
                );
                return;
            }
            Ok(Some(answer)) => {
                // The first answer after a start or a failure may hide a change
                // made since the last validation: validate then too.
                let changed = seen.is_some_and(|v| v != answer.version);
                if changed {
                    tracing::info!("the Cloud says the license changed: validating it now");
                }
                if changed || seen.is_none() || failures > 0 {
                    ctx.sync_now.notify_one();
                }
                let unchanged = seen == Some(answer.version);
                seen = Some(answer.version);
                failures = 0;
                if unchanged {
                    tokio::time::sleep_until(asked + LEAST_GAP).await;
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!("{error}; the license watch retries with backoff, the periodic sync goes on");
                    if matches!(error, CloudError::Refused { .. }) {
                        // The key was refused: the sync finds out and says so now.
                        ctx.sync_now.notify_one();
                    }
                }
                tokio::time::sleep(backoff(failures, FIRST_RETRY, LONGEST_RETRY)).await;
            }
        }
    }
}
