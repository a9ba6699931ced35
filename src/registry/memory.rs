//! [`MemoryRegistry`]: the registry of one process — bounded per user and in total, swept,
//! optionally journaled.
//!
//! The journal is a JSON line per change (`{"t":"p",…}` a put, `{"t":"d","sid"}` a
//! removal, `{"t":"u","sub"}` every session of a user), compacted when opened and by the
//! sweep. Writes from the request path never wait for the file: a line is queued and
//! written by whichever caller holds the file (a compaction holds it for a while; the lines
//! queued meanwhile follow it).

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_PER_USER, DEFAULT_REGISTRY_CAPACITY, RegistryStats, SessionEntry, SessionRegistry,
};
use crate::clock::Clock;
use crate::error::RevocationError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Line {
    #[serde(rename = "p")]
    Put(SessionEntry),
    #[serde(rename = "d")]
    Remove { sid: String },
    #[serde(rename = "u")]
    RemoveUser { sub: String },
}

type Map<V> = DashMap<Box<str>, V, foldhash::fast::RandomState>;

/// The in-memory registry: bounded per user and in total, swept, optionally journaled
/// (a JSON line per change, compacted when opened and by the sweep) so a restart keeps
/// the listing.
///
/// * **Per user**: past [`per_user`](MemoryRegistryBuilder::per_user) sessions, the least
///   recently active drops out of the listing (never out of the denylist: it stays a
///   valid session until it expires or is ended another way).
/// * **In total**: past [`capacity`](MemoryRegistryBuilder::capacity), the least recently
///   active go — a slice of 1/64 of the capacity at once, so that the scan this takes is
///   paid once per that many logins.
/// * **Expiry**: an entry is listed until its session would have expired (every token of
///   it); [`sweep`](SessionRegistry::sweep) (or
///   [`spawn_sweeper`](MemoryRegistry::spawn_sweeper)) frees it and compacts the journal.
///
/// # Journal
///
/// One process per journal: [`build`](MemoryRegistryBuilder::build) takes an exclusive
/// lock on `<journal>.lock` (as the denylist's journal does) and fails while another
/// process holds it; [`read_only`](MemoryRegistry::read_only) takes none and writes
/// nothing, for operators' tools reading a running server's journal. Puts (a login, a
/// reissue) are written without `fsync` — a machine crash may lose the last few, which
/// only means those sessions are listed again at their next reissue; removals are
/// `fsync`ed. Unreadable lines are skipped and kept in `<journal>.rejected`.
pub struct MemoryRegistry {
    entries: Map<SessionEntry>,
    by_user: Map<Vec<Box<str>>>,
    per_user: usize,
    capacity: usize,
    evicting: AtomicBool,
    journal: Option<Journal>,
    /// Journal lines read when loaded: (readable, unreadable).
    read: (usize, usize),
}

impl std::fmt::Debug for MemoryRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRegistry")
            .field("sessions", &self.entries.len())
            .field("per_user", &self.per_user)
            .field("capacity", &self.capacity)
            .field("journaled", &self.journal.is_some())
            .finish()
    }
}

/// Builder for [`MemoryRegistry`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryRegistryBuilder {
    per_user: usize,
    capacity: usize,
    journal: Option<PathBuf>,
}

impl MemoryRegistryBuilder {
    /// Most sessions listed per user. Default [`DEFAULT_PER_USER`].
    pub fn per_user(mut self, n: usize) -> Self {
        self.per_user = n.max(1);
        self
    }

    /// Most sessions held in all; past it the least recently active go. Default
    /// [`DEFAULT_REGISTRY_CAPACITY`].
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Keep the registry in this file across restarts (see [the journal](MemoryRegistry#journal)).
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Open the journal (if any): lock it, load its live entries as of `clock`'s now and
    /// compact it.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Journal`] if the journal cannot be read or rewritten, or another
    /// process holds it.
    pub fn build(self, clock: &dyn Clock) -> Result<Arc<MemoryRegistry>, RevocationError> {
        let mut registry = MemoryRegistry::empty(self.per_user, self.capacity);
        if let Some(path) = &self.journal {
            registry.open_journal(path, clock.now())?;
        }
        Ok(Arc::new(registry))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The file's bytes; none if it does not exist.
fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Refuse a revocation journal (a registry journal has no line the denylist can read):
/// loading it as a registry would compact its revocations away.
fn not_a_revocation_journal(path: &Path, bytes: &[u8]) -> Result<(), RevocationError> {
    let summary = crate::denylist::summarize_journal(bytes);
    if summary.sessions + summary.subjects + summary.watermarks > 0 {
        return Err(RevocationError::Journal(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is a revocation journal (the denylist's), not a session registry journal",
                path.display()
            ),
        )));
    }
    Ok(())
}

/// The non-blank lines of a journal, parsed or not.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (&[u8], Option<Line>)> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| (line, serde_json::from_slice::<Line>(line).ok()))
}

/// An open journal: the file (held by whoever writes), the lines waiting for it.
struct Journal {
    path: PathBuf,
    writer: Mutex<Writer>,
    queued: Mutex<Queued>,
    /// Exclusive advisory lock on `<journal>.lock` while this registry lives.
    _lock: File,
}

struct Writer {
    file: File,
    /// Lines written since the last compaction.
    lines: usize,
}

#[derive(Default)]
struct Queued {
    bytes: Vec<u8>,
    lines: usize,
    sync: bool,
}

impl Journal {
    /// Queue `line`, then write the queue unless someone else holds the file (they write
    /// it when they are done).
    fn append(&self, line: &Line, sync: bool) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        {
            let mut queued = lock(&self.queued);
            queued.bytes.extend_from_slice(&bytes);
            queued.lines += 1;
            queued.sync |= sync;
        }
        self.drain()
    }

    /// Write what is queued if the file is free; repeat while lines keep arriving.
    fn drain(&self) -> io::Result<()> {
        let mut result = Ok(());
        loop {
            let mut writer = match self.writer.try_lock() {
                Ok(writer) => writer,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                // The holder drains after releasing it.
                Err(TryLockError::WouldBlock) => return result,
            };
            let queued = std::mem::take(&mut *lock(&self.queued));
            if queued.lines > 0 {
                let written = writer.file.write_all(&queued.bytes).and_then(|()| {
                    if queued.sync {
                        writer.file.sync_data()
                    } else {
                        Ok(())
                    }
                });
                writer.lines += queued.lines;
                if let Err(e) = written {
                    result = Err(e);
                }
            }
            drop(writer);
            if lock(&self.queued).lines == 0 {
                return result;
            }
        }
    }

    /// Replace the file with `entries` (atomically), then write what was queued meanwhile.
    fn compact(&self, entries: &[SessionEntry]) -> io::Result<()> {
        let mut writer = lock(&self.writer);
        writer.file = rewrite(&self.path, entries)?;
        writer.lines = entries.len();
        drop(writer);
        self.drain()
    }

    fn lines(&self) -> usize {
        lock(&self.writer).lines
    }
}

/// Write `entries` to `path` atomically (temp file, fsync, rename, fsync the directory)
/// and open it for appending.
fn rewrite(path: &Path, entries: &[SessionEntry]) -> io::Result<File> {
    let tmp = with_suffix(path, ".compacting");
    {
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for entry in entries {
            serde_json::to_writer(&mut buf, &Line::Put(entry.clone())).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        let mut out = File::create(&tmp)?;
        out.write_all(&buf)?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}

impl MemoryRegistry {
    /// Start building one.
    pub fn builder() -> MemoryRegistryBuilder {
        MemoryRegistryBuilder {
            per_user: DEFAULT_PER_USER,
            capacity: DEFAULT_REGISTRY_CAPACITY,
            journal: None,
        }
    }

    fn empty(per_user: usize, capacity: usize) -> Self {
        Self {
            entries: Map::default(),
            by_user: Map::default(),
            per_user,
            capacity,
            evicting: AtomicBool::new(false),
            journal: None,
            read: (0, 0),
        }
    }

    /// Read a registry journal without opening it for writing (for operators' tools): no
    /// lock, no compaction, nothing written, so it also reads the journal of a running
    /// server. No bounds apply. What it holds is as of `now`.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Journal`] if it cannot be read (a missing file included), or is
    /// the denylist's revocation journal.
    pub fn read_only(path: impl AsRef<Path>, now: i64) -> Result<Self, RevocationError> {
        let mut registry = Self::empty(usize::MAX, usize::MAX);
        let bytes = std::fs::read(path.as_ref())?;
        not_a_revocation_journal(path.as_ref(), &bytes)?;
        for (_, line) in lines(&bytes) {
            match line {
                Some(line) => {
                    registry.read.0 += 1;
                    registry.replay(line, now);
                }
                None => registry.read.1 += 1,
            }
        }
        Ok(registry)
    }

    fn open_journal(&mut self, path: &Path, now: i64) -> Result<(), RevocationError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(with_suffix(path, ".lock"))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RevocationError::Journal(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by another process (one registry journal per process; \
                         stop it first)",
                        path.display()
                    ),
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let bytes = read_bytes(path)?;
        not_a_revocation_journal(path, &bytes)?;
        let mut rejected = Vec::new();
        for (raw, line) in lines(&bytes) {
            match line {
                Some(line) => {
                    self.read.0 += 1;
                    self.replay(line, now);
                }
                None => {
                    self.read.1 += 1;
                    rejected.extend_from_slice(raw);
                    rejected.push(b'\n');
                }
            }
        }
        if !rejected.is_empty() {
            tracing::warn!(
                unreadable = self.read.1,
                journal = %path.display(),
                "skipping unreadable registry journal lines (kept in .rejected)"
            );
            let mut out = OpenOptions::new()
                .create(true)
                .append(true)
                .open(with_suffix(path, ".rejected"))?;
            out.write_all(&rejected)?;
            out.sync_all()?;
        }
        let held: Vec<SessionEntry> = self.entries.iter().map(|e| e.value().clone()).collect();
        let file = rewrite(path, &held)?;
        self.journal = Some(Journal {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                file,
                lines: held.len(),
            }),
            queued: Mutex::new(Queued::default()),
            _lock: lock_file,
        });
        Ok(())
    }

    fn replay(&self, line: Line, now: i64) {
        match line {
            Line::Put(entry) if entry.expires > now => self.insert(entry),
            Line::Put(_) => {}
            Line::Remove { sid } => self.forget(&sid),
            Line::RemoveUser { sub } => self.forget_user(&sub),
        }
    }

    fn append(&self, line: &Line, sync: bool) -> Result<(), RevocationError> {
        match &self.journal {
            Some(journal) => Ok(journal.append(line, sync)?),
            None => Ok(()),
        }
    }

    fn insert(&self, mut entry: SessionEntry) {
        let sid: Box<str> = entry.sid.as_str().into();
        if let Some(old) = self.entries.get(&sid) {
            entry.id.clone_from(&old.id);
        }
        let sub: Box<str> = entry.sub.as_str().into();
        self.entries.insert(sid.clone(), entry);
        let mut list = self.by_user.entry(sub).or_default();
        if !list.contains(&sid) {
            list.push(sid);
        }
        // Bounded per user: the least recently active drop out of the listing (a sid
        // whose entry is gone goes first).
        while list.len() > self.per_user {
            let oldest = list
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| self.entries.get(*s).map_or(i64::MIN, |e| e.last_active))
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    let gone = list.swap_remove(i);
                    self.entries.remove(&gone);
                }
                None => break,
            }
        }
        drop(list);
        if self.entries.len() > self.capacity {
            self.evict();
        }
    }

    /// Bounded in total: drop the least recently active, down to 63/64 of the capacity
    /// (one scan per capacity/64 inserts). One caller at a time; the others go on.
    fn evict(&self) {
        if self.evicting.swap(true, Ordering::AcqRel) {
            return;
        }
        let len = self.entries.len();
        if len > self.capacity {
            let excess = (len - self.capacity + self.capacity / 64).min(len);
            let mut times: Vec<i64> = self.entries.iter().map(|e| e.last_active).collect();
            let (_, &mut threshold, _) = times.select_nth_unstable(excess - 1);
            drop(times);
            // Every entry older than the threshold, then as many at it as still needed.
            let mut older: Vec<Box<str>> = Vec::with_capacity(excess);
            let mut at: Vec<Box<str>> = Vec::new();
            for e in self.entries.iter() {
                if e.last_active < threshold {
                    older.push(e.key().clone());
                } else if e.last_active == threshold && older.len() + at.len() < excess {
                    at.push(e.key().clone());
                }
            }
            let room = excess.saturating_sub(older.len());
            for sid in older.iter().chain(at.iter().take(room)) {
                self.forget(sid);
            }
        }
        self.evicting.store(false, Ordering::Release);
    }

    fn forget(&self, sid: &str) {
        if let Some((_, entry)) = self.entries.remove(sid) {
            let sub: &str = &entry.sub;
            let empty = self.by_user.get_mut(sub).is_some_and(|mut list| {
                list.retain(|s| &**s != sid);
                list.is_empty()
            });
            if empty {
                self.by_user.remove_if(sub, |_, list| list.is_empty());
            }
        }
    }

    fn forget_user(&self, sub: &str) {
        if let Some((_, sids)) = self.by_user.remove(sub) {
            for sid in sids {
                self.entries.remove(&sid);
            }
        }
    }

    /// Sessions held (live or not yet swept), any user.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no session.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry held (for operators), any user, most recently active first.
    pub fn all(&self) -> Vec<SessionEntry> {
        let mut all: Vec<SessionEntry> = self.entries.iter().map(|e| e.value().clone()).collect();
        all.sort_by(|a, b| (b.last_active, &a.id).cmp(&(a.last_active, &b.id)));
        all
    }

    /// The entry listed as `id` (see [`SessionEntry::id`]), any user (for operators; a
    /// scan of every entry).
    pub fn find(&self, id: &str) -> Option<SessionEntry> {
        self.entries
            .iter()
            .find(|e| e.value().id == id)
            .map(|e| e.value().clone())
    }

    /// How many journal lines could not be read when it was loaded (a torn last write,
    /// corruption — or not a registry journal at all).
    pub fn unreadable_lines(&self) -> usize {
        self.read.1
    }

    /// How many journal lines were read when it was loaded (expired entries included).
    pub fn readable_lines(&self) -> usize {
        self.read.0
    }

    /// Run [`sweep`](SessionRegistry::sweep) every `every` (real time) with `clock`'s now,
    /// until the registry is dropped. The sweep also keeps the journal compact.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(registry) = weak.upgrade() else {
                    break;
                };
                registry.sweep(clock.now());
            }
        })
    }
}

impl SessionRegistry for MemoryRegistry {
    fn put(&self, entry: SessionEntry) -> Result<(), RevocationError> {
        let sid = entry.sid.clone();
        self.insert(entry);
        // Journal what is held (with the listed id it kept), unless a bound dropped it.
        let Some(held) = self.journal.as_ref().and_then(|_| self.get(&sid)) else {
            return Ok(());
        };
        self.append(&Line::Put(held), false)
    }

    fn get(&self, sid: &str) -> Option<SessionEntry> {
        self.entries.get(sid).map(|e| e.value().clone())
    }

    fn remove(&self, sid: &str) -> Result<(), RevocationError> {
        self.forget(sid);
        self.append(&Line::Remove { sid: sid.into() }, true)
    }

    fn remove_user(&self, sub: &str) -> Result<(), RevocationError> {
        self.forget_user(sub);
        self.append(&Line::RemoveUser { sub: sub.into() }, true)
    }

    fn list(&self, sub: &str, now: i64) -> Vec<SessionEntry> {
        let Some(sids) = self.by_user.get(sub).map(|l| l.clone()) else {
            return Vec::new();
        };
        let mut listed: Vec<SessionEntry> = sids
            .iter()
            .filter_map(|sid| self.entries.get(sid).map(|e| e.value().clone()))
            .filter(|e| e.expires > now)
            .collect();
        listed.sort_by_key(|e| std::cmp::Reverse((e.last_active, e.created)));
        listed.truncate(self.per_user);
        listed
    }

    fn stats(&self, now: i64) -> RegistryStats {
        let mut stats = RegistryStats::default();
        for list in self.by_user.iter() {
            let live = list
                .iter()
                .filter(|sid| self.entries.get(*sid).is_some_and(|e| e.expires > now))
                .count();
            if live > 0 {
                stats.sessions += live;
                stats.users += 1;
                stats.max_per_user = stats.max_per_user.max(live);
            }
        }
        stats
    }

    fn sweep(&self, now: i64) -> usize {
        let expired: Vec<Box<str>> = self
            .entries
            .iter()
            .filter(|e| e.value().expires <= now)
            .map(|e| e.key().clone())
            .collect();
        for sid in &expired {
            self.forget(sid);
        }
        // Sids whose entry went while it was being listed (a put racing a removal).
        self.by_user.retain(|_, list| {
            list.retain(|sid| self.entries.contains_key(sid));
            !list.is_empty()
        });
        if let Some(journal) = &self.journal
            && journal.lines() > 2 * self.entries.len() + 1024
        {
            let held: Vec<SessionEntry> = self.entries.iter().map(|e| e.value().clone()).collect();
            if let Err(e) = journal.compact(&held) {
                tracing::error!(error = %e, "session registry journal compaction failed");
            }
        }
        expired.len()
    }
}
