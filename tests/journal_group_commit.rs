//! The journal's group commit (issue 15): concurrent revocations share an fsync, and yet
//! each one that returned Ok is on disk: after a restart in the same process, and after
//! the process is killed mid-stream (SIGKILL, nothing flushed on the way out).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use jwt_session::{ManualClock, MemoryDenylist, Policy, RevocationStore};

fn policy() -> Policy {
    Policy::new(30 * 60, 8 * 3600, 60, 5).unwrap()
}

fn journaled(path: &Path, clock: &ManualClock) -> Arc<MemoryDenylist> {
    MemoryDenylist::builder()
        .journal(path)
        .build(clock)
        .unwrap()
}

/// Ids held by a store: revoked sessions and subjects.
fn held(list: &MemoryDenylist) -> HashSet<String> {
    list.snapshot().into_iter().map(|e| e.id).collect()
}

/// 32 threads revoke sessions, retire generations and log users out everywhere at once;
/// a store restarted from the journal holds every one of them whose call returned Ok
/// (all of them: nothing fails here).
#[test]
fn every_acknowledged_concurrent_revocation_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let list = journaled(&path, &clock);
    let workers: Vec<_> = (0..32)
        .map(|t| {
            let (list, clock) = (Arc::clone(&list), Arc::clone(&clock));
            std::thread::spawn(move || {
                let policy = policy();
                let mut acknowledged = Vec::new();
                for i in 0..40 {
                    let id = format!("t{t:02}-{i:02}");
                    let done = match i % 4 {
                        0 => list.revoke_subject(&id, &policy, &*clock).map(|_| ()),
                        1 => list.retire_generations(&id, 3, 999_000, &policy, &*clock),
                        _ => list.revoke_session(&id, 999_000, &policy, &*clock),
                    };
                    done.expect("journal writable");
                    acknowledged.push(id);
                }
                acknowledged
            })
        })
        .collect();
    let acknowledged: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(acknowledged.len(), 32 * 40);
    let before = list.snapshot();
    drop(list);

    let restarted = journaled(&path, &clock);
    let held = held(&restarted);
    for id in &acknowledged {
        assert!(held.contains(id), "{id} acknowledged but not restored");
    }
    assert_eq!(restarted.snapshot(), before, "restored exactly as held");
}

/// From async handlers on a multi-threaded runtime (more tasks than workers, as under
/// HTTP load): every revocation is acknowledged and survives a restart. Waiting for the
/// shared fsync happens inside `block_in_place`, so tasks waiting do not hold up the
/// workers the others need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_from_many_tasks_on_two_workers_all_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let list = journaled(&path, &clock);
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let (list, clock) = (Arc::clone(&list), Arc::clone(&clock));
            tokio::spawn(async move {
                let policy = policy();
                for i in 0..10 {
                    let sid = format!("a{t:02}-{i}");
                    list.revoke_session(&sid, 999_000, &policy, &*clock)
                        .expect("journal writable");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let before = list.snapshot();
    assert_eq!(before.len(), 640);
    drop(list);
    assert_eq!(journaled(&path, &clock).snapshot(), before);
}

const CHILD: &str = "JWT_SESSION_GROUP_COMMIT_CHILD";

/// The child: 16 threads revoking sessions as fast as the journal acknowledges them,
/// printing each id once its call returned Ok, until killed.
fn child(path: &str) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let list = journaled(Path::new(path), &clock);
    let workers: Vec<_> = (0..16)
        .map(|t| {
            let (list, clock) = (Arc::clone(&list), Arc::clone(&clock));
            std::thread::spawn(move || {
                let policy = policy();
                for i in 0.. {
                    let sid = format!("k{t:02}-{i:08}");
                    list.revoke_session(&sid, 999_000, &policy, &*clock)
                        .expect("journal writable");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {sid}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// A process killed while 16 threads revoke: every revocation it acknowledged (printed
/// after its call returned Ok) is in the journal the next process opens; a line torn by
/// the kill is skipped, and spoils no other.
#[test]
fn a_killed_process_keeps_every_revocation_it_acknowledged() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_process_keeps_every_revocation_it_acknowledged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    let mut acknowledged = HashSet::new();
    while acknowledged.len() < 2_000 {
        let line = lines
            .next()
            .expect("the child revokes until killed")
            .unwrap();
        if let Some(sid) = line.strip_prefix("ack ") {
            acknowledged.insert(sid.to_owned());
        }
    }
    process.kill().unwrap();
    process.wait().unwrap();
    // What it printed before it died was acknowledged too.
    for line in lines {
        if let Some(sid) = line.unwrap().strip_prefix("ack ") {
            acknowledged.insert(sid.to_owned());
        }
    }

    let clock = ManualClock::new(1_000_000);
    let restarted = journaled(&path, &clock);
    let held = held(&restarted);
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|sid| !held.contains(*sid))
        .collect();
    assert!(lost.is_empty(), "acknowledged, then lost: {lost:?}");
}
