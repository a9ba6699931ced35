//! [`RedisDenylistOptions`]: the settings of a [`RedisDenylist`](super::RedisDenylist).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::denylist::memory::DEFAULT_CAPACITY;
use crate::error::RevocationError;
use crate::redis_conn::RedisConnection;

/// Default key and channel prefix.
///
/// Available with the `redis` feature.
pub const DEFAULT_NAMESPACE: &str = "jwt-session:";
/// Default propagation margin: how much longer than its I2 lifetime a shared revocation
/// is kept, to cover the time it takes to reach every instance.
///
/// Available with the `redis` feature.
pub const DEFAULT_PROPAGATION_MARGIN: Duration = Duration::from_secs(5);

/// Default bound of the change log (the Redis stream `<namespace>changes`): about this
/// many entries (`XADD … MAXLEN ~`), see [`RedisDenylistOptions::change_log_len`].
///
/// Available with the `redis` feature.
pub const DEFAULT_CHANGE_LOG_LEN: usize = 100_000;

/// Settings of a [`RedisDenylist`](super::RedisDenylist). Each setter documents its default.
///
/// Available with the `redis` feature.
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
    pub(super) change_log_len: usize,
    pub(super) serve_while_syncing: bool,
    pub(super) write_legacy_keys: bool,
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
            change_log_len: DEFAULT_CHANGE_LOG_LEN,
            serve_while_syncing: false,
            write_legacy_keys: false,
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

    /// About how many entries the change log keeps (the Redis stream `<namespace>changes`,
    /// trimmed with `XADD … MAXLEN ~ len`, so Redis may keep a little more). Default
    /// [`DEFAULT_CHANGE_LOG_LEN`] (100,000).
    ///
    /// Every revocation written to Redis is also appended to the change log, in the same
    /// `MULTI` as its bucket entry and its `PUBLISH`. An instance that reconnects reads
    /// only the entries it missed (incremental resync) when the log still holds all of
    /// them, and falls back to the full read (`SCAN`, then every bucket of live
    /// revocations) otherwise: after an outage during which more than about `len`
    /// revocations were made, or when the stream was deleted, trimmed past its position
    /// or recreated. Trimming therefore
    /// costs speed, never a revocation (I1).
    ///
    /// Why a length and not an age (`MINID`): an id older than the revocations' TTL is
    /// useless, but stream ids are dated by the Redis server's clock, which an instance
    /// does not share (its [`clock`](Self::clock) may be a test clock); a length needs no
    /// clock. Size it as *logout rate × the longest outage to bridge incrementally*: at
    /// 116 logouts/s (10 million a day), 100,000 entries bridge about 14 minutes and take
    /// about 15 MB in Redis (≈150 bytes each). Keep it below the live revocations' count
    /// over the shortest TTL (logout rate × idle timeout) if Redis memory is tight: older
    /// entries would only ever be read by an instance that then did a full read anyway.
    ///
    /// `0` turns the change log off: no `XADD` (for an ACL user without the stream
    /// commands, or a Redis before 7.0), and every resync is a full read.
    pub fn change_log_len(mut self, len: usize) -> Self {
        self.change_log_len = len;
        self
    }

    /// What revocation checks answer on a **cold start**, before the first resync from
    /// Redis has completed. Default `false`: fail closed.
    ///
    /// * `false` (default): every check fails, the layer refuses every session with
    ///   503 `session_check_unavailable` (I5). An instance that has just started knows
    ///   nothing of what other instances revoked, so answering would accept revoked
    ///   sessions until the read ends. The 503 window is that read: it grows with the
    ///   live revocations in Redis (`cargo bench --features redis --bench redis_resync`
    ///   measures it at 100k and 1M). Readiness probes keep traffic away meanwhile.
    /// * `true`: checks answer from what the mirror holds so far (the instance's own
    ///   revocations, and whatever the running read has applied). Sessions revoked
    ///   elsewhere may be accepted until the read ends: availability over revocation for
    ///   that window. [`RedisStatus::ready`](super::RedisStatus::ready) still says
    ///   `false` until it ends.
    ///
    /// A **reconnect** resync never refuses: the instance already holds every revocation
    /// up to the last change-log id it applied, so it serves with what it knows while it
    /// reads what it missed (the same as while Redis is unreachable:
    /// [`RedisStatus::stale`](super::RedisStatus::stale)). Failing closed there would turn
    /// every Redis blip into an outage of the whole fleet.
    pub fn serve_while_syncing(mut self, serve: bool) -> Self {
        self.serve_while_syncing = serve;
        self
    }

    /// Also write each revocation as a key of its own (`<namespace>revoked:sid:<sid>`, …,
    /// a string that expires with the revocation's bucket), the layout of versions before
    /// per-minute buckets. Default `false`.
    ///
    /// Turn it on for a **rolling upgrade** from such a version, until no instance of it
    /// runs (or could be rolled back to): those instances read only per-revocation keys
    /// when they start or fall back to a full read, so without them they would not learn
    /// what upgraded instances revoked (I1). They still hear every revocation published
    /// while they run. This version reads both layouts whatever the setting, so keys
    /// written by older instances are never missed. It costs one more `SET` per
    /// revocation and about 240 bytes of Redis memory per live revocation.
    pub fn write_legacy_keys(mut self, write: bool) -> Self {
        self.write_legacy_keys = write;
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
