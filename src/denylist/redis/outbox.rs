//! The publisher: an in-process outbox of revocations to write to Redis, drained by one
//! background task that retries with backoff and never drops a revocation before every
//! token it refuses has expired.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Link, Shared, jittered, lock};
use crate::redis_conn::RedisFailure;

/// Most revocations per `MULTI`/`EXEC`.
const BATCH: usize = 256;

/// One revocation on its way to Redis.
pub(super) struct Outgoing {
    /// Its name in its bucket.
    field: Arc<str>,
    /// Its bucket (minute of expiry).
    minute: i64,
    payload: Arc<str>,
    /// When its bucket would expire: past this it is useless and dropped.
    expires: Instant,
}

impl Outgoing {
    pub(super) fn new(field: String, minute: i64, payload: String, expires: Instant) -> Self {
        Self {
            field: field.into(),
            minute,
            payload: payload.into(),
            expires,
        }
    }
}

/// `pending`: not yet written to the current Redis. `sent`: written, kept until it
/// expires so that it can be written again after a reconnect (Redis may have restarted
/// empty).
#[derive(Default)]
pub(super) struct Outbox {
    pending: VecDeque<Outgoing>,
    sent: VecDeque<Outgoing>,
}

/// One revocation of a [`Batch`].
struct Item {
    field: Arc<str>,
    minute: i64,
    payload: Arc<str>,
    /// Until its bucket's end.
    ttl_ms: u64,
}

/// The front of the queue, ready to send; `examined` queue entries are covered (expired
/// ones included, and skipped).
struct Batch {
    items: Vec<Item>,
    examined: usize,
}

impl Outbox {
    pub(super) fn push(&mut self, item: Outgoing) {
        self.pending.push_back(item);
    }

    pub(super) fn pending(&self) -> usize {
        self.pending.len()
    }

    fn batch(&self, now: Instant) -> Batch {
        let mut items = Vec::new();
        let mut examined = 0;
        for item in &self.pending {
            if items.len() == BATCH {
                break;
            }
            examined += 1;
            let ttl = item.expires.saturating_duration_since(now);
            if ttl.is_zero() {
                continue;
            }
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            items.push(Item {
                field: item.field.clone(),
                minute: item.minute,
                payload: item.payload.clone(),
                ttl_ms: ms,
            });
        }
        Batch { items, examined }
    }

    /// The first `examined` pending entries were written: keep the live ones in `sent`,
    /// at most `keep` of them. Returns how many older ones were forgotten for re-seeding.
    fn written(&mut self, examined: usize, now: Instant, keep: usize) -> usize {
        let n = examined.min(self.pending.len());
        for item in self.pending.drain(..n) {
            if item.expires > now {
                self.sent.push_back(item);
            }
        }
        let mut forgotten = 0;
        if self.sent.len() > keep {
            self.sent.retain(|item| item.expires > now);
            while self.sent.len() > keep {
                self.sent.pop_front();
                forgotten += 1;
            }
        }
        forgotten
    }

    /// A new connection: write everything live again.
    fn requeue(&mut self, now: Instant) -> usize {
        self.sent.retain(|item| item.expires > now);
        let n = self.sent.len();
        self.pending.extend(self.sent.drain(..));
        n
    }
}

/// The publisher task: wait for a connection and something to send, send a batch in one
/// transaction (`HSET bucket field payload` + `XADD changes MAXLEN ~ len * r payload` +
/// `PUBLISH channel payload` each, one `PEXPIRE bucket ttl` per bucket), repeat.
pub(super) async fn run(shared: Arc<Shared>, mut link: watch::Receiver<Option<Link>>) {
    let opts = &shared.opts;
    let mut backoff = opts.conn.retry_min;
    let mut seeded = 0;
    loop {
        let current = match link.wait_for(Option::is_some).await {
            Ok(current) => current.clone(),
            Err(_) => return,
        };
        let Some(mut current) = current else { continue };
        if current.generation != seeded {
            seeded = current.generation;
            let again = {
                let mut outbox = lock(&shared.outbox);
                let n = outbox.requeue(Instant::now());
                shared.pending.store(outbox.pending(), Ordering::Relaxed);
                n
            };
            if again > 0 {
                tracing::debug!(
                    revocations = again,
                    "re-writing live revocations to Redis after a reconnect"
                );
            }
        }
        let batch = lock(&shared.outbox).batch(Instant::now());
        if batch.examined == 0 {
            tokio::select! {
                () = shared.wake.notified() => {}
                changed = link.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let publish = current.con.publish_command();
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        // Each bucket's expiry, once per batch: its end, seen from now (the largest of its
        // items' TTLs, which differ only by when each was queued).
        let mut expiries: Vec<(i64, u64)> = Vec::new();
        for item in &batch.items {
            let bucket = shared.names.bucket(item.minute);
            pipe.cmd("HSET")
                .arg(&bucket)
                .arg(&*item.field)
                .arg(&*item.payload)
                .ignore();
            match expiries.iter_mut().find(|(m, _)| *m == item.minute) {
                Some((_, ttl)) => *ttl = (*ttl).max(item.ttl_ms),
                None => expiries.push((item.minute, item.ttl_ms)),
            }
            if opts.write_legacy_keys {
                // For instances of a version before buckets, which read only these.
                pipe.cmd("SET")
                    .arg(shared.names.legacy_key(&item.field))
                    .arg(&*item.payload)
                    .arg("PX")
                    .arg(item.ttl_ms)
                    .ignore();
            }
            if opts.change_log_len > 0 {
                // The change log, in the same transaction: no revocation is in the log
                // but not in its bucket, or the reverse.
                pipe.cmd("XADD")
                    .arg(&shared.names.stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(opts.change_log_len)
                    .arg("*")
                    .arg("r")
                    .arg(&*item.payload)
                    .ignore();
            }
            pipe.cmd(publish)
                .arg(&shared.names.channel)
                .arg(&*item.payload)
                .ignore();
        }
        for (minute, ttl_ms) in expiries {
            pipe.cmd("PEXPIRE")
                .arg(shared.names.bucket(minute))
                .arg(ttl_ms)
                .ignore();
        }
        let result = if batch.items.is_empty() {
            Ok(())
        } else {
            pipe.query_async::<()>(&mut current.con).await
        };
        match result {
            Ok(()) => {
                let forgotten = {
                    let mut outbox = lock(&shared.outbox);
                    let forgotten = outbox.written(batch.examined, Instant::now(), opts.capacity);
                    shared.pending.store(outbox.pending(), Ordering::Relaxed);
                    forgotten
                };
                if forgotten > 0 {
                    tracing::warn!(
                        forgotten,
                        "more own revocations than the mirror's capacity: the oldest will not \
                         be re-written if Redis restarts empty"
                    );
                }
                backoff = opts.conn.retry_min;
            }
            Err(e) => {
                let pending = shared.pending.load(Ordering::Relaxed);
                tracing::warn!(
                    error = %e,
                    pending,
                    retry_in = ?backoff,
                    "publishing revocations to Redis failed; they apply here and will be retried"
                );
                shared.note_error("publish", &e);
                if RedisFailure::of(&e) == RedisFailure::ReadOnly {
                    // A demoted master (failover): find the new one.
                    shared.read_only.store(true, Ordering::Release);
                }
                shared.suspect.notify_one();
                tokio::select! {
                    () = tokio::time::sleep(jittered(backoff)) => {}
                    changed = link.changed() => if changed.is_err() { return },
                }
                backoff = (backoff * 2).min(opts.conn.retry_max);
            }
        }
    }
}
