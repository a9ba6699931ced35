//! The Redis session registry against a real `redis-server` (one per test binary, on a free
//! loopback port; each test has a namespace of its own): two instances A and B — each a
//! `RedisDenylist` and a `RedisRegistry` behind its own `SessionLayer`, sharing keys and a
//! manual clock — prove that a login on A is listed on B and that ending it on B refuses it
//! on A; that the listed id is stable across instances and reissues; that entries expire
//! with their session; that an ended session is never listed again by a late write; the
//! per-user and total bounds (the sessions that expire first leave the listing, never
//! the denylist); and that a Redis that is away never holds a request (its writes arrive
//! once it is back).
//!
//! Without a `redis-server` binary the tests print `SKIPPED:` and pass, except under
//! `CI=true`, where they fail.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Request, StatusCode};
use jwt_session::testing::{TestClient, TestKit, TestResponse, refusal};
use jwt_session::{
    Login, MemoryRegistry, RedisDenylist, RedisDenylistOptions, Refusal, Session, SessionLayer,
    SessionRegistry, session_routes,
};
use jwt_session::{RedisRegistry, RedisRegistryOptions};
use redis::Commands as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod support;
use support::redis::{SharedServer, free_port, plain_server, redis_available};

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148";
const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const TABLET: &str = "Mozilla/5.0 (iPad; CPU OS 18_0 like Mac OS X) Safari/604.1";

const IDLE: u64 = 30 * 60;
const LEEWAY: u64 = 5;
const CONVERGE: Duration = Duration::from_secs(10);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------------------
// One redis-server for the whole test binary
// ---------------------------------------------------------------------------------------

/// The shared server's URL, or `None` (skipped, loudly) without a `redis-server`.
fn redis_url() -> Option<String> {
    static SERVER: OnceLock<Option<(u16, SharedServer)>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            redis_available("the Redis registry").then(|| {
                let port = free_port();
                (port, plain_server(port))
            })
        })
        .as_ref()
        .map(|(port, _)| format!("redis://127.0.0.1:{port}/"))
}

/// A namespace of its own for each test.
fn namespace() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

// ---------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------

async fn login(Path(user): Path<String>) -> (Login, &'static str) {
    (Login::new(user, ()).unwrap(), "logged in")
}

async fn me(s: Session) -> Json<Value> {
    Json(json!({ "sub": s.subject(), "sid": s.id() }))
}

fn routes() -> Router {
    Router::new()
        .route("/login/{user}", post(login))
        .route("/me", get(me))
        .merge(session_routes::<(), ()>())
}

fn registry_options(kit: &TestKit, ns: &str) -> RedisRegistryOptions {
    RedisRegistryOptions::default()
        .namespace(ns)
        .clock(kit.config().clock_handle())
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
}

/// One "server": a Redis denylist and a Redis registry behind its own layer.
struct Instance {
    denylist: Arc<RedisDenylist>,
    registry: Arc<RedisRegistry>,
    app: Router,
}

async fn instance_with(
    kit: &TestKit,
    url: &str,
    ns: &str,
    options: RedisRegistryOptions,
) -> Instance {
    let denylist = RedisDenylist::connect(
        url,
        RedisDenylistOptions::default()
            .namespace(ns)
            .clock(kit.config().clock_handle())
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .health_check_interval(Duration::from_millis(100)),
    )
    .unwrap();
    assert!(
        denylist.wait_ready(secs(5)).await,
        "{:?}",
        denylist.status()
    );
    let registry = RedisRegistry::connect(url, options).unwrap();
    let app = routes().layer(
        SessionLayer::<()>::new(kit.config().clone(), denylist.clone())
            .with_registry(registry.clone()),
    );
    Instance {
        denylist,
        registry,
        app,
    }
}

async fn instance(kit: &TestKit, url: &str, ns: &str) -> Instance {
    instance_with(kit, url, ns, registry_options(kit, ns)).await
}

impl Instance {
    async fn flush(&self) {
        assert!(
            self.registry.flush(CONVERGE).await,
            "registry writes not flushed: {:?}",
            self.registry.status()
        );
        assert!(self.denylist.flush(CONVERGE).await);
    }

    /// `GET /me` with a cookie header: Ok(()) or the refusal.
    async fn me(&self, cookie: &str) -> Result<(), Refusal> {
        let res = self
            .app
            .clone()
            .oneshot(
                Request::get("/me")
                    .header("cookie", cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        match res.status() {
            StatusCode::OK => Ok(()),
            status => Err(refusal(&res).unwrap_or_else(|| panic!("{status} without a refusal"))),
        }
    }
}

/// A browser on one device, talking to one instance.
struct Device {
    client: TestClient,
    agent: &'static str,
}

impl Device {
    fn new(kit: &TestKit, on: &Instance, agent: &'static str) -> Self {
        Self::on(kit, &on.app, agent)
    }

    fn on(kit: &TestKit, app: &Router, agent: &'static str) -> Self {
        Self {
            client: kit.client(app.clone()),
            agent,
        }
    }

    async fn login(&mut self, user: &str) {
        let res = self
            .client
            .post(&format!("/login/{user}"))
            .header("user-agent", self.agent)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK, "login: {}", res.text());
    }

    async fn get(&mut self, uri: &str) -> TestResponse {
        self.client
            .get(uri)
            .header("user-agent", self.agent)
            .send()
            .await
    }

    async fn post(&mut self, uri: &str, body: Option<Value>) -> TestResponse {
        let req = self.client.post(uri).header("user-agent", self.agent);
        match body {
            Some(body) => req.json(&body).send().await,
            None => req.send().await,
        }
    }

    async fn list(&mut self) -> Vec<Value> {
        let res = self.get("/session/list").await;
        assert_eq!(res.status, StatusCode::OK, "list: {}", res.text());
        res.json()["sessions"].as_array().unwrap().clone()
    }

    fn cookie(&self, kit: &TestKit) -> String {
        kit.cookie_header(self.client.token().unwrap())
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

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_a_is_listed_on_b_and_ending_it_on_b_refuses_it_on_a() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let kit = TestKit::new();
    let (a, b) = (
        instance(&kit, &url, &ns).await,
        instance(&kit, &url, &ns).await,
    );

    let mut phone = Device::new(&kit, &a, PHONE);
    phone.login("alice").await;
    let phone_cookie = phone.cookie(&kit);
    kit.advance(secs(10));
    let mut laptop = Device::new(&kit, &b, LAPTOP);
    laptop.login("alice").await;
    let mut bob = Device::new(&kit, &a, TABLET);
    bob.login("bob").await;
    a.flush().await;
    b.flush().await;

    // Listed on B: both of alice's sessions, newest first, B's own marked.
    let listed = laptop.list().await;
    let agents: Vec<&str> = listed
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, [LAPTOP, PHONE], "{listed:?}");
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["current"], false);
    assert_eq!(listed[1]["created"], kit.now() - 10);
    let phone_id = listed[1]["id"].as_str().unwrap().to_owned();

    // Ending it on B: refused on B at once, on A as soon as the revocation arrives.
    let res = laptop
        .post("/session/revoke", Some(json!({ "id": phone_id })))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(b.me(&phone_cookie).await, Err(Refusal::Revoked));
    until(CONVERGE, "A refuses the ended session", async || {
        a.me(&phone_cookie).await == Err(Refusal::Revoked)
    })
    .await;
    assert_eq!(a.me(&laptop.cookie(&kit)).await, Ok(()), "only that one");
    assert_eq!(a.me(&bob.cookie(&kit)).await, Ok(()));

    // Gone from the listing everywhere; bob's untouched.
    b.flush().await;
    kit.advance(secs(1)); // a login after the laptop's, not in the same second
    let mut tablet = Device::new(&kit, &a, TABLET);
    tablet.login("alice").await;
    a.flush().await;
    let listed = tablet.list().await;
    let agents: Vec<&str> = listed
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, [TABLET, LAPTOP]);
    assert_eq!(bob.list().await.len(), 1);
    // B cannot end bob's session through alice, nor alice's through bob.
    let res = bob
        .post("/session/revoke", Some(json!({ "id": listed[1]["id"] })))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.json()["error"]["code"], "session_not_found");

    // "Log out other devices" on A ends the laptop on B.
    let laptop_cookie = laptop.cookie(&kit);
    let res = tablet.post("/session/logout-others", None).await;
    assert_eq!(res.json(), json!({ "revoked": 1 }));
    until(CONVERGE, "B refuses the laptop", async || {
        b.me(&laptop_cookie).await == Err(Refusal::Revoked)
    })
    .await;
    a.flush().await;
    assert_eq!(
        b.registry.list("alice", kit.now()).len(),
        1,
        "only the tablet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listed_id_is_stable_across_instances_and_reissues() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let kit = TestKit::new();
    let (a, b) = (
        instance(&kit, &url, &ns).await,
        instance(&kit, &url, &ns).await,
    );
    let mut phone = Device::new(&kit, &a, PHONE);
    phone.login("alice").await;
    a.flush().await;
    let before = b.registry.list("alice", kit.now());
    assert_eq!(before.len(), 1);

    // The phone's next request, past reissue_after, lands on B: B writes the entry again
    // (with an id of its own, which Redis does not take).
    kit.advance(secs(61));
    let cookie = phone.cookie(&kit);
    let res = b
        .app
        .clone()
        .oneshot(
            Request::get("/me")
                .header("cookie", &cookie)
                .header("user-agent", PHONE)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(kit.set_cookie(&res).is_some(), "reissued on B");
    b.flush().await;
    let after = a.registry.list("alice", kit.now());
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id, "same listed id");
    assert_eq!(after[0].last_active, kit.now(), "last active moved");
    assert_eq!(after[0].created, before[0].created);
    assert_ne!(after[0].id, after[0].sid);

    // What Redis holds, as documented.
    let mut con = raw(&url);
    let key = format!("{ns}registry:s:{}", after[0].sid);
    let id: String = con.hget(&key, "id").unwrap();
    assert_eq!(id, after[0].id);
    let sub: String = con.hget(&key, "sub").unwrap();
    assert_eq!(sub, "alice");
    let ttl: i64 = con.pttl(&key).unwrap();
    let expected = (after[0].expires - kit.now()) * 1000;
    assert!(
        ttl <= expected && ttl > expected - 5_000,
        "TTL {ttl} ms, entry expires in {expected} ms"
    );
    let members: Vec<String> = con.zrange(format!("{ns}registry:u:alice"), 0, -1).unwrap();
    assert_eq!(members, [after[0].sid.clone()]);
    let stats = a.registry.try_stats(kit.now()).unwrap();
    assert_eq!((stats.sessions, stats.users, stats.max_per_user), (1, 1, 1));
    let found = b.registry.find(&after[0].id, kit.now()).unwrap().unwrap();
    assert_eq!(found.sid, after[0].sid);
    assert!(b.registry.find("nope", kit.now()).unwrap().is_none());
}

#[tokio::test]
async fn entries_expire_with_their_session_and_the_per_user_bound_holds() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let kit = TestKit::new();
    let a = instance_with(&kit, &url, &ns, registry_options(&kit, &ns).per_user(3)).await;
    let mut devices = Vec::new();
    for _ in 0..5 {
        let mut d = Device::new(&kit, &a, LAPTOP);
        d.login("alice").await;
        devices.push(d);
        kit.advance(secs(1));
    }
    a.flush().await;
    let listed = a.registry.list("alice", kit.now());
    assert_eq!(listed.len(), 3, "bounded per user");
    let mut con = raw(&url);
    let members: usize = con.zcard(format!("{ns}registry:u:alice")).unwrap();
    assert_eq!(members, 3, "the set too");
    let entries: Vec<String> = con.keys(format!("{ns}registry:s:*")).unwrap();
    assert_eq!(
        entries.len(),
        3,
        "and the entries dropped from it are deleted"
    );
    // Dropped from the listing, still signed in.
    assert_eq!(a.me(&devices[0].cookie(&kit)).await, Ok(()));

    // Past the idle timeout (and leeway) nothing is listed — by the app's clock, before
    // Redis's own TTL runs out.
    kit.advance(secs(IDLE + LEEWAY));
    assert!(a.registry.list("alice", kit.now()).is_empty());
    let members: usize = con.zcard(format!("{ns}registry:u:alice")).unwrap();
    assert_eq!(members, 0, "the listing trimmed the set");
    assert_eq!(a.registry.try_stats(kit.now()).unwrap().sessions, 0);
}

/// Log in `user` on a new device of `on`; the session's `sid` (from `GET /me`, which does
/// not reissue right after a login).
async fn login_sid(kit: &TestKit, on: &Instance, user: &str) -> (Device, String) {
    let mut d = Device::new(kit, on, LAPTOP);
    d.login(user).await;
    let res = d.get("/me").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let sid = res.json()["sid"].as_str().unwrap().to_owned();
    (d, sid)
}

/// The sids listed for `user`, sorted.
fn listed_sids(on: &Instance, user: &str, now: i64) -> Vec<String> {
    let mut sids: Vec<String> = on
        .registry
        .try_list(user, now)
        .unwrap()
        .into_iter()
        .map(|e| {
            assert_eq!(e.sub, user, "{e:?}");
            e.sid
        })
        .collect();
    sids.sort();
    sids
}

/// What Redis holds in `ns`: (members of the all set, entry keys).
fn held(con: &mut redis::Connection, ns: &str) -> (usize, usize) {
    let all: usize = con.zcard(format!("{ns}registry:all")).unwrap();
    let entries: Vec<String> = con.keys(format!("{ns}registry:s:*")).unwrap();
    (all, entries.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_total_bound_the_sessions_that_expire_first_leave_the_listing() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let kit = TestKit::new();
    let options = registry_options(&kit, &ns).per_user(3).capacity(6);
    let a = instance_with(&kit, &url, &ns, options).await;
    let mut con = raw(&url);

    // Six sessions, one second apart: exactly the bound.
    let mut sessions = Vec::new();
    for user in ["alice", "alice", "bob", "bob", "carol", "carol"] {
        sessions.push(login_sid(&kit, &a, user).await);
        kit.advance(secs(1));
    }
    a.flush().await;
    assert_eq!(held(&mut con, &ns), (6, 6));
    assert_eq!(a.registry.try_stats(kit.now()).unwrap().sessions, 6);

    // Alice's first session is reissued: it now expires last of all.
    kit.advance(secs(61));
    let res = sessions[0].0.get("/me").await;
    assert!(reissued(&kit, &res), "reissued");
    // Two more logins: the two sessions that expire first go — alice's second and bob's
    // first (not alice's first, the oldest login, whose reissue moved its expiry).
    let dave = [
        login_sid(&kit, &a, "dave").await,
        login_sid(&kit, &a, "dave").await,
    ];
    a.flush().await;
    let now = kit.now();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(listed_sids(&a, "alice", now), [sessions[0].1.clone()]);
    assert_eq!(listed_sids(&a, "bob", now), [sessions[3].1.clone()]);
    assert_eq!(
        listed_sids(&a, "carol", now),
        sorted(vec![sessions[4].1.clone(), sessions[5].1.clone()])
    );
    assert_eq!(
        listed_sids(&a, "dave", now),
        sorted(vec![dave[0].1.clone(), dave[1].1.clone()])
    );
    assert_eq!(
        held(&mut con, &ns),
        (6, 6),
        "the dropped entries are deleted"
    );
    let stats = a.registry.try_stats(now).unwrap();
    assert_eq!((stats.sessions, stats.users), (6, 4), "{stats:?}");
    let members: usize = con.zcard(format!("{ns}registry:u:bob")).unwrap();
    assert_eq!(members, 1, "and out of their user's set");

    // Dropped from the listing, never from the session: both are still signed in (their
    // request, past reissue_after, lists them again — within the bound).
    assert_eq!(a.me(&sessions[1].0.cookie(&kit)).await, Ok(()));
    assert_eq!(a.me(&sessions[2].0.cookie(&kit)).await, Ok(()));
    a.flush().await;
    assert_eq!(held(&mut con, &ns), (6, 6));
    assert_eq!(a.registry.try_stats(kit.now()).unwrap().sessions, 6);
    // Their reissue made them expire last; the two that now expire first made room.
    let now = kit.now();
    assert_eq!(
        listed_sids(&a, "alice", now),
        sorted(vec![sessions[0].1.clone(), sessions[1].1.clone()])
    );
    assert_eq!(listed_sids(&a, "bob", now), [sessions[2].1.clone()]);
    assert_eq!(listed_sids(&a, "carol", now), [sessions[5].1.clone()]);
    // The denylist holds nothing: nothing was revoked to make room.
    let revoked: Vec<String> = con.keys(format!("{ns}revoked:*")).unwrap();
    assert!(revoked.is_empty(), "{revoked:?}");

    // Ending sessions takes them out of the all set too, so it never counts a gone one.
    a.registry.remove(&dave[0].1).unwrap();
    a.registry.remove_user("carol").unwrap();
    a.flush().await;
    assert_eq!(held(&mut con, &ns), (4, 4));
    assert_eq!(a.registry.try_stats(kit.now()).unwrap().sessions, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_bound_holds_under_a_long_run_and_each_listing_stays_right() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let kit = TestKit::new();
    const PER_USER: usize = 3;
    const CAPACITY: usize = 10;
    let options = registry_options(&kit, &ns)
        .per_user(PER_USER)
        .capacity(CAPACITY);
    let a = instance_with(&kit, &url, &ns, options).await;
    let mut con = raw(&url);
    let users: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();

    // A model of what must be listed: (user, sid, login time); logins one second apart
    // and no reissues, so expiry order is login order.
    let mut model: Vec<(String, String, i64)> = Vec::new();
    let mut step: usize = 7;
    for round in 0..150 {
        step = (step * 31 + 17) % 97;
        let user = &users[step % users.len()];
        let (_device, sid) = login_sid(&kit, &a, user).await;
        model.push((user.clone(), sid, kit.now()));
        let theirs: Vec<usize> = (0..model.len()).filter(|&i| model[i].0 == *user).collect();
        if theirs.len() > PER_USER {
            model.remove(theirs[0]);
        }
        if model.len() > CAPACITY {
            model.remove(0);
        }
        kit.advance(secs(1));
        if round % 10 == 9 {
            a.flush().await;
            let now = kit.now();
            let (all, entries) = held(&mut con, &ns);
            assert!(all <= CAPACITY && entries <= CAPACITY, "{all}, {entries}");
            let stats = a.registry.try_stats(now).unwrap();
            assert_eq!(stats.sessions, model.len(), "round {round}: {stats:?}");
            assert!(stats.max_per_user <= PER_USER);
            for user in &users {
                let mut expected: Vec<String> = model
                    .iter()
                    .filter(|(u, ..)| u == user)
                    .map(|(_, sid, _)| sid.clone())
                    .collect();
                expected.sort();
                assert_eq!(
                    listed_sids(&a, user, now),
                    expected,
                    "round {round}, {user}"
                );
            }
        }
    }
    assert_eq!(held(&mut con, &ns), (CAPACITY, CAPACITY));
}

#[tokio::test]
async fn an_ended_session_is_not_listed_again_by_a_late_write() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let kit = TestKit::new();
    let (a, b) = (
        instance(&kit, &url, &ns).await,
        instance(&kit, &url, &ns).await,
    );
    let mut phone = Device::new(&kit, &a, PHONE);
    phone.login("alice").await;
    let mut laptop = Device::new(&kit, &b, LAPTOP);
    laptop.login("alice").await;
    a.flush().await;
    b.flush().await;
    let entry = a
        .registry
        .list("alice", kit.now())
        .into_iter()
        .find(|e| e.user_agent.as_deref() == Some(PHONE))
        .unwrap();

    let res = laptop
        .post("/session/revoke", Some(json!({ "id": entry.id })))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    b.flush().await;
    // A reissue of that session that A had made just before it learned the revocation
    // arrives late: it must not bring the session back into the listing.
    let mut late = entry.clone();
    late.last_active += 30;
    a.registry.put(late).unwrap();
    a.flush().await;
    let listed = b.registry.list("alice", kit.now());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].user_agent.as_deref(), Some(LAPTOP));

    // Logout-all on A clears alice's listing on both.
    let mut phone2 = Device::new(&kit, &a, TABLET);
    phone2.login("alice").await;
    let res = phone2.post("/session/logout-all", None).await;
    assert_eq!(res.status, StatusCode::OK);
    a.flush().await;
    assert!(b.registry.list("alice", kit.now()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_away_never_holds_a_request_and_gets_the_writes_when_back() {
    if redis_url().is_none() {
        return;
    }
    let kit = TestKit::new();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    // A memory denylist: only the registry is on the missing Redis.
    let registry = RedisRegistry::connect(
        &url,
        RedisRegistryOptions::default()
            .clock(kit.config().clock_handle())
            .queue_capacity(8)
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .connect_timeout(Duration::from_millis(200))
            .response_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let app = routes().layer(kit.layer::<()>().with_registry(registry.clone()));

    let started = Instant::now();
    let mut devices = Vec::new();
    for i in 0..12 {
        let mut d = Device::on(&kit, &app, LAPTOP);
        d.login(&format!("u{i}")).await;
        devices.push(d);
    }
    kit.advance(secs(61));
    for d in &mut devices {
        let res = d.get("/me").await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(reissued(&kit, &res));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(500),
        "24 requests took {elapsed:?} with Redis away"
    );
    // The writer may hold a batch while it tries to connect; once it is back in the
    // queue, the queue's bound holds.
    until(CONVERGE, "the queue trimmed to its bound", async || {
        registry.status().pending == 8
    })
    .await;
    let status = registry.status();
    assert!(!status.connected);
    assert_eq!(status.dropped, 16, "the oldest dropped: {status:?}");
    assert!(status.last_error.is_some());
    // With Redis away the registry cannot be read: listing, ending one session and
    // ending the others answer 503 `session_registry_unavailable` (quickly) — never "you
    // have no sessions" or "no such session".
    let started = Instant::now();
    let res = devices[0].get("/session/list").await;
    assert_eq!(
        res.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        res.text()
    );
    assert_eq!(res.json()["error"]["code"], "session_registry_unavailable");
    let res = devices[0]
        .post("/session/revoke", Some(json!({ "id": "any-listed-id" })))
        .await;
    assert_eq!(
        res.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        res.text()
    );
    assert_eq!(res.json()["error"]["code"], "session_registry_unavailable");
    let res = devices[0].post("/session/logout-others", None).await;
    assert_eq!(
        res.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        res.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The trait's answer, which the routes use, says so too.
    assert!(matches!(
        <RedisRegistry as jwt_session::SessionRegistry>::try_list(&registry, "u0", kit.now()),
        Err(jwt_session::RevocationError::Backend(_))
    ));

    // Redis comes up: the queued writes (the last eight reissues) arrive.
    let server = plain_server(port);
    assert!(registry.flush(CONVERGE).await, "{:?}", registry.status());
    assert!(registry.status().connected);
    for (i, d) in devices.iter_mut().enumerate() {
        let listed = d.list().await;
        assert_eq!(listed.len(), usize::from(i >= 4), "u{i}: {listed:?}");
    }
    drop((app, devices, registry));
    server.stop();
}

/// Whether `res` sets a new session cookie.
fn reissued(kit: &TestKit, res: &TestResponse) -> bool {
    let name = format!("{}=", kit.config().cookie().name());
    res.headers
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with(&name))
}

#[tokio::test]
async fn a_memory_registry_and_a_redis_one_list_the_same() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let kit = TestKit::new();
    let memory = MemoryRegistry::builder().build(kit.clock()).unwrap();
    let redis = RedisRegistry::connect(&url, registry_options(&kit, &ns)).unwrap();
    let both = Arc::new(Both {
        memory: memory.clone(),
        redis: redis.clone(),
    });
    let app = routes().layer(kit.layer::<()>().with_registry(both));
    for (i, agent) in [PHONE, LAPTOP, TABLET].into_iter().enumerate() {
        let mut d = Device::on(&kit, &app, agent);
        d.login(if i == 1 { "bob" } else { "alice" }).await;
        kit.advance(secs(3));
    }
    assert!(redis.flush(CONVERGE).await);
    for sub in ["alice", "bob", "carol"] {
        let m = memory.list(sub, kit.now());
        let r = redis.list(sub, kit.now());
        let strip = |v: Vec<jwt_session::SessionEntry>| {
            v.into_iter()
                .map(|mut e| {
                    e.id = String::new();
                    e
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(m), strip(r), "{sub}");
    }
    assert_eq!(memory.stats(kit.now()), redis.stats(kit.now()));
}

/// Writes go to both; reads from the memory one.
struct Both {
    memory: Arc<MemoryRegistry>,
    redis: Arc<RedisRegistry>,
}

impl SessionRegistry for Both {
    fn put(&self, entry: jwt_session::SessionEntry) -> Result<(), jwt_session::RevocationError> {
        self.redis.put(entry.clone())?;
        self.memory.put(entry)
    }
    fn get(&self, sid: &str) -> Option<jwt_session::SessionEntry> {
        self.memory.get(sid)
    }
    fn remove(&self, sid: &str) -> Result<(), jwt_session::RevocationError> {
        self.redis.remove(sid)?;
        self.memory.remove(sid)
    }
    fn remove_user(&self, sub: &str) -> Result<(), jwt_session::RevocationError> {
        self.redis.remove_user(sub)?;
        self.memory.remove_user(sub)
    }
    fn list(&self, sub: &str, now: i64) -> Vec<jwt_session::SessionEntry> {
        self.memory.list(sub, now)
    }
    fn stats(&self, now: i64) -> jwt_session::RegistryStats {
        self.memory.stats(now)
    }
    fn sweep(&self, now: i64) -> usize {
        self.memory.sweep(now)
    }
}
