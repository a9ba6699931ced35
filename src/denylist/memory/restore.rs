//! The journal side of the store: restoring revocations from a journal at start, then
//! appending each new one and compacting the file; or, for operators' tools, only
//! reading it.

use std::path::Path;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::MemoryDenylist;
use super::ids::{SessionEntry, SubjectEntry};
use crate::denylist::journal::{self, Journal, JournalSummary, Queued, Record};
use crate::error::RevocationError;

impl MemoryDenylist {
    /// Open the journal at `path` (taking its lock), load what is live at `now`, and
    /// rewrite the file with what survived eviction.
    pub(super) fn open_journal(&mut self, path: &Path, now: i64) -> Result<(), RevocationError> {
        // Each record goes into the store as it is read: the load costs the store, not
        // the file nor a list of its records.
        let mut restored = 0usize;
        let (journal, loaded) = Journal::open_into(path, now, &mut |record| {
            restored += 1;
            self.restore(record);
        })?;
        self.evict_restored();
        if loaded.unreadable > 0 {
            tracing::warn!(
                journal = %path.display(),
                unreadable = loaded.unreadable,
                "skipped unreadable revocation journal lines (torn write or corruption)"
            );
        }
        tracing::info!(journal = %path.display(), restored, "revocation journal loaded");
        self.journal = Some(journal);
        // Re-write what survived eviction, so the file is compact and consistent (the
        // load left it as it was: expired lines, a torn last line).
        self.compact_journal()
    }

    /// Read the journal at `path` without opening it for writing (see
    /// [`journal::read_into`]) and load what is live at `now`; the store stays unjournaled.
    pub(super) fn read_journal(
        &mut self,
        path: &Path,
        now: i64,
    ) -> Result<JournalSummary, RevocationError> {
        let summary = journal::read_into(path, now, &mut |record| self.restore(record))?;
        self.evict_restored();
        Ok(summary)
    }

    fn restore(&mut self, record: Record) {
        // A later line for the same key replaces an earlier one (journal order).
        match record {
            Record::Session {
                sid,
                exp,
                at,
                floor,
            } => {
                self.sessions.insert(&sid, SessionEntry { exp, at, floor });
            }
            Record::Subject {
                sub,
                before,
                exp,
                at,
            } => self.subjects.insert(&sub, SubjectEntry { before, exp, at }),
            Record::Watermark { at } => {
                self.watermark.fetch_max(at, Ordering::SeqCst);
            }
        }
    }

    /// After restoring a journal: enforce the capacity, oldest revocations first.
    fn evict_restored(&mut self) {
        let mut order =
            std::mem::take(self.order.get_mut().unwrap_or_else(PoisonError::into_inner));
        let mut raised = Vec::new();
        self.evict(&mut order, None, &mut raised);
        *self.order.get_mut().unwrap_or_else(PoisonError::into_inner) = order;
    }

    /// Queue `records` for the journal (if any), under the `order` lock so the file's
    /// order is the store's; then, with that lock released,
    /// [`journal_durable`](Self::journal_durable) waits until they are fsynced (one
    /// fsync for every revocation queued meanwhile).
    pub(super) fn journal_append(
        &self,
        records: &[Record],
    ) -> Result<Option<Queued>, RevocationError> {
        match &self.journal {
            Some(journal) => Ok(Some(journal.append(records)?)),
            None => Ok(None),
        }
    }

    /// Return once what [`journal_append`](Self::journal_append) queued is durable; an
    /// error if the write or fsync of its batch failed. Call without holding the store's
    /// locks.
    pub(super) fn journal_durable(&self, queued: Option<Queued>) -> Result<(), RevocationError> {
        match (&self.journal, queued) {
            (Some(journal), Some(queued)) => Ok(journal.wait(queued)?),
            _ => Ok(()),
        }
    }

    /// Rewrite the journal (if any) with exactly what is held now. Revocations made
    /// meanwhile are kept: the journal writes them again after this snapshot.
    pub(super) fn compact_journal(&self) -> Result<(), RevocationError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal.compact(|| self.journal_snapshot())?;
        Ok(())
    }

    /// What is held now, as journal records: the watermark first.
    fn journal_snapshot(&self) -> Vec<Record> {
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
        records
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
    use crate::error::RevocationError;

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

    /// A failed fsync reaches every revocation of the batch as a `Journal` error (the
    /// revocations still apply in this process); once the disk is back, revocations are
    /// durable again.
    #[test]
    fn a_failed_fsync_fails_every_concurrent_revocation_in_it() {
        fn no_space(_: &std::fs::File) -> std::io::Result<()> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left",
            ))
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let clock = std::sync::Arc::new(ManualClock::new(1_000_000));
        let policy = Policy::new(1800, 8 * 3600, 60, 0).unwrap();
        let list = MemoryDenylist::builder()
            .journal(&path)
            .build(&*clock)
            .unwrap();
        list.journal.as_ref().unwrap().set_sync(no_space);
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let (list, clock) = (list.clone(), clock.clone());
                std::thread::spawn(move || {
                    list.revoke_session(&format!("s{t}"), 999_000, &policy, &*clock)
                })
            })
            .collect();
        for w in workers {
            let err = w.join().unwrap().unwrap_err();
            assert!(
                matches!(&err, RevocationError::Journal(e) if e.kind() == std::io::ErrorKind::StorageFull),
                "{err:?}"
            );
        }
        assert_eq!(list.snapshot().len(), 8, "applied in memory all the same");

        list.journal
            .as_ref()
            .unwrap()
            .set_sync(std::fs::File::sync_data);
        list.revoke_subject("bob", &policy, &*clock).unwrap();
        drop(list);
        let restarted = MemoryDenylist::builder()
            .journal(&path)
            .build(&*clock)
            .unwrap();
        assert_eq!(restarted.subject_revoked_at("bob"), Some(1_000_000));
    }

    /// Compactions (as a sweep starts them) while threads revoke: a restart holds every
    /// revocation whose call returned Ok.
    #[test]
    fn compaction_while_revoking_loses_no_acknowledged_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        let clock = std::sync::Arc::new(ManualClock::new(1_000_000));
        let policy = Policy::new(1800, 8 * 3600, 60, 0).unwrap();
        let list = MemoryDenylist::builder()
            .journal(&path)
            .build(&*clock)
            .unwrap();
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let (list, clock) = (list.clone(), clock.clone());
                std::thread::spawn(move || {
                    for i in 0..60 {
                        let sid = format!("s{t}-{i:02}");
                        list.revoke_session(&sid, 999_000, &policy, &*clock)
                            .unwrap();
                    }
                })
            })
            .collect();
        let mut compactions = 0;
        while workers.iter().any(|w| !w.is_finished()) {
            list.compact_journal().unwrap();
            compactions += 1;
        }
        for w in workers {
            w.join().unwrap();
        }
        assert!(compactions > 0);
        let held = list.snapshot();
        assert_eq!(held.len(), 8 * 60);
        drop(list);
        let restarted = MemoryDenylist::builder()
            .journal(&path)
            .build(&*clock)
            .unwrap();
        assert_eq!(restarted.snapshot(), held);
    }
}
