//! What the maps hold: revoked sessions by id (22-byte ids inline), revoked subjects, and
//! the entries of both maps. Each map keeps a count of its entries so that a lookup in a
//! map that holds nothing — the usual case for subjects, and for sessions on a store that
//! has seen no logout — returns at once instead of hashing the key and locking a shard.

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

/// A revoked session, as held in a [`SessionMap`].
///
/// `seq` names the queue item that holds an entry's place in eviction order: a key
/// revoked again (a second logout-all of the same second, a record replayed from
/// another instance) leaves a stale item behind, which must never evict the entry that
/// replaced it — revocation times are whole seconds, so `at` cannot tell them apart.
///
/// `floor`: tokens of the session whose generation is below it are refused — `FULL` for
/// a revoked session, a lower one where an update retired older tokens.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionEntry {
    pub(super) exp: i64,
    pub(super) at: i64,
    pub(super) seq: u64,
    pub(super) floor: u32,
}

/// A revoked subject ("every session with `auth_time <= before`"); `seq` as in
/// [`SessionEntry`].
#[derive(Debug, Clone, Copy)]
pub(super) struct SubjectEntry {
    pub(super) before: i64,
    pub(super) exp: i64,
    pub(super) at: i64,
    pub(super) seq: u64,
}

/// A session id as a map key. The crate's own ids (22 base64url characters) are held
/// inline as their 22 bytes — no heap allocation, no decoding on lookups — so a million
/// revocations fit in about 110 MB; any other id (another issuer's, a test's) is kept as
/// heap text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum SidKey {
    Inline([u8; 22]),
    Text(Box<str>),
}

impl SidKey {
    pub(super) fn new(sid: &str) -> Self {
        match inline_sid(sid) {
            Some(bytes) => Self::Inline(bytes),
            None => Self::Text(sid.into()),
        }
    }
}

fn inline_sid(sid: &str) -> Option<[u8; 22]> {
    sid.as_bytes().try_into().ok()
}

impl std::fmt::Display for SidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Built from a `&str` of 22 bytes, so valid UTF-8.
            Self::Inline(bytes) => f.write_str(std::str::from_utf8(bytes).unwrap_or_default()),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// foldhash with a per-map random seed: several times cheaper than SipHash on these short
/// keys. Keys are ids from tokens whose signature was verified (or our own revocations),
/// so an attacker cannot pick them to collide.
pub(super) type Hasher = foldhash::fast::RandomState;

/// How many entries a map holds, read without touching the map.
///
/// Raised *before* an entry is inserted and lowered *after* one is removed, so it is
/// never below the number of entries a reader could find: a reader that sees 0 would
/// have found nothing in the map either (a revocation still being recorded at that
/// instant is concurrent with the check, as it is without the count). Every change to
/// the maps is made under the store's `order` lock, so between two changes the count is
/// exact (`tests::counts_stay_exact`). The watermark protocol (I4, `evict`) is unchanged:
/// an eviction raises the watermark before it removes the entry and lowers the count,
/// and `is_revoked` reads the count, then the map, then the watermark.
#[derive(Debug, Default)]
struct Count(AtomicUsize);

impl Count {
    /// Whether the map holds nothing.
    #[inline]
    fn is_zero(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
    /// Around an insert: `insert` runs between the raise and the correction, which
    /// undoes the raise when the insert replaced an entry.
    fn inserting(&self, insert: impl FnOnce() -> bool) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if insert() {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    /// After `n` entries were removed.
    fn removed(&self, n: usize) {
        if n > 0 {
            self.0.fetch_sub(n, Ordering::SeqCst);
        }
    }
    #[cfg(test)]
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Revoked sessions by id: 22-byte ids inline, any other id as text. Lookups by
/// `&str` allocate nothing, and cost one atomic load while no session is revoked.
#[derive(Default)]
pub(super) struct SessionMap {
    raw: DashMap<[u8; 22], SessionEntry, Hasher>,
    text: DashMap<Box<str>, SessionEntry, Hasher>,
    count: Count,
}

impl SessionMap {
    pub(super) fn len(&self) -> usize {
        self.raw.len() + self.text.len()
    }
    pub(super) fn get(&self, key: &SidKey) -> Option<SessionEntry> {
        if self.count.is_zero() {
            return None;
        }
        match key {
            SidKey::Inline(raw) => self.raw.get(raw).map(|e| *e),
            SidKey::Text(text) => self.text.get(text).map(|e| *e),
        }
    }
    /// Inline, so that the usual answer (nothing held) costs no call.
    #[inline]
    pub(super) fn get_str(&self, sid: &str) -> Option<SessionEntry> {
        if self.count.is_zero() {
            return None;
        }
        self.lookup_str(sid)
    }
    fn lookup_str(&self, sid: &str) -> Option<SessionEntry> {
        match inline_sid(sid) {
            Some(raw) => self.raw.get(&raw).map(|e| *e),
            None => self.text.get(sid).map(|e| *e),
        }
    }
    pub(super) fn insert(&self, key: SidKey, entry: SessionEntry) {
        self.count.inserting(|| match key {
            SidKey::Inline(raw) => self.raw.insert(raw, entry).is_some(),
            SidKey::Text(text) => self.text.insert(text, entry).is_some(),
        });
    }
    pub(super) fn remove(&self, key: &SidKey) {
        let removed = match key {
            SidKey::Inline(raw) => self.raw.remove(raw).is_some(),
            SidKey::Text(text) => self.text.remove(text).is_some(),
        };
        self.count.removed(usize::from(removed));
    }
    pub(super) fn retain(&self, keep: impl Fn(&SessionEntry) -> bool) {
        let mut gone = 0;
        let mut check = |e: &SessionEntry| {
            let kept = keep(e);
            gone += usize::from(!kept);
            kept
        };
        self.raw.retain(|_, e| check(e));
        self.text.retain(|_, e| check(e));
        self.count.removed(gone);
    }
    pub(super) fn entries(&self) -> Vec<(String, SessionEntry)> {
        let raw = self
            .raw
            .iter()
            .map(|e| (SidKey::Inline(*e.key()).to_string(), *e.value()));
        let text = self.text.iter().map(|e| (e.key().to_string(), *e.value()));
        raw.chain(text).collect()
    }
}

/// Revoked subjects by name; lookups cost one atomic load while none is revoked.
#[derive(Default)]
pub(super) struct SubjectMap {
    map: DashMap<Box<str>, SubjectEntry, Hasher>,
    count: Count,
}

impl SubjectMap {
    pub(super) fn len(&self) -> usize {
        self.map.len()
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
    pub(super) fn insert(&self, sub: Box<str>, entry: SubjectEntry) {
        self.count
            .inserting(|| self.map.insert(sub, entry).is_some());
    }
    pub(super) fn remove(&self, sub: &str) {
        let removed = self.map.remove(sub).is_some();
        self.count.removed(usize::from(removed));
    }
    pub(super) fn retain(&self, keep: impl Fn(&SubjectEntry) -> bool) {
        let mut gone = 0;
        self.map.retain(|_, e| {
            let kept = keep(e);
            gone += usize::from(!kept);
            kept
        });
        self.count.removed(gone);
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
        (self.count.get(), self.len())
    }
}

#[cfg(test)]
impl SubjectMap {
    /// The count, and the entries actually held.
    pub(super) fn counted(&self) -> (usize, usize) {
        (self.count.get(), self.len())
    }
}
