//! [`RedisDenylistOptions`]: the settings of a [`RedisDenylist`](super::RedisDenylist).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::denylist::memory::DEFAULT_CAPACITY;
use crate::error::RevocationError;
use crate::redis_conn::RedisConnection;

/// Default key and channel prefix.
pub const DEFAULT_NAMESPACE: &str = "jwt-session:";
/// Default propagation margin: how much longer than its I2 lifetime a shared revocation
/// is kept, to cover the time it takes to reach every instance.
pub const DEFAULT_PROPAGATION_MARGIN: Duration = Duration::from_secs(5);

/// Settings of a [`RedisDenylist`](super::RedisDenylist). Each setter documents its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisDenylistOptions {
    pub(super) namespace: String,
    pub(super) propagation_margin: Duration,
    pub(super) capacity: usize,
    /// How to reach Redis: TLS, ACL user, timeouts, backoff.
    pub(super) conn: RedisConnection,
    pub(super) health_check_interval: Duration,
    pub(super) clock: Arc<dyn Clock>,
}

impl Default for RedisDenylistOptions {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            propagation_margin: DEFAULT_PROPAGATION_MARGIN,
            capacity: DEFAULT_CAPACITY,
            conn: RedisConnection::default(),
            health_check_interval: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
        }
    }
}

impl RedisDenylistOptions {
    /// Prefix of every key and of the channel. Default [`DEFAULT_NAMESPACE`]
    /// (`jwt-session:`). Instances share revocations only within one namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Added to each shared revocation's I2 lifetime (in Redis and in other instances'
    /// mirrors; rounded up to whole seconds). Default [`DEFAULT_PROPAGATION_MARGIN`] (5 s).
    pub fn propagation_margin(mut self, margin: Duration) -> Self {
        self.propagation_margin = margin;
        self
    }

    /// Capacity of the local mirror (see [`MemoryDenylist`](crate::MemoryDenylist), I4). Default
    /// [`DEFAULT_CAPACITY`] (1,000,000).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How to reach Redis beyond the URL: TLS trust (a private CA), an ACL user and
    /// password, timeouts and backoff (see [`RedisConnection`]). Replaces the whole of it,
    /// so call it before [`connect_timeout`](Self::connect_timeout),
    /// [`response_timeout`](Self::response_timeout) or
    /// [`retry_backoff`](Self::retry_backoff) if you use them too. Default
    /// `RedisConnection::default()`.
    pub fn connection(mut self, connection: RedisConnection) -> Self {
        self.conn = connection;
        self
    }

    /// Longest wait for a TCP connection and handshake (TLS, `HELLO`) (as
    /// [`RedisConnection::connect_timeout`]). Default 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.conn = self.conn.connect_timeout(timeout);
        self
    }

    /// Longest wait for any Redis reply; slower counts as a failure (as
    /// [`RedisConnection::response_timeout`]). Default 2 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.conn = self.conn.response_timeout(timeout);
        self
    }

    /// How often the link `PING`s Redis to notice a dead connection. Default 1 s.
    pub fn health_check_interval(mut self, every: Duration) -> Self {
        self.health_check_interval = every;
        self
    }

    /// Reconnect and republish backoff: from `min`, doubling up to `max` (with jitter).
    /// Default 100 ms to 5 s (as [`RedisConnection::retry_backoff`]).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.conn = self.conn.retry_backoff(min, max);
        self
    }

    /// The clock of background work (dating revocations learned from Redis, the last
    /// resync time). Default [`SystemClock`]; pass the session config's
    /// [`clock_handle`](crate::SessionConfig::clock_handle) so that both agree.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub(super) fn check(&self) -> Result<(), RevocationError> {
        let bad = |what: &str| Err(RevocationError::Backend(format!("redis denylist: {what}")));
        if self.namespace.is_empty() {
            return bad("the namespace must not be empty");
        }
        if self.capacity == 0 {
            return bad("capacity must be at least 1");
        }
        if self.health_check_interval.is_zero() {
            return bad("the health-check interval must be positive");
        }
        self.conn.check("redis denylist")
    }
}
