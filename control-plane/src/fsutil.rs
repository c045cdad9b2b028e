//! Durable file writes: data is fsync'd, and so is the directory entry; and
//! [`FileError`], the error of every file operation the control plane makes,
//! naming the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What was being done to a file when it failed.
#[derive(Debug)]
pub enum FileOp {
    CreateDir,
    List,
    Open,
    Read,
    Write,
    Remove,
    SyncDir,
    /// Renaming the file to this path.
    Rename(PathBuf),
}

/// A file operation that failed, naming the file (and the target of a rename).
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.op, .path, .source))]
pub struct FileError {
    pub op: FileOp,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn describe(op: &FileOp, path: &Path, source: &std::io::Error) -> String {
    let path = path.display();
    match op {
        FileOp::CreateDir => format!("cannot create directory {path}: {source}"),
        FileOp::List => format!("cannot list {path}: {source}"),
        FileOp::Open => format!("cannot open {path}: {source}"),
        FileOp::Read => format!("cannot read {path}: {source}"),
        FileOp::Write => format!("cannot write {path}: {source}"),
        FileOp::Remove => format!("cannot remove {path}: {source}"),
        FileOp::SyncDir => format!("cannot fsync directory {path}: {source}"),
        FileOp::Rename(to) => format!("cannot rename {path} to {}: {source}", to.display()),
    }
}

impl FileError {
    /// A closure for `map_err` that names `path` and the operation.
    pub fn at(op: FileOp, path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
        move |source| FileError {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// Replaces `path` with `bytes` atomically (temporary file, fsync, rename,
/// fsync of the directory). The file is readable by its owner only: it may
/// hold signing secrets.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = path.with_extension("tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .map_err(FileError::at(FileOp::Write, &tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(FileError::at(FileOp::Write, &tmp))?;
    std::fs::rename(&tmp, path).map_err(FileError::at(FileOp::Rename(path.to_owned()), &tmp))?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so a rename or a new file survives a crash.
pub fn sync_dir(path: &Path) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(FileError::at(FileOp::SyncDir, dir))
}

/// Creates `dir` (and parents), naming it in the error.
pub fn create_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::create_dir_all(dir).map_err(FileError::at(FileOp::CreateDir, dir))
}

/// Opens `path` for appending, creating it.
pub fn open_append(path: &Path) -> Result<File, FileError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(FileError::at(FileOp::Open, path))
}

/// A fresh, empty directory for one test, removed when dropped.
#[cfg(test)]
pub struct TestDir(std::path::PathBuf);

#[cfg(test)]
impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
pub fn test_dir(name: &str) -> TestDir {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kalguard-cp-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TestDir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_error_names_the_file_and_a_renames_target() {
        let dir = test_dir("file-error");
        let missing = dir.join("absent").join("license.json");
        let error = write_atomically(&missing, b"{}").unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("cannot write "), "{message}");
        assert!(message.contains("license.tmp"), "{message}");
        let renamed = FileError::at(FileOp::Rename(dir.join("to")), &dir.join("from"))(
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
        .to_string();
        assert!(
            renamed.contains("from to ") && renamed.ends_with("to: entity not found"),
            "{renamed}"
        );
    }
}
