//! Arbitrary file contents as a revocation journal: reading never panics, unreadable
//! lines are counted, and loading into a small-capacity denylist (with eviction and
//! compaction) succeeds and stays within capacity.
#![no_main]

use jwt_session::denylist::summarize_journal;
use jwt_session::{ManualClock, MemoryDenylist, RevocationStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let summary = summarize_journal(data);
    let lines = data.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
    assert_eq!(summary.sessions + summary.subjects + summary.watermarks + summary.unreadable, lines);

    let dir = std::env::temp_dir().join(format!("jwt-session-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.jsonl");
    std::fs::write(&path, data).unwrap();
    let clock = ManualClock::new(1_767_225_600);
    let store = MemoryDenylist::builder().capacity(4).journal(&path).build(&clock).unwrap();
    assert!(store.len() <= 4);
    store.sweep(i64::MAX);
    assert_eq!(store.len(), 0);
});
