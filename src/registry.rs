//! The session registry (optional): which sessions a user has, for "where you're signed
//! in" pages, ending one device's session, and operators' views — without a store read on
//! the request path.
//!
//! The layer **writes** to it when something happens to a session anyway — a login, a
//! reissue (so at most once per `reissue_after` per session, never on a plain request), an
//! update or re-authentication, a logout or revocation — and **never reads** it to accept
//! or refuse a request: the token and the revocation store stay the only things on the hot
//! path. A registry that is full or failing never blocks a request; revocation keeps
//! failing closed as before. Entries expire with their session (I2-style), so "last
//! active" is accurate to `reissue_after`.
//!
//! Turn it on with [`SessionLayer::with_registry`](crate::SessionLayer::with_registry);
//! list and end sessions through [`SessionHandle`](crate::SessionHandle) or the
//! ready-made routes (`GET /session/list`, `POST /session/revoke`,
//! `POST /session/logout-others`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::RevocationError;

/// Most characters of a user agent kept.
pub const MAX_USER_AGENT: usize = 200;
/// Default most sessions listed per user (the oldest drop out of the listing — never out of
/// the denylist).
pub const DEFAULT_PER_USER: usize = 50;
/// Default most sessions held in all.
pub const DEFAULT_REGISTRY_CAPACITY: usize = 1_000_000;

/// One session as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionEntry {
    /// The listed id: random, stable for the session, safe to hand to the browser (it is
    /// not the session id inside the token).
    pub id: String,
    /// The session id (`sid`). Not for browsers.
    pub sid: String,
    /// The user.
    pub sub: String,
    /// Login time (`auth_time`).
    pub created: i64,
    /// Last activity as of the last write (accurate to `reissue_after`).
    pub last_active: i64,
    /// When the user last proved their credentials.
    pub fresh_at: i64,
    /// A remembered ("remember me") session.
    pub remember: bool,
    /// The user agent, truncated to [`MAX_USER_AGENT`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The client IP, as configured ([`IpPolicy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// When the entry goes: when every token of the session has expired.
    pub expires: i64,
}

/// What a listing shows of a session, for the session's own user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ListedSession {
    /// The listed id (see [`SessionEntry::id`]).
    pub id: String,
    /// Whether it is the session of the request that asked.
    pub current: bool,
    /// Login time (UNIX seconds).
    pub created: i64,
    /// Last activity (UNIX seconds, accurate to `reissue_after`).
    pub last_active: i64,
    /// The user agent, truncated.
    pub user_agent: Option<String>,
    /// The client IP, if recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// A remembered session.
    pub remember: bool,
    /// When the user last proved their credentials in it.
    pub fresh_at: i64,
}

impl ListedSession {
    /// How `entry` is shown to the user whose current session is `current_sid`.
    pub fn of(entry: &SessionEntry, current_sid: Option<&str>) -> Self {
        Self {
            id: entry.id.clone(),
            current: current_sid == Some(entry.sid.as_str()),
            created: entry.created,
            last_active: entry.last_active,
            user_agent: entry.user_agent.clone(),
            ip: entry.ip.clone(),
            remember: entry.remember,
            fresh_at: entry.fresh_at,
        }
    }
}

/// Counts, for operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RegistryStats {
    /// Live sessions held.
    pub sessions: usize,
    /// Users with at least one.
    pub users: usize,
    /// The most sessions one user has.
    pub max_per_user: usize,
}

/// Why a registry operation could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The layer has no registry ([`SessionLayer::with_registry`](crate::SessionLayer::with_registry)).
    #[error("no session registry is configured")]
    Off,
    /// No live session of this user has that listed id (another user's ids are not found
    /// either, so ids do not leak).
    #[error("no such session")]
    NotFound,
    /// The revocation could not be made durable; it still applies in this process.
    #[error(transparent)]
    Revocation(#[from] RevocationError),
}

/// How much of the client's IP address a registry keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpPolicy {
    /// None (the default).
    #[default]
    Off,
    /// IPv4 to /24, IPv6 to /48.
    Truncated,
    /// The whole address.
    Full,
}

/// Where sessions are listed. Writes are best effort: an error is logged by the layer and
/// never refuses a request.
pub trait SessionRegistry: Send + Sync + 'static {
    /// Insert or replace the entry of `entry.sid` (keeping its listed id when known).
    ///
    /// # Errors
    ///
    /// A [`RevocationError`] if it could not be recorded durably.
    fn put(&self, entry: SessionEntry) -> Result<(), RevocationError>;

    /// The entry of session `sid`, if held.
    fn get(&self, sid: &str) -> Option<SessionEntry>;

    /// Forget session `sid`.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    fn remove(&self, sid: &str) -> Result<(), RevocationError>;

    /// Forget every session of `sub`.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    fn remove_user(&self, sub: &str) -> Result<(), RevocationError>;

    /// The live sessions of `sub` at `now`, newest activity first, at most the per-user
    /// bound.
    fn list(&self, sub: &str, now: i64) -> Vec<SessionEntry>;

    /// Counts.
    fn stats(&self, now: i64) -> RegistryStats;

    /// Drop entries whose session has expired; returns how many.
    fn sweep(&self, now: i64) -> usize;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Line {
    #[serde(rename = "p")]
    Put(SessionEntry),
    #[serde(rename = "d")]
    Remove { sid: String },
    #[serde(rename = "u")]
    RemoveUser { sub: String },
}

/// The in-memory registry: bounded per user and in total, swept, optionally journaled
/// (a JSON line per change, compacted when opened) so a restart keeps the listing.
pub struct MemoryRegistry {
    entries: DashMap<Box<str>, SessionEntry, foldhash::fast::RandomState>,
    by_user: DashMap<Box<str>, Vec<Box<str>>, foldhash::fast::RandomState>,
    per_user: usize,
    capacity: usize,
    journal: Option<Mutex<File>>,
}

impl std::fmt::Debug for MemoryRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRegistry")
            .field("sessions", &self.entries.len())
            .field("per_user", &self.per_user)
            .field("capacity", &self.capacity)
            .field("journaled", &self.journal.is_some())
            .finish()
    }
}

/// Builder for [`MemoryRegistry`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryRegistryBuilder {
    per_user: usize,
    capacity: usize,
    journal: Option<PathBuf>,
}

impl MemoryRegistryBuilder {
    /// Most sessions listed per user. Default [`DEFAULT_PER_USER`].
    pub fn per_user(mut self, n: usize) -> Self {
        self.per_user = n.max(1);
        self
    }

    /// Most sessions held in all; past it the least recently active go. Default
    /// [`DEFAULT_REGISTRY_CAPACITY`].
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Keep the registry in this file across restarts.
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Open the journal (if any), load its live entries as of `clock`'s now and compact it.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Journal`] if the journal cannot be read or rewritten.
    pub fn build(self, clock: &dyn Clock) -> Result<Arc<MemoryRegistry>, RevocationError> {
        let mut registry = MemoryRegistry {
            entries: DashMap::default(),
            by_user: DashMap::default(),
            per_user: self.per_user,
            capacity: self.capacity,
            journal: None,
        };
        if let Some(path) = &self.journal {
            registry.load(path, clock.now())?;
        }
        Ok(Arc::new(registry))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryRegistry {
    /// Start building one.
    pub fn builder() -> MemoryRegistryBuilder {
        MemoryRegistryBuilder {
            per_user: DEFAULT_PER_USER,
            capacity: DEFAULT_REGISTRY_CAPACITY,
            journal: None,
        }
    }

    /// Read a registry journal without opening it for writing (for operators' tools).
    ///
    /// # Errors
    ///
    /// [`RevocationError::Journal`] if it cannot be read.
    pub fn read_only(path: impl AsRef<Path>, now: i64) -> Result<Self, RevocationError> {
        let registry = Self {
            entries: DashMap::default(),
            by_user: DashMap::default(),
            per_user: usize::MAX,
            capacity: usize::MAX,
            journal: None,
        };
        let file = File::open(path.as_ref())?;
        for line in BufReader::new(file).lines() {
            registry.replay(&line?, now);
        }
        Ok(registry)
    }

    fn load(&mut self, path: &Path, now: i64) -> Result<(), RevocationError> {
        if path.exists() {
            let file = File::open(path)?;
            for line in BufReader::new(file).lines() {
                self.replay(&line?, now);
            }
        }
        // Compact: what is held now, one line each.
        let tmp = path.with_extension("compacting");
        {
            let mut out = File::create(&tmp)?;
            for entry in self.entries.iter() {
                let line = serde_json::to_string(&Line::Put(entry.value().clone()))
                    .map_err(std::io::Error::other)?;
                writeln!(out, "{line}")?;
            }
            out.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        let file = OpenOptions::new().append(true).open(path)?;
        self.journal = Some(Mutex::new(file));
        Ok(())
    }

    fn replay(&self, line: &str, now: i64) {
        match serde_json::from_str::<Line>(line) {
            Ok(Line::Put(entry)) if entry.expires > now => self.insert(entry),
            Ok(Line::Put(_)) => {}
            Ok(Line::Remove { sid }) => self.forget(&sid),
            Ok(Line::RemoveUser { sub }) => self.forget_user(&sub),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable registry journal line"),
        }
    }

    fn append(&self, line: &Line) -> Result<(), RevocationError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        let mut file = lock(journal);
        writeln!(file, "{text}")?;
        file.sync_data()?;
        Ok(())
    }

    fn insert(&self, mut entry: SessionEntry) {
        let sid: Box<str> = entry.sid.as_str().into();
        if let Some(old) = self.entries.get(&sid) {
            entry.id.clone_from(&old.id);
        }
        let sub: Box<str> = entry.sub.as_str().into();
        self.entries.insert(sid.clone(), entry);
        let mut list = self.by_user.entry(sub).or_default();
        if !list.contains(&sid) {
            list.push(sid);
        }
        // Bounded per user: the least recently active drop out of the listing.
        while list.len() > self.per_user {
            let oldest = list
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| self.entries.get(*s).map_or(i64::MIN, |e| e.last_active))
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    let gone = list.swap_remove(i);
                    self.entries.remove(&gone);
                }
                None => break,
            }
        }
        drop(list);
        // Bounded in total: the least recently active go.
        while self.entries.len() > self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|e| e.value().last_active)
                .map(|e| e.key().clone());
            match oldest {
                Some(sid) => self.forget(&sid),
                None => break,
            }
        }
    }

    fn forget(&self, sid: &str) {
        if let Some((_, entry)) = self.entries.remove(sid) {
            let sub: &str = &entry.sub;
            let empty = self.by_user.get_mut(sub).is_some_and(|mut list| {
                list.retain(|s| &**s != sid);
                list.is_empty()
            });
            if empty {
                self.by_user.remove(sub);
            }
        }
    }

    fn forget_user(&self, sub: &str) {
        if let Some((_, sids)) = self.by_user.remove(sub) {
            for sid in sids {
                self.entries.remove(&sid);
            }
        }
    }

    /// Every entry held (for operators), any user.
    pub fn all(&self) -> Vec<SessionEntry> {
        let mut all: Vec<SessionEntry> = self.entries.iter().map(|e| e.value().clone()).collect();
        all.sort_by(|a, b| (b.last_active, &a.id).cmp(&(a.last_active, &b.id)));
        all
    }

    /// Run [`sweep`](SessionRegistry::sweep) every `every` (real time) with `clock`'s now,
    /// until the registry is dropped.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(registry) = weak.upgrade() else {
                    break;
                };
                registry.sweep(clock.now());
            }
        })
    }
}

impl SessionRegistry for MemoryRegistry {
    fn put(&self, entry: SessionEntry) -> Result<(), RevocationError> {
        let line = Line::Put(entry.clone());
        self.insert(entry);
        self.append(&line)
    }

    fn get(&self, sid: &str) -> Option<SessionEntry> {
        self.entries.get(sid).map(|e| e.value().clone())
    }

    fn remove(&self, sid: &str) -> Result<(), RevocationError> {
        self.forget(sid);
        self.append(&Line::Remove { sid: sid.into() })
    }

    fn remove_user(&self, sub: &str) -> Result<(), RevocationError> {
        self.forget_user(sub);
        self.append(&Line::RemoveUser { sub: sub.into() })
    }

    fn list(&self, sub: &str, now: i64) -> Vec<SessionEntry> {
        let Some(sids) = self.by_user.get(sub).map(|l| l.clone()) else {
            return Vec::new();
        };
        let mut listed: Vec<SessionEntry> = sids
            .iter()
            .filter_map(|sid| self.entries.get(sid).map(|e| e.value().clone()))
            .filter(|e| e.expires > now)
            .collect();
        listed.sort_by_key(|e| std::cmp::Reverse((e.last_active, e.created)));
        listed.truncate(self.per_user);
        listed
    }

    fn stats(&self, now: i64) -> RegistryStats {
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        let entries: Vec<SessionEntry> = self
            .entries
            .iter()
            .filter(|e| e.value().expires > now)
            .map(|e| e.value().clone())
            .collect();
        for entry in &entries {
            *per_user.entry(entry.sub.as_str()).or_default() += 1;
        }
        RegistryStats {
            sessions: entries.len(),
            users: per_user.len(),
            max_per_user: per_user.values().copied().max().unwrap_or(0),
        }
    }

    fn sweep(&self, now: i64) -> usize {
        let expired: Vec<Box<str>> = self
            .entries
            .iter()
            .filter(|e| e.value().expires <= now)
            .map(|e| e.key().clone())
            .collect();
        for sid in &expired {
            self.forget(sid);
        }
        expired.len()
    }
}

/// Truncate a user agent to [`MAX_USER_AGENT`] characters.
pub(crate) fn truncate_agent(agent: &str) -> String {
    agent.chars().take(MAX_USER_AGENT).collect()
}

/// An IP address as `policy` keeps it.
pub(crate) fn keep_ip(ip: std::net::IpAddr, policy: IpPolicy) -> Option<String> {
    match (policy, ip) {
        (IpPolicy::Off, _) => None,
        (IpPolicy::Full, ip) => Some(ip.to_string()),
        (IpPolicy::Truncated, std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        (IpPolicy::Truncated, std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}
