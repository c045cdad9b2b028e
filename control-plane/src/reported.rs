//! How many of this sidecar's checks the Cloud has counted today.
//!
//! The Cloud's `remaining` is the organisation's, all sidecars together. The
//! filter counts its own checks exactly; to reconcile the two without counting
//! its own checks twice it needs to know how many of them `remaining` already
//! includes: the checks in the reports the Cloud accepted, per UTC day. The
//! figure is kept on disk so a control-plane restart does not forget it (which
//! would make the filter count those checks a second time).

use crate::clock::day_of;
use crate::events::UsageEvent;
use crate::fsutil::{write_atomically, FileError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Checks of one UTC day the Cloud accepted from this sidecar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedChecks {
    pub day: u64,
    pub checks: u64,
}

impl ReportedChecks {
    /// Adds the checks of an accepted batch; `today` is the UTC day now. A
    /// check of an earlier day is not in today's `remaining`.
    pub fn add(&mut self, events: &[UsageEvent], today: u64) {
        if self.day != today {
            *self = ReportedChecks {
                day: today,
                checks: 0,
            };
        }
        let counted = events
            .iter()
            .filter(|e| e.is_check() && day_of(e.timestamp) == today)
            .count();
        self.checks += counted as u64;
    }

    /// The checks `remaining` includes when it is about the day that ends at
    /// `reset_at` (unix seconds); 0 for any other day.
    pub fn on_day_ending(&self, reset_at: u64) -> u64 {
        let day = day_of(reset_at.saturating_sub(1).saturating_mul(1000));
        if day == self.day {
            self.checks
        } else {
            0
        }
    }
}

/// The file under the data dir.
pub struct ReportedFile {
    path: PathBuf,
}

impl ReportedFile {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("reported-checks.json"),
        }
    }

    /// What was saved; a missing or unreadable file is today with nothing
    /// reported (the filter then admits less, never more).
    pub fn load(&self) -> ReportedChecks {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "{} is not readable ({e}); starting the day's reported checks at 0",
                    self.path.display()
                );
                ReportedChecks::default()
            }),
            Err(_) => ReportedChecks::default(),
        }
    }

    pub fn save(&self, reported: ReportedChecks) -> Result<(), FileError> {
        // Two numbers: written by hand, so the only failure left is the disk's.
        let text = format!(r#"{{"day":{},"checks":{}}}"#, reported.day, reported.checks);
        write_atomically(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::test_dir;
    use kalguard_wire::event::{Decision, EventType};

    const DAY_MS: u64 = 86_400_000;

    fn event(day: u64, error_code: Option<&str>) -> UsageEvent {
        UsageEvent {
            event_type: EventType::PromptCheck,
            agent_id: "a".into(),
            decision: if error_code.is_some() {
                Decision::Deny
            } else {
                Decision::Allow
            },
            error_code: error_code.map(str::to_owned),
            timestamp: day * DAY_MS + 5,
            request_id: "r".into(),
            metadata: Default::default(),
            categories: Vec::new(),
        }
    }

    #[test]
    fn counts_todays_checks_but_not_quota_refusals() {
        let mut reported = ReportedChecks::default();
        let events = [
            event(20_000, None),
            event(20_000, Some("PROMPT_BLOCKED")),
            event(20_000, Some("RATE_LIMIT_EXCEEDED")),
            event(20_000, Some("AGENT_LIMIT_EXCEEDED")),
            event(20_000, Some("TOKEN_REVOKED")),
            event(19_999, None),
        ];
        reported.add(&events, 20_000);
        assert_eq!(
            reported,
            ReportedChecks {
                day: 20_000,
                checks: 2
            }
        );
        reported.add(&events[..1], 20_001);
        assert_eq!(
            reported,
            ReportedChecks {
                day: 20_001,
                checks: 0
            },
            "a new day starts at 0"
        );
    }

    #[test]
    fn only_the_day_of_remaining_is_answered() {
        let reported = ReportedChecks {
            day: 20_000,
            checks: 7,
        };
        let midnight_after = 20_001 * 86_400;
        assert_eq!(reported.on_day_ending(midnight_after), 7);
        assert_eq!(reported.on_day_ending(midnight_after + 86_400), 0);
    }

    #[test]
    fn survives_a_restart() {
        let dir = test_dir("reported");
        let file = ReportedFile::new(&dir);
        assert_eq!(file.load(), ReportedChecks::default());
        file.save(ReportedChecks { day: 3, checks: 9 }).unwrap();
        assert_eq!(
            ReportedFile::new(&dir).load(),
            ReportedChecks { day: 3, checks: 9 }
        );
    }
}
