//! Revocation shared by many instances through Redis (cargo feature `redis`): see
//! [`RedisDenylist`] for the protocol and the failure behaviour.

mod link;
mod options;
mod outbox;
mod sync;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use self::options::{
    DEFAULT_CHANGE_LOG_LEN, DEFAULT_NAMESPACE, DEFAULT_PROPAGATION_MARGIN, RedisDenylistOptions,
};
use self::outbox::{Outbox, Outgoing};
use super::journal::{FULL, Record};
use super::memory::MemoryDenylist;
use super::{RevocationStore, TokenFacts};
use crate::claims::Policy;
use crate::clock::Clock;
use crate::error::RevocationError;
use crate::redis_conn::{Conn, RedisFailure, names_prefix, scan_pattern};

/// What [`RedisDenylist::status`] reports, for readiness and health endpoints.
///
/// Available with the `redis` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStatus {
    /// The first resync from Redis has completed: revocation checks are answered. Until
    /// then every session is refused (fail closed). Never goes back to `false`.
    pub ready: bool,
    /// Connected, subscribed and resynced since the last (re)connect.
    pub connected: bool,
    /// Ready but not connected: answering from a mirror that may miss revocations made on
    /// other instances since the link was lost.
    pub stale: bool,
    /// Revocations accepted here but not yet written to the current Redis.
    pub pending_publishes: usize,
    /// When the last resync completed (UNIX seconds, the options' clock).
    pub last_resync: Option<i64>,
    /// The last Redis error seen, if any (no credentials: the URL is never included).
    pub last_error: Option<String>,
    /// The kind of that error: tells a configuration mistake (`Tls`: wrong CA; `Auth`:
    /// wrong user or password; `NoPermission`: the ACL user may not touch our keys) from
    /// an outage (`Unreachable`, `Timeout`).
    pub failure: Option<RedisFailure>,
    /// Resyncs that read every live revocation (`SCAN`, then every bucket): the cold
    /// start, and every reconnect whose missed revocations the change log no longer held.
    pub full_syncs: u64,
    /// Resyncs after a reconnect that read only the change-log entries missed.
    pub incremental_syncs: u64,
    /// The change-log (stream) id up to which this instance holds every revocation
    /// (`"<ms>-<seq>"`), where a reconnect resumes reading; `None` when there is no
    /// usable log (the next resync is a full read). Moves at every health check.
    pub change_log_id: Option<String>,
}

impl RedisStatus {
    /// `ready` (synced and connected), `stale` or `not_synced`.
    pub fn summary(&self) -> &'static str {
        match (self.ready, self.connected) {
            (false, _) => "not_synced",
            (true, false) => "stale",
            (true, true) => "ready",
        }
    }
}

/// Revocation shared by many instances through Redis, answered from a local mirror
/// (cargo feature `redis`).
///
/// Available with the `redis` feature.
///
/// Each instance keeps a local mirror (a [`MemoryDenylist`]) and answers every
/// [`is_revoked`](RevocationStore::is_revoked) from it: an atomic load and two hash
/// lookups, no network. Redis only carries revocations between instances:
///
/// * **Revoke** (logout, logout-all): the revocation applies to the mirror at once, before
///   the call returns; then a background *publisher* writes it to Redis and `PUBLISH`es
///   it, in one `MULTI`/`EXEC`. The wire format is the journal's JSON record, e.g.
///   `{"t":"s","sid":"…","exp":1767227405,"at":1767225600}`.
/// * **Buckets**: in Redis, revocations are grouped by the minute they expire in: the hash
///   `jwt-session:revoked:b:<minute>` holds every revocation whose lifetime (I2, plus the
///   propagation margin) ends in the minute before `<minute>` × 60, one field each (`sid:<sid>`,
///   `gen:<floor>:<sid>` for retired generations, `sub:<before>:<sub>`; the value is the
///   record), and expires at the minute's end. A revocation therefore stays in Redis 1 to
///   60 s longer than it must (I2 bounds what the mirrors hold; they drop each entry at
///   its own expiry), in exchange for a few hundred keys instead of one per revocation:
///   a cold start reads a million revocations with a few hundred `HVALS` instead of a
///   million-key `SCAN` and `MGET`.
/// * **Subscribe**: a background *link* task subscribes to the channel and applies what
///   other instances revoke.
/// * **Change log**: the same transaction appends the record to a Redis stream
///   (`XADD jwt-session:changes MAXLEN ~ 100000 * r <record>`), so a revocation is in
///   its bucket, in the log and on the channel, or in none of them.
/// * **Resync**: on start and after every reconnect the link first subscribes, then
///   reads what it may have missed. On start (and whenever the log cannot prove it holds
///   everything missed) that is a *full read*: `SCAN` the namespace's keys, read every
///   bucket (`HVALS`, or `HSCAN` for one of more than 100,000 entries) and every
///   per-revocation key of the layout before buckets (`MGET`, see
///   [`write_legacy_keys`](RedisDenylistOptions::write_legacy_keys)) into the mirror.
///   After a reconnect it is usually an *incremental read*: only
///   the log's entries after the last one this instance holds (`XRANGE`), checked
///   against the stream's `entries-added` count so that a trimmed, deleted or recreated
///   log falls back to the full read
///   ([`change_log_len`](RedisDenylistOptions::change_log_len); [`RedisStatus::full_syncs`]
///   and [`RedisStatus::incremental_syncs`] count both).
///   Either way nothing published while it was away is missed (I1).
///
/// Keys and channel (with the default namespace `jwt-session:`): the buckets
/// `jwt-session:revoked:b:<minute>` (`<minute>` = ⌊expiry / 60⌋ + 1 for revocations that
/// expire at that UNIX second; the bucket expires at `<minute>` × 60), the channel
/// `jwt-session:revocations` and the stream `jwt-session:changes`; with
/// [`write_legacy_keys`](RedisDenylistOptions::write_legacy_keys), also
/// `jwt-session:revoked:sid:<sid>`, `jwt-session:revoked:gen:<floor>:<sid>` and
/// `jwt-session:revoked:sub:<before>:<sub>`. Keys expire in Redis by themselves. A
/// bucket's TTL (`PEXPIRE`) is its end seen from the writer's clock, like every TTL here;
/// all writers agree on it, but one whose clock runs ahead by *s* seconds shortens the
/// bucket by *s* for everyone. The revocations at a bucket's end have 1 s of slack plus
/// the propagation margin (which only covers the time a revocation takes to travel), so
/// keep clocks within that of each other.
///
/// **Redis Cluster** (`redis+cluster://host:port[,…]`): every name starts with the
/// namespace as a hash tag — `{jwt-session:}revoked:b:<minute>`, `{jwt-session:}changes`,
/// the channel `{jwt-session:}revocations` — unless the namespace holds a `{…}` tag of its
/// own. They share one slot, so each revocation's `HSET`, `XADD` and `SPUBLISH` (sharded
/// pub/sub) remain one `MULTI`/`EXEC` on one node, every instance `SSUBSCRIBE`s on that
/// node, and the full read `SCAN`s it. The denylist therefore lives on one shard (and its
/// replicas): about 170 bytes of Redis memory per live revocation (plus the change log),
/// 170 MB at a million. When the slot's master fails over, moves (`sunsubscribe`) or any
/// node's connection drops, the instance reconnects and resyncs, and re-writes its own live
/// revocations on the new master, exactly as after a Sentinel failover.
///
/// The connection uses RESP3 (Redis 6 or later; the change log needs 7.0), whatever the
/// URL says, so that one connection carries commands and the subscription.
///
/// # Failure behaviour
///
/// Nothing on the request path waits for Redis: `is_revoked` reads the mirror; `revoke_*`
/// update the mirror and put the revocation in an in-process outbox.
///
/// * **Redis unreachable at start-up.** [`connect`](RedisDenylist::connect) returns at once
///   and keeps retrying in the background (exponential backoff). Until the first resync has
///   completed, `is_revoked` returns an error, so the layer refuses every session with
///   503 `session_check_unavailable` (fail closed, I5: the instance cannot know which
///   sessions were revoked while it was not running; to serve instead, see
///   [`serve_while_syncing`](RedisDenylistOptions::serve_while_syncing)).
///   [`status`](RedisDenylist::status)
///   says `not_synced`; [`wait_ready`](RedisDenylist::wait_ready) lets start-up code wait.
///   Logouts made meanwhile apply locally and are queued.
/// * **Redis lost mid-run** (connection closed, or a health-check `PING` not answered
///   within the response timeout). The instance keeps answering from its mirror, which may
///   now miss revocations made on other instances: `status()` says `stale`. Its own
///   revocations still apply locally at once; those it cannot publish stay in the outbox
///   and are retried with backoff — never dropped while some token they refuse can still
///   be valid (`pending_publishes` counts them). On reconnect it resyncs, then publishes
///   the outbox, and re-writes every revocation it made that is still live (so a Redis that
///   restarted empty is re-seeded).
/// * **Redis slow.** Requests never wait. A command slower than the response timeout
///   (default 2 s) counts as a failure: publishes are retried; a slow health check drops
///   the link and reconnects (stale until the resync completes).
///
/// The outbox is bounded the way the mirror is (I2): an entry leaves it only once written,
/// or once its Redis TTL would be over — when every token it refuses has expired anyway.
///
/// **Readiness.** [`status`](RedisDenylist::status) says `ready`, `stale` or `not_synced`
/// ([`RedisStatus::summary`]). A strict readiness probe (the example server's `/readyz`)
/// fails on both `not_synced` and `stale`; to keep an instance in rotation through a Redis
/// outage, probe [`RedisStatus::ready`] only.
///
/// A session revocation (or a retirement of older tokens by
/// [`Update::retire_older`](crate::Update::retire_older)) that an instance learns late
/// (more than the propagation margin after it was made, because either side was cut off)
/// is re-dated to the moment it was learned and shared again, so every instance keeps it
/// long enough to refuse the tokens a stale instance may have reissued meanwhile (I1).
///
/// Limits: the outbox lives in process memory: call [`flush`](RedisDenylist::flush) on
/// shutdown. If Redis loses its data (restart without persistence) *and* the instance that
/// made a revocation is gone, an instance started afterwards does not learn it; run Redis
/// with persistence (AOF) if that matters.
///
/// ```no_run
/// use std::time::Duration;
/// use jwt_session::{Keyring, RedisDenylist, RedisDenylistOptions, SessionConfig, SessionLayer};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = SessionConfig::builder(Keyring::load_dir("keys")?).build()?;
/// let options = RedisDenylistOptions::default().clock(config.clock_handle());
/// let denylist = RedisDenylist::connect("redis://127.0.0.1:6379/", options)?;
/// if !denylist.wait_ready(Duration::from_secs(5)).await {
///     tracing::warn!(status = ?denylist.status(), "Redis not reachable yet: refusing sessions");
/// }
/// denylist.spawn_sweeper(config.clock_handle(), Duration::from_secs(60));
/// let layer = SessionLayer::<()>::new(config, denylist.clone());
/// # let _ = layer; Ok(()) }
/// ```
pub struct RedisDenylist {
    shared: Arc<Shared>,
    tasks: [JoinHandle<()>; 2],
}

impl fmt::Debug for RedisDenylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDenylist")
            .field("namespace", &self.shared.opts.namespace)
            .field("status", &self.status())
            .field("mirror", &self.shared.mirror)
            .finish()
    }
}

/// The state the request path and the two background tasks share.
struct Shared {
    mirror: Arc<MemoryDenylist>,
    names: Names,
    opts: RedisDenylistOptions,
    /// The propagation margin in whole seconds (rounded up).
    margin: i64,
    /// Fast-path copy of `ready`.
    ready_flag: AtomicBool,
    ready: watch::Sender<bool>,
    connected: AtomicBool,
    last_resync: AtomicI64,
    outbox: Mutex<Outbox>,
    pending: AtomicUsize,
    /// Wakes the publisher: something was queued.
    wake: Notify,
    /// Wakes the link: a publish failed, check the connection now.
    suspect: Notify,
    /// Set with `suspect` when Redis answered `READONLY`: the link reconnects.
    read_only: AtomicBool,
    /// The live connection (for the publisher), with a generation bumped per connect.
    link: watch::Sender<Option<Link>>,
    last_error: Mutex<Option<(RedisFailure, String)>>,
    /// Up to where this instance holds every change-log entry (`None`: no usable log).
    cursor: Mutex<Option<sync::Cursor>>,
    full_syncs: AtomicU64,
    incremental_syncs: AtomicU64,
}

#[derive(Clone)]
struct Link {
    con: Conn,
    generation: u64,
}

/// Key, pattern and channel names of one namespace.
struct Names {
    prefix: String,
    /// `<prefix>b:`: the per-minute buckets (hashes).
    buckets: String,
    pattern: String,
    channel: String,
    /// The change log (a stream).
    stream: String,
}

/// The bucket (minute of expiry) a revocation expiring at `exp` (UNIX seconds) goes to:
/// minute `m` holds the revocations with `exp` in `[60 (m - 1), 60 m)` and expires at
/// `60 m`, so a revocation stays in Redis 1 to 60 s past its own lifetime.
fn minute_of(exp: i64) -> i64 {
    exp.div_euclid(60).saturating_add(1)
}

/// When bucket `minute` expires (UNIX seconds).
fn bucket_end(minute: i64) -> i64 {
    minute.saturating_mul(60)
}

impl Names {
    /// In a cluster every name starts with the namespace as a hash tag (`{jwt-session:}…`,
    /// unless the namespace has a tag of its own), so that a revocation's bucket, its
    /// change-log entry and its publish share one slot: one transaction on one node.
    fn new(namespace: &str, cluster: bool) -> Self {
        let namespace = names_prefix(namespace, cluster);
        let prefix = format!("{namespace}revoked:");
        let pattern = scan_pattern(&prefix);
        Self {
            buckets: format!("{prefix}b:"),
            prefix,
            pattern,
            channel: format!("{namespace}revocations"),
            stream: format!("{namespace}changes"),
        }
    }

    /// A revocation's name within its bucket (its field), which is also the suffix of its
    /// key in the layout before buckets (`<prefix><field>`): `sid:<sid>`,
    /// `gen:<floor>:<sid>` or `sub:<before>:<sub>`. One name per thing revoked, so that
    /// writing it again (a re-dated copy, a re-write after a reconnect) replaces it.
    fn field(record: &Record) -> Option<String> {
        match record {
            // A retired generation gets a name of its own, so it never overwrites a
            // revocation of the whole session (or a higher floor) in Redis.
            Record::Session { sid, floor, .. } if *floor == FULL => Some(format!("sid:{sid}")),
            Record::Session { sid, floor, .. } => Some(format!("gen:{floor}:{sid}")),
            Record::Subject { sub, before, .. } => Some(format!("sub:{before}:{sub}")),
            Record::Watermark { .. } => None,
        }
    }

    /// The bucket of `minute` (see [`minute_of`]).
    fn bucket(&self, minute: i64) -> String {
        format!("{}{minute}", self.buckets)
    }

    /// The key of one revocation in the layout before buckets (one string key each).
    fn legacy_key(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// Is this key (from a `SCAN` of the namespace) a bucket, rather than a key of the
    /// layout before buckets?
    fn is_bucket(&self, key: &[u8]) -> bool {
        key.starts_with(self.buckets.as_bytes())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn is_ready(&self) -> bool {
        self.ready_flag.load(Ordering::Acquire)
    }

    /// Queue `record` (as it must look on the wire) for Redis; it lives there until `exp`
    /// (rounded up to the end of its bucket's minute).
    fn share(&self, record: &Record, exp: i64, now: i64) {
        if exp <= now {
            return; // every token it refuses has expired: nothing to tell anyone
        }
        let (Some(field), Ok(payload)) = (Names::field(record), serde_json::to_string(record))
        else {
            return;
        };
        let minute = minute_of(exp);
        let remaining = bucket_end(minute).saturating_sub(now);
        let ttl = Duration::from_secs(u64::try_from(remaining).unwrap_or(u64::MAX))
            .min(Duration::from_secs(100 * 365 * 86_400));
        let item = Outgoing::new(field, minute, payload, Instant::now() + ttl);
        let pending = {
            let mut outbox = lock(&self.outbox);
            outbox.push(item);
            outbox.pending()
        };
        self.pending.store(pending, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Does the mirror already refuse every token of session `sid` below generation
    /// `floor` (`FULL`: the whole session)? A floor of 0 refuses nothing: held.
    fn holds_session(&self, sid: &str, floor: u32) -> bool {
        let Some(below) = floor.checked_sub(1) else {
            return true;
        };
        // Only the `sid` lookup can match: `lat` is above any watermark, and no subject
        // revocation covers a login at the end of time. `below` is at most
        // `NEWEST_GENERATION`, the probe of a whole-session revocation.
        let probe = TokenFacts {
            sid,
            sub: "",
            auth_time: i64::MAX,
            lat: i64::MAX,
            generation: below.min(super::NEWEST_GENERATION),
        };
        self.mirror.is_revoked(probe).unwrap_or(false)
    }

    /// Apply a revocation read from Redis. `first`: during the first resync, when this
    /// instance has not answered any request yet.
    fn learn(&self, bytes: &[u8], first: bool) -> bool {
        let record = match super::wire::parse(bytes) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable revocation from Redis");
                return false;
            }
        };
        let record = match record {
            // A whole-session revocation, or a retirement of older generations
            // (`Update::retire_older`): the same holds for the tokens it refuses.
            Record::Session {
                sid,
                exp,
                at,
                floor,
            } if !first && !self.holds_session(&sid, floor) => {
                // Learned now: tokens this instance reissued before now may live until
                // now + their lifetime; keep the revocation as long (I1).
                let now = self.opts.clock.now();
                let lifetime = exp.saturating_sub(at).max(0);
                let exp = exp.max(now.saturating_add(lifetime));
                if now.saturating_sub(at) > self.margin {
                    // Learned late: tell the others too, dated now, so that they keep it as
                    // long as this instance must.
                    let redated = Record::Session {
                        sid,
                        exp,
                        at: now,
                        floor,
                    };
                    self.share(&redated, exp, now);
                    redated
                } else {
                    Record::Session {
                        sid,
                        exp,
                        at,
                        floor,
                    }
                }
            }
            other => other,
        };
        if let Err(e) = self.mirror.apply(&record) {
            tracing::error!(error = %e, "applying a shared revocation failed");
        }
        true
    }

    fn note_error(&self, what: &str, error: &::redis::RedisError) {
        self.note_failure(RedisFailure::of(error), format!("{what}: {error}"));
    }

    fn note_failure(&self, kind: RedisFailure, message: String) {
        *lock(&self.last_error) = Some((kind, message));
    }

    fn status(&self) -> RedisStatus {
        let ready = self.is_ready();
        let connected = self.connected.load(Ordering::Acquire);
        let last = self.last_resync.load(Ordering::Relaxed);
        let error = lock(&self.last_error).clone();
        RedisStatus {
            ready,
            connected,
            stale: ready && !connected,
            pending_publishes: self.pending.load(Ordering::Relaxed),
            last_resync: (last != i64::MIN).then_some(last),
            failure: error.as_ref().map(|(kind, _)| *kind),
            last_error: error.map(|(_, message)| message),
            full_syncs: self.full_syncs.load(Ordering::Relaxed),
            incremental_syncs: self.incremental_syncs.load(Ordering::Relaxed),
            change_log_id: lock(&self.cursor).map(|c| c.id().to_string()),
        }
    }
}

/// Exponential backoff with jitter in `[d/2, d]`.
fn jittered(d: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX);
    d / 2 + (d / 2).mul_f64(f64::from(r) / f64::from(u32::MAX))
}

impl RedisDenylist {
    /// Start sharing revocations through the Redis at `url`
    /// (`redis://[user:password@]host:port[/db]`, `rediss://…` for TLS,
    /// `redis+sentinel://host:port[,…]/<master>`, or `redis+cluster://host:port[,…]`: see
    /// [`RedisConnection`](crate::RedisConnection); the options'
    /// [`connection`](RedisDenylistOptions::connection) adds a private CA, an ACL user and
    /// password). Returns at once: connecting, resyncing and publishing happen in background
    /// tasks on the current tokio runtime. Until the
    /// first resync completes every revocation check fails (sessions are refused); use
    /// [`wait_ready`](Self::wait_ready) to wait for it.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Backend`] for an unparsable URL, impossible options, a CA bundle
    /// or client certificate that cannot be read or parsed (or given with a `redis://`
    /// URL), or a call outside a tokio runtime. An unreachable Redis, a wrong CA or a wrong
    /// password are *not* errors here: the store keeps retrying, is not ready, and its
    /// [`status`](Self::status) says why ([`RedisStatus::failure`]).
    pub fn connect(url: &str, options: RedisDenylistOptions) -> Result<Arc<Self>, RevocationError> {
        options.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            RevocationError::Backend(
                "RedisDenylist::connect must be called inside a tokio runtime".into(),
            )
        })?;
        let target = options.conn.target(url, true)?;
        let mirror = MemoryDenylist::builder()
            .capacity(options.capacity)
            .build(&*options.clock)?;
        let margin = i64::try_from(options.propagation_margin.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_add(i64::from(options.propagation_margin.subsec_nanos() > 0));
        let addr = target.to_string();
        let shared = Arc::new(Shared {
            mirror,
            names: Names::new(&options.namespace, target.is_cluster()),
            margin,
            opts: options,
            ready_flag: AtomicBool::new(false),
            ready: watch::Sender::new(false),
            connected: AtomicBool::new(false),
            last_resync: AtomicI64::new(i64::MIN),
            outbox: Mutex::new(Outbox::default()),
            pending: AtomicUsize::new(0),
            wake: Notify::new(),
            suspect: Notify::new(),
            read_only: AtomicBool::new(false),
            link: watch::Sender::new(None),
            last_error: Mutex::new(None),
            cursor: Mutex::new(None),
            full_syncs: AtomicU64::new(0),
            incremental_syncs: AtomicU64::new(0),
        });
        tracing::info!(redis = %addr, namespace = %shared.opts.namespace, "redis denylist starting");
        let link = runtime.spawn(link::run(shared.clone(), target, addr));
        let publisher = runtime.spawn(outbox::run(shared.clone(), shared.link.subscribe()));
        Ok(Arc::new(Self {
            shared,
            tasks: [link, publisher],
        }))
    }

    /// Wait until the first resync has completed, at most `timeout`. Returns whether the
    /// store is ready (answering revocation checks).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.shared.ready.subscribe();
        matches!(
            tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await,
            Ok(Ok(_))
        )
    }

    /// Wait until every queued revocation has been written to Redis, at most `timeout`
    /// (call it on shutdown). Returns whether nothing is left pending.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.pending.load(Ordering::Relaxed) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Readiness and health, for `/readyz`-style endpoints. Cheap: atomics and two short
    /// uncontended locks, no Redis call.
    pub fn status(&self) -> RedisStatus {
        self.shared.status()
    }

    /// The local mirror's fixed capacity.
    pub fn capacity(&self) -> usize {
        self.shared.mirror.capacity()
    }

    /// Sweep the mirror every `every` (real time) with `clock`'s now, until the mirror is
    /// dropped (see [`MemoryDenylist::spawn_sweeper`]). Redis expires its keys itself.
    pub fn spawn_sweeper(
        &self,
        clock: Arc<dyn Clock>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        self.shared.mirror.spawn_sweeper(clock, every)
    }
}

impl Drop for RedisDenylist {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let pending = self.shared.pending.load(Ordering::Relaxed);
        if pending > 0 {
            tracing::error!(
                pending,
                "redis denylist dropped with revocations not yet written to Redis: other \
                 instances will not learn them (call flush() before shutdown)"
            );
        }
    }
}

impl RedisDenylist {
    /// Publish a session record with the propagation margin added to its lifetime.
    fn share_session(&self, record: Record, clock: &dyn Clock) {
        if let Record::Session {
            sid,
            exp,
            at,
            floor,
        } = record
        {
            let exp = exp.saturating_add(self.shared.margin);
            let wire = Record::Session {
                sid,
                exp,
                at,
                floor,
            };
            self.shared.share(&wire, exp, clock.now());
        }
    }
}

impl RevocationStore for RedisDenylist {
    fn revoke_session(
        &self,
        sid: &str,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        let (record, durable) = self
            .shared
            .mirror
            .revoke_session_record(sid, auth_time, policy, clock);
        self.share_session(record, clock);
        durable
    }

    fn retire_generations(
        &self,
        sid: &str,
        generation: u32,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        let (record, durable) = self
            .shared
            .mirror
            .retire_record(sid, generation, auth_time, policy, clock);
        self.share_session(record, clock);
        durable
    }

    fn revoke_subject(
        &self,
        sub: &str,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<i64, RevocationError> {
        let (record, durable) = self.shared.mirror.revoke_subject_record(sub, policy, clock);
        let Record::Subject {
            sub,
            before,
            exp,
            at,
        } = record
        else {
            durable?;
            return Ok(clock.now());
        };
        let exp = exp.saturating_add(self.shared.margin);
        let wire = Record::Subject {
            sub,
            before,
            exp,
            at,
        };
        self.shared.share(&wire, exp, clock.now());
        durable.map(|()| before)
    }

    fn is_revoked(&self, token: TokenFacts<'_>) -> Result<bool, RevocationError> {
        if !self.shared.is_ready() && !self.shared.opts.serve_while_syncing {
            return Err(RevocationError::Backend(
                "redis denylist not ready: the first resync from Redis has not completed".into(),
            ));
        }
        self.shared.mirror.is_revoked(token)
    }

    fn subject_revoked_at(&self, sub: &str) -> Option<i64> {
        self.shared.mirror.subject_revoked_at(sub)
    }

    fn sweep(&self, now: i64) -> usize {
        self.shared.mirror.sweep(now)
    }

    fn len(&self) -> usize {
        self.shared.mirror.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Names;
    use crate::redis_conn::has_hash_tag;

    #[test]
    fn a_cluster_namespace_is_one_hash_tag() {
        let names = Names::new("jwt-session:", true);
        assert_eq!(names.channel, "{jwt-session:}revocations");
        assert_eq!(names.stream, "{jwt-session:}changes");
        assert_eq!(names.prefix, "{jwt-session:}revoked:");
        // A namespace with a tag of its own keeps it; without a cluster nothing changes.
        assert_eq!(
            Names::new("app:{tenant}:", true).stream,
            "app:{tenant}:changes"
        );
        assert_eq!(
            Names::new("jwt-session:", false).stream,
            "jwt-session:changes"
        );
        // An empty `{}` is no tag for Redis: wrapped like any other.
        assert_eq!(Names::new("a{}:", true).stream, "{a{}:}changes");
        assert!(has_hash_tag("x{y}") && !has_hash_tag("x{}y") && !has_hash_tag("x}{"));
    }
}
