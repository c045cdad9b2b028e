//! License changes reach sidecars in seconds: each organisation has a license
//! version that every change a sidecar must see at once moves forward (a token
//! revoked, an agent quarantined, an API key revoked, the signing secret rotated,
//! the plan changed: [`crate::store::orgs::license_changed`]), and the watchers
//! held open by `GET /api/v1/license/watch` wake the moment it does.
//!
//! The store function that bumps the version in the database also publishes it
//! here, so watchers on this process wake at once. Changes made by another process
//! (a second replica on the same Postgres, the `kalguard-cloud` command line) are
//! found by [`spawn_poll`], one small query a second for the whole process,
//! however many watchers wait: an idle watcher costs a parked task and its socket.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::db::Db;
use crate::time_util::now;

/// How many watchers one organisation may hold open at once on one process; a
/// fleet needs one per sidecar, and a leaked key must not exhaust the server.
pub const MAX_WATCHERS_PER_ORG: usize = 2_000;

/// The versions watchers wait on, one channel per organisation with a watcher.
#[derive(Debug)]
pub struct LicenseChanges {
    orgs: Mutex<HashMap<String, watch::Sender<i64>>>,
    /// Set when the server stops, so held watchers answer at once.
    closing: watch::Sender<bool>,
}

/// Why a watcher could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyWatchers;

impl Default for LicenseChanges {
    fn default() -> Self {
        LicenseChanges {
            orgs: Mutex::new(HashMap::new()),
            closing: watch::channel(false).0,
        }
    }
}

impl LicenseChanges {
    fn orgs(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<i64>>> {
        // The map holds no invariant a panicking holder could break.
        self.orgs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of the organisation's version. Subscribe before reading the
    /// version from the database, so a change between the two is not missed.
    pub fn subscribe(&self, org_id: &str) -> Result<watch::Receiver<i64>, TooManyWatchers> {
        let mut orgs = self.orgs();
        // Channels nobody waits on any more go, so the map stays the size of the
        // organisations being watched.
        orgs.retain(|_, tx| tx.receiver_count() > 0);
        let tx = orgs
            .entry(org_id.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        if tx.receiver_count() >= MAX_WATCHERS_PER_ORG {
            return Err(TooManyWatchers);
        }
        Ok(tx.subscribe())
    }

    /// Wakes the organisation's watchers when `version` is newer than what they saw.
    pub fn publish(&self, org_id: &str, version: i64) {
        if let Some(tx) = self.orgs().get(org_id) {
            tx.send_if_modified(|seen| {
                let newer = version > *seen;
                if newer {
                    *seen = version;
                }
                newer
            });
        }
    }

    /// Watchers waiting now, on this process.
    pub fn waiting(&self) -> usize {
        self.orgs()
            .values()
            .map(watch::Sender::receiver_count)
            .sum()
    }

    /// Ends every hold at once (the server is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when [`LicenseChanges::close`] was called.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        // An error means the sender is gone, which is closing too.
        let _ = rx.wait_for(|closing| *closing).await;
    }
}

/// Waits until `rx` shows a version above `seen`, and returns it.
pub async fn newer_than(rx: &mut watch::Receiver<i64>, seen: i64) -> i64 {
    match rx.wait_for(|v| *v > seen).await {
        Ok(v) => *v,
        // The channel cannot close while the hub holds its sender; if it ever
        // did, waiting on would never end, so answer with what was seen.
        Err(_) => seen,
    }
}

/// Publishes, once a second, the versions other processes moved.
pub fn spawn_poll(db: Db) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Seconds resolution: look back a little so a change in the same second
        // as the last poll is not missed (publishing twice is harmless).
        let mut since = now() - 2;
        loop {
            tick.tick().await;
            let started = now();
            match crate::store::orgs::license_versions_since(&db, since).await {
                Ok(rows) => {
                    for (org_id, version) in rows {
                        db.changes.publish(&org_id, version);
                    }
                    since = started - 2;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading license changes failed; retrying in 1 s")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watcher_wakes_on_a_newer_version_only() {
        let hub = LicenseChanges::default();
        let mut rx = hub.subscribe("org_a").unwrap();
        hub.publish("org_b", 9);
        hub.publish("org_a", 3);
        assert_eq!(newer_than(&mut rx, 2).await, 3);
        hub.publish("org_a", 3);
        hub.publish("org_a", 1);
        let waited = tokio::time::timeout(Duration::from_millis(50), newer_than(&mut rx, 3)).await;
        assert!(waited.is_err(), "an old or equal version wakes no one");
        assert_eq!(hub.waiting(), 1);
        drop(rx);
        let _other = hub.subscribe("org_b").unwrap();
        assert_eq!(hub.orgs().len(), 1, "a channel nobody waits on is dropped");
    }

    #[test]
    fn one_organisation_cannot_hold_unbounded_watchers() {
        let hub = LicenseChanges::default();
        let held: Vec<_> = (0..MAX_WATCHERS_PER_ORG)
            .map(|_| hub.subscribe("org_a").unwrap())
            .collect();
        assert_eq!(hub.subscribe("org_a").err(), Some(TooManyWatchers));
        assert!(hub.subscribe("org_b").is_ok());
        drop(held);
        assert!(hub.subscribe("org_a").is_ok());
    }
}
