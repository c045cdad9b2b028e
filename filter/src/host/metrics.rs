//! Envoy stats for the filter, defined once per VM.
//!
//! Names are `kalguard_requests.decision.<allow|deny>`,
//! `kalguard_verdict_cache.outcome.<hit|miss|evict>` (texts whose analysis the
//! firewall found in its verdict cache, scanned, or dropped to make room) and
//! `kalguard_refusals.code.<ERROR_CODE>`, `kalguard_would_refuse.code.<ERROR_CODE>`
//! (refusals observe mode let pass, requests' and answers'; the request is
//! also counted allowed: `docs/observe.md`), and `kalguard_events.outcome.dropped`
//! for decision events lost while the control plane was away, and
//! `kalguard_channel.outcome.<snapshot_adopted|unverified|key_refused>` for
//! snapshots taken, answers ignored for want of a valid MAC (something else
//! answers on the control plane's address), and calls refused the channel key
//! (Envoy files them under `wasmcustom.`).
//! With the `stats_tags` of `envoy.yaml`, `/stats/prometheus` shows them as
//! `kalguard_requests{decision="allow"}` and `kalguard_refusals{code="AUTH_FAILED"}`.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::firewall::CacheCounts;
use crate::refusal::ErrorCode;

pub(super) struct Metrics {
    allowed: Option<u32>,
    denied: Option<u32>,
    events_dropped: Option<u32>,
    snapshots_adopted: Option<u32>,
    answers_unverified: Option<u32>,
    channel_key_refused: Option<u32>,
    refusals: Vec<(ErrorCode, Option<u32>)>,
    would_refuse: Vec<(ErrorCode, Option<u32>)>,
    cache_hits: Option<u32>,
    cache_misses: Option<u32>,
    cache_evictions: Option<u32>,
    /// The verdict cache's counts as last published.
    cache_published: Cell<CacheCounts>,
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
            would_refuse: ErrorCode::ALL
                .iter()
                .map(|code| {
                    let name = format!("kalguard_would_refuse.code.{}", code.as_str());
                    (*code, counter(&name))
                })
                .collect(),
            cache_hits: counter("kalguard_verdict_cache.outcome.hit"),
            cache_misses: counter("kalguard_verdict_cache.outcome.miss"),
            cache_evictions: counter("kalguard_verdict_cache.outcome.evict"),
            cache_published: Cell::new(CacheCounts::default()),
        }
    }

    /// Publishes what the verdict cache counted since the last call.
    pub(super) fn verdict_cache(&self, now: CacheCounts) {
        let before = self.cache_published.replace(now);
        add(self.cache_hits, now.hits.saturating_sub(before.hits));
        add(self.cache_misses, now.misses.saturating_sub(before.misses));
        add(
            self.cache_evictions,
            now.evictions.saturating_sub(before.evictions),
        );
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

    /// A refusal observe mode let pass; a `request`'s counts as allowed too
    /// (an answer's request was counted when it went upstream).
    pub(super) fn would_refuse(&self, code: ErrorCode, request: bool) {
        if request {
            increment(self.allowed);
        }
        if let Some((_, id)) = self.would_refuse.iter().find(|(c, _)| *c == code) {
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
    add(id, 1);
}

fn add(id: Option<u32>, n: u64) {
    if let (Some(id), Ok(n @ 1..)) = (id, i64::try_from(n)) {
        let _ = hostcalls::increment_metric(id, n);
    }
}
