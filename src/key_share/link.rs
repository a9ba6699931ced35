//! The link: connect (RESP3), subscribe, read every published key, publish this
//! instance's; then apply announcements, publish on every keyring change, refresh and
//! health-check until the link is lost; reconnect with backoff, until the share or the
//! configuration is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ::redis::{PushInfo, PushKind, RedisError, Value};
use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::wire::{self, Message};
use super::{Shared, lock};
use crate::keys::{Key, Keyring};
use crate::redis_conn::{Conn, RedisFailure, Target};

/// Keys asked per `SCAN` step.
const SCAN_COUNT: usize = 1_000;

/// Why the link stopped serving.
enum Stop {
    /// The connection failed: reconnect.
    Lost(RedisFailure, String),
    /// The configuration is gone: end the task.
    Ended,
}

fn lost(what: &'static str) -> impl FnOnce(RedisError) -> Stop {
    move |e| Stop::Lost(RedisFailure::of(&e), format!("{what}: {e}"))
}

/// This instance's publishable keys as last seen, and those it must still delete.
#[derive(Default)]
struct Own {
    /// `kid` → public JWK.
    current: BTreeMap<String, Json>,
    /// Keys that left the keyring, not yet deleted from Redis.
    retiring: BTreeMap<String, Json>,
}

/// The link task.
pub(super) async fn run(
    shared: Arc<Shared>,
    target: Target,
    addr: String,
    mut changes: watch::Receiver<u64>,
) {
    let conn = shared.opts.conn.clone();
    let mut backoff = conn.retry_min;
    let mut failures = 0_u32;
    let mut own = Own::default();
    loop {
        if shared.config.strong_count() == 0 {
            return;
        }
        let (tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let started = async {
            let mut con = target
                .connect(&conn, Some(tx))
                .await
                .map_err(lost("connect"))?;
            // Subscribe before reading: whatever is published during the read arrives as
            // a message (applying it twice is harmless).
            con.subscribe(&shared.names.channel)
                .await
                .map_err(lost("subscribe"))?;
            lock(&shared.state).published.clear();
            read_all(&shared, &mut con).await?;
            drain(&shared, &mut pushes)?;
            publish(&shared, &mut con, &mut own, true).await?;
            Ok::<_, Stop>(con)
        }
        .await;
        let mut con = match started {
            Ok(con) => con,
            Err(Stop::Ended) => return,
            Err(Stop::Lost(kind, why)) => {
                shared.note_failure(kind, why.clone());
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(
                        redis = %addr,
                        error = %why,
                        attempts = failures,
                        "cannot share keys through Redis; retrying (this instance's own keys \
                         verify; keys of the others are unknown until Redis is back)"
                    );
                }
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(conn.retry_max);
                continue;
            }
        };
        shared.connected.store(true, Ordering::Release);
        let first = !*shared.synced.borrow();
        shared.synced.send_replace(true);
        tracing::info!(
            redis = %addr,
            first,
            after_failures = failures,
            shared = ?lock(&shared.state).mirror.keys().collect::<Vec<_>>(),
            "key share synced with Redis"
        );
        backoff = conn.retry_min;
        failures = 0;
        let why = serve(&shared, &mut con, &mut pushes, &mut own, &mut changes).await;
        shared.connected.store(false, Ordering::Release);
        match why {
            Stop::Ended => return,
            Stop::Lost(kind, why) => {
                tracing::warn!(
                    redis = %addr,
                    reason = %why,
                    "lost the Redis link of the key share: every key known stays trusted; keys \
                     published meanwhile are unknown until it is back"
                );
                shared.note_failure(kind, why);
            }
        }
        drop(con);
        tokio::time::sleep(jittered(backoff)).await;
    }
}

/// Apply announcements, publish on keyring changes, refresh, health-check.
async fn serve(
    shared: &Shared,
    con: &mut Conn,
    pushes: &mut mpsc::UnboundedReceiver<PushInfo>,
    own: &mut Own,
    changes: &mut watch::Receiver<u64>,
) -> Stop {
    let every = shared.opts.health_check_interval;
    let mut health = tokio::time::interval_at(Instant::now() + every, every);
    health.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let every = shared.opts.refresh_every;
    let mut refresh = tokio::time::interval_at(Instant::now() + every, every);
    refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let step = tokio::select! {
            push = pushes.recv() => match push {
                None => Err(closed()),
                Some(push) => apply_push(shared, &push),
            },
            changed = changes.changed() => match changed {
                Err(_) => Err(Stop::Ended),
                Ok(()) => publish(shared, con, own, false).await,
            },
            _ = health.tick() => health_check(shared, con).await,
            _ = refresh.tick() => match publish(shared, con, own, true).await {
                Ok(()) => read_all(shared, con).await,
                Err(stop) => Err(stop),
            },
        };
        if let Err(stop) = step {
            return stop;
        }
    }
}

/// `PING` the node holding our keys, then drop the mirrored keys whose time is over.
async fn health_check(shared: &Shared, con: &mut Conn) -> Result<(), Stop> {
    if shared.config.strong_count() == 0 {
        return Err(Stop::Ended);
    }
    con.query_at::<Value>(&shared.names.prefix, ::redis::cmd("PING"))
        .await
        .map_err(lost("health check failed"))?;
    let mut state = lock(&shared.state);
    if shared.sweep(&mut state) {
        shared.apply(&state);
    }
    Ok(())
}

fn closed() -> Stop {
    Stop::Lost(RedisFailure::Unreachable, "connection closed".to_owned())
}

/// Apply one push message (an announcement). `Err`: the connection is gone.
fn apply_push(shared: &Shared, push: &PushInfo) -> Result<(), Stop> {
    match push.kind {
        PushKind::Disconnection => Err(closed()),
        PushKind::Message | PushKind::SMessage => {
            if let Some(Value::BulkString(payload)) = push.data.get(1) {
                let mut state = lock(&shared.state);
                if shared.learn(&mut state, payload, None) {
                    shared.apply(&state);
                }
            }
            Ok(())
        }
        // A cluster unsubscribes us when the channel's slot moves: reconnect and read.
        PushKind::SUnsubscribe => Err(Stop::Lost(
            RedisFailure::Unreachable,
            "the cluster moved the channel's slot (sunsubscribe)".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// Apply the announcements queued so far.
fn drain(shared: &Shared, pushes: &mut mpsc::UnboundedReceiver<PushInfo>) -> Result<(), Stop> {
    loop {
        match pushes.try_recv() {
            Ok(push) => apply_push(shared, &push)?,
            Err(mpsc::error::TryRecvError::Empty) => return Ok(()),
            Err(mpsc::error::TryRecvError::Disconnected) => return Err(closed()),
        }
    }
}

/// Read every published key (`SCAN` + `MGET`) into the mirror, then drop what expired.
async fn read_all(shared: &Shared, con: &mut Conn) -> Result<(), Stop> {
    let mut cursor = 0_u64;
    let mut changed = false;
    loop {
        let mut scan = ::redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(&shared.names.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        // In a cluster: on the node that holds the namespace's slot.
        let (next, keys): (u64, Vec<Vec<u8>>) = con
            .query_at(&shared.names.prefix, scan)
            .await
            .map_err(lost("reading the shared keys"))?;
        if !keys.is_empty() {
            // A key that expired since the SCAN reads as nil.
            let values: Vec<Option<Vec<u8>>> = ::redis::cmd("MGET")
                .arg(&keys)
                .query_async(con)
                .await
                .map_err(lost("reading the shared keys"))?;
            let mut state = lock(&shared.state);
            for (key, value) in keys.iter().zip(values) {
                let (Some(kid), Some(value)) = (shared.names.kid_of(key), value) else {
                    continue;
                };
                changed |= shared.learn(&mut state, &value, Some(kid));
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut state = lock(&shared.state);
    changed |= shared.sweep(&mut state);
    state.last_sync = shared.now();
    if changed {
        shared.apply(&state);
    }
    Ok(())
}

/// Publish this instance's keys: all of them (`all`: a (re)connect or a refresh, which
/// extends their expiry) or only those not yet published; delete the keys that left the
/// keyring.
async fn publish(shared: &Shared, con: &mut Conn, own: &mut Own, all: bool) -> Result<(), Stop> {
    let Some(config) = shared.config() else {
        return Err(Stop::Ended);
    };
    let current = publishable(&config.codec().keyring());
    {
        let mut state = lock(&shared.state);
        let mut changed = false;
        for (kid, jwk) in &own.current {
            if !current.contains_key(kid) {
                own.retiring.insert(kid.clone(), jwk.clone());
                state.published.remove(kid);
                state.conflicts.remove(kid);
                // Retired here: not trusted here any more, whoever else published it.
                changed |= state.mirror.remove(kid).is_some();
            }
        }
        own.retiring.retain(|kid, _| !current.contains_key(kid));
        state.own = current.keys().cloned().collect();
        if changed {
            shared.apply(&state);
        }
    }
    own.current = current;
    let now = config.clock().now();
    let wanted: Vec<&String> = {
        let state = lock(&shared.state);
        own.current
            .keys()
            .filter(|kid| all || !state.published.contains(*kid))
            .collect()
    };
    let names = &shared.names;
    let publish = con.publish_command();
    if !wanted.is_empty() {
        let keys: Vec<String> = wanted.iter().map(|kid| names.key(kid)).collect();
        let held: Vec<Option<Vec<u8>>> = ::redis::cmd("MGET")
            .arg(&keys)
            .query_async(con)
            .await
            .map_err(lost("publishing keys"))?;
        let exp = now.saturating_add(i64::try_from(shared.ttl).unwrap_or(i64::MAX));
        let ttl_ms = shared.ttl.saturating_mul(1000).max(1);
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        let mut written = Vec::new();
        for ((kid, key), held) in wanted.iter().zip(&keys).zip(held) {
            let jwk = &own.current[*kid];
            if let Some(other) = held
                .as_deref()
                .and_then(|h| conflict(shared, kid, jwk, h, now))
            {
                let mut state = lock(&shared.state);
                if state.conflicts.insert((*kid).clone()) {
                    tracing::error!(
                        kid = %kid,
                        other = %other,
                        "another instance publishes a different key under this instance's kid: \
                         not overwritten; each instance refuses the other's tokens of that kid \
                         (give keys unique kids)"
                    );
                }
                continue;
            }
            let entry = wire::put(kid, jwk, exp, &shared.instance);
            pipe.cmd("SET")
                .arg(key)
                .arg(&entry)
                .arg("PX")
                .arg(ttl_ms)
                .ignore();
            pipe.cmd(publish).arg(&names.channel).arg(&entry).ignore();
            written.push((*kid).clone());
        }
        if !written.is_empty() {
            pipe.query_async::<()>(con)
                .await
                .map_err(lost("publishing keys"))?;
            let mut state = lock(&shared.state);
            let new: Vec<&String> = written
                .iter()
                .filter(|kid| !state.published.contains(*kid))
                .collect();
            if !new.is_empty() {
                tracing::info!(kids = ?new, "public keys published to Redis");
            }
            for kid in &written {
                state.conflicts.remove(kid);
                state.published.insert(kid.clone());
            }
        }
    }
    retire(shared, con, own).await
}

/// The keys of `ring` this instance publishes: those whose private half it holds (HMAC
/// keys aside), `kid` → public JWK.
pub(super) fn publishable(ring: &Keyring) -> BTreeMap<String, Json> {
    ring.kids()
        .into_iter()
        .filter_map(|kid| {
            let key = ring.get(kid)?;
            let jwk = key.can_sign().then(|| key.public_jwk()).flatten()?;
            Some((kid.to_owned(), jwk))
        })
        .collect()
}

/// The publisher of `held` if it is another live key under `kid`.
fn conflict(shared: &Shared, kid: &str, jwk: &Json, held: &[u8], now: i64) -> Option<String> {
    let Ok(Message::Put(other)) = wire::decode(held, Some(kid)) else {
        return None; // unreadable or retired: ours to overwrite
    };
    let ours = Key::from_jwk(jwk).ok()?;
    let differs =
        other.by != shared.instance && other.exp > now && !wire::same_key(&ours, &other.key);
    differs.then(|| wire::printable(&other.by))
}

/// Delete from Redis the keys that left the keyring (if Redis still holds this key under
/// that `kid`) and announce their retirement.
async fn retire(shared: &Shared, con: &mut Conn, own: &mut Own) -> Result<(), Stop> {
    let names = &shared.names;
    let publish = con.publish_command();
    let retiring: Vec<(String, Json)> = own
        .retiring
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (kid, jwk) in retiring {
        let key = names.key(&kid);
        let held: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(&key)
            .query_async(con)
            .await
            .map_err(lost("retiring keys"))?;
        let ours = Key::from_jwk(&jwk).ok();
        let (same, other) = match (held.as_deref().map(|h| wire::decode(h, Some(&kid))), &ours) {
            (Some(Ok(Message::Put(p))), Some(ours)) if wire::same_key(ours, &p.key) => {
                (true, false)
            }
            (Some(Ok(Message::Put(_))), _) => (false, true),
            _ => (false, false),
        };
        // Another instance's key under that kid (a conflict): not ours to delete or retire.
        if !other {
            let mut pipe = ::redis::pipe();
            pipe.atomic();
            if same {
                pipe.cmd("DEL").arg(&key).ignore();
            }
            pipe.cmd(publish)
                .arg(&names.channel)
                .arg(wire::retired(&kid, &shared.instance))
                .ignore();
            pipe.query_async::<()>(con)
                .await
                .map_err(lost("retiring keys"))?;
            tracing::info!(kid = %kid, "retired key deleted from Redis and announced");
        }
        own.retiring.remove(&kid);
    }
    Ok(())
}

/// Backoff with jitter in `[d/2, d]`.
fn jittered(d: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX);
    d / 2 + (d / 2).mul_f64(f64::from(r) / f64::from(u32::MAX))
}
