//! [`RedisKeyShareOptions`]: the settings of a [`RedisKeyShare`](super::RedisKeyShare).

use std::time::Duration;

use crate::denylist::DEFAULT_NAMESPACE;
use crate::error::{KeyError, RevocationError};
use crate::redis_conn::RedisConnection;

/// Default interval between two publications of an instance's public keys (each one
/// extends their expiry and re-reads what the others published): 60 seconds.
///
/// Available with the `redis` feature.
pub const DEFAULT_KEY_SHARE_REFRESH: Duration = Duration::from_secs(60);

/// Settings of a [`RedisKeyShare`](super::RedisKeyShare). Each setter documents its
/// default.
///
/// Available with the `redis` feature.
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisKeyShareOptions {
    pub(super) namespace: String,
    pub(super) conn: RedisConnection,
    pub(super) refresh_every: Duration,
    pub(super) health_check_interval: Duration,
    pub(super) instance: Option<String>,
}

impl Default for RedisKeyShareOptions {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            conn: RedisConnection::default(),
            refresh_every: DEFAULT_KEY_SHARE_REFRESH,
            health_check_interval: Duration::from_secs(1),
            instance: None,
        }
    }
}

impl RedisKeyShareOptions {
    /// Prefix of every key and of the channel. Default
    /// [`DEFAULT_REDIS_NAMESPACE`](crate::DEFAULT_REDIS_NAMESPACE) (`jwt-session:`), the
    /// denylist's: instances share keys only within one namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How to reach Redis beyond the URL: TLS trust, an ACL user and password, timeouts
    /// and backoff (see [`RedisConnection`]). Default `RedisConnection::default()`.
    pub fn connection(mut self, connection: RedisConnection) -> Self {
        self.conn = connection;
        self
    }

    /// How often this instance writes its public keys again (extending their expiry) and
    /// re-reads the keys the others published. Default [`DEFAULT_KEY_SHARE_REFRESH`]
    /// (60 s). A published key expires the longest absolute timeout + leeway + twice this
    /// interval after it was last written ([`RedisKeyShare::key_ttl`](super::RedisKeyShare::key_ttl)).
    pub fn refresh_every(mut self, every: Duration) -> Self {
        self.refresh_every = every;
        self
    }

    /// How often the link `PING`s Redis to notice a dead connection (then it reconnects
    /// and reads every published key again). Default 1 s.
    pub fn health_check_interval(mut self, every: Duration) -> Self {
        self.health_check_interval = every;
        self
    }

    /// The name this instance publishes its keys under (in each entry's `by`, and in the
    /// logs of the others): 1–64 characters of `A-Z a-z 0-9 . _ : -`, e.g. a host name.
    /// Default: random per process (`i-` and 16 hex digits).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    pub(super) fn check(&self) -> Result<(), KeyError> {
        let bad = |what: &str| Err(KeyError::Share(what.to_owned()));
        if self.namespace.is_empty() {
            return bad("the namespace must not be empty");
        }
        if self.refresh_every < Duration::from_millis(10) {
            return bad("the refresh interval must be at least 10 ms");
        }
        if self.health_check_interval.is_zero() {
            return bad("the health-check interval must be positive");
        }
        if let Some(id) = &self.instance {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
            if !ok {
                return bad("the instance id must be 1-64 characters of A-Z a-z 0-9 . _ : -");
            }
        }
        self.conn
            .check("redis key share")
            .map_err(|e| KeyError::Share(backend_message(e)))
    }
}

/// The message of a connection-settings error, without the "revocation backend" label.
pub(super) fn backend_message(e: RevocationError) -> String {
    match e {
        RevocationError::Backend(message) => message,
        other => other.to_string(),
    }
}
