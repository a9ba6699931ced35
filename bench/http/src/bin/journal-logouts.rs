//! Logouts per second of ONE process whose `MemoryDenylist` keeps a journal on disk
//! (issue 15, journal group commit): CALLERS threads each call `revoke_session` in a loop
//! on one `Arc<MemoryDenylist>` built with `.journal(path)`, for SECONDS each. Every call
//! that returns `Ok` was fsynced by then (the store's promise), so this is the rate at
//! which a process can acknowledge durable logouts.
//!
//! ```text
//! journal-logouts LABEL DIR SECONDS CALLERS...
//! ```
//!
//! For each CALLERS value, a fresh journal `DIR/journal-LABEL-CALLERS.jsonl` (removed
//! afterwards). Prints one tab-separated line per run:
//! `label callers logouts seconds logouts_per_s p50_us p99_us max_us errors`.
//! The same source builds against any version of the crate (it uses only the builder
//! and `RevocationStore`), so bench/journal.sh runs it against the base commit too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jwt_session::{MemoryDenylist, Policy, RevocationStore, SystemClock};

fn run(label: &str, dir: &Path, seconds: f64, callers: usize) {
    let path: PathBuf = dir.join(format!("journal-{label}-{callers}.jsonl"));
    let _ = std::fs::remove_file(&path);
    let clock = SystemClock;
    let policy = Policy::new(30 * 60, 8 * 3600, 60, 5).expect("default policy");
    let list: Arc<MemoryDenylist> = MemoryDenylist::builder()
        .capacity(10_000_000)
        .journal(&path)
        .build(&clock)
        .expect("journal opens");
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..callers)
        .map(|t| {
            let list = Arc::clone(&list);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
                let mut errors = 0u64;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // 22 characters, like a real session id.
                    let sid = format!("s{t:04}-{i:016}");
                    i += 1;
                    let began = Instant::now();
                    if list
                        .revoke_session(&sid, 1_000_000, &policy, &clock)
                        .is_err()
                    {
                        errors += 1;
                    }
                    let us = began.elapsed().as_micros();
                    latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                (latencies, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.join().expect("worker");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let n = latencies.len();
    println!(
        "{label}\t{callers}\t{n}\t{elapsed:.3}\t{:.0}\t{}\t{}\t{}\t{errors}",
        n as f64 / elapsed,
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(0),
    );
    drop(list);
    let _ = std::fs::remove_file(&path);
    let mut lock = path.into_os_string();
    lock.push(".lock");
    let _ = std::fs::remove_file(lock);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: journal-logouts LABEL DIR SECONDS CALLERS...";
    let (Some(label), Some(dir), Some(seconds)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let seconds: f64 = seconds.parse().expect("SECONDS is a number");
    std::fs::create_dir_all(dir).expect("DIR can be created");
    for callers in &args[3..] {
        let callers: usize = callers.parse().expect("CALLERS is a whole number");
        run(label, Path::new(dir), seconds, callers);
    }
}
