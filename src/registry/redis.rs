//! The session registry shared by many instances through Redis (cargo feature `redis`):
//! see [`RedisRegistry`].

mod options;
mod writer;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ::redis::{Connection, RedisResult};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use self::options::{DEFAULT_QUEUE_CAPACITY, RedisRegistryOptions};
use self::writer::{Op, Queue};
use super::{RegistryStats, SessionEntry, SessionRegistry};
use crate::error::RevocationError;
use crate::redis_conn::{RedisFailure, Target};

/// What [`RedisRegistry::status`] reports.
///
/// Available with the `redis` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisRegistryStatus {
    /// The writer's connection is up (as of its last write).
    pub connected: bool,
    /// Writes queued or being sent, not yet in Redis.
    pub pending: usize,
    /// Writes dropped since start because the queue was full (Redis away too long).
    pub dropped: u64,
    /// The last Redis error seen, if any (never the URL, so no credentials).
    pub last_error: Option<String>,
    /// The kind of that error: tells a configuration mistake (`Tls`, `Auth`,
    /// `NoPermission`) from an outage (`Unreachable`, `Timeout`).
    pub failure: Option<RedisFailure>,
}

/// The session registry shared by every instance through Redis (cargo feature `redis`): a
/// login on one instance is listed on all, and ending it from any (through the
/// [`SessionHandle`](crate::SessionHandle) or `POST /session/revoke`) revokes it in the
/// shared [`RedisDenylist`](crate::RedisDenylist) and drops it from the listing.
///
/// Available with the `redis` feature.
///
/// # Never on the request path
///
/// The layer only **writes** to the registry (at a login, a reissue, an update, a logout)
/// and those writes return at once: they go to an in-process queue that one background
/// task sends to Redis in pipelined batches. A slow or unreachable Redis never holds a
/// request; the queue is bounded ([`queue_capacity`](RedisRegistryOptions::queue_capacity))
/// and its oldest writes are dropped past it (best effort — a dropped write only means a
/// listing misses or keeps a session until its next reissue or expiry). Revocation does
/// not depend on it: it stays with the denylist, which fails closed as before.
///
/// Reads (a "where you're signed in" listing, an operator's view, the counts) go to Redis
/// on a small pool of blocking connections, inside
/// [`block_in_place`](tokio::task::block_in_place) on a multi-threaded runtime. A failing
/// read is logged and lists nothing.
///
/// # Keys
///
/// With the default namespace `jwt-session:` (the denylist's keys are under
/// `jwt-session:revoked:`; the two never collide):
///
/// * `jwt-session:registry:s:<sid>` — a hash `{id, sub, entry}` (the entry as JSON);
///   expires with the session (its TTL is the entry's `expires`, by the options' clock);
/// * `jwt-session:registry:u:<sub>` — a sorted set of the user's sids scored by their
///   expiry, trimmed of what expired at each write and listing, and past the per-user
///   bound of what would expire first; it expires with the last of them;
/// * `jwt-session:registry:all` — one sorted set of every listed sid scored by its expiry,
///   for the total bound: past [`capacity`](RedisRegistryOptions::capacity) sessions, the
///   ones that would expire first drop out (their entry is deleted and they leave their
///   user's set); it expires with the last of them;
/// * `jwt-session:registry:x:<sid>` — an ended session, kept as long as its entry would
///   have lived, so that a write still on its way from another instance cannot list it
///   again.
///
/// # Bounds
///
/// Per user ([`per_user`](RedisRegistryOptions::per_user)) and in total
/// ([`capacity`](RedisRegistryOptions::capacity)): past either, the sessions that would
/// expire first drop out of the *listing* — never out of the denylist: such a session
/// stays signed in until it expires or is ended another way (ending it then needs its
/// `sid`, as [`SessionHandle::revoke_session`](crate::SessionHandle::revoke_session) or
/// [`revoke_user`](crate::SessionHandle::revoke_user) take). Both are enforced by the
/// writes, atomically; beyond them, every key expires with its session.
///
/// Every write is one Lua script (atomic, Redis 5 or later). The scripts build key names
/// from their prefix, so the registry needs a single Redis (or a primary with replicas),
/// not Redis Cluster.
///
/// ```no_run
/// use std::time::Duration;
/// use jwt_session::{Keyring, RedisDenylist, RedisDenylistOptions, SessionConfig, SessionLayer};
/// use jwt_session::{RedisRegistry, RedisRegistryOptions};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = SessionConfig::builder(Keyring::load_dir("keys")?).build()?;
/// let url = "redis://127.0.0.1:6379/";
/// let denylist = RedisDenylist::connect(
///     url,
///     RedisDenylistOptions::default().clock(config.clock_handle()),
/// )?;
/// let registry = RedisRegistry::connect(
///     url,
///     RedisRegistryOptions::default().clock(config.clock_handle()),
/// )?;
/// let layer = SessionLayer::<()>::new(config, denylist.clone()).with_registry(registry.clone());
/// # let _ = layer;
/// // On shutdown: what is still queued goes to Redis.
/// registry.flush(Duration::from_secs(2)).await;
/// # Ok(()) }
/// ```
pub struct RedisRegistry {
    shared: Arc<Shared>,
    writer: JoinHandle<()>,
}

impl fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("namespace", &self.shared.opts.namespace)
            .field("status", &self.status())
            .finish()
    }
}

/// What the request path, the writer task and the readers share.
struct Shared {
    names: Names,
    opts: RedisRegistryOptions,
    queue: Mutex<Queue>,
    /// Writes queued or in flight.
    pending: AtomicUsize,
    dropped: AtomicU64,
    wake: Notify,
    connected: AtomicBool,
    last_error: Mutex<Option<(RedisFailure, String)>>,
    target: Target,
    /// Idle blocking connections for reads.
    readers: Mutex<Vec<Connection>>,
}

/// Most idle read connections kept.
const READERS: usize = 4;
/// Keys asked per `SCAN` step (operators' scans).
const SCAN_COUNT: usize = 1000;

/// The key kinds under `<namespace>registry:`.
const ENTRY: &str = "s:";
const USERS: &str = "u:";
const ENDED: &str = "x:";
/// The one sorted set of every listed sid, scored by expiry (the total bound).
const ALL: &str = "all";

/// The live sessions of a user: trims what expired or is gone (from the all set too),
/// returns `[id, entry, …]`.
///
/// KEYS: user set, all set. ARGV: entry key prefix, now.
const LIST: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, sid in ipairs(sids) do
  local v = redis.call('HMGET', ARGV[1] .. sid, 'id', 'entry')
  if v[1] and v[2] then
    out[#out + 1] = v[1]
    out[#out + 1] = v[2]
  else
    redis.call('ZREM', KEYS[1], sid)
    redis.call('ZREM', KEYS[2], sid)
  end
end
return out
";

struct Names {
    base: String,
}

impl Names {
    fn prefix(&self, kind: &str) -> String {
        format!("{}{kind}", self.base)
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}{id}", self.base)
    }

    /// A `SCAN MATCH` pattern for every key of `kind` (glob characters of the namespace
    /// escaped).
    fn pattern(&self, kind: &str) -> String {
        crate::redis_conn::scan_pattern(&self.prefix(kind))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Exponential backoff with jitter in `[d/2, d]`.
fn jittered(d: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX);
    d / 2 + (d / 2).mul_f64(f64::from(r) / f64::from(u32::MAX))
}

/// Run blocking I/O: inside `block_in_place` on a multi-threaded runtime (other tasks
/// move to other workers meanwhile), as is elsewhere.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn backend(what: &str, e: &::redis::RedisError) -> RevocationError {
    RevocationError::Backend(format!("redis registry {what}: {e}"))
}

impl Shared {
    fn note_error(&self, what: &str, error: &::redis::RedisError) {
        *lock(&self.last_error) = Some((RedisFailure::of(error), format!("{what}: {error}")));
    }

    /// Run `f` on a read connection (an idle one, or a new one); a connection that failed
    /// is not kept.
    fn read<R>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection) -> RedisResult<R>,
    ) -> Result<R, RevocationError> {
        blocking(|| {
            let idle = lock(&self.readers).pop();
            let mut con = match idle {
                Some(con) => con,
                None => self.connect_reader().map_err(|e| {
                    self.note_error("connect", &e);
                    backend("connect", &e)
                })?,
            };
            match f(&mut con) {
                Ok(value) => {
                    let mut readers = lock(&self.readers);
                    if readers.len() < READERS {
                        readers.push(con);
                    }
                    Ok(value)
                }
                Err(e) => {
                    self.note_error(what, &e);
                    Err(backend(what, &e))
                }
            }
        })
    }

    fn connect_reader(&self) -> RedisResult<Connection> {
        let con = self
            .target
            .connect_blocking(self.opts.conn.connect_timeout)?;
        con.set_read_timeout(Some(self.opts.conn.response_timeout))?;
        con.set_write_timeout(Some(self.opts.conn.response_timeout))?;
        Ok(con)
    }
}

/// An entry as stored: its JSON, with the listed id the hash kept.
fn entry_of(id: String, json: &str) -> Option<SessionEntry> {
    match serde_json::from_str::<SessionEntry>(json) {
        Ok(mut entry) => {
            entry.id = id;
            Some(entry)
        }
        Err(e) => {
            tracing::warn!(error = %e, "skipping an unreadable session registry entry in Redis");
            None
        }
    }
}

impl RedisRegistry {
    /// Start a registry on the Redis at `url` (`redis://[user:password@]host:port[/db]`,
    /// `rediss://…` for TLS, or `redis+sentinel://host:port[,…]/<master>`: see
    /// [`RedisConnection`](crate::RedisConnection); the options'
    /// [`connection`](RedisRegistryOptions::connection) adds a private CA, an ACL user and
    /// password).
    /// Returns at once: the writer connects in a background task on the current tokio
    /// runtime (and reconnects with backoff); reads connect when they are made.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Backend`] for an unparsable URL, impossible options, a CA bundle
    /// or client certificate that cannot be read or parsed (or given with a `redis://`
    /// URL), or a call outside a tokio runtime. An unreachable Redis, a wrong CA or a wrong
    /// password are *not* errors here: reads fail with the error, writes are retried, and
    /// [`status`](Self::status) says why ([`RedisRegistryStatus::failure`]).
    pub fn connect(url: &str, options: RedisRegistryOptions) -> Result<Arc<Self>, RevocationError> {
        options.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            RevocationError::Backend(
                "RedisRegistry::connect must be called inside a tokio runtime".into(),
            )
        })?;
        let target = options.conn.target(url, false)?;
        if target.is_cluster() {
            return Err(RevocationError::Backend(
                "redis registry: Redis Cluster (redis+cluster://) is not supported by the \
                 session registry yet; give it one Redis or a Sentinel-managed master"
                    .into(),
            ));
        }
        let shared = Arc::new(Shared {
            names: Names {
                base: format!("{}registry:", options.namespace),
            },
            opts: options,
            queue: Mutex::new(Queue::default()),
            pending: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            wake: Notify::new(),
            connected: AtomicBool::new(false),
            last_error: Mutex::new(None),
            target: target.clone(),
            readers: Mutex::new(Vec::new()),
        });
        let writer = runtime.spawn(writer::run(shared.clone(), target));
        Ok(Arc::new(Self { shared, writer }))
    }

    /// Wait until every queued write is in Redis, at most `timeout` (call it on shutdown).
    /// Returns whether nothing is left pending.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The writer's state, for health endpoints. Cheap: atomics only.
    pub fn status(&self) -> RedisRegistryStatus {
        let s = &self.shared;
        let error = lock(&s.last_error).clone();
        RedisRegistryStatus {
            connected: s.connected.load(Ordering::Acquire),
            pending: s.pending.load(Ordering::Acquire),
            dropped: s.dropped.load(Ordering::Relaxed),
            failure: error.as_ref().map(|(kind, _)| *kind),
            last_error: error.map(|(_, message)| message),
        }
    }

    /// [`list`](SessionRegistry::list), with Redis's error if it failed.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Backend`] if Redis could not be read.
    pub fn try_list(&self, sub: &str, now: i64) -> Result<Vec<SessionEntry>, RevocationError> {
        let names = &self.shared.names;
        let raw: Vec<String> = self.shared.read("list", |con| {
            ::redis::cmd("EVAL")
                .arg(LIST)
                .arg(2)
                .arg(names.key(USERS, sub))
                .arg(names.prefix(ALL))
                .arg(names.prefix(ENTRY))
                .arg(now)
                .query(con)
        })?;
        let mut listed: Vec<SessionEntry> = raw
            .chunks_exact(2)
            .filter_map(|pair| entry_of(pair[0].clone(), &pair[1]))
            .filter(|e| e.expires > now && e.sub == sub)
            .collect();
        listed.sort_by_key(|e| std::cmp::Reverse((e.last_active, e.created)));
        listed.truncate(self.shared.opts.per_user);
        Ok(listed)
    }

    /// [`get`](SessionRegistry::get), with Redis's error if it failed.
    ///
    /// # Errors
    ///
    /// [`RevocationError::Backend`] if Redis could not be read.
    pub fn try_get(&self, sid: &str) -> Result<Option<SessionEntry>, RevocationError> {
        let key = self.shared.names.key(ENTRY, sid);
        let (id, json): (Option<String>, Option<String>) = self.shared.read("get", |con| {
            ::redis::cmd("HMGET")
                .arg(key)
                .arg("id")
                .arg("entry")
                .query(con)
        })?;
        Ok(match (id, json) {
            (Some(id), Some(json)) => entry_of(id, &json),
            _ => None,
        })
    }

    /// [`stats`](SessionRegistry::stats), with Redis's error if it failed. A scan of
    /// every user's set (for operators).
    ///
    /// # Errors
    ///
    /// [`RevocationError::Backend`] if Redis could not be read.
    pub fn try_stats(&self, now: i64) -> Result<RegistryStats, RevocationError> {
        let pattern = self.shared.names.pattern(USERS);
        let after = format!("({now}");
        self.shared.read("stats", |con| {
            let mut stats = RegistryStats::default();
            let mut cursor = 0_u64;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(con)?;
                if !keys.is_empty() {
                    let mut pipe = ::redis::pipe();
                    for key in &keys {
                        pipe.cmd("ZCOUNT").arg(key).arg(&after).arg("+inf");
                    }
                    let counts: Vec<usize> = pipe.query(con)?;
                    for live in counts.into_iter().filter(|n| *n > 0) {
                        stats.sessions += live;
                        stats.users += 1;
                        stats.max_per_user = stats.max_per_user.max(live);
                    }
                }
                if next == 0 {
                    return Ok(stats);
                }
                cursor = next;
            }
        })
    }

    /// The live entry listed as `id`, any user (for operators: a scan of every entry).
    ///
    /// # Errors
    ///
    /// [`RevocationError::Backend`] if Redis could not be read.
    pub fn find(&self, id: &str, now: i64) -> Result<Option<SessionEntry>, RevocationError> {
        let pattern = self.shared.names.pattern(ENTRY);
        self.shared.read("find", |con| {
            let mut cursor = 0_u64;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(con)?;
                if !keys.is_empty() {
                    let mut pipe = ::redis::pipe();
                    for key in &keys {
                        pipe.cmd("HMGET").arg(key).arg("id").arg("entry");
                    }
                    let values: Vec<(Option<String>, Option<String>)> = pipe.query(con)?;
                    let found = values.into_iter().find_map(|pair| match pair {
                        (Some(listed), Some(json)) if listed == id => entry_of(listed, &json),
                        _ => None,
                    });
                    if let Some(entry) = found.filter(|e| e.expires > now) {
                        return Ok(Some(entry));
                    }
                }
                if next == 0 {
                    return Ok(None);
                }
                cursor = next;
            }
        })
    }
}

impl Drop for RedisRegistry {
    fn drop(&mut self) {
        self.writer.abort();
        let pending = self.shared.pending.load(Ordering::Acquire);
        if pending > 0 {
            tracing::warn!(
                pending,
                "redis session registry dropped with writes not yet in Redis (call flush() \
                 before shutdown)"
            );
        }
    }
}

impl SessionRegistry for RedisRegistry {
    /// Queues the write (returns at once).
    fn put(&self, entry: SessionEntry) -> Result<(), RevocationError> {
        let remaining = entry.expires.saturating_sub(self.shared.opts.clock.now());
        if remaining <= 0 {
            return Ok(()); // nothing to list
        }
        let ttl = Duration::from_secs(u64::try_from(remaining).unwrap_or(u64::MAX))
            .min(Duration::from_secs(100 * 365 * 86_400));
        let json = serde_json::to_string(&entry)
            .map_err(|e| RevocationError::Backend(format!("redis registry: {e}")))?;
        self.shared.push(Op::Put {
            sid: entry.sid,
            sub: entry.sub,
            id: entry.id,
            json,
            expires: entry.expires,
            deadline: Instant::now() + ttl,
        });
        Ok(())
    }

    fn get(&self, sid: &str) -> Option<SessionEntry> {
        self.try_get(sid).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "session registry: reading Redis failed");
            None
        })
    }

    /// Queues the write (returns at once).
    fn remove(&self, sid: &str) -> Result<(), RevocationError> {
        self.shared.push(Op::Remove { sid: sid.into() });
        Ok(())
    }

    /// Queues the write (returns at once).
    fn remove_user(&self, sub: &str) -> Result<(), RevocationError> {
        self.shared.push(Op::RemoveUser { sub: sub.into() });
        Ok(())
    }

    fn list(&self, sub: &str, now: i64) -> Vec<SessionEntry> {
        self.try_list(sub, now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "session registry: listing from Redis failed");
            Vec::new()
        })
    }

    fn try_list(&self, sub: &str, now: i64) -> Result<Vec<SessionEntry>, RevocationError> {
        RedisRegistry::try_list(self, sub, now)
    }

    fn try_stats(&self, now: i64) -> Result<RegistryStats, RevocationError> {
        RedisRegistry::try_stats(self, now)
    }

    fn stats(&self, now: i64) -> RegistryStats {
        self.try_stats(now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "session registry: counting in Redis failed");
            RegistryStats::default()
        })
    }

    /// Nothing to do: Redis expires the entries itself, and each write and listing trims
    /// a user's set.
    fn sweep(&self, _now: i64) -> usize {
        0
    }
}
