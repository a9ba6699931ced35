//! Resync: what a (re)connecting link reads before it serves, and the change-log position
//! it keeps while it serves.
//!
//! Every revocation written to Redis is also appended to the change log (the stream
//! `<namespace>changes`), in the same `MULTI` as its bucket entry and its `PUBLISH` (see
//! the publisher). Each instance keeps a [`Cursor`]: a stream id up to which it holds
//! every entry. A reconnecting instance reads only the entries after its cursor when the
//! log provably still holds all of them, and falls back to the full read otherwise:
//! `SCAN` of the namespace, then every bucket it finds (`HVALS`, or `HSCAN` for a large
//! one) and every key of the layout before buckets (`MGET`).
//!
//! # Why the cursor is right (I1)
//!
//! The published message does not carry the stream id (the wire format stays the
//! journal's record, so instances of an older version keep understanding it, and no
//! script is needed). Instead the cursor moves only to a *snapshot* of the stream's head
//! (`XINFO STREAM`: `last-generated-id` and `entries-added`, read atomically) taken on the
//! link's own, subscribed connection:
//!
//! * After a **full read**: the snapshot is taken after subscribing and before the `SCAN`.
//!   Every entry up to it was written in one `MULTI` with its bucket entry (`HSET`), so
//!   that bucket held it before the `SCAN` began; the `SCAN` returns every key present
//!   from its start to its end, and the bucket's `HVALS` (atomic) or `HSCAN` (which
//!   returns every field present from its start to its end) returns the entry — unless
//!   the bucket expired, which happens only after every revocation in it has (nothing
//!   left to refuse). A field is only ever replaced by a record of the same revocation.
//!   Every later entry is also a message on a channel this connection already listens
//!   to. Keys of the layout before buckets (older instances) are read as before: each
//!   was written with its own entry and is returned by the same `SCAN`.
//! * After an **incremental read**: every entry after the old cursor up to the snapshot
//!   was read and applied, and there were exactly `entries-added` (now) − `entries-added`
//!   (then) of them — so none was trimmed, deleted, or lost with a recreated stream (a
//!   recreated stream counts from zero again). Any shortfall means a full read.
//! * **While serving**, at every health check: a `PUBLISH` in an `EXEC` is written to
//!   each subscriber's connection before the `EXEC` returns, so every entry up to the
//!   snapshot reached this connection *before* the snapshot's reply — and the client
//!   queues push messages in the order it reads them. Applying every queued message and
//!   then moving the cursor to the snapshot keeps "every entry up to the cursor is
//!   applied".
//!
//! A Redis older than 7.0 (no `entries-added`), a stream that does not exist, or an ACL
//! user without `XINFO`: no cursor, every resync is a full read.

use std::sync::atomic::Ordering;

use ::redis::{PushInfo, PushKind, RedisError, Value};
use tokio::sync::mpsc;

use super::{Shared, lock};
use crate::redis_conn::{Conn, RedisFailure};

/// Keys asked per `SCAN` step (and values per `MGET`).
const SCAN_COUNT: usize = 1_000;
/// The largest bucket read in one `HVALS` (about 7 MB of reply); larger ones are read
/// with `HSCAN`.
const WHOLE_BUCKET: usize = 100_000;
/// Entries asked per `HSCAN` step of a large bucket.
const BUCKET_SCAN_COUNT: usize = 10_000;
/// Change-log entries asked per `XRANGE`.
const RANGE_COUNT: usize = 10_000;

/// A stream entry id, `ms-seq`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StreamId(u64, u64);

impl StreamId {
    fn parse(text: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = text.split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }

    fn arg(self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Every change-log entry up to `id` is applied here; `added` is the stream's
/// `entries-added` when its last id was `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cursor {
    id: StreamId,
    added: u64,
}

/// What `XINFO STREAM` says about the change log.
#[derive(Clone, Copy, Debug)]
struct Head {
    last: StreamId,
    added: u64,
    max_deleted: StreamId,
}

impl Cursor {
    pub(super) fn id(self) -> StreamId {
        self.id
    }
}

impl Head {
    fn cursor(self) -> Option<Cursor> {
        (self.added > 0).then_some(Cursor {
            id: self.last,
            added: self.added,
        })
    }
}

/// How a resync went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Every live revocation read (`SCAN`, then the buckets and older keys it found).
    Full,
    /// Only the change-log entries missed since the cursor.
    Incremental,
}

fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// Key/value pairs of a RESP3 map or a RESP2 flat array.
fn pairs(v: &Value) -> Vec<(&Value, &Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(a) => a.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        _ => Vec::new(),
    }
}

/// Is this error the connection's (so the link must reconnect), rather than the
/// server refusing one command (no such key, no permission, unknown command)?
fn is_link_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// The change log's head, or `None` when there is no usable log.
async fn head(shared: &Shared, con: &mut Conn) -> Result<Option<Head>, RedisError> {
    if shared.opts.change_log_len == 0 {
        return Ok(None);
    }
    let reply = ::redis::cmd("XINFO")
        .arg("STREAM")
        .arg(&shared.names.stream)
        .query_async::<Value>(con)
        .await;
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) if is_link_error(&e) => return Err(e),
        // No such key (nothing revoked yet, or Redis lost it), or not allowed.
        Err(_) => return Ok(None),
    };
    let (mut last, mut added, mut max_deleted) = (None, None, None);
    for (k, v) in pairs(&reply) {
        match text(k) {
            Some(b"last-generated-id") => last = text(v).and_then(StreamId::parse),
            Some(b"max-deleted-entry-id") => max_deleted = text(v).and_then(StreamId::parse),
            Some(b"entries-added") => {
                if let Value::Int(n) = v {
                    added = u64::try_from(*n).ok();
                }
            }
            _ => {}
        }
    }
    Ok(match (last, added, max_deleted) {
        (Some(last), Some(added), Some(max_deleted)) => Some(Head {
            last,
            added,
            max_deleted,
        }),
        _ => None, // Redis before 7.0
    })
}

/// Bring the mirror up to date after a (re)connect (already subscribed). Returns how
/// many revocations it applied and how it read them.
pub(super) async fn resync(
    shared: &Shared,
    con: &mut Conn,
    first: bool,
) -> Result<(usize, Kind), RedisError> {
    let head = head(shared, con).await?;
    let cursor = *lock(&shared.cursor);
    if let (Some(cursor), Some(head)) = (cursor, head)
        && !first
        && let Some(learned) = incremental(shared, con, cursor, head).await?
    {
        *lock(&shared.cursor) = head.cursor();
        shared.incremental_syncs.fetch_add(1, Ordering::Relaxed);
        return Ok((learned, Kind::Incremental));
    }
    let learned = full(shared, con, first).await?;
    *lock(&shared.cursor) = head.and_then(Head::cursor);
    shared.full_syncs.fetch_add(1, Ordering::Relaxed);
    Ok((learned, Kind::Full))
}

/// Read the entries after `cursor` up to `head`. `None`: the log no longer holds all of
/// them (a full read is needed); what was applied meanwhile is harmless.
async fn incremental(
    shared: &Shared,
    con: &mut Conn,
    cursor: Cursor,
    head: Head,
) -> Result<Option<usize>, RedisError> {
    if head.max_deleted > cursor.id || head.last < cursor.id || head.added < cursor.added {
        return Ok(None); // trimmed past us, or a different (recreated) stream
    }
    let expected = head.added - cursor.added;
    let (mut from, mut read, mut learned) = (cursor.id, 0_u64, 0_usize);
    while from < head.last && read <= expected {
        let page: Value = ::redis::cmd("XRANGE")
            .arg(&shared.names.stream)
            .arg(format!("({}", from.arg()))
            .arg(head.last.arg())
            .arg("COUNT")
            .arg(RANGE_COUNT)
            .query_async(con)
            .await?;
        let Value::Array(entries) = page else {
            return Ok(None);
        };
        if entries.is_empty() {
            break;
        }
        for entry in &entries {
            let Value::Array(parts) = entry else {
                return Ok(None);
            };
            let (Some(id), Some(fields)) = (
                parts.first().and_then(text).and_then(StreamId::parse),
                parts.get(1),
            ) else {
                return Ok(None);
            };
            from = id;
            read += 1;
            for (k, v) in pairs(fields) {
                if let (Some(b"r"), Some(payload)) = (text(k), text(v)) {
                    learned += usize::from(shared.learn(payload, false));
                }
            }
        }
    }
    Ok((read == expected).then_some(learned))
}

/// Read every live revocation of the namespace into the mirror: `SCAN` it, reading the
/// keys of the layout before buckets as each step finds them (`MGET`), then read every
/// bucket the scan found. Returns how many.
///
/// The legacy steps are sequential on purpose: overlapping the next step's `MGET` and
/// `SCAN` with this step's parsing was measured *slower* on a 2-core machine where Redis
/// and this process share the cores (bench/results/redis-resync-2026-11-30.md). Buckets
/// are cheap for Redis and costly to parse, so there one bucket's read overlaps the
/// previous one's parsing (see [`read_buckets`]).
async fn full(shared: &Shared, con: &mut Conn, first: bool) -> Result<usize, RedisError> {
    let mut cursor = 0_u64;
    let mut learned = 0;
    let mut buckets = Vec::new();
    loop {
        let mut scan = ::redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(&shared.names.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        // In a cluster: on the node that holds the namespace's slot.
        let (next, keys): (u64, Vec<Vec<u8>>) = con.query_at(&shared.names.stream, scan).await?;
        let (found, singles): (Vec<_>, Vec<_>) =
            keys.into_iter().partition(|k| shared.names.is_bucket(k));
        buckets.extend(found);
        if !singles.is_empty() {
            // A key that expired since the SCAN reads as nil: nothing left to refuse; so
            // does a key that is not a string.
            let values: Value = ::redis::cmd("MGET").arg(&singles).query_async(con).await?;
            learned += learn_all(shared, &values, first);
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    // A `SCAN` may return a key twice.
    buckets.sort_unstable();
    buckets.dedup();
    Ok(learned + read_buckets(shared, con, buckets, first).await?)
}

/// Apply every string of an array reply (`MGET`, `HVALS`); nils and others are skipped.
fn learn_all(shared: &Shared, values: &Value, first: bool) -> usize {
    let Value::Array(values) = values else {
        return 0;
    };
    values
        .iter()
        .filter_map(text)
        .map(|value| usize::from(shared.learn(value, first)))
        .sum()
}

/// Aborts a spawned task when dropped (a resync cut short).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `HVALS bucket`, in a task of its own: the connection's reader parses the reply while
/// the caller applies the previous bucket.
fn fetch(con: &Conn, bucket: Vec<u8>) -> AbortOnDrop<Result<Value, RedisError>> {
    let mut con = con.clone();
    AbortOnDrop(tokio::spawn(async move {
        ::redis::cmd("HVALS")
            .arg(bucket)
            .query_async(&mut con)
            .await
    }))
}

async fn fetched(task: &mut AbortOnDrop<Result<Value, RedisError>>) -> Result<Value, RedisError> {
    (&mut task.0).await.map_err(|e| {
        RedisError::from((
            ::redis::ErrorKind::Io,
            "reading a revocation bucket failed",
            e.to_string(),
        ))
    })?
}

/// Read the buckets into the mirror: their sizes (`HLEN`, one pipeline), then each one
/// whole (`HVALS`) up to [`WHOLE_BUCKET`] entries — the next one's read in flight while
/// this one is applied — and larger ones with `HSCAN` steps, so that neither Redis nor
/// this process handles one huge reply. A bucket that expired since the `SCAN` reads as
/// empty; a key that is not a hash is skipped with a warning (nothing this crate writes).
async fn read_buckets(
    shared: &Shared,
    con: &mut Conn,
    buckets: Vec<Vec<u8>>,
    first: bool,
) -> Result<usize, RedisError> {
    if buckets.is_empty() {
        return Ok(0);
    }
    let mut pipe = ::redis::pipe();
    pipe.ignore_errors();
    for bucket in &buckets {
        pipe.cmd("HLEN").arg(bucket);
    }
    let lens: Vec<Result<usize, RedisError>> = pipe.query_async(con).await?;
    let (mut whole, mut large) = (Vec::new(), Vec::new());
    for (bucket, len) in buckets.into_iter().zip(lens) {
        match len {
            Ok(len) if len <= WHOLE_BUCKET => whole.push(bucket),
            Ok(_) => large.push(bucket),
            Err(e) if is_link_error(&e) => return Err(e),
            Err(e) => tracing::warn!(
                key = %String::from_utf8_lossy(&bucket),
                error = %e,
                "ignoring an unreadable revocation bucket in Redis"
            ),
        }
    }
    let mut learned = 0;
    let mut whole = whole.into_iter();
    let mut next = whole.next().map(|bucket| fetch(con, bucket));
    while let Some(mut current) = next.take() {
        let values = fetched(&mut current).await?;
        next = whole.next().map(|bucket| fetch(con, bucket));
        learned += learn_all(shared, &values, first);
    }
    for bucket in large {
        let mut cursor = 0_u64;
        loop {
            let (step, fields): (u64, Value) = ::redis::cmd("HSCAN")
                .arg(&bucket)
                .arg(cursor)
                .arg("COUNT")
                .arg(BUCKET_SCAN_COUNT)
                .query_async(con)
                .await?;
            for (_, value) in pairs(&fields) {
                if let Some(value) = text(value) {
                    learned += usize::from(shared.learn(value, first));
                }
            }
            if step == 0 {
                break;
            }
            cursor = step;
        }
    }
    Ok(learned)
}

/// At a health check: snapshot the change log's head, apply every message queued before
/// the reply, and move the cursor there. `Err`: the link is gone.
pub(super) async fn advance(
    shared: &Shared,
    con: &mut Conn,
    pushes: &mut mpsc::UnboundedReceiver<PushInfo>,
) -> Result<(), (RedisFailure, String)> {
    if shared.opts.change_log_len == 0 {
        return Ok(());
    }
    let head = head(shared, con).await.map_err(|e| {
        (
            RedisFailure::of(&e),
            format!("change-log check failed: {e}"),
        )
    })?;
    loop {
        match pushes.try_recv() {
            Ok(push) => apply_push(shared, &push)?,
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => return Err(closed()),
        }
    }
    *lock(&shared.cursor) = head.and_then(Head::cursor);
    Ok(())
}

pub(super) fn closed() -> (RedisFailure, String) {
    (RedisFailure::Unreachable, "connection closed".to_owned())
}

/// Apply one push message (a published revocation). `Err`: the connection is gone.
pub(super) fn apply_push(shared: &Shared, push: &PushInfo) -> Result<(), (RedisFailure, String)> {
    match push.kind {
        PushKind::Disconnection => Err(closed()),
        PushKind::Message | PushKind::SMessage => {
            if let Some(Value::BulkString(payload)) = push.data.get(1) {
                shared.learn(payload, false);
            }
            Ok(())
        }
        // A cluster unsubscribes us when the channel's slot moves to another node: what
        // is published there meanwhile would be missed, so reconnect and resync.
        PushKind::SUnsubscribe => Err((
            RedisFailure::Unreachable,
            "the cluster moved the channel's slot (sunsubscribe)".to_owned(),
        )),
        _ => Ok(()),
    }
}
