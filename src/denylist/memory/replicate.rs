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
        order.noted(at);
        self.sessions.insert(
            sid,
            SessionEntry {
                exp,
                at,
                floor: FULL,
            },
        );
        let record = Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
            floor: FULL,
        };
        let result = self.settle(order, &Victim::session(sid), &record);
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
        order.noted(at);
        self.sessions.insert(sid, SessionEntry { exp, at, floor });
        let record = Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
            floor,
        };
        let result = self.settle(order, &Victim::session(sid), &record);
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
        order.noted(at);
        self.subjects.insert(sub, SubjectEntry { before, exp, at });
        let record = Record::Subject {
            sub: sub.to_owned(),
            before,
            exp,
            at,
        };
        let result = self.settle(order, &Victim::Subject(sub.into()), &record);
        (record, result)
    }

    /// After a revocation was recorded: enforce the capacity (I4), then journal the
    /// revocation and any watermark the eviction raised.
    fn settle(
        &self,
        mut order: MutexGuard<'_, Evictor>,
        recorded: &Victim,
        record: &Record,
    ) -> Result<(), RevocationError> {
        let mut raised = Vec::new();
        self.evict(&mut order, Some(recorded), &mut raised);
        let mut records = vec![record.clone()];
        records.extend(raised.into_iter().map(|at| Record::Watermark { at }));
        self.report_fill();
        // Queued in the store's order; fsynced with the lock released, so revocations
        // made meanwhile share the fsync (group commit).
        let queued = self.journal_append(&records);
        drop(order);
        self.journal_durable(queued?)
    }

    /// Apply a revocation made elsewhere (another instance), keeping whichever of the
    /// existing and the new entry refuses more. Watermark records are local and ignored.
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
                    Some(old) => Some((old.exp.max(*exp), old.floor.max(*floor))),
                    None => Some((*exp, *floor)),
                };
                merged.map(|(exp, floor)| {
                    order.noted(*at);
                    self.sessions.insert(
                        sid,
                        SessionEntry {
                            exp,
                            at: *at,
                            floor,
                        },
                    );
                    Victim::session(sid)
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
                    Some(old) => Some((old.before.max(*before), old.exp.max(*exp))),
                    None => Some((*before, *exp)),
                };
                merged.map(|(before, exp)| {
                    order.noted(*at);
                    self.subjects.insert(
                        sub,
                        SubjectEntry {
                            before,
                            exp,
                            at: *at,
                        },
                    );
                    Victim::Subject(sub.as_str().into())
                })
            }
            Record::Watermark { .. } => None,
        };
        let Some(recorded) = applied else {
            return Ok(());
        };
        self.settle(order, &recorded, record)
    }
}
