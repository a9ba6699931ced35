//! Recording revocations: local ones (which return the record, so a shared backend can
//! publish it) and ones made elsewhere and replayed here, merged so the stronger wins.
//! Both end in one settle step: evict at capacity, journal, report the size.

use std::sync::MutexGuard;

use super::evict::Evictor;
use super::ids::{SessionEntry, SubjectEntry, Victim};
use super::{MemoryDenylist, lock};
use crate::claims::Policy;
use crate::clock::Clock;
use crate::denylist::journal::{FULL, Record};
use crate::denylist::{session_ttl, subject_ttl};
use crate::error::RevocationError;

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
        // Visible first (with a safe upper-bound TTL), dated after.
        let upper = session_ttl(auth_time, i64::MAX, policy);
        self.sessions.insert(
            sid,
            SessionEntry {
                exp: upper,
                at: i64::MAX,
                floor: FULL,
            },
        );
        let at = clock.now();
        let exp = session_ttl(auth_time, at, policy);
        let held = self.sessions.insert(
            sid,
            SessionEntry {
                exp,
                at,
                floor: FULL,
            },
        );
        order.noted(at, &held);
        let record = Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
            floor: FULL,
        };
        let result = self.settle(order, &held, || record.clone());
        (record, result)
    }

    /// Refuse tokens of session `sid` below `generation` from now on; as
    /// [`revoke_session_record`](Self::revoke_session_record). Merged with what is held:
    /// the higher floor and the later expiry win (a revoked session stays revoked).
    pub(crate) fn retire_record(
        &self,
        sid: &str,
        generation: u32,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> (Record, Result<(), RevocationError>) {
        let mut order = lock(&self.order);
        let held = self.sessions.get(sid);
        let at = clock.now();
        let exp = session_ttl(auth_time, at, policy).max(held.map_or(i64::MIN, |e| e.exp));
        let floor = generation.max(held.map_or(0, |e| e.floor));
        let held = self.sessions.insert(sid, SessionEntry { exp, at, floor });
        order.noted(at, &held);
        let record = Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
            floor,
        };
        let result = self.settle(order, &held, || record.clone());
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
        let previous = self.subjects.get(sub).map(|e| e.before);
        // Visible first, covering everything up to "forever"; then dated.
        self.subjects.insert(
            sub,
            SubjectEntry {
                before: i64::MAX,
                exp: i64::MAX,
                at: i64::MAX,
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
        self.subjects.insert(sub, SubjectEntry { before, exp, at });
        order.noted(at, &Victim::Subject(sub.into()));
        let record = Record::Subject {
            sub: sub.to_owned(),
            before,
            exp,
            at,
        };
        let result = self.settle(order, &Victim::Subject(sub.into()), || record.clone());
        (record, result)
    }

    /// After a revocation was recorded: enforce the capacity (I4), then journal the
    /// revocation (`record` is only called when there is a journal) and any watermark
    /// the eviction raised.
    fn settle(
        &self,
        mut order: MutexGuard<'_, Evictor>,
        recorded: &Victim,
        record: impl FnOnce() -> Record,
    ) -> Result<(), RevocationError> {
        let mut raised = Vec::new();
        self.evict(&mut order, Some(recorded), &mut raised);
        self.report_fill();
        if self.journal.is_none() {
            // Nothing to write (a mirror replaying a million revocations at a cold start
            // spends no allocation here).
            return Ok(());
        }
        let mut records = vec![record()];
        records.extend(raised.into_iter().map(|at| Record::Watermark { at }));
        // Queued in the store's order; fsynced with the lock released, so revocations
        // made meanwhile share the fsync (group commit).
        let queued = self.journal_append(&records);
        drop(order);
        self.journal_durable(queued?)
    }

    /// Apply a revocation made elsewhere (another instance), keeping whichever of the
    /// existing and the new entry refuses more. Watermark records are local and ignored.
    ///
    /// The merge keeps the later revocation time too: an eviction raises the watermark to
    /// the entry's time, which must cover every token the entry refused (I4). What is
    /// journaled is the merged entry, not the incoming record: a journal replays "the
    /// later line for a key wins", so a weaker record there would weaken the entry after
    /// a restart (I1).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn apply(&self, record: &Record) -> Result<(), RevocationError> {
        let mut order = lock(&self.order);
        let applied = match record {
            Record::Session {
                sid,
                exp,
                at,
                floor,
            } => {
                let merged = match self.sessions.get(sid) {
                    Some(old) if old.exp >= *exp && old.floor >= *floor => None,
                    Some(old) => Some(SessionEntry {
                        exp: old.exp.max(*exp),
                        at: old.at.max(*at),
                        floor: old.floor.max(*floor),
                    }),
                    None => Some(SessionEntry {
                        exp: *exp,
                        at: *at,
                        floor: *floor,
                    }),
                };
                merged.map(|entry| {
                    let held = self.sessions.insert(sid, entry);
                    order.noted(entry.at, &held);
                    let merged = Merged::Session(sid, entry);
                    (held, merged)
                })
            }
            Record::Subject {
                sub,
                before,
                exp,
                at,
            } => {
                let merged = match self.subjects.get(sub) {
                    Some(old) if old.before >= *before && old.exp >= *exp => None,
                    Some(old) => Some(SubjectEntry {
                        before: old.before.max(*before),
                        exp: old.exp.max(*exp),
                        at: old.at.max(*at),
                    }),
                    None => Some(SubjectEntry {
                        before: *before,
                        exp: *exp,
                        at: *at,
                    }),
                };
                merged.map(|entry| {
                    self.subjects.insert(sub, entry);
                    let held = Victim::Subject(sub.as_str().into());
                    order.noted(entry.at, &held);
                    (held, Merged::Subject(sub, entry))
                })
            }
            Record::Watermark { .. } => None,
        };
        let Some((held, merged)) = applied else {
            return Ok(());
        };
        self.settle(order, &held, || merged.record())
    }
}

/// The entry [`MemoryDenylist::apply`] holds after a merge, made a record only for the
/// journal.
enum Merged<'a> {
    Session(&'a str, SessionEntry),
    Subject(&'a str, SubjectEntry),
}

impl Merged<'_> {
    fn record(&self) -> Record {
        match *self {
            Merged::Session(sid, e) => Record::Session {
                sid: sid.to_owned(),
                exp: e.exp,
                at: e.at,
                floor: e.floor,
            },
            Merged::Subject(sub, e) => Record::Subject {
                sub: sub.to_owned(),
                before: e.before,
                exp: e.exp,
                at: e.at,
            },
        }
    }
}
