//! What the maps hold: revoked sessions by id (22-byte ids inline) and the entries of
//! both maps.

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

/// Revoked sessions by id: 22-byte ids inline, any other id as text. Lookups by
/// `&str` allocate nothing.
#[derive(Default)]
pub(super) struct SessionMap {
    raw: DashMap<[u8; 22], SessionEntry, Hasher>,
    text: DashMap<Box<str>, SessionEntry, Hasher>,
}

impl SessionMap {
    pub(super) fn len(&self) -> usize {
        self.raw.len() + self.text.len()
    }
    pub(super) fn get(&self, key: &SidKey) -> Option<SessionEntry> {
        match key {
            SidKey::Inline(raw) => self.raw.get(raw).map(|e| *e),
            SidKey::Text(text) => self.text.get(text).map(|e| *e),
        }
    }
    pub(super) fn get_str(&self, sid: &str) -> Option<SessionEntry> {
        match inline_sid(sid) {
            Some(raw) => self.raw.get(&raw).map(|e| *e),
            None => self.text.get(sid).map(|e| *e),
        }
    }
    pub(super) fn insert(&self, key: SidKey, entry: SessionEntry) {
        match key {
            SidKey::Inline(raw) => drop(self.raw.insert(raw, entry)),
            SidKey::Text(text) => drop(self.text.insert(text, entry)),
        }
    }
    pub(super) fn remove(&self, key: &SidKey) {
        match key {
            SidKey::Inline(raw) => drop(self.raw.remove(raw)),
            SidKey::Text(text) => drop(self.text.remove(text)),
        }
    }
    pub(super) fn retain(&self, keep: impl Fn(&SessionEntry) -> bool) {
        self.raw.retain(|_, e| keep(e));
        self.text.retain(|_, e| keep(e));
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
