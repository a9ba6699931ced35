//! Resync of the Redis revocation backend (issue 15): how long an instance takes to
//! become ready, and to catch up after a partition.
//!
//! * `cold start` — an instance starts with N live revocations in Redis (100,000 and
//!   1,000,000, written beforehand by a pipelined bulk writer, expiries spread over an
//!   hour): time from [`RedisDenylist::connect`] until [`RedisDenylist::wait_ready`]
//!   returns (the 503 window of a fail-closed start), and the mirror then holds all N.
//!   Once with the revocations in per-revocation keys (the layout before buckets: what an
//!   upgraded instance reads), once in per-minute buckets (the layout written now);
//!   `RESYNC_LAYOUTS=legacy` or `=buckets` runs one of them;
//! * `reconnect` — with 1,000,000 live revocations in Redis, an instance behind a TCP
//!   proxy is cut off while another one revokes 10,000 sessions; time from the proxy's
//!   restore until the instance reports `connected` again (its resync done), first with
//!   the change log (incremental read), then without it (`change_log_len(0)`: the full
//!   read: `SCAN`, then every bucket).
//!
//! Starts its own `redis-server` on a free loopback port. Prints one line per figure.
//! Not criterion: each figure is one long operation, repeated `RUNS` times (median and
//! min printed; `RESYNC_RUNS=n` repeats each cold start `n` times instead).
//!
//! `cargo bench --features redis --bench redis_resync`; `RESYNC_PHASES=cold` runs only the
//! cold starts (the reconnect phase alone takes minutes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwt_session::testing::TestKit;
use jwt_session::{RedisDenylist, RedisDenylistOptions, RevocationStore};

const RUNS: usize = 3;
const MISSED: usize = 10_000;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

/// How the bench writes revocations to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// As the denylist writes them: hashes per minute of expiry (`HSET` + `PEXPIRE`).
    Buckets,
    /// One string key each (`SET … PX`), as versions before buckets wrote them (and as
    /// `write_legacy_keys` still does): what an upgraded instance reads first.
    Legacy,
}

/// A session id as the crate mints them (16 bytes, base64url), distinct for each `i`.
fn sid(i: usize) -> String {
    use base64::Engine as _;
    let i = i as u64;
    let mut raw = [0_u8; 16];
    raw[..8].copy_from_slice(&i.to_be_bytes());
    raw[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Write `n` live session revocations (as the denylist writes them in `layout`), their
/// expiries spread over the next hour (as logouts spread over an idle timeout would be),
/// with pipelines of 10,000 writes, replacing whatever the namespace held.
fn bulk_load(url: &str, n: usize, now: i64, layout: Layout) {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("FLUSHALL").exec(&mut con).unwrap();
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        let mut minutes = Vec::new();
        for &i in chunk {
            let sid = sid(i);
            let exp = now + 60 + (i % 3600) as i64;
            let payload = format!(r#"{{"t":"s","sid":"{sid}","exp":{exp},"at":{now}}}"#);
            let minute = exp.div_euclid(60) + 1;
            let ttl_ms = (minute * 60 - now) * 1000;
            match layout {
                Layout::Buckets => {
                    pipe.cmd("HSET")
                        .arg(format!("jwt-session:revoked:b:{minute}"))
                        .arg(format!("sid:{sid}"))
                        .arg(payload)
                        .ignore();
                    if !minutes.contains(&(minute, ttl_ms)) {
                        minutes.push((minute, ttl_ms));
                    }
                }
                Layout::Legacy => {
                    pipe.cmd("SET")
                        .arg(format!("jwt-session:revoked:sid:{sid}"))
                        .arg(payload)
                        .arg("PX")
                        .arg((exp - now) * 1000)
                        .ignore();
                }
            }
        }
        for (minute, ttl_ms) in minutes {
            pipe.cmd("PEXPIRE")
                .arg(format!("jwt-session:revoked:b:{minute}"))
                .arg(ttl_ms)
                .ignore();
        }
        pipe.exec(&mut con).unwrap();
    }
    let keys: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    let memory: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    let used = memory
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    eprintln!(
        "  (loaded {n} revocations, {layout:?}, in {:?}: {keys} keys, Redis used_memory \
         {:.1} MB, {:.0} B per revocation)",
        started.elapsed(),
        used / 1e6,
        used / n as f64
    );
}

fn options(kit: &TestKit) -> RedisDenylistOptions {
    RedisDenylistOptions::default()
        .clock(kit.config().clock_handle())
        .capacity(2_000_000)
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(10))
        .health_check_interval(Duration::from_millis(50))
        .response_timeout(Duration::from_secs(30))
}

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label}: median {:.3} s, min {:.3} s over {} runs",
        times[times.len() / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times.len()
    );
}

async fn cold_start(kit: &TestKit, url: &str, n: usize, layout: Layout) {
    bulk_load(url, n, kit.now(), layout);
    let mut times = Vec::new();
    let runs = std::env::var("RESYNC_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(RUNS);
    for _ in 0..runs {
        let started = Instant::now();
        let store = RedisDenylist::connect(url, options(kit)).unwrap();
        assert!(store.wait_ready(Duration::from_secs(120)).await);
        times.push(started.elapsed());
        assert_eq!(store.len(), n, "not everything was read");
        drop(store);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let label = match layout {
        Layout::Buckets => "",
        Layout::Legacy => " (layout before buckets)",
    };
    summary(&format!("cold start, {n} live revocations{label}"), times);
}

/// Forwards a loopback port to Redis; `cut` drops every connection and refuses new ones
/// until `restore`.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                            .await
                            .ok();
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { port, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

async fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// C (behind the proxy) misses `MISSED` revocations made by A, then reconnects: the time
/// from the restore until C has resynced.
async fn reconnect(kit: &TestKit, redis: &RedisServer, label: &str, c_opts: RedisDenylistOptions) {
    let proxy = Proxy::start(redis.1).await;
    let a = RedisDenylist::connect(&redis.url(), options(kit)).unwrap();
    let c = RedisDenylist::connect(&format!("redis://127.0.0.1:{}/", proxy.port), c_opts).unwrap();
    assert!(a.wait_ready(Duration::from_secs(120)).await);
    assert!(
        c.wait_ready(Duration::from_secs(120)).await,
        "C not ready: {:?}",
        c.status()
    );
    let (policy, clock) = (kit.config().policy(), kit.config().clock());
    let mut times = Vec::new();
    for run in 0..RUNS {
        // One revocation C hears, so that it has a change-log position to resume from.
        let (_, seen) = kit.mint(&format!("seen{run}"), ()).unwrap();
        a.revoke_session(&seen.sid, seen.auth_time, policy, clock)
            .unwrap();
        wait("C hears it", || {
            c.is_revoked(jwt_session::TokenFacts {
                sid: &seen.sid,
                sub: "",
                auth_time: seen.auth_time,
                lat: seen.auth_time,
                generation: 0,
            })
            .unwrap_or(false)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await; // its position moves there
        proxy.cut();
        wait("C notices", || !c.status().connected).await;
        let missed: Vec<_> = (0..MISSED)
            .map(|i| kit.mint(&format!("r{run}-{i}"), ()).unwrap().1)
            .collect();
        for s in &missed {
            a.revoke_session(&s.sid, s.auth_time, policy, clock)
                .unwrap();
        }
        assert!(a.flush(Duration::from_secs(120)).await);
        let held = c.len();
        let started = Instant::now();
        proxy.open.store(true, Ordering::SeqCst);
        wait("C resyncs", || c.status().connected).await;
        times.push(started.elapsed());
        assert!(c.len() >= held + MISSED, "C missed revocations");
    }
    println!("  {label}: {:?}", c.status());
    summary(
        &format!("reconnect after {MISSED} missed revocations, {label}"),
        times,
    );
}

fn main() {
    let Some(redis) = RedisServer::start("nothing measured") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let kit = TestKit::new();
        let layouts = std::env::var("RESYNC_LAYOUTS").unwrap_or_default();
        for layout in [Layout::Legacy, Layout::Buckets] {
            let name = format!("{layout:?}").to_lowercase();
            if layouts.is_empty() || layouts.split(',').any(|l| l == name) {
                for n in [100_000, 1_000_000] {
                    cold_start(&kit, &redis.url(), n, layout).await;
                }
            }
        }
        if std::env::var("RESYNC_PHASES").is_ok_and(|p| p == "cold") {
            return;
        }
        // 1M live revocations in Redis (the last cold start's), plus what A adds.
        reconnect(&kit, &redis, "change log (incremental)", options(&kit)).await;
        reconnect(
            &kit,
            &redis,
            "no change log (full read)",
            options(&kit).change_log_len(0), // new-api
        )
        .await;
    });
}
