//! The in-memory denylist: `dashmap` lookups, a fixed capacity with a watermark instead
//! of forgetting (I4), a sweeper (I2) and an optional journal (I1 across restarts).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use dashmap::DashMap;

use super::journal::{Journal, Record};
use super::{RevocationStore, TokenFacts, session_ttl, subject_ttl};
use crate::claims::Policy;
use crate::clock::Clock;
use crate::error::RevocationError;

/// Default capacity: one million revocations.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// `seq` names the queue item that holds an entry's place in eviction order: a key
/// revoked again (a second logout-all of the same second, a record replayed from
/// another instance) leaves a stale item behind, which must never evict the entry that
/// replaced it — revocation times are whole seconds, so `at` cannot tell them apart.
#[derive(Debug, Clone, Copy)]
struct SessionEntry {
    exp: i64,
    at: i64,
    seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct SubjectEntry {
    before: i64,
    exp: i64,
    at: i64,
    seq: u64,
}

/// Revocations in eviction order: `(at, seq, key)`, oldest first. Each entry's `seq` is
/// unique, so an item is current only while its entry still carries the same `seq`.
#[derive(Default)]
struct Queue {
    items: VecDeque<(i64, u64, Slot)>,
    next: u64,
}

impl Queue {
    /// Queue `slot` revoked at `at`; returns the `seq` its entry must carry.
    fn push(&mut self, at: i64, slot: Slot) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.items.push_back((at, seq, slot));
        seq
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Session(SidKey),
    Subject(Box<str>),
}

/// A session id as a map key. The crate's own ids (22 base64url characters) are held
/// inline as their 22 bytes — no heap allocation, no decoding on lookups — so a million
/// revocations fit in about 110 MB; any other id (another issuer's, a test's) is kept as
/// heap text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SidKey {
    Inline([u8; 22]),
    Text(Box<str>),
}

impl SidKey {
    fn new(sid: &str) -> Self {
        match inline_sid(sid) {
            Some(bytes) => Self::Inline(bytes),
            None => Self::Text(sid.into()),
        }
    }
}

fn inline_sid(sid: &str) -> Option<[u8; 22]> {
    sid.as_bytes().try_into().ok()
}

impl std::fmt::Display for SidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Built from a `&str` of 22 bytes, so valid UTF-8.
            Self::Inline(bytes) => f.write_str(std::str::from_utf8(bytes).unwrap_or_default()),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// foldhash with a per-map random seed: several times cheaper than SipHash on these short
/// keys. Keys are ids from tokens whose signature was verified (or our own revocations),
/// so an attacker cannot pick them to collide.
type Hasher = foldhash::fast::RandomState;

/// Revoked sessions by id: 22-byte ids inline, any other id as text. Lookups by
/// `&str` allocate nothing.
#[derive(Default)]
struct SessionMap {
    raw: DashMap<[u8; 22], SessionEntry, Hasher>,
    text: DashMap<Box<str>, SessionEntry, Hasher>,
}

impl SessionMap {
    fn len(&self) -> usize {
        self.raw.len() + self.text.len()
    }
    fn get(&self, key: &SidKey) -> Option<SessionEntry> {
        match key {
            SidKey::Inline(raw) => self.raw.get(raw).map(|e| *e),
            SidKey::Text(text) => self.text.get(text).map(|e| *e),
        }
    }
    fn contains_str(&self, sid: &str) -> bool {
        match inline_sid(sid) {
            Some(raw) => self.raw.contains_key(&raw),
            None => self.text.contains_key(sid),
        }
    }
    fn insert(&self, key: SidKey, entry: SessionEntry) {
        match key {
            SidKey::Inline(raw) => drop(self.raw.insert(raw, entry)),
            SidKey::Text(text) => drop(self.text.insert(text, entry)),
        }
    }
    fn remove(&self, key: &SidKey) {
        match key {
            SidKey::Inline(raw) => drop(self.raw.remove(raw)),
            SidKey::Text(text) => drop(self.text.remove(text)),
        }
    }
    fn retain(&self, keep: impl Fn(&SessionEntry) -> bool) {
        self.raw.retain(|_, e| keep(e));
        self.text.retain(|_, e| keep(e));
    }
    fn entries(&self) -> Vec<(String, SessionEntry)> {
        let raw = self
            .raw
            .iter()
            .map(|e| (SidKey::Inline(*e.key()).to_string(), *e.value()));
        let text = self.text.iter().map(|e| (e.key().to_string(), *e.value()));
        raw.chain(text).collect()
    }
}

/// Bounded in-memory revocation store (the default backend).
///
/// * Lookups are lock-free reads of two `DashMap`s and an atomic.
/// * At capacity, the **oldest** revocation is evicted and the *idle watermark* is raised
///   to its revocation time: every token whose last activity is at or before the
///   watermark is refused from then on. That only ends sessions that have been idle
///   longer than the evicted entry's age, and never silently re-admits a revoked one
///   (I4). Each eviction is logged at `warn`.
/// * [`sweep`](RevocationStore::sweep) drops entries past their I2 TTL.
/// * With a journal, each revocation is appended and fsynced before the call returns;
///   the journal is compacted when opened, so a restart forgets no logout.
pub struct MemoryDenylist {
    sessions: SessionMap,
    subjects: DashMap<Box<str>, SubjectEntry, Hasher>,
    order: Mutex<Queue>,
    capacity: usize,
    watermark: AtomicI64,
    evictions: AtomicU64,
    journal: Option<Mutex<Journal>>,
}

impl std::fmt::Debug for MemoryDenylist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDenylist")
            .field("sessions", &self.sessions.len())
            .field("subjects", &self.subjects.len())
            .field("capacity", &self.capacity)
            .field("watermark", &self.watermark())
            .field("journaled", &self.journal.is_some())
            .finish()
    }
}

/// Builder for [`MemoryDenylist`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryDenylistBuilder {
    capacity: usize,
    journal: Option<PathBuf>,
}

impl MemoryDenylistBuilder {
    /// Most revocations held at once (sessions and subjects together). Default
    /// [`DEFAULT_CAPACITY`] (1,000,000).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Journal file: every revocation is appended and fsynced; the file is read and
    /// compacted by [`build`](Self::build). Default: none (revocations die with the
    /// process).
    ///
    /// One process per journal: `build` takes an exclusive lock on `<journal>.lock`
    /// (released when the denylist is dropped or the process dies) and fails while
    /// another holds it. Unreadable lines (a torn last write, corruption) are skipped and
    /// appended to `<journal>.rejected` before compaction, so nothing is lost.
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Open the journal (if any) and load its live entries as of `clock`'s now.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Journal`] if the journal cannot be read or rewritten;
    /// [`RevocationError::Backend`] for a zero capacity.
    pub fn build(self, clock: &dyn Clock) -> Result<Arc<MemoryDenylist>, RevocationError> {
        if self.capacity == 0 {
            return Err(RevocationError::Backend(
                "capacity must be at least 1".into(),
            ));
        }
        let mut list = MemoryDenylist {
            sessions: SessionMap::default(),
            subjects: DashMap::default(),
            order: Mutex::new(Queue::default()),
            capacity: self.capacity,
            watermark: AtomicI64::new(i64::MIN),
            evictions: AtomicU64::new(0),
            journal: None,
        };
        if let Some(path) = &self.journal {
            let (journal, loaded) = Journal::open(path, clock.now())?;
            if loaded.unreadable > 0 {
                tracing::warn!(
                    journal = %path.display(),
                    unreadable = loaded.unreadable,
                    "skipped unreadable revocation journal lines (torn write or corruption)"
                );
            }
            let restored = loaded.records.len();
            for record in loaded.records {
                list.restore(record);
            }
            list.evict_restored();
            tracing::info!(journal = %path.display(), restored, "revocation journal loaded");
            list.journal = Some(Mutex::new(journal));
            // Re-write what survived eviction, so the file is compact and consistent.
            list.compact_journal()?;
        }
        Ok(Arc::new(list))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves consistent data (every update is a
    // single insert/remove), so recover the guard rather than refuse forever.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryDenylist {
    /// Start building one.
    pub fn builder() -> MemoryDenylistBuilder {
        MemoryDenylistBuilder {
            capacity: DEFAULT_CAPACITY,
            journal: None,
        }
    }

    /// An unjournaled store with `capacity`.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Backend`] for a zero capacity.
    pub fn with_capacity(capacity: usize) -> Result<Arc<Self>, RevocationError> {
        Self::builder()
            .capacity(capacity)
            .build(&crate::clock::SystemClock)
    }

    /// Tokens with `lat` at or before this are refused (raised by overflow).
    /// `None` until the first overflow.
    pub fn watermark(&self) -> Option<i64> {
        Some(self.watermark.load(Ordering::SeqCst)).filter(|w| *w != i64::MIN)
    }

    /// How many revocations were evicted by overflow since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Run [`sweep`](RevocationStore::sweep) every `every` (real time) with `clock`'s
    /// now, until the store is dropped.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(list) = weak.upgrade() else { break };
                list.sweep(clock.now());
            }
        })
    }

    fn restore(&mut self, record: Record) {
        let order = self.order.get_mut().unwrap_or_else(PoisonError::into_inner);
        match record {
            Record::Session { sid, exp, at } => {
                let sid = SidKey::new(&sid);
                let seq = order.push(at, Slot::Session(sid.clone()));
                self.sessions.insert(sid, SessionEntry { exp, at, seq });
            }
            Record::Subject {
                sub,
                before,
                exp,
                at,
            } => {
                let sub: Box<str> = sub.into();
                let seq = order.push(at, Slot::Subject(sub.clone()));
                self.subjects.insert(
                    sub,
                    SubjectEntry {
                        before,
                        exp,
                        at,
                        seq,
                    },
                );
            }
            Record::Watermark { at } => {
                self.watermark.fetch_max(at, Ordering::SeqCst);
            }
        }
    }

    /// After restoring a journal: order by revocation time, then enforce the capacity.
    fn evict_restored(&mut self) {
        let order = self.order.get_mut().unwrap_or_else(PoisonError::into_inner);
        // Stable: within one second, journal order (and so `seq` order) is kept.
        order.items.make_contiguous().sort_by_key(|(at, _, _)| *at);
        let mut order = std::mem::take(order);
        let mut raised = Vec::new();
        self.evict(&mut order, &mut raised);
        *self.order.get_mut().unwrap_or_else(PoisonError::into_inner) = order;
    }

    fn held(&self) -> usize {
        self.sessions.len() + self.subjects.len()
    }

    /// Whether the queue item `seq` for `slot` still stands for the entry held.
    fn is_current(&self, slot: &Slot, seq: u64) -> bool {
        match slot {
            Slot::Session(sid) => self.sessions.get(sid).is_some_and(|e| e.seq == seq),
            Slot::Subject(sub) => self.subjects.get(sub).is_some_and(|e| e.seq == seq),
        }
    }

    /// Evict oldest entries while over capacity; returns the new watermark if raised.
    ///
    /// The revocation being recorded is queued last and carries the newest `seq`, so it
    /// is never the one evicted (capacity is at least one): the store always answers
    /// for the revocation it just acknowledged.
    fn evict(&self, order: &mut Queue, raised: &mut Vec<i64>) {
        while self.held() > self.capacity {
            let Some((at, seq, slot)) = order.items.pop_front() else {
                break;
            };
            // Every mutation holds the `order` lock, so "is this entry still the one
            // queued" cannot change between the check and the removal. The watermark is
            // raised *before* the entry goes, and `is_revoked` reads entries before the
            // watermark: a concurrent check always sees one or the other (I4).
            let current = self.is_current(&slot, seq);
            if current {
                self.watermark.fetch_max(at, Ordering::SeqCst);
                match &slot {
                    Slot::Session(sid) => self.sessions.remove(sid),
                    Slot::Subject(sub) => drop(self.subjects.remove(sub)),
                }
                self.evictions.fetch_add(1, Ordering::Relaxed);
                crate::obs::evicted();
                raised.push(at);
                tracing::warn!(
                    capacity = self.capacity,
                    watermark = at,
                    "revocation denylist full: evicted the oldest revocation and raised the idle \
                     watermark; sessions idle since then must log in again"
                );
            }
        }
    }

    fn journal_append(&self, records: &[Record]) -> Result<(), RevocationError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let mut journal = lock(journal);
        for record in records {
            journal.append(record)?;
        }
        Ok(())
    }

    fn compact_journal(&self) -> Result<(), RevocationError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let mut records: Vec<Record> = Vec::with_capacity(self.held() + 1);
        if let Some(at) = self.watermark() {
            records.push(Record::Watermark { at });
        }
        for (sid, e) in self.sessions.entries() {
            records.push(Record::Session {
                sid,
                exp: e.exp,
                at: e.at,
            });
        }
        for e in self.subjects.iter() {
            let v = e.value();
            records.push(Record::Subject {
                sub: e.key().to_string(),
                before: v.before,
                exp: v.exp,
                at: v.at,
            });
        }
        lock(journal).compact(&records)?;
        Ok(())
    }
}

impl MemoryDenylist {
    /// Revoke a session; returns the record (always applied in memory) and whether it
    /// was made durable. Shared backends publish the record.
    pub(crate) fn revoke_session_record(
        &self,
        sid: &str,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> (Record, Result<(), RevocationError>) {
        let mut order = lock(&self.order);
        let key = SidKey::new(sid);
        // Visible first (with a safe upper-bound TTL), dated after.
        let upper = session_ttl(auth_time, i64::MAX, policy);
        self.sessions.insert(
            key.clone(),
            SessionEntry {
                exp: upper,
                at: i64::MAX,
                seq: u64::MAX,
            },
        );
        let at = clock.now();
        let exp = session_ttl(auth_time, at, policy);
        let seq = order.push(at, Slot::Session(key.clone()));
        self.sessions.insert(key, SessionEntry { exp, at, seq });
        let record = Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
        };
        let result = self.settle(&mut order, &record);
        (record, result)
    }

    /// Revoke every session of a subject up to now; as
    /// [`revoke_session_record`](Self::revoke_session_record).
    pub(crate) fn revoke_subject_record(
        &self,
        sub: &str,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> (Record, Result<(), RevocationError>) {
        let mut order = lock(&self.order);
        let key: Box<str> = sub.into();
        let previous = self.subjects.get(&key).map(|e| e.before);
        // Visible first, covering everything up to "forever"; then dated.
        self.subjects.insert(
            key.clone(),
            SubjectEntry {
                before: i64::MAX,
                exp: i64::MAX,
                at: i64::MAX,
                seq: u64::MAX,
            },
        );
        let at = clock.now();
        // A login in the same second as an earlier log-out-everywhere was dated one
        // second past it (see `subject_revoked_at`); a second one in that second must
        // still cover it.
        let before = match previous {
            Some(p) if p >= at => p.saturating_add(1),
            _ => at,
        };
        let exp = subject_ttl(before, policy);
        let seq = order.push(at, Slot::Subject(key.clone()));
        self.subjects.insert(
            key,
            SubjectEntry {
                before,
                exp,
                at,
                seq,
            },
        );
        let record = Record::Subject {
            sub: sub.to_owned(),
            before,
            exp,
            at,
        };
        let result = self.settle(&mut order, &record);
        (record, result)
    }

    /// After a revocation was queued: enforce the capacity (I4), then journal the
    /// revocation and any watermark the eviction raised.
    fn settle(&self, order: &mut Queue, record: &Record) -> Result<(), RevocationError> {
        let mut raised = Vec::new();
        self.evict(order, &mut raised);
        let mut records = vec![record.clone()];
        records.extend(raised.into_iter().map(|at| Record::Watermark { at }));
        crate::obs::denylist_size(self.held());
        self.journal_append(&records)
    }

    /// Apply a revocation made elsewhere (another instance), keeping whichever of the
    /// existing and the new entry refuses more. Watermark records are local and ignored.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn apply(&self, record: &Record) -> Result<(), RevocationError> {
        let mut order = lock(&self.order);
        let applied = match record {
            Record::Session { sid, exp, at } => {
                let key = SidKey::new(sid);
                let stronger = self.sessions.get(&key).is_none_or(|old| old.exp < *exp);
                stronger.then(|| {
                    let seq = order.push(*at, Slot::Session(key.clone()));
                    self.sessions.insert(
                        key,
                        SessionEntry {
                            exp: *exp,
                            at: *at,
                            seq,
                        },
                    );
                })
            }
            Record::Subject {
                sub,
                before,
                exp,
                at,
            } => {
                let key: Box<str> = sub.as_str().into();
                let merged = match self.subjects.get(&key).map(|e| *e) {
                    Some(old) if old.before >= *before && old.exp >= *exp => None,
                    Some(old) => Some((old.before.max(*before), old.exp.max(*exp))),
                    None => Some((*before, *exp)),
                };
                merged.map(|(before, exp)| {
                    let seq = order.push(*at, Slot::Subject(key.clone()));
                    self.subjects.insert(
                        key,
                        SubjectEntry {
                            before,
                            exp,
                            at: *at,
                            seq,
                        },
                    );
                })
            }
            Record::Watermark { .. } => None,
        };
        if applied.is_none() {
            return Ok(());
        }
        self.settle(&mut order, record)
    }
}

impl RevocationStore for MemoryDenylist {
    fn revoke_session(
        &self,
        sid: &str,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        self.revoke_session_record(sid, auth_time, policy, clock).1
    }

    fn revoke_subject(
        &self,
        sub: &str,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<i64, RevocationError> {
        let (record, result) = self.revoke_subject_record(sub, policy, clock);
        result?;
        Ok(match record {
            Record::Subject { before, .. } => before,
            _ => clock.now(),
        })
    }

    fn is_revoked(&self, token: TokenFacts<'_>) -> Result<bool, RevocationError> {
        // Entries first, watermark last: see `evict`.
        if self.sessions.contains_str(token.sid) {
            return Ok(true);
        }
        if self
            .subjects
            .get(token.sub)
            .is_some_and(|e| token.auth_time <= e.before)
        {
            return Ok(true);
        }
        Ok(token.lat <= self.watermark.load(Ordering::SeqCst))
    }

    fn subject_revoked_at(&self, sub: &str) -> Option<i64> {
        self.subjects.get(sub).map(|e| e.before)
    }

    fn sweep(&self, now: i64) -> usize {
        let mut order = lock(&self.order);
        let before = self.held();
        self.sessions.retain(|e| e.exp > now);
        self.subjects.retain(|_, e| e.exp > now);
        order
            .items
            .retain(|(_, seq, slot)| self.is_current(slot, *seq));
        let removed = before.saturating_sub(self.held());
        crate::obs::denylist_size(self.held());
        drop(order);
        if removed > 0 {
            tracing::debug!(removed, held = self.held(), "revocation sweep");
        }
        let stale = self
            .journal
            .as_ref()
            .is_some_and(|j| lock(j).lines() > 2 * self.held() + 1024);
        if stale && let Err(e) = self.compact_journal() {
            tracing::error!(error = %e, "revocation journal compaction failed");
        }
        removed
    }

    fn len(&self) -> usize {
        self.held()
    }
}

/// One revocation held by a [`MemoryDenylist`], as listed by
/// [`MemoryDenylist::snapshot`]. A read-only copy: changing it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationEntry {
    /// The revoked session id, or — for a subject revocation — the subject.
    pub id: String,
    /// `None` for a session revocation; `Some(T)` for a subject revocation: every
    /// session of that subject with `auth_time <= T` is refused.
    pub before: Option<i64>,
    /// When the revocation was recorded (UNIX seconds). `i64::MAX` for a revocation
    /// caught while it is being recorded (visible, not yet dated).
    pub revoked_at: i64,
    /// The end of its I2 TTL (UNIX seconds): a sweep at or after this drops it, since no
    /// token it refuses can still be valid then.
    pub expires_at: i64,
}

impl RevocationEntry {
    /// Whether this revokes every session of a subject (rather than one session).
    pub fn is_subject(&self) -> bool {
        self.before.is_some()
    }
}

impl MemoryDenylist {
    /// A copy of every revocation held now, sessions and subjects, ordered by
    /// revocation time (then id). Read-only; for operators' tools and diagnostics. Each
    /// entry is read consistently, but revocations made during the call may or may not
    /// be included. The overflow watermark is [`watermark`](Self::watermark).
    pub fn snapshot(&self) -> Vec<RevocationEntry> {
        let mut entries: Vec<RevocationEntry> = self
            .sessions
            .entries()
            .into_iter()
            .map(|(id, e)| RevocationEntry {
                id,
                before: None,
                revoked_at: e.at,
                expires_at: e.exp,
            })
            .collect();
        entries.extend(self.subjects.iter().map(|e| RevocationEntry {
            id: e.key().to_string(),
            before: Some(e.value().before),
            revoked_at: e.value().at,
            expires_at: e.value().exp,
        }));
        entries.sort_by(|a, b| (a.revoked_at, &a.id).cmp(&(b.revoked_at, &b.id)));
        entries
    }
}
