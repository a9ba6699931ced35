//! The in-memory denylist: a compact revocation set, a fixed capacity with a watermark
//! instead of forgetting (I4), a sweeper (I2) and an optional journal (I1 across
//! restarts).
//!
//! The files by role: this one holds the store, its builder and its
//! [`RevocationStore`] answers; `table` the compact set (sharded open addressing over
//! 16-byte ids, 24 bytes a slot); `ids` what is held where (compact set, text for other
//! ids, subjects); `evict` eviction at capacity and the watermark; `restore` the journal
//! (restore at start, append, compaction); `replicate` recording revocations, local or
//! made elsewhere.

mod evict;
mod ids;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod overflow_tests;
mod replicate;
mod restore;
mod table;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use self::evict::Evictor;
use self::ids::{SessionMap, SubjectMap};
use super::journal::{FULL, Journal, JournalSummary, Record};
use super::{RevocationStore, TokenFacts};
use crate::claims::Policy;
use crate::clock::Clock;
use crate::error::RevocationError;

/// Default capacity: one million revocations.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// Bounded in-memory revocation store (the default backend).
///
/// * Revoked sessions of the crate's own ids (22 base64url characters) are held as their
///   16 bytes in a compact set: fixed 24-byte slots in sharded open-addressing tables,
///   about 32 bytes per revocation with the tables' free slots, no allocation per entry.
///   Any other id, and subjects ("log out everywhere"), are held exactly as text.
/// * A lookup takes one shard's read lock (no writer holds one for long: a sweep works
///   in chunks) and reads an atomic.
/// * At capacity, the **oldest** revocation is evicted and the *idle watermark* is raised
///   to its revocation time: every token whose last activity is at or before the
///   watermark is refused from then on. That only ends sessions that have been idle
///   longer than the evicted entry's age, and never silently re-admits a revoked one
///   (I4). Eviction is logged at `warn`, and so is a fill of 80 % and of 95 % of the
///   capacity, long before (with the `metrics` feature: the gauge
///   `jwt_session_denylist_fill_ratio`).
/// * [`sweep`](RevocationStore::sweep) drops entries past their I2 TTL.
/// * With a journal, each revocation is appended and fsynced before the call returns
///   (concurrent revocations share one fsync: group commit); the journal is compacted
///   when opened, so a restart forgets no logout.
pub struct MemoryDenylist {
    sessions: SessionMap,
    subjects: SubjectMap,
    order: Mutex<Evictor>,
    capacity: usize,
    /// The fill level last warned about: 0 (below 80 %), 1 (80 %), 2 (95 %).
    fill: AtomicU8,
    watermark: AtomicI64,
    evictions: AtomicU64,
    journal: Option<Journal>,
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
        let mut list = self.empty()?;
        if let Some(path) = &self.journal {
            list.open_journal(path, clock.now())?;
        }
        Ok(Arc::new(list))
    }

    /// Load the journal (if any) as [`build`](Self::build) would at `clock`'s now, but
    /// only read it: no lock, no compaction, nothing written (not even
    /// `<journal>.rejected`). For operators' tools that read the journal of a running
    /// server, such as `jwt-session status`. Also returns what the file's lines hold,
    /// unreadable ones included. A missing file reads as empty.
    ///
    /// The store it returns keeps no journal: revocations made on it are held in memory
    /// only, and the file is never touched again.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Journal`] if the journal cannot be read;
    /// [`RevocationError::Backend`] for a zero capacity.
    pub fn build_read_only(
        self,
        clock: &dyn Clock,
    ) -> Result<(Arc<MemoryDenylist>, JournalSummary), RevocationError> {
        let mut list = self.empty()?;
        let summary = match &self.journal {
            Some(path) => list.read_journal(path, clock.now())?,
            None => JournalSummary::default(),
        };
        Ok((Arc::new(list), summary))
    }

    /// A store with this capacity holding nothing, not yet journaled.
    fn empty(&self) -> Result<MemoryDenylist, RevocationError> {
        if self.capacity == 0 {
            return Err(RevocationError::Backend(
                "capacity must be at least 1".into(),
            ));
        }
        Ok(MemoryDenylist {
            sessions: SessionMap::default(),
            subjects: SubjectMap::default(),
            order: Mutex::new(Evictor::default()),
            capacity: self.capacity,
            fill: AtomicU8::new(0),
            watermark: AtomicI64::new(i64::MIN),
            evictions: AtomicU64::new(0),
            journal: None,
        })
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

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A capacity for a stated logout rate: the revocations live at once in the steady
    /// state, with room to spare. A session revocation lives at most `idle + leeway`
    /// after it is made (I2), so at `logouts_per_second` about `rate × (idle + leeway)`
    /// are live; this returns 1.5 times that (the steady state then fills two thirds,
    /// below the 80 % warning), rounded up, and at least 1. Pass the longest idle
    /// timeout any session can have (remembered sessions' too), and count
    /// "log out everywhere" as logouts.
    ///
    /// | logouts/s | idle (+ 5 s leeway) | capacity | memory at capacity (about 33 bytes each) |
    /// | ---: | ---: | ---: | ---: |
    /// | 116 (10M a day) | 30 min | 313,369 | 10 MB |
    /// | 116 | 8 h | 5,000,869 | 165 MB |
    /// | 116 | 7 d | 105,000,869 | 3.5 GB |
    ///
    /// ```
    /// use jwt_session::{MemoryDenylist, Policy};
    /// let policy = Policy::new(30 * 60, 8 * 3600, 60, 5).unwrap();
    /// // 10 million logouts a day.
    /// let capacity = MemoryDenylist::capacity_for(&policy, 10_000_000.0 / 86_400.0);
    /// assert_eq!(capacity, 313_369);
    /// ```
    pub fn capacity_for(policy: &Policy, logouts_per_second: f64) -> usize {
        let lifetime = policy.idle_timeout().saturating_add(policy.leeway()) as f64;
        let live = (logouts_per_second.max(0.0) * lifetime * 1.5).ceil();
        // `as` saturates (NaN gives 0): a rate too large for memory asks for the most.
        (live as usize).max(1)
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

    fn held(&self) -> usize {
        self.sessions.len() + self.subjects.len()
    }

    /// Report the size; warn (once per crossing) when the fill passes 80 % and 95 % of
    /// the capacity, so that an overflow is announced long before it evicts anything.
    fn report_fill(&self) {
        let held = self.held();
        crate::obs::denylist_size(held);
        crate::obs::denylist_fill(held, self.capacity);
        // Crossing up warns; the level falls back only well below (75 % / 90 %), so a
        // store hovering at a mark does not warn on every revocation.
        let percent = held.saturating_mul(100) / self.capacity;
        let old = self.fill.load(Ordering::Relaxed);
        let new = match old {
            _ if percent >= 95 => 2,
            2 if percent >= 90 => 2,
            _ if percent >= 80 => 1,
            1 | 2 if percent >= 75 => 1,
            _ => 0,
        };
        if new != old
            && self
                .fill
                .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && new > old
        {
            tracing::warn!(
                held,
                capacity = self.capacity,
                percent,
                "revocation denylist filling up: at capacity the oldest revocations are                  evicted and sessions idle since then must log in again; raise the capacity"
            );
        }
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

    fn retire_generations(
        &self,
        sid: &str,
        generation: u32,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        self.retire_record(sid, generation, auth_time, policy, clock)
            .1
    }

    fn is_revoked(&self, token: TokenFacts<'_>) -> Result<bool, RevocationError> {
        // Entries first, watermark last: see `evict`.
        if self
            .sessions
            .get_str(token.sid)
            .is_some_and(|e| token.generation < e.floor)
        {
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
        // Shard by shard, each under the `order` lock (changes stay exclusive, so the
        // counts stay exact) and in chunks of the shard's lock (readers wait for one
        // chunk at most). Entries of an eviction batch that go are skipped later.
        let mut removed = self.sessions.retain(
            |exp| exp > now,
            |part| {
                let order = lock(&self.order);
                part();
                drop(order);
            },
        );
        {
            let _order = lock(&self.order);
            removed += self.subjects.retain(|e| e.exp > now);
        }
        self.report_fill();
        if removed > 0 {
            tracing::debug!(removed, held = self.held(), "revocation sweep");
        }
        let stale = self
            .journal
            .as_ref()
            .is_some_and(|j| j.lines() > 2 * self.held() + 1024);
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
    /// For a session revocation made by an update that retired older tokens
    /// ([`Update::retire_older`](crate::Update::retire_older)): tokens of the session
    /// below this generation are refused, newer ones accepted. `None` for a revoked
    /// session (every token refused) and for subject revocations.
    pub retired_below: Option<u32>,
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
                retired_below: (e.floor != FULL).then_some(e.floor),
                expires_at: e.exp,
            })
            .collect();
        entries.extend(
            self.subjects
                .entries()
                .into_iter()
                .map(|(id, e)| RevocationEntry {
                    id,
                    before: Some(e.before),
                    revoked_at: e.at,
                    retired_below: None,
                    expires_at: e.exp,
                }),
        );
        entries.sort_by(|a, b| (a.revoked_at, &a.id).cmp(&(b.revoked_at, &b.id)));
        entries
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::MemoryDenylist;
    use crate::claims::Policy;
    use crate::clock::{Clock as _, ManualClock};
    use crate::denylist::journal::{FULL, Record};
    use crate::denylist::{RevocationStore, TokenFacts};

    #[test]
    fn capacity_for_follows_the_rate_and_the_idle_timeout_and_is_never_zero() {
        let policy = Policy::new(1800, 8 * 3600, 60, 5).unwrap();
        assert_eq!(MemoryDenylist::capacity_for(&policy, 1.0), 2708);
        assert_eq!(MemoryDenylist::capacity_for(&policy, 0.0), 1);
        assert_eq!(MemoryDenylist::capacity_for(&policy, -3.0), 1);
        assert_eq!(MemoryDenylist::capacity_for(&policy, f64::NAN), 1);
        assert_eq!(
            MemoryDenylist::capacity_for(&policy, f64::INFINITY),
            usize::MAX
        );
        let longer = Policy::new(8 * 3600, 8 * 3600, 60, 5).unwrap();
        assert_eq!(MemoryDenylist::capacity_for(&longer, 1.0), 43_208);
    }

    /// The per-map counts that let `is_revoked` skip an empty map equal the entries held
    /// after every kind of change: revoke (new and again), retire, replay, eviction at
    /// capacity, sweep, and a restart from the journal.
    #[test]
    fn counts_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let clock = ManualClock::new(1_000_000);
        let policy = Policy::new(1800, 8 * 3600, 60, 0).unwrap();
        let inline = "AAAAAAAAAAAAAAAAAAAAAA"; // 22 bytes: held inline
        let exact = |list: &MemoryDenylist, sessions: usize, subjects: usize| {
            assert_eq!(list.sessions.counted(), (sessions, sessions), "sessions");
            assert_eq!(list.subjects.counted(), (subjects, subjects), "subjects");
        };
        let facts = |sid, sub| TokenFacts {
            sid,
            sub,
            auth_time: 999_000,
            lat: 1_500_000,
            generation: 0,
        };
        let list = MemoryDenylist::builder()
            .capacity(4)
            .journal(&path)
            .build(&clock)
            .unwrap();
        exact(&list, 0, 0);
        assert!(!list.is_revoked(facts(inline, "bob")).unwrap());

        list.revoke_session(inline, 999_000, &policy, &clock)
            .unwrap();
        exact(&list, 1, 0);
        list.revoke_session(inline, 999_000, &policy, &clock)
            .unwrap();
        exact(&list, 1, 0);
        list.revoke_session("text-id", 999_000, &policy, &clock)
            .unwrap();
        exact(&list, 2, 0);
        list.retire_generations("retired", 3, 999_000, &policy, &clock)
            .unwrap();
        exact(&list, 3, 0);
        list.revoke_subject("bob", &policy, &clock).unwrap();
        exact(&list, 3, 1);
        list.revoke_subject("bob", &policy, &clock).unwrap();
        exact(&list, 3, 1);
        assert!(list.is_revoked(facts(inline, "alice")).unwrap());
        assert!(list.is_revoked(facts("other", "bob")).unwrap());
        assert!(!list.is_revoked(facts("other", "alice")).unwrap());

        // Replayed from another instance: merged into a held entry, or new (and then
        // over capacity: the oldest is evicted).
        list.apply(&Record::Session {
            sid: "text-id".into(),
            exp: 1_000_000 + 10 * 3600,
            at: 1_000_000,
            floor: FULL,
        })
        .unwrap();
        exact(&list, 3, 1);
        clock.advance(Duration::from_secs(1));
        list.apply(&Record::Subject {
            sub: "carol".into(),
            before: 1_000_001,
            exp: 1_000_001 + 9 * 3600,
            at: 1_000_001,
        })
        .unwrap();
        assert_eq!(list.evictions(), 1);
        exact(&list, 2, 2);

        // A restart loads what the journal holds.
        drop(list);
        let list = MemoryDenylist::builder()
            .capacity(4)
            .journal(&path)
            .build(&clock)
            .unwrap();
        exact(&list, 2, 2);

        // A sweep past every TTL empties both maps; lookups skip them again.
        clock.advance(Duration::from_secs(30 * 24 * 3600));
        list.sweep(clock.now());
        exact(&list, 0, 0);
        assert!(!list.is_revoked(facts(inline, "bob")).unwrap());
    }
}
