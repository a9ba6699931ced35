//! [`RedisConnection`]: how the Redis backends reach Redis — TLS (`rediss://`, a private
//! CA, a client certificate), an ACL user and password, Sentinel (`redis+sentinel://`),
//! timeouts and reconnect backoff —
//! shared by [`RedisDenylistOptions`](crate::RedisDenylistOptions) and
//! [`RedisRegistryOptions`](crate::RedisRegistryOptions); and [`RedisFailure`], the kind of
//! the last failure a backend met reaching Redis.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, Connection, ConnectionAddr, ErrorKind,
    FromRedisValue, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo, RedisError,
    RedisFuture, RedisResult, TlsCertificates, TlsMode, Value,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::RevocationError;

/// How a Redis backend reaches Redis, beyond its URL: TLS trust, an ACL user and password,
/// timeouts and reconnect backoff. One value serves the
/// [`RedisDenylist`](crate::RedisDenylist), the
/// [`RedisRegistry`](crate::RedisRegistry) and the [`RedisKeyShare`](crate::RedisKeyShare)
/// ([`RedisDenylistOptions::connection`](crate::RedisDenylistOptions::connection),
/// [`RedisRegistryOptions::connection`](crate::RedisRegistryOptions::connection),
/// [`RedisKeyShareOptions::connection`](crate::RedisKeyShareOptions::connection)).
///
/// Available with the `redis` feature.
///
/// * **TLS**: use a `rediss://host:port/` URL. The server's certificate is checked against
///   the system's trusted roots, or — for a private CA — only against the CA bundle given
///   with [`ca_pem`](Self::ca_pem) or [`ca_file`](Self::ca_file). The host name in the URL
///   must be one the certificate names. [`client_cert_pem`](Self::client_cert_pem) adds a
///   client certificate (Redis's `tls-auth-clients yes`). TLS is rustls, with the crypto
///   provider of the crate's backend (aws-lc-rs with `aws-lc`, ring with `rust-crypto`),
///   installed as rustls's process default only if none is installed yet.
/// * **ACL user and password**: in the URL (`rediss://user:password@host:port/`, percent-
///   encoded) or with [`username`](Self::username) and [`password`](Self::password), which
///   override the URL's (and keep the secret out of a URL that may be logged). The user
///   needs these commands on the namespace's keys (`~jwt-session:*`) and channel
///   (`&jwt-session:*`): `HELLO AUTH PING SUBSCRIBE PUBLISH SET GET MGET SCAN MULTI EXEC` for the
///   denylist; `EVAL EVALSHA HMGET SCAN` and what its scripts call for the registry (see the
///   README for an ACL line).
/// * **Sentinel**: `redis+sentinel://[user:password@]host:port[,host:port…]/<master>[/<db>]`
///   names the Sentinels (no percent-decoding here: give special characters with
///   [`password`](Self::password)) and the master's name; the user and password are the
///   master's (the Sentinels are asked without). Every connect asks the Sentinels for the
///   current master, so after a failover the backends reconnect to the promoted replica —
///   the denylist then resyncs and re-writes its own live revocations, so none is lost. A
///   `READONLY` reply (a demoted master still reachable) makes them reconnect too.
///   `rediss+sentinel://…` reaches the Sentinels and the master over TLS, both checked
///   against the same trust ([`ca_pem`](Self::ca_pem), or the system's roots) and shown
///   the same client certificate.
/// * **Cluster** ([`RedisDenylist`](crate::RedisDenylist) only):
///   `redis+cluster://[user:password@]host:port[,host:port…]` names some nodes of a Redis
///   Cluster (7.0 or later: sharded pub/sub); the client learns the others, follows the
///   slots through failovers and resharding, and remembers the nodes the cluster listed at
///   its last connect, so a reconnect works even when every node of the URL is gone. The
///   denylist's names then start with its namespace as a hash tag (`{jwt-session:}…`), so
///   one revocation's key, change-log entry and `SPUBLISH` stay one transaction on the
///   node serving that slot (see [`RedisDenylist`](crate::RedisDenylist)). TLS with a
///   cluster (`rediss+cluster://`) and the session registry on a cluster are not supported
///   yet (errors of `connect`).
///
/// A wrong CA, an unreachable server or a wrong password never fail `connect` (it returns
/// at once and keeps retrying with backoff); they show in the backend's status as a
/// [`RedisFailure`] (`Tls`, `Unreachable`, `Auth`…) with its message. The password is never
/// printed (not by `Debug`, not in errors).
///
/// ```
/// use std::time::Duration;
/// use jwt_session::{RedisConnection, RedisDenylistOptions};
///
/// let ca = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
/// let connection = RedisConnection::default()
///     .ca_pem(ca)
///     .username("jwt-session")
///     .password("s3cret")
///     .connect_timeout(Duration::from_secs(1));
/// let options = RedisDenylistOptions::default().connection(connection);
/// # let _ = options;
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisConnection {
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    username: Option<String>,
    password: Option<String>,
    ca: Option<Pem>,
    client_cert: Option<(Pem, Pem)>,
}

/// PEM given as bytes, or a file read when the client is built (at `connect`).
#[derive(Clone)]
enum Pem {
    Bytes(Arc<[u8]>),
    File(PathBuf),
}

impl Pem {
    fn load(&self, what: &str) -> Result<Vec<u8>, RevocationError> {
        match self {
            Self::Bytes(b) => Ok(b.to_vec()),
            Self::File(path) => std::fs::read(path).map_err(|e| {
                RevocationError::Backend(format!(
                    "redis: cannot read the {what} file {}: {e}",
                    path.display()
                ))
            }),
        }
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "<{} bytes of PEM>", b.len()),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("retry_backoff", &(self.retry_min, self.retry_max))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca)
            .field("client_cert", &self.client_cert.as_ref().map(|(c, _)| c))
            .finish()
    }
}

impl Default for RedisConnection {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            username: None,
            password: None,
            ca: None,
            client_cert: None,
        }
    }
}

impl RedisConnection {
    /// Longest wait for a TCP connection and its TLS and `HELLO`/`AUTH` handshake. Default
    /// 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait for any Redis reply; slower counts as a failure. Default 2 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Reconnect and retry backoff: from `min`, doubling up to `max` (with jitter).
    /// Default 100 ms to 5 s.
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min = min;
        self.retry_max = max;
        self
    }

    /// The ACL user to authenticate as (Redis 6 or later); overrides a user in the URL.
    /// Default: the URL's, or none (the `default` user).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (of the ACL user, or Redis's `requirepass`); overrides one in the
    /// URL. Default: the URL's, or none. Never printed.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Trust only these CA certificates (PEM, one or more) for a `rediss://` server,
    /// instead of the system's roots: for a private CA. Needs a `rediss://` URL.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(Pem::Bytes(pem.into().into()));
        self
    }

    /// As [`ca_pem`](Self::ca_pem), read from a file when the backend connects (an
    /// unreadable or unparsable file is an error of `connect`).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(Pem::File(path.into()));
        self
    }

    /// Present this client certificate chain and private key (both PEM) to a server that
    /// asks for one (mutual TLS). Needs a `rediss://` URL.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client_cert = Some((
            Pem::Bytes(cert.into().into()),
            Pem::Bytes(key.into().into()),
        ));
        self
    }

    /// As [`client_cert_pem`](Self::client_cert_pem), read from files when the backend
    /// connects.
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((Pem::File(cert.into()), Pem::File(key.into())));
        self
    }

    /// Reject impossible settings; `who` names the backend in the message.
    pub(crate) fn check(&self, who: &str) -> Result<(), RevocationError> {
        let bad = |what: &str| Err(RevocationError::Backend(format!("{who}: {what}")));
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return bad("timeouts must be positive");
        }
        if self.retry_min.is_zero() || self.retry_max < self.retry_min {
            return bad("retry backoff needs 0 < min <= max");
        }
        Ok(())
    }

    /// The async connection settings: the timeouts.
    pub(crate) fn async_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
    }

    /// Where `url` leads with these settings (RESP3 if `resp3`, whatever the URL says): one
    /// Redis, or the master that Sentinels name (`redis+sentinel://`).
    ///
    /// # Errors
    ///
    /// An unparsable URL, a CA or client certificate that cannot be read or parsed, or TLS
    /// settings with a `redis://` URL. The message never includes the URL.
    pub(crate) fn target(&self, url: &str, resp3: bool) -> Result<Target, RevocationError> {
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return self.sentinel(rest, resp3, false);
        }
        if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            return self.sentinel(rest, resp3, true);
        }
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            return self.cluster(rest, resp3);
        }
        if url.starts_with("rediss+cluster://") {
            return Err(RevocationError::Backend(
                "redis: TLS with Redis Cluster (rediss+cluster://) is not supported yet".into(),
            ));
        }
        self.client(url, resp3).map(|c| Target::Direct(Box::new(c)))
    }

    /// `rest`: `[user[:password]@]host:port[,host:port…]/<master name>[/<db>]`.
    /// With `tls` (`rediss+sentinel://`), both the Sentinels and the master are reached over
    /// TLS, trusting the same CA and presenting the same client certificate.
    fn sentinel(&self, rest: &str, resp3: bool, tls: bool) -> Result<Target, RevocationError> {
        let bad = |what: &str| {
            Err(RevocationError::Backend(format!(
                "invalid Redis Sentinel URL (redis+sentinel://[user:password@]host:port[,host:port]/<master>[/<db>]): {what}"
            )))
        };
        if !tls && (self.ca.is_some() || self.client_cert.is_some()) {
            return bad(
                "a CA bundle or client certificate is set but the URL is not rediss+sentinel:// (TLS)",
            );
        }
        let certs = if tls {
            crate::tls::install_crypto_provider();
            Some(self.certificates()?)
        } else {
            None
        };
        let Some((authority, path)) = rest.split_once('/') else {
            return bad("no master name");
        };
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let mut segments = path.trim_end_matches('/').split('/');
        let master = match segments.next() {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => return bad("no master name"),
        };
        let db = match segments.next() {
            None | Some("") => 0,
            Some(d) => match d.parse::<i64>() {
                Ok(db) => db,
                Err(_) => return bad("the database is not a number"),
            },
        };
        let mut sentinels = Vec::new();
        for host in hosts.split(',') {
            let parsed = host
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)));
            match parsed {
                Some((h, port)) if !h.is_empty() && tls => {
                    sentinels.push(ConnectionAddr::TcpTls {
                        host: h.to_owned(),
                        port,
                        insecure: false,
                        tls_params: None,
                    });
                }
                Some((h, port)) if !h.is_empty() => {
                    sentinels.push(ConnectionAddr::Tcp(h.to_owned(), port));
                }
                _ => return bad("each Sentinel is host:port"),
            }
        }
        let (mut username, mut password) = match credentials.map(|c| c.split_once(':')) {
            Some(Some((u, p))) => (Some(u.to_owned()), Some(p.to_owned())),
            Some(None) => (credentials.map(str::to_owned), None),
            None => (None, None),
        };
        username = self.username.clone().or(username).filter(|u| !u.is_empty());
        password = self.password.clone().or(password);
        let build = || -> RedisResult<SentinelClient> {
            let mut b =
                SentinelClientBuilder::new(sentinels.clone(), &master, SentinelServerType::Master)?;
            if let Some(user) = &username {
                b = b.set_client_to_redis_username(user);
            }
            if let Some(password) = &password {
                b = b.set_client_to_redis_password(password);
            }
            if resp3 {
                b = b.set_client_to_redis_protocol(ProtocolVersion::RESP3);
            }
            if db != 0 {
                b = b.set_client_to_redis_db(db);
            }
            if let Some(certs) = &certs {
                b = b
                    .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                    .set_client_to_sentinel_certificates(certs.clone())
                    .set_client_to_redis_tls_mode(TlsMode::Secure)
                    .set_client_to_redis_certificates(certs.clone());
            }
            b.build()
        };
        let (nonblocking, blocking) = match (build(), build()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return bad(&e.to_string()),
        };
        let described = sentinels
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Target::Sentinel {
            described: format!("sentinel master {master} via {described}").into(),
            nonblocking: Arc::new(tokio::sync::Mutex::new(nonblocking)),
            blocking: Arc::new(std::sync::Mutex::new(blocking)),
        })
    }

    /// `rest`: `[user[:password]@]host:port[,host:port…][/]` — some nodes of a Redis
    /// Cluster (the client learns the others from them).
    fn cluster(&self, rest: &str, resp3: bool) -> Result<Target, RevocationError> {
        let bad = |what: &str| {
            Err(RevocationError::Backend(format!(
                "invalid Redis Cluster URL (redis+cluster://[user:password@]host:port[,host:port…]): {what}"
            )))
        };
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') {
            return bad("a cluster has no database number (only database 0)");
        }
        // Credentials stay in each node's URL: the redis crate percent-decodes them.
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((c, h)) => (format!("{c}@"), h),
            None => (String::new(), authority),
        };
        let mut given = Vec::new();
        for host in hosts.split(',') {
            match host.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                Some((h, Ok(_))) if !h.is_empty() => given.push(host.to_owned()),
                _ => return bad("each node is host:port"),
            }
        }
        if self.ca.is_some() || self.client_cert.is_some() {
            return bad(
                "a CA bundle or client certificate is set, but TLS with Redis Cluster is not supported yet",
            );
        }
        let target = ClusterTarget {
            described: format!("cluster via {hosts}").into(),
            prefix: format!("redis://{credentials}"),
            given,
            learned: std::sync::Mutex::new(Vec::new()),
            username: self.username.clone(),
            password: self.password.clone(),
            resp3,
        };
        // Parse and check now (credentials that differ, a bad host): an error of `connect`.
        if let Err(e) = target.client() {
            return bad(&e.to_string());
        }
        Ok(Target::Cluster(Arc::new(target)))
    }

    /// The TLS trust and client certificate to use (the system's roots without a CA).
    fn certificates(&self) -> Result<TlsCertificates, RevocationError> {
        let root_cert = self.ca.as_ref().map(|p| p.load("CA")).transpose()?;
        let client_tls = match &self.client_cert {
            Some((cert, key)) => Some(ClientTlsConfig {
                client_cert: cert.load("client certificate")?,
                client_key: key.load("client key")?,
            }),
            None => None,
        };
        if root_cert
            .as_ref()
            .is_some_and(|ca| !contains_certificate(ca))
        {
            return Err(RevocationError::Backend(
                "redis: the CA bundle holds no PEM certificate".into(),
            ));
        }
        Ok(TlsCertificates {
            client_tls,
            root_cert,
        })
    }

    /// A client for the one Redis at `url`.
    fn client(&self, url: &str, resp3: bool) -> Result<Client, RevocationError> {
        let invalid = |e: RedisError| RevocationError::Backend(format!("invalid Redis URL: {e}"));
        let info = url.into_connection_info().map_err(invalid)?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        if resp3 {
            settings = settings.set_protocol(ProtocolVersion::RESP3);
        }
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let info = info.set_redis_settings(settings);
        if !tls {
            if self.ca.is_some() || self.client_cert.is_some() {
                return Err(RevocationError::Backend(
                    "redis: a CA bundle or client certificate is set but the URL is not \
                     rediss:// (TLS)"
                        .into(),
                ));
            }
            return Client::open(info).map_err(invalid);
        }
        crate::tls::install_crypto_provider();
        Client::build_with_tls(info, self.certificates()?)
            .map_err(|e| RevocationError::Backend(format!("redis TLS settings: {e}")))
    }
}

/// Where a backend connects: one Redis, the master that a set of Sentinels names (asked
/// again at every connect, so a reconnect after a failover reaches the promoted replica),
/// or a Redis Cluster (the client follows its slots).
#[derive(Clone)]
pub(crate) enum Target {
    Direct(Box<Client>),
    Sentinel {
        described: Arc<str>,
        nonblocking: Arc<tokio::sync::Mutex<SentinelClient>>,
        blocking: Arc<std::sync::Mutex<SentinelClient>>,
    },
    Cluster(Arc<ClusterTarget>),
}

impl Target {
    /// Is it a Redis Cluster (keys must share a hash slot to be written together)?
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Connect (asking the Sentinels for the master first) with `settings`' timeouts;
    /// push messages (RESP3 only) go to `pushes`.
    pub(crate) async fn connect(
        &self,
        settings: &RedisConnection,
        pushes: Option<UnboundedSender<PushInfo>>,
    ) -> RedisResult<Conn> {
        let mut config = settings.async_config();
        if let Some(tx) = pushes.clone() {
            config = config.set_push_sender(tx);
        }
        match self {
            Self::Direct(client) => client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map(Conn::Node),
            Self::Sentinel { nonblocking, .. } => {
                let find = async { nonblocking.lock().await.async_get_client().await };
                let client = tokio::time::timeout(settings.connect_timeout, find)
                    .await
                    .map_err(|_| {
                        RedisError::from(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no answer from the Sentinels in time",
                        ))
                    })??;
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Node)
            }
            Self::Cluster(cluster) => {
                let client = cluster.client()?;
                let mut config = ClusterConfig::new()
                    .set_connection_timeout(settings.connect_timeout)
                    .set_response_timeout(settings.response_timeout);
                if let Some(tx) = pushes {
                    config = config.set_push_sender(tx);
                }
                let connect = client.get_async_connection_with_config(config);
                // Discovering the slots asks several nodes: bound the whole of it.
                let within = settings.connect_timeout.saturating_mul(2);
                let mut con = tokio::time::timeout(within, connect).await.map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer from the cluster's nodes in time",
                    ))
                })??;
                cluster.learn(&mut con).await;
                Ok(Conn::Cluster(Box::new(con)))
            }
        }
    }

    /// A blocking connection (asking the Sentinels for the master first). Not for a
    /// cluster (the callers refuse cluster URLs before they connect).
    pub(crate) fn connect_blocking(&self, timeout: Duration) -> RedisResult<Connection> {
        match self {
            Self::Direct(client) => client.get_connection_with_timeout(timeout),
            Self::Sentinel { blocking, .. } => {
                let client = blocking
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_client()?;
                client.get_connection_with_timeout(timeout)
            }
            Self::Cluster(_) => Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "no blocking connection to a Redis Cluster",
            ))),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct(client) => write!(f, "{}", client.get_connection_info().addr()),
            Self::Sentinel { described, .. } => f.write_str(described),
            Self::Cluster(cluster) => f.write_str(&cluster.described),
        }
    }
}

/// How to reach a Redis Cluster: the nodes the URL names, plus those the cluster named at
/// the last connect — so a reconnect still finds the cluster when every node of the URL is
/// gone (a failover, nodes replaced).
pub(crate) struct ClusterTarget {
    described: Arc<str>,
    /// `redis://`, with `user:password@` when the URL has them.
    prefix: String,
    /// `host:port` of the URL's nodes.
    given: Vec<String>,
    /// `host:port` of the nodes the cluster listed at the last connect.
    learned: std::sync::Mutex<Vec<String>>,
    username: Option<String>,
    password: Option<String>,
    resp3: bool,
}

impl ClusterTarget {
    /// A client that starts from the URL's nodes and the learned ones.
    fn client(&self) -> RedisResult<ClusterClient> {
        let learned = self
            .learned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut nodes: Vec<&String> = self.given.iter().collect();
        nodes.extend(learned.iter().filter(|n| !self.given.contains(n)));
        let urls = nodes.iter().map(|n| format!("{}{n}/", self.prefix));
        let mut builder = ClusterClientBuilder::new(urls);
        if let Some(user) = &self.username {
            builder = builder.username(user);
        }
        if let Some(password) = &self.password {
            builder = builder.password(password);
        }
        if self.resp3 {
            builder = builder.use_protocol(ProtocolVersion::RESP3);
        }
        builder.build()
    }

    /// Remember the nodes the cluster lists now (`CLUSTER SHARDS`-free: `CLUSTER NODES`
    /// works on every Redis with cluster support); best effort.
    async fn learn(&self, con: &mut ClusterConnection) {
        let Ok(nodes) = ::redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async::<String>(con)
            .await
        else {
            return;
        };
        let learned: Vec<String> = nodes
            .lines()
            .filter(|line| !line.contains("noaddr"))
            .filter_map(|line| {
                let addr = line.split(' ').nth(1)?.split(['@', ',']).next()?;
                (addr.rsplit_once(':')?.1 != "0").then(|| addr.to_owned())
            })
            .collect();
        if !learned.is_empty() {
            *self
                .learned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = learned;
        }
    }
}

/// A live connection: to one Redis (commands and subscriptions on one multiplexed
/// connection), or to a Redis Cluster (one per node, routed by key slot).
#[derive(Clone)]
pub(crate) enum Conn {
    Node(MultiplexedConnection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    /// Subscribe to `channel`: `SUBSCRIBE` on one Redis, `SSUBSCRIBE` (sharded pub/sub,
    /// on the node serving the channel's slot) in a cluster.
    pub(crate) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Node(c) => c.subscribe(channel).await,
            Self::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    /// The command that publishes to a channel of [`subscribe`](Self::subscribe):
    /// `PUBLISH`, or `SPUBLISH` in a cluster.
    pub(crate) fn publish_command(&self) -> &'static str {
        match self {
            Self::Node(_) => "PUBLISH",
            Self::Cluster(_) => "SPUBLISH",
        }
    }

    /// Run `cmd` where `key` lives: as is on one Redis; in a cluster on the master serving
    /// `key`'s slot (for `SCAN` and `PING`, which name no key of their own).
    pub(crate) async fn query_at<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: Cmd,
    ) -> RedisResult<T> {
        match self {
            Self::Node(c) => cmd.query_async(c).await,
            Self::Cluster(c) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let value = c
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                Ok(::redis::from_redis_value(value)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Does `name` hold a Redis Cluster hash tag (a non-empty `{…}`, the first `{` counting)?
pub(crate) fn has_hash_tag(name: &str) -> bool {
    name.split_once('{')
        .and_then(|(_, rest)| rest.find('}'))
        .is_some_and(|end| end > 0)
}

/// The prefix of a backend's names: `namespace` as given, or — in a cluster, unless it
/// holds a tag of its own — as a hash tag (`{jwt-session:}`), so that every name of the
/// backend shares one slot and a write and its publish stay one transaction on one node.
pub(crate) fn names_prefix(namespace: &str, cluster: bool) -> String {
    if cluster && !has_hash_tag(namespace) {
        format!("{{{namespace}}}")
    } else {
        namespace.to_owned()
    }
}

/// A `SCAN MATCH` pattern for every key starting with `prefix` (its glob characters
/// escaped).
pub(crate) fn scan_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 8);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// Does `pem` hold at least one `CERTIFICATE` block?
fn contains_certificate(pem: &[u8]) -> bool {
    pem::parse_many(pem).is_ok_and(|blocks| blocks.iter().any(|b| b.tag() == "CERTIFICATE"))
}

/// The kind of the last failure a Redis backend met (in its status), for alerts and for
/// telling a configuration mistake from an outage.
///
/// Available with the `redis` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisFailure {
    /// Could not connect (refused, unreachable, reset) or the connection was lost.
    Unreachable,
    /// A connect or a reply took longer than its timeout.
    Timeout,
    /// The TLS handshake failed: most often the server's certificate is not signed by the
    /// trusted CA (see [`RedisConnection::ca_pem`]), or names another host; or the server
    /// does not speak TLS on that port.
    Tls,
    /// Authentication failed: wrong user or password, or a password is needed
    /// (`WRONGPASS`, `NOAUTH`).
    Auth,
    /// The ACL user may not run a command or touch a key or channel the backend uses
    /// (`NOPERM`).
    NoPermission,
    /// Connected to a read-only replica (`READONLY`): a failover is under way (the old
    /// master was demoted; the backend reconnects, through the Sentinels if it uses them),
    /// or the URL names a replica.
    ReadOnly,
    /// Any other error (a refused command, an unexpected reply).
    Other,
}

impl RedisFailure {
    /// A stable lowercase name (`unreachable`, `timeout`, `tls`, `auth`, `no_permission`,
    /// `read_only`, `other`), for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Tls => "tls",
            Self::Auth => "auth",
            Self::NoPermission => "no_permission",
            Self::ReadOnly => "read_only",
            Self::Other => "other",
        }
    }

    /// What kind of failure `e` is.
    pub(crate) fn of(e: &RedisError) -> Self {
        if is_tls(e) {
            return Self::Tls;
        }
        // The error's own code, and those of the commands of a failed pipeline or
        // transaction (`EXECABORT` carries the `READONLY` of its `SET`s).
        let code = e.code().unwrap_or("");
        let inner = e.clone().into_server_errors();
        let has = |c: &str| {
            code == c
                || inner
                    .iter()
                    .flat_map(|v| v.iter())
                    .any(|(_, s)| s.code() == c)
        };
        if e.kind() == ErrorKind::AuthenticationFailed || has("WRONGPASS") || has("NOAUTH") {
            return Self::Auth;
        }
        if has("NOPERM") {
            return Self::NoPermission;
        }
        if has("READONLY") {
            return Self::ReadOnly;
        }
        if e.is_timeout() {
            return Self::Timeout;
        }
        if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            return Self::Unreachable;
        }
        Self::Other
    }
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Is a rustls error somewhere in `e`'s chain (an I/O error's payload included)? The redis
/// crate hands its I/O errors out as an `Arc<dyn Error>`, which is looked into too.
fn is_tls(e: &RedisError) -> bool {
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    fn tls(err: &(dyn std::error::Error + 'static)) -> bool {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(shared) = err.downcast_ref::<Shared>() {
            return tls(&**shared);
        }
        err.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<rustls::Error>())
    }
    let mut next = std::error::Error::source(e);
    while let Some(err) = next {
        if tls(err) {
            return true;
        }
        next = err.source();
    }
    false
}
