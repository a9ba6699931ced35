//! The session registry (documented on [`SessionRegistry`]).

mod memory;
#[cfg(feature = "redis")]
mod redis;

use serde::{Deserialize, Serialize};

use crate::error::RevocationError;

pub use self::memory::{MemoryRegistry, MemoryRegistryBuilder};
#[cfg(feature = "redis")]
pub use self::redis::{
    DEFAULT_QUEUE_CAPACITY, RedisRegistry, RedisRegistryOptions, RedisRegistryStatus,
};

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
    /// The registry could not be read (a shared backend that is unreachable): nothing was
    /// listed, counted or ended. Worth a retry.
    #[error("the session registry could not be read: {0}")]
    Unavailable(RevocationError),
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
///
/// The layer calls [`put`](Self::put), [`remove`](Self::remove) and
/// [`remove_user`](Self::remove_user) synchronously while it answers a login, a reissue or
/// a logout: they must return at once (no network round trip — queue it, as
/// `RedisRegistry` does). The reads ([`list`](Self::list), [`get`](Self::get),
/// [`stats`](Self::stats)) serve the inventory routes, the
/// [`SessionHandle`](crate::SessionHandle) and operators — never a request's admission.
///
/// The session registry (optional): which sessions a user has, for "where you're signed
/// in" pages, ending one device's session, and operators' views — without a store read on
/// the request path.
///
/// The layer **writes** to it when something happens to a session anyway — a login, a
/// reissue (so at most once per `reissue_after` per session, never on a plain request), an
/// update or re-authentication, a logout or revocation — and **never reads** it to accept
/// or refuse a request: the token and the revocation store stay the only things on the hot
/// path. A registry that is full or failing never blocks a request; revocation keeps
/// failing closed as before. Entries expire with their session (I2-style), so "last
/// active" is accurate to `reissue_after`.
///
/// Two backends: [`MemoryRegistry`] (one process; bounded per user and in total, swept,
/// optionally journaled) and, with the `redis` feature, `RedisRegistry` (shared by every
/// instance; the layer's writes are queued and sent by a background task, so a slow or
/// unreachable Redis never holds a request).
///
/// Turn it on with [`SessionLayer::with_registry`](crate::SessionLayer::with_registry);
/// list and end sessions through [`SessionHandle`](crate::SessionHandle) or the
/// ready-made routes (`GET /session/list`, `POST /session/revoke`,
/// `POST /session/logout-others`).
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

    /// As [`list`](Self::list), but an error when the registry could not be read (a
    /// shared backend that is unreachable) instead of an empty list. The layer's routes
    /// and [`SessionHandle`](crate::SessionHandle) use this one, so a user is never told
    /// they have no session, or that a listed one does not exist, because of an outage.
    /// The default answers [`list`](Self::list) (a registry in memory cannot fail to be
    /// read).
    ///
    /// # Errors
    ///
    /// A [`RevocationError`] when the registry could not be read.
    fn try_list(&self, sub: &str, now: i64) -> Result<Vec<SessionEntry>, RevocationError> {
        Ok(self.list(sub, now))
    }

    /// As [`stats`](Self::stats), but an error when the registry could not be read; the
    /// default answers [`stats`](Self::stats).
    ///
    /// # Errors
    ///
    /// A [`RevocationError`] when the registry could not be read.
    fn try_stats(&self, now: i64) -> Result<RegistryStats, RevocationError> {
        Ok(self.stats(now))
    }

    /// Drop entries whose session has expired; returns how many.
    fn sweep(&self, now: i64) -> usize;
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
