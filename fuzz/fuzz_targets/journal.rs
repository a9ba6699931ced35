//! Arbitrary file contents as a revocation journal, against the journal's contract:
//!
//! * reading never panics, and every non-blank line is exactly one thing: a session, a
//!   subject or a watermark record, or an unreadable line (counted);
//! * opening it (a `MemoryDenylist` of capacity 4) never fails on contents alone; every
//!   unreadable line is kept aside, byte for byte, in `<journal>.rejected`, and nothing
//!   else is;
//! * every live loaded record is kept: the denylist holds, for each revoked session or
//!   subject, its latest live record exactly as written (later lines supersede earlier
//!   ones, expired ones are dropped); over capacity the oldest revocations are evicted
//!   and the watermark raised to cover them — the watermark is exactly the highest of the
//!   loaded watermarks and the evicted revocation times;
//! * the compacted journal holds exactly that state: no unreadable line, one record per
//!   held revocation plus the watermark, and opening it again yields the same state and
//!   rejects nothing;
//! * a sweep past every expiry empties the denylist.
//!
//! Lines are classified here one at a time through the public `summarize_journal`, and the
//! fields of readable ones read with `serde_json::Value`, independently of the loader.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use jwt_session::{ManualClock, MemoryDenylist, RevocationStore};
use jwt_session::{RevocationEntry, summarize_journal};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const NOW: i64 = 1_767_225_600;
const CAPACITY: usize = 4;

/// A fresh directory per process, on tmpfs when there is one (the journal fsyncs). Those
/// of processes that are gone are removed first.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    const PREFIX: &str = "jwt-session-fuzz-journal-";
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    };
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(PREFIX));
        if let Some(pid) = pid.filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
});

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rec {
    Session {
        sid: String,
        exp: i64,
        at: i64,
    },
    Subject {
        sub: String,
        before: i64,
        exp: i64,
        at: i64,
    },
    Watermark {
        at: i64,
    },
}

impl Rec {
    fn read(line: &[u8], kind: usize) -> Self {
        let value: Value = serde_json::from_slice(line).expect("a readable line is JSON");
        let text = |k: &str| {
            value[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k} of {value}"))
                .to_owned()
        };
        let int = |k: &str| {
            value[k]
                .as_i64()
                .unwrap_or_else(|| panic!("{k} of {value}"))
        };
        match kind {
            0 => Rec::Session {
                sid: text("sid"),
                exp: int("exp"),
                at: int("at"),
            },
            1 => Rec::Subject {
                sub: text("sub"),
                before: int("before"),
                exp: int("exp"),
                at: int("at"),
            },
            _ => Rec::Watermark { at: int("at") },
        }
    }

    /// (is a subject, id) for revocations; `None` for a watermark.
    fn key(&self) -> Option<(bool, &str)> {
        match self {
            Rec::Session { sid, .. } => Some((false, sid)),
            Rec::Subject { sub, .. } => Some((true, sub)),
            Rec::Watermark { .. } => None,
        }
    }

    fn at(&self) -> i64 {
        match self {
            Rec::Session { at, .. } | Rec::Subject { at, .. } | Rec::Watermark { at } => *at,
        }
    }

    fn live(&self) -> bool {
        match self {
            Rec::Session { exp, .. } | Rec::Subject { exp, .. } => *exp > NOW,
            Rec::Watermark { .. } => true,
        }
    }

    fn is(&self, e: &RevocationEntry) -> bool {
        match self {
            Rec::Session { sid, exp, at } => {
                e.before.is_none() && e.id == *sid && e.expires_at == *exp && e.revoked_at == *at
            }
            Rec::Subject {
                sub,
                before,
                exp,
                at,
            } => {
                e.before == Some(*before)
                    && e.id == *sub
                    && e.expires_at == *exp
                    && e.revoked_at == *at
            }
            Rec::Watermark { .. } => false,
        }
    }
}

fn sorted(mut entries: Vec<RevocationEntry>) -> Vec<RevocationEntry> {
    entries.sort_by(|a, b| {
        (&a.id, a.before, a.revoked_at, a.expires_at).cmp(&(
            &b.id,
            b.before,
            b.revoked_at,
            b.expires_at,
        ))
    });
    entries
}

fuzz_target!(|data: &[u8]| {
    // Line by line.
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    let mut unreadable = 0;
    for line in data.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let s = summarize_journal(line);
        let counts = [s.sessions, s.subjects, s.watermarks, s.unreadable];
        assert_eq!(
            counts.iter().sum::<usize>(),
            1,
            "one line, one verdict: {counts:?}"
        );
        if s.unreadable == 1 {
            unreadable += 1;
            rejected.extend_from_slice(line);
            rejected.push(b'\n');
        } else {
            records.push(Rec::read(
                line,
                counts.iter().position(|c| *c == 1).unwrap(),
            ));
        }
    }
    let whole = summarize_journal(data);
    let count = |k: usize| {
        records
            .iter()
            .filter(|r| {
                matches!(
                    (k, r),
                    (0, Rec::Session { .. })
                        | (1, Rec::Subject { .. })
                        | (2, Rec::Watermark { .. })
                )
            })
            .count()
    };
    assert_eq!(
        (
            whole.sessions,
            whole.subjects,
            whole.watermarks,
            whole.unreadable
        ),
        (count(0), count(1), count(2), unreadable)
    );

    // Open it.
    let path = DIR.join("journal.jsonl");
    let rejected_path = DIR.join("journal.jsonl.rejected");
    let _ = std::fs::remove_file(&rejected_path);
    std::fs::write(&path, data).unwrap();
    let clock = ManualClock::new(NOW);
    let open = || {
        MemoryDenylist::builder()
            .capacity(CAPACITY)
            .journal(&path)
            .build(&clock)
    };
    let store = open().expect("opening a journal fails on contents alone");

    // Unreadable lines kept aside, byte for byte.
    match std::fs::read(&rejected_path) {
        Ok(kept) => assert_eq!(
            kept, rejected,
            "<journal>.rejected is not the unreadable lines"
        ),
        Err(_) => assert!(
            rejected.is_empty(),
            "{unreadable} unreadable lines not kept aside"
        ),
    }

    // Every live loaded record kept (the latest per revocation), or evicted under the watermark.
    let mut latest: HashMap<(bool, &str), &Rec> = HashMap::new();
    let mut watermark = i64::MIN;
    for record in records.iter().filter(|r| r.live()) {
        match record.key() {
            Some(key) => drop(latest.insert(key, record)),
            None => watermark = watermark.max(record.at()),
        }
    }
    let held = store.snapshot();
    assert_eq!(
        held.len(),
        latest.len().min(CAPACITY),
        "held {held:?} of {latest:?}"
    );
    assert_eq!(store.len(), held.len());
    for e in &held {
        let record = latest.get(&(e.before.is_some(), e.id.as_str()));
        assert!(
            record.is_some_and(|r| r.is(e)),
            "held {e:?}, latest live record {record:?}"
        );
    }
    let oldest_held = held.iter().map(|e| e.revoked_at).min().unwrap_or(i64::MAX);
    for record in latest.values() {
        let kept = held.iter().any(|e| record.is(e));
        if !kept {
            assert!(
                record.at() <= oldest_held,
                "evicted {record:?} but kept an older one: {held:?}"
            );
            watermark = watermark.max(record.at());
        }
    }
    let watermark = Some(watermark).filter(|w| *w != i64::MIN);
    assert_eq!(store.watermark(), watermark, "watermark");

    // The compacted journal is that state.
    let compacted = summarize_journal(&std::fs::read(&path).unwrap());
    let subjects = held.iter().filter(|e| e.is_subject()).count();
    assert_eq!(
        (
            compacted.sessions,
            compacted.subjects,
            compacted.watermarks,
            compacted.unreadable
        ),
        (
            held.len() - subjects,
            subjects,
            usize::from(watermark.is_some()),
            0
        ),
        "compacted journal"
    );
    drop(store);
    let again = open().expect("reopening the compacted journal");
    assert_eq!(sorted(again.snapshot()), sorted(held), "reopened state");
    assert_eq!(again.watermark(), watermark, "reopened watermark");
    match std::fs::read(&rejected_path) {
        Ok(kept) => assert_eq!(kept, rejected, "reopening rejected a compacted line"),
        Err(_) => assert!(rejected.is_empty()),
    }

    again.sweep(i64::MAX);
    assert_eq!(again.len(), 0);
});
