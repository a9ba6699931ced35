//! Eviction at capacity (I4): the queue of revocations in eviction order, each item named
//! by a unique sequence number, and the idle watermark an eviction raises.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::MemoryDenylist;
use super::ids::SidKey;

/// Revocations in eviction order: `(at, seq, key)`, oldest first. Each entry's `seq` is
/// unique, so an item is current only while its entry still carries the same `seq`.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) items: VecDeque<(i64, u64, QueuedKey)>,
    next: u64,
}

impl Queue {
    /// Queue `key` revoked at `at`; returns the `seq` its entry must carry.
    pub(super) fn push(&mut self, at: i64, key: QueuedKey) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.items.push_back((at, seq, key));
        seq
    }
}

/// The key of the revocation a queue item stands for: which map, and which entry in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum QueuedKey {
    Session(SidKey),
    Subject(Box<str>),
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

    /// Whether the queue item `seq` for `key` still stands for the entry held.
    pub(super) fn is_current(&self, key: &QueuedKey, seq: u64) -> bool {
        match key {
            QueuedKey::Session(sid) => self.sessions.get(sid).is_some_and(|e| e.seq == seq),
            QueuedKey::Subject(sub) => self.subjects.get(sub).is_some_and(|e| e.seq == seq),
        }
    }

    /// Evict oldest entries while over capacity; each watermark raised is pushed onto
    /// `raised`.
    ///
    /// The revocation being recorded is queued last and carries the newest `seq`, so it
    /// is never the one evicted (capacity is at least one): the store always answers
    /// for the revocation it just acknowledged.
    pub(super) fn evict(&self, order: &mut Queue, raised: &mut Vec<i64>) {
        while self.held() > self.capacity {
            let Some((at, seq, key)) = order.items.pop_front() else {
                break;
            };
            // Every mutation holds the `order` lock, so "is this entry still the one
            // queued" cannot change between the check and the removal. The watermark is
            // raised *before* the entry goes, and `is_revoked` reads entries before the
            // watermark: a concurrent check always sees one or the other (I4).
            let current = self.is_current(&key, seq);
            if current {
                self.watermark.fetch_max(at, Ordering::SeqCst);
                match &key {
                    QueuedKey::Session(sid) => self.sessions.remove(sid),
                    QueuedKey::Subject(sub) => self.subjects.remove(sub),
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
}
