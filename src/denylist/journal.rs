//! The append-only revocation journal: one JSON object per line, `fsync`ed per
//! revocation, compacted (expired entries dropped) when opened. [`read`] loads one
//! without opening it for writing, for operators' tools.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub(crate) enum Record {
    /// A revoked session: its tokens below generation `floor` are refused; [`FULL`]
    /// (the default, and every record written before generations existed) refuses them
    /// all.
    #[serde(rename = "s")]
    Session {
        sid: String,
        exp: i64,
        at: i64,
        #[serde(default = "full", skip_serializing_if = "is_full")]
        floor: u32,
    },
    /// Every session of `sub` with `auth_time <= before`.
    #[serde(rename = "u")]
    Subject {
        sub: String,
        before: i64,
        exp: i64,
        at: i64,
    },
    /// The overflow watermark was raised to `at`.
    #[serde(rename = "w")]
    Watermark { at: i64 },
}

/// The floor of a whole-session revocation: every generation is below it.
pub(crate) const FULL: u32 = u32::MAX;

fn full() -> u32 {
    FULL
}

fn is_full(floor: &u32) -> bool {
    *floor == FULL
}

impl Record {
    fn live(&self, now: i64) -> bool {
        match self {
            Record::Session { exp, .. } | Record::Subject { exp, .. } => *exp > now,
            Record::Watermark { .. } => true,
        }
    }
}

/// What a journal holds, as counted by [`summarize`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalSummary {
    /// Session revocations.
    pub sessions: usize,
    /// "Every session of this user" revocations.
    pub subjects: usize,
    /// Overflow watermark records.
    pub watermarks: usize,
    /// Lines that could not be read (a torn last write, corruption); they are skipped.
    pub unreadable: usize,
}

/// Count what a journal file's bytes hold, the way [`MemoryDenylist`](super::MemoryDenylist)
/// reads them at start-up. Never panics, whatever the bytes.
pub fn summarize(bytes: &[u8]) -> JournalSummary {
    parse(bytes).summary()
}

/// What reading a journal found: the records, and how many lines could not be read.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) records: Vec<Record>,
    pub(crate) unreadable: usize,
}

impl Loaded {
    /// Count the records by kind, and the unreadable lines.
    fn summary(&self) -> JournalSummary {
        let mut summary = JournalSummary {
            unreadable: self.unreadable,
            ..JournalSummary::default()
        };
        for record in &self.records {
            match record {
                Record::Session { .. } => summary.sessions += 1,
                Record::Subject { .. } => summary.subjects += 1,
                Record::Watermark { .. } => summary.watermarks += 1,
            }
        }
        summary
    }
}

/// Parse journal bytes. Unreadable lines (a torn last write, corruption) are counted and
/// skipped; every readable line is kept. Never panics.
pub(crate) fn parse(bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded::default();
    for line in bytes.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(record) => loaded.records.push(record),
            Err(_) => loaded.unreadable += 1,
        }
    }
    loaded
}

pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    lines: usize,
    /// Exclusive advisory lock on `<journal>.lock`, held while this journal is open: a
    /// second process compacting (renaming) the file under a live writer would make that
    /// writer's later revocations land in a deleted file.
    _lock: File,
}

/// The unreadable lines of a journal are kept here (appended) before compaction drops
/// them, so nothing read from disk is ever lost.
fn rejected_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".rejected");
    PathBuf::from(name)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl Journal {
    /// Read `path` (if it exists), keep what is live at `now`, rewrite it compacted
    /// (atomically: temp file, fsync, rename) and open it for appending.
    pub(crate) fn open(path: &Path, now: i64) -> io::Result<(Self, Loaded)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by another process (one journal per process; stop it first)",
                        path.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let bytes = read_bytes(path)?;
        let mut loaded = parse(&bytes);
        if loaded.unreadable > 0 {
            keep_rejected(path, &bytes)?;
        }
        loaded.records.retain(|r| r.live(now));
        let file = rewrite(path, &loaded.records)?;
        let lines = loaded.records.len();
        Ok((
            Self {
                path: path.to_owned(),
                file,
                lines,
                _lock: lock,
            },
            loaded,
        ))
    }

    /// Append one record and fsync it before returning.
    pub(crate) fn append(&mut self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written since the last compaction.
    pub(crate) fn lines(&self) -> usize {
        self.lines
    }

    /// Replace the file's contents with `records`, atomically.
    pub(crate) fn compact(&mut self, records: &[Record]) -> io::Result<()> {
        self.file = rewrite(&self.path, records)?;
        self.lines = records.len();
        Ok(())
    }
}

/// Read the journal at `path` without opening it for writing: no lock, no compaction,
/// nothing written (not even `<journal>.rejected`), so an operator can read the journal a
/// running server holds. Returns the records live at `now` (as [`Journal::open`] keeps
/// them) and a summary of every line. A missing file reads as empty, as it opens empty.
///
/// A server only appends whole lines and compacts by an atomic rename, so this reads
/// either the old file or the new one; a line being appended at that moment is at worst
/// torn, and counted as unreadable.
pub(crate) fn read(path: &Path, now: i64) -> io::Result<(Loaded, JournalSummary)> {
    let mut loaded = parse(&read_bytes(path)?);
    let summary = loaded.summary();
    loaded.records.retain(|r| r.live(now));
    Ok((loaded, summary))
}

/// The file's bytes; none if it does not exist.
fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Append every unreadable line of `bytes` to `<journal>.rejected` (fsynced).
fn keep_rejected(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(rejected_path(path))?;
    for line in bytes.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<Record>(line).is_ok()
        {
            continue;
        }
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    out.sync_all()
}

fn rewrite(path: &Path, records: &[Record]) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("compacting");
    {
        let mut out = File::create(&tmp)?;
        let mut buf = Vec::with_capacity(records.len() * 64);
        for record in records {
            serde_json::to_writer(&mut buf, record).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        out.write_all(&buf)?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable.
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}
