//! Public keys shared between instances through Redis (cargo feature `redis`): see
//! [`RedisKeyShare`] for the protocol and the failure behaviour.

mod link;
mod options;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::options::{DEFAULT_KEY_SHARE_REFRESH, RedisKeyShareOptions};
use self::wire::{Message, Names, Published, Refused};
use crate::config::{Inner, SessionConfig};
use crate::error::KeyError;
use crate::keys::{Algorithm, Key, MAX_JWKS_KEYS};
use crate::redis_conn::RedisFailure;

/// What [`RedisKeyShare::status`] reports.
///
/// Available with the `redis` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisKeyShareStatus {
    /// The keys the others published were read at least once. Never goes back to
    /// `false`.
    pub synced: bool,
    /// Connected, subscribed, and read since the last (re)connect.
    pub connected: bool,
    /// The name this instance publishes under.
    pub instance: String,
    /// This instance's public keys written to Redis on the current connection, sorted.
    pub published: Vec<String>,
    /// This instance's keys that should be published but are not: Redis is away, or
    /// another instance holds the same `kid` with another key (see `conflicts`).
    pub unpublished: Vec<String>,
    /// `kid`s of this instance that another instance published with a different key
    /// (logged at `error`): each instance then refuses the other's tokens of that `kid`.
    pub conflicts: Vec<String>,
    /// The `kid`s learned from other instances and trusted now (verify-only), sorted.
    pub shared: Vec<String>,
    /// Entries and announcements read from Redis and refused (malformed, private, an
    /// algorithm that is not pinned…): each is logged at `warn`, never trusted.
    pub ignored: u64,
    /// How long a published key lives in Redis (and in the others' mirrors) after it was
    /// last written.
    pub key_ttl: Duration,
    /// When the published keys were last read (UNIX seconds, the configuration's clock).
    pub last_sync: Option<i64>,
    /// The last Redis error seen, if any (never the URL).
    pub last_error: Option<String>,
    /// The kind of that error.
    pub failure: Option<RedisFailure>,
}

impl RedisKeyShareStatus {
    /// `ready` (read and connected), `stale` (read before, not connected now: keys
    /// published meanwhile are unknown here) or `not_synced`.
    pub fn summary(&self) -> &'static str {
        match (self.synced, self.connected) {
            (false, _) => "not_synced",
            (true, false) => "stale",
            (true, true) => "ready",
        }
    }
}

/// Instances that sign with keys of their own, and resolve each other's `kid`s through
/// Redis: each publishes its **public** keys there, and trusts the public keys the others
/// publish — so no private key ever leaves the instance (or key directory) that made it
/// (cargo feature `redis`).
///
/// ```no_run
/// use std::time::Duration;
/// use jwt_session::{Keyring, RedisKeyShare, RedisKeyShareOptions, SessionConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = SessionConfig::builder(Keyring::load_dir("/etc/myapp/keys")?).build()?;
/// config.watch_key_dir("/etc/myapp/keys", Duration::from_secs(2));
/// let share = RedisKeyShare::connect("redis://127.0.0.1:6379/", &config, RedisKeyShareOptions::default())?;
/// share.wait_synced(Duration::from_secs(5)).await; // the others' keys, read once
/// // Keep `share` for as long as the service runs (dropping it stops the sharing).
/// # Ok(()) }
/// ```
///
/// # Protocol
///
/// * **Publish.** Every key of the instance's keyring that has its private half here (the
///   signer, and keys demoted but not yet retired) is written as its own Redis key,
///   `<ns>key:<kid>`, holding `{"kid","jwk","exp","by"}`: the same public-only JWK that
///   `/.well-known/jwks.json` serves, the time until which it may be trusted, and the
///   publishing instance. The key's TTL ([`key_ttl`](Self::key_ttl)) is the longest
///   absolute timeout (remembered sessions included) + leeway + twice the
///   [refresh interval](RedisKeyShareOptions::refresh_every); `exp` is now + that TTL. The
///   same transaction `PUBLISH`es the entry on the channel `<ns>keys`. It is written at
///   once when the keyring changes (a rotation, a reload of the key directory) and again at
///   every refresh interval, so it lives as long as the key is in the keyring — and, once
///   the instance is gone, expires when every token it signed has expired. HMAC keys are
///   never published (their tokens verify only where the secret is).
/// * **Retire.** A key that leaves the keyring (retired: its last token has expired, or it
///   leaked) is deleted from Redis, and `{"kid","retired":true}` is announced: the others
///   stop trusting it at once. A key another instance still holds (a shared key directory)
///   comes back at its next publication.
/// * **Mirror.** Every instance — signing or verify-only — keeps the keys the others
///   published in memory and verifies with them as verify-only keys, consulted only for a
///   `kid` its own keyring lacks (its own key always wins). It subscribes, then reads every
///   `<ns>key:*` (`SCAN` + `MGET`), on start, after every reconnect and at every refresh
///   interval, and applies announcements as they arrive. A mirrored key is dropped when it
///   is retired, or when its `exp` (never more than this instance's own key TTL ahead)
///   passes while Redis is reachable. One share per configuration. Changes apply
///   atomically for every request ([`Codec::knows`](crate::Codec::knows)), and the
///   verified-token cache starts over.
/// * **Checked like a JWK Set.** An entry is taken only as
///   [`Key::from_jwk`](crate::Key::from_jwk) takes a key of a key set: Ed25519 or P-256,
///   `use` absent or `sig`, an `alg` that matches, **no private member** (`d`), its `kid`
///   equal to the key's name; at most [`MAX_JWKS_KEYS`](crate::MAX_JWKS_KEYS) keys of
///   others, entries of at most 4 KiB. Anything else is ignored and logged at `warn` (once
///   per `kid` and problem), and counted in [`RedisKeyShareStatus::ignored`].
///
/// **Trust.** Whoever may write `<ns>key:*` or publish on `<ns>keys` can make every
/// instance trust a key of theirs — that is, forge sessions. Protect Redis like the key
/// directory: TLS, an ACL user limited to the namespace, no access from elsewhere.
///
/// **Redis Cluster** (`redis+cluster://…`): the names start with the namespace as a hash
/// tag (`{jwt-session:}key:<kid>`, the channel `{jwt-session:}keys`), so every key and the
/// sharded channel live on one node, as the denylist's.
///
/// # Failure behaviour
///
/// Nothing on the request path reads Redis: a `kid` that is neither in the keyring nor in
/// the mirror is refused at once with `session_unknown_key` — however many such requests
/// arrive, none makes a Redis call.
///
/// * **A key not yet in the mirror.** A new signer is published the moment the keyring
///   changes: the others know it a Redis round trip later (milliseconds). A token it signed
///   that reaches another instance before that is `session_unknown_key`. To leave no such
///   window, add the next key to the key directory first and promote it later: a key with
///   its private half is published as soon as it is in the keyring, signer or not.
/// * **Redis unreachable at start-up.** [`connect`](Self::connect) returns at once and keeps
///   retrying with backoff. The instance's own keys verify from the start (they are in its
///   keyring); the others' are unknown until Redis is reachable, then read at once.
///   [`status`](Self::status) says `not_synced`; [`wait_synced`](Self::wait_synced) lets
///   start-up code wait.
/// * **Redis lost mid-run.** Every key known stays trusted, even past its `exp` (nothing
///   expires while the instance cannot tell a dead publisher from its own lost link); keys
///   published meanwhile are unknown here, and this instance's new keys unknown to the
///   others, until the link is back: then it reads every key and publishes its own at once.
///   [`status`](Self::status) says `stale`. An instance cut off for longer than the key
///   TTL is forgotten by the others (its keys expire in Redis), until it is back.
/// * **Key directory unreadable or broken.** The keyring stays as it is (see
///   [`KeyWatcher`](crate::KeyWatcher)), so the instance goes on publishing the keys it
///   has and the others go on trusting them. Nothing is retired meanwhile.
/// * **An instance stops or crashes.** Its keys are not deleted — the tokens it signed stay
///   valid elsewhere — and expire from Redis and from the others' mirrors one key TTL after
///   its last publication, when every such token has expired.
/// * **Two instances, one `kid`, different keys** (hand-named keys): the first publication
///   stays; the second instance logs an `error`, does not overwrite it, and reports it in
///   [`RedisKeyShareStatus::conflicts`]. Keys generated by `jwt-session` never collide.
///
/// To stop trusting a key of an instance that is gone (it leaked), delete it and announce
/// it: `DEL jwt-session:key:<kid>` then
/// `PUBLISH jwt-session:keys '{"kid":"<kid>","retired":true,"by":"operator"}'`.
///
/// Available with the `redis` feature.
pub struct RedisKeyShare {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for RedisKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeyShare")
            .field("namespace", &self.shared.opts.namespace)
            .field("status", &self.status())
            .finish()
    }
}

/// What the link task and the status share.
struct Shared {
    config: Weak<Inner>,
    names: Names,
    opts: RedisKeyShareOptions,
    instance: String,
    /// Key TTL, whole seconds.
    ttl: u64,
    synced: watch::Sender<bool>,
    connected: AtomicBool,
    ignored: AtomicU64,
    state: Mutex<State>,
    last_error: Mutex<Option<(RedisFailure, String)>>,
}

#[derive(Default)]
struct State {
    /// Keys of the others, by `kid`.
    mirror: BTreeMap<String, Published>,
    /// This instance's publishable keys, as last seen in its keyring.
    own: BTreeSet<String>,
    published: BTreeSet<String>,
    conflicts: BTreeSet<String>,
    last_sync: Option<i64>,
    /// The last problem logged per `kid` (each distinct one is logged once).
    logged: HashMap<String, String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn config(&self) -> Option<SessionConfig> {
        self.config.upgrade().map(SessionConfig)
    }

    fn now(&self) -> Option<i64> {
        self.config().map(|c| c.clock().now())
    }

    /// Log a refused entry (once per `kid` and problem) and count it.
    fn refuse(&self, state: &mut State, refused: Refused) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
        if state.logged.get(&refused.kid) == Some(&refused.problem) {
            return;
        }
        tracing::warn!(
            kid = %refused.kid,
            problem = %refused.problem,
            "ignoring a key shared through Redis: it is not trusted"
        );
        if state.logged.len() >= 1_000 {
            state.logged.clear();
        }
        state.logged.insert(refused.kid, refused.problem);
    }

    /// Apply an entry read from its Redis key (`named`: the `kid` in the key's name) or an
    /// announcement (`None`). Returns whether the trusted set changed.
    fn learn(&self, state: &mut State, bytes: &[u8], named: Option<&str>) -> bool {
        let Some(config) = self.config() else {
            return false;
        };
        let published = match wire::decode(bytes, named) {
            Ok(Message::Put(published)) => *published,
            Ok(Message::Retired { kid }) => {
                let gone = state.mirror.remove(&kid).is_some();
                if gone {
                    tracing::info!(kid = %wire::printable(&kid), "a shared key was retired by its instance");
                }
                return gone;
            }
            Err(refused) => {
                self.refuse(state, refused);
                return false;
            }
        };
        if published.by == self.instance {
            return false; // ours, back through the channel
        }
        let kid = published.key.kid().to_owned();
        if let Some(own) = config.codec().keyring().get(&kid) {
            if !wire::same_key(own, &published.key) {
                self.refuse(
                    state,
                    Refused {
                        kid: kid.clone(),
                        problem: format!(
                            "instance {} published another key under this instance's kid: \
                             this instance's own key is used here",
                            wire::printable(&published.by)
                        ),
                    },
                );
            }
            return false;
        }
        let now = config.clock().now();
        if published.exp <= now {
            return state.mirror.remove(&kid).is_some();
        }
        // Never longer than this instance's own key TTL from now (a publisher's clock far
        // ahead, or a forged date): a live publisher writes again well before.
        let mut published = published;
        published.exp = published
            .exp
            .min(now.saturating_add(i64::try_from(self.ttl).unwrap_or(i64::MAX)));
        let full = state.mirror.len() >= MAX_JWKS_KEYS;
        match state.mirror.get_mut(&kid) {
            Some(held) if wire::same_key(&held.key, &published.key) => {
                held.exp = held.exp.max(published.exp);
                held.by = published.by;
                false
            }
            Some(held) => {
                tracing::warn!(
                    kid = %kid,
                    by = %wire::printable(&published.by),
                    "a shared key was replaced by another key under the same kid"
                );
                *held = published;
                true
            }
            None if full => {
                self.refuse(
                    state,
                    Refused {
                        kid,
                        problem: format!("over {MAX_JWKS_KEYS} keys shared by other instances"),
                    },
                );
                false
            }
            None => {
                tracing::info!(
                    kid = %kid,
                    by = %wire::printable(&published.by),
                    alg = %published.key.algorithm(),
                    "trusting a key shared by another instance"
                );
                state.mirror.insert(kid, published);
                true
            }
        }
    }

    /// Drop the mirrored keys whose `exp` has passed (only while connected). Returns
    /// whether the trusted set changed.
    fn sweep(&self, state: &mut State) -> bool {
        let Some(now) = self.now() else { return false };
        let before = state.mirror.len();
        state.mirror.retain(|kid, held| {
            let live = held.exp > now;
            if !live {
                tracing::info!(kid = %kid, by = %wire::printable(&held.by), "a shared key expired: its instance stopped publishing it");
            }
            live
        });
        state.mirror.len() != before
    }

    /// Hand the mirror to the codec (after a change of the trusted set).
    fn apply(&self, state: &State) {
        if let Some(config) = self.config() {
            let keys: HashMap<String, Key> = state
                .mirror
                .iter()
                .map(|(kid, held)| (kid.clone(), held.key.clone()))
                .collect();
            config.codec().set_shared_keys(keys);
        }
    }

    fn note_failure(&self, kind: RedisFailure, message: String) {
        *lock(&self.last_error) = Some((kind, message));
    }

    fn status(&self) -> RedisKeyShareStatus {
        let state = lock(&self.state);
        let error = lock(&self.last_error).clone();
        RedisKeyShareStatus {
            synced: *self.synced.borrow(),
            connected: self.connected.load(Ordering::Acquire),
            instance: self.instance.clone(),
            published: state.published.iter().cloned().collect(),
            unpublished: state
                .own
                .iter()
                .filter(|kid| !state.published.contains(*kid))
                .cloned()
                .collect(),
            conflicts: state.conflicts.iter().cloned().collect(),
            shared: state.mirror.keys().cloned().collect(),
            ignored: self.ignored.load(Ordering::Relaxed),
            key_ttl: Duration::from_secs(self.ttl),
            last_sync: state.last_sync,
            failure: error.as_ref().map(|(kind, _)| *kind),
            last_error: error.map(|(_, message)| message),
        }
    }
}

fn whole_secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RedisKeyShare {
    /// Start sharing `config`'s public keys through the Redis at `url` (the URL forms of
    /// [`RedisConnection`](crate::RedisConnection): `redis://`, `rediss://`,
    /// `redis+sentinel://`, `redis+cluster://`), and trusting the others'. Returns at once:
    /// connecting, reading and publishing happen in a background task on the current
    /// Tokio runtime, which ends when the share or every copy of `config` is dropped.
    ///
    /// # Errors
    ///
    /// [`KeyError::Share`] for an unparsable URL, impossible options, a CA or client
    /// certificate that cannot be read, or a call outside a Tokio runtime. An unreachable
    /// Redis is not an error here: see [`status`](Self::status).
    pub fn connect(
        url: &str,
        config: &SessionConfig,
        options: RedisKeyShareOptions,
    ) -> Result<Arc<Self>, KeyError> {
        options.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            KeyError::Share("RedisKeyShare::connect must be called inside a tokio runtime".into())
        })?;
        let target = options
            .conn
            .target(url, true)
            .map_err(|e| KeyError::Share(options::backend_message(e)))?;
        let widest = config.longest_policy();
        let ttl = widest
            .absolute_timeout()
            .saturating_add(widest.leeway())
            .saturating_add(whole_secs_up(options.refresh_every).saturating_mul(2));
        let instance = options
            .instance
            .clone()
            .unwrap_or_else(|| format!("i-{:016x}", getrandom::u64().unwrap_or_default()));
        let signer = config.codec().keyring().signer().clone();
        if signer.can_sign() && signer.algorithm() == Algorithm::HS256 {
            tracing::warn!(
                kid = signer.kid(),
                "the signer is an HMAC key: it is never shared through Redis, so only \
                 instances holding the secret accept its tokens"
            );
        }
        let addr = target.to_string();
        let shared = Arc::new(Shared {
            config: Arc::downgrade(&config.0),
            names: Names::new(&options.namespace, target.is_cluster()),
            opts: options,
            instance,
            ttl,
            synced: watch::Sender::new(false),
            connected: AtomicBool::new(false),
            ignored: AtomicU64::new(0),
            state: Mutex::new(State {
                own: link::publishable(&config.codec().keyring())
                    .into_keys()
                    .collect(),
                ..State::default()
            }),
            last_error: Mutex::new(None),
        });
        tracing::info!(
            redis = %addr,
            namespace = %shared.opts.namespace,
            instance = %shared.instance,
            key_ttl_secs = ttl,
            "sharing public keys through Redis"
        );
        let changes = config.codec().keyring_changes();
        let task = runtime.spawn(link::run(shared.clone(), target, addr, changes));
        Ok(Arc::new(Self { shared, task }))
    }

    /// Wait until the keys the others published were read once, at most `timeout`.
    /// Returns whether they were.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut synced = self.shared.synced.subscribe();
        matches!(
            tokio::time::timeout(timeout, synced.wait_for(|s| *s)).await,
            Ok(Ok(_))
        )
    }

    /// Health and what is shared, for `/readyz`-style endpoints and logs. Cheap: no
    /// Redis call.
    pub fn status(&self) -> RedisKeyShareStatus {
        self.shared.status()
    }

    /// How long a published key lives after it was last written: the longest absolute
    /// timeout + leeway + twice the refresh interval.
    pub fn key_ttl(&self) -> Duration {
        Duration::from_secs(self.shared.ttl)
    }
}

impl Drop for RedisKeyShare {
    /// Stop sharing: the task ends, and the keys learned from others are no longer
    /// trusted (nothing would keep them up to date). Nothing is deleted from Redis.
    fn drop(&mut self) {
        self.task.abort();
        let mut state = lock(&self.shared.state);
        if !state.mirror.is_empty() {
            state.mirror.clear();
            self.shared.apply(&state);
        }
    }
}
