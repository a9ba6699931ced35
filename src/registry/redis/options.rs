//! [`RedisRegistryOptions`]: the settings of a [`RedisRegistry`](super::RedisRegistry).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::RevocationError;
use crate::registry::DEFAULT_PER_USER;

/// Default most writes waiting for Redis; past it the oldest are dropped (best effort).
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;

/// Settings of a [`RedisRegistry`](super::RedisRegistry). Each setter documents its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisRegistryOptions {
    pub(super) namespace: String,
    pub(super) per_user: usize,
    pub(super) queue_capacity: usize,
    pub(super) ended_fallback: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) response_timeout: Duration,
    pub(super) retry_min: Duration,
    pub(super) retry_max: Duration,
    pub(super) clock: Arc<dyn Clock>,
}

impl Default for RedisRegistryOptions {
    fn default() -> Self {
        Self {
            namespace: crate::denylist::DEFAULT_NAMESPACE.to_owned(),
            per_user: DEFAULT_PER_USER,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            ended_fallback: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
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

    /// Longest wait for a TCP connection and handshake. Default 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait for any Redis reply (a listing included); slower counts as a failure.
    /// Default 2 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Reconnect and rewrite backoff: from `min`, doubling up to `max` (with jitter).
    /// Default 100 ms to 5 s.
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min = min;
        self.retry_max = max;
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
        if self.per_user == 0 || self.queue_capacity == 0 {
            return bad("per_user and queue_capacity must be at least 1");
        }
        if self.connect_timeout.is_zero()
            || self.response_timeout.is_zero()
            || self.ended_fallback.is_zero()
        {
            return bad("timeouts must be positive");
        }
        if self.retry_min.is_zero() || self.retry_max < self.retry_min {
            return bad("retry backoff needs 0 < min <= max");
        }
        Ok(())
    }
}
