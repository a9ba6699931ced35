//! Recording revocations: local ones (which return the record, so a shared backend can
//! publish it) and ones made elsewhere and replayed here, merged so the stronger wins.
//! Both end in one settle step: evict at capacity, journal, report the size.

use std::sync::MutexGuard;

use super::evict::{Queue, QueuedKey};
use super::ids::{SessionEntry, SidKey, SubjectEntry};
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
        let key = SidKey::new(sid);
        // Visible first (with a safe upper-bound TTL), dated after.
        let upper = session_ttl(auth_time, i64::MAX, policy);
        self.sessions.insert(
            key.clone(),
            SessionEntry {
                exp: upper,
                at: i64::MAX,
                seq: u64::MAX,
                floor: FULL,
            },
        );
        let at = clock.now();
        let exp = session_ttl(auth_time, at, policy);
        let seq = order.push(at, QueuedKey::Session(key.clone()));
        self.sessions.insert(
            key,
            SessionEntry {
                exp,
                at,
                seq,
                floor: FULL,
            },
        );
        let record = Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
            floor: FULL,
        };
        let result = self.settle(order, &record);
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
        let key = SidKey::new(sid);
        let held = self.sessions.get(&key);
        let at = clock.now();
        let exp = session_ttl(auth_time, at, policy).max(held.map_or(i64::MIN, |e| e.exp));
        let floor = generation.max(held.map_or(0, |e| e.floor));
        let seq = order.push(at, QueuedKey::Session(key.clone()));
        self.sessions.insert(
            key,
            SessionEntry {
                exp,
                at,
                seq,
                floor,
            },
        );
        let record = Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
            floor,
        };
        let result = self.settle(order, &record);
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
        let seq = order.push(at, QueuedKey::Subject(key.clone()));
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
        let result = self.settle(order, &record);
        (record, result)
    }

    /// After a revocation was queued: enforce the capacity (I4), then journal the
    /// revocation and any watermark the eviction raised.
    fn settle(
        &self,
        mut order: MutexGuard<'_, Queue>,
        record: &Record,
    ) -> Result<(), RevocationError> {
        let mut raised = Vec::new();
        self.evict(&mut order, &mut raised);
        let mut records = vec![record.clone()];
        records.extend(raised.into_iter().map(|at| Record::Watermark { at }));
        crate::obs::denylist_size(self.held());
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
                let key = SidKey::new(sid);
                let merged = match self.sessions.get(&key) {
                    Some(old) if old.exp >= *exp && old.floor >= *floor => None,
                    Some(old) => Some((old.exp.max(*exp), old.floor.max(*floor))),
                    None => Some((*exp, *floor)),
                };
                merged.map(|(exp, floor)| {
                    let seq = order.push(*at, QueuedKey::Session(key.clone()));
                    self.sessions.insert(
                        key,
                        SessionEntry {
                            exp,
                            at: *at,
                            seq,
                            floor,
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
                let merged = match self.subjects.get(&key) {
                    Some(old) if old.before >= *before && old.exp >= *exp => None,
                    Some(old) => Some((old.before.max(*before), old.exp.max(*exp))),
                    None => Some((*before, *exp)),
                };
                merged.map(|(before, exp)| {
                    let seq = order.push(*at, QueuedKey::Subject(key.clone()));
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
        self.settle(order, record)
    }
}
