//! The append-only revocation journal: one JSON object per line, `fsync`ed before each
//! revocation returns (concurrent revocations share one fsync: group commit), compacted
//! (expired entries dropped) when opened. [`read`] loads one without opening it for
//! writing, for operators' tools.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

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
        match parse_line(line) {
            None => {}
            Some(Ok(record)) => loaded.records.push(record),
            Some(Err(())) => loaded.unreadable += 1,
        }
    }
    loaded
}

/// One line (without its `\n`): `None` if blank, else the record or `Err` if unreadable.
fn parse_line(line: &[u8]) -> Option<Result<Record, ()>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(serde_json::from_slice::<Record>(line).map_err(drop))
}

/// What [`stream`] read from a journal file.
struct Streamed {
    /// The records live at `now`, in file order.
    loaded: Loaded,
    /// Every line, live or not, counted by kind.
    summary: JournalSummary,
    /// The unreadable lines, as they were (for `<journal>.rejected`).
    rejected: Vec<Vec<u8>>,
    /// Lines in the file.
    lines: usize,
}

/// Read the journal at `path` line by line (a missing file reads as empty), keeping only
/// the records live at `now`: no buffer of the whole file, and no expired record held.
/// The same lines as [`parse`] of the whole file would read.
fn stream(path: &Path, now: i64) -> io::Result<Streamed> {
    let mut records = Vec::new();
    let mut streamed = stream_into(path, now, &mut |record| records.push(record))?;
    streamed.loaded.records = records;
    Ok(streamed)
}

/// As [`stream`], but handing each live record to `sink` as it is read, so that nothing
/// but the line being read is held here: loading a journal of millions of revocations
/// costs the store they go into, not the file nor a list of records. (The returned
/// `loaded.records` is empty.)
fn stream_into(path: &Path, now: i64, sink: &mut dyn FnMut(Record)) -> io::Result<Streamed> {
    use std::io::BufRead as _;
    let mut streamed = Streamed {
        loaded: Loaded::default(),
        summary: JournalSummary::default(),
        rejected: Vec::new(),
        lines: 0,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(streamed),
        Err(e) => return Err(e),
    };
    let mut reader = io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        streamed.lines += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        match parse_line(&line) {
            None => {}
            Some(Err(())) => {
                streamed.summary.unreadable += 1;
                streamed.loaded.unreadable += 1;
                streamed.rejected.push(line.clone());
            }
            Some(Ok(record)) => {
                match record {
                    Record::Session { .. } => streamed.summary.sessions += 1,
                    Record::Subject { .. } => streamed.summary.subjects += 1,
                    Record::Watermark { .. } => streamed.summary.watermarks += 1,
                }
                if record.live(now) {
                    sink(record);
                }
            }
        }
    }
    Ok(streamed)
}

/// The journal open for appending, with group commit: [`append`](Self::append) queues
/// records in memory (cheap, under the store's lock, so the file's order is the store's);
/// [`wait`](Self::wait), called with the store's locks released, returns once they are
/// written and fsynced. The first waiter to find no write in progress becomes the
/// *syncer*: it takes everything queued so far as one batch, writes it and fsyncs it
/// outside the lock, while the revocations made meanwhile queue up for the next batch.
/// So concurrent logouts share one fsync, and none returns before its own is durable.
pub(crate) struct Journal {
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled when a syncer (or a compaction) steps down.
    stepped_down: Condvar,
    /// One compaction at a time.
    compacting: Mutex<()>,
    /// Exclusive advisory lock on `<journal>.lock`, held while this journal is open: a
    /// second process compacting (renaming) the file under a live writer would make that
    /// writer's later revocations land in a deleted file.
    _lock: File,
}

/// The appending side of a journal, under [`Journal::state`].
struct State {
    /// The file appended to (replaced by a compaction).
    file: Arc<File>,
    /// Lines queued and not yet taken by a syncer, and the batch they will be made
    /// durable in.
    queued: Vec<u8>,
    batch: Arc<Batch>,
    /// A syncer (or a compaction's switch) is writing outside the lock: nobody else may
    /// write to the file or swap it.
    busy: bool,
    /// A write failed part-way, so the file may end in a torn line: the next write starts
    /// with a newline, making those bytes one unreadable line (skipped on load) instead of
    /// a prefix that spoils the next record.
    torn: bool,
    /// A compaction renamed a file in, but the directory's fsync failed: the next syncer
    /// retries it before reporting anything durable.
    dir_unsynced: bool,
    /// Lines appended since the last compaction (or the open).
    lines: usize,
    /// While a compaction runs: every line queued since it took its snapshot.
    since_snapshot: Option<Vec<u8>>,
    /// How a syncer fsyncs the file: `File::sync_data` (a test makes it fail).
    sync: fn(&File) -> io::Result<()>,
}

/// A batch of queued lines, made durable (or not) by one write and one fsync.
#[derive(Default)]
struct Batch {
    /// Set once, under [`Journal::state`], by the syncer that wrote the batch.
    outcome: OnceLock<Result<(), (io::ErrorKind, String)>>,
}

/// Records queued by [`Journal::append`]: pass it to [`Journal::wait`].
#[must_use = "a revocation is durable only once `Journal::wait` returned Ok"]
pub(crate) struct Queued(Arc<Batch>);

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
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn open(path: &Path, now: i64) -> io::Result<(Self, Loaded)> {
        Self::open_with(path, now, None)
    }

    /// Read `path` (if it exists) line by line, handing each record live at `now` to
    /// `sink` as it is read (nothing else is held), and open it for appending. The file
    /// is **not** rewritten: the caller compacts it (with what it kept) before anything
    /// is appended, which also drops a torn last line. The returned `records` are empty.
    pub(crate) fn open_into(
        path: &Path,
        now: i64,
        sink: &mut dyn FnMut(Record),
    ) -> io::Result<(Self, Loaded)> {
        Self::open_with(path, now, Some(sink))
    }

    fn open_with(
        path: &Path,
        now: i64,
        sink: Option<&mut dyn FnMut(Record)>,
    ) -> io::Result<(Self, Loaded)> {
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
        let sink_used = sink.is_some();
        let streamed = match sink {
            Some(sink) => stream_into(path, now, sink)?,
            None => stream(path, now)?,
        };
        if !streamed.rejected.is_empty() {
            keep_rejected(path, &streamed.rejected)?;
        }
        let (file, lines) = if sink_used {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            (file, streamed.lines)
        } else {
            let records = &streamed.loaded.records;
            (rewrite(path, records)?, records.len())
        };
        let loaded = streamed.loaded;
        Ok((
            Self {
                path: path.to_owned(),
                state: Mutex::new(State {
                    file: Arc::new(file),
                    queued: Vec::new(),
                    batch: Arc::default(),
                    busy: false,
                    torn: false,
                    dir_unsynced: false,
                    lines,
                    since_snapshot: None,
                    sync: File::sync_data,
                }),
                stepped_down: Condvar::new(),
                compacting: Mutex::new(()),
                _lock: lock,
            },
            loaded,
        ))
    }

    /// Queue `records` to be appended (in this order, after everything queued before).
    /// Nothing is durable until [`wait`](Self::wait) returns Ok for what this returns.
    pub(crate) fn append(&self, records: &[Record]) -> io::Result<Queued> {
        let mut lines = Vec::with_capacity(records.len() * 96);
        for record in records {
            serde_json::to_writer(&mut lines, record).map_err(io::Error::other)?;
            lines.push(b'\n');
        }
        let mut state = lock(&self.state);
        state.queued.extend_from_slice(&lines);
        if let Some(tail) = &mut state.since_snapshot {
            tail.extend_from_slice(&lines);
        }
        state.lines += records.len();
        Ok(Queued(Arc::clone(&state.batch)))
    }

    /// Return once the records `queued` stand for are written and fsynced, syncing them
    /// (with everything queued by then) if no one else is. An error means they were not
    /// made durable: every caller whose records were in that batch gets it.
    ///
    /// Blocks for at most about two writes and fsyncs (the batch in progress, then this
    /// one); on a multi-threaded tokio runtime, inside `block_in_place`, so the worker's
    /// other tasks move on meanwhile.
    pub(crate) fn wait(&self, queued: Queued) -> io::Result<()> {
        if let Some(outcome) = queued.0.outcome.get() {
            return reported(outcome);
        }
        blocking(|| self.wait_blocking(&queued.0))
    }

    fn wait_blocking(&self, batch: &Batch) -> io::Result<()> {
        let mut state = lock(&self.state);
        loop {
            if let Some(outcome) = batch.outcome.get() {
                return reported(outcome);
            }
            if state.busy {
                state = self
                    .stepped_down
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Not durable and no one syncing: `batch` is the one queuing (a syncer takes
            // a batch and sets its outcome before stepping down). Sync it.
            state.busy = true;
            let lines = std::mem::take(&mut state.queued);
            let taken = std::mem::take(&mut state.batch);
            let file = Arc::clone(&state.file);
            let (torn, dir, sync) = (state.torn, state.dir_unsynced, state.sync);
            drop(state);
            let written = write_lines(&file, torn, &lines);
            let outcome = match &written {
                Ok(()) => sync(&file)
                    .and_then(|()| if dir { sync_dir(&self.path) } else { Ok(()) })
                    .map_err(|e| (e.kind(), e.to_string())),
                Err(e) => Err((e.kind(), e.to_string())),
            };
            state = lock(&self.state);
            state.torn = written.is_err();
            if dir && outcome.is_ok() {
                state.dir_unsynced = false;
            }
            if outcome.is_err() {
                tracing::error!(
                    journal = %self.path.display(),
                    records = lines.iter().filter(|b| **b == b'\n').count(),
                    "revocation journal write or fsync failed: those revocations are not durable"
                );
            }
            let _ = taken.outcome.set(outcome);
            state.busy = false;
            self.stepped_down.notify_all();
        }
    }

    /// Lines written since the last compaction.
    pub(crate) fn lines(&self) -> usize {
        lock(&self.state).lines
    }

    /// Replace the file's contents with the records `snapshot` returns, atomically (a
    /// temporary file, fsynced, renamed over the journal). `snapshot` must return what the
    /// store holds at some point after it is called: every record appended from the
    /// moment it is called is written again after its records, so no revocation made
    /// during the compaction is lost (the last line for a key wins on load, and lines
    /// are queued in the order the store applied them).
    pub(crate) fn compact(&self, snapshot: impl FnOnce() -> Vec<Record>) -> io::Result<()> {
        let _one = lock(&self.compacting);
        let since = {
            let mut state = lock(&self.state);
            state.since_snapshot = Some(Vec::new());
            state.lines
        };
        let result = self.compact_from(&snapshot(), since);
        lock(&self.state).since_snapshot = None;
        result
    }

    fn compact_from(&self, records: &[Record], since: usize) -> io::Result<()> {
        let tmp = self.path.with_extension("compacting");
        // The bulk of the work, while revocations go on being appended to the old file.
        // A leftover of a compaction cut short goes first: appending, the new file starts
        // empty.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut out = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&tmp)?;
        let mut buf = Vec::with_capacity(records.len() * 96);
        for record in records {
            serde_json::to_writer(&mut buf, record).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        out.write_all(&buf)?;
        out.sync_data()?;
        // The switch: no syncer writes the old file meanwhile. Lines queued now are in
        // the tail; those queued before the snapshot was asked for are covered by it.
        let (tail, covered) = {
            let mut state = lock(&self.state);
            while state.busy {
                state = self
                    .stepped_down
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.busy = true;
            let tail = state.since_snapshot.take().unwrap_or_default();
            (tail, state.queued.len())
        };
        let switched = out
            .write_all(&tail)
            .and_then(|()| out.sync_data())
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        let mut state = lock(&self.state);
        if switched.is_ok() {
            // Every line queued before the switch is in the new file, fsynced; the lines
            // queued since go to the new file with the next batch.
            state.queued.drain(..covered);
            state.file = Arc::new(out);
            state.torn = false;
            state.lines = records.len() + (state.lines - since);
            // Until the rename is durable, no syncer reports anything durable.
            state.dir_unsynced = true;
            drop(state);
            let dir = sync_dir(&self.path);
            state = lock(&self.state);
            if dir.is_ok() {
                state.dir_unsynced = false;
                if state.queued.is_empty() {
                    let _ = state.batch.outcome.set(Ok(()));
                    state.batch = Arc::default();
                }
            }
        }
        state.busy = false;
        self.stepped_down.notify_all();
        drop(state);
        if switched.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        switched
    }
}
/// Read the journal at `path` without opening it for writing: no lock, no compaction,
/// nothing written (not even `<journal>.rejected`), so an operator can read the journal a
/// running server holds. Hands each record live at `now` (as [`Journal::open`] keeps
/// them) to `sink` as it is read, and returns a summary of every line. A missing file reads as empty, as it opens empty.
///
/// A server only appends whole lines and compacts by an atomic rename, so this reads
/// either the old file or the new one; a line being appended at that moment is at worst
/// torn, and counted as unreadable.
pub(crate) fn read_into(
    path: &Path,
    now: i64,
    sink: &mut dyn FnMut(Record),
) -> io::Result<JournalSummary> {
    Ok(stream_into(path, now, sink)?.summary)
}

/// Append the unreadable `lines` to `<journal>.rejected` (fsynced).
fn keep_rejected(path: &Path, lines: &[Vec<u8>]) -> io::Result<()> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(rejected_path(path))?;
    for line in lines {
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    out.sync_all()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks leaves consistent data, so a panic elsewhere while
    // one was held does not stop the journal.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A batch's outcome, as this caller's result.
fn reported(outcome: &Result<(), (io::ErrorKind, String)>) -> io::Result<()> {
    outcome
        .clone()
        .map_err(|(kind, message)| io::Error::new(kind, message))
}

/// Run `f`, which may block on another caller's fsync: inside `block_in_place` on a
/// multi-threaded tokio runtime (the worker's other tasks move to other workers
/// meanwhile), directly elsewhere.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Append `lines` to `file` (opened for appending), after a newline if the last write
/// may have left a torn line.
fn write_lines(mut file: &File, torn: bool, lines: &[u8]) -> io::Result<()> {
    if torn {
        file.write_all(b"\n")?;
    }
    file.write_all(lines)
}

/// Fsync the directory holding `path`, making a rename in it durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
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

#[cfg(test)]
impl Journal {
    /// Replace how syncers fsync the file (a test makes it fail).
    pub(crate) fn set_sync(&self, sync: fn(&File) -> io::Result<()>) {
        lock(&self.state).sync = sync;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use std::io::Write as _;

    use super::{FULL, File, Journal, Record, io, lock, parse};

    fn session(sid: &str) -> Record {
        Record::Session {
            sid: sid.to_owned(),
            exp: 2_000_000,
            at: 1_000_000,
            floor: FULL,
        }
    }

    fn sids(path: &std::path::Path) -> (Vec<String>, usize) {
        let loaded = parse(&std::fs::read(path).unwrap());
        let mut sids: Vec<String> = loaded
            .records
            .into_iter()
            .filter_map(|r| match r {
                Record::Session { sid, .. } => Some(sid),
                _ => None,
            })
            .collect();
        sids.sort();
        (sids, loaded.unreadable)
    }

    fn no_space(_: &File) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"))
    }

    /// Records queued before anyone syncs are made durable by one fsync, whoever of
    /// their callers syncs; every caller returns Ok only after it.
    /// Queue `n` records (named by `sid`) one after the other, so they form one batch, then
    /// wait for each from a thread of its own; each caller's result, in order.
    fn queue_then_wait(
        journal: &Arc<Journal>,
        n: usize,
        sid: impl Fn(usize) -> String,
    ) -> Vec<io::Result<()>> {
        let queued: Vec<_> = (0..n)
            .map(|i| journal.append(&[session(&sid(i))]).unwrap())
            .collect();
        let waiters: Vec<_> = queued
            .into_iter()
            .map(|q| {
                let journal = Arc::clone(journal);
                std::thread::spawn(move || journal.wait(q))
            })
            .collect();
        waiters.into_iter().map(|w| w.join().unwrap()).collect()
    }

    #[test]
    fn records_queued_together_share_one_fsync() {
        static SYNCS: AtomicUsize = AtomicUsize::new(0);
        fn counted(file: &File) -> io::Result<()> {
            SYNCS.fetch_add(1, Ordering::SeqCst);
            file.sync_data()
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let (journal, _) = Journal::open(&path, 1_000_000).unwrap();
        journal.set_sync(counted);
        let journal = Arc::new(journal);
        for result in queue_then_wait(&journal, 16, |i| format!("s{i:02}")) {
            result.unwrap();
        }
        assert_eq!(SYNCS.load(Ordering::SeqCst), 1);
        let expected: Vec<String> = (0..16).map(|i| format!("s{i:02}")).collect();
        assert_eq!(sids(&path), (expected, 0));
        assert_eq!(journal.lines(), 16);
    }

    /// A failed fsync reaches every caller whose record was in the batch, as an error of
    /// its kind; the next batch syncs again and succeeds.
    #[test]
    fn a_failed_fsync_is_reported_to_every_caller_in_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let (journal, _) = Journal::open(&path, 1_000_000).unwrap();
        journal.set_sync(no_space);
        let journal = Arc::new(journal);
        for result in queue_then_wait(&journal, 8, |i| format!("lost{i}")) {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        }
        // Still failing: a new batch fails too, never reported durable.
        let q = journal.append(&[session("also-lost")]).unwrap();
        assert!(journal.wait(q).is_err());

        journal.set_sync(File::sync_data);
        let q = journal.append(&[session("kept")]).unwrap();
        journal.wait(q).unwrap();
        assert!(sids(&path).0.contains(&"kept".to_owned()));
    }

    /// A failed write reaches every caller in the batch; a torn line it may have left
    /// does not spoil the next record (which starts on a line of its own).
    #[test]
    fn a_failed_write_is_reported_and_its_torn_line_spoils_nothing_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let (journal, _) = Journal::open(&path, 1_000_000).unwrap();
        let q = journal.append(&[session("before")]).unwrap();
        journal.wait(q).unwrap();
        // Writes to a handle opened read-only fail, as on a full or failing disk.
        let writable = {
            let mut state = lock(&journal.state);
            std::mem::replace(&mut state.file, Arc::new(File::open(&path).unwrap()))
        };
        let journal = Arc::new(journal);
        for result in queue_then_wait(&journal, 4, |i| format!("lost{i}")) {
            assert!(result.is_err());
        }
        // What a write cut short by the failure leaves at the end of the file.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"t":"s","sid":"lo"#)
            .unwrap();
        lock(&journal.state).file = writable;
        let q = journal.append(&[session("after")]).unwrap();
        journal.wait(q).unwrap();
        assert_eq!(
            sids(&path),
            (vec!["after".to_owned(), "before".to_owned()], 1)
        );
    }

    /// Compactions while other threads append: every record whose wait returned Ok is in
    /// the file afterwards, whichever file (old or compacted) it was first written to.
    #[test]
    fn compaction_during_appends_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let (journal, _) = Journal::open(&path, 1_000_000).unwrap();
        let journal = Arc::new(journal);
        // The "store": a record is held before it is queued, as `MemoryDenylist` does.
        let held: Arc<Mutex<Vec<Record>>> = Arc::default();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (journal, held) = (Arc::clone(&journal), Arc::clone(&held));
                std::thread::spawn(move || {
                    let mut acknowledged = Vec::new();
                    for i in 0..100 {
                        let record = session(&format!("t{t}-{i:03}"));
                        let queued = {
                            let mut held = lock(&held);
                            held.push(record.clone());
                            journal.append(&[record]).unwrap()
                        };
                        journal.wait(queued).unwrap();
                        acknowledged.push(format!("t{t}-{i:03}"));
                    }
                    acknowledged
                })
            })
            .collect();
        // Only while they append: none after the last, which would hold everything.
        let mut compactions = 0;
        while writers.iter().any(|w| !w.is_finished()) {
            journal.compact(|| lock(&held).clone()).unwrap();
            compactions += 1;
        }
        assert!(compactions > 0);
        let mut acknowledged: Vec<String> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        acknowledged.sort();
        assert_eq!(acknowledged.len(), 400);
        let (on_disk, unreadable) = sids(&path);
        assert_eq!(unreadable, 0);
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|sid| on_disk.binary_search(sid).is_err())
            .collect();
        assert!(
            lost.is_empty(),
            "acknowledged, then lost by a compaction: {lost:?}"
        );
        assert!(!path.with_extension("compacting").exists());
    }
}

#[cfg(test)]
mod stream_tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::{Record, parse, parse_line, stream};

    fn line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0..40i64, 0..40i64).prop_map(|(exp, at)| serde_json::to_vec(&Record::Session {
                sid: format!("s{at}"),
                exp,
                at,
                floor: super::FULL,
            })
            .unwrap()),
            (0..40i64, 0..40i64).prop_map(|(exp, at)| serde_json::to_vec(&Record::Subject {
                sub: "u".into(),
                before: at,
                exp,
                at,
            })
            .unwrap()),
            (0..40i64).prop_map(|at| serde_json::to_vec(&Record::Watermark { at }).unwrap()),
            // Blank, torn, corrupt, carriage return.
            Just(Vec::new()),
            Just(b"  \t".to_vec()),
            Just(b"{\"t\":\"s\",\"sid\":\"x".to_vec()),
            proptest::collection::vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 0..12),
            Just(b"{\"t\":\"w\",\"at\":3}\r".to_vec()),
        ]
    }

    proptest! {
        /// Reading line by line finds what parsing the whole file finds: the same live
        /// records in order, the same counts, and the unreadable lines as they were.
        #[test]
        fn streaming_reads_what_parsing_the_whole_file_reads(
            lines in proptest::collection::vec(line(), 0..30),
            newline_at_end in any::<bool>(),
            now in 0..40i64,
        ) {
            let mut bytes = lines.join(&b'\n');
            if newline_at_end {
                bytes.push(b'\n');
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("revocations.jsonl");
            std::fs::write(&path, &bytes).unwrap();
            let streamed = stream(&path, now).unwrap();
            let whole = parse(&bytes);
            prop_assert_eq!(streamed.summary, whole.summary());
            let live: Vec<Record> = whole.records.into_iter().filter(|r| r.live(now)).collect();
            prop_assert_eq!(&streamed.loaded.records, &live);
            prop_assert_eq!(streamed.loaded.unreadable, whole.unreadable);
            let rejected: Vec<Vec<u8>> = bytes
                .split(|b| *b == b'\n')
                .filter(|l| matches!(parse_line(l), Some(Err(()))))
                .map(<[u8]>::to_vec)
                .collect();
            prop_assert_eq!(streamed.rejected, rejected);
        }
    }

    #[test]
    fn a_missing_journal_streams_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let streamed = stream(&dir.path().join("none.jsonl"), 0).unwrap();
        assert!(streamed.loaded.records.is_empty());
        assert_eq!(streamed.summary, super::JournalSummary::default());
    }
}
