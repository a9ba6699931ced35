//! The link: connect (RESP3), subscribe, resync, then apply published revocations and
//! health-check the connection until it is lost; reconnect with backoff, forever.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ::redis::{PushInfo, RedisError, Value};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Link, Shared, jittered, sync};
use crate::redis_conn::{Conn, RedisFailure, Target};

/// The link task.
pub(super) async fn run(shared: Arc<Shared>, target: Target, addr: String) {
    let opts = &shared.opts;
    let mut backoff = opts.conn.retry_min;
    let mut generation = 0_u64;
    let mut failures = 0_u32;
    loop {
        let (tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let first = !shared.is_ready();
        let connected = async {
            let mut con = target.connect(&opts.conn, Some(tx)).await?;
            // Subscribe before reading the keys: whatever is revoked during the resync
            // arrives as a message (applying twice is harmless).
            con.subscribe(&shared.names.channel).await?;
            Ok::<_, RedisError>(con)
        }
        .await;
        let synced = match connected {
            Ok(mut con) => {
                generation += 1;
                shared.link.send_replace(Some(Link {
                    con: con.clone(),
                    generation,
                }));
                sync::resync(&shared, &mut con, first)
                    .await
                    .map(|n| (con, n))
            }
            Err(e) => Err(e),
        };
        let mut con = match synced {
            Ok((con, (learned, kind))) => {
                synced_now(&shared, first, learned, kind, &addr, failures);
                con
            }
            Err(e) => {
                shared.link.send_replace(None);
                shared.note_error("connect", &e);
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(
                        redis = %addr,
                        error = %e,
                        attempts = failures,
                        ready = shared.is_ready(),
                        pending = shared.pending.load(Ordering::Relaxed),
                        "cannot reach Redis; retrying (revocations apply locally; \
                         not ready until the first resync)"
                    );
                } else {
                    tracing::debug!(redis = %addr, error = %e, "Redis reconnect failed");
                }
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(opts.conn.retry_max);
                continue;
            }
        };
        backoff = opts.conn.retry_min;
        failures = 0;
        let why = serve(&shared, &mut con, &mut pushes).await;
        shared.connected.store(false, Ordering::Release);
        shared.link.send_replace(None);
        let (kind, why) = why;
        shared.note_failure(kind, format!("link: {why}"));
        tracing::warn!(
            redis = %addr,
            reason = %why,
            "lost the Redis link: answering from a possibly stale mirror until it is back"
        );
        drop(con);
        tokio::time::sleep(jittered(backoff)).await;
    }
}

fn synced_now(
    shared: &Shared,
    first: bool,
    learned: usize,
    kind: sync::Kind,
    addr: &str,
    failures: u32,
) {
    shared
        .last_resync
        .store(shared.opts.clock.now(), Ordering::Relaxed);
    shared.connected.store(true, Ordering::Release);
    if first {
        shared.ready_flag.store(true, Ordering::Release);
        shared.ready.send_replace(true);
        tracing::info!(redis = %addr, learned, ?kind, "redis denylist ready: resynced from Redis");
    } else {
        tracing::info!(
            redis = %addr,
            learned,
            ?kind,
            after_failures = failures,
            "Redis link back: resynced"
        );
    }
}

/// Apply messages; `PING` every health-check interval (or at once when the publisher
/// suspects the connection). Returns why the link ended.
async fn serve(
    shared: &Shared,
    con: &mut Conn,
    pushes: &mut mpsc::UnboundedReceiver<PushInfo>,
) -> (RedisFailure, String) {
    let failed = |e: RedisError| (RedisFailure::of(&e), format!("health check failed: {e}"));
    let every = shared.opts.health_check_interval;
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                None => return sync::closed(),
                Some(push) => if let Err(why) = sync::apply_push(shared, &push) {
                    return why;
                },
            },
            _ = tick.tick() => {
                if let Err(e) = ping(shared, con).await {
                    return failed(e);
                }
                // Move the change-log cursor (what a reconnect need not read again).
                if let Err(why) = sync::advance(shared, con, pushes).await {
                    return why;
                }
            },
            () = shared.suspect.notified() => {
                if shared.read_only.swap(false, Ordering::AcqRel) {
                    return (
                        RedisFailure::ReadOnly,
                        "Redis is a read-only replica (a failover?): reconnecting".to_owned(),
                    );
                }
                if let Err(e) = ping(shared, con).await {
                    return failed(e);
                }
            },
        }
    }
}

/// `PING` the server holding our keys (in a cluster, the master of their slot).
async fn ping(shared: &Shared, con: &mut Conn) -> Result<(), RedisError> {
    con.query_at::<Value>(&shared.names.stream, ::redis::cmd("PING"))
        .await
        .map(drop)
}
