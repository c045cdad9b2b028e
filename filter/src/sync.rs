//! The state channel and the event pipeline, from the filter's side: what the
//! VM holding the sync lease asks the control plane and what it makes of the
//! answers, with no host calls ([`Link`] carries them out; `host/sync.rs`
//! implements it over proxy-wasm, the tests with a fake).
//!
//! Every worker VM's root context ticks; the one holding the sync lease
//! (`crate::lease`) long-polls the control plane's `GET /v1/filter/state` and
//! stores each new snapshot in shared data, drains the shared event queue into
//! a bounded outbox and posts it in batches to `POST /v1/filter/events`. Every
//! worker reloads the snapshot when the shared position key moves.
//!
//! Every call carries the channel key; a snapshot is adopted only when its MAC
//! verifies for the nonce of the poll it answers, and it supersedes the one
//! held; a batch leaves the outbox only when the control plane's
//! acknowledgement verifies for its batch ID ([`crate::channel`] decides both).

use std::collections::VecDeque;
use std::time::Duration;

use crate::channel::{Answer, ChannelKey, Position};
use crate::event;
use crate::state::Snapshot;

/// The control plane holds a state poll up to 30 s.
const STATE_POLL_TIMEOUT: Duration = Duration::from_secs(35);
const EVENTS_TIMEOUT: Duration = Duration::from_secs(5);
/// Events kept while the control plane cannot take them; the oldest go first.
pub const OUTBOX_LIMIT: usize = 50_000;
/// Events per `POST /v1/filter/events`.
pub const BATCH: usize = 500;
/// Events moved from the shared queue per tick.
const DRAIN_PER_TICK: usize = 20_000;
/// Failures are logged at most this often.
const LOG_EVERY_MS: u64 = 30_000;

/// What the machine needs of its host: shared data, the event queue, calls to
/// the control plane's cluster, counters and the log.
pub trait Link {
    /// Claims or renews the sync lease for `me`; true while this VM holds it.
    fn claim_lease(&mut self, me: &str, now_ms: u64) -> bool;
    /// The next event of the shared queue, if any.
    fn dequeue(&mut self) -> Option<Vec<u8>>;
    /// Dispatches a call to the control plane with the channel key; its token,
    /// or why it could not leave.
    fn call(
        &mut self,
        method: &'static str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, String>;
    /// A fresh, unpredictable nonce for a state poll.
    fn nonce(&mut self) -> String;
    /// The position of the snapshot held in shared data.
    fn stored_position(&self) -> Option<Position>;
    /// Stores the snapshot, then its position; true once both are stored.
    fn publish(&mut self, position: &Position, body: &[u8]) -> bool;
    /// Counts `note` (and logs the warnings among them).
    fn note(&mut self, note: Note);
}

/// What the machine reports to its host.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// The control plane answered 401: the two keys differ.
    ChannelKeyRefused,
    /// An answer without a valid MAC for the call it answers.
    AnswerUnverified,
    /// A new snapshot was stored for every worker.
    SnapshotAdopted(Position),
    /// The outbox was full: its oldest event was dropped.
    EventDropped,
    /// A failure worth a warning (at most one per [`LOG_EVERY_MS`]).
    Warning(String),
}

/// The answer to a call, as the host read it.
pub struct Reply<'a> {
    pub status: Option<&'a str>,
    /// The `x-kalguard-mac` header (empty when absent).
    pub mac: &'a str,
    pub body: &'a [u8],
}

/// The lease holder's side of the channel, kept in one root context.
pub struct Sync {
    me: String,
    key: ChannelKey,
    holder: bool,
    /// The state poll in flight and the nonce its answer must be bound to.
    state_call: Option<(u32, String)>,
    /// The batch being posted, or waiting to be posted again after a failure
    /// (under the same ID), and the call in flight for it.
    posting: Option<Posting>,
    events_call: Option<u32>,
    batches: u64,
    outbox: VecDeque<Vec<u8>>,
    /// When the last warning was logged (`None`: never).
    last_warning_ms: Option<u64>,
}

/// One batch of events under its batch ID.
struct Posting {
    id: String,
    events: Vec<Vec<u8>>,
}

impl Sync {
    /// The machine of the VM named `me` (unique per VM: batch IDs start with it).
    pub fn new(me: String, key: ChannelKey) -> Sync {
        Sync {
            me,
            key,
            holder: false,
            state_call: None,
            posting: None,
            events_call: None,
            batches: 0,
            outbox: VecDeque::new(),
            last_warning_ms: None,
        }
    }

    /// Events waiting to be acknowledged (in the outbox and in the batch posted).
    pub fn waiting(&self) -> usize {
        self.outbox.len() + self.posting.as_ref().map_or(0, |p| p.events.len())
    }

    /// One tick: claim the lease; while held, drain the queue, poll the state
    /// and post events unless a call of each kind is in flight.
    pub fn tick(&mut self, link: &mut dyn Link, now_ms: u64) {
        self.holder = link.claim_lease(&self.me, now_ms);
        if !self.holder {
            return;
        }
        self.drain_queue(link);
        self.poll_state(link, now_ms);
        self.post_events(link, now_ms);
    }

    /// Long-polls the state unless a poll is in flight. Called on every tick,
    /// and again as soon as a poll is answered, so a new snapshot (a revoked
    /// token) is never waiting for the next tick to be asked for.
    fn poll_state(&mut self, link: &mut dyn Link, now_ms: u64) {
        if self.state_call.is_some() {
            return;
        }
        let nonce = link.nonce();
        let path = match link.stored_position() {
            Some(held) if is_url_safe(&held.epoch) => format!(
                "/v1/filter/state?version={}&epoch={}&nonce={nonce}",
                held.version, held.epoch
            ),
            _ => format!("/v1/filter/state?version=0&nonce={nonce}"),
        };
        match link.call("GET", &path, None, STATE_POLL_TIMEOUT) {
            Ok(token) => self.state_call = Some((token, nonce)),
            Err(why) => self.warn(
                link,
                now_ms,
                &format!("cannot call the control plane for the state ({why})"),
            ),
        }
    }

    /// Posts the next batch (or the one that failed, under the same ID) unless
    /// a post is in flight. Called on every tick, and again as soon as a post
    /// is acknowledged, so delivery keeps up with bursts.
    fn post_events(&mut self, link: &mut dyn Link, now_ms: u64) {
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
        let Some(posting) = &self.posting else {
            return;
        };
        let body = event::batch(&posting.id, &posting.events);
        match link.call("POST", "/v1/filter/events", Some(&body), EVENTS_TIMEOUT) {
            Ok(token) => self.events_call = Some(token),
            Err(why) => self.warn(
                link,
                now_ms,
                &format!("cannot call the control plane to post events ({why})"),
            ),
        }
    }

    /// Handles the answer to call `token` (a call of another kind is ignored).
    pub fn on_reply(&mut self, link: &mut dyn Link, token: u32, reply: &Reply, now_ms: u64) {
        if let Some((_, nonce)) = self.state_call.take_if(|(call, _)| *call == token) {
            // Poll again at once after a new snapshot or a quiet 304; anything
            // else waits for the next tick, so a confused peer cannot spin us.
            let poll_again = match reply.status {
                Some("200") => self.take_snapshot(link, &nonce, reply, now_ms),
                Some("304") => true,
                Some("401") => {
                    link.note(Note::ChannelKeyRefused);
                    self.warn(link, now_ms, "the control plane refused the channel key (401): give Envoy and the control plane the same KALGUARD_CHANNEL_KEY");
                    false
                }
                other => {
                    let status = other.unwrap_or("nothing");
                    self.warn(link, now_ms, &format!("state poll answered {status}"));
                    false
                }
            };
            if poll_again && self.holder {
                self.poll_state(link, now_ms);
            }
        } else if self.events_call == Some(token) {
            self.events_call = None;
            self.on_events_reply(link, reply, now_ms);
        }
    }

    fn on_events_reply(&mut self, link: &mut dyn Link, reply: &Reply, now_ms: u64) {
        match reply.status {
            Some("200") => {
                let acknowledged = self.posting.as_ref().is_some_and(|posting| {
                    self.key
                        .verify(Answer::EventsAck, &posting.id, reply.body, reply.mac)
                });
                if acknowledged {
                    self.posting = None;
                    self.post_events(link, now_ms);
                } else {
                    // Kept, and posted again under the same batch ID: only the
                    // control plane's own acknowledgement lets events go.
                    link.note(Note::AnswerUnverified);
                    self.warn(link, now_ms, "an event post's answer does not carry a valid MAC under KALGUARD_CHANNEL_KEY (is something else listening on the control plane's address?); the events are kept");
                }
            }
            Some("401") => {
                link.note(Note::ChannelKeyRefused);
                self.warn(link, now_ms, "the control plane refused the channel key (401) for events: give Envoy and the control plane the same KALGUARD_CHANNEL_KEY");
            }
            // Kept, and posted again under the same batch ID.
            other => {
                let status = other.unwrap_or("nothing");
                self.warn(link, now_ms, &format!("event post answered {status}"));
            }
        }
    }

    /// Adopts a state answer that verifies for `nonce` and supersedes the
    /// snapshot held; true when it was stored (poll again at once).
    fn take_snapshot(
        &mut self,
        link: &mut dyn Link,
        nonce: &str,
        reply: &Reply,
        now_ms: u64,
    ) -> bool {
        if !self
            .key
            .verify(Answer::Snapshot, nonce, reply.body, reply.mac)
        {
            link.note(Note::AnswerUnverified);
            self.warn(link, now_ms, "a state answer does not carry a valid MAC under KALGUARD_CHANNEL_KEY (is something else listening on the control plane's address?); ignored, keeping the current state");
            return false;
        }
        let Some(snapshot) = Snapshot::parse(reply.body) else {
            self.warn(
                link,
                now_ms,
                "the control plane sent a state that is not a snapshot; keeping the current one",
            );
            return false;
        };
        let position = Position {
            epoch: snapshot.epoch,
            version: snapshot.version,
        };
        let adopted = position.supersedes(link.stored_position().as_ref())
            && link.publish(&position, reply.body);
        if adopted {
            link.note(Note::SnapshotAdopted(position));
        }
        adopted
    }

    fn drain_queue(&mut self, link: &mut dyn Link) {
        for _ in 0..DRAIN_PER_TICK {
            let Some(event) = link.dequeue() else {
                break;
            };
            if self.outbox.len() >= OUTBOX_LIMIT {
                self.outbox.pop_front();
                link.note(Note::EventDropped);
            }
            self.outbox.push_back(event);
        }
    }

    fn warn(&mut self, link: &mut dyn Link, now_ms: u64, what: &str) {
        let due = self
            .last_warning_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= LOG_EVERY_MS);
        if due {
            self.last_warning_ms = Some(now_ms);
            link.note(Note::Warning(format!(
                "kalguard: {what}; enforcement continues on the state in force, {} events waiting",
                self.waiting()
            )));
        }
    }
}

/// Whether an epoch can go into the poll's query as it is (the control plane
/// makes hex ones; anything else is left out and answered as unknown).
fn is_url_safe(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests;
