//! The channel machine against a fake host: what it asks, what it adopts,
//! what it keeps.

use super::*;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn key() -> ChannelKey {
    ChannelKey::parse(Some(KEY)).unwrap()
}

/// A host that records calls and serves shared data from memory.
#[derive(Default)]
struct Fake {
    lease: bool,
    queue: VecDeque<Vec<u8>>,
    calls: Vec<(u32, &'static str, String, Option<Vec<u8>>)>,
    refuse_calls: bool,
    position: Option<Position>,
    stored: Option<Vec<u8>>,
    notes: Vec<Note>,
    nonces: u32,
}

impl Link for Fake {
    fn claim_lease(&mut self, _me: &str, _now_ms: u64) -> bool {
        self.lease
    }
    fn dequeue(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }
    fn call(
        &mut self,
        method: &'static str,
        path: &str,
        body: Option<&[u8]>,
        _timeout: Duration,
    ) -> Result<u32, String> {
        if self.refuse_calls {
            return Err("BadArgument".into());
        }
        let token = u32::try_from(self.calls.len()).unwrap() + 1;
        self.calls
            .push((token, method, path.to_owned(), body.map(<[u8]>::to_vec)));
        Ok(token)
    }
    fn nonce(&mut self) -> String {
        self.nonces += 1;
        format!("n{}", self.nonces)
    }
    fn stored_position(&self) -> Option<Position> {
        self.position.clone()
    }
    fn publish(&mut self, position: &Position, body: &[u8]) -> bool {
        self.position = Some(position.clone());
        self.stored = Some(body.to_vec());
        true
    }
    fn note(&mut self, note: Note) {
        self.notes.push(note);
    }
}

impl Fake {
    fn holding() -> Fake {
        Fake {
            lease: true,
            ..Fake::default()
        }
    }
    fn last_call(&self, method: &str) -> (u32, String, Option<Vec<u8>>) {
        let (token, _, path, body) = self
            .calls
            .iter()
            .rev()
            .find(|(_, m, _, _)| *m == method)
            .unwrap()
            .clone();
        (token, path, body)
    }
    fn count(&self, method: &str) -> usize {
        self.calls
            .iter()
            .filter(|(_, m, _, _)| *m == method)
            .count()
    }
}

/// A local-mode snapshot at `epoch`, `version`.
fn snapshot(epoch: &str, version: u64) -> Vec<u8> {
    let json = serde_json::json!({"version": version, "epoch": epoch, "mode": "local",
        "limits": {"checksPerDay": -1, "maxAgents": -1, "auditRetentionDays": 30, "features": []},
        "checksReported": 0, "signingSecrets": ["s"], "revokedTokenHashes": [],
        "defaultAgentToken": null, "policy": null, "firewall": null});
    let body = serde_json::to_vec(&json).unwrap();
    assert!(Snapshot::parse(&body).is_some());
    body
}

fn nonce_of(path: &str) -> &str {
    path.rsplit("nonce=").next().unwrap()
}

fn answer(m: &mut Sync, link: &mut Fake, token: u32, status: &str, mac: &str, body: &[u8]) {
    let reply = Reply {
        status: Some(status),
        mac,
        body,
    };
    m.on_reply(link, token, &reply, 1_000);
}

#[test]
fn only_the_lease_holder_calls_the_control_plane() {
    let mut link = Fake::default();
    link.queue.push_back(b"{}".to_vec());
    let mut m = Sync::new("root-a".into(), key());
    m.tick(&mut link, 0);
    assert!(link.calls.is_empty());
    assert_eq!(link.queue.len(), 1, "the queue is left to the holder");
    link.lease = true;
    m.tick(&mut link, 500);
    assert_eq!(link.count("GET"), 1);
    assert_eq!(link.count("POST"), 1);
    // A poll and a post in flight: the next tick asks nothing more.
    m.tick(&mut link, 1_000);
    assert_eq!(link.calls.len(), 2);
}

#[test]
fn a_snapshot_is_adopted_only_with_the_mac_of_its_own_poll() {
    let k = key();
    let mut link = Fake::holding();
    let mut m = Sync::new("root-a".into(), key());
    m.tick(&mut link, 0);
    let (token, path, _) = link.last_call("GET");
    assert!(
        path.starts_with("/v1/filter/state?version=0&nonce="),
        "{path}"
    );
    let body = snapshot("e1", 3);
    // Signed for another poll's nonce, or by another key: ignored, counted.
    let other = k.mac(Answer::Snapshot, "n999", &body);
    answer(&mut m, &mut link, token, "200", &other, &body);
    assert!(link.stored.is_none());
    assert!(link.notes.contains(&Note::AnswerUnverified));
    // Not asked again at once: a confused peer cannot make it spin.
    assert_eq!(link.count("GET"), 1);
    m.tick(&mut link, 500);
    let (token, path, _) = link.last_call("GET");
    let good = k.mac(Answer::Snapshot, nonce_of(&path), &body);
    answer(&mut m, &mut link, token, "200", &good, &body);
    assert_eq!(link.stored.as_deref(), Some(&body[..]));
    assert!(link
        .notes
        .iter()
        .any(|n| matches!(n, Note::SnapshotAdopted(p) if p.version == 3)));
    // Asked again at once, naming what it holds.
    let (_, path, _) = link.last_call("GET");
    assert!(
        path.starts_with("/v1/filter/state?version=3&epoch=e1&nonce="),
        "{path}"
    );
}

#[test]
fn an_older_snapshot_of_the_same_epoch_is_not_adopted() {
    let k = key();
    let mut link = Fake::holding();
    link.position = Some(Position {
        epoch: "e1".into(),
        version: 5,
    });
    let mut m = Sync::new("root-a".into(), key());
    m.tick(&mut link, 0);
    let (token, path, _) = link.last_call("GET");
    let body = snapshot("e1", 4);
    let mac = k.mac(Answer::Snapshot, nonce_of(&path), &body);
    answer(&mut m, &mut link, token, "200", &mac, &body);
    assert!(link.stored.is_none());
    // A restarted control plane (another epoch) is adopted whatever its version.
    m.tick(&mut link, 500);
    let (token, path, _) = link.last_call("GET");
    let body = snapshot("e2", 1);
    let mac = k.mac(Answer::Snapshot, nonce_of(&path), &body);
    answer(&mut m, &mut link, token, "200", &mac, &body);
    assert_eq!(link.position.as_ref().map(|p| p.version), Some(1));
}

#[test]
fn events_leave_only_on_the_control_planes_signed_acknowledgement() {
    let k = key();
    let mut link = Fake::holding();
    for i in 0..(BATCH + 3) {
        link.queue.push_back(format!("{{\"n\":{i}}}").into_bytes());
    }
    let mut m = Sync::new("root-a".into(), key());
    m.tick(&mut link, 0);
    let (token, _, body) = link.last_call("POST");
    let posted: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(posted["batchId"], "root-a-1");
    assert_eq!(posted["events"].as_array().unwrap().len(), BATCH);
    // A 200 without the MAC (a squatter), a 503, a 401: kept, posted again
    // under the same batch ID.
    answer(&mut m, &mut link, token, "200", "", b"{}");
    m.tick(&mut link, 500);
    let (token, _, body) = link.last_call("POST");
    let again: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(again, posted);
    answer(&mut m, &mut link, token, "503", "", b"");
    m.tick(&mut link, 1_000);
    let (token, _, _) = link.last_call("POST");
    answer(&mut m, &mut link, token, "401", "", b"");
    assert!(link.notes.contains(&Note::ChannelKeyRefused));
    assert_eq!(m.waiting(), BATCH + 3);
    m.tick(&mut link, 1_500);
    let (token, _, _) = link.last_call("POST");
    // The acknowledgement of another batch does not let this one go.
    let wrong = k.mac(Answer::EventsAck, "root-a-2", b"{}");
    answer(&mut m, &mut link, token, "200", &wrong, b"{}");
    assert_eq!(m.waiting(), BATCH + 3);
    m.tick(&mut link, 2_000);
    let (token, _, _) = link.last_call("POST");
    let ack = k.mac(Answer::EventsAck, "root-a-1", b"{}");
    answer(&mut m, &mut link, token, "200", &ack, b"{}");
    // The rest goes at once, as the next batch.
    assert_eq!(m.waiting(), 3);
    let (_, _, body) = link.last_call("POST");
    let next: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(next["batchId"], "root-a-2");
    assert_eq!(next["events"].as_array().unwrap().len(), 3);
}

#[test]
fn a_full_outbox_drops_its_oldest_events_and_counts_them() {
    let mut link = Fake::holding();
    link.refuse_calls = true;
    let mut m = Sync::new("root-a".into(), key());
    // The outbox holds OUTBOX_LIMIT beside the batch being posted.
    let extra = 7;
    for i in 0..(OUTBOX_LIMIT + BATCH + extra) {
        link.queue.push_back(i.to_string().into_bytes());
    }
    for t in 0..4 {
        m.tick(&mut link, t * 500);
    }
    assert_eq!(m.waiting(), OUTBOX_LIMIT + BATCH);
    let dropped = link
        .notes
        .iter()
        .filter(|n| **n == Note::EventDropped)
        .count();
    assert_eq!(dropped, extra);
    // Failing calls warn at most once per 30 s, whatever the tick rate.
    let warnings = link
        .notes
        .iter()
        .filter(|n| matches!(n, Note::Warning(_)))
        .count();
    assert_eq!(warnings, 1);
    m.tick(&mut link, 31_000);
    let warnings = link
        .notes
        .iter()
        .filter(|n| matches!(n, Note::Warning(w) if w.contains(&format!("{} events waiting", OUTBOX_LIMIT + BATCH))))
        .count();
    assert_eq!(warnings, 1);
}

#[test]
fn a_stray_answer_changes_nothing() {
    let mut link = Fake::holding();
    let mut m = Sync::new("root-a".into(), key());
    m.tick(&mut link, 0);
    let calls = link.calls.len();
    answer(&mut m, &mut link, 999, "200", "", &snapshot("e9", 9));
    assert!(link.stored.is_none() && link.notes.is_empty());
    assert_eq!(link.calls.len(), calls);
}
