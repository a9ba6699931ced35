//! Reads with the Redis backend vs the memory backend (issue "Revocation across many
//! instances on Redis": reads must stay local, the same speed).
//!
//! * `is_revoked/<backend>/<hit|miss>` — one revocation check against 100,000 held
//!   revocations;
//! * `request/<backend>` — one `GET /api/me` through a `SessionLayer` (`oneshot`, token
//!   cache warm);
//! * `requests_parallel/<backend>` — the same from 8 concurrent tasks on a 4-thread
//!   runtime (throughput in requests/s).
//!
//! Starts its own `redis-server` on a free loopback port (the Redis half is skipped with a
//! `SKIPPED:` line if the binary is missing).
//!
//! `cargo bench --features redis --bench denylist_redis -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, StatusCode};
use jwt_session::TokenFacts;
use jwt_session::testing::TestKit;
use jwt_session::{
    MemoryDenylist, RedisDenylist, RedisDenylistOptions, RevocationStore, Session, SessionLayer,
};
use tower::ServiceExt as _;

const HELD: usize = 100_000;
const TASKS: u64 = 8;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

fn facts(sid: &str) -> TokenFacts<'_> {
    TokenFacts {
        sid,
        sub: "bench-user",
        auth_time: 1_767_225_600,
        lat: 1_767_225_600,
        generation: 0,
    }
}

fn app(kit: &TestKit, store: Arc<dyn RevocationStore>) -> Router {
    Router::new()
        .route(
            "/api/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(SessionLayer::<()>::new(kit.config().clone(), store))
}

fn denylist_reads(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let kit = TestKit::new();
    let policy = *kit.config().policy();
    let clock = kit.config().clock();
    let redis = RedisServer::start("benchmarking the memory backend only");

    let memory: Arc<dyn RevocationStore> = MemoryDenylist::builder().build(clock).unwrap();
    let mut backends = vec![("memory", memory)];
    let mut redis_store = None;
    if let Some(server) = &redis {
        let url = server.url();
        let options = RedisDenylistOptions::default().clock(kit.config().clock_handle());
        let store = rt.block_on(async {
            let store = RedisDenylist::connect(&url, options).unwrap();
            assert!(store.wait_ready(Duration::from_secs(5)).await);
            store
        });
        backends.push(("redis", store.clone()));
        redis_store = Some(store);
    }
    for (_, store) in &backends {
        for i in 0..HELD {
            store
                .revoke_session(&format!("revoked-{i}"), kit.now(), &policy, clock)
                .unwrap();
        }
    }
    if let Some(store) = &redis_store {
        // Let the publisher drain (and the echoes arrive) so that the reads below race
        // nothing but themselves.
        assert!(rt.block_on(store.flush(Duration::from_secs(60))));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(store.len(), HELD);
    }

    let mut group = c.benchmark_group("is_revoked");
    for (name, store) in &backends {
        group.bench_function(format!("{name}/hit"), |b| {
            b.iter(|| store.is_revoked(black_box(facts("revoked-4242"))).unwrap())
        });
        group.bench_function(format!("{name}/miss"), |b| {
            b.iter(|| store.is_revoked(black_box(facts("live-session"))).unwrap())
        });
    }
    group.finish();

    let cookie = kit.cookie("alice");
    let request = |cookie: &str| {
        Request::get("/api/me")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap()
    };
    let mut group = c.benchmark_group("request");
    for (name, store) in &backends {
        let app = app(&kit, store.clone());
        let res = rt.block_on(app.clone().oneshot(request(&cookie))).unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        group.bench_function(*name, |b| {
            b.iter(|| rt.block_on(app.clone().oneshot(request(&cookie))).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("requests_parallel");
    group.throughput(Throughput::Elements(1));
    for (name, store) in &backends {
        let app = app(&kit, store.clone());
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let per_task = iters.div_ceil(TASKS);
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|_| {
                            let (app, cookie) = (app.clone(), cookie.clone());
                            tokio::spawn(async move {
                                for _ in 0..per_task {
                                    let res = app.clone().oneshot(request(&cookie)).await.unwrap();
                                    assert_eq!(res.status(), StatusCode::OK);
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_task * TASKS) as f64)
                })
            })
        });
    }
    group.finish();
    drop(backends);
    drop(redis_store);
    drop(redis);
}

criterion_group!(benches, denylist_reads);
criterion_main!(benches);
