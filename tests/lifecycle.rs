//! Session lifecycle (issue 11) through the public API, one test per promise and per
//! refusal: updating the app data in place (and retiring older tokens), updates racing
//! requests and logouts (I1, I3), how response parts compose, step-up freshness
//! (`require_fresh` / `Reauthenticated`), "remember me" lifetimes and cookies, the
//! `SessionHandle` (issue, revoke a session, revoke a user, the same-second rule), and app
//! data whose type evolves. Everything runs in process with `oneshot` and the test kit's
//! manual clock (I7): no sleeping, no sockets.
//!
//! Like the shared harness it takes requests and replies from (`tests/support/harness.rs`),
//! it depends on nothing but the crate's public API and the test kit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Path};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::{Method, Request, Response, StatusCode};
use jwt_session::testing::{SetCookie, TestKit};
use jwt_session::{
    Claims, EXPIRES_IN_HEADER, EncodeError, Key, Keyring, Login, Logout, LogoutAll, ManualClock,
    MemoryDenylist, ReauthRequired, Reauthenticated, Refresh, Refusal, RevocationStore, Session,
    SessionConfig, SessionContext, SessionData, SessionLayer, TOKEN_HEADER, Update, session_routes,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;
use tower::ServiceExt as _;

mod support;

use support::harness::{Client, Reply, call, req, take_apart};

// ---------------------------------------------------------------------------------------
// Settings (the test kit's defaults unless a test configures its own)
// ---------------------------------------------------------------------------------------

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const IDLE: i64 = 30 * MINUTE;
const ABSOLUTE: i64 = 8 * HOUR;
const REISSUE_AFTER: i64 = 60;
const LEEWAY: i64 = 5;
const REMEMBER_IDLE: i64 = 7 * DAY;
const REMEMBER_ABSOLUTE: i64 = 30 * DAY;
/// How recent a login must be for `POST /sensitive`.
const FRESH: i64 = 300;

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap())
}

/// "Remember me" for 7 days idle / 30 days, and browser-session cookies for the rest.
fn remember_kit() -> TestKit {
    TestKit::configure(|b| {
        b.remember_me(secs(REMEMBER_IDLE), secs(REMEMBER_ABSOLUTE))
            .browser_session_cookies(true)
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// The app under test: its data, its routes
// ---------------------------------------------------------------------------------------

/// The app data the sessions of these tests carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Profile {
    display_name: String,
}

fn profile(name: &str) -> Profile {
    Profile {
        display_name: name.to_owned(),
    }
}

/// Holds a handler until the test lets it go: the handler says it `entered`, then waits
/// for `release` (a `Notify` keeps one permit, so neither signal can be lost).
#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

impl Gate {
    async fn pass(&self) {
        self.entered.notify_one();
        self.release.notified().await;
    }
}

fn start(user: String, remember: bool) -> (Login<Profile>, Json<Value>) {
    let login = Login::new(user.clone(), Profile::default())
        .unwrap()
        .remember(remember);
    let csrf = login.csrf().to_owned();
    (login, Json(json!({ "user": user, "csrf": csrf })))
}

async fn login(Path(user): Path<String>) -> (Login<Profile>, Json<Value>) {
    start(user, false)
}

async fn login_remembered(Path(user): Path<String>) -> (Login<Profile>, Json<Value>) {
    start(user, true)
}

async fn me(s: Session<Profile>) -> Json<Value> {
    Json(json!({
        "sub": s.subject(),
        "sid": s.id(),
        "display_name": s.data().display_name,
        "auth_time": s.auth_time(),
        "fresh_at": s.fresh_at(),
        "remembered": s.remembered(),
        "idle_deadline": s.idle_deadline(),
        "absolute_deadline": s.absolute_deadline(),
    }))
}

async fn update_profile(_s: Session<Profile>, Path(name): Path<String>) -> Update<Profile> {
    Update::new(profile(&name))
}

async fn update_profile_retiring(
    _s: Session<Profile>,
    Path(name): Path<String>,
) -> Update<Profile> {
    Update::new(profile(&name)).retire_older()
}

async fn update_and_reauth(
    _s: Session<Profile>,
    Path(name): Path<String>,
) -> (Update<Profile>, Reauthenticated, &'static str) {
    (
        Update::new(profile(&name)),
        Reauthenticated,
        "updated, fresh",
    )
}

async fn sensitive(s: Session<Profile>) -> Result<&'static str, ReauthRequired> {
    s.require_fresh(secs(FRESH))?;
    Ok("changed")
}

async fn reauth(_s: Session<Profile>) -> (Reauthenticated, &'static str) {
    (Reauthenticated, "fresh")
}

async fn logout_then_login(
    _s: Session<Profile>,
    Path(user): Path<String>,
) -> (Logout, Login<Profile>, Json<Value>) {
    let (login, body) = start(user, false);
    (Logout, login, body)
}

async fn logout_all_then_login(
    _s: Session<Profile>,
    Path(user): Path<String>,
) -> (LogoutAll, Login<Profile>, Json<Value>) {
    let (login, body) = start(user, false);
    (LogoutAll, login, body)
}

async fn logout_and_refresh(_s: Session<Profile>) -> (Logout, Refresh, &'static str) {
    (Logout, Refresh, "both")
}

async fn login_and_update(_s: Session<Profile>) -> (Login<Profile>, Update<Profile>, &'static str) {
    let login = Login::new("alice", Profile::default()).unwrap();
    (login, Update::new(profile("Mallory")), "both")
}

async fn logout_all_and_reauth(_s: Session<Profile>) -> (LogoutAll, Reauthenticated, &'static str) {
    (LogoutAll, Reauthenticated, "both")
}

/// No session extractor: the route works without one.
async fn update_without_session() -> (Update<Profile>, &'static str) {
    (Update::new(profile("Nobody")), "updated?")
}

async fn reauth_without_session() -> (Reauthenticated, &'static str) {
    (Reauthenticated, "fresh?")
}

async fn slow(_s: Session<Profile>, Extension(gate): Extension<Arc<Gate>>) -> &'static str {
    gate.pass().await;
    "slow"
}

async fn slow_update(
    _s: Session<Profile>,
    Extension(gate): Extension<Arc<Gate>>,
    Path(name): Path<String>,
) -> Update<Profile> {
    gate.pass().await;
    Update::new(profile(&name))
}

async fn slow_update_retiring(
    _s: Session<Profile>,
    Extension(gate): Extension<Arc<Gate>>,
    Path(name): Path<String>,
) -> Update<Profile> {
    gate.pass().await;
    Update::new(profile(&name)).retire_older()
}

async fn slow_logout(_s: Session<Profile>, Extension(gate): Extension<Arc<Gate>>) -> Logout {
    gate.pass().await;
    Logout
}

/// An admin ends another session from a handler, through `SessionContext::handle()`.
async fn admin_revoke(
    _s: Session<Profile>,
    ctx: SessionContext<Profile>,
    Path(sid): Path<String>,
) -> StatusCode {
    ctx.handle().revoke_session(&sid).unwrap();
    StatusCode::NO_CONTENT
}

/// A token for a CLI of the current user, issued from a handler.
async fn issue_token(s: Session<Profile>, ctx: SessionContext<Profile>) -> Json<Value> {
    let issued = ctx
        .handle()
        .issue(Login::new(s.subject(), s.data().clone()).unwrap())
        .unwrap();
    Json(json!({ "token": issued.token, "sid": issued.claims.sid }))
}

/// Every route the tests use, without the session layer:
///
/// * `POST /login/{user}` (`/remember`): a new session; `{"user","csrf"}`;
/// * `GET /me`: what the handler sees of the session;
/// * `POST /profile/{name}` (`/retire`, `/reauth`): `Update` (retiring older tokens, with
///   `Reauthenticated`);
/// * `POST /sensitive`: needs a login within [`FRESH`] seconds; `POST /reauth`;
/// * `POST /switch/{user}` / `/switch-all/{user}`: `(Logout | LogoutAll, Login, body)`;
/// * `POST /conflict/*`: contradictory parts; `POST /anonymous/*`: parts without session;
/// * `/slow…`: held by the [`Gate`] until the test releases them;
/// * `POST /admin/revoke/{sid}`, `POST /token`: the handle from inside handlers;
/// * the ready-made `session_routes`.
fn routes(gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/login/{user}", post(login))
        .route("/login/{user}/remember", post(login_remembered))
        .route("/me", get(me))
        .route("/profile/{name}", post(update_profile))
        .route("/profile/{name}/retire", post(update_profile_retiring))
        .route("/profile/{name}/reauth", post(update_and_reauth))
        .route("/sensitive", post(sensitive))
        .route("/reauth", post(reauth))
        .route("/switch/{user}", post(logout_then_login))
        .route("/switch-all/{user}", post(logout_all_then_login))
        .route("/conflict/logout-refresh", post(logout_and_refresh))
        .route("/conflict/login-update", post(login_and_update))
        .route("/conflict/logout-all-reauth", post(logout_all_and_reauth))
        .route("/anonymous/update", post(update_without_session))
        .route("/anonymous/reauth", post(reauth_without_session))
        .route("/slow", get(slow))
        .route("/slow/profile/{name}", post(slow_update))
        .route("/slow/profile/{name}/retire", post(slow_update_retiring))
        .route("/slow/logout", post(slow_logout))
        .route("/admin/revoke/{sid}", post(admin_revoke))
        .route("/token", post(issue_token))
        .merge(session_routes::<Profile, ()>())
        .layer(Extension(gate))
}

/// [`routes`] behind the kit's layer, and the gate of its slow routes.
fn app(kit: &TestKit) -> (Router, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    (routes(gate.clone()).layer(kit.layer::<Profile>()), gate)
}

// ---------------------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------------------

/// A request of `client`'s browser: its cookie and, as a page would, its CSRF token.
fn request_as(kit: &TestKit, method: Method, uri: &str, client: &Client) -> Request<Body> {
    req(
        method,
        uri,
        &[
            ("cookie", &kit.cookie_header(&client.token)),
            ("x-csrf-token", &client.csrf),
        ],
    )
}

impl Reply {
    fn expires_in(&self) -> Option<i64> {
        self.header(EXPIRES_IN_HEADER).map(|v| v.parse().unwrap())
    }

    /// Refused with `reason`, and the one `Set-Cookie` clears the session cookie (as
    /// [`Reply::assert_cleared_only`]).
    #[track_caller]
    fn assert_refused_and_cleared_only(&self, reason: Refusal, what: &str) {
        self.assert_refused_for(reason, what);
        self.assert_cleared_only(what);
    }

    /// Exactly one `Set-Cookie`, and it clears the session cookie of the kit's
    /// configuration (whatever its attributes).
    #[track_caller]
    fn assert_cleared_only(&self, what: &str) {
        assert_eq!(self.all_cookies.len(), 1, "{what}: {:?}", self.all_cookies);
        assert!(
            self.cookie.as_ref().is_some_and(SetCookie::is_removal),
            "{what}: the session cookie is cleared: {:?}",
            self.all_cookies
        );
    }

    /// Exactly one `Set-Cookie`, a new session token; returns it.
    #[track_caller]
    fn one_new_token(&self, what: &str) -> String {
        assert_eq!(self.all_cookies.len(), 1, "{what}: {:?}", self.all_cookies);
        self.new_token()
            .ok_or_else(|| format!("{what}: a new token, got {:?}", self.all_cookies))
            .unwrap()
    }

    /// 500 `session_parts_conflict`, nothing set.
    #[track_caller]
    fn assert_parts_conflict(&self, what: &str) {
        assert_eq!(
            self.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{what}: {}",
            self.text()
        );
        assert_eq!(self.code(), "session_parts_conflict", "{what}");
        assert_eq!(self.refusal, None, "{what}: not a refusal of the session");
        self.assert_no_cookie_for(what);
    }
}

async fn reply(kit: &TestKit, res: Response<Body>) -> Reply {
    take_apart(kit.config().cookie().name(), res).await
}

async fn get_as(kit: &TestKit, app: &Router, uri: &str, client: &Client) -> Reply {
    call(kit, app, request_as(kit, Method::GET, uri, client)).await
}

async fn post_as(kit: &TestKit, app: &Router, uri: &str, client: &Client) -> Reply {
    call(kit, app, request_as(kit, Method::POST, uri, client)).await
}

/// Log in through the app (`POST /login/{user}`, or `/remember`), with no session.
async fn login_as(kit: &TestKit, app: &Router, user: &str, remember: bool) -> (Client, Reply) {
    let uri = if remember {
        format!("/login/{user}/remember")
    } else {
        format!("/login/{user}")
    };
    let reply = call(kit, app, req(Method::POST, &uri, &[])).await;
    reply.assert_ok("login");
    let client = Client {
        token: reply.one_new_token("login"),
        csrf: reply.json()["csrf"].as_str().unwrap().to_owned(),
    };
    (client, reply)
}

/// Use the session now (`GET /me`): 200, and keep the reissued token.
async fn touch(kit: &TestKit, app: &Router, client: &mut Client) -> Reply {
    let reply = get_as(kit, app, "/me", client).await;
    reply.assert_ok("touch");
    client.token = reply.one_new_token("touch reissues");
    reply
}

/// The claims of a token of the kit.
fn claims(kit: &TestKit, token: &str) -> Claims<Profile> {
    kit.config()
        .codec()
        .decode::<Profile>(token.as_bytes())
        .unwrap()
        .claims
}

/// `Set-Cookie` parsed by the `cookie` crate (attributes the kit's `SetCookie` omits).
fn parsed(c: &SetCookie) -> cookie::Cookie<'static> {
    cookie::Cookie::parse(c.raw.clone()).unwrap()
}

/// A browser-session cookie: neither `Max-Age` nor `Expires`.
#[track_caller]
fn assert_browser_session_cookie(c: &SetCookie, what: &str) {
    let cookie = parsed(c);
    assert!(!c.value.is_empty(), "{what}: {}", c.raw);
    assert_eq!(cookie.max_age(), None, "{what}: no Max-Age: {}", c.raw);
    assert_eq!(cookie.expires(), None, "{what}: no Expires: {}", c.raw);
}

/// The denylist entry of session `sid`.
fn entry(kit: &TestKit, sid: &str) -> jwt_session::RevocationEntry {
    kit.store()
        .snapshot()
        .into_iter()
        .find(|e| e.id == sid)
        .ok_or_else(|| format!("no denylist entry for {sid}"))
        .unwrap()
}

// =======================================================================================
// 1. Update in place
// =======================================================================================

#[tokio::test]
async fn update_sets_one_cookie_with_the_new_data_and_the_same_session() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let before = claims(&kit, &alice.token);

    kit.advance(secs(10)); // no reissue is due: an update reissues anyway
    let reply = post_as(&kit, &app, "/profile/Alice", &alice).await;
    reply.assert_ok("update");
    let token = reply.one_new_token("update");
    let after = claims(&kit, &token);
    assert_eq!(after.sub, before.sub);
    assert_eq!(after.sid, before.sid, "same session");
    assert_eq!(after.auth_time, before.auth_time, "same login time");
    assert_eq!(after.csrf.expose(), before.csrf.expose(), "same CSRF token");
    assert_eq!(after.fresh, before.fresh, "same freshness");
    assert_eq!(after.fresh, Some(t0));
    assert_ne!(after.jti, before.jti, "a new token id");
    assert_eq!(
        (after.iat, after.lat),
        (t0 + 10, t0 + 10),
        "iat = lat = now"
    );
    assert_eq!(after.exp, t0 + 10 + IDLE);
    assert_eq!(after.data, profile("Alice"));
    assert_eq!(after.generation, 0, "older tokens not retired");
    assert!(!after.rem);
    assert_eq!(reply.expires_in(), Some(IDLE));

    // The next request sees the new data.
    let updated = alice.with_token(token);
    let me = get_as(&kit, &app, "/me", &updated).await;
    me.assert_ok("the updated token");
    assert_eq!(me.json()["display_name"], "Alice");
    assert_eq!(me.json()["sid"], before.sid.as_str());

    // Without `retire_older` the older token stays valid (with the older data).
    let old = get_as(&kit, &app, "/me", &alice).await;
    old.assert_ok("the older token");
    assert_eq!(old.json()["display_name"], "");
    assert!(kit.store().is_empty(), "an update revokes nothing");
}

#[tokio::test]
async fn update_retiring_older_tokens_refuses_them_and_accepts_the_new_one() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let before = claims(&kit, &alice.token);

    kit.advance(secs(10));
    let reply = post_as(&kit, &app, "/profile/Alice/retire", &alice).await;
    reply.assert_ok("update, retiring older tokens");
    let token = reply.one_new_token("update");
    let after = claims(&kit, &token);
    assert_eq!(after.sid, before.sid);
    assert_eq!(after.auth_time, before.auth_time);
    assert_eq!(after.csrf.expose(), before.csrf.expose());
    assert_eq!(after.generation, 1, "the generation is raised");
    assert_eq!(after.data, profile("Alice"));

    let old = get_as(&kit, &app, "/me", &alice).await;
    old.assert_refused_and_cleared_only(Refusal::Revoked, "the retired token");

    let updated = alice.with_token(token);
    let me = get_as(&kit, &app, "/me", &updated).await;
    me.assert_ok("the new token");
    assert_eq!(me.json()["display_name"], "Alice");

    let retired = entry(&kit, &before.sid);
    assert_eq!(retired.retired_below, Some(1));
    assert!(!retired.is_subject());
}

#[tokio::test]
async fn a_second_retiring_update_retires_the_first_one_and_a_logout_still_ends_all() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;

    kit.advance(secs(10));
    let first = post_as(&kit, &app, "/profile/One/retire", &alice).await;
    let first = alice.with_token(first.one_new_token("first update"));
    kit.advance(secs(10));
    let second = post_as(&kit, &app, "/profile/Two/retire", &first).await;
    let second = alice.with_token(second.one_new_token("second update"));
    assert_eq!(claims(&kit, &second.token).generation, 2);

    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "generation 0");
    get_as(&kit, &app, "/me", &first)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "generation 1");
    let me = get_as(&kit, &app, "/me", &second).await;
    me.assert_ok("generation 2");
    assert_eq!(me.json()["display_name"], "Two");

    // A logout revokes the whole session, whatever the generations.
    let out = post_as(&kit, &app, "/session/logout", &second).await;
    out.assert_ok("logout");
    out.assert_cleared_only("logout");
    for (client, what) in [(&alice, "gen 0"), (&first, "gen 1"), (&second, "gen 2")] {
        get_as(&kit, &app, "/me", client)
            .await
            .assert_refused_and_cleared_only(Refusal::Revoked, what);
    }
    let sid = claims(&kit, &second.token).sid;
    assert_eq!(entry(&kit, &sid).retired_below, None, "a full revocation");
}

#[tokio::test]
async fn update_never_moves_the_absolute_deadline() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (mut alice, _) = login_as(&kit, &app, "alice", false).await;

    // Active all day long: a request every 20 minutes until +7 h.
    while kit.now() < t0 + 7 * HOUR {
        kit.advance(secs(20 * MINUTE));
        touch(&kit, &app, &mut alice).await;
    }
    assert_eq!(kit.now(), t0 + 7 * HOUR);

    let reply = post_as(&kit, &app, "/profile/Late", &alice).await;
    reply.assert_ok("update at +7 h");
    alice.token = reply.one_new_token("update");
    let updated = claims(&kit, &alice.token);
    assert_eq!(updated.auth_time, t0, "auth_time never moves");
    assert_eq!(updated.exp, t0 + 7 * HOUR + IDLE);
    let me = get_as(&kit, &app, "/me", &alice).await;
    assert_eq!(me.json()["absolute_deadline"], t0 + ABSOLUTE);

    // Keep going: the session still ends at +8 h.
    kit.advance(secs(25 * MINUTE));
    touch(&kit, &app, &mut alice).await;
    kit.advance(secs(25 * MINUTE));
    let last = touch(&kit, &app, &mut alice).await;
    assert_eq!(
        claims(&kit, &alice.token).exp,
        t0 + ABSOLUTE,
        "capped at +8 h"
    );
    assert_eq!(last.expires_in(), Some(10 * MINUTE));
    assert_eq!(last.json()["display_name"], "Late");

    kit.clock().set(t0 + ABSOLUTE + LEEWAY - 1);
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_ok("last second of the leeway");
    kit.advance(secs(1));
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::ExpiredAbsolute, "at +8 h + leeway");
}

/// An update whose token cannot be issued (the data is over the token's size cap) is not
/// answered as a success without its cookie: the handler's "updated" would be a lie. As
/// documented on `Update`, the response is replaced by a 500 `session_issue_failed` (as
/// for a `Login` whose issue fails), nothing is set, and the session goes on unchanged —
/// with `retire_older` too: older tokens are retired only once the new one is issued.
async fn update_over_the_size_cap(route_suffix: &str) {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    kit.advance(secs(10));

    let huge = "x".repeat(4000);
    let what = format!("an update of 4000 bytes{route_suffix}");
    let reply = post_as(
        &kit,
        &app,
        &format!("/profile/{huge}{route_suffix}"),
        &alice,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{what}: {}",
        reply.text()
    );
    assert_eq!(reply.code(), "session_issue_failed", "{what}");
    assert_eq!(reply.refusal, None, "{what}: not a refusal of the session");
    reply.assert_no_cookie_for(&what);

    let me = get_as(&kit, &app, "/me", &alice).await;
    me.assert_ok(&format!("{what}: the session is still valid"));
    assert_eq!(me.json()["display_name"], "");
    assert!(kit.store().is_empty(), "{what}: nothing revoked or retired");
}

#[tokio::test]
async fn an_update_that_cannot_be_issued_is_not_answered_as_a_success() {
    update_over_the_size_cap("").await;
}

#[tokio::test]
async fn a_retiring_update_that_cannot_be_issued_keeps_the_older_token_valid() {
    update_over_the_size_cap("/retire").await;
}

#[tokio::test]
async fn update_and_reauthenticated_combine_into_one_token() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (alice, _) = login_as(&kit, &app, "alice", false).await;

    kit.advance(secs(20 * MINUTE));
    let reply = post_as(&kit, &app, "/profile/Both/reauth", &alice).await;
    reply.assert_ok("update + reauthenticated");
    let next = claims(&kit, &reply.one_new_token("update + reauthenticated"));
    assert_eq!(next.data, profile("Both"));
    assert_eq!(next.fresh, Some(t0 + 20 * MINUTE), "fresh = now");
    assert_eq!(next.auth_time, t0, "auth_time does not move");
    assert_eq!(next.generation, 0);
}

// =======================================================================================
// 2. Updates racing other requests
// =======================================================================================

/// Sends `req` to a slow route and holds it in its handler while `during` runs, then lets
/// it go; returns its response and what `during` returned.
macro_rules! held {
    ($kit:expr, $app:expr, $gate:expr, $req:expr, $during:block) => {{
        let pending = tokio::spawn($app.clone().oneshot($req));
        $gate.entered.notified().await;
        let during = $during;
        $gate.release.notify_one();
        (reply($kit, pending.await.unwrap().unwrap()).await, during)
    }};
}

#[tokio::test]
async fn a_request_in_flight_when_older_tokens_are_retired_sets_no_cookie() {
    let kit = TestKit::new();
    let (app, gate) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    kit.advance(secs(10));

    let (slow, updated) = held!(
        &kit,
        app,
        gate,
        request_as(&kit, Method::GET, "/slow", &alice),
        {
            let reply = post_as(&kit, &app, "/profile/Alice/retire", &alice).await;
            reply.assert_ok("the update");
            // The held request's own reissue is due when it finishes.
            kit.advance(secs(REISSUE_AFTER));
            alice.with_token(reply.one_new_token("the update"))
        }
    );
    slow.assert_ok("the held request is answered normally");
    assert_eq!(slow.text(), "slow");
    slow.assert_no_cookie_for("neither a new token nor a removal over the updated cookie");
    assert_eq!(slow.header(TOKEN_HEADER), None);

    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the retired token, afterwards");
    let me = get_as(&kit, &app, "/me", &updated).await;
    me.assert_ok("the updated token");
    assert_eq!(me.json()["display_name"], "Alice");
}

/// Without `retire_older` an update leaves older tokens fully valid (documented on
/// `Update`): a request held across it is served and, its reissue being due when it
/// finishes, sets a token of its own — the same session with the *older* data, sent after
/// the update's cookie, so it replaces it in the browser. Every token stays accepted;
/// nothing is revoked. Use `retire_older` when the older data must not come back (see the
/// test above).
#[tokio::test]
async fn a_plain_update_leaves_older_tokens_and_requests_in_flight_valid() {
    let kit = TestKit::new();
    let (app, gate) = app(&kit);
    let t0 = kit.now();
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let before = claims(&kit, &alice.token);
    kit.advance(secs(10));

    let (slow, updated) = held!(
        &kit,
        app,
        gate,
        request_as(&kit, Method::GET, "/slow", &alice),
        {
            let token = post_as(&kit, &app, "/profile/Alice", &alice)
                .await
                .one_new_token("the update");
            // The held request's own reissue is due when it finishes.
            kit.advance(secs(REISSUE_AFTER));
            token
        }
    );
    slow.assert_ok("the held request");
    assert_eq!(slow.text(), "slow");
    let reissued = claims(&kit, &slow.one_new_token("the held request reissues"));
    assert_eq!(reissued.sid, before.sid, "the same session");
    assert_eq!(reissued.auth_time, before.auth_time);
    assert_eq!(reissued.generation, 0);
    assert_eq!(reissued.data, Profile::default(), "the older data");
    assert_eq!(reissued.lat, t0 + 10 + REISSUE_AFTER, "slid to now");
    assert_eq!(
        claims(&kit, &updated).data,
        profile("Alice"),
        "the update's token has the new data"
    );

    assert_eq!(kit.store().len(), 0, "a plain update revokes nothing");
    let updated = alice.with_token(updated);
    let reissued = alice.with_token(slow.new_token().unwrap());
    for (client, what, name) in [
        (&alice, "the older token", ""),
        (&updated, "the updated token", "Alice"),
        (&reissued, "the held request's reissue", ""),
    ] {
        let me = get_as(&kit, &app, "/me", client).await;
        me.assert_ok(what);
        assert_eq!(me.json()["display_name"], name, "{what}");
    }
}

#[derive(Clone, Copy, Debug)]
enum Ender {
    /// `POST /session/logout` with the same token.
    Logout,
    /// `SessionHandle::revoke_user` (log out everywhere, from elsewhere).
    RevokeUser,
}

/// An update of Alice's session is held in its handler while her session is ended; when
/// it is let go its response must not set a valid cookie (I1, I3), and every token of the
/// session stays refused.
async fn update_racing_an_end(update_route: &str, ender: Ender) {
    let kit = TestKit::new();
    let (app, gate) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let sid = claims(&kit, &alice.token).sid;
    kit.advance(secs(10));

    let what = format!("{update_route} racing {ender:?}");
    let (update, ()) = held!(
        &kit,
        app,
        gate,
        request_as(&kit, Method::POST, update_route, &alice),
        {
            match ender {
                Ender::Logout => {
                    let out = post_as(&kit, &app, "/session/logout", &alice).await;
                    out.assert_ok("logout");
                    out.assert_cleared_only("logout");
                }
                Ender::RevokeUser => {
                    kit.layer::<Profile>()
                        .handle()
                        .revoke_user("alice")
                        .unwrap();
                }
            }
        }
    );
    assert_eq!(update.new_token(), None, "{what}: no valid cookie re-set");
    assert!(
        update.all_cookies.iter().all(SetCookie::is_removal),
        "{what}: any cookie is a removal: {:?}",
        update.all_cookies
    );

    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, &what);
    if matches!(ender, Ender::Logout) {
        assert_eq!(
            entry(&kit, &sid).retired_below,
            None,
            "{what}: still a full revocation"
        );
    }
}

#[tokio::test]
async fn an_update_racing_a_logout_does_not_resurrect_the_session() {
    update_racing_an_end("/slow/profile/Alice", Ender::Logout).await;
}

#[tokio::test]
async fn a_retiring_update_racing_a_logout_does_not_resurrect_the_session() {
    update_racing_an_end("/slow/profile/Alice/retire", Ender::Logout).await;
}

#[tokio::test]
async fn an_update_racing_a_logout_everywhere_does_not_resurrect_the_session() {
    update_racing_an_end("/slow/profile/Alice/retire", Ender::RevokeUser).await;
}

#[tokio::test]
async fn a_logout_in_flight_with_an_older_token_still_ends_the_updated_session() {
    let kit = TestKit::new();
    let (app, gate) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    kit.advance(secs(10));

    let (out, updated) = held!(
        &kit,
        app,
        gate,
        request_as(&kit, Method::POST, "/slow/logout", &alice),
        {
            let reply = post_as(&kit, &app, "/profile/Alice/retire", &alice).await;
            alice.with_token(reply.one_new_token("the update"))
        }
    );
    out.assert_ok("the logout");
    out.assert_cleared_only("the logout");
    get_as(&kit, &app, "/me", &updated)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the updated token");
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the older token");
}

// =======================================================================================
// 3. How response parts compose
// =======================================================================================

#[tokio::test]
async fn logout_and_login_in_one_response_end_the_session_and_start_a_new_one() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let old = claims(&kit, &alice.token);
    kit.advance(secs(10));

    let reply = post_as(&kit, &app, "/switch/bob", &alice).await;
    reply.assert_ok("(Logout, Login, body)");
    let token = reply.one_new_token("one Set-Cookie: the new session");
    let new = claims(&kit, &token);
    assert_ne!(new.sid, old.sid, "a new session id");
    assert_eq!(new.sub, "bob");
    assert_eq!(new.auth_time, kit.now());
    assert_eq!(
        reply.json()["csrf"],
        new.csrf.expose(),
        "the body's CSRF token"
    );

    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the old session");
    let bob = Client {
        token,
        csrf: new.csrf.expose().to_owned(),
    };
    let me = get_as(&kit, &app, "/me", &bob).await;
    me.assert_ok("the new session");
    assert_eq!(me.json()["sub"], "bob");
}

#[tokio::test]
async fn a_login_over_a_live_session_revokes_it_and_starts_a_new_sid() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let old = claims(&kit, &alice.token);
    kit.advance(secs(10));

    // The same user logs in again from the same browser (cookie and CSRF token sent).
    let reply = post_as(&kit, &app, "/login/alice", &alice).await;
    reply.assert_ok("login over a live session");
    let token = reply.one_new_token("one Set-Cookie: the new session");
    let new = claims(&kit, &token);
    assert_ne!(new.sid, old.sid, "a login always starts a new sid");
    assert_ne!(new.csrf.expose(), old.csrf.expose());

    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the previous session");
    assert_eq!(entry(&kit, &old.sid).retired_below, None);
    let again = Client {
        token,
        csrf: new.csrf.expose().to_owned(),
    };
    get_as(&kit, &app, "/me", &again)
        .await
        .assert_ok("the new session");
}

#[tokio::test]
async fn a_login_over_a_live_session_without_its_csrf_token_is_refused() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;

    let cookie = kit.cookie_header(&alice.token);
    let reply = call(
        &kit,
        &app,
        req(Method::POST, "/login/mallory", &[("cookie", &cookie)]),
    )
    .await;
    reply.assert_refused_for(Refusal::CsrfMissing, "login over a session, no CSRF");
    reply.assert_no_cookie_for("no new session, no removal");
    let me = get_as(&kit, &app, "/me", &alice).await;
    me.assert_ok("the session is untouched");
    assert_eq!(me.json()["sub"], "alice");
    assert!(kit.store().is_empty());
}

#[tokio::test]
async fn logout_everywhere_and_login_in_one_response_dates_the_new_session_after_the_cutoff() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let (phone, _) = login_as(&kit, &app, "alice", false).await;
    let (bob, _) = login_as(&kit, &app, "bob", false).await;
    let now = kit.now(); // all in one second

    let reply = post_as(&kit, &app, "/switch-all/alice", &alice).await;
    reply.assert_ok("(LogoutAll, Login, body)");
    let token = reply.one_new_token("the new session");
    let new = claims(&kit, &token);
    assert_eq!(new.auth_time, now + 1, "dated one second after the cut-off");
    assert_eq!(new.iat, now);

    let fresh = alice.with_token(token);
    get_as(&kit, &app, "/me", &fresh)
        .await
        .assert_ok("the new session survives its own cut-off");
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "this browser's old session");
    get_as(&kit, &app, "/me", &phone)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the phone's session");
    get_as(&kit, &app, "/me", &bob)
        .await
        .assert_ok("another user");
}

/// A route answering contradictory parts: 500 `session_parts_conflict`, no cookie, and
/// nothing done — the session (and every other) is still valid, nothing revoked.
async fn contradictory_parts(route: &str) {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let (phone, _) = login_as(&kit, &app, "alice", false).await;
    let sid = claims(&kit, &alice.token).sid;
    kit.advance(secs(REISSUE_AFTER)); // even with a reissue due

    let reply = post_as(&kit, &app, route, &alice).await;
    reply.assert_parts_conflict(route);

    assert!(kit.store().is_empty(), "{route}: nothing revoked");
    let me = get_as(&kit, &app, "/me", &alice).await;
    me.assert_ok(route);
    assert_eq!(me.json()["sid"], sid.as_str(), "{route}: the same session");
    assert_eq!(me.json()["display_name"], "", "{route}: data unchanged");
    get_as(&kit, &app, "/me", &phone)
        .await
        .assert_ok("the user's other session");
}

#[tokio::test]
async fn logout_with_refresh_is_a_parts_conflict() {
    contradictory_parts("/conflict/logout-refresh").await;
}

#[tokio::test]
async fn login_with_update_is_a_parts_conflict() {
    contradictory_parts("/conflict/login-update").await;
}

#[tokio::test]
async fn logout_all_with_reauthenticated_is_a_parts_conflict() {
    contradictory_parts("/conflict/logout-all-reauth").await;
}

#[tokio::test]
async fn update_without_a_session_is_a_parts_conflict() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let reply = call(&kit, &app, req(Method::POST, "/anonymous/update", &[])).await;
    reply.assert_parts_conflict("Update without a session");
}

#[tokio::test]
async fn reauthenticated_without_a_session_is_a_parts_conflict() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let reply = call(&kit, &app, req(Method::POST, "/anonymous/reauth", &[])).await;
    reply.assert_parts_conflict("Reauthenticated without a session");
}

// =======================================================================================
// 4. Freshness (step-up)
// =======================================================================================

#[tokio::test]
async fn require_fresh_passes_at_exactly_max_age() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    kit.advance(secs(FRESH));
    let reply = post_as(&kit, &app, "/sensitive", &alice).await;
    reply.assert_ok("login exactly max_age ago");
    assert_eq!(reply.text(), "changed");
}

#[tokio::test]
async fn require_fresh_refuses_one_second_later_with_403_and_keeps_the_session() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    kit.advance(secs(FRESH + 1));

    let reply = post_as(&kit, &app, "/sensitive", &alice).await;
    reply.assert_refused_for(Refusal::ReauthRequired, "login max_age + 1 s ago");
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.json(),
        json!({ "error": {
            "code": "session_reauth_required",
            "message": Refusal::ReauthRequired.message(),
            "max_age": FRESH,
        }})
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.assert_no_cookie_for("the session is not ended: no removal (and no reissue)");

    let me = get_as(&kit, &app, "/me", &alice).await;
    me.assert_ok("the session is still valid");
}

#[tokio::test]
async fn reauthenticated_marks_the_session_fresh_without_moving_auth_time() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let before = claims(&kit, &alice.token);

    kit.advance(secs(20 * MINUTE));
    post_as(&kit, &app, "/sensitive", &alice)
        .await
        .assert_refused_for(Refusal::ReauthRequired, "stale");

    let reply = post_as(&kit, &app, "/reauth", &alice).await;
    reply.assert_ok("reauthenticated");
    let token = reply.one_new_token("reauthenticated");
    let now = kit.now();
    let after = claims(&kit, &token);
    assert_eq!(after.fresh, Some(now), "fresh = now");
    assert_eq!(after.auth_time, t0, "auth_time does not move");
    assert_eq!(after.sid, before.sid);
    assert_eq!(after.csrf.expose(), before.csrf.expose());
    assert_eq!(after.data, before.data);
    assert_eq!((after.iat, after.lat), (now, now));
    assert_eq!(after.exp, now + IDLE);

    let fresh = alice.with_token(token);
    let me = get_as(&kit, &app, "/me", &fresh).await;
    assert_eq!(me.json()["fresh_at"], now);
    assert_eq!(me.json()["auth_time"], t0);
    assert_eq!(me.json()["absolute_deadline"], t0 + ABSOLUTE);

    post_as(&kit, &app, "/sensitive", &fresh)
        .await
        .assert_ok("right after re-authenticating");
    kit.advance(secs(FRESH));
    post_as(&kit, &app, "/sensitive", &fresh)
        .await
        .assert_ok("max_age after re-authenticating");
    kit.advance(secs(1));
    post_as(&kit, &app, "/sensitive", &fresh)
        .await
        .assert_refused_for(Refusal::ReauthRequired, "max_age + 1 s after");
}

/// A login in the second of a "log out everywhere" is dated one second later
/// (`auth_time = now + 1`, `fresh = auth_time`); re-authenticating in that same second
/// must still mint a token the layer accepts.
#[tokio::test]
async fn reauthenticated_in_the_second_of_a_login_dated_after_a_cutoff_stays_valid() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let now = kit.now();
    kit.layer::<Profile>()
        .handle()
        .revoke_user("alice")
        .unwrap();
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    assert_eq!(claims(&kit, &alice.token).auth_time, now + 1);

    let reply = post_as(&kit, &app, "/reauth", &alice).await;
    reply.assert_ok("reauthenticated");
    let token = reply.one_new_token("reauthenticated");
    let next = claims(&kit, &token);
    get_as(&kit, &app, "/me", &alice.with_token(token))
        .await
        .assert_ok("the re-authenticated token");
    assert_eq!(next.auth_time, now + 1, "auth_time does not move");
    assert!(
        next.fresh.is_some_and(|f| f >= next.auth_time),
        "fresh {:?} before auth_time {}",
        next.fresh,
        next.auth_time
    );
}

// =======================================================================================
// 5. Remember me
// =======================================================================================

#[tokio::test]
async fn a_remembered_login_gets_a_persistent_cookie_and_the_remembered_lifetimes() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (mut alice, login) = login_as(&kit, &app, "alice", true).await;

    let cookie = login.cookie.clone().unwrap();
    assert_eq!(cookie.max_age, Some(REMEMBER_IDLE), "Max-Age follows exp");
    assert_eq!(login.expires_in(), Some(REMEMBER_IDLE));
    let token = claims(&kit, &alice.token);
    assert!(token.rem, "rem: true");
    assert_eq!(token.exp, t0 + REMEMBER_IDLE);
    assert_eq!(token.fresh, Some(t0));

    // Two hours idle (four times the normal idle timeout): still signed in.
    kit.advance(secs(2 * HOUR));
    let me = touch(&kit, &app, &mut alice).await;
    assert_eq!(me.json()["remembered"], true);
    assert_eq!(me.json()["absolute_deadline"], t0 + REMEMBER_ABSOLUTE);
    assert_eq!(me.cookie.as_ref().unwrap().max_age, Some(REMEMBER_IDLE));
    assert_eq!(me.expires_in(), Some(REMEMBER_IDLE));
    assert!(
        claims(&kit, &alice.token).rem,
        "the reissue stays remembered"
    );
}

#[tokio::test]
async fn a_remembered_session_ends_at_its_absolute_cap_however_active() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (mut alice, _) = login_as(&kit, &app, "alice", true).await;

    // Active every five days; each reissue's Max-Age follows its exp.
    for day in [5, 10, 15, 20, 25] {
        kit.clock().set(t0 + day * DAY);
        let reply = touch(&kit, &app, &mut alice).await;
        let exp = (t0 + day * DAY + REMEMBER_IDLE).min(t0 + REMEMBER_ABSOLUTE);
        assert_eq!(claims(&kit, &alice.token).exp, exp, "day {day}");
        assert_eq!(
            reply.cookie.as_ref().unwrap().max_age,
            Some(exp - kit.now()),
            "day {day}"
        );
    }
    kit.clock().set(t0 + 29 * DAY);
    let reply = touch(&kit, &app, &mut alice).await;
    assert_eq!(reply.cookie.as_ref().unwrap().max_age, Some(DAY));
    assert_eq!(claims(&kit, &alice.token).exp, t0 + REMEMBER_ABSOLUTE);

    kit.clock().set(t0 + REMEMBER_ABSOLUTE + LEEWAY - 1);
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_ok("the last second of the leeway");
    kit.advance(secs(1));
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::ExpiredAbsolute, "30 days + leeway");
}

#[tokio::test]
async fn a_remembered_logout_is_held_until_the_idle_bound() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (alice, _) = login_as(&kit, &app, "alice", true).await;
    let sid = claims(&kit, &alice.token).sid;

    kit.advance(secs(2 * HOUR));
    post_as(&kit, &app, "/session/logout", &alice)
        .await
        .assert_cleared_only("logout");
    let held = entry(&kit, &sid);
    assert_eq!(held.revoked_at, t0 + 2 * HOUR);
    // min(auth_time + 30 d, revoked_at + 7 d) + leeway: the idle bound here.
    assert_eq!(held.expires_at, t0 + 2 * HOUR + REMEMBER_IDLE + LEEWAY);
}

#[tokio::test]
async fn a_remembered_logout_is_held_until_the_absolute_bound() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (mut alice, _) = login_as(&kit, &app, "alice", true).await;
    let sid = claims(&kit, &alice.token).sid;
    for day in [5, 10, 15, 20, 25] {
        kit.clock().set(t0 + day * DAY);
        touch(&kit, &app, &mut alice).await;
    }

    post_as(&kit, &app, "/session/logout", &alice)
        .await
        .assert_cleared_only("logout");
    let held = entry(&kit, &sid);
    assert_eq!(held.revoked_at, t0 + 25 * DAY);
    // min(auth_time + 30 d, revoked_at + 7 d) + leeway: the absolute bound here.
    assert_eq!(held.expires_at, t0 + REMEMBER_ABSOLUTE + LEEWAY);
}

#[tokio::test]
async fn a_login_not_remembered_gets_a_browser_session_cookie_and_the_normal_lifetimes() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (mut alice, login) = login_as(&kit, &app, "alice", false).await;
    assert_browser_session_cookie(login.cookie.as_ref().unwrap(), "login");
    let token = claims(&kit, &alice.token);
    assert!(!token.rem);
    assert_eq!(token.exp, t0 + IDLE);
    assert_eq!(login.expires_in(), Some(IDLE));

    kit.advance(secs(REISSUE_AFTER));
    let reissue = touch(&kit, &app, &mut alice).await;
    assert_browser_session_cookie(reissue.cookie.as_ref().unwrap(), "reissue");
    assert_eq!(reissue.json()["absolute_deadline"], t0 + ABSOLUTE);

    let lat = kit.now();
    kit.clock().set(lat + IDLE + LEEWAY - 1);
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_ok("idle timeout + leeway - 1 s");
    kit.advance(secs(1));
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::ExpiredIdle, "the normal idle timeout");
}

#[tokio::test]
async fn remember_without_remember_me_configured_keeps_normal_lifetimes_and_a_persistent_cookie() {
    let kit = TestKit::configure(|b| b.browser_session_cookies(true)).unwrap();
    let (app, _) = app(&kit);
    let t0 = kit.now();
    let (alice, login) = login_as(&kit, &app, "alice", true).await;
    assert_eq!(
        login.cookie.as_ref().unwrap().max_age,
        Some(IDLE),
        "persistent"
    );
    let token = claims(&kit, &alice.token);
    assert!(token.rem);
    assert_eq!(token.exp, t0 + IDLE, "the normal idle timeout");
    let me = get_as(&kit, &app, "/me", &alice).await;
    assert_eq!(me.json()["absolute_deadline"], t0 + ABSOLUTE);

    // The same kit without "remember": a browser-session cookie.
    let (_, plain) = login_as(&kit, &app, "bob", false).await;
    assert_browser_session_cookie(plain.cookie.as_ref().unwrap(), "not remembered");

    kit.advance(secs(IDLE + LEEWAY));
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::ExpiredIdle, "normal lifetimes");
}

#[tokio::test]
async fn a_remembered_session_stays_remembered_through_update_and_reauth() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", true).await;
    kit.advance(secs(HOUR));
    let reply = post_as(&kit, &app, "/profile/Alice/reauth", &alice).await;
    reply.assert_ok("update + reauth");
    assert_eq!(reply.cookie.as_ref().unwrap().max_age, Some(REMEMBER_IDLE));
    let next = claims(&kit, &reply.one_new_token("update"));
    assert!(next.rem);
    assert_eq!(next.exp, kit.now() + REMEMBER_IDLE);
}

/// `POST /session/refresh` answers the status "as of the new token": for a remembered
/// session that is the remembered idle deadline, as its `Session-Expires-In` says.
#[tokio::test]
async fn the_refresh_route_reports_a_remembered_sessions_own_deadline() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", true).await;
    kit.advance(secs(2 * HOUR));

    let reply = post_as(&kit, &app, "/session/refresh", &alice).await;
    reply.assert_ok("refresh");
    let next = claims(&kit, &reply.one_new_token("refresh"));
    let now = kit.now();
    assert_eq!(next.exp, now + REMEMBER_IDLE);
    assert_eq!(reply.expires_in(), Some(REMEMBER_IDLE));
    let body = reply.json();
    assert_eq!(body["idle_deadline"], next.exp, "body: {body}");
    assert_eq!(body["expires_in"], REMEMBER_IDLE, "body: {body}");
}

// =======================================================================================
// 6. The handle
// =======================================================================================

#[tokio::test]
async fn the_handle_issues_a_token_accepted_as_the_cookie() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    let now = kit.now();

    let issued = handle
        .issue(Login::new("carol", profile("Carol")).unwrap())
        .unwrap();
    let c = &issued.claims;
    assert_eq!(c.sub, "carol");
    assert_eq!((c.auth_time, c.iat, c.lat), (now, now, now));
    assert_eq!(c.fresh, Some(now));
    assert_eq!(c.exp, now + IDLE);
    assert!(!c.rem);
    assert_eq!(claims(&kit, &issued.token), issued.claims);

    let carol = Client {
        token: issued.token.clone(),
        csrf: c.csrf.expose().to_owned(),
    };
    let me = get_as(&kit, &app, "/me", &carol).await;
    me.assert_ok("the issued token as a cookie");
    assert_eq!(me.json()["sid"], c.sid.as_str());
    assert_eq!(me.json()["display_name"], "Carol");
    post_as(&kit, &app, "/sensitive", &carol)
        .await
        .assert_ok("its CSRF token works; it is fresh");
    assert_eq!(handle.verify(&issued.token).unwrap().id(), c.sid);
}

#[tokio::test]
async fn the_handle_issues_a_token_accepted_as_bearer_and_reissued_in_the_header() {
    let kit = TestKit::configure(|b| b.accept_bearer(true)).unwrap();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    let issued = handle
        .issue(Login::new("cli", profile("CLI")).unwrap())
        .unwrap();
    let bearer = format!("Bearer {}", issued.token);

    let me = call(
        &kit,
        &app,
        req(Method::GET, "/me", &[("authorization", &bearer)]),
    )
    .await;
    me.assert_ok("bearer");
    assert_eq!(me.json()["sub"], "cli");

    // An update over bearer (no CSRF needed): the new token in `Session-Token`, no cookie.
    kit.advance(secs(10));
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "/profile/Robot",
            &[("authorization", &bearer)],
        ),
    )
    .await;
    reply.assert_ok("update over bearer");
    reply.assert_no_cookie_for("bearer sessions get no cookie");
    let next = claims(&kit, reply.header(TOKEN_HEADER).expect("Session-Token"));
    assert_eq!(next.data, profile("Robot"));
    assert_eq!(next.sid, issued.claims.sid);
}

#[tokio::test]
async fn an_issue_in_the_second_of_a_logout_everywhere_is_dated_one_second_later() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    let (before, _) = login_as(&kit, &app, "alice", false).await;
    let now = kit.now();

    assert_eq!(handle.revoke_user("alice").unwrap(), now, "the cut-off");
    let issued = handle
        .issue(Login::new("alice", Profile::default()).unwrap())
        .unwrap();
    assert_eq!(issued.claims.auth_time, now + 1);
    assert_eq!(issued.claims.iat, now);
    assert_eq!(issued.claims.fresh, Some(now + 1));

    let after = Client {
        token: issued.token.clone(),
        csrf: issued.claims.csrf.expose().to_owned(),
    };
    get_as(&kit, &app, "/me", &after)
        .await
        .assert_ok("the new login is not refused by the cut-off");
    get_as(&kit, &app, "/me", &before)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the session before the cut-off");
    assert!(handle.verify(&issued.token).is_ok());
}

#[tokio::test]
async fn an_issue_after_two_logouts_everywhere_in_one_second_fails_until_the_next_second() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    let now = kit.now();
    assert_eq!(handle.revoke_user("alice").unwrap(), now);
    assert_eq!(handle.revoke_user("alice").unwrap(), now + 1);

    let refused = handle.issue(Login::new("alice", Profile::default()).unwrap());
    assert!(
        matches!(refused, Err(EncodeError::LoginTooSoon)),
        "{refused:?}"
    );
    // Other users are not concerned.
    handle
        .issue(Login::new("bob", Profile::default()).unwrap())
        .unwrap();

    kit.advance(secs(1));
    let issued = handle
        .issue(Login::new("alice", Profile::default()).unwrap())
        .unwrap();
    assert_eq!(issued.claims.auth_time, now + 2);
    assert_eq!(issued.claims.iat, now + 1);
    let alice = Client {
        token: issued.token,
        csrf: issued.claims.csrf.expose().to_owned(),
    };
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_ok("issued a second later");
}

#[tokio::test]
async fn a_login_after_two_logouts_everywhere_in_one_second_answers_503_retry() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    handle.revoke_user("alice").unwrap();
    handle.revoke_user("alice").unwrap();

    let reply = call(&kit, &app, req(Method::POST, "/login/alice", &[])).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert_eq!(reply.code(), "session_login_retry");
    assert_eq!(reply.header("retry-after"), Some("1"));
    reply.assert_no_cookie_for("no session");

    kit.advance(secs(1));
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_ok("a second later");
}

#[tokio::test]
async fn revoke_session_refuses_that_session_and_no_other() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    let (laptop, _) = login_as(&kit, &app, "alice", false).await;
    let (phone, _) = login_as(&kit, &app, "alice", false).await;
    let (bob, _) = login_as(&kit, &app, "bob", false).await;
    let sid = claims(&kit, &laptop.token).sid;

    kit.advance(secs(10));
    handle.revoke_session(&sid).unwrap();
    get_as(&kit, &app, "/me", &laptop)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "the revoked session");
    assert_eq!(handle.verify(&laptop.token).unwrap_err(), Refusal::Revoked);
    get_as(&kit, &app, "/me", &phone)
        .await
        .assert_ok("the user's other session");
    get_as(&kit, &app, "/me", &bob)
        .await
        .assert_ok("another user");
}

#[tokio::test]
async fn revoke_user_refuses_every_session_of_that_user_and_no_other() {
    let kit = remember_kit();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    let (laptop, _) = login_as(&kit, &app, "alice", false).await;
    let (phone, _) = login_as(&kit, &app, "alice", true).await;
    let (bob, _) = login_as(&kit, &app, "bob", true).await;

    kit.advance(secs(10));
    assert_eq!(handle.revoke_user("alice").unwrap(), kit.now());
    for (client, what) in [(&laptop, "laptop"), (&phone, "remembered phone")] {
        get_as(&kit, &app, "/me", client)
            .await
            .assert_refused_and_cleared_only(Refusal::Revoked, what);
    }
    get_as(&kit, &app, "/me", &bob)
        .await
        .assert_ok("another user");
    // Held as long as the longest-lived (remembered) session could live.
    let held = entry(&kit, "alice");
    assert_eq!(held.before, Some(kit.now()));
    assert_eq!(held.expires_at, kit.now() + REMEMBER_ABSOLUTE + LEEWAY);
}

#[tokio::test]
async fn the_handle_from_a_handler_revokes_and_issues() {
    let kit = TestKit::new();
    let (app, _) = app(&kit);
    let (alice, _) = login_as(&kit, &app, "alice", false).await;
    let (bob, _) = login_as(&kit, &app, "bob", false).await;
    let alice_sid = claims(&kit, &alice.token).sid;

    let reply = post_as(&kit, &app, &format!("/admin/revoke/{alice_sid}"), &bob).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    reply.assert_no_cookie_for("the admin's own session is untouched");
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(Refusal::Revoked, "revoked by the admin");
    get_as(&kit, &app, "/me", &bob).await.assert_ok("the admin");

    let reply = post_as(&kit, &app, "/token", &bob).await;
    reply.assert_ok("a token for the CLI");
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    let cli = claims(&kit, &token);
    assert_eq!(cli.sub, "bob");
    assert_ne!(
        cli.sid,
        claims(&kit, &bob.token).sid,
        "a session of its own"
    );
    let me = get_as(&kit, &app, "/me", &bob.with_token(token)).await;
    me.assert_ok("the issued token");
    assert_eq!(me.json()["sid"], cli.sid.as_str());
}

/// `SessionHandle::revoke_session` is documented to hold the revocation "with the longest
/// configured idle timeout, since the login time is not known here" (I2), so that no
/// token of the session comes back after a sweep (I1) — also when the remembered idle
/// timeout is the shorter one.
#[tokio::test]
async fn revoke_session_outlives_every_token_when_the_remembered_idle_is_shorter() {
    let kit =
        TestKit::configure(|b| b.remember_me(secs(10 * MINUTE), secs(REMEMBER_ABSOLUTE))).unwrap();
    let (app, _) = app(&kit);
    let handle = kit.layer::<Profile>().handle();
    let (alice, _) = login_as(&kit, &app, "alice", false).await; // idle 30 min
    let sid = claims(&kit, &alice.token).sid;
    let now = kit.now();

    handle.revoke_session(&sid).unwrap();
    let held_until = entry(&kit, &sid).expires_at;
    kit.advance(secs(15 * MINUTE));
    kit.store().sweep(kit.now());
    get_as(&kit, &app, "/me", &alice)
        .await
        .assert_refused_and_cleared_only(
            Refusal::Revoked,
            "after a sweep, within the idle timeout",
        );
    assert!(
        held_until >= now + IDLE + LEEWAY,
        "held until {held_until}, the token is valid until {}",
        now + IDLE + LEEWAY
    );
}

// =======================================================================================
// 7. App data that evolves
// =======================================================================================

const HS_SECRET: &[u8] = b"lifecycle-tests-hs256-secret-of-at-least-32-bytes";
const HS_KID: &str = "hs-lifecycle";
const COOKIE: &str = "__Host-session";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct V1 {
    role: String,
}

/// V1 plus a required field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct V2Strict {
    role: String,
    level: u8,
}

/// V1 plus a field with a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct V2Default {
    role: String,
    #[serde(default)]
    level: u8,
}

/// V1 plus an optional field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct V2Optional {
    role: String,
    level: Option<u8>,
}

/// One HS256 key (so raw claim sets can be signed too), clock and store, shared by the
/// layers of every data type.
struct Versions {
    config: SessionConfig,
    store: Arc<MemoryDenylist>,
}

impl Versions {
    fn new() -> Self {
        let clock = ManualClock::default();
        let ring = Keyring::new(Key::hs256(HS_KID, HS_SECRET).unwrap()).unwrap();
        let config = SessionConfig::builder(ring)
            .clock(clock.clone())
            .build()
            .unwrap();
        let store = MemoryDenylist::builder().build(&clock).unwrap();
        Self { config, store }
    }

    fn layer<T: SessionData>(&self) -> SessionLayer<T> {
        SessionLayer::new(self.config.clone(), self.store.clone())
    }

    /// A layer of version `T` serving `GET /data`.
    fn app<T: SessionData>(&self) -> Router {
        Router::new()
            .route("/data", get(show::<T>))
            .layer(self.layer::<T>())
    }

    /// A V1 session's token, issued by a V1 layer.
    fn v1_token(&self) -> String {
        self.layer::<V1>()
            .handle()
            .issue(
                Login::new(
                    "alice",
                    V1 {
                        role: "admin".into(),
                    },
                )
                .unwrap(),
            )
            .unwrap()
            .token
    }

    /// A token over exactly this claim set, validly signed with the key.
    fn signed(&self, claims: &Value) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({ "alg": "HS256", "kid": HS_KID, "typ": "session+jwt" });
        let input = format!("{}.{}", b64(&header), b64(claims));
        let mut mac = Hmac::<Sha256>::new_from_slice(HS_SECRET).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    async fn get(&self, app: &Router, token: &str) -> Reply {
        let cookie = format!("{COOKIE}={token}");
        let req = req(Method::GET, "/data", &[("cookie", &cookie)]);
        take_apart(COOKIE, app.clone().oneshot(req).await.unwrap()).await
    }
}

async fn show<T: SessionData>(s: Session<T>) -> Json<T> {
    Json(s.data().clone())
}

#[tokio::test]
async fn data_of_an_older_shape_is_refused_as_data_invalid_and_cleared() {
    let v = Versions::new();
    let token = v.v1_token();

    let v1 = v.get(&v.app::<V1>(), &token).await;
    v1.assert_ok("the version that minted it");
    assert_eq!(v1.json(), json!({ "role": "admin" }));

    let v2 = v.get(&v.app::<V2Strict>(), &token).await;
    v2.assert_refused_and_cleared_only(Refusal::DataInvalid, "a new required field");
    assert_eq!(v2.status, StatusCode::UNAUTHORIZED);
    assert_eq!(v2.code(), "session_data_invalid");
    assert_eq!(
        v.layer::<V2Strict>().verify_token(&token).unwrap_err(),
        Refusal::DataInvalid
    );
}

#[tokio::test]
async fn a_new_field_with_a_default_accepts_older_tokens() {
    let v = Versions::new();
    let token = v.v1_token();

    let with_default = v.get(&v.app::<V2Default>(), &token).await;
    with_default.assert_ok("#[serde(default)] level");
    assert_eq!(with_default.json(), json!({ "role": "admin", "level": 0 }));

    let optional = v.get(&v.app::<V2Optional>(), &token).await;
    optional.assert_ok("Option<u8> level");
    assert_eq!(optional.json(), json!({ "role": "admin", "level": null }));
}

#[tokio::test]
async fn claims_that_are_not_ours_are_still_malformed() {
    let v = Versions::new();
    let now = v.config.clock().now();
    // Validly signed with our key and type, but another system's claim set.
    let foreign = v.signed(&json!({
        "sub": "alice", "scope": "read write", "iat": now, "exp": now + 600,
    }));
    let reply = v.get(&v.app::<V1>(), &foreign).await;
    reply.assert_refused_and_cleared_only(Refusal::Malformed, "not our claims");

    // Our claims without the data claim at all: still not ours.
    let no_data = v.signed(&json!({
        "iss": "jwt-session", "aud": "jwt-session", "sub": "alice",
        "sid": "AAAAAAAAAAAAAAAAAAAAAA", "jti": "BBBBBBBBBBBBBBBBBBBBBB",
        "auth_time": now, "iat": now, "lat": now, "exp": now + IDLE,
        "csrf": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_",
    }));
    let reply = v.get(&v.app::<V1>(), &no_data).await;
    reply.assert_refused_and_cleared_only(Refusal::Malformed, "no dat claim");

    // The same claims with data of another shape: ours, with invalid data.
    let mut other_data = json!({
        "iss": "jwt-session", "aud": "jwt-session", "sub": "alice",
        "sid": "AAAAAAAAAAAAAAAAAAAAAA", "jti": "BBBBBBBBBBBBBBBBBBBBBB",
        "auth_time": now, "iat": now, "lat": now, "exp": now + IDLE,
        "csrf": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_",
    });
    other_data["dat"] = json!({ "name": 7 });
    let reply = v.get(&v.app::<V1>(), &v.signed(&other_data)).await;
    reply.assert_refused_and_cleared_only(Refusal::DataInvalid, "our claims, other data");
}
