//! Polls a control plane holds open for a member's decision (an approval's
//! outcome, the decisions on its held MCP tools): answered the moment a
//! decision on this process wakes them, re-read every [`RECHECK`] for
//! decisions taken on another replica, and bounded per organisation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::Notify;

use crate::api::ApiError;
use crate::app::AppState;

/// How often a held poll reads again, for decisions taken on another
/// replica (this one's wake it at once).
const RECHECK: Duration = Duration::from_secs(2);

/// Most polls one organisation may hold open at once on one process, per
/// kind: each re-reads every second or two, so a leaked key must not
/// multiply them without bound.
pub const MAX_HELD_POLLS_PER_ORG: usize = 1_000;

/// The polls of one kind held open on this process, per organisation.
#[derive(Debug, Default)]
pub struct HeldPolls(Mutex<HashMap<String, usize>>);

/// One held poll; dropping it gives its place back.
pub struct HeldPoll<'a> {
    polls: &'a HeldPolls,
    org_id: String,
}

impl HeldPolls {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // Plain counts: a panicking holder cannot leave them half-changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for one more held poll of `org_id`; `None` when it holds
    /// [`MAX_HELD_POLLS_PER_ORG`] already.
    pub fn hold(&self, org_id: &str) -> Option<HeldPoll<'_>> {
        let mut counts = self.counts();
        let held = counts.entry(org_id.to_owned()).or_insert(0);
        if *held >= MAX_HELD_POLLS_PER_ORG {
            return None;
        }
        *held += 1;
        Some(HeldPoll {
            polls: self,
            org_id: org_id.to_owned(),
        })
    }
}

impl Drop for HeldPoll<'_> {
    fn drop(&mut self) {
        let mut counts = self.polls.counts();
        if let Some(held) = counts.get_mut(&self.org_id) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.remove(&self.org_id);
            }
        }
    }
}

/// The `wait` a poll asks for, in seconds (capped at `max`); the API's JSON
/// 400 when it is not a number.
pub fn wait_secs(query: &str, max: u64) -> Result<u64, ApiError> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "wait")
        .map_or(Ok(0), |(_, v)| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("wait must be a whole number of seconds, got {v:?}"))
            })
        })
        .map(|secs| secs.min(max))
}

/// One poll: what it waits on and how it is bounded.
pub struct Poll<'a> {
    pub state: &'a AppState,
    pub org_id: &'a str,
    /// Woken when a member decides on this process.
    pub changed: &'a Notify,
    /// This kind's held polls.
    pub polls: &'a HeldPolls,
    /// What a poll over the bound is told to do instead.
    pub what: &'static str,
    pub wait_secs: u64,
}

impl Poll<'_> {
    /// Reads with `read` until `ready` says the answer is worth giving, or
    /// the wait ends (then the last answer read).
    pub async fn answer<T, Fut>(
        self,
        mut read: impl FnMut() -> Fut,
        ready: impl Fn(&T) -> bool,
    ) -> Result<T, ApiError>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let _held = match self.wait_secs {
            0 => None,
            _ => Some(self.polls.hold(self.org_id).ok_or_else(|| ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "TOO_MANY_POLLS",
                message: format!(
                    "this organisation holds {MAX_HELD_POLLS_PER_ORG} {} polls open already; poll without wait",
                    self.what
                ),
            })?),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.wait_secs);
        loop {
            // Listening before reading: a decision between the two still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let answer = read().await?;
            let now = tokio::time::Instant::now();
            if ready(&answer) || now >= deadline {
                return Ok(answer);
            }
            let recheck = (deadline - now).min(RECHECK);
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep(recheck) => {}
                () = self.state.db.changes.closed() => return Ok(answer),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_polls_are_bounded_per_organisation_and_given_back() {
        let polls = HeldPolls::default();
        let held: Vec<_> = (0..MAX_HELD_POLLS_PER_ORG)
            .map(|_| polls.hold("org_a").unwrap())
            .collect();
        assert!(polls.hold("org_a").is_none());
        assert!(
            polls.hold("org_b").is_some(),
            "another organisation is not held back"
        );
        drop(held);
        assert!(polls.hold("org_a").is_some());
        assert!(polls.counts().is_empty(), "no count is left behind");
    }

    #[test]
    fn the_wait_is_capped_and_numeric() {
        assert_eq!(wait_secs("", 25).unwrap(), 0);
        assert_eq!(wait_secs("wait=5", 25).unwrap(), 5);
        assert_eq!(wait_secs("sidecarId=sc_1&wait=999", 25).unwrap(), 25);
        assert!(wait_secs("wait=soon", 25).is_err());
    }
}
