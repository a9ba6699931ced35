//! The journal side of the store: restoring revocations from a journal at start, then
//! appending each new one and compacting the file; or, for operators' tools, only
//! reading it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use super::evict::QueuedKey;
use super::ids::{SessionEntry, SidKey, SubjectEntry};
use super::{MemoryDenylist, lock};
use crate::denylist::journal::{self, Journal, JournalSummary, Record};
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

    /// Read the journal at `path` without opening it for writing (see
    /// [`journal::read`]) and load what is live at `now`; the store stays unjournaled.
    pub(super) fn read_journal(
        &mut self,
        path: &Path,
        now: i64,
    ) -> Result<JournalSummary, RevocationError> {
        let (loaded, summary) = journal::read(path, now)?;
        self.restore_all(loaded.records);
        Ok(summary)
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
            Record::Session {
                sid,
                exp,
                at,
                floor,
            } => {
                let sid = SidKey::new(&sid);
                let seq = order.push(at, QueuedKey::Session(sid.clone()));
                self.sessions.insert(
                    sid,
                    SessionEntry {
                        exp,
                        at,
                        seq,
                        floor,
                    },
                );
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
                floor: e.floor,
            });
        }
        for (sub, e) in self.subjects.entries() {
            records.push(Record::Subject {
                sub,
                before: e.before,
                exp: e.exp,
                at: e.at,
            });
        }
        lock(journal).compact(&records)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write as _;
    use std::time::Duration;

    use crate::claims::Policy;
    use crate::clock::ManualClock;
    use crate::denylist::{MemoryDenylist, RevocationStore};

    #[test]
    fn a_read_only_load_sees_what_a_running_store_holds_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let clock = ManualClock::new(1_000_000);
        let policy = Policy::new(1800, 8 * 3600, 60, 0).unwrap();
        let server = MemoryDenylist::builder()
            .capacity(2)
            .journal(&path)
            .build(&clock)
            .unwrap();
        server
            .revoke_session("s1", 999_000, &policy, &clock)
            .unwrap();
        clock.advance(Duration::from_secs(1));
        server
            .revoke_session("s2", 999_000, &policy, &clock)
            .unwrap();
        // Over capacity: s1 is evicted and the watermark raised, both journaled.
        server.revoke_subject("bob", &policy, &clock).unwrap();
        assert_eq!(server.watermark(), Some(1_000_000));
        // A torn last line, as a crash mid-append leaves.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"t\":\"s\",\"sid\":\"x").unwrap();
        let files = || {
            let mut names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let (bytes, names) = (std::fs::read(&path).unwrap(), files());

        // The server holds the lock; a read-only load needs none.
        let (copy, summary) = MemoryDenylist::builder()
            .capacity(2)
            .journal(&path)
            .build_read_only(&clock)
            .unwrap();
        assert_eq!(copy.snapshot(), server.snapshot());
        assert_eq!(copy.watermark(), server.watermark());
        assert_eq!(
            (summary.sessions, summary.subjects, summary.watermarks),
            (2, 1, 1)
        );
        assert_eq!(summary.unreadable, 1);
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "not rewritten");
        assert_eq!(files(), names, "no .rejected or .compacting written");

        // What is past its TTL at the reader's now is not loaded, as at a start.
        clock.advance(Duration::from_secs(9 * 3600));
        let (later, _) = MemoryDenylist::builder()
            .journal(&path)
            .build_read_only(&clock)
            .unwrap();
        assert!(later.snapshot().is_empty());
        assert_eq!(later.watermark(), Some(1_000_000));
    }
}
