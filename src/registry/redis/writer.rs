//! The writer: an in-process queue of the layer's registry writes, drained by one
//! background task in pipelined batches; retried with backoff while Redis is away, the
//! oldest dropped past the queue's capacity (best effort: a registry write is never worth
//! holding a request or growing without bound).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ::redis::RedisError;
use tokio::time::Instant;

use super::{ALL, ENDED, ENTRY, Shared, USERS, jittered, lock};
use crate::redis_conn::{Conn, RedisFailure, Target};

/// Most writes per pipeline.
const BATCH: usize = 256;

/// Insert or refresh an entry, unless the session was ended. Keeps the listed id the
/// entry already has; trims the user's set of what expired and, past the per-user bound,
/// of what would expire first; then the same in the namespace-wide set against the total
/// bound, deleting each entry it drops and taking it out of its user's set (never the
/// ended markers, never the denylist's keys). Returns 0 for an ended session, else 1.
///
/// KEYS: entry, user set, ended marker, all set. ARGV: id, sub, entry JSON, TTL ms, sid,
/// expires, now, per-user bound, entry key prefix, total bound, user set prefix.
pub(super) const PUT: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSETNX', KEYS[1], 'id', ARGV[1])
redis.call('HSET', KEYS[1], 'sub', ARGV[2], 'entry', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[8])
if over > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #gone, 2 do
    redis.call('DEL', ARGV[9] .. gone[i])
    redis.call('ZREM', KEYS[4], gone[i])
  end
end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7])
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[10])
if over > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[4], over)
  for i = 1, #gone, 2 do
    local key = ARGV[9] .. gone[i]
    local sub = redis.call('HGET', key, 'sub')
    redis.call('DEL', key)
    if sub then redis.call('ZREM', ARGV[11] .. sub, gone[i]) end
  end
end
if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return 1
";

/// End one session: remember it as ended (as long as its entry would have lived, or the
/// fallback), delete the entry, take it out of its user's set and the all set.
///
/// KEYS: entry, ended marker, all set. ARGV: sid, user set prefix, fallback TTL ms.
pub(super) const REMOVE: &str = r"
local sub = redis.call('HGET', KEYS[1], 'sub')
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then ttl = tonumber(ARGV[3]) end
redis.call('SET', KEYS[2], '1', 'PX', ttl)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if sub then redis.call('ZREM', ARGV[2] .. sub, ARGV[1]) end
return 1
";

/// End every listed session of a user.
///
/// KEYS: user set, all set. ARGV: entry key prefix, ended marker prefix, fallback TTL ms.
pub(super) const REMOVE_USER: &str = r"
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do
  local key = ARGV[1] .. sid
  local ttl = redis.call('PTTL', key)
  if ttl <= 0 then ttl = tonumber(ARGV[3]) end
  redis.call('SET', ARGV[2] .. sid, '1', 'PX', ttl)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[2], sid)
end
redis.call('DEL', KEYS[1])
return #sids
";

/// One write on its way to Redis.
pub(super) enum Op {
    Put {
        sid: String,
        sub: String,
        id: String,
        json: String,
        expires: i64,
        /// When the entry's key must be gone from Redis.
        deadline: Instant,
    },
    Remove {
        sid: String,
    },
    RemoveUser {
        sub: String,
    },
}

/// The queue and its counters (under `Shared::queue`).
#[derive(Default)]
pub(super) struct Queue {
    pub(super) ops: VecDeque<Op>,
}

impl Shared {
    /// Queue `op`; past the capacity the oldest write goes.
    pub(super) fn push(&self, op: Op) {
        let dropped = {
            let mut queue = lock(&self.queue);
            queue.ops.push_back(op);
            self.pending.fetch_add(1, Ordering::AcqRel);
            self.trim(&mut queue)
        };
        self.wake.notify_one();
        self.report_dropped(dropped);
    }

    fn trim(&self, queue: &mut Queue) -> usize {
        let mut dropped = 0;
        while queue.ops.len() > self.opts.queue_capacity {
            queue.ops.pop_front();
            dropped += 1;
        }
        if dropped > 0 {
            self.pending.fetch_sub(dropped, Ordering::AcqRel);
            self.dropped.fetch_add(
                u64::try_from(dropped).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        dropped
    }

    fn report_dropped(&self, dropped: usize) {
        if dropped == 0 {
            return;
        }
        let total = self.dropped.load(Ordering::Relaxed);
        // Once, then at every power of two: a long outage does not flood the log.
        if total.is_power_of_two() {
            tracing::warn!(
                dropped_total = total,
                capacity = self.opts.queue_capacity,
                "session registry: Redis has been unreachable long enough that the oldest \
                 queued writes were dropped (listings may miss or keep some sessions until \
                 their next reissue or expiry)"
            );
        }
    }

    fn take_batch(&self) -> Vec<Op> {
        let mut queue = lock(&self.queue);
        let n = queue.ops.len().min(BATCH);
        queue.ops.drain(..n).collect()
    }

    /// Put a batch that could not be written back in front, in order.
    fn requeue(&self, batch: Vec<Op>) {
        let dropped = {
            let mut queue = lock(&self.queue);
            for op in batch.into_iter().rev() {
                queue.ops.push_front(op);
            }
            self.trim(&mut queue)
        };
        self.report_dropped(dropped);
    }

    fn done(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::AcqRel);
    }

    /// The batch as one pipeline, and how many commands it holds.
    fn pipeline(&self, batch: &[Op]) -> (::redis::Pipeline, usize) {
        let names = &self.names;
        let now = self.opts.clock.now();
        let at = Instant::now();
        let fallback = u64::try_from(self.opts.ended_fallback.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = ::redis::pipe();
        let mut commands = 0;
        for op in batch {
            commands += 1;
            match op {
                Op::Put {
                    sid,
                    sub,
                    id,
                    json,
                    expires,
                    deadline,
                } => {
                    let ttl = deadline.saturating_duration_since(at);
                    if ttl.is_zero() {
                        commands -= 1;
                        continue; // expired while it waited: nothing to list
                    }
                    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                    pipe.cmd("EVAL")
                        .arg(PUT)
                        .arg(4)
                        .arg(names.key(ENTRY, sid))
                        .arg(names.key(USERS, sub))
                        .arg(names.key(ENDED, sid))
                        .arg(names.prefix(ALL))
                        .arg(id)
                        .arg(sub)
                        .arg(json)
                        .arg(ttl_ms)
                        .arg(sid)
                        .arg(*expires)
                        .arg(now)
                        .arg(self.opts.per_user)
                        .arg(names.prefix(ENTRY))
                        .arg(self.opts.capacity)
                        .arg(names.prefix(USERS))
                        .ignore();
                }
                Op::Remove { sid } => {
                    pipe.cmd("EVAL")
                        .arg(REMOVE)
                        .arg(3)
                        .arg(names.key(ENTRY, sid))
                        .arg(names.key(ENDED, sid))
                        .arg(names.prefix(ALL))
                        .arg(sid)
                        .arg(names.prefix(USERS))
                        .arg(fallback)
                        .ignore();
                }
                Op::RemoveUser { sub } => {
                    pipe.cmd("EVAL")
                        .arg(REMOVE_USER)
                        .arg(2)
                        .arg(names.key(USERS, sub))
                        .arg(names.prefix(ALL))
                        .arg(names.prefix(ENTRY))
                        .arg(names.prefix(ENDED))
                        .arg(fallback)
                        .ignore();
                }
            }
        }
        (pipe, commands)
    }
}

/// Worth retrying on a new connection (rather than a reply Redis will give again): a
/// `READONLY` reply means a demoted master (failover), so it is one too.
fn retryable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        || RedisFailure::of(e) == RedisFailure::ReadOnly
}

/// The writer task: connect when there is something to write, write it in batches,
/// reconnect with backoff, forever (until the registry is dropped).
pub(super) async fn run(shared: Arc<Shared>, target: Target) {
    let opts = &shared.opts;
    let mut con: Option<Conn> = None;
    let mut backoff = opts.conn.retry_min;
    let mut failures = 0_u32;
    loop {
        let batch = shared.take_batch();
        if batch.is_empty() {
            shared.wake.notified().await;
            continue;
        }
        if con.is_none() {
            match target.connect(&opts.conn, None).await {
                Ok(c) => {
                    con = Some(c);
                    shared.connected.store(true, Ordering::Release);
                    if failures > 0 {
                        tracing::info!(after_failures = failures, "session registry: Redis back");
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    shared.note_error("connect", &e);
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(
                            error = %e,
                            attempts = failures,
                            pending = shared.pending.load(Ordering::Relaxed),
                            "session registry: cannot reach Redis; writes are queued (requests \
                             are not affected)"
                        );
                    }
                    shared.requeue(batch);
                    tokio::time::sleep(jittered(backoff)).await;
                    backoff = (backoff * 2).min(opts.conn.retry_max);
                    continue;
                }
            }
        }
        let Some(c) = con.as_mut() else { continue };
        let n = batch.len();
        let (pipe, commands) = shared.pipeline(&batch);
        let written = if commands == 0 {
            Ok(())
        } else {
            pipe.query_async::<()>(c).await
        };
        match written {
            Ok(()) => {
                shared.done(n);
                backoff = opts.conn.retry_min;
                failures = 0;
            }
            Err(e) if retryable(&e) => {
                con = None;
                shared.connected.store(false, Ordering::Release);
                shared.note_error("write", &e);
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "session registry: a Redis write failed; retrying");
                shared.requeue(batch);
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(opts.conn.retry_max);
            }
            Err(e) => {
                // Redis refused it (and would again): the rest of the batch was applied.
                shared.note_error("write", &e);
                tracing::error!(error = %e, "session registry: Redis refused a write; dropped");
                shared.done(n);
            }
        }
    }
}
