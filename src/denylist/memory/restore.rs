//! The journal side of the store: restoring revocations from a journal at start, then
//! appending each new one and compacting the file.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use super::evict::QueuedKey;
use super::ids::{SessionEntry, SidKey, SubjectEntry};
use super::{MemoryDenylist, lock};
use crate::denylist::journal::{Journal, Record};
use crate::error::RevocationError;

impl MemoryDenylist {
    /// Open the journal at `path` (taking its lock), load what is live at `now`, and
    /// rewrite the file with what survived eviction.
    pub(super) fn open_journal(&mut self, path: &Path, now: i64) -> Result<(), RevocationError> {
        let (journal, loaded) = Journal::open(path, now)?;
        if loaded.unreadable > 0 {
            tracing::warn!(
                journal = %path.display(),
                unreadable = loaded.unreadable,
                "skipped unreadable revocation journal lines (torn write or corruption)"
            );
        }
        let restored = loaded.records.len();
        self.restore_all(loaded.records);
        tracing::info!(journal = %path.display(), restored, "revocation journal loaded");
        self.journal = Some(Mutex::new(journal));
        // Re-write what survived eviction, so the file is compact and consistent.
        self.compact_journal()
    }

    /// Restore journal records in journal order, then enforce the capacity.
    fn restore_all(&mut self, records: Vec<Record>) {
        for record in records {
            self.restore(record);
        }
        self.evict_restored();
    }

    fn restore(&mut self, record: Record) {
        let order = self.order.get_mut().unwrap_or_else(PoisonError::into_inner);
        match record {
            Record::Session { sid, exp, at } => {
                let sid = SidKey::new(&sid);
                let seq = order.push(at, QueuedKey::Session(sid.clone()));
                self.sessions.insert(sid, SessionEntry { exp, at, seq });
            }
            Record::Subject {
                sub,
                before,
                exp,
                at,
            } => {
                let sub: Box<str> = sub.into();
                let seq = order.push(at, QueuedKey::Subject(sub.clone()));
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

    /// Append `records` to the journal (if any), each fsynced before the next.
    pub(super) fn journal_append(&self, records: &[Record]) -> Result<(), RevocationError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let mut journal = lock(journal);
        for record in records {
            journal.append(record)?;
        }
        Ok(())
    }

    /// Rewrite the journal (if any) with exactly what is held now.
    pub(super) fn compact_journal(&self) -> Result<(), RevocationError> {
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
