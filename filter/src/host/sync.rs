//! The channel machine's host side ([`crate::sync`]): shared data, the event
//! queue, calls to the control plane's cluster and the answers to them, over
//! proxy-wasm. Nothing here decides.

use proxy_wasm::hostcalls;
use std::time::Duration;

use super::{RequestIds, Shared};
use crate::channel::{ChannelKey, Position, KEY_HEADER};
use crate::lease;
use crate::sync::{Link, Note, Reply, Sync};

pub(super) const STATE_KEY: &str = "kalguard.state";
/// The held snapshot's [`Position`], written after the snapshot itself.
pub(super) const POSITION_KEY: &str = "kalguard.state.position";
const LEASE_KEY: &str = "kalguard.lease";
pub(super) const QUEUE_NAME: &str = "kalguard.events";
pub(super) const TICK: Duration = Duration::from_millis(500);

/// The channel machine of one root context, with its nonce source.
pub(super) struct Channel {
    machine: Sync,
    nonces: RequestIds,
}

impl Channel {
    pub(super) fn new(me: String, key: ChannelKey) -> Channel {
        Channel {
            machine: Sync::new(me, key),
            nonces: RequestIds::default(),
        }
    }

    pub(super) fn tick(&mut self, shared: &Shared, now_ms: u64) {
        let mut link = Envoy {
            shared,
            nonces: &self.nonces,
        };
        self.machine.tick(&mut link, now_ms);
    }

    /// Handles the answer of a call this context made.
    pub(super) fn on_response(
        &mut self,
        shared: &Shared,
        token: u32,
        body_size: usize,
        now_ms: u64,
    ) {
        let answer = super::call_answer(body_size);
        let reply = Reply {
            status: answer.status.as_deref(),
            mac: &answer.mac,
            body: &answer.body,
        };
        let mut link = Envoy {
            shared,
            nonces: &self.nonces,
        };
        self.machine.on_reply(&mut link, token, &reply, now_ms);
    }
}

/// [`Link`] over proxy-wasm's host calls.
struct Envoy<'a> {
    shared: &'a Shared,
    nonces: &'a RequestIds,
}

impl Link for Envoy<'_> {
    fn claim_lease(&mut self, me: &str, now_ms: u64) -> bool {
        let Ok((current, cas)) = hostcalls::get_shared_data(LEASE_KEY) else {
            return false;
        };
        let Some(lease) = lease::claim(current.as_deref(), me, now_ms) else {
            return false;
        };
        hostcalls::set_shared_data(LEASE_KEY, Some(&lease.encode()), cas).is_ok()
    }

    fn dequeue(&mut self) -> Option<Vec<u8>> {
        hostcalls::dequeue_shared_queue(self.shared.queue?)
            .ok()
            .flatten()
    }

    fn call(
        &mut self,
        method: &'static str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, String> {
        let cluster = &self.shared.guard.config().control_plane_cluster;
        let key = self.shared.channel_key.as_ref().ok_or("no channel key")?;
        let mut headers = vec![
            (":method", method),
            (":path", path),
            (":authority", "kalguard-control-plane"),
            (KEY_HEADER, key.header_value()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        hostcalls::dispatch_http_call(cluster, headers, body, vec![], timeout)
            .map_err(|status| format!("cluster {cluster}: {status:?}"))
    }

    fn nonce(&mut self) -> String {
        self.nonces.next()
    }

    fn stored_position(&self) -> Option<Position> {
        stored_position()
    }

    /// The snapshot first, then its position: a worker that sees the new
    /// position always finds the snapshot it names (or a newer one).
    fn publish(&mut self, position: &Position, body: &[u8]) -> bool {
        if hostcalls::set_shared_data(STATE_KEY, Some(body), None).is_err() {
            return false;
        }
        let encoded = position.encode();
        hostcalls::set_shared_data(POSITION_KEY, Some(encoded.as_bytes()), None).is_ok()
    }

    fn note(&mut self, note: Note) {
        let metrics = &self.shared.metrics;
        match note {
            Note::ChannelKeyRefused => metrics.channel_key_refused(),
            Note::AnswerUnverified => metrics.answer_unverified(),
            Note::EventDropped => metrics.event_dropped(),
            Note::SnapshotAdopted(position) => {
                metrics.snapshot_adopted();
                log::info!(
                    "kalguard: state version {} received from the control plane (epoch {})",
                    position.version,
                    position.epoch
                );
            }
            Note::Warning(text) => log::warn!("{text}"),
        }
    }
}

/// The held snapshot's position in shared data (`None` before the first).
pub(super) fn stored_position() -> Option<Position> {
    hostcalls::get_shared_data(POSITION_KEY)
        .ok()
        .and_then(|(value, _)| value)
        .and_then(|v| std::str::from_utf8(&v).ok().and_then(Position::decode))
}
