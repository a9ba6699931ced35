//! The session registry (issue 13) through the public API: "where you're signed in" lists a
//! user's sessions with the current one marked; last-active moves only with reissues (the
//! registry is never written on a plain request, nor read to decide one); ending one
//! session makes exactly that session's next request `401 session_revoked`, also after a
//! restart; users cannot see or end each other's sessions (404, so ids do not leak);
//! "log out other devices" and ending all or all others through the `SessionHandle`;
//! expiry and bounds; a failing registry never blocks a request;
//! the routes without a registry; what a listed session shows (its id is not the `sid`;
//! the client IP by `IpPolicy`, from a trusted header or `ConnectInfo`).
//!
//! Everything runs in process with `oneshot` / the test kit's `TestClient` and its manual
//! clock: no sleeping, no sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use jwt_session::testing::{TestClient, TestKit, TestResponse, refusal};
use jwt_session::{IpPolicy, RegistryError, RegistryStats, SessionEntry};
use jwt_session::{
    Login, MemoryDenylist, MemoryRegistry, Reauthenticated, Refusal, RevocationError, Session,
    SessionRegistry, Update, session_routes,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

// ---------------------------------------------------------------------------------------
// Settings: the test kit's defaults
// ---------------------------------------------------------------------------------------

const IDLE: i64 = 30 * 60;
const ABSOLUTE: i64 = 8 * 3600;
const REISSUE_AFTER: i64 = 60;
const LEEWAY: i64 = 5;

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap())
}

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148";
const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const TABLET: &str = "Mozilla/5.0 (iPad; CPU OS 18_0 like Mac OS X) Safari/604.1";

// ---------------------------------------------------------------------------------------
// The app: logins, a page, an update, a re-authentication, the ready-made routes
// ---------------------------------------------------------------------------------------

async fn login(Path(user): Path<String>) -> (Login, &'static str) {
    (Login::new(user, ()).unwrap(), "logged in")
}

async fn login_remembered(Path(user): Path<String>) -> (Login, &'static str) {
    (Login::new(user, ()).unwrap().remember(true), "logged in")
}

async fn me(s: Session) -> Json<Value> {
    Json(json!({ "sub": s.subject(), "sid": s.id(), "fresh_at": s.fresh_at() }))
}

async fn update(_s: Session) -> (Update<()>, &'static str) {
    (Update::new(()), "updated")
}

async fn reauth(_s: Session) -> (Reauthenticated, &'static str) {
    (Reauthenticated, "fresh")
}

fn routes() -> Router {
    Router::new()
        .route("/login/{user}", post(login))
        .route("/login-remembered/{user}", post(login_remembered))
        .route("/me", get(me))
        .route("/update", post(update))
        .route("/reauth", post(reauth))
        .merge(session_routes::<(), ()>())
}

fn registry(kit: &TestKit) -> Arc<MemoryRegistry> {
    MemoryRegistry::builder().build(kit.clock()).unwrap()
}

/// The routes behind the kit's layer with `registry`.
fn app_with(kit: &TestKit, registry: Arc<dyn SessionRegistry>) -> Router {
    routes().layer(kit.layer::<()>().with_registry(registry))
}

/// A browser on one device: a test client that sends its user agent on every request.
struct Device {
    client: TestClient,
    agent: &'static str,
}

impl Device {
    fn new(kit: &TestKit, app: &Router, agent: &'static str) -> Self {
        Self {
            client: kit.client(app.clone()),
            agent,
        }
    }

    async fn login(&mut self, user: &str) -> TestResponse {
        let res = self.post(&format!("/login/{user}"), None).await;
        assert_eq!(res.status, StatusCode::OK, "login: {}", res.text());
        res
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

    /// `GET /me`: Ok(sid) or the refusal.
    async fn me(&mut self) -> Result<String, Refusal> {
        let res = self.get("/me").await;
        match res.status {
            StatusCode::OK => Ok(res.json()["sid"].as_str().unwrap().to_owned()),
            status => Err(res
                .refusal
                .unwrap_or_else(|| panic!("{status} without a refusal: {}", res.text()))),
        }
    }

    /// `GET /session/list`: the listed sessions.
    async fn list(&mut self) -> Vec<Value> {
        let res = self.get("/session/list").await;
        assert_eq!(res.status, StatusCode::OK, "list: {}", res.text());
        res.json()["sessions"].as_array().unwrap().clone()
    }

    /// The listed id of this device's session (the one marked current).
    async fn own_id(&mut self) -> String {
        let listed = self.list().await;
        let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1, "exactly one current session: {listed:?}");
        current[0]["id"].as_str().unwrap().to_owned()
    }

    async fn revoke(&mut self, id: &str) -> TestResponse {
        self.post("/session/revoke", Some(json!({ "id": id })))
            .await
    }

    fn sid(&self) -> String {
        let token = self.client.token().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        claims["sid"].as_str().unwrap().to_owned()
    }
}

fn code(res: &TestResponse) -> String {
    res.json()["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {}", res.text()))
        .to_owned()
}

fn assert_revoked(res: &TestResponse) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.refusal, Some(Refusal::Revoked));
    assert_eq!(code(res), "session_revoked");
}

/// Alice on three devices, logged in 10 s apart: phone, laptop, tablet.
async fn three_devices(kit: &TestKit, app: &Router) -> (Device, Device, Device) {
    let mut phone = Device::new(kit, app, PHONE);
    let mut laptop = Device::new(kit, app, LAPTOP);
    let mut tablet = Device::new(kit, app, TABLET);
    phone.login("alice").await;
    kit.advance(secs(10));
    laptop.login("alice").await;
    kit.advance(secs(10));
    tablet.login("alice").await;
    (phone, laptop, tablet)
}

// ---------------------------------------------------------------------------------------
// Wrappers: counting writes, failing writes
// ---------------------------------------------------------------------------------------

/// Counts every call, then delegates.
#[derive(Default)]
struct Counts {
    puts: AtomicUsize,
    removes: AtomicUsize,
    reads: AtomicUsize,
}

struct Counting {
    inner: Arc<MemoryRegistry>,
    counts: Arc<Counts>,
}

impl SessionRegistry for Counting {
    fn put(&self, entry: SessionEntry) -> Result<(), RevocationError> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(entry)
    }
    fn get(&self, sid: &str) -> Option<SessionEntry> {
        self.counts.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(sid)
    }
    fn remove(&self, sid: &str) -> Result<(), RevocationError> {
        self.counts.removes.fetch_add(1, Ordering::SeqCst);
        self.inner.remove(sid)
    }
    fn remove_user(&self, sub: &str) -> Result<(), RevocationError> {
        self.counts.removes.fetch_add(1, Ordering::SeqCst);
        self.inner.remove_user(sub)
    }
    fn list(&self, sub: &str, now: i64) -> Vec<SessionEntry> {
        self.counts.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.list(sub, now)
    }
    fn stats(&self, now: i64) -> RegistryStats {
        self.counts.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.stats(now)
    }
    fn sweep(&self, now: i64) -> usize {
        self.inner.sweep(now)
    }
}

impl Counts {
    fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }
    fn removes(&self) -> usize {
        self.removes.load(Ordering::SeqCst)
    }
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

/// Every write fails (a full disk, a dead backend); reads find nothing.
struct Failing {
    writes: AtomicUsize,
}

impl Failing {
    fn fail(&self) -> Result<(), RevocationError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Err(RevocationError::Backend("registry down".into()))
    }
}

impl SessionRegistry for Failing {
    fn put(&self, _entry: SessionEntry) -> Result<(), RevocationError> {
        self.fail()
    }
    fn get(&self, _sid: &str) -> Option<SessionEntry> {
        None
    }
    fn remove(&self, _sid: &str) -> Result<(), RevocationError> {
        self.fail()
    }
    fn remove_user(&self, _sub: &str) -> Result<(), RevocationError> {
        self.fail()
    }
    fn list(&self, _sub: &str, _now: i64) -> Vec<SessionEntry> {
        Vec::new()
    }
    fn stats(&self, _now: i64) -> RegistryStats {
        RegistryStats::default()
    }
    fn sweep(&self, _now: i64) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn three_logins_are_listed_newest_first_with_the_current_one_marked() {
    let kit = TestKit::new();
    let app = app_with(&kit, registry(&kit));
    let t0 = kit.now();
    let (phone, mut laptop, tablet) = three_devices(&kit, &app).await;

    let listed = laptop.list().await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let agents: Vec<&str> = listed
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, [TABLET, LAPTOP, PHONE], "newest first");
    let current: Vec<bool> = listed.iter().map(|s| s["current"] == true).collect();
    assert_eq!(
        current,
        [false, true, false],
        "the laptop's own session marked"
    );
    for (s, t) in listed.iter().zip([t0 + 20, t0 + 10, t0]) {
        assert_eq!(s["created"], t, "created is the login time");
        assert_eq!(s["last_active"], t);
        assert_eq!(s["fresh_at"], t);
        assert_eq!(s["remember"], false);
        assert!(s.get("ip").is_none(), "no IP unless configured: {s}");
    }
    // Exactly what a session shows, no more (no sid, no sub, no expiry).
    let keys: Vec<&String> = listed[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created",
            "current",
            "fresh_at",
            "id",
            "last_active",
            "remember",
            "user_agent"
        ]
    );

    // Ids are distinct, and none is a session id: the body carries no sid at all.
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    let body = laptop.get("/session/list").await.text();
    for device in [&phone, &laptop, &tablet] {
        let sid = device.sid();
        assert!(!ids.contains(&sid.as_str()), "a listed id is not the sid");
        assert!(!body.contains(&sid), "no sid in the listing");
    }
    // Each device sees the same three, itself marked.
    let mut phone = phone;
    let phone_view = phone.list().await;
    assert_eq!(phone_view.len(), 3);
    assert_eq!(phone_view[2]["current"], true);
    assert_eq!(phone_view[2]["id"], listed[2]["id"]);
}

#[tokio::test]
async fn a_long_user_agent_is_truncated_and_a_missing_one_is_null() {
    let kit = TestKit::new();
    let app = app_with(&kit, registry(&kit));
    let long: &'static str = Box::leak("é".repeat(500).into_boxed_str());
    let mut verbose = Device::new(&kit, &app, long);
    verbose.login("alice").await;
    let mut bare = kit.client(app.clone());
    assert_eq!(
        bare.post("/login/alice").send().await.status,
        StatusCode::OK
    );

    let listed = verbose.list().await;
    let agents: Vec<&Value> = listed.iter().map(|s| &s["user_agent"]).collect();
    assert!(
        agents.contains(&&Value::Null),
        "no header, no agent: {agents:?}"
    );
    let kept = agents.iter().find_map(|a| a.as_str()).unwrap();
    assert_eq!(kept.chars().count(), jwt_session::MAX_USER_AGENT);
    assert!(
        kept.chars().all(|c| c == 'é'),
        "cut at a character boundary"
    );
}

#[tokio::test]
async fn the_operator_view_and_counts_come_from_the_handle() {
    let kit = TestKit::new();
    let layer = kit.layer::<()>().with_registry(registry(&kit));
    let handle = layer.handle();
    let app = routes().layer(layer);
    let (_phone, _laptop, _tablet) = three_devices(&kit, &app).await;
    let mut bob = Device::new(&kit, &app, PHONE);
    bob.login("bob").await;

    let alice = handle.list_sessions("alice").unwrap();
    assert_eq!(alice.len(), 3);
    assert!(alice.iter().all(|e| e.sub == "alice"));
    assert_eq!(handle.list_sessions("carol").unwrap(), Vec::new());
    let stats = handle.registry_stats().unwrap();
    assert_eq!(
        (stats.sessions, stats.users, stats.max_per_user),
        (4, 2, 3),
        "{stats:?}"
    );
    // An operator ends one of alice's sessions by its listed id.
    handle.revoke_listed("alice", &alice[0].id).unwrap();
    assert_eq!(handle.list_sessions("alice").unwrap().len(), 2);
    assert!(matches!(
        handle.revoke_listed("bob", &alice[1].id),
        Err(RegistryError::NotFound)
    ));
}

#[tokio::test]
async fn the_handle_ends_all_others_and_all_of_a_user_and_the_listing_follows() {
    let kit = TestKit::new();
    let layer = kit.layer::<()>().with_registry(registry(&kit));
    let handle = layer.handle();
    let app = routes().layer(layer);
    let (mut phone, mut laptop, mut tablet) = three_devices(&kit, &app).await;
    let mut bob = Device::new(&kit, &app, PHONE);
    bob.login("bob").await;

    // "End all others": only the kept session stays, for that user only.
    assert_eq!(handle.revoke_others("alice", &laptop.sid()).unwrap(), 2);
    assert_revoked(&phone.get("/me").await);
    assert_revoked(&tablet.get("/me").await);
    assert!(laptop.me().await.is_ok());
    assert!(bob.me().await.is_ok(), "other users untouched");
    let alice = handle.list_sessions("alice").unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].sid, laptop.sid());
    assert_eq!(handle.list_sessions("bob").unwrap().len(), 1);
    // Nothing else to end; a user with no session: none.
    assert_eq!(handle.revoke_others("alice", &laptop.sid()).unwrap(), 0);
    assert_eq!(handle.revoke_others("carol", &laptop.sid()).unwrap(), 0);

    // "End all": every session of alice, listed or not, and the listing is empty.
    kit.advance(secs(1));
    let mut watch = Device::new(&kit, &app, TABLET);
    watch.login("alice").await;
    assert_eq!(handle.list_sessions("alice").unwrap().len(), 2);
    kit.advance(secs(1));
    handle.revoke_user("alice").unwrap();
    assert_revoked(&laptop.get("/me").await);
    assert_revoked(&watch.get("/me").await);
    assert_eq!(handle.list_sessions("alice").unwrap(), Vec::new());
    assert!(bob.me().await.is_ok(), "other users untouched");
    let stats = handle.registry_stats().unwrap();
    assert_eq!((stats.sessions, stats.users), (1, 1), "{stats:?}");

    // Ending one session by its sid (not by a listed id) drops it from the listing too.
    handle.revoke_session(&bob.sid()).unwrap();
    assert_revoked(&bob.get("/me").await);
    assert_eq!(handle.list_sessions("bob").unwrap(), Vec::new());

    // A new login of alice is accepted and listed.
    kit.advance(secs(1));
    let mut again = Device::new(&kit, &app, LAPTOP);
    again.login("alice").await;
    assert!(again.me().await.is_ok());
    assert_eq!(handle.list_sessions("alice").unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Last active: written at reissues only
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn last_active_advances_only_with_reissues_and_plain_requests_never_touch_it() {
    let kit = TestKit::new();
    let counts = Arc::new(Counts::default());
    let inner = registry(&kit);
    let app = app_with(
        &kit,
        Arc::new(Counting {
            inner: inner.clone(),
            counts: counts.clone(),
        }),
    );
    let t0 = kit.now();
    let mut laptop = Device::new(&kit, &app, LAPTOP);
    laptop.login("alice").await;
    assert_eq!(counts.puts(), 1, "a login writes once");

    // Plain requests inside reissue_after: accepted, never written, never read.
    for _ in 0..20 {
        kit.advance(secs(2));
        laptop.me().await.unwrap();
    }
    assert!(kit.now() - t0 < REISSUE_AFTER);
    assert_eq!(counts.puts(), 1, "no write on a plain request");
    assert_eq!(counts.removes(), 0);
    assert_eq!(counts.reads(), 0, "never read to decide a request");
    assert_eq!(inner.list("alice", kit.now())[0].last_active, t0);

    // Past reissue_after: the next request is reissued, and written once.
    kit.advance(secs(REISSUE_AFTER));
    let t1 = kit.now();
    let res = laptop.get("/me").await;
    assert!(sets_cookie(&kit, &res), "reissued");
    assert_eq!(counts.puts(), 2, "a reissue writes once");
    let entry = &inner.list("alice", t1)[0];
    assert_eq!(entry.last_active, t1);
    assert_eq!(entry.created, t0, "created stays the login time");

    // The listing itself reads, and the listed id is stable across the reissue.
    let before = inner.list("alice", t1)[0].id.clone();
    kit.advance(secs(5));
    let listed = laptop.list().await;
    assert_eq!(listed[0]["id"], before.as_str());
    assert_eq!(listed[0]["last_active"], t1, "accurate to reissue_after");
    assert_eq!(counts.puts(), 2, "listing does not write");
    assert!(counts.reads() > 0);

    // Forced refresh, update and re-authentication write (each reissues).
    let res = laptop.post("/session/refresh", None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(counts.puts(), 3);
    kit.advance(secs(5));
    let res = laptop.post("/update", None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(counts.puts(), 4, "an update writes");
    kit.advance(secs(5));
    let t_reauth = kit.now();
    let res = laptop.post("/reauth", None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(counts.puts(), 5, "a re-authentication writes");
    let listed = laptop.list().await;
    assert_eq!(listed[0]["fresh_at"], t_reauth, "freshness shown");
    assert_eq!(listed[0]["last_active"], t_reauth);
    assert_eq!(listed[0]["id"], before.as_str(), "still the same listed id");

    // A logout removes.
    let res = laptop.post("/session/logout", None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(counts.removes(), 1);
    assert!(inner.list("alice", kit.now()).is_empty());
}

/// Whether `res` sets a new session cookie (a login, a reissue).
fn sets_cookie(kit: &TestKit, res: &TestResponse) -> bool {
    let name = format!("{}=", kit.config().cookie().name());
    res.headers.get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap().starts_with(&name)
            && !v.to_str().unwrap().starts_with(&format!("{name};"))
    })
}

#[tokio::test]
async fn a_passive_poll_does_not_write_either() {
    let kit = TestKit::configure(|b| b.passive_route(|_, path| path == "/me")).unwrap();
    let counts = Arc::new(Counts::default());
    let app = app_with(
        &kit,
        Arc::new(Counting {
            inner: registry(&kit),
            counts: counts.clone(),
        }),
    );
    let mut laptop = Device::new(&kit, &app, LAPTOP);
    laptop.login("alice").await;
    for _ in 0..10 {
        kit.advance(secs(REISSUE_AFTER + 1));
        laptop.me().await.unwrap();
    }
    assert_eq!(
        counts.puts(),
        1,
        "passive requests are never reissued nor written"
    );
}

// ---------------------------------------------------------------------------------------
// Ending one session
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ending_one_refuses_exactly_that_session() {
    let kit = TestKit::new();
    let app = app_with(&kit, registry(&kit));
    let (mut phone, mut laptop, mut tablet) = three_devices(&kit, &app).await;
    let phone_id = phone.own_id().await;

    let res = laptop.revoke(&phone_id).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!({ "revoked": true }));

    assert_revoked(&phone.get("/me").await);
    assert!(laptop.me().await.is_ok());
    assert!(tablet.me().await.is_ok());
    let listed = laptop.list().await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s["id"] != phone_id.as_str()));

    // Ending it again, or the ended one acting: not found / refused.
    let res = laptop.revoke(&phone_id).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(code(&res), "session_not_found");

    // A device can end its own session too: the answer clears its cookie, and the old
    // token is refused.
    let own = tablet.own_id().await;
    let token = tablet.client.token().unwrap().to_owned();
    let res = tablet.revoke(&own).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        tablet.client.token(),
        None,
        "cookie cleared: {:?}",
        res.headers
    );
    let res = app
        .clone()
        .oneshot(
            Request::get("/me")
                .header("cookie", kit.cookie_header(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refusal(&res), Some(Refusal::Revoked));
    assert!(laptop.me().await.is_ok());
}

#[tokio::test]
async fn the_revoke_route_needs_csrf_and_a_json_id() {
    let kit = TestKit::new();
    let app = app_with(&kit, registry(&kit));
    let (mut phone, mut laptop, _tablet) = three_devices(&kit, &app).await;
    let phone_id = phone.own_id().await;

    let res = laptop
        .client
        .post("/session/revoke")
        .json(&json!({ "id": phone_id }))
        .without_csrf()
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert!(phone.me().await.is_ok(), "nothing ended without CSRF");

    let res = laptop.post("/session/revoke", None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&res), "invalid_request");
    let res = laptop
        .post("/session/revoke", Some(json!({ "sid": "x" })))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);

    let res = laptop
        .client
        .post("/session/logout-others")
        .without_csrf()
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(phone.me().await.is_ok());

    // Without a session: 401, as every session route.
    let mut stranger = kit.client(app.clone());
    let res = stranger.get("/session/list").send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.refusal, Some(Refusal::Missing));
}

#[tokio::test]
async fn a_user_cannot_list_or_end_another_users_sessions() {
    let kit = TestKit::new();
    let app = app_with(&kit, registry(&kit));
    let (mut alice_phone, mut alice_laptop, _tablet) = three_devices(&kit, &app).await;
    let mut bob = Device::new(&kit, &app, LAPTOP);
    bob.login("bob").await;
    let alice_id = alice_phone.own_id().await;

    let bobs = bob.list().await;
    assert_eq!(bobs.len(), 1, "bob sees only his own: {bobs:?}");
    assert_eq!(bobs[0]["current"], true);
    assert_eq!(alice_laptop.list().await.len(), 3, "and alice only hers");

    // Another user's id answers exactly like an id that does not exist: 404, not 403.
    let theirs = bob.revoke(&alice_id).await;
    let unknown = bob.revoke("no-such-session-id").await;
    for res in [&theirs, &unknown] {
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
        assert_eq!(code(res), "session_not_found");
    }
    assert_eq!(theirs.body, unknown.body, "indistinguishable");
    assert!(alice_phone.me().await.is_ok(), "alice's session untouched");
    assert!(bob.me().await.is_ok());
    // Bob's "log out other devices" ends nothing of alice's.
    let res = bob.post("/session/logout-others", None).await;
    assert_eq!(res.json(), json!({ "revoked": 0 }));
    assert!(alice_phone.me().await.is_ok());
    assert_eq!(alice_laptop.list().await.len(), 3);
}

#[tokio::test]
async fn logout_others_keeps_only_the_current_session() {
    let kit = TestKit::new();
    let app = app_with(&kit, registry(&kit));
    let (mut phone, mut laptop, mut tablet) = three_devices(&kit, &app).await;
    let mut bob = Device::new(&kit, &app, LAPTOP);
    bob.login("bob").await;

    let res = laptop.post("/session/logout-others", None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!({ "revoked": 2 }));
    assert_revoked(&phone.get("/me").await);
    assert_revoked(&tablet.get("/me").await);
    assert!(laptop.me().await.is_ok());
    assert!(bob.me().await.is_ok(), "other users untouched");
    let listed = laptop.list().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["current"], true);

    // And logout-all clears the listing (the current one included).
    let res = laptop.post("/session/logout-all", None).await;
    assert_eq!(res.status, StatusCode::OK);
    let mut again = Device::new(&kit, &app, LAPTOP);
    kit.advance(secs(1));
    again.login("alice").await;
    assert_eq!(again.list().await.len(), 1, "only the new login is listed");
}

// ---------------------------------------------------------------------------------------
// Restart: journaled denylist and journaled registry reopened
// ---------------------------------------------------------------------------------------

/// What a browser keeps across a server restart: its cookie and CSRF token.
struct Kept {
    cookie: String,
    csrf: String,
}

fn kept(kit: &TestKit, device: &Device) -> Kept {
    Kept {
        cookie: kit.cookie_header(device.client.token().unwrap()),
        csrf: device.client.csrf().unwrap(),
    }
}

async fn raw(
    app: &Router,
    method: &str,
    uri: &str,
    who: &Kept,
    body: Option<Value>,
) -> (StatusCode, Option<Refusal>, Value) {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", &who.cookie)
        .header("x-csrf-token", &who.csrf);
    let body = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let res = app
        .clone()
        .oneshot(builder.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let why = refusal(&res);
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        why,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn an_ended_session_stays_ended_and_the_listing_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let denylist_path = dir.path().join("revoked.jsonl");
    let registry_path = dir.path().join("sessions.jsonl");
    let base = TestKit::new();

    let open = |base: &TestKit| {
        let store = MemoryDenylist::builder()
            .journal(&denylist_path)
            .build(base.clock())
            .unwrap();
        let registry = MemoryRegistry::builder()
            .journal(&registry_path)
            .build(base.clock())
            .unwrap();
        let kit = base.clone().with_store(store);
        let app = app_with(&kit, registry.clone());
        (kit, app, registry)
    };

    let (phone, laptop, tablet, ids) = {
        let (kit, app, _registry) = open(&base);
        let (mut phone, mut laptop, mut tablet) = three_devices(&kit, &app).await;
        let ids: Vec<Value> = laptop
            .list()
            .await
            .iter()
            .map(|s| s["id"].clone())
            .collect();
        let phone_id = phone.own_id().await;
        let kept = (kept(&kit, &phone), kept(&kit, &laptop), kept(&kit, &tablet));
        assert_eq!(laptop.revoke(&phone_id).await.status, StatusCode::OK);
        assert_revoked(&phone.get("/me").await);
        assert!(tablet.me().await.is_ok());
        (kept.0, kept.1, kept.2, ids)
    }; // everything dropped: the journals' locks are released

    base.advance(secs(30));
    let (_kit, app, registry) = open(&base);
    let (status, why, body) = raw(&app, "GET", "/me", &phone, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(why, Some(Refusal::Revoked), "still ended after the restart");
    assert_eq!(body["error"]["code"], "session_revoked");

    let (status, _, body) = raw(&app, "GET", "/session/list", &laptop, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = body["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let after: Vec<&Value> = listed.iter().map(|s| &s["id"]).collect();
    assert_eq!(
        after,
        [&ids[0], &ids[1]],
        "same ids, same order (tablet, laptop)"
    );
    assert_eq!(listed[1]["current"], true);
    assert_eq!(listed[0]["user_agent"], TABLET);

    // Ending one after the restart, by the id listed before it.
    let (status, _, _) = raw(
        &app,
        "POST",
        "/session/revoke",
        &laptop,
        Some(json!({ "id": ids[0] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, why, _) = raw(&app, "GET", "/me", &tablet, None).await;
    assert_eq!(
        (status, why),
        (StatusCode::UNAUTHORIZED, Some(Refusal::Revoked))
    );
    let (status, _, _) = raw(&app, "GET", "/me", &laptop, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registry.len(), 1);

    // One process per journal, as for the denylist.
    let again = MemoryRegistry::builder()
        .journal(&registry_path)
        .build(base.clock());
    let err = again.unwrap_err().to_string();
    assert!(err.contains("in use by another process"), "{err}");
}

#[tokio::test]
async fn the_journal_is_compacted_by_the_sweep_and_keeps_unreadable_lines_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.jsonl");
    let kit = TestKit::new();
    let line_count = || std::fs::read_to_string(&path).unwrap().lines().count();
    {
        let registry = MemoryRegistry::builder()
            .journal(&path)
            .build(kit.clock())
            .unwrap();
        let app = app_with(&kit, registry.clone());
        let mut keeper = Device::new(&kit, &app, LAPTOP);
        keeper.login("keeper").await;
        for i in 0..700 {
            let mut d = Device::new(&kit, &app, PHONE);
            d.login(&format!("u{i}")).await;
            assert_eq!(d.post("/session/logout", None).await.status, StatusCode::OK);
        }
        assert_eq!(registry.len(), 1);
        assert_eq!(line_count(), 1401, "a put per login, a removal per logout");
        registry.sweep(kit.now());
        assert_eq!(line_count(), 1, "compacted to what is held");
        kit.advance(secs(1));
        let mut late = Device::new(&kit, &app, PHONE);
        late.login("late").await;
        assert_eq!(line_count(), 2, "appending after the compaction");
    }
    let reopened = MemoryRegistry::builder()
        .journal(&path)
        .build(kit.clock())
        .unwrap();
    assert_eq!(reopened.len(), 2);
    assert_eq!(reopened.list("keeper", kit.now()).len(), 1);
    drop(reopened);

    // Lines it cannot read are counted, skipped, and kept in `.rejected`.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"t\":\"p\",\"not\":\"an entry\"}\nnot json at all\n");
    std::fs::write(&path, text).unwrap();
    let registry = MemoryRegistry::builder()
        .journal(&path)
        .build(kit.clock())
        .unwrap();
    assert_eq!(registry.unreadable_lines(), 2);
    assert_eq!(registry.len(), 2, "the readable lines are kept");
    let rejected = std::fs::read_to_string(dir.path().join("sessions.jsonl.rejected")).unwrap();
    assert!(rejected.contains("not json at all"), "{rejected}");
    assert_eq!(line_count(), 2, "compacted on open");
    let read_only = MemoryRegistry::read_only(&path, kit.now()).unwrap();
    assert_eq!(read_only.len(), 2, "read-only loading needs no lock");
}

// ---------------------------------------------------------------------------------------
// Expiry and bounds
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn entries_disappear_when_their_session_would_have_expired() {
    let kit = TestKit::configure(|b| {
        b.remember_me(
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(30 * 86_400),
        )
    })
    .unwrap();
    let registry = registry(&kit);
    let app = app_with(&kit, registry.clone());
    let mut phone = Device::new(&kit, &app, PHONE);
    let mut laptop = Device::new(&kit, &app, LAPTOP);
    let mut desktop = Device::new(&kit, &app, TABLET);
    phone.login("alice").await;
    laptop.login("alice").await;
    let res = desktop.post("/login-remembered/alice", None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(laptop.list().await.len(), 3);

    // The laptop stays active (a request every 10 minutes reissues); the phone idles out.
    let mut elapsed = 0;
    while elapsed <= IDLE + LEEWAY {
        kit.advance(secs(600));
        elapsed += 600;
        laptop.me().await.unwrap();
    }
    let listed = laptop.list().await;
    let agents: Vec<&str> = listed
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(
        agents,
        [LAPTOP, TABLET],
        "the idle phone is gone, remembered kept"
    );
    assert_eq!(listed[1]["remember"], true);
    assert_eq!(registry.len(), 3, "not swept yet, only hidden");
    assert_eq!(registry.sweep(kit.now()), 1);
    assert_eq!(registry.len(), 2);
    assert_eq!(
        phone.me().await,
        Err(Refusal::ExpiredIdle),
        "as the session itself"
    );

    // Past the absolute timeout, the laptop's session goes too, active or not.
    while kit.now() < registry.list("alice", kit.now())[0].created + ABSOLUTE {
        kit.advance(secs(600));
        let _ = laptop.me().await;
    }
    kit.advance(secs(LEEWAY + 1));
    assert_eq!(laptop.me().await, Err(Refusal::ExpiredAbsolute));
    let left = registry.list("alice", kit.now());
    assert_eq!(left.len(), 1);
    assert!(left[0].remember);
    registry.sweep(kit.now());
    assert_eq!(registry.stats(kit.now()).sessions, 1);
}

#[tokio::test]
async fn bounds_hold_per_user_and_in_total_under_a_long_run() {
    const PER_USER: usize = 4;
    const CAPACITY: usize = 60;
    let kit = TestKit::new();
    let registry = MemoryRegistry::builder()
        .per_user(PER_USER)
        .capacity(CAPACITY)
        .build(kit.clock())
        .unwrap();
    let app = app_with(&kit, registry.clone());
    let mut devices: Vec<(String, Device)> = Vec::new();
    let mut seed = 0x2545_f491_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for step in 0..1500_u64 {
        let r = next();
        if r % 3 == 0 || devices.is_empty() {
            // A login of one of 40 users on a new device.
            let user = format!("user{}", r % 40);
            let mut d = Device::new(&kit, &app, LAPTOP);
            d.login(&user).await;
            devices.push((user, d));
        } else {
            // Some device comes back (reissued when due; refused once expired).
            let i = usize::try_from(r).unwrap() % devices.len();
            let _ = devices[i].1.me().await;
        }
        kit.advance(secs(i64::try_from(next() % 90).unwrap()));
        if step % 50 == 0 {
            registry.sweep(kit.now());
        }
        assert!(
            registry.len() <= CAPACITY,
            "step {step}: {}",
            registry.len()
        );
        let stats = registry.stats(kit.now());
        assert!(stats.max_per_user <= PER_USER, "step {step}: {stats:?}");
        assert!(stats.sessions <= CAPACITY);
    }
    for user in 0..40 {
        assert!(registry.list(&format!("user{user}"), kit.now()).len() <= PER_USER);
    }
    // Dropped from the listing, never from validity: the earliest device of a user with
    // more than PER_USER logins is still accepted while its session lives.
    let kit2 = TestKit::new();
    let registry2 = MemoryRegistry::builder()
        .per_user(2)
        .build(kit2.clock())
        .unwrap();
    let app2 = app_with(&kit2, registry2.clone());
    let mut first = Device::new(&kit2, &app2, PHONE);
    first.login("alice").await;
    for _ in 0..3 {
        kit2.advance(secs(1));
        Device::new(&kit2, &app2, LAPTOP).login("alice").await;
    }
    assert_eq!(registry2.list("alice", kit2.now()).len(), 2);
    assert!(first.me().await.is_ok(), "not listed, still signed in");
    let own = first.list().await;
    assert!(own.iter().all(|s| s["current"] == false), "{own:?}");
}

// ---------------------------------------------------------------------------------------
// A failing registry, no registry
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_registry_that_fails_every_write_never_blocks_a_request() {
    let kit = TestKit::new();
    let failing = Arc::new(Failing {
        writes: AtomicUsize::new(0),
    });
    let app = app_with(&kit, failing.clone());
    let mut laptop = Device::new(&kit, &app, LAPTOP);
    let mut phone = Device::new(&kit, &app, PHONE);
    let res = laptop.login("alice").await;
    assert!(sets_cookie(&kit, &res), "logged in");
    phone.login("alice").await;
    kit.advance(secs(REISSUE_AFTER + 1));
    let res = laptop.get("/me").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(sets_cookie(&kit, &res), "reissued");
    assert_eq!(laptop.post("/update", None).await.status, StatusCode::OK);
    assert_eq!(laptop.post("/reauth", None).await.status, StatusCode::OK);
    assert_eq!(laptop.list().await, Vec::<Value>::new());

    // Logouts still revoke (fail closed as ever), whatever the registry says: the cookie
    // is cleared, and the old token, sent again, is refused.
    let phone_token = kept(&kit, &phone);
    let res = phone.post("/session/logout", None).await;
    assert_eq!(res.status, StatusCode::OK);
    let mut phone_again = phone;
    assert_eq!(
        phone_again.me().await,
        Err(Refusal::Missing),
        "cookie cleared"
    );
    let (status, why, _) = raw(&app, "GET", "/me", &phone_token, None).await;
    assert_eq!(
        (status, why),
        (StatusCode::UNAUTHORIZED, Some(Refusal::Revoked))
    );
    let laptop_token = kept(&kit, &laptop);
    let res = laptop.post("/session/logout-all", None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(laptop.me().await, Err(Refusal::Missing), "cookie cleared");
    let (status, why, _) = raw(&app, "GET", "/me", &laptop_token, None).await;
    assert_eq!(
        (status, why),
        (StatusCode::UNAUTHORIZED, Some(Refusal::Revoked))
    );
    assert!(
        failing.writes.load(Ordering::SeqCst) >= 6,
        "every write was tried"
    );
}

#[tokio::test]
async fn without_a_registry_the_routes_answer_404_session_registry_off() {
    let kit = TestKit::new();
    let app = routes().layer(kit.layer::<()>());
    let mut laptop = Device::new(&kit, &app, LAPTOP);
    laptop.login("alice").await;
    for res in [
        laptop.get("/session/list").await,
        laptop.revoke("anything").await,
        laptop.post("/session/logout-others", None).await,
    ] {
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
        assert_eq!(code(&res), "session_registry_off");
        assert_eq!(res.refusal, None, "not a session refusal");
    }
    assert!(laptop.me().await.is_ok());
    let handle = kit.layer::<()>().handle();
    assert!(matches!(
        handle.list_sessions("alice"),
        Err(RegistryError::Off)
    ));
    assert!(matches!(handle.registry_stats(), Err(RegistryError::Off)));
}

// ---------------------------------------------------------------------------------------
// Client IP: off, truncated, full; from a trusted header or the peer address
// ---------------------------------------------------------------------------------------

/// Log alice in through `layer` with `headers` and an optional peer address; return
/// what the registry lists as her IP.
async fn listed_ip(
    kit: &TestKit,
    policy: Option<(IpPolicy, Option<&'static str>)>,
    headers: &[(&str, &str)],
    peer: Option<SocketAddr>,
) -> Option<String> {
    let registry = registry(kit);
    let mut layer = kit.layer::<()>().with_registry(registry.clone());
    if let Some((policy, header)) = policy {
        layer = layer.registry_ip(policy, header.map(http::HeaderName::from_static));
    }
    let app = routes().layer(layer);
    let mut req = Request::post("/login/alice");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        req.extensions_mut().insert(ConnectInfo(peer));
    }
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let listed = registry.list("alice", kit.now());
    assert_eq!(listed.len(), 1);
    listed[0].ip.clone()
}

#[tokio::test]
async fn the_client_ip_is_kept_as_the_policy_says() {
    let kit = TestKit::new();
    let xff = Some("x-forwarded-for");
    let v4 = [("x-forwarded-for", "203.0.113.77, 10.0.0.1")];
    let v6 = [("x-forwarded-for", "2001:db8:abcd:12::1")];
    let peer: SocketAddr = "198.51.100.23:51234".parse().unwrap();
    let peer6: SocketAddr = "[2001:db8:1:2:3::9]:443".parse().unwrap();

    // Off (the default, and explicitly): nothing, whatever arrives.
    assert_eq!(listed_ip(&kit, None, &v4, Some(peer)).await, None);
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Off, xff)), &v4, Some(peer)).await,
        None
    );

    // A trusted header: its first address.
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Full, xff)), &v4, Some(peer)).await,
        Some("203.0.113.77".into())
    );
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Truncated, xff)), &v4, None).await,
        Some("203.0.113.0/24".into())
    );
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Truncated, xff)), &v6, None).await,
        Some("2001:db8:abcd::/48".into())
    );
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Full, xff)), &v6, None).await,
        Some("2001:db8:abcd:12::1".into())
    );
    // With a trusted header configured, its absence (or garbage) means no IP — never the
    // proxy's own address.
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Full, xff)), &[], Some(peer)).await,
        None
    );
    assert_eq!(
        listed_ip(
            &kit,
            Some((IpPolicy::Full, xff)),
            &[("x-forwarded-for", "unknown, 1.2.3.4")],
            Some(peer)
        )
        .await,
        None
    );

    // No header configured: the peer address of ConnectInfo; a client's X-Forwarded-For
    // is ignored (it could say anything).
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Full, None)), &v4, Some(peer)).await,
        Some("198.51.100.23".into())
    );
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Truncated, None)), &v4, Some(peer)).await,
        Some("198.51.100.0/24".into())
    );
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Truncated, None)), &[], Some(peer6)).await,
        Some("2001:db8:1::/48".into())
    );
    // Neither: nothing to keep.
    assert_eq!(
        listed_ip(&kit, Some((IpPolicy::Full, None)), &v4, None).await,
        None
    );
}

#[tokio::test]
async fn the_listing_shows_the_ip_to_the_user_and_a_reissue_updates_it() {
    let kit = TestKit::new();
    let registry = registry(&kit);
    let layer = kit
        .layer::<()>()
        .with_registry(registry.clone())
        .registry_ip(
            IpPolicy::Full,
            Some(http::HeaderName::from_static("x-real-ip")),
        );
    let app = routes().layer(layer);
    let mut laptop = Device::new(&kit, &app, LAPTOP);
    let res = laptop
        .client
        .post("/login/alice")
        .header("x-real-ip", "192.0.2.10")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let listed = laptop.list().await;
    assert_eq!(listed[0]["ip"], "192.0.2.10");

    // Plain requests from elsewhere change nothing; the next reissue records the new IP.
    let res = laptop
        .client
        .get("/me")
        .header("x-real-ip", "192.0.2.99")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        registry.list("alice", kit.now())[0].ip.as_deref(),
        Some("192.0.2.10")
    );
    kit.advance(secs(REISSUE_AFTER + 1));
    let res = laptop
        .client
        .get("/me")
        .header("x-real-ip", "192.0.2.99")
        .send()
        .await;
    assert!(sets_cookie(&kit, &res));
    assert_eq!(
        registry.list("alice", kit.now())[0].ip.as_deref(),
        Some("192.0.2.99")
    );
}

#[test]
fn a_revocation_journal_is_never_opened_as_a_registry_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    let kit = TestKit::new();
    {
        let store = MemoryDenylist::builder()
            .journal(&path)
            .build(kit.clock())
            .unwrap();
        jwt_session::RevocationStore::revoke_subject(
            &*store,
            "alice",
            kit.config().policy(),
            kit.clock(),
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    // A misconfigured path must not compact the revocations away.
    let err = MemoryRegistry::builder()
        .journal(&path)
        .build(kit.clock())
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a revocation journal"), "{err}");
    let err = MemoryRegistry::read_only(&path, kit.now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a revocation journal"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "untouched");
}
