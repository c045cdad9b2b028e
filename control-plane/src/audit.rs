//! The audit log: every decision the filter reports, one JSON line each, in
//! `KALGUARD_AUDIT_LOG_PATH` (default `<data dir>/audit.jsonl`).
//!
//! Each record is `{"seq", "recordedAt", "event", "prevHash", "hash"}`: `event`
//! is the filter's event as [`crate::events`] defines it (no prompt text, no
//! token), `prevHash` the previous record's `hash` (64 zeros for the first), and
//! `hash` the lowercase hex SHA-256 of the record without `hash`, serialised
//! with sorted keys and no spaces. Changing, removing or reordering a record
//! breaks the chain, which `kalguard audit verify` reports.
//!
//! Rotation: the active file holds one UTC day. The first record of a new day
//! renames it to `<path>.<YYYY-MM-DD>` (the day of its records); the chain runs
//! on across files. Rotated files older than the plan's `auditRetentionDays` are
//! deleted (never in local mode unless configured). After such a deletion the
//! oldest remaining record's `prevHash` is not zeros: `verify` says so.

use crate::clock::{date_of_day, day_of, day_of_date, now_ms};
use crate::fsutil::{create_dir, open_append, sync_dir, FileError, FileOp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `prevHash` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the audit log could not be opened or written, or why `verify` found
/// it broken. Each names the file (and line) at fault.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log: {0}")]
    File(#[from] FileError),
    #[error("no audit log at {}", .0.display())]
    Missing(PathBuf),
    /// The last record (where the chain continues) cannot be read.
    #[error("audit log {}: the last record {why}; run `kalguard audit verify`", .path.display())]
    BadTail { path: PathBuf, why: &'static str },
    #[error("{}: the last line is incomplete (a crash while writing; `kalguard serve` cuts it at start)", .0.display())]
    TornTail(PathBuf),
    /// A record that breaks the chain, at `file:line`.
    #[error("{at}: {problem}")]
    Broken { at: String, problem: Break },
}

/// How a record breaks the chain.
#[derive(Debug, thiserror::Error)]
pub enum Break {
    #[error("not a JSON record: {0}")]
    NotJson(serde_json::Error),
    #[error("the record lacks seq, prevHash or hash")]
    Incomplete,
    #[error("record {0} was altered (its hash does not match its content)")]
    Altered(u64),
    #[error("record {seq} does not follow record {previous} (a record was removed, inserted or reordered)")]
    OutOfChain { seq: u64, previous: u64 },
    #[error("sequence jumps from {previous} to {seq}")]
    SequenceJump { seq: u64, previous: u64 },
}

pub struct AuditLog {
    path: PathBuf,
    file: File,
    last_hash: String,
    next_seq: u64,
    /// UTC day of the records in the active file (`None` while it is empty).
    file_day: Option<u64>,
}

/// The last record of a file: where the chain continues.
#[derive(Clone)]
struct Tail {
    seq: u64,
    hash: String,
    day: u64,
}

impl AuditLog {
    /// Opens the log, cutting a torn last line a crash may have left (it was
    /// never acknowledged to the filter), and continues its chain.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir(parent)?;
        }
        cut_torn_line(path)?;
        let active_tail = last_record(path)?;
        let tail = match &active_tail {
            Some(tail) => Some(tail.clone()),
            None => match rotated_files(path)?.last() {
                Some((_, rotated)) => last_record(rotated)?,
                None => None,
            },
        };
        let file = open_append(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            last_hash: tail
                .as_ref()
                .map_or_else(|| GENESIS.to_owned(), |t| t.hash.clone()),
            next_seq: tail.as_ref().map_or(1, |t| t.seq + 1),
            file_day: active_tail.map(|t| t.day),
        })
    }

    /// Appends one record per event (a filter's decision, an approval),
    /// fsync'd. `retention_days` < 1 keeps every file.
    pub fn append<E: serde::Serialize>(
        &mut self,
        events: &[E],
        retention_days: i64,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let today = day_of(now);
        if self.file_day.is_some_and(|day| day != today) {
            self.rotate(retention_days)?;
        }
        let mut lines = String::with_capacity(events.len() * 400);
        let mut hash = self.last_hash.clone();
        for (offset, event) in events.iter().enumerate() {
            let mut record = json!({
                "seq": self.next_seq + offset as u64,
                "recordedAt": now,
                "event": event,
                "prevHash": hash,
            });
            hash = record_hash(&record);
            if let Value::Object(map) = &mut record {
                map.insert("hash".to_owned(), Value::String(hash.clone()));
            }
            lines.push_str(&record.to_string());
            lines.push('\n');
        }
        self.file
            .write_all(lines.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(FileError::at(FileOp::Write, &self.path))?;
        self.next_seq += events.len() as u64;
        self.last_hash = hash;
        self.file_day = Some(today);
        Ok(())
    }

    fn rotate(&mut self, retention_days: i64) -> Result<(), AuditError> {
        let Some(day) = self.file_day else {
            return Ok(());
        };
        let base = format!("{}.{}", self.path.display(), date_of_day(day));
        let mut to = PathBuf::from(&base);
        let mut n = 1;
        while to.exists() {
            to = PathBuf::from(format!("{base}.{n}"));
            n += 1;
        }
        std::fs::rename(&self.path, &to)
            .map_err(FileError::at(FileOp::Rename(to.clone()), &self.path))?;
        self.file = open_append(&self.path)?;
        sync_dir(&self.path)?;
        self.file_day = None;
        tracing::info!("audit log rotated to {}", to.display());
        enforce_retention(&self.path, retention_days);
        Ok(())
    }
}

/// Deletes rotated files whose day is more than `retention_days` ago.
pub fn enforce_retention(path: &Path, retention_days: i64) {
    let Ok(days) = u64::try_from(retention_days) else {
        return;
    };
    if days == 0 {
        return;
    }
    let oldest_kept = day_of(now_ms()).saturating_sub(days);
    let files = match rotated_files(path) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!("audit retention: {e}");
            return;
        }
    };
    for (day, file) in files {
        if day < oldest_kept {
            match std::fs::remove_file(&file) {
                Ok(()) => {
                    tracing::info!("audit retention ({days} days): removed {}", file.display())
                }
                Err(e) => tracing::warn!("audit retention: cannot remove {}: {e}", file.display()),
            }
        }
    }
}

/// Rotated files of the log at `path`, oldest first, with their day.
fn rotated_files(path: &Path) -> Result<Vec<(u64, PathBuf)>, FileError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FileError::at(FileOp::List, &dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let (date, suffix) = match rest.split_once('.') {
            Some((date, n)) => (date, n.parse::<u32>().ok()),
            None => (rest, Some(0)),
        };
        if let (Some(day), Some(n)) = (day_of_date(date), suffix) {
            files.push(((day, n), entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|((day, _), p)| (day, p)).collect())
}

/// SHA-256 (lowercase hex) of a record without its `hash`, keys sorted.
fn record_hash(record: &Value) -> String {
    let mut canonical_text = String::new();
    canonical(record, &mut canonical_text);
    format!("{:x}", Sha256::digest(canonical_text.as_bytes()))
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| *k != "hash").collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Truncates the file after its last newline (a crash can tear only the last line).
fn cut_torn_line(path: &Path) -> Result<(), FileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(FileError::at(FileOp::Read, path)(e)),
    };
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if keep == bytes.len() {
        return Ok(());
    }
    tracing::warn!(
        "audit log {}: dropping an incomplete last line ({} bytes) left by a crash",
        path.display(),
        bytes.len() - keep
    );
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(keep as u64).and_then(|()| f.sync_all()))
        .map_err(FileError::at(FileOp::Write, path))
}

fn last_record(path: &Path) -> Result<Option<Tail>, AuditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::at(FileOp::Read, path)(e).into()),
    };
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let bad_tail = |why| AuditError::BadTail {
        path: path.to_owned(),
        why,
    };
    let record: Value = serde_json::from_str(line).map_err(|_| bad_tail("is not JSON"))?;
    match (
        record["seq"].as_u64(),
        record["hash"].as_str(),
        record["recordedAt"].as_u64(),
    ) {
        (Some(seq), Some(hash), Some(at)) => Ok(Some(Tail {
            seq,
            hash: hash.to_owned(),
            day: day_of(at),
        })),
        _ => Err(bad_tail("lacks seq, hash or recordedAt")),
    }
}

/// What `kalguard audit verify` found in an intact chain.
#[derive(Debug)]
pub struct Verified {
    pub records: u64,
    pub files: usize,
    pub first_seq: Option<u64>,
    /// The chain starts after records removed by retention.
    pub starts_mid_chain: bool,
    pub last_hash: String,
}

/// Checks the whole chain: rotated files oldest first, then the active file.
/// The error names the file and line of the first break.
pub fn verify(path: &Path) -> Result<Verified, AuditError> {
    let mut files: Vec<PathBuf> = rotated_files(path)?.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        files.push(path.to_owned());
    }
    if files.is_empty() {
        return Err(AuditError::Missing(path.to_owned()));
    }
    let mut verified = Verified {
        records: 0,
        files: files.len(),
        first_seq: None,
        starts_mid_chain: false,
        last_hash: GENESIS.to_owned(),
    };
    let mut last_seq = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(FileError::at(FileOp::Read, file))?;
        if !text.is_empty() && !text.ends_with('\n') {
            return Err(AuditError::TornTail(file.clone()));
        }
        for (index, line) in text.lines().enumerate() {
            let broken = |problem| AuditError::Broken {
                at: format!("{}:{}", file.display(), index + 1),
                problem,
            };
            let record: Value =
                serde_json::from_str(line).map_err(|e| broken(Break::NotJson(e)))?;
            let (Some(seq), Some(prev), Some(hash)) = (
                record["seq"].as_u64(),
                record["prevHash"].as_str(),
                record["hash"].as_str(),
            ) else {
                return Err(broken(Break::Incomplete));
            };
            if record_hash(&record) != hash {
                return Err(broken(Break::Altered(seq)));
            }
            match verified.first_seq {
                None => {
                    verified.first_seq = Some(seq);
                    verified.starts_mid_chain = prev != GENESIS || seq != 1;
                }
                Some(_) => {
                    if prev != verified.last_hash {
                        return Err(broken(Break::OutOfChain {
                            seq,
                            previous: last_seq,
                        }));
                    }
                    if seq != last_seq + 1 {
                        return Err(broken(Break::SequenceJump {
                            seq,
                            previous: last_seq,
                        }));
                    }
                }
            }
            last_seq = seq;
            verified.last_hash = hash.to_owned();
            verified.records += 1;
        }
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{parse_batch, FilterEvent};

    fn events(n: usize) -> Vec<FilterEvent> {
        let one = r#"{"eventType":"tool_check","agentId":"a","decision":"allow","requestId":"r","timestamp":1,"metadata":{"riskScore":0.25,"n":3}}"#;
        parse_batch(format!("[{}]", vec![one; n].join(",")).as_bytes())
            .unwrap()
            .valid
    }

    #[test]
    fn the_chain_continues_across_restarts_and_verifies() {
        let dir = crate::fsutil::test_dir("audit-chain");
        let path = dir.join("audit.jsonl");
        AuditLog::open(&path)
            .unwrap()
            .append(&events(3), -1)
            .unwrap();
        AuditLog::open(&path)
            .unwrap()
            .append(&events(2), -1)
            .unwrap();
        let verified = verify(&path).unwrap();
        assert_eq!(verified.records, 5);
        assert!(!verified.starts_mid_chain);
    }

    #[test]
    fn tampering_is_detected() {
        let dir = crate::fsutil::test_dir("audit-tamper");
        let path = dir.join("audit.jsonl");
        AuditLog::open(&path)
            .unwrap()
            .append(&events(4), -1)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let altered = text.replacen("\"allow\"", "\"deny\"", 1);
        std::fs::write(&path, &altered).unwrap();
        assert!(verify(&path)
            .unwrap_err()
            .to_string()
            .contains("audit.jsonl:1: record 1 was altered"));
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(1);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        assert!(verify(&path)
            .unwrap_err()
            .to_string()
            .contains("audit.jsonl:2"));
    }

    #[test]
    fn rotated_files_chain_and_expire() {
        let dir = crate::fsutil::test_dir("audit-rotate");
        let path = dir.join("audit.jsonl");
        let mut log = AuditLog::open(&path).unwrap();
        log.append(&events(2), -1).unwrap();
        // Pretend the active file holds an old day's records.
        log.file_day = Some(day_of(now_ms()) - 30);
        log.append(&events(1), -1).unwrap();
        let rotated = rotated_files(&path).unwrap();
        assert_eq!(rotated.len(), 1);
        assert_eq!(verify(&path).unwrap().records, 3);
        enforce_retention(&path, 7);
        assert!(
            rotated_files(&path).unwrap().is_empty(),
            "30 days old, 7 kept"
        );
        let verified = verify(&path).unwrap();
        assert_eq!(verified.records, 1);
        assert!(verified.starts_mid_chain);
    }

    #[test]
    fn a_torn_line_is_cut_at_open() {
        let dir = crate::fsutil::test_dir("audit-torn");
        let path = dir.join("audit.jsonl");
        AuditLog::open(&path)
            .unwrap()
            .append(&events(2), -1)
            .unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":3,\"reco").unwrap();
        assert!(verify(&path).is_err());
        AuditLog::open(&path)
            .unwrap()
            .append(&events(1), -1)
            .unwrap();
        assert_eq!(verify(&path).unwrap().records, 3);
    }
}
