//! The Redis revocation backend against a real `redis-server` that each test starts on a
//! free loopback port: several in-process instances (each a `RedisDenylist` behind its own
//! `SessionLayer`, sharing keys and a manual clock) prove that a logout on one is refused
//! on the others, that late starters and reconnecting instances resync, that the store
//! fails closed before its first resync, that a Redis restart loses nothing, that keys
//! expire by themselves, and that an `Update` retiring older tokens is shared like a
//! logout.
//!
//! `cargo test --features redis --test redis -- --nocapture` also prints the propagation
//! delay over 1,000 logouts. Without a `redis-server` binary the tests print `SKIPPED:`
//! and pass, except under `CI=true`, where they fail.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::StatusCode;
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{
    RedisDenylist, RedisDenylistOptions, Refusal, RevocationStore, Session, SessionLayer,
    TokenFacts, Update,
};

use support::harness::{get_with, post_with, routes, send};
use support::redis::{Proxy, RedisServer};

// ---------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------

/// One "server": a Redis-backed store behind its own layer. All share the kit's keys
/// and manual clock, as instances behind a load balancer share keys and time.
struct Instance {
    store: Arc<RedisDenylist>,
    app: Router,
}

fn options(kit: &TestKit) -> RedisDenylistOptions {
    RedisDenylistOptions::default()
        .clock(kit.config().clock_handle())
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .health_check_interval(Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
}

/// `POST /update/retire`: the session's data updated in place, older tokens retired.
async fn update_retiring(_s: Session) -> Update {
    Update::new(()).retire_older()
}

fn instance_with(kit: &TestKit, url: &str, options: RedisDenylistOptions) -> Instance {
    let store = RedisDenylist::connect(url, options).unwrap();
    let app = routes()
        .route("/update/retire", post(update_retiring))
        .layer(SessionLayer::<()>::new(kit.config().clone(), store.clone()));
    Instance { store, app }
}

async fn instance(kit: &TestKit, url: &str) -> Instance {
    let i = instance_with(kit, url, options(kit));
    assert!(
        i.store.wait_ready(Duration::from_secs(5)).await,
        "instance not ready: {:?}",
        i.store.status()
    );
    i
}

impl Instance {
    /// `GET /me`: `Ok(())` if accepted, else the refusal.
    async fn me(&self, cookie: &str) -> Result<(), Refusal> {
        let res = send(&self.app, get_with("/me", cookie)).await;
        match res.status() {
            StatusCode::OK => Ok(()),
            status => Err(refusal(&res).unwrap_or_else(|| panic!("{status} without a refusal"))),
        }
    }

    async fn post(&self, path: &str, cookie: &str, csrf: &str) -> http::Response<Body> {
        send(&self.app, post_with(path, cookie, csrf)).await
    }

    async fn logout(&self, s: &Sess) {
        let res = self.post("/session/logout", &s.cookie, &s.csrf).await;
        assert_eq!(res.status(), StatusCode::OK, "logout");
    }

    /// `POST /update/retire` with `s`: 200 and one new token (the next generation of the
    /// same session); returns it as a `Cookie` header.
    async fn update_retiring(&self, kit: &TestKit, s: &Sess) -> String {
        let res = self.post("/update/retire", &s.cookie, &s.csrf).await;
        assert_eq!(res.status(), StatusCode::OK, "update");
        let cookie = kit.set_cookie(&res).expect("the updated cookie");
        assert!(!cookie.is_removal());
        let claims = kit
            .config()
            .codec()
            .decode::<()>(cookie.value.as_bytes())
            .unwrap()
            .claims;
        assert_eq!(claims.sid, s.sid, "the same session");
        assert_eq!(claims.generation, 1, "older tokens retired");
        cookie.as_request_header()
    }

    async fn logout_all(&self, s: &Sess) {
        let res = self.post("/session/logout-all", &s.cookie, &s.csrf).await;
        assert_eq!(res.status(), StatusCode::OK, "logout-all");
    }

    fn revoked(&self, s: &Sess) -> bool {
        self.store
            .is_revoked(TokenFacts {
                sid: &s.sid,
                sub: &s.sub,
                auth_time: s.auth_time,
                lat: s.auth_time,
                generation: 0,
            })
            .unwrap()
    }
}

/// A minted session: what a browser holds.
struct Sess {
    cookie: String,
    csrf: String,
    sid: String,
    sub: String,
    auth_time: i64,
}

fn login(kit: &TestKit, sub: &str) -> Sess {
    let (token, claims) = kit.mint(sub, ()).unwrap();
    Sess {
        cookie: kit.cookie_header(&token),
        csrf: claims.csrf.expose().to_owned(),
        sid: claims.sid.clone(),
        sub: sub.to_owned(),
        auth_time: claims.auth_time,
    }
}

/// Poll `f` until it holds; fail with `what` after `timeout`.
async fn until(timeout: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const CONVERGE: Duration = Duration::from_secs(10);

async fn settled(instances: &[&Instance]) {
    until(
        CONVERGE,
        "every instance connected, nothing pending",
        async || {
            instances.iter().all(|i| {
                let s = i.store.status();
                s.connected && s.pending_publishes == 0
            })
        },
    )
    .await;
}

/// The bucket (hash) holding the revocations that expire at `exp` in the default
/// namespace: the one of the minute that ends after it.
fn bucket(exp: i64) -> String {
    format!("jwt-session:revoked:b:{}", exp.div_euclid(60) + 1)
}

/// `field`, a revocation that lasts until `exp`, is in the bucket of `exp`, which expires
/// at the end of its minute (1 to 60 s after `exp`): its TTL is that end seen from `now`
/// (the test clock's, when the revocation was written).
fn held_until(raw: &mut redis::Connection, now: i64, exp: i64, field: &str) -> serde_json::Value {
    let key = bucket(exp);
    let stored: Option<String> = redis::cmd("HGET").arg(&key).arg(field).query(raw).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored.expect(field)).unwrap();
    assert_eq!(stored["exp"], exp, "{stored}");
    let end = (exp.div_euclid(60) + 1) * 60;
    assert!((1..=60).contains(&(end - exp)));
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(raw).unwrap();
    let want = end - now;
    assert!(
        (want - 1..=want).contains(&ttl),
        "{key}: TTL {ttl}, want {want}"
    );
    stored
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_on_one_instance_is_refused_on_the_others() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let (a, b, c) = (
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
    );
    let alice = login(&kit, "alice");
    let bob = login(&kit, "bob");
    for i in [&a, &b, &c] {
        assert_eq!(i.me(&alice.cookie).await, Ok(()));
    }

    a.logout(&alice).await;
    // Refused on A at once, before anything went through Redis.
    assert_eq!(a.me(&alice.cookie).await, Err(Refusal::Revoked));
    until(CONVERGE, "B and C refuse alice", async || {
        b.me(&alice.cookie).await == Err(Refusal::Revoked)
            && c.me(&alice.cookie).await == Err(Refusal::Revoked)
    })
    .await;
    // Other sessions are untouched.
    for i in [&a, &b, &c] {
        assert_eq!(i.me(&bob.cookie).await, Ok(()));
    }
    settled(&[&a, &b, &c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn propagation_delay_over_1000_logouts() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let (a, b, c) = (
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
    );
    let sessions: Vec<Sess> = (0..1000).map(|i| login(&kit, &format!("u{i}"))).collect();
    let mut delays = Vec::with_capacity(sessions.len());
    for s in &sessions {
        let start = Instant::now();
        a.logout(s).await;
        // Seen as revoked by both other instances' layers.
        let (mut on_b, mut on_c) = (false, false);
        while !(on_b && on_c) {
            on_b = on_b || b.me(&s.cookie).await == Err(Refusal::Revoked);
            on_c = on_c || c.me(&s.cookie).await == Err(Refusal::Revoked);
            assert!(start.elapsed() < CONVERGE, "logout never reached B and C");
            tokio::task::yield_now().await;
        }
        delays.push(start.elapsed());
    }
    delays.sort();
    let (p50, p99, max) = (
        percentile(&delays, 0.50),
        percentile(&delays, 0.99),
        delays[delays.len() - 1],
    );
    eprintln!(
        "propagation (logout on A -> refused on B and C) over {} logouts: p50 {p50:?}, \
         p99 {p99:?}, max {max:?}",
        delays.len()
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    settled(&[&a, &b, &c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_all_refuses_every_session_of_the_subject_everywhere() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let (a, b, c) = (
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
    );
    let alice: Vec<Sess> = (0..3).map(|_| login(&kit, "alice")).collect();
    let bob = login(&kit, "bob");

    a.logout_all(&alice[0]).await;
    until(
        CONVERGE,
        "every alice session refused on A, B and C",
        async || {
            for i in [&a, &b, &c] {
                for s in &alice {
                    if i.me(&s.cookie).await != Err(Refusal::Revoked) {
                        return false;
                    }
                }
            }
            true
        },
    )
    .await;
    for i in [&a, &b, &c] {
        assert_eq!(i.me(&bob.cookie).await, Ok(()), "bob is not alice");
    }
    // A later login of alice is not caught by the old "before" date, on any instance.
    kit.advance(Duration::from_secs(1));
    let again = login(&kit, "alice");
    for i in [&a, &b, &c] {
        assert_eq!(i.me(&again.cookie).await, Ok(()));
    }
    settled(&[&a, &b, &c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_started_after_the_revocation_refuses_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let a = instance(&kit, &redis.url()).await;
    let alice = login(&kit, "alice");
    let bobs: Vec<Sess> = (0..2).map(|_| login(&kit, "bob")).collect();
    let carol = login(&kit, "carol");
    a.logout(&alice).await;
    a.logout_all(&bobs[0]).await;
    settled(&[&a]).await;

    // Started afterwards: it learns both from the resync, before it says ready.
    let late = instance(&kit, &redis.url()).await;
    assert_eq!(late.me(&alice.cookie).await, Err(Refusal::Revoked));
    for s in &bobs {
        assert_eq!(late.me(&s.cookie).await, Err(Refusal::Revoked));
    }
    assert_eq!(late.me(&carol.cookie).await, Ok(()));
    let status = late.store.status();
    assert!(status.ready && status.connected && !status.stale);
    assert!(status.last_resync.is_some());
    assert_eq!(status.summary(), "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fails_closed_until_the_first_resync() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let a = instance(&kit, &redis.url()).await;
    let proxy = Proxy::start(redis.port, false).await; // Redis unreachable for D
    let d = instance_with(&kit, &proxy.url(), options(&kit));

    let alice = login(&kit, "alice");
    let bob = login(&kit, "bob");
    assert!(!d.store.wait_ready(Duration::from_millis(300)).await);
    let status = d.store.status();
    assert!(!status.ready && !status.connected);
    assert_eq!(status.summary(), "not_synced");
    // Every session is refused, 503: D cannot know what was revoked while it was away.
    let res = send(&d.app, get_with("/me", &bob.cookie)).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refusal(&res), Some(Refusal::RevocationUnavailable));
    assert!(
        d.store
            .is_revoked(TokenFacts {
                sid: &bob.sid,
                sub: &bob.sub,
                auth_time: bob.auth_time,
                lat: bob.auth_time,
                generation: 0,
            })
            .is_err()
    );

    // Meanwhile A revokes alice, and D revokes bob (locally at once; queued for Redis).
    a.logout(&alice).await;
    d.store
        .revoke_session(
            &bob.sid,
            bob.auth_time,
            kit.config().policy(),
            kit.config().clock(),
        )
        .unwrap();
    assert_eq!(d.store.status().pending_publishes, 1);

    proxy.restore();
    assert!(d.store.wait_ready(Duration::from_secs(5)).await);
    assert_eq!(d.me(&alice.cookie).await, Err(Refusal::Revoked));
    assert_eq!(d.me(&bob.cookie).await, Err(Refusal::Revoked));
    until(CONVERGE, "D's queued revocation reaches A", async || {
        a.me(&bob.cookie).await == Err(Refusal::Revoked)
    })
    .await;
    settled(&[&a, &d]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_loses_no_revocation() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let (a, b, c) = (
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
    );
    let before = login(&kit, "before");
    let during_a = login(&kit, "during-a");
    let during_b = login(&kit, "during-b");
    let fine = login(&kit, "fine");
    a.logout(&before).await;
    until(CONVERGE, "first logout everywhere", async || {
        b.revoked(&before) && c.revoked(&before)
    })
    .await;
    settled(&[&a, &b, &c]).await;

    redis.kill();
    until(CONVERGE, "every instance notices (stale)", async || {
        [&a, &b, &c].iter().all(|i| i.store.status().stale)
    })
    .await;
    assert_eq!(a.store.status().summary(), "stale");
    // Still answering from the mirror; own revocations apply at once and are queued.
    a.logout(&during_a).await;
    b.logout(&during_b).await;
    assert_eq!(a.me(&during_a.cookie).await, Err(Refusal::Revoked));
    assert_eq!(b.me(&during_b.cookie).await, Err(Refusal::Revoked));
    assert_eq!(c.me(&before.cookie).await, Err(Refusal::Revoked));
    assert_eq!(c.me(&fine.cookie).await, Ok(()));
    // The documented cost of a stale mirror: C cannot know about A's logout yet.
    assert_eq!(c.me(&during_a.cookie).await, Ok(()));
    tokio::time::sleep(Duration::from_millis(300)).await; // some failed retries
    assert!(a.store.status().pending_publishes >= 1);
    assert!(b.store.status().pending_publishes >= 1);

    redis.restart(); // empty: no persistence
    settled(&[&a, &b, &c]).await;
    until(CONVERGE, "A, B and C refuse all three", async || {
        for i in [&a, &b, &c] {
            for s in [&before, &during_a, &during_b] {
                if i.me(&s.cookie).await != Err(Refusal::Revoked) {
                    return false;
                }
            }
        }
        true
    })
    .await;
    for i in [&a, &b, &c] {
        assert_eq!(i.me(&fine.cookie).await, Ok(()));
    }
    // Redis itself holds them again (the pre-restart one re-written by A), so an
    // instance started now refuses all three.
    let late = instance(&kit, &redis.url()).await;
    for s in [&before, &during_a, &during_b] {
        assert_eq!(late.me(&s.cookie).await, Err(Refusal::Revoked));
    }
    assert_eq!(late.me(&fine.cookie).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_instance_catches_up_on_reconnect() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let proxy = Proxy::start(redis.port, true).await;
    let a = instance(&kit, &redis.url()).await;
    let b = instance(&kit, &redis.url()).await;
    let c = instance(&kit, &proxy.url()).await; // C reaches Redis through the proxy
    let alice = login(&kit, "alice");
    let bob = login(&kit, "bob");
    let carol: Vec<Sess> = (0..2).map(|_| login(&kit, "carol")).collect();

    proxy.cut();
    until(CONVERGE, "C notices it is cut off", async || {
        c.store.status().stale
    })
    .await;
    a.logout(&alice).await;
    a.logout_all(&carol[0]).await;
    c.logout(&bob).await; // C's own logout applies on C at once
    until(CONVERGE, "B refuses alice", async || b.revoked(&alice)).await;
    assert_eq!(c.me(&bob.cookie).await, Err(Refusal::Revoked));
    assert_eq!(c.me(&alice.cookie).await, Ok(()), "stale, by design");
    assert_eq!(b.me(&bob.cookie).await, Ok(()), "not published yet");

    proxy.restore();
    settled(&[&a, &b, &c]).await;
    // C learned A's logouts from its resync, before it reported connected.
    assert_eq!(c.me(&alice.cookie).await, Err(Refusal::Revoked));
    for s in &carol {
        assert_eq!(c.me(&s.cookie).await, Err(Refusal::Revoked));
    }
    until(CONVERGE, "C's logout reaches A and B", async || {
        a.me(&bob.cookie).await == Err(Refusal::Revoked)
            && b.me(&bob.cookie).await == Err(Refusal::Revoked)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_redis_never_blocks_a_request() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new();
    let proxy = Proxy::start(redis.port, true).await;
    let a = instance(&kit, &redis.url()).await;
    let c = instance(&kit, &proxy.url()).await; // response timeout 1 s
    let alice = login(&kit, "alice");
    let bob = login(&kit, "bob");
    let carol = login(&kit, "carol");

    proxy.stall(); // Redis answers nothing to C any more, and the socket stays open
    let quick = Duration::from_millis(250);
    let started = Instant::now();
    assert_eq!(c.me(&carol.cookie).await, Ok(()));
    c.logout(&bob).await; // applies on C at once; the write to Redis hangs, then retries
    assert_eq!(c.me(&bob.cookie).await, Err(Refusal::Revoked));
    assert!(
        started.elapsed() < quick,
        "blocked: {:?}",
        started.elapsed()
    );
    // The health check times out: C says it is stale, and keeps answering.
    until(CONVERGE, "C notices the slow link", async || {
        c.store.status().stale
    })
    .await;
    a.logout(&alice).await;
    let started = Instant::now();
    assert_eq!(c.me(&carol.cookie).await, Ok(()));
    assert!(
        started.elapsed() < quick,
        "blocked: {:?}",
        started.elapsed()
    );
    assert!(c.store.status().pending_publishes >= 1);

    proxy.unstall();
    settled(&[&a, &c]).await;
    assert_eq!(c.me(&alice.cookie).await, Err(Refusal::Revoked));
    until(CONVERGE, "C's logout reaches A", async || {
        a.me(&bob.cookie).await == Err(Refusal::Revoked)
    })
    .await;
}

/// I1 across instances: C, cut off, does not know that A revoked a session and keeps
/// reissuing it. Once C learns of it (late), every instance must keep the revocation
/// until the tokens C minted meanwhile have expired, not just until the original date.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_reissued_while_cut_off_is_not_resurrected() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new(); // idle 30 min, reissue after 60 s, leeway 5 s
    let proxy = Proxy::start(redis.port, true).await;
    let a = instance(&kit, &redis.url()).await;
    let c = instance(&kit, &proxy.url()).await;
    let alice = login(&kit, "alice");

    proxy.cut();
    until(CONVERGE, "C stale", async || c.store.status().stale).await;
    a.logout(&alice).await;
    // 20 minutes later C, which does not know, slides alice's session: a new token.
    kit.advance(Duration::from_secs(20 * 60));
    let res = c.post("/session/refresh", &alice.cookie, &alice.csrf).await;
    assert_eq!(res.status(), StatusCode::OK);
    let reissued = kit.set_cookie(&res).expect("reissued cookie");
    assert!(!reissued.is_removal());
    let reissued = reissued.as_request_header();

    proxy.restore();
    settled(&[&a, &c]).await;
    assert_eq!(c.me(&reissued).await, Err(Refusal::Revoked));
    // C learned it 20 min late, so it re-dated and re-shared it: the record in Redis now
    // lasts a whole lifetime (30 min + leeway 5 s + margin 5 s) from now, not from the
    // logout.
    let exp = kit.now() + 30 * 60 + 10;
    let mut raw = redis.raw();
    let stored: String = redis::cmd("HGET")
        .arg(bucket(exp))
        .arg(format!("sid:{}", alice.sid))
        .query(&mut raw)
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["at"], kit.now(), "not re-dated: {stored}");
    assert_eq!(stored["exp"], exp, "{stored}");

    // Past the original revocation's lifetime (logout + 30 min + leeway + margin), before
    // the reissued token's expiry (50 min): both instances still refuse it, even after
    // sweeping. (The re-dated copy reaches A by pub/sub, hence `until`.)
    kit.advance(Duration::from_secs(20 * 60));
    let now = kit.now();
    until(CONVERGE, "A and C refuse the reissued token", async || {
        for i in [&a, &c] {
            i.store.sweep(now);
            if i.me(&reissued).await != Err(Refusal::Revoked) {
                return false;
            }
        }
        true
    })
    .await;
    assert_eq!(a.me(&reissued).await, Err(Refusal::Revoked));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_expire_in_redis_by_themselves() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Leeway 0 and margin 1 s make lifetimes short enough to watch.
    let kit = TestKit::configure(|b| b.leeway(Duration::ZERO)).unwrap();
    let margin = 1_i64;
    let a = instance_with(
        &kit,
        &redis.url(),
        options(&kit).propagation_margin(Duration::from_secs(1)),
    );
    assert!(a.store.wait_ready(Duration::from_secs(5)).await);
    let policy = *kit.config().policy();
    let clock = kit.config().clock();
    let mut raw = redis.raw();

    // A session revoked now lives idle (30 min) + margin in Redis: in the bucket of the
    // minute that ends 1 to 60 s after that, which expires then.
    let s = login(&kit, "alice");
    a.store
        .revoke_session(&s.sid, s.auth_time, &policy, clock)
        .unwrap();
    settled(&[&a]).await;
    let exp = kit.now() + i64::try_from(policy.idle_timeout()).unwrap() + margin;
    held_until(&mut raw, kit.now(), exp, &format!("sid:{}", s.sid));

    // A subject revocation lives absolute (8 h) + margin.
    let before = a.store.revoke_subject("bob", &policy, clock).unwrap();
    settled(&[&a]).await;
    let exp = before + i64::try_from(policy.absolute_timeout()).unwrap() + margin;
    held_until(&mut raw, kit.now(), exp, &format!("sub:{before}:bob"));

    // A session 2 s from its absolute end, logged in at a time that makes its revocation
    // end (2 s + 1 s margin from then) 1 s before a minute does: its bucket disappears
    // 4 s after the revocation by itself — no sweeper, no client involved.
    let absolute = i64::try_from(policy.absolute_timeout()).unwrap();
    let skip = (59 - (kit.now() + absolute + margin)).rem_euclid(60);
    kit.advance(Duration::from_secs(skip.unsigned_abs()));
    let old = login(&kit, "carol");
    kit.advance(Duration::from_secs(policy.absolute_timeout() - 2));
    a.store
        .revoke_session(&old.sid, old.auth_time, &policy, clock)
        .unwrap();
    settled(&[&a]).await;
    let exp = old.auth_time + absolute + margin;
    assert_eq!(exp.rem_euclid(60), 59);
    let key = bucket(exp);
    held_until(&mut raw, kit.now(), exp, &format!("sid:{}", old.sid));
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut raw).unwrap();
    assert!((1..=4000).contains(&ttl), "PTTL {ttl}");
    let started = Instant::now();
    loop {
        let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut raw).unwrap();
        if !exists {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "key never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("bucket expired by itself after {:?}", started.elapsed());
}

/// `Update::retire_older` on A is shared through Redis like a logout: B (same Redis, same
/// namespace) then refuses the older token with `session_revoked` and accepts the new
/// one, an instance started afterwards learns it from its full read, and a logout after
/// it still ends the whole session everywhere (the retirement's key never masks it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retiring_update_on_one_instance_is_refused_on_the_others() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new(); // idle 30 min, leeway 5 s; propagation margin 5 s
    let (a, b) = (
        instance(&kit, &redis.url()).await,
        instance(&kit, &redis.url()).await,
    );
    let alice = login(&kit, "alice");
    let bob = login(&kit, "bob");
    assert_eq!(b.me(&alice.cookie).await, Ok(()));

    kit.advance(Duration::from_secs(10));
    let updated = a.update_retiring(&kit, &alice).await;
    // Refused on A at once; accepted with the new token.
    assert_eq!(a.me(&alice.cookie).await, Err(Refusal::Revoked));
    assert_eq!(a.me(&updated).await, Ok(()));
    until(CONVERGE, "B refuses the older token", async || {
        b.me(&alice.cookie).await == Err(Refusal::Revoked)
    })
    .await;
    assert_eq!(b.me(&updated).await, Ok(()), "B accepts the new token");
    assert_eq!(b.me(&bob.cookie).await, Ok(()), "other sessions untouched");
    settled(&[&a, &b]).await;

    // In Redis: an entry of its own (`gen:1:<sid>`, never overwriting a logout of the
    // session), with the session revocation's I2 lifetime + margin.
    let mut raw = redis.raw();
    let exp = kit.now() + 30 * 60 + 5 + 5;
    let stored = held_until(&mut raw, kit.now(), exp, &format!("gen:1:{}", alice.sid));
    assert_eq!(stored["floor"], 1, "{stored}");
    assert_eq!(stored["at"], kit.now(), "{stored}");

    // Started afterwards: it learns the retirement from its full read, before ready.
    let late = instance(&kit, &redis.url()).await;
    let status = late.store.status();
    assert_eq!((status.full_syncs, status.incremental_syncs), (1, 0));
    assert_eq!(late.me(&alice.cookie).await, Err(Refusal::Revoked));
    assert_eq!(late.me(&updated).await, Ok(()));
    assert_eq!(late.me(&bob.cookie).await, Ok(()));

    // A logout on B with the new token ends the whole session on every instance, and an
    // instance started after that refuses every generation too.
    let newest = Sess {
        cookie: updated.clone(),
        csrf: alice.csrf.clone(),
        sid: alice.sid.clone(),
        sub: alice.sub.clone(),
        auth_time: alice.auth_time,
    };
    b.logout(&newest).await;
    until(
        CONVERGE,
        "A and the late instance refuse the new token",
        async || {
            a.me(&updated).await == Err(Refusal::Revoked)
                && late.me(&updated).await == Err(Refusal::Revoked)
        },
    )
    .await;
    settled(&[&a, &b, &late]).await;
    let later = instance(&kit, &redis.url()).await;
    assert_eq!(later.me(&updated).await, Err(Refusal::Revoked));
    assert_eq!(later.me(&alice.cookie).await, Err(Refusal::Revoked));
    assert_eq!(later.me(&bob.cookie).await, Ok(()));
}

/// I1 for retirements across instances: C, cut off, does not know that A retired the
/// older tokens of a session, and keeps sliding one. Once C learns of it (late), every
/// instance must keep the retirement until the older-generation tokens C minted meanwhile
/// have expired — as for a logout learned late.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_token_reissued_while_cut_off_stays_retired() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kit = TestKit::new(); // idle 30 min, reissue after 60 s, leeway 5 s
    let proxy = Proxy::start(redis.port, true).await;
    let a = instance(&kit, &redis.url()).await;
    let c = instance(&kit, &proxy.url()).await;
    let alice = login(&kit, "alice");

    proxy.cut();
    until(CONVERGE, "C stale", async || c.store.status().stale).await;
    let updated = a.update_retiring(&kit, &alice).await;
    // 20 minutes later C, which does not know, slides the older token: generation 0.
    kit.advance(Duration::from_secs(20 * 60));
    let res = c.post("/session/refresh", &alice.cookie, &alice.csrf).await;
    assert_eq!(res.status(), StatusCode::OK);
    let reissued = kit.set_cookie(&res).expect("reissued cookie");
    assert!(!reissued.is_removal());
    let generation = kit
        .config()
        .codec()
        .decode::<()>(reissued.value.as_bytes())
        .unwrap()
        .claims
        .generation;
    assert_eq!(generation, 0, "C slid the older generation");
    let reissued = reissued.as_request_header();

    proxy.restore();
    settled(&[&a, &c]).await;
    assert_eq!(c.me(&reissued).await, Err(Refusal::Revoked));
    assert_eq!(c.me(&updated).await, Ok(()), "the new generation lives");
    // C learned it 20 min late, so it re-dated and re-shared it: the retirement in Redis
    // now lasts a whole lifetime (30 min + leeway 5 s + margin 5 s) from now.
    let mut raw = redis.raw();
    let exp = kit.now() + 30 * 60 + 10;
    let stored = held_until(&mut raw, kit.now(), exp, &format!("gen:1:{}", alice.sid));
    assert_eq!(stored["floor"], 1, "{stored}");
    assert_eq!(stored["at"], kit.now(), "not re-dated: {stored}");

    // Past the original retirement's lifetime (update + 30 min + leeway + margin), before
    // the reissued token's expiry (50 min): both instances still refuse it, even after
    // sweeping. (The re-dated copy reaches A by pub/sub, hence `until`.)
    kit.advance(Duration::from_secs(20 * 60));
    let now = kit.now();
    until(CONVERGE, "A and C refuse the reissued token", async || {
        for i in [&a, &c] {
            i.store.sweep(now);
            if i.me(&reissued).await != Err(Refusal::Revoked) {
                return false;
            }
        }
        true
    })
    .await;
    assert_eq!(a.me(&reissued).await, Err(Refusal::Revoked));
}
