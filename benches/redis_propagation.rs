//! Propagation of revocations across three instances under load (issue 15): three
//! [`RedisDenylist`]s on one `redis-server`, 1,000 logouts per second for `SECONDS`
//! seconds, each made on A, B and C in turn; for each logout, the time from the
//! `revoke_session` call on its instance until **both** other instances' mirrors refuse it
//! (`is_revoked`, what the layer asks on every request). Prints p50, p90, p99 and max, the
//! rate reached, and the same for 1,000 logouts made one at a time (each waited for)
//! as the unloaded reference measured in the same run.
//!
//! An observer thread scans the logouts not yet seen everywhere every ~50 µs, so figures
//! are upper bounds by about that much. Everything — Redis, three instances, the pacer and
//! the observer — shares the machine's cores.
//!
//! `cargo bench --features redis --bench redis_propagation`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwt_session::testing::TestKit;
use jwt_session::{RedisDenylist, RedisDenylistOptions, RevocationStore, TokenFacts};
use redis_server::RedisServer;

const RATE: u64 = 1_000;
const SECONDS: u64 = 10;
const SEQUENTIAL: usize = 1_000;

/// A logout made at `at` on instance `origin`, not yet seen on every other instance.
struct Pending {
    sid: String,
    origin: usize,
    at: Instant,
    seen: [bool; 3],
}

fn facts(sid: &str) -> TokenFacts<'_> {
    TokenFacts {
        sid,
        sub: "bench-user",
        auth_time: 1_767_225_600,
        lat: 1_767_225_600,
        generation: 0,
    }
}

fn revoked(store: &RedisDenylist, sid: &str) -> bool {
    store.is_revoked(facts(sid)).unwrap_or(false)
}

/// Scan `pending` until `done` and it is empty; push each delay to `delays`.
fn observe(
    stores: &[Arc<RedisDenylist>; 3],
    pending: &Mutex<Vec<Pending>>,
    done: &AtomicBool,
    delays: &Mutex<Vec<Duration>>,
) {
    loop {
        let finished = done.load(Ordering::Acquire);
        let mut list = pending.lock().unwrap();
        let now = Instant::now();
        list.retain_mut(|p| {
            for (i, store) in stores.iter().enumerate() {
                if i != p.origin && !p.seen[i] && revoked(store, &p.sid) {
                    p.seen[i] = true;
                }
            }
            let everywhere = (0..3).all(|i| i == p.origin || p.seen[i]);
            if everywhere {
                delays.lock().unwrap().push(now - p.at);
            }
            !everywhere
        });
        let empty = list.is_empty();
        drop(list);
        if finished && empty {
            return;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn report(label: &str, mut delays: Vec<Duration>, elapsed: Duration) {
    delays.sort();
    let at = |q: f64| {
        let i = ((delays.len() as f64 * q).ceil() as usize).clamp(1, delays.len()) - 1;
        delays[i].as_secs_f64() * 1e3
    };
    println!(
        "{label}: {} logouts in {:.2} s ({:.0}/s): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        delays.len(),
        elapsed.as_secs_f64(),
        delays.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
    );
}

fn main() {
    let Some(redis) = RedisServer::start("nothing measured") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kit = TestKit::new();
    let policy = *kit.config().policy();
    let stores: [Arc<RedisDenylist>; 3] = std::array::from_fn(|_| {
        rt.block_on(async {
            let options = RedisDenylistOptions::default().clock(kit.config().clock_handle());
            let store = RedisDenylist::connect(&redis.url(), options).unwrap();
            assert!(store.wait_ready(Duration::from_secs(10)).await);
            store
        })
    });
    let revoke = |origin: usize, sid: &str| {
        stores[origin]
            .revoke_session(sid, kit.now(), &policy, kit.config().clock())
            .unwrap();
    };

    // The unloaded reference: one logout at a time, each waited for everywhere.
    let mut delays = Vec::with_capacity(SEQUENTIAL);
    let started = Instant::now();
    for n in 0..SEQUENTIAL {
        let sid = format!("sequential-{n}");
        let origin = n % 3;
        let at = Instant::now();
        revoke(origin, &sid);
        while !(0..3).all(|i| i == origin || revoked(&stores[i], &sid)) {
            std::hint::spin_loop();
            assert!(at.elapsed() < Duration::from_secs(10), "never propagated");
        }
        delays.push(at.elapsed());
    }
    report("one at a time", delays, started.elapsed());

    // Under load: RATE logouts per second, paced by the clock, observed meanwhile.
    let pending = Mutex::new(Vec::<Pending>::new());
    let done = AtomicBool::new(false);
    let delays = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| observe(&stores, &pending, &done, &delays));
        let total = RATE * SECONDS;
        let every = Duration::from_secs(1) / u32::try_from(RATE).unwrap();
        for n in 0..total {
            let due = started + every * u32::try_from(n).unwrap();
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let sid = format!("load-{n}");
            let origin = usize::try_from(n % 3).unwrap();
            let at = Instant::now();
            revoke(origin, &sid);
            pending.lock().unwrap().push(Pending {
                sid,
                origin,
                at,
                seen: [false; 3],
            });
        }
        done.store(true, Ordering::Release);
    });
    report(
        &format!("{RATE} logouts/s"),
        delays.into_inner().unwrap(),
        started.elapsed(),
    );
    for store in &stores {
        assert!(rt.block_on(store.flush(Duration::from_secs(30))));
    }
}
