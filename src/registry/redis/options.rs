//! [`RedisRegistryOptions`]: the settings of a [`RedisRegistry`](super::RedisRegistry).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::RevocationError;
use crate::redis_conn::RedisConnection;
use crate::registry::{DEFAULT_PER_USER, DEFAULT_REGISTRY_CAPACITY};

/// Default most writes waiting for Redis; past it the oldest are dropped (best effort).
///
/// Available with the `redis` feature.
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;

/// Settings of a [`RedisRegistry`](super::RedisRegistry). Each setter documents its default.
///
/// Available with the `redis` feature.
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisRegistryOptions {
    pub(super) namespace: String,
    pub(super) per_user: usize,
    pub(super) capacity: usize,
    pub(super) queue_capacity: usize,
    pub(super) ended_fallback: Duration,
    /// How to reach Redis: TLS, ACL user, timeouts, backoff.
    pub(super) conn: RedisConnection,
    pub(super) clock: Arc<dyn Clock>,
}

impl Default for RedisRegistryOptions {
    fn default() -> Self {
        Self {
            namespace: crate::denylist::DEFAULT_NAMESPACE.to_owned(),
            per_user: DEFAULT_PER_USER,
            capacity: DEFAULT_REGISTRY_CAPACITY,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            ended_fallback: Duration::from_secs(3600),
            conn: RedisConnection::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl RedisRegistryOptions {
    /// Prefix of every key. Default `jwt-session:` (the denylist's: the two never share a
    /// key — the registry's are under `<namespace>registry:`). Instances list each other's
    /// sessions only within one namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Most sessions listed per user; past it the one that would expire first drops out
    /// of the listing (never out of the denylist). Default
    /// [`DEFAULT_PER_USER`](crate::registry::DEFAULT_PER_USER) (50).
    pub fn per_user(mut self, n: usize) -> Self {
        self.per_user = n;
        self
    }

    /// Most sessions listed in all (the whole namespace, every instance); past it the
    /// ones that would expire first drop out of the listing (never out of the denylist).
    /// Default [`DEFAULT_REGISTRY_CAPACITY`](crate::DEFAULT_REGISTRY_CAPACITY)
    /// (1,000,000), as [`MemoryRegistryBuilder::capacity`](crate::MemoryRegistryBuilder::capacity).
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Most writes waiting for Redis (while it is slow or away); past it the oldest are
    /// dropped and counted in [`RedisRegistryStatus::dropped`](super::RedisRegistryStatus).
    /// Default [`DEFAULT_QUEUE_CAPACITY`] (100,000).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// How long an ended session is remembered when its entry is not (yet) in Redis, so
    /// that a write still on its way from another instance cannot list it again. Default
    /// 1 hour. (When the entry is there, it is remembered as long as the entry would have
    /// lived.)
    pub fn ended_fallback(mut self, ttl: Duration) -> Self {
        self.ended_fallback = ttl;
        self
    }

    /// How to reach Redis beyond the URL: TLS trust (a private CA), an ACL user and
    /// password, timeouts and backoff (see [`RedisConnection`]; the denylist's
    /// [`connection`](crate::RedisDenylistOptions::connection) takes the same value).
    /// Replaces the whole of it, so call it before
    /// [`connect_timeout`](Self::connect_timeout),
    /// [`response_timeout`](Self::response_timeout) or
    /// [`retry_backoff`](Self::retry_backoff) if you use them too. Default
    /// `RedisConnection::default()`.
    pub fn connection(mut self, connection: RedisConnection) -> Self {
        self.conn = connection;
        self
    }

    /// Longest wait for a TCP connection and handshake (TLS, `AUTH`) (as
    /// [`RedisConnection::connect_timeout`]). Default 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.conn = self.conn.connect_timeout(timeout);
        self
    }

    /// Longest wait for any Redis reply (a listing included); slower counts as a failure
    /// (as [`RedisConnection::response_timeout`]). Default 2 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.conn = self.conn.response_timeout(timeout);
        self
    }

    /// Reconnect and rewrite backoff: from `min`, doubling up to `max` (with jitter).
    /// Default 100 ms to 5 s (as [`RedisConnection::retry_backoff`]).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.conn = self.conn.retry_backoff(min, max);
        self
    }

    /// The clock that dates the entries' TTLs (an entry lives in Redis until its
    /// `expires` by this clock). Default [`SystemClock`]; pass the session config's
    /// [`clock_handle`](crate::SessionConfig::clock_handle) so that both agree.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub(super) fn check(&self) -> Result<(), RevocationError> {
        let bad = |what: &str| Err(RevocationError::Backend(format!("redis registry: {what}")));
        if self.namespace.is_empty() {
            return bad("the namespace must not be empty");
        }
        if self.per_user == 0 || self.capacity == 0 || self.queue_capacity == 0 {
            return bad("per_user, capacity and queue_capacity must be at least 1");
        }
        if self.ended_fallback.is_zero() {
            return bad("ended_fallback must be positive");
        }
        self.conn.check("redis registry")
    }
}
