//! The compact revocation set: revoked session ids as 16 raw bytes in fixed-size slots of
//! sharded open-addressing tables — no per-entry allocation, no pointer per entry.
//!
//! * A slot is the id (16 bytes, as a keyed permutation of it: see [`Seed`]), its expiry and revocation time as [`Stamp`]s (4 bytes
//!   each) and a value (`()` for a revoked session: 24 bytes; the generation floor for a
//!   retirement: 28 bytes).
//! * [`SHARDS`] shards, each behind its own `RwLock`, chosen by the top bits of a keyed
//!   hash of the id. A shard holds two tables (revoked sessions, retired generations), so
//!   an entry moves from one to the other under one lock.
//! * Each table is linear probing in Robin Hood order (an entry never sits farther from
//!   its home slot than a later one of the same run), so a lookup of an id that is not
//!   held stops at the first entry closer to its home than the probe is. Home slots are
//!   taken by a multiply-shift over the table's size, so sizes need not be powers of two:
//!   a table grows by [`GROWTH`] at [`MAX_LOAD`], and the shards start at staggered
//!   sizes so that they do not all grow at the same count — the set's load stays near
//!   the middle of `[MAX_LOAD / GROWTH, MAX_LOAD]` at every size.
//! * Removal shifts the rest of the run back (no tombstones), so a table holds nothing
//!   but live entries and empty slots.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Number of shards (a power of two: the shard is the top bits of the hash).
pub(super) const SHARDS: usize = 256;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// A table grows when it would hold more than `MAX_LOAD_NUM / MAX_LOAD_DEN` of its slots.
const MAX_LOAD_NUM: u64 = 7;
const MAX_LOAD_DEN: u64 = 8;
/// Growth factor, as a fraction.
const GROWTH_NUM: u64 = 5;
const GROWTH_DEN: u64 = 4;
/// Slots per segment of a table (a power of two; 6 KiB of 24-byte slots).
const SEGMENT_BITS: u32 = 8;
const SEGMENT: usize = 1 << SEGMENT_BITS;
/// The smallest table a shard allocates (before staggering).
const FIRST_SLOTS: f64 = 16.0;

/// A time held in a slot: whole seconds since the UNIX epoch in a `u32`, for every time
/// from 1970-01-01T00:00:01Z up to 2106-02-07T06:28:14Z, and one more value standing for
/// `i64::MAX` ("until further notice", as a revocation being recorded is dated). Every
/// other time has no stamp ([`Stamp::new`] says `None`): its entry is kept as text, with
/// exact `i64` times, so no time is ever rounded or wrapped. `0` marks an empty slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Stamp(u32);

impl Stamp {
    const EMPTY: Stamp = Stamp(0);
    const FOREVER: Stamp = Stamp(u32::MAX);

    /// The stamp of `t`, if it has one.
    pub(super) fn new(t: i64) -> Option<Stamp> {
        if t == i64::MAX {
            return Some(Self::FOREVER);
        }
        match u32::try_from(t) {
            Ok(s) if s != 0 && s != u32::MAX => Some(Stamp(s)),
            _ => None,
        }
    }

    /// The time it stands for.
    pub(super) fn get(self) -> i64 {
        if self == Self::FOREVER {
            i64::MAX
        } else {
            i64::from(self.0)
        }
    }
}

/// A session id of the crate's own shape (16 random bytes as 22 base64url characters,
/// see `random::random_id`) as its 16 bytes, if `sid` is exactly the canonical encoding
/// of 16 bytes: 22 characters of the URL-safe alphabet, the last one's 4 unused bits
/// zero. Any other text is not decoded (it is kept as text), so no two ids share bytes.
#[inline]
pub(super) fn decode_sid(sid: &str) -> Option<[u8; 16]> {
    let text: &[u8; 22] = sid.as_bytes().try_into().ok()?;
    // A table lookup per character and a single test at the end (no branch per
    // character): `bad` collects the invalid-character bits of every sextet. Two runs of
    // 10 characters (60 bits each) and the last 2 (8 bits, then 4 unused bits).
    let mut bad = 0u8;
    let mut run = |from: usize| {
        let mut n = 0u64;
        for &c in &text[from..from + 10] {
            let v = SEXTETS[usize::from(c)];
            bad |= v;
            n = (n << 6) | u64::from(v & 0x3F);
        }
        n
    };
    let (high, low) = (run(0), run(10));
    let (a, b) = (
        SEXTETS[usize::from(text[20])],
        SEXTETS[usize::from(text[21])],
    );
    if (bad | a | b) & 0xC0 != 0 || b & 0x0F != 0 {
        return None;
    }
    let last = (a << 2) | (b >> 4);
    let id = (u128::from(high) << 68) | (u128::from(low) << 8) | u128::from(last);
    Some(id.to_be_bytes())
}

/// The value of each base64url character; `0xFF` (both top bits set) for any other byte.
static SEXTETS: [u8; 256] = {
    let mut table = [0xFF_u8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The text of a decoded id: what [`decode_sid`] decoded it from.
pub(super) fn encode_sid(id: &[u8; 16]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// One slot: an id, its expiry (I2 TTL) and revocation time, and a value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot<V> {
    pub(super) id: [u8; 16],
    pub(super) exp: Stamp,
    pub(super) at: Stamp,
    pub(super) value: V,
}

impl<V: Zero> Slot<V> {
    const EMPTY: Self = Slot {
        id: [0; 16],
        exp: Stamp::EMPTY,
        at: Stamp::EMPTY,
        value: V::ZERO,
    };
    #[inline]
    fn is_empty(&self) -> bool {
        self.exp == Stamp::EMPTY
    }
}

/// Values a slot can hold, with a constant for empty slots.
pub(super) trait Zero: Copy + std::fmt::Debug {
    /// The value of an empty slot.
    const ZERO: Self;
}
impl Zero for () {
    const ZERO: Self = ();
}
impl Zero for u32 {
    const ZERO: Self = 0;
}

/// The keyed permutation of ids into table keys: a slot holds `key(id)`, not the id, and
/// a key's top 64 bits are its hash (see [`hash_of`]), so a lookup mixes its own id once
/// and reads the hash of every entry it probes straight from the slot. The permutation
/// (xor a per-store random seed, then twice: multiply by an odd constant modulo 2^128 and
/// fold the high half into the low) is a bijection, so [`Seed::id`] gives the id back.
/// The seed keeps anyone who could choose ids from lining them up in one run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seed(u128);

const K1: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;
const K2: u128 = 0xD6E8_FEB8_6659_FD93_2545_F491_4F6C_DD1D;
const K1_INVERSE: u128 = inverse(K1);
const K2_INVERSE: u128 = inverse(K2);

/// The inverse of odd `k` modulo 2^128 (Newton's iteration: each step doubles the bits
/// that are right, from 3).
const fn inverse(k: u128) -> u128 {
    let mut y = k;
    let mut i = 0;
    while i < 6 {
        y = y.wrapping_mul(2u128.wrapping_sub(k.wrapping_mul(y)));
        i += 1;
    }
    y
}

impl Seed {
    pub(super) fn random() -> Self {
        let mut bytes = [0u8; 16];
        // Without the OS's randomness the seed is fixed: ids are random anyway.
        if getrandom::fill(&mut bytes).is_err() {
            bytes = *b"jwt-session-seed";
        }
        Seed(u128::from_le_bytes(bytes))
    }

    /// The table key of `id`.
    #[inline]
    pub(super) fn key(self, id: &[u8; 16]) -> [u8; 16] {
        let mut x = u128::from_le_bytes(*id) ^ self.0;
        x = x.wrapping_mul(K1);
        x ^= x >> 64;
        x = x.wrapping_mul(K2);
        x ^= x >> 64;
        x.to_le_bytes()
    }

    /// The id of table key `key`: the inverse of [`key`](Self::key).
    pub(super) fn id(self, key: &[u8; 16]) -> [u8; 16] {
        let mut x = u128::from_le_bytes(*key);
        x ^= x >> 64;
        x = x.wrapping_mul(K2_INVERSE);
        x ^= x >> 64;
        x = x.wrapping_mul(K1_INVERSE);
        (x ^ self.0).to_le_bytes()
    }
}

/// The hash of a table key: its top 64 bits (the high half of the last product, which
/// depends on every bit of the id). Its top bits pick the shard, its low 32 bits the
/// home slot.
#[inline]
pub(super) fn hash_of(key: &[u8; 16]) -> u64 {
    let mut top = [0u8; 8];
    top.copy_from_slice(&key[8..]);
    u64::from_le_bytes(top)
}

/// The shard of a hash.
#[inline]
pub(super) fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// One open-addressing table (see the module docs).
#[derive(Debug)]
pub(super) struct Table<V> {
    /// The slots, in segments of [`SEGMENT`] slots (one shorter segment while the table
    /// is smaller than that): all tables allocate and free blocks of the same few sizes,
    /// so the blocks a growing table frees are reused by the next one to grow instead of
    /// staying resident as holes in the heap.
    segments: Vec<Box<[Slot<V>]>>,
    /// Slots in all.
    size: usize,
    len: usize,
    /// The size of the first allocation (staggered between shards).
    first: usize,
}

impl<V: Zero> Table<V> {
    fn new(first: usize) -> Self {
        Self {
            segments: Vec::new(),
            size: 0,
            len: 0,
            first: first.max(2),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn slot(&self, i: usize) -> &Slot<V> {
        &self.segments[i >> SEGMENT_BITS][i & (SEGMENT - 1)]
    }

    #[inline]
    fn slot_mut(&mut self, i: usize) -> &mut Slot<V> {
        &mut self.segments[i >> SEGMENT_BITS][i & (SEGMENT - 1)]
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // Multiply-shift over the low 32 bits: any size up to 2^32 slots.
        ((u64::from(hash as u32) * self.size as u64) >> 32) as usize
    }

    #[inline]
    fn distance(&self, slot: usize, home: usize) -> usize {
        if slot >= home {
            slot - home
        } else {
            slot + self.size - home
        }
    }

    #[inline]
    fn next(&self, slot: usize) -> usize {
        if slot + 1 == self.size { 0 } else { slot + 1 }
    }

    /// Where `id` is held, if it is.
    #[inline]
    fn find(&self, id: &[u8; 16], hash: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mut i = self.home(hash);
        let mut d = 0;
        loop {
            let slot = self.slot(i);
            if slot.is_empty() {
                return None;
            }
            if slot.id == *id {
                return Some(i);
            }
            // Robin Hood order: an entry closer to its home than we are to ours means
            // ours would have been placed before it.
            if self.distance(i, self.home(hash_of(&slot.id))) < d {
                return None;
            }
            i = self.next(i);
            d += 1;
        }
    }

    #[inline]
    pub(super) fn get(&self, id: &[u8; 16], hash: u64) -> Option<Slot<V>> {
        self.find(id, hash).map(|i| *self.slot(i))
    }

    /// Insert or replace; returns the entry replaced.
    pub(super) fn insert(&mut self, entry: Slot<V>, hash: u64) -> Option<Slot<V>> {
        if let Some(i) = self.find(&entry.id, hash) {
            return Some(std::mem::replace(self.slot_mut(i), entry));
        }
        if (self.len as u64 + 1) * MAX_LOAD_DEN > self.size as u64 * MAX_LOAD_NUM {
            self.grow();
        }
        self.place(entry, hash);
        self.len += 1;
        None
    }

    /// Put an entry known not to be held, with room for it.
    fn place(&mut self, mut entry: Slot<V>, hash: u64) {
        let mut i = self.home(hash);
        let mut d = 0;
        loop {
            if self.slot(i).is_empty() {
                *self.slot_mut(i) = entry;
                return;
            }
            let theirs = self.distance(i, self.home(hash_of(&self.slot(i).id)));
            if theirs < d {
                // Take this slot; carry the displaced entry on (it keeps its order).
                entry = std::mem::replace(self.slot_mut(i), entry);
                d = theirs;
            }
            i = self.next(i);
            d += 1;
        }
    }

    fn grow(&mut self) {
        let now = self.size as u64;
        let size = if now == 0 {
            self.first as u64
        } else {
            (now * GROWTH_NUM / GROWTH_DEN).max(now + 1)
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let size = if size > SEGMENT {
            size.div_ceil(SEGMENT) * SEGMENT
        } else {
            size
        };
        let segments = (0..size.div_ceil(SEGMENT))
            .map(|_| vec![Slot::EMPTY; size.min(SEGMENT)].into_boxed_slice())
            .collect();
        let old = std::mem::replace(&mut self.segments, segments);
        self.size = size;
        for segment in old {
            for slot in segment.iter().filter(|s| !s.is_empty()) {
                let hash = hash_of(&slot.id);
                self.place(*slot, hash);
            }
        }
    }

    /// Remove the entry at `i`, shifting the rest of its run back one slot.
    fn remove_at(&mut self, i: usize) -> Slot<V> {
        let gone = *self.slot(i);
        let mut hole = i;
        let mut j = self.next(i);
        while !self.slot(j).is_empty() && self.distance(j, self.home(hash_of(&self.slot(j).id))) > 0
        {
            *self.slot_mut(hole) = *self.slot(j);
            hole = j;
            j = self.next(j);
        }
        *self.slot_mut(hole) = Slot::EMPTY;
        self.len -= 1;
        gone
    }

    pub(super) fn remove(&mut self, id: &[u8; 16], hash: u64) -> Option<Slot<V>> {
        self.find(id, hash).map(|i| self.remove_at(i))
    }

    /// Remove every entry `keep` refuses, from slot `from` on, stopping after `budget`
    /// slots. Returns how many were removed and where to go on (`None`: done).
    pub(super) fn retain_from(
        &mut self,
        from: usize,
        budget: usize,
        keep: &mut impl FnMut(&Slot<V>) -> bool,
    ) -> (usize, Option<usize>) {
        let mut removed = 0;
        let mut i = from;
        let end = self.size.min(from.saturating_add(budget));
        while i < end {
            let slot = *self.slot(i);
            if !slot.is_empty() && !keep(&slot) {
                // An entry of the run moves into slot `i`: look at it again. Entries move
                // only backwards, so none is skipped; an entry that wraps from slot 0 to
                // the last slot is looked at twice, which is harmless.
                self.remove_at(i);
                removed += 1;
                continue;
            }
            i += 1;
        }
        (removed, (end < self.size).then_some(end))
    }

    /// Every entry.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot<V>> {
        self.segments
            .iter()
            .flat_map(|segment| segment.iter())
            .filter(|s| !s.is_empty())
    }
}

/// One shard: revoked sessions, and sessions with retired generations (an id is in at
/// most one of the two).
#[derive(Debug)]
pub(super) struct Shard {
    pub(super) revoked: Table<()>,
    pub(super) retired: Table<u32>,
}

/// The sharded set.
pub(super) struct Shards {
    seed: Seed,
    shards: Box<[RwLock<Shard>]>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").finish_non_exhaustive()
    }
}

impl Default for Shards {
    fn default() -> Self {
        Self::with_seed(Seed::random())
    }
}

impl Shards {
    pub(super) fn with_seed(seed: Seed) -> Self {
        let shards = (0..SHARDS)
            .map(|i| {
                // Staggered: shard i starts GROWTH^(i / SHARDS) times larger than shard 0,
                // so that the shards reach their growth points at evenly spread counts.
                let stagger =
                    (GROWTH_NUM as f64 / GROWTH_DEN as f64).powf(i as f64 / SHARDS as f64);
                let first = (FIRST_SLOTS * stagger).round() as usize;
                RwLock::new(Shard {
                    revoked: Table::new(first),
                    retired: Table::new(first),
                })
            })
            .collect();
        Self { seed, shards }
    }

    #[inline]
    pub(super) fn seed(&self) -> Seed {
        self.seed
    }

    #[inline]
    pub(super) fn read(&self, index: usize) -> RwLockReadGuard<'_, Shard> {
        self.shards[index]
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[inline]
    pub(super) fn write(&self, index: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[index]
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::{Seed, Slot, Stamp, Table, decode_sid, encode_sid, hash_of};

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            key: u8,
            exp: u32,
            at: u32,
            value: u32,
        },
        Remove {
            key: u8,
        },
        Retain {
            above: u32,
            chunk: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), 1..50u32, 1..50u32, any::<u32>())
                .prop_map(|(key, exp, at, value)| Op::Insert { key, exp, at, value }),
            2 => any::<u8>().prop_map(|key| Op::Remove { key }),
            1 => (1..50u32, 1..9usize).prop_map(|(above, chunk)| Op::Retain { above, chunk }),
        ]
    }

    /// Ids that share most of their bytes, as a `u8` key: only byte 3 differs.
    fn id(key: u8) -> [u8; 16] {
        let mut id = [7u8; 16];
        id[3] = key;
        id
    }

    fn check(table: &Table<u32>, seed: Seed, model: &HashMap<u8, (u32, u32, u32)>) {
        assert_eq!(table.len, model.len());
        assert_eq!(table.iter().count(), model.len());
        for key in 0..=u8::MAX {
            let id = id(key);
            let got = table
                .get(&seed.key(&id), hash_of(&seed.key(&id)))
                .map(|s| (s.exp.0, s.at.0, s.value));
            assert_eq!(got, model.get(&key).copied(), "key {key}");
        }
        // Robin Hood order: along every run, no entry sits closer to its home than the
        // entry before it minus one.
        let size = table.size;
        for i in 0..size {
            let (a, b) = (table.slot(i), table.slot(table.next(i)));
            if a.is_empty() || b.is_empty() {
                continue;
            }
            let da = table.distance(i, table.home(hash_of(&a.id)));
            let db = table.distance(table.next(i), table.home(hash_of(&b.id)));
            assert!(db == 0 || db <= da + 1, "slot {i}: {da} then {db}");
        }
    }

    proptest! {
        /// Insert, lookup, replace, remove, growth (from two slots, through sizes that
        /// are not powers of two) and a chunked sweep agree with a `HashMap`.
        #[test]
        fn the_table_agrees_with_a_hash_map(
            ops in proptest::collection::vec(op(), 1..600),
            first in 2..7usize,
            seed in any::<u128>(),
        ) {
            let seed = Seed(seed);
            let mut table = Table::<u32>::new(first);
            let mut model: HashMap<u8, (u32, u32, u32)> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert { key, exp, at, value } => {
                        let id = seed.key(&id(key));
                        let slot = Slot { id, exp: Stamp(exp), at: Stamp(at), value };
                        let old = table.insert(slot, hash_of(&id));
                        let expected = model.insert(key, (exp, at, value));
                        prop_assert_eq!(old.map(|s| (s.exp.0, s.at.0, s.value)), expected);
                    }
                    Op::Remove { key } => {
                        let id = seed.key(&id(key));
                        let old = table.remove(&id, hash_of(&id));
                        let expected = model.remove(&key);
                        prop_assert_eq!(old.map(|s| (s.exp.0, s.at.0, s.value)), expected);
                    }
                    Op::Retain { above, chunk } => {
                        let mut from = Some(0);
                        let mut removed = 0;
                        while let Some(start) = from {
                            let (n, next) =
                                table.retain_from(start, chunk, &mut |s| s.exp.0 > above);
                            removed += n;
                            from = next;
                        }
                        let before = model.len();
                        model.retain(|_, (exp, _, _)| *exp > above);
                        prop_assert_eq!(removed, before - model.len());
                    }
                }
                check(&table, seed, &model);
                // Load never above 7/8 after an insert.
                prop_assert!(table.len * 8 <= table.size * 7 || table.size == 0);
            }
        }

        /// Every 16 bytes decode back from their base64url text, and any text decodes
        /// exactly when the `base64` crate's strict decoder takes it for 16 bytes, to
        /// the same bytes (so whatever decodes is the canonical text of its bytes).
        #[test]
        fn ids_decode_only_from_their_canonical_text(
            bytes in any::<[u8; 16]>(),
            text in prop_oneof!["[A-Za-z0-9_-]{22}", "[A-Za-z0-9_=+/-]{20,23}"],
        ) {
            use base64::Engine as _;
            let encoded = encode_sid(&bytes);
            prop_assert_eq!(decode_sid(&encoded), Some(bytes));
            let strict = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&text)
                .ok()
                .and_then(|v| <[u8; 16]>::try_from(v).ok());
            prop_assert_eq!(decode_sid(&text), strict);
            if let Some(decoded) = decode_sid(&text) {
                prop_assert_eq!(encode_sid(&decoded), text);
            }
        }
    }

    proptest! {
        /// Table keys are a bijection of ids.
        #[test]
        fn keys_give_their_ids_back(seed in any::<u128>(), id in any::<[u8; 16]>()) {
            let seed = Seed(seed);
            prop_assert_eq!(seed.id(&seed.key(&id)), id);
        }
    }

    #[test]
    fn a_non_canonical_last_character_is_not_decoded() {
        let canonical = encode_sid(&[0xAB; 16]);
        assert_eq!(decode_sid(&canonical), Some([0xAB; 16]));
        // The last character carries 2 bits; any of its 4 unused bits set is another
        // text for the same bytes, kept as text instead.
        let mut other = canonical;
        other.pop();
        other.push('t');
        assert_eq!(decode_sid(&other), None);
        assert_eq!(decode_sid("AAAAAAAAAAAAAAAAAAAAA"), None, "21 characters");
        assert_eq!(decode_sid("AAAAAAAAAAAAAAAAAAAAA="), None, "padding");
    }

    #[test]
    fn stamps_hold_exactly_the_times_they_can_and_refuse_the_rest() {
        assert_eq!(Stamp::new(1).map(Stamp::get), Some(1));
        assert_eq!(
            Stamp::new(1_767_225_600).map(Stamp::get),
            Some(1_767_225_600)
        );
        let last = i64::from(u32::MAX) - 1;
        assert_eq!(Stamp::new(last).map(Stamp::get), Some(last));
        assert_eq!(Stamp::new(i64::MAX).map(Stamp::get), Some(i64::MAX));
        // 0 marks an empty slot; the rest do not fit: held as text, never wrapped.
        for t in [0, -1, i64::MIN, last + 1, last + 2, i64::MAX - 1] {
            assert_eq!(Stamp::new(t), None, "{t}");
        }
    }
}
