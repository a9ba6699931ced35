//! What the store holds: revoked sessions (the compact set of [`table`](super::table) for
//! the crate's own ids, exact text for any other) and revoked subjects. Each part keeps a
//! count of its entries so that a lookup in a part that holds nothing — the usual case
//! for subjects and text ids, and for sessions on a store that has seen no logout —
//! returns at once instead of decoding or hashing the key and locking a shard.
//!
//! Where a session entry lives: in the compact set when its id decodes (see
//! [`decode_sid`]) and both its times have a [`Stamp`]; else as text, with exact times.
//! An id held as text stays text until it goes, so an entry only ever moves from the
//! compact set to the text map, and from "retired generations" to "revoked" within one
//! shard (under that shard's lock). Lookups read the compact set, then the text map: a
//! reader racing a move finds the entry in one place or the other.

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use super::table::{SHARDS, Shards, Slot, Stamp, decode_sid, encode_sid, hash_of, shard_of};
use crate::denylist::journal::FULL;

/// A revoked session, as held.
///
/// `floor`: tokens of the session whose generation is below it are refused — `FULL` for
/// a revoked session, a lower one where an update retired older tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionEntry {
    pub(super) exp: i64,
    pub(super) at: i64,
    pub(super) floor: u32,
}

/// A revoked subject ("every session with `auth_time <= before`").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SubjectEntry {
    pub(super) before: i64,
    pub(super) exp: i64,
    pub(super) at: i64,
}

/// An entry's key, as the eviction scan names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Victim {
    /// A session of the compact set, by its 16 bytes.
    Raw([u8; 16]),
    /// A session held as text.
    Text(Box<str>),
    /// A subject.
    Subject(Box<str>),
}

/// foldhash with a per-map random seed: several times cheaper than SipHash on these short
/// keys. Keys are ids from tokens whose signature was verified (or our own revocations),
/// so an attacker cannot pick them to collide.
pub(super) type Hasher = foldhash::fast::RandomState;

/// How many entries a part holds, read without touching it.
///
/// Raised *before* an entry is inserted and lowered *after* one is removed, so it is
/// never below the number of entries a reader could find: a reader that sees 0 would
/// have found nothing either (a revocation still being recorded at that instant is
/// concurrent with the check, as it is without the count). Every change is made under
/// the store's `order` lock, so between two changes the count is exact
/// (`tests::counts_stay_exact`). The watermark protocol (I4, `evict`) is unchanged: an
/// eviction raises the watermark before it removes the entry and lowers the count, and
/// `is_revoked` reads the count, then the entry, then the watermark.
#[derive(Debug, Default)]
struct Count(AtomicUsize);

impl Count {
    #[inline]
    fn is_zero(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    fn raise(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    /// After `n` entries were removed (or a raise turned out to replace an entry).
    fn removed(&self, n: usize) {
        if n > 0 {
            self.0.fetch_sub(n, Ordering::SeqCst);
        }
    }
}

/// Revoked sessions: the compact set, and text for the rest.
#[derive(Default)]
pub(super) struct SessionMap {
    compact: Shards,
    compact_count: Count,
    text: DashMap<Box<str>, SessionEntry, Hasher>,
    text_count: Count,
}

/// How many slots of a shard a sweep looks at per hold of the shard's write lock.
const SWEEP_CHUNK: usize = 4096;

impl SessionMap {
    pub(super) fn len(&self) -> usize {
        self.compact_count.get() + self.text_count.get()
    }

    /// Inline, so that the usual answer (nothing held) costs no call.
    #[inline]
    pub(super) fn get_str(&self, sid: &str) -> Option<SessionEntry> {
        if self.compact_count.is_zero() && self.text_count.is_zero() {
            return None;
        }
        self.lookup(sid)
    }

    pub(super) fn get(&self, sid: &str) -> Option<SessionEntry> {
        self.lookup(sid)
    }

    fn lookup(&self, sid: &str) -> Option<SessionEntry> {
        if !self.compact_count.is_zero()
            && let Some(raw) = decode_sid(sid)
            && let Some(entry) = self.get_raw(&raw)
        {
            return Some(entry);
        }
        if self.text_count.is_zero() {
            return None;
        }
        self.text.get(sid).map(|e| *e)
    }

    fn get_raw(&self, raw: &[u8; 16]) -> Option<SessionEntry> {
        let key = self.compact.seed().key(raw);
        let hash = hash_of(&key);
        let shard = self.compact.read(shard_of(hash));
        if let Some(slot) = shard.revoked.get(&key, hash) {
            return Some(SessionEntry {
                exp: slot.exp.get(),
                at: slot.at.get(),
                floor: FULL,
            });
        }
        shard.retired.get(&key, hash).map(|slot| SessionEntry {
            exp: slot.exp.get(),
            at: slot.at.get(),
            floor: slot.value,
        })
    }

    /// Insert or replace the entry of `sid`; returns its key where it is now held (the
    /// compact set or the text map: one of the crate's own ids is held as text when its
    /// times have no stamp), which is how the eviction scan names it.
    pub(super) fn insert(&self, sid: &str, entry: SessionEntry) -> Victim {
        let raw = decode_sid(sid);
        let stamps = Stamp::new(entry.exp).zip(Stamp::new(entry.at));
        let in_text = !self.text_count.is_zero() && self.text.contains_key(sid);
        match (raw, stamps) {
            (Some(raw), Some((exp, at))) if !in_text => {
                self.insert_raw(raw, exp, at, entry.floor);
                Victim::Raw(raw)
            }
            _ => {
                self.text_count.raise();
                if self.text.insert(sid.into(), entry).is_some() {
                    self.text_count.removed(1);
                }
                // Moved from the compact set (times without a stamp): text first, so
                // a reader finds it in one place or the other.
                if let Some(raw) = raw {
                    self.remove_raw_if(&raw, |_| true);
                }
                Victim::Text(sid.into())
            }
        }
    }

    fn insert_raw(&self, raw: [u8; 16], exp: Stamp, at: Stamp, floor: u32) {
        let key = self.compact.seed().key(&raw);
        let hash = hash_of(&key);
        self.compact_count.raise();
        let mut shard = self.compact.write(shard_of(hash));
        // One entry per id: a revoked session replaces its retirement, and (a journal
        // replayed in order) the other way round.
        let replaced = if floor == FULL {
            let slot = Slot {
                id: key,
                exp,
                at,
                value: (),
            };
            shard.revoked.insert(slot, hash).is_some() | shard.retired.remove(&key, hash).is_some()
        } else {
            let slot = Slot {
                id: key,
                exp,
                at,
                value: floor,
            };
            shard.retired.insert(slot, hash).is_some() | shard.revoked.remove(&key, hash).is_some()
        };
        drop(shard);
        if replaced {
            self.compact_count.removed(1);
        }
    }

    /// Remove the compact entry `raw` if `pick` (given its revocation time) says so,
    /// under its shard's lock, after `pick` ran. Returns whether it went.
    fn remove_raw_if(&self, raw: &[u8; 16], pick: impl FnOnce(i64) -> bool) -> bool {
        let key = self.compact.seed().key(raw);
        let hash = hash_of(&key);
        let mut shard = self.compact.write(shard_of(hash));
        let at = match shard.revoked.get(&key, hash) {
            Some(slot) => Some((slot.at, true)),
            None => shard.retired.get(&key, hash).map(|s| (s.at, false)),
        };
        let Some((at, revoked)) = at else {
            return false;
        };
        if !pick(at.get()) {
            return false;
        }
        if revoked {
            shard.revoked.remove(&key, hash);
        } else {
            shard.retired.remove(&key, hash);
        }
        drop(shard);
        self.compact_count.removed(1);
        true
    }

    /// Remove `sid` if its entry is still dated `at`, calling `before` first (under the
    /// lock a reader would need): the eviction step of I4.
    pub(super) fn evict(&self, victim: &Victim, at: i64, before: impl FnOnce()) -> bool {
        match victim {
            Victim::Raw(raw) => self.remove_raw_if(raw, |held| {
                let current = held == at;
                if current {
                    before();
                }
                current
            }),
            Victim::Text(sid) => {
                let gone = self
                    .text
                    .remove_if(sid, |_, e| {
                        let current = e.at == at;
                        if current {
                            before();
                        }
                        current
                    })
                    .is_some();
                self.text_count.removed(usize::from(gone));
                gone
            }
            Victim::Subject(_) => false,
        }
    }

    /// Drop every entry `keep` refuses, shard by shard, holding each shard's lock for at
    /// most [`SWEEP_CHUNK`] slots at a time (readers wait at most that long). `between`
    /// runs around each shard (the store takes its `order` lock there). Returns how many
    /// went.
    pub(super) fn retain(
        &self,
        keep: impl Fn(i64) -> bool,
        mut between: impl FnMut(&mut dyn FnMut()),
    ) -> usize {
        let mut gone = 0;
        for index in 0..SHARDS {
            between(&mut || {
                for part in 0..2 {
                    let mut from = Some(0);
                    while let Some(start) = from {
                        let mut shard = self.compact.write(index);
                        let (removed, next) = if part == 0 {
                            shard
                                .revoked
                                .retain_from(start, SWEEP_CHUNK, &mut |s| keep(s.exp.get()))
                        } else {
                            shard
                                .retired
                                .retain_from(start, SWEEP_CHUNK, &mut |s| keep(s.exp.get()))
                        };
                        drop(shard);
                        self.compact_count.removed(removed);
                        gone += removed;
                        from = next;
                    }
                }
            });
        }
        between(&mut || {
            let mut removed = 0;
            self.text.retain(|_, e| {
                let kept = keep(e.exp);
                removed += usize::from(!kept);
                kept
            });
            self.text_count.removed(removed);
            gone += removed;
        });
        gone
    }

    /// Every entry's key and revocation time (for the eviction scan).
    pub(super) fn each_at(&self, mut f: impl FnMut(i64, &dyn Fn() -> Victim)) {
        let seed = self.compact.seed();
        for index in 0..SHARDS {
            let shard = self.compact.read(index);
            for slot in shard.revoked.iter() {
                f(slot.at.get(), &|| Victim::Raw(seed.id(&slot.id)));
            }
            for slot in shard.retired.iter() {
                f(slot.at.get(), &|| Victim::Raw(seed.id(&slot.id)));
            }
        }
        for e in self.text.iter() {
            f(e.at, &|| Victim::Text(e.key().clone()));
        }
    }

    pub(super) fn entries(&self) -> Vec<(String, SessionEntry)> {
        let mut out = Vec::with_capacity(self.len());
        let seed = self.compact.seed();
        for index in 0..SHARDS {
            let shard = self.compact.read(index);
            out.extend(shard.revoked.iter().map(|s| {
                let entry = SessionEntry {
                    exp: s.exp.get(),
                    at: s.at.get(),
                    floor: FULL,
                };
                (encode_sid(&seed.id(&s.id)), entry)
            }));
            out.extend(shard.retired.iter().map(|s| {
                let entry = SessionEntry {
                    exp: s.exp.get(),
                    at: s.at.get(),
                    floor: s.value,
                };
                (encode_sid(&seed.id(&s.id)), entry)
            }));
        }
        out.extend(self.text.iter().map(|e| (e.key().to_string(), *e.value())));
        out
    }
}

/// Revoked subjects by name (few: "log out everywhere"); exact, as text.
#[derive(Default)]
pub(super) struct SubjectMap {
    map: DashMap<Box<str>, SubjectEntry, Hasher>,
    count: Count,
}

impl SubjectMap {
    pub(super) fn len(&self) -> usize {
        self.count.get()
    }
    /// Inline, as [`SessionMap::get_str`].
    #[inline]
    pub(super) fn get(&self, sub: &str) -> Option<SubjectEntry> {
        if self.count.is_zero() {
            return None;
        }
        self.lookup(sub)
    }
    fn lookup(&self, sub: &str) -> Option<SubjectEntry> {
        self.map.get(sub).map(|e| *e)
    }
    pub(super) fn insert(&self, sub: &str, entry: SubjectEntry) {
        self.count.raise();
        if self.map.insert(sub.into(), entry).is_some() {
            self.count.removed(1);
        }
    }
    pub(super) fn retain(&self, keep: impl Fn(&SubjectEntry) -> bool) -> usize {
        let mut gone = 0;
        self.map.retain(|_, e| {
            let kept = keep(e);
            gone += usize::from(!kept);
            kept
        });
        self.count.removed(gone);
        gone
    }
    /// Remove `sub` if its entry is still dated `at`, calling `before` first, under the
    /// lock a reader would need (I4).
    pub(super) fn evict(&self, sub: &str, at: i64, before: impl FnOnce()) -> bool {
        let gone = self
            .map
            .remove_if(sub, |_, e| {
                let current = e.at == at;
                if current {
                    before();
                }
                current
            })
            .is_some();
        self.count.removed(usize::from(gone));
        gone
    }
    pub(super) fn each_at(&self, mut f: impl FnMut(i64, &dyn Fn() -> Victim)) {
        for e in self.map.iter() {
            f(e.at, &|| Victim::Subject(e.key().clone()));
        }
    }
    pub(super) fn entries(&self) -> Vec<(String, SubjectEntry)> {
        self.map
            .iter()
            .map(|e| (e.key().to_string(), *e.value()))
            .collect()
    }
}

#[cfg(test)]
impl SessionMap {
    /// The count, and the entries actually held.
    pub(super) fn counted(&self) -> (usize, usize) {
        let held = (0..SHARDS)
            .map(|i| {
                let shard = self.compact.read(i);
                shard.revoked.len() + shard.retired.len()
            })
            .sum::<usize>()
            + self.text.len();
        (self.len(), held)
    }
}

#[cfg(test)]
impl SubjectMap {
    /// The count, and the entries actually held.
    pub(super) fn counted(&self) -> (usize, usize) {
        (self.count.get(), self.map.len())
    }
}
