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
//! A CALLERS of `tN` runs N tokio tasks on a multi-threaded runtime of 2 workers instead
//! of N threads, as async handlers would call the store under HTTP load.
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

/// How the callers run: OS threads, or tokio tasks on 2 workers.
#[derive(Clone, Copy)]
enum Callers {
    Threads(usize),
    Tasks(usize),
}

/// What one caller saw: each call's latency (µs), and how many calls failed.
#[derive(Default)]
struct Seen {
    latencies: Vec<u32>,
    errors: u64,
}

impl Seen {
    /// Revoke a fresh session (caller `t`, call `i`) and note how it went.
    fn revoke(&mut self, list: &MemoryDenylist, t: usize, i: u64) {
        let policy = Policy::new(30 * 60, 8 * 3600, 60, 5).expect("default policy");
        // 22 characters, like a real session id.
        let sid = format!("s{t:04}-{i:016}");
        let began = Instant::now();
        if list
            .revoke_session(&sid, 1_000_000, &policy, &SystemClock)
            .is_err()
        {
            self.errors += 1;
        }
        let us = began.elapsed().as_micros();
        self.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
    }
}

fn run(label: &str, dir: &Path, seconds: f64, callers: Callers) {
    let (name, count) = match callers {
        Callers::Threads(n) => (n.to_string(), n),
        Callers::Tasks(n) => (format!("t{n}"), n),
    };
    let path: PathBuf = dir.join(format!("journal-{label}-{name}.jsonl"));
    let _ = std::fs::remove_file(&path);
    let list: Arc<MemoryDenylist> = MemoryDenylist::builder()
        .capacity(10_000_000)
        .journal(&path)
        .build(&SystemClock)
        .expect("journal opens");
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let results: Vec<Seen> = match callers {
        Callers::Threads(_) => {
            let workers: Vec<_> = (0..count)
                .map(|t| {
                    let (list, stop) = (Arc::clone(&list), Arc::clone(&stop));
                    std::thread::spawn(move || {
                        let mut seen = Seen::default();
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            seen.revoke(&list, t, i);
                            i += 1;
                        }
                        seen
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs_f64(seconds));
            stop.store(true, Ordering::Relaxed);
            workers
                .into_iter()
                .map(|w| w.join().expect("worker"))
                .collect()
        }
        Callers::Tasks(_) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let tasks: Vec<_> = (0..count)
                    .map(|t| {
                        let (list, stop) = (Arc::clone(&list), Arc::clone(&stop));
                        tokio::spawn(async move {
                            let mut seen = Seen::default();
                            let mut i = 0;
                            while !stop.load(Ordering::Relaxed) {
                                seen.revoke(&list, t, i);
                                i += 1;
                                // Like a handler: back to the runtime between requests.
                                tokio::task::yield_now().await;
                            }
                            seen
                        })
                    })
                    .collect();
                tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                stop.store(true, Ordering::Relaxed);
                let mut results = Vec::new();
                for task in tasks {
                    results.push(task.await.expect("task"));
                }
                results
            })
        }
    };
    let mut latencies = Vec::new();
    let mut errors = 0;
    for seen in results {
        latencies.extend(seen.latencies);
        errors += seen.errors;
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
        "{label}\t{name}\t{n}\t{elapsed:.3}\t{:.0}\t{}\t{}\t{}\t{errors}",
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
        let callers = match callers.strip_prefix('t') {
            Some(n) => Callers::Tasks(n.parse().expect("tN: N is a whole number")),
            None => Callers::Threads(callers.parse().expect("CALLERS is a whole number")),
        };
        run(label, Path::new(dir), seconds, callers);
    }
}
