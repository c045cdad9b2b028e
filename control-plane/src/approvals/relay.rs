//! Cloud mode: each approval that waits in the book is relayed to the Cloud
//! (`kalguard_wire::approval::CLOUD_PATH`), where an owner or admin may decide
//! it on the dashboard.
//!
//! One task per waiting approval files it with the Cloud, then holds a poll
//! open (`GET …/{id}?wait=S`, answered the moment someone decides) and takes a
//! decision made there into the book exactly as the CLI's
//! ([`super::http::apply`]): the first decision the book takes wins, and a
//! decided approval leaves the book, so neither side can decide it again.
//! When the approval ends here (decided by either, expired, abandoned), the
//! task tells the Cloud how (`settle`), so the dashboard shows what happened
//! to the request and offers no decision on it. A Cloud that cannot be
//! reached costs nothing but the relay: the CLI still decides, and the filter
//! still waits only until the approval's expiry.

use super::http::{apply, shown_text};
use super::{ApprovalError, Approvals, Decision};
use crate::cloud::{
    backoff, CloudError, RELAY_CALL_TIMEOUT, RELAY_MIN_INTERVAL, RELAY_RETRY_BASE, RELAY_RETRY_CAP,
};
use crate::ctx::Ctx;
use kalguard_wire::approval::{
    ApprovalRequest, Outcome, Relayed, Status, Verdict, CLOUD_PATH, MAX_CLOUD_WAIT_SECS,
};
use reqwest::Method;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Longest a poll may take: the Cloud's hold and some slack.
const POLL_TIMEOUT: Duration = Duration::from_secs(MAX_CLOUD_WAIT_SECS + 10);
/// Tries at telling the Cloud how an approval ended.
const SETTLE_TRIES: u32 = 3;

/// The relay of one waiting approval. [`Relay::settle`] tells it how the
/// approval ended; dropped unsettled (the filter's call went away), it tells
/// the Cloud the approval was abandoned.
pub struct Relay {
    ended: oneshot::Sender<Outcome>,
}

impl Relay {
    /// Starts relaying approval `id` when a Cloud is configured; `None` otherwise.
    pub fn start(
        ctx: &Arc<Ctx>,
        book: &Arc<Approvals>,
        id: &str,
        request: &ApprovalRequest,
    ) -> Option<Relay> {
        ctx.cloud.as_ref()?;
        let (ended, on_end) = oneshot::channel();
        let relayed = Relayed {
            id: id.to_owned(),
            request: request.clone(),
        };
        tokio::spawn(run(Arc::clone(ctx), Arc::clone(book), relayed, on_end));
        Some(Relay { ended })
    }

    /// The approval ended here with `decision`.
    pub fn settle(self, decision: &Decision) {
        // The task may have stopped already (the Cloud refused the filing).
        let _ = self.ended.send(Outcome {
            status: decision.verdict.into(),
            by: Some(decision.by.clone()).filter(|by| !by.is_empty()),
            reason: decision.reason.clone(),
            for_minutes: None,
        });
    }
}

fn abandoned() -> Outcome {
    Outcome {
        status: Status::Abandoned,
        by: None,
        reason: None,
        for_minutes: None,
    }
}

/// Waits `wait` unless the approval ends first (then its outcome).
async fn pause(on_end: &mut oneshot::Receiver<Outcome>, wait: Duration) -> Option<Outcome> {
    tokio::select! {
        outcome = on_end => Some(outcome.unwrap_or_else(|_| abandoned())),
        () = tokio::time::sleep(wait) => None,
    }
}

/// What happened while the relay waited.
enum Step {
    Ended(Outcome),
    Answered(Result<serde_json::Value, CloudError>),
    Polled(Result<Outcome, CloudError>),
}

async fn run(
    ctx: Arc<Ctx>,
    book: Arc<Approvals>,
    relayed: Relayed,
    mut on_end: oneshot::Receiver<Outcome>,
) {
    let Some(cloud) = ctx.cloud.as_ref() else {
        return;
    };
    let client = &cloud.client;
    let id = relayed.id.clone();
    let mut attempt = 0;
    // File it; an approval that ends before the Cloud heard of it is not settled there.
    loop {
        let filing = client.call(Method::POST, CLOUD_PATH, Some(&relayed), RELAY_CALL_TIMEOUT);
        let step = tokio::select! {
            biased;
            _ = &mut on_end => return,
            answered = filing => Step::Answered(answered),
        };
        match step {
            Step::Answered(Ok(_)) => break,
            Step::Answered(Err(error @ CloudError::Unavailable { .. })) => {
                attempt += 1;
                tracing::debug!("approval {id}: relaying to the Cloud failed ({error}); retrying");
                if pause(
                    &mut on_end,
                    backoff(attempt, RELAY_RETRY_BASE, RELAY_RETRY_CAP),
                )
                .await
                .is_some()
                {
                    return;
                }
            }
            Step::Answered(Err(error)) => {
                tracing::warn!(
                    "approval {id} is not on the Cloud's dashboard ({error}); decide it with `kalguard approvals`"
                );
                return;
            }
            Step::Ended(_) | Step::Polled(_) => return,
        }
    }
    // Poll for a decision on the dashboard until the approval ends here.
    let poll = format!("{CLOUD_PATH}/{id}?wait={MAX_CLOUD_WAIT_SECS}");
    let mut polling = true;
    attempt = 0;
    let outcome = loop {
        let started = tokio::time::Instant::now();
        let polled = client.call(Method::GET, &poll, None::<&()>, POLL_TIMEOUT);
        let step = tokio::select! {
            biased;
            outcome = &mut on_end => Step::Ended(outcome.unwrap_or_else(|_| abandoned())),
            polled = polled, if polling => Step::Polled(polled),
        };
        match step {
            Step::Ended(outcome) => break outcome,
            Step::Polled(Ok(Outcome {
                status: Status::Pending,
                ..
            })) => {
                attempt = 0;
                // A Cloud that answers at once though asked to hold the poll
                // is asked again only so often, never in a tight loop.
                let rest = RELAY_MIN_INTERVAL.saturating_sub(started.elapsed());
                if let Some(outcome) = pause(&mut on_end, rest).await {
                    break outcome;
                }
            }
            Step::Polled(Ok(decided)) => {
                // Decided (or ended) on the Cloud: take it, then wait for the end here.
                polling = false;
                take(&ctx, &book, &id, decided).await;
            }
            Step::Polled(Err(error @ CloudError::Unavailable { .. })) => {
                attempt += 1;
                tracing::debug!("approval {id}: polling the Cloud failed ({error}); retrying");
                if let Some(outcome) = pause(
                    &mut on_end,
                    backoff(attempt, RELAY_RETRY_BASE, RELAY_RETRY_CAP),
                )
                .await
                {
                    break outcome;
                }
            }
            Step::Polled(Err(error)) => {
                polling = false;
                tracing::warn!("approval {id}: the Cloud's decision cannot be read ({error}); decide it with `kalguard approvals`");
            }
            Step::Answered(_) => {}
        }
    };
    settle(&ctx, &id, &outcome).await;
}

/// Takes a decision made on the Cloud into the book, unless the approval
/// ended here first.
async fn take(ctx: &Arc<Ctx>, book: &Approvals, id: &str, decided: Outcome) {
    let verdict = match decided.status {
        Status::Approved => Verdict::Approved,
        Status::Denied => Verdict::Denied,
        // Ended on the Cloud's side without a decision (its clock saw the expiry).
        Status::Pending | Status::Expired | Status::Abandoned => return,
    };
    let decision = Decision {
        verdict,
        by: format!(
            "{} (Cloud)",
            shown_text(decided.by).unwrap_or_else(|| "unnamed".into())
        ),
        reason: shown_text(decided.reason),
    };
    let by = decision.by.clone();
    let for_minutes = decided.for_minutes.filter(|_| verdict == Verdict::Approved);
    match apply(ctx, book, id, decision, for_minutes).await {
        Ok(_) => tracing::info!("approval {id}: {} by {by}", verdict.as_str()),
        Err(ApprovalError::NotPending(_)) => {
            tracing::info!("approval {id}: decided on the Cloud after it ended here; the first decision stands")
        }
        Err(error) => tracing::warn!("approval {id}: the Cloud's decision is refused: {error}"),
    }
}

/// Tells the Cloud how approval `id` ended here (a few tries, then a warning:
/// the Cloud shows it expired once its expiry passes).
async fn settle(ctx: &Arc<Ctx>, id: &str, outcome: &Outcome) {
    let Some(cloud) = ctx.cloud.as_ref() else {
        return;
    };
    let path = format!("{CLOUD_PATH}/{id}/settle");
    for attempt in 1..=SETTLE_TRIES {
        let settled: Result<serde_json::Value, CloudError> = cloud
            .client
            .call(Method::POST, &path, Some(outcome), RELAY_CALL_TIMEOUT)
            .await;
        match settled {
            Ok(_) => return,
            Err(CloudError::Unavailable { .. }) if attempt < SETTLE_TRIES => {
                tokio::time::sleep(backoff(attempt, RELAY_RETRY_BASE, RELAY_RETRY_CAP)).await;
            }
            Err(error) => {
                tracing::warn!(
                    "approval {id} ended {} but the Cloud was not told: {error}",
                    outcome.status.as_str()
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::test_dir;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cloud_that_answers_polls_at_once_is_not_asked_in_a_tight_loop() {
        // An older or broken Cloud that ignores `wait` and answers "pending"
        // at once: the relay must not turn into a busy loop against it.
        let polls = Arc::new(AtomicUsize::new(0));
        let settles = Arc::new(AtomicUsize::new(0));
        let (counted, settled) = (Arc::clone(&polls), Arc::clone(&settles));
        let app = Router::new()
            .route(CLOUD_PATH, post(|| async { Json(serde_json::json!({})) }))
            .route(
                &format!("{CLOUD_PATH}/{{id}}"),
                get(move || async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    Json(serde_json::json!({"status": "pending"}))
                }),
            )
            .route(
                &format!("{CLOUD_PATH}/{{id}}/settle"),
                post(move || async move {
                    settled.fetch_add(1, Ordering::SeqCst);
                    Json(serde_json::json!({}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = test_dir("approvals-relay-no-hold");
        let ctx = crate::ctx::in_cloud_mode(&dir, &url);
        let book = Arc::new(Approvals::default());
        let request = ApprovalRequest {
            nonce: "n".into(),
            request_id: "r".into(),
            agent_id: "bot".into(),
            action: "tool:execute".into(),
            route: "/mcp".into(),
            model: None,
            tool: Some("send_email".into()),
            arguments_sha256: "a".repeat(64),
            rule_id: Some("mail".into()),
            policy_version: "1".into(),
            reason: "e-mail needs a person".into(),
            expires_at_ms: u64::MAX,
        };
        let relay = Relay::start(&ctx, &book, "ap_1", &request).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while polls.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no poll");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = polls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let asked = polls.load(Ordering::SeqCst) - before;
        assert!(asked <= 6, "{asked} polls in 3 s");

        // Decided here, the approval is still settled on the Cloud at once.
        relay.settle(&Decision {
            verdict: Verdict::Approved,
            by: "alice".into(),
            reason: None,
        });
        while settles.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no settle");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
