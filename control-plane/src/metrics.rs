//! Counters for `GET /metrics` (Prometheus text format 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every counter the control plane keeps. Gauges (spool depth, mode, license
/// age, state version) are read from their owners when rendering.
#[derive(Default)]
pub struct Metrics {
    pub events_received: AtomicU64,
    pub events_rejected: AtomicU64,
    pub duplicate_posts: AtomicU64,
    pub audit_records: AtomicU64,
    pub audit_write_errors: AtomicU64,
    pub spool_dropped: AtomicU64,
    pub usage_events_reported: AtomicU64,
    pub usage_batches_reported: AtomicU64,
    pub usage_report_failures: AtomicU64,
    pub usage_batches_rejected: AtomicU64,
    pub license_syncs_ok: AtomicU64,
    pub license_syncs_failed: AtomicU64,
    pub license_syncs_refused: AtomicU64,
    /// Requests refused for want of the channel key.
    pub unauthorized_requests: AtomicU64,
}

/// The gauges rendered beside the counters.
pub struct Gauges<'a> {
    pub mode: &'a str,
    pub state_version: u64,
    pub spool_depth: usize,
    pub spool_capacity: usize,
    pub license_age_seconds: Option<u64>,
}

pub fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl Metrics {
    pub fn render(&self, gauges: &Gauges<'_>) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "kalguard_filter_events_received_total",
            "Events the filter reported and the control plane accepted.",
            get(&self.events_received),
        );
        counter(
            "kalguard_filter_events_rejected_total",
            "Events refused as invalid (see the POST answer's errors).",
            get(&self.events_rejected),
        );
        counter(
            "kalguard_filter_duplicate_posts_total",
            "Event posts whose batchId was already recorded (a filter retry), not recorded again.",
            get(&self.duplicate_posts),
        );
        counter(
            "kalguard_audit_records_total",
            "Records appended to the audit log.",
            get(&self.audit_records),
        );
        counter(
            "kalguard_audit_write_errors_total",
            "Event batches refused because the audit log or spool could not be written.",
            get(&self.audit_write_errors),
        );
        counter(
            "kalguard_spool_dropped_events_total",
            "Usage events dropped because the spool was full.",
            get(&self.spool_dropped),
        );
        counter(
            "kalguard_usage_events_reported_total",
            "Usage events the Cloud accepted.",
            get(&self.usage_events_reported),
        );
        counter(
            "kalguard_usage_batches_reported_total",
            "Usage batches the Cloud accepted.",
            get(&self.usage_batches_reported),
        );
        counter(
            "kalguard_usage_report_failures_total",
            "Usage reports that failed and will be retried.",
            get(&self.usage_report_failures),
        );
        counter(
            "kalguard_usage_batches_rejected_total",
            "Usage batches the Cloud rejected for good (kept under spool/rejected).",
            get(&self.usage_batches_rejected),
        );
        counter(
            "kalguard_unauthorized_requests_total",
            "Requests refused with 401: no channel key, or not the right one.",
            get(&self.unauthorized_requests),
        );
        let _ = writeln!(out, "# HELP kalguard_license_syncs_total License validations by result.\n# TYPE kalguard_license_syncs_total counter");
        for (result, c) in [
            ("ok", &self.license_syncs_ok),
            ("unavailable", &self.license_syncs_failed),
            ("refused", &self.license_syncs_refused),
        ] {
            let _ = writeln!(
                out,
                "kalguard_license_syncs_total{{result=\"{result}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# HELP kalguard_mode The control plane's mode (1 for the current one).\n# TYPE kalguard_mode gauge");
        for mode in ["local", "cloud", "degraded"] {
            let _ = writeln!(
                out,
                "kalguard_mode{{mode=\"{mode}\"}} {}",
                u8::from(mode == gauges.mode)
            );
        }
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "kalguard_state_version",
            "Version of the snapshot the filter long-polls.",
            gauges.state_version,
        );
        gauge(
            "kalguard_spool_depth",
            "Usage events waiting for the Cloud.",
            gauges.spool_depth as u64,
        );
        gauge(
            "kalguard_spool_capacity",
            "Most usage events the spool holds.",
            gauges.spool_capacity as u64,
        );
        if let Some(age) = gauges.license_age_seconds {
            gauge(
                "kalguard_license_age_seconds",
                "Seconds since the license in force was validated.",
                age,
            );
        }
        out
    }
}
