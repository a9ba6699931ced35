//! Resync: what a (re)connecting link reads before it serves, and the change-log position
//! it keeps while it serves.
//!
//! Every revocation written to Redis is also appended to the change log (the stream
//! `<namespace>changes`), in the same `MULTI` as its key and its `PUBLISH` (see the
//! publisher). Each instance keeps a [`Cursor`]: a stream id up to which it holds every
//! entry. A reconnecting instance reads only the entries after its cursor when the log
//! provably still holds all of them, and falls back to the full read (`SCAN` + `MGET` of
//! every live key) otherwise.
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
//!   Every entry up to it was written in one `MULTI` with its key, so that key existed
//!   before the `SCAN` began and the `SCAN` returns it (unless it expired: nothing left to
//!   refuse). Every later entry is also a message on a channel this connection already
//!   listens to.
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
    /// Every live key read (`SCAN` + `MGET`).
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

/// Read every live revocation of the namespace into the mirror: one `SCAN` step, then
/// its `MGET`, until the scan ends. Returns how many.
///
/// Sequential on purpose: overlapping the next step's `MGET` and `SCAN` with this step's
/// parsing (in a task of its own), and bigger steps (`COUNT 10000`), were measured
/// *slower* on a 2-core machine where Redis and this process share the cores
/// (`benches/redis_resync.rs`, bench/results/redis-resync-2026-11-30.md).
async fn full(shared: &Shared, con: &mut Conn, first: bool) -> Result<usize, RedisError> {
    let mut cursor = 0_u64;
    let mut learned = 0;
    loop {
        let mut scan = ::redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(&shared.names.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        // In a cluster: on the node that holds the namespace's slot.
        let (next, keys): (u64, Vec<Vec<u8>>) = con.query_at(&shared.names.stream, scan).await?;
        if !keys.is_empty() {
            // A key that expired since the SCAN reads as nil: nothing left to refuse.
            let values: Vec<Option<Vec<u8>>> =
                ::redis::cmd("MGET").arg(&keys).query_async(con).await?;
            for value in values.iter().flatten() {
                learned += usize::from(shared.learn(value, first));
            }
        }
        if next == 0 {
            return Ok(learned);
        }
        cursor = next;
    }
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
