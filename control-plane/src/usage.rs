//! The usage reporter: sends the spool's batches to the Cloud, oldest first,
//! and removes each only once the Cloud accepted it.
//!
//! A segment is sealed when it reaches its size or after at most
//! [`FLUSH_EVERY`]; failures back off (250 ms doubling up to 30 s, jittered)
//! and retry the same batch with the same `batchId`. The Cloud's `remaining`
//! and `resetAt` flow into the snapshot.

use crate::clock::{day_of, now_ms, parse_instant_ms};
use crate::cloud::{backoff, CloudError};
use crate::ctx::Ctx;
use crate::metrics::add;
use crate::spool::{read_events, Batch, SpoolError};
use std::sync::Arc;
use std::time::Duration;

/// Longest time an event waits in the open segment.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

pub async fn run(ctx: Arc<Ctx>) {
    let mut failures: u32 = 0;
    loop {
        if ctx.health().api_key_refused {
            // The Cloud would refuse the report too; wait for the license sync.
            let mut changes = ctx.state.subscribe();
            let _ = tokio::time::timeout(ctx.sync_interval, changes.changed()).await;
            continue;
        }
        let batch = match ctx
            .with_sink(|sink| match &mut sink.spool {
                Some(spool) => match spool.oldest() {
                    Some(batch) => Ok(Some(batch)),
                    None => spool.seal().map(|()| spool.oldest()),
                },
                None => Ok(None),
            })
            .await
            .map_err(SpoolError::from)
            .and_then(|r| r)
        {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(FLUSH_EVERY) => {}
                    () = ctx.reporter_wake.notified() => {}
                }
                continue;
            }
            Err(e) => {
                tracing::error!("usage spool: {e}");
                tokio::time::sleep(LONGEST_RETRY).await;
                continue;
            }
        };
        if send(&ctx, batch, failures).await {
            failures = 0;
        } else {
            failures = failures.saturating_add(1);
            tokio::time::sleep(backoff(failures, FIRST_RETRY, LONGEST_RETRY)).await;
        }
    }
}

/// Sends one batch; true when it left the spool (accepted or set aside).
async fn send(ctx: &Arc<Ctx>, batch: Batch, failures: u32) -> bool {
    let Some(cloud) = &ctx.cloud else {
        return false;
    };
    let path = batch.path.clone();
    let events = match tokio::task::spawn_blocking(move || read_events(&path)).await {
        Ok(Ok(events)) => events,
        Ok(Err(e)) => {
            tracing::error!("usage spool: {e}");
            return false;
        }
        Err(e) => {
            tracing::error!("usage spool: a disk task failed: {e}");
            return false;
        }
    };
    match cloud.client.report(&batch.batch_id, &events).await {
        Ok(answer) => {
            let removed = {
                let batch = batch.clone();
                ctx.with_sink(move |sink| match &mut sink.spool {
                    Some(spool) => spool.remove(&batch),
                    None => Ok(()),
                })
                .await
                .map_err(SpoolError::from)
                .and_then(|r| r)
            };
            if let Err(e) = removed {
                // Re-sent later under the same batchId: the Cloud counts it once.
                tracing::error!("usage spool: {e}");
            }
            add(&ctx.metrics.usage_events_reported, events.len());
            add(&ctx.metrics.usage_batches_reported, 1);
            if let Some(accepted) = answer.accepted {
                if accepted < events.len() as i64 {
                    tracing::info!(
                        "the Cloud accepted {accepted} of {} events in batch {} (the rest were duplicates or over quota)",
                        events.len(),
                        batch.batch_id
                    );
                }
            }
            let reset_at = answer
                .reset_at
                .as_ref()
                .and_then(parse_instant_ms)
                .map(|ms| ms / 1000);
            // The batch's checks and the `remaining` that counts them change
            // together, so the filter never sees one without the other.
            let today = day_of(now_ms());
            let reported = ctx.state.update(|inputs| {
                inputs.reported.add(&events, today);
                if answer.remaining.is_some() {
                    inputs.remaining = answer.remaining;
                }
                if reset_at.is_some() {
                    inputs.reset_at = reset_at;
                }
                if answer.agents_today.is_some() {
                    inputs.agents_today.clone_from(&answer.agents_today);
                }
                inputs.reported
            });
            let saver = Arc::clone(ctx);
            match tokio::task::spawn_blocking(move || saver.reported_file.save(reported)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("{e}; after a restart the filter would admit fewer checks today than the plan allows"),
                Err(e) => tracing::warn!("saving the reported checks failed: {e}"),
            }
            if ctx.health().last_report_error.take().is_some() {
                tracing::info!(
                    "usage reports are delivered again ({} events waiting)",
                    ctx.spool_depth.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            true
        }
        Err(CloudError::Rejected { url, why }) => {
            add(&ctx.metrics.usage_batches_rejected, 1);
            let moved = {
                let batch = batch.clone();
                ctx.with_sink(move |sink| match &mut sink.spool {
                    Some(spool) => spool.set_aside(&batch),
                    None => Ok(batch.path.clone()),
                })
                .await
                .map_err(SpoolError::from)
                .and_then(|r| r)
            };
            match moved {
                Ok(to) => tracing::error!(
                    "the Cloud at {url} rejected usage batch {} for good ({why}); its {} events were moved to {}",
                    batch.batch_id,
                    batch.count,
                    to.display()
                ),
                Err(e) => tracing::error!("usage batch {} rejected by {url} ({why}): {e}", batch.batch_id),
            }
            true
        }
        Err(error) => {
            add(&ctx.metrics.usage_report_failures, 1);
            let message = error.to_string();
            if failures.is_multiple_of(20) {
                tracing::warn!(
                    "{message}; {} usage events stay in the spool and are re-sent",
                    ctx.spool_depth.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            ctx.health().last_report_error = Some(message);
            false
        }
    }
}
