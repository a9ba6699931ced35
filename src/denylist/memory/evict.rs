//! Eviction at capacity (I4) without a per-entry queue: when the store is over capacity
//! it evicts one of the oldest revocations (by revocation time, in whole seconds) and
//! raises the idle watermark to its time. The oldest are found by scanning: one scan
//! gathers a batch of the oldest entries (a bounded max-heap of their revocation times),
//! and evictions take them oldest first until the batch runs out, so at capacity a scan
//! of the whole store is paid once per batch, not once per revocation.
//!
//! A batch stays "the oldest" when something older than its newest member is recorded (a
//! revocation replayed from another instance or a journal may be): that record joins the
//! batch in its place and the newest member makes room ([`Evictor::noted`]), so every
//! entry outside the batch stays at or after the batch's newest time — without a new
//! scan, which a resync delivering records in random order would otherwise pay on every
//! record. A member whose entry changed since (revoked again, swept) is skipped: it is
//! current only while its entry carries the same revocation time, checked under the
//! shard lock that removes it.

use std::collections::{BTreeSet, BinaryHeap};
use std::sync::atomic::Ordering;

use super::MemoryDenylist;
use super::ids::Victim;

/// The batch of eviction candidates, `(at, key)` in order (the first is the oldest).
#[derive(Debug, Default)]
pub(super) struct Evictor {
    batch: BTreeSet<(i64, Victim)>,
    /// Scans of the whole store so far (what the batch saves; checked by tests).
    scans: u64,
}

impl Evictor {
    /// A revocation dated `at` was recorded as `victim`: if it is older than some
    /// candidate, it takes the newest candidate's place in the batch (which keeps its
    /// size), so the batch still holds the oldest entries.
    pub(super) fn noted(&mut self, at: i64, victim: &Victim) {
        if self.batch.last().is_some_and(|(newest, _)| at < *newest) {
            self.batch.insert((at, victim.clone()));
            self.batch.pop_last();
        }
    }
}

impl MemoryDenylist {
    /// Tokens with `lat` at or before this are refused (raised by overflow).
    /// `None` until the first overflow.
    pub fn watermark(&self) -> Option<i64> {
        Some(self.watermark.load(Ordering::SeqCst)).filter(|w| *w != i64::MIN)
    }

    /// How many revocations were evicted by overflow since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// How many candidates one scan gathers.
    fn batch_size(&self) -> usize {
        (self.capacity / 64).clamp(1, 1 << 16)
    }

    /// Gather the oldest entries but `keep` into the batch.
    fn gather(&self, evictor: &mut Evictor, keep: Option<&Victim>) {
        let size = self.batch_size();
        let mut heap: BinaryHeap<(i64, Victim)> = BinaryHeap::with_capacity(size + 1);
        let mut offer = |at: i64, key: &dyn Fn() -> Victim| {
            if heap.len() == size && heap.peek().is_some_and(|(newest, _)| at >= *newest) {
                return;
            }
            let key = key();
            if keep == Some(&key) {
                return;
            }
            heap.push((at, key));
            if heap.len() > size {
                heap.pop();
            }
        };
        self.sessions.each_at(&mut offer);
        self.subjects.each_at(&mut offer);
        evictor.batch = heap.into_iter().collect();
        evictor.scans += 1;
    }

    /// Evict oldest entries while over capacity, never `keep` (the revocation being
    /// recorded: the store always answers for the revocation it just acknowledged; the
    /// capacity is at least one, so there is always another to evict). Each watermark
    /// raised is pushed onto `raised`.
    pub(super) fn evict(
        &self,
        evictor: &mut Evictor,
        keep: Option<&Victim>,
        raised: &mut Vec<i64>,
    ) {
        // Whether a scan just ran and nothing was evicted since.
        let mut fresh = false;
        while self.held() > self.capacity {
            let Some((at, victim)) = evictor.batch.pop_first() else {
                if fresh {
                    // A whole fresh batch was stale: cannot happen under the order lock,
                    // but never loop forever.
                    break;
                }
                self.gather(evictor, keep);
                fresh = true;
                if evictor.batch.is_empty() {
                    break;
                }
                tracing::warn!(
                    capacity = self.capacity,
                    held = self.held(),
                    oldest = evictor.batch.first().map(|(at, _)| *at),
                    evicted_so_far = self.evictions(),
                    "revocation denylist full: evicting the oldest revocations and raising the \
                     idle watermark; sessions idle since then must log in again"
                );
                continue;
            };
            if keep == Some(&victim) {
                continue;
            }
            // Every mutation holds the `order` lock, so "is this entry still the one
            // gathered" cannot change between the check and the removal. The watermark is
            // raised *before* the entry goes, under the lock a reader of the entry needs,
            // and `is_revoked` reads entries before the watermark: a concurrent check
            // always sees one or the other (I4).
            let raise = || {
                self.watermark.fetch_max(at, Ordering::SeqCst);
            };
            let gone = match &victim {
                Victim::Subject(sub) => self.subjects.evict(sub, at, raise),
                _ => self.sessions.evict(&victim, at, raise),
            };
            if gone {
                fresh = false;
                self.evictions.fetch_add(1, Ordering::Relaxed);
                crate::obs::evicted();
                raised.push(at);
                tracing::debug!(watermark = at, "evicted a revocation");
            }
        }
    }
}

#[cfg(test)]
impl MemoryDenylist {
    /// How many times eviction scanned the whole store.
    pub(super) fn eviction_scans(&self) -> u64 {
        super::lock(&self.order).scans
    }
}
