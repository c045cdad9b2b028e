//! Envoy stats for the filter, defined once per VM.
//!
//! Names are `kalguard_requests.decision.<allow|deny>` and
//! `kalguard_refusals.code.<ERROR_CODE>`, and `kalguard_events.outcome.dropped`
//! for decision events lost while the control plane was away, and
//! `kalguard_channel.outcome.<snapshot_adopted|unverified|key_refused>` for
//! snapshots taken, answers ignored for want of a valid MAC (something else
//! answers on the control plane's address), and calls refused the channel key
//! (Envoy files them under `wasmcustom.`).
//! With the `stats_tags` of `envoy.yaml`, `/stats/prometheus` shows them as
//! `kalguard_requests{decision="allow"}` and `kalguard_refusals{code="AUTH_FAILED"}`.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::refusal::ErrorCode;

pub(super) struct Metrics {
    allowed: Option<u32>,
    denied: Option<u32>,
    events_dropped: Option<u32>,
    snapshots_adopted: Option<u32>,
    answers_unverified: Option<u32>,
    channel_key_refused: Option<u32>,
    refusals: Vec<(ErrorCode, Option<u32>)>,
}

impl Metrics {
    pub(super) fn define() -> Metrics {
        Metrics {
            allowed: counter("kalguard_requests.decision.allow"),
            denied: counter("kalguard_requests.decision.deny"),
            events_dropped: counter("kalguard_events.outcome.dropped"),
            snapshots_adopted: counter("kalguard_channel.outcome.snapshot_adopted"),
            answers_unverified: counter("kalguard_channel.outcome.unverified"),
            channel_key_refused: counter("kalguard_channel.outcome.key_refused"),
            refusals: ErrorCode::ALL
                .iter()
                .map(|code| {
                    (
                        *code,
                        counter(&format!("kalguard_refusals.code.{}", code.as_str())),
                    )
                })
                .collect(),
        }
    }

    /// A decision event that could not be kept for the control plane.
    pub(super) fn event_dropped(&self) {
        increment(self.events_dropped);
    }

    /// A snapshot verified and stored.
    pub(super) fn snapshot_adopted(&self) {
        increment(self.snapshots_adopted);
    }

    /// An answer (state or event acknowledgement) ignored: its MAC did not verify.
    pub(super) fn answer_unverified(&self) {
        increment(self.answers_unverified);
    }

    /// The control plane answered 401: the keys differ.
    pub(super) fn channel_key_refused(&self) {
        increment(self.channel_key_refused);
    }

    pub(super) fn allowed(&self) {
        increment(self.allowed);
    }

    pub(super) fn refused(&self, code: ErrorCode) {
        increment(self.denied);
        self.answer_refused(code);
    }

    /// An answer refused or cut after its request was allowed: a refusal by code,
    /// not a second decision on the request.
    pub(super) fn answer_refused(&self, code: ErrorCode) {
        if let Some((_, id)) = self.refusals.iter().find(|(c, _)| *c == code) {
            increment(*id);
        }
    }
}

fn counter(name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Counter, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::warn!(
                "kalguard: cannot define metric {name} ({status:?}); it will not be reported"
            );
            None
        }
    }
}

/// Metrics never fail a request: a host error here is ignored.
fn increment(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}
