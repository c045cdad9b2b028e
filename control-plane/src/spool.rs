//! The usage spool: usage events waiting for the Cloud, on disk under
//! `<data dir>/spool/`, so nothing is lost to an outage or a restart.
//!
//! Events are appended (and fsync'd) to `open.jsonl`, one JSON line each.
//! A full segment, or the reporter, *seals* it: it is renamed to
//! `batch-<seq>-<batchId>.jsonl`, and from then on it is sent to the Cloud as one
//! batch under that `batchId` until the Cloud accepts it, then deleted. A batch
//! re-sent after a failure or a restart carries the same `batchId`, so the Cloud
//! counts it once. At start an `open.jsonl` left by a crash is sealed (a torn
//! last line, never acknowledged to the filter, is dropped).
//!
//! The spool is bounded ([`Spool::max_events`]); past the bound new events are
//! dropped, counted, and logged once per episode.

use crate::events::UsageEvent;
use crate::fsutil::{create_dir, open_append, sync_dir, write_atomically, FileError, FileOp};
use rand::Rng;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const OPEN_SEGMENT: &str = "open.jsonl";

/// Why the spool could not store, seal, read or remove events.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot encode a usage event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The blocking task that held the spool did not finish.
    #[error("a disk task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A sealed batch waiting for the Cloud.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub seq: u64,
    pub batch_id: String,
    pub path: PathBuf,
    pub count: usize,
}

/// What an append did.
#[derive(Debug, PartialEq)]
pub struct Appended {
    pub stored: usize,
    pub dropped: usize,
}

pub struct Spool {
    dir: PathBuf,
    open: Option<File>,
    open_count: usize,
    sealed: VecDeque<Batch>,
    next_seq: u64,
    depth: usize,
    max_events: usize,
    seal_at: usize,
    full: bool,
}

impl Spool {
    /// Opens (and recovers) the spool in `dir`; holds at most `max_events`,
    /// seals a segment once it holds `seal_at` events.
    pub fn open(dir: &Path, max_events: usize, seal_at: usize) -> Result<Self, SpoolError> {
        create_dir(dir)?;
        let mut spool = Self {
            dir: dir.to_owned(),
            open: None,
            open_count: 0,
            sealed: VecDeque::new(),
            next_seq: 1,
            depth: 0,
            max_events,
            seal_at: seal_at.max(1),
            full: false,
        };
        let entries = std::fs::read_dir(dir).map_err(FileError::at(FileOp::List, dir))?;
        for entry in entries {
            let path = entry.map_err(FileError::at(FileOp::List, dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some((seq, batch_id)) = parse_batch_name(name) {
                let count = read_events(&path)?.len();
                spool.sealed.push_back(Batch {
                    seq,
                    batch_id,
                    path,
                    count,
                });
            } else if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
            }
        }
        spool.sealed.make_contiguous().sort_by_key(|b| b.seq);
        spool.next_seq = spool.sealed.back().map_or(1, |b| b.seq + 1);
        spool.depth = spool.sealed.iter().map(|b| b.count).sum();
        spool.recover_open_segment()?;
        Ok(spool)
    }

    pub fn max_events(&self) -> usize {
        self.max_events
    }

    /// Events waiting (sealed and open).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Appends events durably (fsync'd before returning).
    pub fn append(&mut self, events: &[UsageEvent]) -> Result<Appended, SpoolError> {
        let room = self.max_events.saturating_sub(self.depth);
        let stored = events.len().min(room);
        let dropped = events.len() - stored;
        if dropped > 0 && !self.full {
            self.full = true;
            tracing::error!(
                "usage spool {} is full ({} events): new usage events are dropped until the \
                 Cloud accepts the backlog (see kalguard_spool_dropped_events_total)",
                self.dir.display(),
                self.max_events
            );
        }
        if stored == 0 {
            return Ok(Appended { stored, dropped });
        }
        let mut lines = Vec::with_capacity(stored * 200);
        for event in &events[..stored] {
            serde_json::to_writer(&mut lines, event)?;
            lines.push(b'\n');
        }
        let path = self.dir.join(OPEN_SEGMENT);
        let file = match &mut self.open {
            Some(file) => file,
            None => {
                let file = open_append(&path)?;
                sync_dir(&path)?;
                self.open.insert(file)
            }
        };
        file.write_all(&lines)
            .and_then(|()| file.sync_data())
            .map_err(FileError::at(FileOp::Write, &path))?;
        self.open_count += stored;
        self.depth += stored;
        if self.open_count >= self.seal_at {
            self.seal()?;
        }
        Ok(Appended { stored, dropped })
    }

    /// Seals the open segment into a batch, if it holds any event.
    pub fn seal(&mut self) -> Result<(), SpoolError> {
        if self.open_count == 0 {
            return Ok(());
        }
        self.open = None;
        let from = self.dir.join(OPEN_SEGMENT);
        let batch = self.new_batch(self.open_count);
        std::fs::rename(&from, &batch.path)
            .map_err(FileError::at(FileOp::Rename(batch.path.clone()), &from))?;
        sync_dir(&batch.path)?;
        self.open_count = 0;
        self.sealed.push_back(batch);
        Ok(())
    }

    /// The oldest sealed batch.
    pub fn oldest(&self) -> Option<Batch> {
        self.sealed.front().cloned()
    }

    /// Removes a batch the Cloud accepted (or rejected for good).
    pub fn remove(&mut self, batch: &Batch) -> Result<(), SpoolError> {
        std::fs::remove_file(&batch.path)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(FileError::at(FileOp::Remove, &batch.path))?;
        self.sealed.retain(|b| b.seq != batch.seq);
        self.depth = self.depth.saturating_sub(batch.count);
        if self.full && self.depth < self.max_events {
            self.full = false;
            tracing::info!(
                "usage spool {} has room again ({} events waiting)",
                self.dir.display(),
                self.depth
            );
        }
        Ok(())
    }

    /// Moves a batch the Cloud will never accept to `rejected/`, for an operator to read.
    pub fn set_aside(&mut self, batch: &Batch) -> Result<PathBuf, SpoolError> {
        let rejected = self.dir.join("rejected");
        create_dir(&rejected)?;
        let to = rejected.join(batch.path.file_name().unwrap_or_default());
        std::fs::rename(&batch.path, &to)
            .map_err(FileError::at(FileOp::Rename(to.clone()), &batch.path))?;
        self.remove(batch)?;
        Ok(to)
    }

    fn new_batch(&mut self, count: usize) -> Batch {
        let seq = self.next_seq;
        self.next_seq += 1;
        let batch_id = format!("b_{:032x}", rand::thread_rng().gen::<u128>());
        Batch {
            seq,
            path: self.dir.join(format!("batch-{seq:020}-{batch_id}.jsonl")),
            batch_id,
            count,
        }
    }

    /// Seals what a previous process left in `open.jsonl`, dropping a torn last line.
    fn recover_open_segment(&mut self) -> Result<(), SpoolError> {
        let path = self.dir.join(OPEN_SEGMENT);
        if !path.exists() {
            return Ok(());
        }
        let events = read_events(&path)?;
        if !events.is_empty() {
            let mut lines = Vec::new();
            for event in &events {
                serde_json::to_writer(&mut lines, event)?;
                lines.push(b'\n');
            }
            let batch = self.new_batch(events.len());
            write_atomically(&batch.path, &lines)?;
            self.depth += batch.count;
            self.sealed.push_back(batch);
        }
        std::fs::remove_file(&path).map_err(FileError::at(FileOp::Remove, &path))?;
        Ok(())
    }
}

/// The events of a segment: every complete line that parses (a crash can tear
/// only the last line, which the filter was never told was stored).
pub fn read_events(path: &Path) -> Result<Vec<UsageEvent>, SpoolError> {
    let bytes = std::fs::read(path).map_err(FileError::at(FileOp::Read, path))?;
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &[][..],
    };
    let mut events = Vec::new();
    for (number, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(event) => events.push(event),
            Err(e) => tracing::error!(
                "{} line {} is not a usage event, skipped: {e}",
                path.display(),
                number + 1
            ),
        }
    }
    Ok(events)
}

fn parse_batch_name(name: &str) -> Option<(u64, String)> {
    let rest = name.strip_prefix("batch-")?.strip_suffix(".jsonl")?;
    let (seq, batch_id) = rest.split_once('-')?;
    Some((seq.parse().ok()?, batch_id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalguard_wire::event::{Decision, EventType};

    fn event(n: u64) -> UsageEvent {
        UsageEvent {
            event_type: EventType::PromptCheck,
            agent_id: "a".into(),
            decision: Decision::Allow,
            error_code: None,
            timestamp: n,
            request_id: format!("req_{n}"),
            metadata: Default::default(),
            categories: Vec::new(),
        }
    }

    #[test]
    fn seals_full_segments_and_survives_a_restart() {
        let dir = crate::fsutil::test_dir("spool-restart");
        let mut spool = Spool::open(&dir, 100, 3).unwrap();
        for n in 0..5 {
            spool.append(&[event(n)]).unwrap();
        }
        assert_eq!(spool.depth(), 5);
        let first = spool.oldest().unwrap();
        assert_eq!(first.count, 3);
        drop(spool);
        let mut reopened = Spool::open(&dir, 100, 3).unwrap();
        assert_eq!(reopened.depth(), 5);
        assert_eq!(
            reopened.oldest().unwrap(),
            first,
            "same batch ID after a restart"
        );
        reopened.remove(&first).unwrap();
        let second = reopened.oldest().unwrap();
        assert_eq!(second.count, 2, "the open segment was sealed at start");
        let ids: Vec<_> = read_events(&second.path)
            .unwrap()
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        assert_eq!(ids, ["req_3", "req_4"]);
    }

    #[test]
    fn a_torn_last_line_is_dropped() {
        let dir = crate::fsutil::test_dir("spool-torn");
        let line = serde_json::to_string(&event(1)).unwrap();
        std::fs::write(dir.join(OPEN_SEGMENT), format!("{line}\n{{\"eventTy")).unwrap();
        let spool = Spool::open(&dir, 100, 10).unwrap();
        assert_eq!(spool.depth(), 1);
    }

    #[test]
    fn the_bound_drops_and_counts() {
        let dir = crate::fsutil::test_dir("spool-bound");
        let mut spool = Spool::open(&dir, 3, 10).unwrap();
        let appended = spool
            .append(&[event(1), event(2), event(3), event(4)])
            .unwrap();
        assert_eq!(
            appended,
            Appended {
                stored: 3,
                dropped: 1
            }
        );
        assert_eq!(spool.append(&[event(5)]).unwrap().dropped, 1);
        spool.seal().unwrap();
        let batch = spool.oldest().unwrap();
        spool.remove(&batch).unwrap();
        assert_eq!(spool.append(&[event(6)]).unwrap().stored, 1);
    }
}
