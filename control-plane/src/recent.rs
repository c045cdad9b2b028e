//! The `batchId`s of recent `POST /v1/filter/events` requests, so a request the
//! filter retries after a lost answer is recorded once. Kept in memory and in
//! `<data dir>/filter-batches.log` (one ID per line, fsync'd), so a retry after a
//! control-plane restart is recognised too.

use crate::fsutil::{open_append, write_atomically, FileError, FileOp};
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RecentBatches {
    path: PathBuf,
    file: File,
    order: VecDeque<String>,
    seen: HashSet<String>,
    capacity: usize,
    lines_in_file: usize,
}

impl RecentBatches {
    /// Opens the log, remembering its last `capacity` IDs (a torn last line is ignored).
    pub fn open(path: &Path, capacity: usize) -> Result<Self, FileError> {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(FileError::at(FileOp::Read, path)(e)),
        };
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let ids: Vec<&str> = complete.lines().filter(|l| !l.is_empty()).collect();
        let mut recent = Self {
            path: path.to_owned(),
            file: open_append(path)?,
            order: VecDeque::with_capacity(capacity),
            seen: HashSet::with_capacity(capacity),
            capacity: capacity.max(1),
            lines_in_file: ids.len(),
        };
        for id in ids.iter().skip(ids.len().saturating_sub(recent.capacity)) {
            recent.remember((*id).to_owned());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            recent.compact()?;
        }
        Ok(recent)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// Records an ID durably.
    pub fn insert(&mut self, id: &str) -> Result<(), FileError> {
        self.file
            .write_all(format!("{id}\n").as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(FileError::at(FileOp::Write, &self.path))?;
        self.lines_in_file += 1;
        self.remember(id.to_owned());
        if self.lines_in_file > 2 * self.capacity {
            self.compact()?;
        }
        Ok(())
    }

    fn remember(&mut self, id: String) {
        if self.seen.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// Rewrites the file with only the remembered IDs.
    fn compact(&mut self) -> Result<(), FileError> {
        let mut text = String::new();
        for id in &self.order {
            text.push_str(id);
            text.push('\n');
        }
        write_atomically(&self.path, text.as_bytes())?;
        self.file = open_append(&self.path)?;
        self.lines_in_file = self.order.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[test]
    fn remembers_across_reopen_and_forgets_the_oldest() {
        let dir = crate::fsutil::test_dir("recent");
        let path = dir.join("filter-batches.log");
        let mut recent = RecentBatches::open(&path, 3).unwrap();
        for id in ["a", "b", "c", "d"] {
            recent.insert(id).unwrap();
        }
        assert!(!recent.contains("a") && recent.contains("d"));
        let reopened = RecentBatches::open(&path, 3).unwrap();
        assert!(!reopened.contains("a"));
        assert!(reopened.contains("b") && reopened.contains("d"));
    }

    #[test]
    fn the_file_is_compacted_and_a_torn_line_ignored() {
        let dir = crate::fsutil::test_dir("recent-compact");
        let path = dir.join("filter-batches.log");
        let mut recent = RecentBatches::open(&path, 2).unwrap();
        for n in 0..10 {
            recent.insert(&format!("id{n}")).unwrap();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 4, "{lines} lines");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"id-tor").unwrap();
        let reopened = RecentBatches::open(&path, 2).unwrap();
        assert!(reopened.contains("id9") && !reopened.contains("id-tor"));
        assert!(std::fs::read_to_string(&path).unwrap().ends_with('\n'));
    }
}
