//! The state channel and the event pipeline, from the filter's side.
//!
//! Every worker VM's root context ticks; the one holding the sync lease
//! (`crate::lease`) long-polls the control plane's `GET /v1/filter/state` and
//! stores each new snapshot in shared data, drains the shared event queue into
//! a bounded outbox and posts it in batches to `POST /v1/filter/events`. Every
//! worker reloads the snapshot when the shared position key moves.
//!
//! Every call carries the channel key; a snapshot is adopted only when its MAC
//! verifies for the nonce of the poll it answers, and it supersedes the one
//! held ([`crate::channel`] decides both; this module only carries them out).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};
use std::collections::VecDeque;
use std::time::Duration;

use super::{RequestIds, Shared};
use crate::channel::{Answer, ChannelKey, Position, KEY_HEADER, MAC_HEADER};
use crate::event;
use crate::lease;
use crate::state::Snapshot;

pub(super) const STATE_KEY: &str = "kalguard.state";
/// The held snapshot's [`Position`], written after the snapshot itself.
pub(super) const POSITION_KEY: &str = "kalguard.state.position";
const LEASE_KEY: &str = "kalguard.lease";
pub(super) const QUEUE_NAME: &str = "kalguard.events";
pub(super) const TICK: Duration = Duration::from_millis(500);
/// The control plane holds a state poll up to 30 s.
const STATE_POLL_TIMEOUT: Duration = Duration::from_secs(35);
const EVENTS_TIMEOUT: Duration = Duration::from_secs(5);
/// Events kept while the control plane cannot take them; the oldest go first.
const OUTBOX_LIMIT: usize = 50_000;
/// Events per `POST /v1/filter/events`.
const BATCH: usize = 500;
/// Events moved from the shared queue per tick.
const DRAIN_PER_TICK: usize = 20_000;
/// Failures are logged at most this often.
const LOG_EVERY_MS: u64 = 30_000;

/// The holder's side of the channel, kept in one root context.
pub(super) struct Sync {
    me: String,
    key: ChannelKey,
    /// Fresh nonces for state polls.
    nonces: RequestIds,
    holder: bool,
    /// The state poll in flight and the nonce its answer must be bound to.
    state_call: Option<(u32, String)>,
    /// The batch being posted, or waiting to be posted again after a failure
    /// (under the same ID), and the call in flight for it.
    posting: Option<Posting>,
    events_call: Option<u32>,
    batches: u64,
    outbox: VecDeque<Vec<u8>>,
    last_failure_log_ms: u64,
}

/// One batch of events under its batch ID.
struct Posting {
    id: String,
    events: Vec<Vec<u8>>,
}

impl Sync {
    pub(super) fn new(me: String, key: ChannelKey) -> Sync {
        Sync {
            me,
            key,
            nonces: RequestIds::default(),
            holder: false,
            state_call: None,
            posting: None,
            events_call: None,
            batches: 0,
            outbox: VecDeque::new(),
            last_failure_log_ms: 0,
        }
    }

    pub(super) fn tick(&mut self, shared: &Shared, now_ms: u64) {
        self.holder = self.claim_lease(now_ms);
        if !self.holder {
            return;
        }
        self.drain_queue(shared);
        let cluster = &shared.guard.config().control_plane_cluster;
        self.poll_state(cluster, now_ms);
        self.post_events(cluster, now_ms);
    }

    /// Long-polls the state unless a poll is in flight. Called on every tick,
    /// and again as soon as a poll is answered, so a new snapshot (a revoked
    /// token) is never waiting for the next tick to be asked for.
    fn poll_state(&mut self, cluster: &str, now_ms: u64) {
        if self.state_call.is_some() {
            return;
        }
        let nonce = self.nonces.next();
        let held = stored_position();
        let path = match &held {
            Some(held) if is_url_safe(&held.epoch) => format!(
                "/v1/filter/state?version={}&epoch={}&nonce={nonce}",
                held.version, held.epoch
            ),
            _ => format!("/v1/filter/state?version=0&nonce={nonce}"),
        };
        match call(&self.key, cluster, "GET", &path, None, STATE_POLL_TIMEOUT) {
            Ok(token) => self.state_call = Some((token, nonce)),
            Err(status) => self.failure(
                now_ms,
                &format!("cannot call cluster {cluster} for the state ({status:?})"),
            ),
        }
    }

    /// Posts the next batch (or the one that failed, under the same ID) unless
    /// a post is in flight. Called on every tick, and again as soon as a post
    /// succeeds, so delivery keeps up with bursts instead of one batch a tick.
    fn post_events(&mut self, cluster: &str, now_ms: u64) {
        if self.events_call.is_some() {
            return;
        }
        if self.posting.is_none() && !self.outbox.is_empty() {
            let take = self.outbox.len().min(BATCH);
            self.batches += 1;
            self.posting = Some(Posting {
                id: format!("{}-{}", self.me, self.batches),
                events: self.outbox.drain(..take).collect(),
            });
        }
        if let Some(posting) = &self.posting {
            let body = event::batch(&posting.id, &posting.events);
            match call(
                &self.key,
                cluster,
                "POST",
                "/v1/filter/events",
                Some(&body),
                EVENTS_TIMEOUT,
            ) {
                Ok(token) => self.events_call = Some(token),
                Err(status) => self.failure(
                    now_ms,
                    &format!("cannot call cluster {cluster} to post events ({status:?})"),
                ),
            }
        }
    }

    /// Handles the answer of a call this context made.
    pub(super) fn on_response(
        &mut self,
        shared: &Shared,
        token: u32,
        body_size: usize,
        now_ms: u64,
    ) {
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten();
        if let Some((_, nonce)) = self.state_call.take_if(|(call, _)| *call == token) {
            // Poll again at once after a new snapshot or a quiet 304; anything
            // else waits for the next tick, so a confused peer cannot spin us.
            let poll_again = match status.as_deref() {
                Some("200") => self.take_snapshot(shared, &nonce, body_size, now_ms),
                Some("304") => true,
                Some("401") => {
                    shared.metrics.channel_key_refused();
                    self.failure(now_ms, "the control plane refused the channel key (401): give Envoy and the control plane the same KALGUARD_CHANNEL_KEY");
                    false
                }
                other => {
                    self.failure(
                        now_ms,
                        &format!("state poll answered {}", other.unwrap_or("nothing")),
                    );
                    false
                }
            };
            if poll_again && self.holder {
                self.poll_state(&shared.guard.config().control_plane_cluster, now_ms);
            }
        } else if self.events_call == Some(token) {
            self.events_call = None;
            let acknowledged = status.as_deref() == Some("200")
                && self.posting.as_ref().is_some_and(|posting| {
                    self.signed(
                        shared,
                        Answer::EventsAck,
                        &posting.id,
                        &response_body(body_size),
                    )
                });
            if acknowledged {
                self.posting = None;
                self.post_events(&shared.guard.config().control_plane_cluster, now_ms);
            } else if status.as_deref() == Some("200") {
                // Kept, and posted again under the same batch ID: only the
                // control plane's own acknowledgement lets events go.
                self.failure(now_ms, "an event post's answer does not carry a valid MAC under KALGUARD_CHANNEL_KEY (is something else listening on the control plane's address?); the events are kept");
            } else if status.as_deref() == Some("401") {
                shared.metrics.channel_key_refused();
                self.failure(now_ms, "the control plane refused the channel key (401) for events: give Envoy and the control plane the same KALGUARD_CHANNEL_KEY");
            } else {
                // Kept, and posted again under the same batch ID.
                self.failure(
                    now_ms,
                    &format!(
                        "event post answered {}",
                        status.as_deref().unwrap_or("nothing")
                    ),
                );
            }
        }
    }

    /// Adopts a state answer that verifies for `nonce` and supersedes the
    /// snapshot held; true when it was stored (poll again at once).
    fn take_snapshot(
        &mut self,
        shared: &Shared,
        nonce: &str,
        body_size: usize,
        now_ms: u64,
    ) -> bool {
        let body = response_body(body_size);
        if !self.signed(shared, Answer::Snapshot, nonce, &body) {
            self.failure(now_ms, "a state answer does not carry a valid MAC under KALGUARD_CHANNEL_KEY (is something else listening on the control plane's address?); ignored, keeping the current state");
            return false;
        }
        let Some(snapshot) = Snapshot::parse(&body) else {
            self.failure(
                now_ms,
                "the control plane sent a state that is not a snapshot; keeping the current one",
            );
            return false;
        };
        let position = Position {
            epoch: snapshot.epoch,
            version: snapshot.version,
        };
        let adopted = position.supersedes(stored_position().as_ref()) && publish(&position, &body);
        if adopted {
            shared.metrics.snapshot_adopted();
        }
        adopted
    }

    /// Whether the answer in hand carries the control plane's MAC for `nonce`;
    /// counts it when it does not.
    fn signed(&self, shared: &Shared, answer: Answer, nonce: &str, body: &[u8]) -> bool {
        let mac = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, MAC_HEADER)
            .ok()
            .flatten()
            .unwrap_or_default();
        let signed = self.key.verify(answer, nonce, body, &mac);
        if !signed {
            shared.metrics.answer_unverified();
        }
        signed
    }

    fn claim_lease(&self, now_ms: u64) -> bool {
        let Ok((current, cas)) = hostcalls::get_shared_data(LEASE_KEY) else {
            return false;
        };
        let Some(lease) = lease::claim(current.as_deref(), &self.me, now_ms) else {
            return false;
        };
        hostcalls::set_shared_data(LEASE_KEY, Some(&lease.encode()), cas).is_ok()
    }

    fn drain_queue(&mut self, shared: &Shared) {
        let Some(queue) = shared.queue else {
            return;
        };
        for _ in 0..DRAIN_PER_TICK {
            match hostcalls::dequeue_shared_queue(queue) {
                Ok(Some(event)) => {
                    if self.outbox.len() >= OUTBOX_LIMIT {
                        self.outbox.pop_front();
                        shared.metrics.event_dropped();
                    }
                    self.outbox.push_back(event);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }

    fn failure(&mut self, now_ms: u64, what: &str) {
        if now_ms.saturating_sub(self.last_failure_log_ms) >= LOG_EVERY_MS {
            self.last_failure_log_ms = now_ms;
            log::warn!(
                "kalguard: {what}; enforcement continues on the state in force, {} events waiting",
                self.outbox.len() + self.posting.as_ref().map_or(0, |p| p.events.len())
            );
        }
    }
}

fn call(
    key: &ChannelKey,
    cluster: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, Status> {
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
}

/// The body of the answer in hand (empty when there is none).
fn response_body(body_size: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The held snapshot's position in shared data (`None` before the first).
pub(super) fn stored_position() -> Option<Position> {
    hostcalls::get_shared_data(POSITION_KEY)
        .ok()
        .and_then(|(value, _)| value)
        .and_then(|v| std::str::from_utf8(&v).ok().and_then(Position::decode))
}

/// Whether an epoch can go into the poll's query as it is (the control plane
/// makes hex ones; anything else is left out and answered as unknown).
fn is_url_safe(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The snapshot first, then its position: a worker that sees the new position
/// always finds the snapshot it names (or a newer one). True once both are
/// stored.
fn publish(position: &Position, body: &[u8]) -> bool {
    if hostcalls::set_shared_data(STATE_KEY, Some(body), None).is_err() {
        return false;
    }
    let stored =
        hostcalls::set_shared_data(POSITION_KEY, Some(position.encode().as_bytes()), None).is_ok();
    log::info!(
        "kalguard: state version {} received from the control plane (epoch {})",
        position.version,
        position.epoch
    );
    stored
}
