//! The session registry on the request path (issue 13), in one run:
//!
//! * `registry/plain/{off,on}` — a protected request inside `reissue_after` (the common
//!   case: the registry is neither written nor read), through the whole router, without and
//!   with a `MemoryRegistry`;
//! * `registry/reissue/{off,on}` — a request that is reissued (one signature, and with the
//!   registry one write);
//! * `registry/login/{off,on}` — a login (one signature, one write).
//!
//! Then an interleaved A/B of the plain request (rounds alternating off and on, the median
//! of the per-round ratios), and what the registry holds per session: process RSS growth
//! over 200,000 sessions in a `MemoryRegistry` (2 per user, real-shaped user agents and
//! truncated IPs), the journal's bytes per session, and — with `--features redis` and a
//! `redis-server` on the PATH — Redis's `used_memory` growth per session.
//!
//! `cargo bench --bench registry` (add `--features redis` for the Redis figure;
//! `-- --quick` for a shorter run). The figures are in BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use criterion::Criterion;
use jwt_session::IpPolicy;
use jwt_session::{
    Claims, Clock as _, Keyring, Login, ManualClock, MemoryDenylist, MemoryRegistry, SessionConfig,
    SessionLayer, SessionRegistry,
};
use tower::ServiceExt as _;

/// A Chrome user agent (the most common shape, 111 characters).
const AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                     Gecko) Chrome/131.0.0.0 Safari/537.36";

fn config(clock: &ManualClock) -> SessionConfig {
    let key = jwt_session::generate_key(jwt_session::Algorithm::EdDSA, "b-")
        .unwrap()
        .key;
    SessionConfig::builder(Keyring::new(key).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn routes() -> Router {
    Router::new()
        .route(
            "/protected",
            get(|s: jwt_session::Session| async move {
                drop(s);
                "ok"
            }),
        )
        .route(
            "/login/{user}",
            post(|Path(user): Path<String>| async move { (Login::new(user, ()).unwrap(), "in") }),
        )
}

/// The router behind a layer, with or without a registry (client IPs kept truncated from a
/// trusted header, as behind a proxy).
fn app(config: &SessionConfig, registry: Option<Arc<dyn SessionRegistry>>) -> Router {
    let mut layer =
        SessionLayer::<()>::new(config.clone(), MemoryDenylist::with_capacity(1000).unwrap());
    if let Some(registry) = registry {
        layer = layer.with_registry(registry).registry_ip(
            IpPolicy::Truncated,
            Some(http::HeaderName::from_static("x-forwarded-for")),
        );
    }
    routes().layer(layer)
}

fn request(method: &str, uri: &str, cookie: Option<&str>) -> http::Request<Body> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("user-agent", AGENT)
        .header("x-forwarded-for", "203.0.113.77");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    req.body(Body::empty()).unwrap()
}

/// A session cookie minted at `at`.
fn cookie(config: &SessionConfig, sub: &str, at: i64) -> String {
    let claims = Claims::new(sub, (), at, config.policy(), "jwt-session", "jwt-session").unwrap();
    format!(
        "{}={}",
        config.cookie().name(),
        config.codec().encode(&claims).unwrap()
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn send(rt: &tokio::runtime::Runtime, app: &Router, req: http::Request<Body>) -> u16 {
    rt.block_on(app.clone().oneshot(req))
        .unwrap()
        .status()
        .as_u16()
}

fn benches(c: &mut Criterion) {
    let rt = rt();
    let clock = ManualClock::default();
    let config = config(&clock);
    let registry =
        || -> Arc<dyn SessionRegistry> { MemoryRegistry::builder().build(&clock).unwrap() };
    let apps = [
        ("off", app(&config, None)),
        ("on", app(&config, Some(registry()))),
    ];

    // Plain: a token minted now, used now (well inside reissue_after).
    let fresh = cookie(&config, "alice", clock.now());
    let mut group = c.benchmark_group("registry/plain");
    for (name, app) in &apps {
        assert_eq!(
            send(&rt, app, request("GET", "/protected", Some(&fresh))),
            200
        );
        group.bench_function(*name, |b| {
            b.iter(|| {
                send(
                    &rt,
                    app,
                    request("GET", "/protected", Some(black_box(&fresh))),
                )
            })
        });
    }
    group.finish();

    // Reissue: a token from 61 s ago; every request reissues it (and writes the registry).
    let old = cookie(&config, "bob", clock.now() - 61);
    let mut group = c.benchmark_group("registry/reissue");
    for (name, app) in &apps {
        let res = rt
            .block_on(
                app.clone()
                    .oneshot(request("GET", "/protected", Some(&old))),
            )
            .unwrap();
        assert!(res.headers().contains_key("set-cookie"), "reissued");
        group.bench_function(*name, |b| {
            b.iter(|| {
                send(
                    &rt,
                    app,
                    request("GET", "/protected", Some(black_box(&old))),
                )
            })
        });
    }
    group.finish();

    // Login: one signature and (on) one write of a new session; 1,000 users, so the
    // per-user bound (50) keeps trimming as a busy registry does.
    let mut group = c.benchmark_group("registry/login");
    for (name, app) in &apps {
        let mut i = 0_u32;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let uri = format!("/login/user{}", i % 1000);
                send(&rt, app, request("POST", &uri, None))
            })
        });
    }
    group.finish();
}

/// Alternate rounds of `n` plain requests without and with the registry; the median of
/// the per-round ratios (on / off) and the medians of each.
fn interleaved() {
    let rt = rt();
    let clock = ManualClock::default();
    let config = config(&clock);
    let off = app(&config, None);
    let on = app(
        &config,
        Some(MemoryRegistry::builder().build(&clock).unwrap()),
    );
    let fresh = cookie(&config, "alice", clock.now());
    let round = |app: &Router, n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(send(&rt, app, request("GET", "/protected", Some(&fresh))));
        }
        start.elapsed() / n
    };
    round(&off, 20_000);
    round(&on, 20_000);
    let (mut offs, mut ons, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..21 {
        // Alternate which goes first, so drift does not favour one.
        let (a, b) = if i % 2 == 0 {
            let a = round(&off, 20_000);
            (a, round(&on, 20_000))
        } else {
            let b = round(&on, 20_000);
            (round(&off, 20_000), b)
        };
        offs.push(a);
        ons.push(b);
        ratios.push(b.as_secs_f64() / a.as_secs_f64());
    }
    offs.sort();
    ons.sort();
    ratios.sort_by(f64::total_cmp);
    println!(
        "interleaved plain request, 21 rounds × 20,000: off {:?}, on {:?} (medians); on/off \
         median of per-round ratios {:.3} (range {:.3}–{:.3})",
        offs[10], ons[10], ratios[10], ratios[0], ratios[20]
    );
}

/// Resident set size of this process, in bytes (Linux).
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Log in `n` sessions (2 per user) through a layer with `registry`.
fn fill(registry: Arc<dyn SessionRegistry>, clock: &ManualClock, n: u32) {
    let rt = rt();
    let config = SessionConfig::builder(
        Keyring::new(jwt_session::Key::hs256("h", &[7; 32]).unwrap()).unwrap(),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let app = app(&config, Some(registry));
    for i in 0..n {
        let uri = format!("/login/user{:07}", i / 2);
        assert_eq!(send(&rt, &app, request("POST", &uri, None)), 200);
    }
}

fn memory() {
    const N: u32 = 200_000;
    let clock = ManualClock::default();
    let before = rss();
    let registry = MemoryRegistry::builder().build(&clock).unwrap();
    fill(registry.clone(), &clock, N);
    let after = rss();
    assert_eq!(registry.len(), N as usize);
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "MemoryRegistry: {N} sessions, RSS {:.1} MiB -> {:.1} MiB: {} bytes per session \
             (process growth, layer and runtime included)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            (after - before) / u64::from(N)
        );
    }
    let sample = registry.list("user0000000", clock.now());
    println!(
        "  an entry: {} (sub {} B, user agent {} B, ip {:?})",
        serde_json::to_string(&sample[0]).unwrap().len(),
        sample[0].sub.len(),
        sample[0].user_agent.as_ref().map_or(0, String::len),
        sample[0].ip
    );
    drop(registry);

    let dir = std::env::temp_dir().join(format!("registry-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sessions.jsonl");
    let journaled = MemoryRegistry::builder()
        .journal(&path)
        .build(&clock)
        .unwrap();
    fill(journaled.clone(), &clock, 20_000);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "  journal: {} bytes per session (20,000 sessions)",
        bytes / 20_000
    );
    drop(journaled);
    std::fs::remove_dir_all(&dir).ok();

    #[cfg(feature = "redis")]
    redis_memory(&clock);
}

#[cfg(feature = "redis")]
fn redis_memory(clock: &ManualClock) {
    use std::process::{Command, Stdio};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(mut child) = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
    else {
        println!("RedisRegistry: redis-server not found, not measured");
        return;
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let client = redis::Client::open(url.as_str()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut con = loop {
        if let Ok(con) = client.get_connection() {
            break con;
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let used = |con: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = used(&mut con);
    const N: u32 = 100_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Connected on the multi-threaded runtime (its writer keeps running there); `fill`
    // drives the layer on a runtime of its own.
    let registry = rt
        .block_on(async {
            jwt_session::RedisRegistry::connect(
                &url,
                jwt_session::RedisRegistryOptions::default()
                    .clock(Arc::new(clock.clone()))
                    .queue_capacity(usize::MAX / 2),
            )
        })
        .unwrap();
    let started = Instant::now();
    fill(registry.clone(), clock, N);
    let queued = started.elapsed();
    assert!(rt.block_on(registry.flush(Duration::from_secs(120))));
    let written = started.elapsed();
    let after = used(&mut con);
    println!(
        "RedisRegistry: {N} sessions, used_memory {:.1} MiB -> {:.1} MiB: {} bytes per session; \
         {N} logins queued in {queued:?}, all written after {written:?}",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        (after - before) / u64::from(N)
    );
    drop(registry);
    child.kill().ok();
    child.wait().ok();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    // Memory first, in a fresh process (RSS is not given back).
    memory();
    benches(&mut c);
    c.final_summary();
    interleaved();
}
