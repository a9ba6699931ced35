//! The session layer proved end to end through the public API: a real axum `Router` driven
//! with `oneshot` and the test kit's manual clock (no sleeps, no sockets, no tolerance
//! windows). Login, sliding and the absolute cap, when a reissue happens, clearing refused
//! cookies, I1 under logout / logout-all / in-flight races, CSRF and origin checks, the
//! ready-made routes, cookie parsing, and refusal reasons in response extensions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine as _;
use http::{Method, Request, StatusCode, header};
use jwt_session::denylist::TokenFacts;
use jwt_session::testing::{TestKit, set_cookies};
use jwt_session::{
    Clock, EXPIRES_IN_HEADER, MemoryDenylist, Policy, Refusal, RevocationError, RevocationStore,
    SameSite, Session, SessionLayer,
};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tower::ServiceExt as _;

use support::harness::{COOKIE_NAME, Client, app, call, get_with, login_as, req, routes, secs};

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

const MIN: u64 = 60;
const IDLE: i64 = 30 * 60;
const ABSOLUTE: i64 = 8 * 3600;

/// idle 30 min, absolute 2 h, zero leeway: exact boundaries.
fn short_kit() -> TestKit {
    TestKit::configure(|b| {
        b.idle_timeout(secs(30 * MIN))
            .absolute_timeout(secs(120 * MIN))
            .leeway(Duration::ZERO)
    })
    .unwrap()
}

/// `token` with one character of its signature changed.
fn tamper_signature(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = token.rfind('.').unwrap() + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. Login
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_sets_a_secure_cookie_whose_max_age_runs_to_exp() {
    let kit = TestKit::new();
    let app = app(&kit);
    let t0 = kit.now();

    let (client, reply) = login_as(&kit, &app, "alice").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.all_cookies.len(), 1, "{:?}", reply.all_cookies);
    let set = reply.cookie.clone().unwrap();
    assert_eq!(set.name, COOKIE_NAME);
    let parsed = cookie::Cookie::parse(set.raw.clone()).unwrap();
    assert_eq!(parsed.http_only(), Some(true), "{}", set.raw);
    assert_eq!(parsed.same_site(), Some(SameSite::Lax), "{}", set.raw);
    assert_eq!(parsed.path(), Some("/"), "{}", set.raw);
    assert_eq!(parsed.secure(), Some(true), "{}", set.raw);
    assert_eq!(parsed.domain(), None, "{}", set.raw);

    let claims = client.claims(&kit);
    assert_eq!(claims.sub, "alice");
    assert_eq!(
        (claims.auth_time, claims.iat, claims.lat, claims.exp),
        (t0, t0, t0, t0 + IDLE)
    );
    assert_eq!(set.max_age, Some(claims.exp - t0));
    assert_eq!(set.max_age, Some(IDLE));
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1800"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some(EXPIRES_IN_HEADER)
    );
    assert_eq!(reply.json()["csrf"], claims.csrf.expose());

    // The cookie it set is a working session.
    let me = client.get(&kit, &app, "/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["sid"], claims.sid.as_str());
}

#[tokio::test]
async fn every_login_is_a_new_session_with_new_ids() {
    let kit = TestKit::new();
    let app = app(&kit);
    let (a, _) = login_as(&kit, &app, "alice").await;
    let (b, _) = login_as(&kit, &app, "alice").await;
    let (ca, cb) = (a.claims(&kit), b.claims(&kit));
    assert_ne!(ca.sid, cb.sid);
    assert_ne!(ca.jti, cb.jti);
    assert_ne!(ca.csrf, cb.csrf);
    // A login replacing a dead cookie sets the new one, not a removal.
    kit.advance(secs(31 * MIN));
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "/login/alice",
            &[("cookie", a.cookie().as_str())],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let set: Vec<_> = reply
        .all_cookies
        .iter()
        .filter(|c| c.name == COOKIE_NAME)
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(!set[0].is_removal());
}

// ---------------------------------------------------------------------------------------
// 2. Sliding, idle and absolute timeouts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn activity_every_ten_minutes_slides_past_idle_until_the_absolute_cap() {
    let kit = short_kit();
    let app = app(&kit);
    let t0 = kit.now();
    let (mut client, _) = login_as(&kit, &app, "alice").await;
    let first = client.claims(&kit);

    for step in 1..=11 {
        kit.advance(secs(10 * MIN));
        let now = kit.now();
        let before = client.claims(&kit);
        let reply = client.get(&kit, &app, "/me").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "step {step}: {}",
            reply.text()
        );
        assert!(client.follow(&reply), "step {step}: reissued");
        let c = client.claims(&kit);
        assert_eq!(c.sid, first.sid, "step {step}");
        assert_eq!(
            c.auth_time, t0,
            "step {step}: a reissue never moves auth_time"
        );
        assert_eq!(c.csrf, first.csrf, "step {step}");
        assert_ne!(c.jti, before.jti, "step {step}");
        assert_eq!((c.iat, c.lat), (now, now), "step {step}");
        let exp = (now + IDLE).min(t0 + 2 * 3600);
        assert_eq!(c.exp, exp, "step {step}");
        let set = reply.cookie.as_ref().unwrap();
        assert_eq!(set.max_age, Some(exp - now), "step {step}");
        assert_eq!(
            reply.header(EXPIRES_IN_HEADER),
            Some((exp - now).to_string().as_str()),
            "step {step}"
        );
    }
    // 110 minutes in: long past the 30-minute idle timeout, kept alive by reissue.
    assert_eq!(kit.now() - t0, 110 * 60);

    // One second before the cap: still valid; the token cannot outlive the cap.
    kit.advance(secs(10 * MIN - 1));
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.follow(&reply));
    let c = client.claims(&kit);
    assert_eq!(c.exp, t0 + 2 * 3600);
    assert_eq!(reply.cookie.as_ref().unwrap().max_age, Some(1));
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1"));

    // At the cap: over, however active.
    kit.advance(secs(1));
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredAbsolute);
    reply.assert_cleared();
}

#[tokio::test]
async fn no_activity_ends_the_session_at_the_idle_timeout_exactly() {
    let kit = short_kit();
    let app = app(&kit);
    let (original, _) = login_as(&kit, &app, "alice").await;

    kit.advance(secs(30 * MIN - 1));
    let reply = original.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut slid = original.clone();
    assert!(slid.follow(&reply));

    kit.advance(secs(1));
    let reply = original.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredIdle);
    reply.assert_cleared();
    // The token reissued a second earlier is alive: activity slid the deadline.
    let reply = slid.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_idle_timeout_honours_the_default_leeway_exactly() {
    let kit = TestKit::new(); // leeway 5 s
    let app = app(&kit);
    let a = Client::minted(&kit, "alice");
    let b = Client::minted(&kit, "alice");
    kit.advance(secs(30 * MIN + 4));
    assert_eq!(a.get(&kit, &app, "/me").await.status, StatusCode::OK);
    kit.advance(secs(1));
    let reply = b.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredIdle);
    reply.assert_cleared();
}

#[tokio::test]
async fn the_default_absolute_cap_is_eight_hours() {
    let kit = TestKit::configure(|b| b.leeway(Duration::ZERO)).unwrap();
    let app = app(&kit);
    let t0 = kit.now();
    let (mut client, _) = login_as(&kit, &app, "alice").await;
    // Active every 20 minutes for 8 hours.
    while kit.now() + 20 * 60 < t0 + ABSOLUTE {
        kit.advance(secs(20 * MIN));
        let reply = client.get(&kit, &app, "/me").await;
        assert_eq!(reply.status, StatusCode::OK, "at {}", kit.now() - t0);
        assert!(client.follow(&reply));
        assert_eq!(client.claims(&kit).auth_time, t0);
    }
    kit.clock().set(t0 + ABSOLUTE);
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredAbsolute);
    reply.assert_cleared();
}

// ---------------------------------------------------------------------------------------
// 3. When a reissue happens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reissue_waits_for_reissue_after_exactly() {
    let kit = TestKit::new(); // reissue after 60 s
    let app = app(&kit);
    let t0 = kit.now();
    let mut client = Client::minted(&kit, "alice");

    kit.advance(secs(59));
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.assert_no_cookie();
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1741"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    kit.advance(secs(1));
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.follow(&reply), "reissued at exactly reissue_after");
    assert_eq!(client.claims(&kit).lat, t0 + 60);
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1800"));

    // The fresh token is not reissued again in the same second, nor 59 s later.
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_no_cookie();
    kit.advance(secs(59));
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_no_cookie();
    kit.advance(secs(1));
    let reply = client.get(&kit, &app, "/me").await;
    assert!(client.follow(&reply));
}

#[tokio::test]
async fn reissue_only_on_success_responses() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61));

    for code in [400u16, 403, 404, 409, 500, 503] {
        let reply = client.get(&kit, &app, &format!("/status/{code}")).await;
        assert_eq!(reply.status.as_u16(), code);
        reply.assert_no_cookie();
        // Still told when the session ends (as of the token it carries).
        assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1739"), "{code}");
    }
    for code in [200u16, 201, 204] {
        let reply = client.get(&kit, &app, &format!("/status/{code}")).await;
        assert_eq!(reply.status.as_u16(), code);
        assert!(reply.new_token().is_some(), "{code} reissues");
    }
    let reply = client.get(&kit, &app, "/redirect").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.new_token().is_some(), "a 303 (< 400) reissues");
}

#[tokio::test]
async fn a_logout_response_carries_only_the_removal_cookie() {
    let kit = TestKit::new();
    let app = app(&kit);
    for route in ["/session/logout", "/session/logout-all"] {
        let client = Client::minted(&kit, "alice");
        kit.advance(secs(61)); // a reissue is due
        let reply = client.post(&kit, &app, route).await;
        assert_eq!(reply.status, StatusCode::OK, "{route}: {}", reply.text());
        assert_eq!(
            reply.all_cookies.len(),
            1,
            "{route}: {:?}",
            reply.all_cookies
        );
        reply.assert_cleared();
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        kit.advance(secs(1));
    }
}

#[tokio::test]
async fn a_session_revoked_during_the_request_with_reissue_due_gets_no_new_token() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61));
    let reply = client.get(&kit, &app, "/revoke-self").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "revoked");
    assert_eq!(reply.new_token(), None, "no token for a revoked session");
    reply.assert_cleared();
    client
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test]
async fn a_session_revoked_during_the_request_before_reissue_is_due_is_cleared_too() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(10)); // reissue not due yet
    let reply = client.get(&kit, &app, "/revoke-self").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.new_token(), None, "no token for a revoked session");
    // The session is dead: the response must clear it like any other dead cookie.
    reply.assert_cleared();
    client
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

// ---------------------------------------------------------------------------------------
// 4. Refused cookies are cleared; require_session; a missing layer
// ---------------------------------------------------------------------------------------

/// Cookie values refused for each reason, with the reason. Moves the clock 31 minutes
/// (so that a token minted before is idle-expired); everything else is minted after.
fn refused_tokens_now(kit: &TestKit) -> Vec<(&'static str, String, Refusal)> {
    let (expired, _) = kit.mint("alice", ()).unwrap();
    kit.advance(secs(31 * MIN));
    let (valid, _) = kit.mint("alice", ()).unwrap();
    let (foreign, _) = TestKit::new().mint("alice", ()).unwrap();
    let (revoked, claims) = kit.mint("alice", ()).unwrap();
    kit.store()
        .revoke_session(
            &claims.sid,
            claims.auth_time,
            kit.config().policy(),
            kit.clock(),
        )
        .unwrap();
    vec![
        ("expired", expired, Refusal::ExpiredIdle),
        ("garbage", "garbage".to_owned(), Refusal::Malformed),
        ("not base64", "a.b.c".to_owned(), Refusal::Malformed),
        (
            "bad signature",
            tamper_signature(&valid),
            Refusal::BadSignature,
        ),
        ("unknown key", foreign, Refusal::UnknownKey),
        ("revoked", revoked, Refusal::Revoked),
    ]
}

#[tokio::test]
async fn a_refused_cookie_is_answered_401_and_cleared() {
    let kit = TestKit::new();
    let app = app(&kit);
    for (what, token, reason) in refused_tokens_now(&kit) {
        let cookie = format!("{COOKIE_NAME}={token}");
        let reply = call(&kit, &app, get_with("/me", &cookie)).await;
        reply.assert_refused(reason);
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        assert_eq!(reply.json()["error"]["message"], reason.message(), "{what}");
        reply.assert_cleared();
    }
}

#[tokio::test]
async fn a_refused_cookie_on_a_public_route_passes_through_and_is_cleared() {
    let kit = TestKit::new();
    let app = app(&kit);
    for (what, token, _reason) in refused_tokens_now(&kit) {
        let cookie = format!("{COOKIE_NAME}={token}");
        let reply = call(&kit, &app, get_with("/public", &cookie)).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}");
        assert_eq!(reply.text(), "public", "{what}");
        reply.assert_cleared();
    }
}

#[tokio::test]
async fn optional_session_is_none_for_a_refused_cookie_which_is_cleared() {
    let kit = TestKit::new();
    let app = app(&kit);
    for (what, token, _reason) in refused_tokens_now(&kit) {
        let cookie = format!("{COOKIE_NAME}={token}");
        let reply = call(&kit, &app, get_with("/maybe", &cookie)).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}");
        assert_eq!(reply.json(), json!({ "session": null }), "{what}");
        reply.assert_cleared();
    }
    // With a valid session: Some; without a cookie: None and nothing to clear.
    let client = Client::minted(&kit, "bob");
    let reply = client.get(&kit, &app, "/maybe").await;
    assert_eq!(reply.json(), json!({ "session": "bob" }));
    let reply = call(&kit, &app, req(Method::GET, "/maybe", &[])).await;
    assert_eq!(reply.json(), json!({ "session": null }));
    reply.assert_no_cookie();
}

#[tokio::test]
async fn no_cookie_is_401_session_missing_and_nothing_is_cleared() {
    let kit = TestKit::new();
    let app = app(&kit);
    let reply = call(&kit, &app, req(Method::GET, "/me", &[])).await;
    reply.assert_refused(Refusal::Missing);
    reply.assert_no_cookie();
    let reply = call(&kit, &app, req(Method::GET, "/public", &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.assert_no_cookie();
    assert_eq!(reply.header(EXPIRES_IN_HEADER), None);
}

#[tokio::test]
async fn the_removal_cookie_repeats_custom_cookie_attributes() {
    let kit = TestKit::configure(|b| {
        b.cookie_name("sess")
            .cookie_path("/app")
            .cookie_domain("example.com")
            .cookie_same_site(SameSite::Strict)
    })
    .unwrap();
    let app = app(&kit);
    let reply = call(&kit, &app, get_with("/me", "sess=garbage")).await;
    reply.assert_refused(Refusal::Malformed);
    let removal = reply.cookie.clone().expect("the refused cookie is cleared");
    assert!(removal.is_removal(), "{}", removal.raw);
    let parsed = cookie::Cookie::parse(removal.raw.clone()).unwrap();
    assert_eq!(parsed.path(), Some("/app"));
    assert_eq!(parsed.domain(), Some("example.com"));
    assert_eq!(parsed.same_site(), Some(SameSite::Strict));
    assert_eq!(parsed.secure(), Some(true));
    assert_eq!(parsed.http_only(), Some(true));

    // And it matches what a login sets, attribute for attribute.
    let reply = call(&kit, &app, req(Method::POST, "/login/alice", &[])).await;
    let set = cookie::Cookie::parse(reply.all_cookies[0].raw.clone()).unwrap();
    assert_eq!(set.name(), "sess");
    assert_eq!(
        (
            set.path(),
            set.domain(),
            set.same_site(),
            set.secure(),
            set.http_only()
        ),
        (
            parsed.path(),
            parsed.domain(),
            parsed.same_site(),
            parsed.secure(),
            parsed.http_only()
        )
    );
}

#[tokio::test]
async fn require_session_answers_401_itself() {
    let kit = TestKit::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/anything",
            get(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    "handled"
                }
            }),
        )
        .layer(kit.layer::<()>().require_session());

    let reply = call(&kit, &app, req(Method::GET, "/anything", &[])).await;
    reply.assert_refused(Refusal::Missing);
    reply.assert_no_cookie();

    for (what, token, reason) in refused_tokens_now(&kit) {
        let cookie = format!("{COOKIE_NAME}={token}");
        let reply = call(&kit, &app, get_with("/anything", &cookie)).await;
        reply.assert_refused(reason);
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        reply.assert_cleared();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler never ran");

    let client = Client::minted(&kit, "alice");
    let reply = client.get(&kit, &app, "/anything").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "handled");
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1800"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_session_extractor_without_the_layer_is_a_500_naming_the_layer() {
    let kit = TestKit::new();
    let client = Client::minted(&kit, "alice");
    // No layer at all.
    let bare = routes();
    for uri in ["/me", "/maybe"] {
        let reply = client.get(&kit, &bare, uri).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert!(
            reply.text().contains("SessionLayer"),
            "{uri}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["error"]["code"], "session_layer_missing");
    }
    // A layer for another data type is not the layer this extractor needs.
    let other = routes().layer(kit.layer::<String>());
    let reply = client.get(&kit, &other, "/me").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.text().contains("SessionLayer"), "{}", reply.text());
}

/// A revocation store that cannot answer: the layer must refuse (I5).
struct Unavailable;

impl RevocationStore for Unavailable {
    fn revoke_session(
        &self,
        _sid: &str,
        _auth_time: i64,
        _policy: &Policy,
        _clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        Err(RevocationError::Backend("down".into()))
    }
    fn revoke_subject(
        &self,
        _sub: &str,
        _policy: &Policy,
        _clock: &dyn Clock,
    ) -> Result<i64, RevocationError> {
        Err(RevocationError::Backend("down".into()))
    }
    fn is_revoked(&self, _token: TokenFacts<'_>) -> Result<bool, RevocationError> {
        Err(RevocationError::Backend("down".into()))
    }
    fn subject_revoked_at(&self, _sub: &str) -> Option<i64> {
        None
    }
    fn sweep(&self, _now: i64) -> usize {
        0
    }
    fn len(&self) -> usize {
        0
    }
}

#[tokio::test]
async fn an_unavailable_revocation_store_fails_closed_without_clearing_the_cookie() {
    let kit = TestKit::new();
    let app = routes().layer(SessionLayer::<()>::new(
        kit.config().clone(),
        Arc::new(Unavailable),
    ));
    let client = Client::minted(&kit, "alice");
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::RevocationUnavailable);
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // The session may well be fine: a transient failure must not log the user out.
    reply.assert_no_cookie();
    let reply = client.get(&kit, &app, "/maybe").await;
    assert_eq!(reply.json(), json!({ "session": null }));
    reply.assert_no_cookie();
}

// ---------------------------------------------------------------------------------------
// 5. I1: never resurrect
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_refuses_the_older_the_current_and_the_newer_token_of_the_session() {
    let kit = TestKit::new();
    let app = app(&kit);
    let (older, _) = login_as(&kit, &app, "alice").await;
    let other = Client::minted(&kit, "alice");

    kit.advance(secs(61));
    let mut current = older.clone();
    assert!(current.follow(&older.get(&kit, &app, "/me").await));
    kit.advance(secs(61));
    let mut newer = current.clone();
    assert!(newer.follow(&current.get(&kit, &app, "/me").await));
    let sids: Vec<_> = [&older, &current, &newer]
        .iter()
        .map(|c| c.claims(&kit).sid)
        .collect();
    assert!(sids.iter().all(|s| *s == sids[0]));

    // Log out with the middle token.
    let reply = current.post(&kit, &app, "/session/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "logged_out": true }));
    reply.assert_cleared();

    for (what, client) in [("older", &older), ("current", &current), ("newer", &newer)] {
        let reply = client.get(&kit, &app, "/me").await;
        reply.assert_refused(Refusal::Revoked);
        reply.assert_cleared();
        let reply = client.post(&kit, &app, "/session/refresh").await;
        reply.assert_refused(Refusal::Revoked);
        assert_eq!(reply.new_token(), None, "{what}: no refresh after logout");
    }
    // Another session of the same user is untouched by a plain logout.
    assert_eq!(other.get(&kit, &app, "/me").await.status, StatusCode::OK);
    // Later, too (until they would have expired anyway).
    kit.advance(secs(29 * MIN));
    newer
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test]
async fn logout_all_refuses_every_session_of_the_subject_and_no_other() {
    let kit = TestKit::new();
    let app = app(&kit);
    let (phone, _) = login_as(&kit, &app, "alice").await;
    kit.advance(secs(10));
    let (laptop, _) = login_as(&kit, &app, "alice").await;
    let (bob, _) = login_as(&kit, &app, "bob").await;
    kit.advance(secs(61));
    // The phone's session slides (so a newer token of it exists) before logout-all.
    let mut phone_new = phone.clone();
    assert!(phone_new.follow(&phone.get(&kit, &app, "/me").await));

    let reply = laptop.post(&kit, &app, "/session/logout-all").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "logged_out": true, "all": true }));
    reply.assert_cleared();

    for client in [&phone, &phone_new, &laptop] {
        let reply = client.get(&kit, &app, "/me").await;
        reply.assert_refused(Refusal::Revoked);
        reply.assert_cleared();
    }
    assert_eq!(bob.get(&kit, &app, "/me").await.status, StatusCode::OK);

    // A login in the same second, right after logout-all, works and keeps working.
    let (fresh, reply) = login_as(&kit, &app, "alice").await;
    assert!(fresh.claims(&kit).auth_time >= kit.now());
    assert!(reply.header(EXPIRES_IN_HEADER).is_some());
    assert_eq!(fresh.get(&kit, &app, "/me").await.status, StatusCode::OK);
    kit.advance(secs(1));
    assert_eq!(fresh.get(&kit, &app, "/me").await.status, StatusCode::OK);
    kit.advance(secs(61));
    let mut fresh_new = fresh.clone();
    assert!(fresh_new.follow(&fresh.get(&kit, &app, "/me").await));
    assert_eq!(
        fresh_new.get(&kit, &app, "/me").await.status,
        StatusCode::OK
    );
    // The old sessions stay dead.
    phone_new
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test]
async fn a_second_logout_all_in_the_same_second_ends_the_session_that_logged_in_between() {
    let kit = TestKit::new();
    let app = app(&kit);
    let (first, _) = login_as(&kit, &app, "alice").await;
    kit.advance(secs(5));
    let reply = first.post(&kit, &app, "/session/logout-all").await;
    assert_eq!(reply.status, StatusCode::OK);
    // Same second: a new login (it must work)…
    let (second, _) = login_as(&kit, &app, "alice").await;
    assert_eq!(second.get(&kit, &app, "/me").await.status, StatusCode::OK);
    // …then "log out everywhere" again, from that new session, still the same second.
    let reply = second.post(&kit, &app, "/session/logout-all").await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.assert_cleared();
    // Every session that logged in before this logout-all must now be refused,
    // including the one that asked for it.
    let reply = second.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::Revoked);
    kit.advance(secs(1));
    let reply = second.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::Revoked);
}

const IN_FLIGHT: usize = 200;

/// A router whose `/slow` handler holds each request until the test lets it go.
fn gated_app(kit: &TestKit, entered: Arc<Barrier>, release: Option<Arc<Barrier>>) -> Router {
    let turn = Arc::new(AtomicUsize::new(0));
    routes()
        .route(
            "/slow",
            get(move |s: Session| {
                let (entered, release, turn) = (entered.clone(), release.clone(), turn.clone());
                async move {
                    entered.wait().await;
                    match release {
                        Some(release) => {
                            release.wait().await;
                        }
                        None => {
                            // Finish in a scattered order, racing the logout.
                            for _ in 0..turn.fetch_add(1, Ordering::Relaxed) % 13 {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    s.id().to_owned()
                }
            }),
        )
        .layer(kit.layer::<()>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn requests_in_flight_during_logout_never_set_a_live_token() {
    let kit = TestKit::new();
    let entered = Arc::new(Barrier::new(IN_FLIGHT + 1));
    let release = Arc::new(Barrier::new(IN_FLIGHT + 1));
    let app = gated_app(&kit, entered.clone(), Some(release.clone()));
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61)); // every in-flight response would reissue

    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (app, req) = (app.clone(), get_with("/slow", &client.cookie()));
        tasks.push(tokio::spawn(async move {
            let res = app.oneshot(req).await.unwrap();
            (res.status(), set_cookies(&res))
        }));
    }
    entered.wait().await; // all 200 were verified and are inside the handler
    let reply = client.post(&kit, &app, "/session/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    release.wait().await;

    for task in tasks {
        let (status, cookies) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let session: Vec<_> = cookies.iter().filter(|c| c.name == COOKIE_NAME).collect();
        assert_eq!(session.len(), 1, "{session:?}");
        assert!(
            session[0].is_removal(),
            "a request in flight during logout set a token: {}",
            session[0].raw
        );
    }
    client
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn reissues_racing_logout_and_a_moving_clock_never_resurrect_even_after_eviction() {
    let kit = TestKit::new();
    // Capacity 1: the logout's entry is evicted by the next revocation, so only the
    // watermark (and I3's "lat <= revocation time") keeps the session out afterwards.
    let store = MemoryDenylist::builder()
        .capacity(1)
        .build(kit.clock())
        .unwrap();
    let kit = kit.with_store(store.clone());
    let entered = Arc::new(Barrier::new(IN_FLIGHT + 1));
    let app = gated_app(&kit, entered.clone(), None);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61));

    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (app, req) = (app.clone(), get_with("/slow", &client.cookie()));
        tasks.push(tokio::spawn(async move {
            let res = app.oneshot(req).await.unwrap();
            (res.status(), set_cookies(&res))
        }));
    }
    entered.wait().await;
    // The clock keeps moving while the reissues and the logout race.
    let ticker = {
        let clock = kit.clock().clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                clock.advance(secs(1));
                tokio::task::yield_now().await;
            }
        })
    };
    let reply = client.post(&kit, &app, "/session/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    ticker.await.unwrap();

    let mut tokens = vec![client.token.clone()];
    let mut removals = 0;
    for task in tasks {
        let (status, cookies) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let session: Vec<_> = cookies.iter().filter(|c| c.name == COOKIE_NAME).collect();
        assert_eq!(
            session.len(),
            1,
            "every response is due a reissue: {session:?}"
        );
        if session[0].is_removal() {
            removals += 1;
        } else {
            tokens.push(session[0].value.clone());
        }
    }
    eprintln!(
        "race: {} tokens set before the logout, {removals} removals after",
        tokens.len() - 1
    );

    let check_all = |label: &'static str| {
        let (kit, app, tokens) = (kit.clone(), app.clone(), tokens.clone());
        async move {
            for token in &tokens {
                let cookie = format!("{COOKIE_NAME}={token}");
                let reply = call(&kit, &app, get_with("/me", &cookie)).await;
                assert_eq!(
                    reply.refusal,
                    Some(Refusal::Revoked),
                    "{label}: a token set during the race was accepted: {}",
                    reply.text()
                );
                reply.assert_cleared();
            }
        }
    };
    check_all("after logout").await;

    // Evict the logout's entry by overflow: the watermark must still refuse them all.
    kit.advance(secs(1));
    store
        .revoke_session(
            "someone-else",
            kit.now(),
            kit.config().policy(),
            kit.clock(),
        )
        .unwrap();
    assert_eq!(store.evictions(), 1);
    assert_eq!(store.len(), 1);
    assert!(store.watermark().is_some());
    check_all("after eviction").await;
}

// ---------------------------------------------------------------------------------------
// 9. CSRF and origin
// ---------------------------------------------------------------------------------------

fn csrf_kit() -> TestKit {
    TestKit::configure(|b| b.trusted_origin("https://spa.example")).unwrap()
}

#[tokio::test]
async fn unsafe_methods_need_the_csrf_token_and_a_same_site_origin() {
    let kit = csrf_kit();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let cookie = client.cookie();
    let good = client.csrf.as_str();

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let m = method.as_str();
        let send = |headers: Vec<(&'static str, String)>| {
            let mut all: Vec<(&str, &str)> = vec![("cookie", cookie.as_str())];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            call(&kit, &app, req(method.clone(), "/write", &all))
        };

        let reply = send(vec![]).await;
        reply.assert_refused(Refusal::CsrfMissing);
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{m}");
        reply.assert_no_cookie();

        let reply = send(vec![("x-csrf-token", "not-the-token".into())]).await;
        reply.assert_refused(Refusal::CsrfMismatch);
        reply.assert_no_cookie();

        // An empty header is no token: it never matches, even an empty claim.
        let reply = send(vec![("x-csrf-token", String::new())]).await;
        reply.assert_refused(Refusal::CsrfMissing);

        let reply = send(vec![("x-csrf-token", good.into())]).await;
        assert_eq!(reply.status, StatusCode::OK, "{m}: {}", reply.text());
        assert_eq!(reply.text(), "written by alice");

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("origin", "https://evil.example".into()),
        ])
        .await;
        reply.assert_refused(Refusal::OriginRejected);
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{m}");
        reply.assert_no_cookie();

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("origin", "null".into()),
        ])
        .await;
        reply.assert_refused(Refusal::OriginRejected);

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("sec-fetch-site", "cross-site".into()),
        ])
        .await;
        reply.assert_refused(Refusal::OriginRejected);

        // Cross-site by Sec-Fetch-Site even when Origin looks like ours.
        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("host", "app.example".into()),
            ("origin", "https://app.example".into()),
            ("sec-fetch-site", "cross-site".into()),
        ])
        .await;
        reply.assert_refused(Refusal::OriginRejected);

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("host", "app.example".into()),
            ("origin", "https://app.example".into()),
            ("sec-fetch-site", "same-origin".into()),
        ])
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{m}: same origin: {}",
            reply.text()
        );

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("host", "app.example:8443".into()),
            ("origin", "https://app.example:8443".into()),
        ])
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{m}: same origin with a port");

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("host", "api.example".into()),
            ("origin", "https://spa.example".into()),
            ("sec-fetch-site", "same-site".into()),
        ])
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{m}: trusted origin: {}",
            reply.text()
        );

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("host", "api.example".into()),
            ("origin", "https://other.example".into()),
            ("sec-fetch-site", "same-site".into()),
        ])
        .await;
        reply.assert_refused(Refusal::OriginRejected);

        // A trusted origin still needs the token.
        let reply = send(vec![
            ("host", "api.example".into()),
            ("origin", "https://spa.example".into()),
        ])
        .await;
        reply.assert_refused(Refusal::CsrfMissing);
    }

    // None of the refusals cleared or ended the session.
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn safe_methods_pass_without_the_csrf_header_even_cross_site() {
    let kit = csrf_kit();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let cookie = client.cookie();
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let reply = call(
            &kit,
            &app,
            req(method.clone(), "/write", &[("cookie", cookie.as_str())]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
        let reply = call(
            &kit,
            &app,
            req(
                method.clone(),
                "/write",
                &[
                    ("cookie", cookie.as_str()),
                    ("origin", "https://evil.example"),
                    ("sec-fetch-site", "cross-site"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{method} cross-site");
    }
}

#[tokio::test]
async fn a_cross_site_login_post_is_refused_before_any_session_is_made() {
    let kit = csrf_kit();
    let app = app(&kit);
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "/login/alice",
            &[("origin", "https://evil.example")],
        ),
    )
    .await;
    reply.assert_refused(Refusal::OriginRejected);
    reply.assert_no_cookie();
}

/// Over HTTP/2 there is no `Host` header: the authority is in the request URI (hyper puts
/// `:authority` there). A same-origin browser POST must still pass.
#[tokio::test]
async fn same_origin_is_recognised_from_the_uri_authority_without_a_host_header() {
    let kit = csrf_kit();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let cookie = client.cookie();
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "https://app.example/write",
            &[
                ("cookie", cookie.as_str()),
                ("x-csrf-token", client.csrf.as_str()),
                ("origin", "https://app.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "same-origin POST without Host (HTTP/2) refused: {}",
        reply.text()
    );
}

// ---------------------------------------------------------------------------------------
// 10. The ready-made routes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn get_session_reports_the_status_and_deadlines() {
    let kit = TestKit::new();
    let app = app(&kit);
    let t0 = kit.now();
    let client = Client::minted(&kit, "alice");
    let claims = client.claims(&kit);
    kit.advance(secs(30));
    let reply = client.get(&kit, &app, "/session").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({
            "sid": claims.sid,
            "sub": "alice",
            "auth_time": t0,
            "lat": t0,
            "idle_deadline": t0 + IDLE,
            "absolute_deadline": t0 + ABSOLUTE,
            "expires_in": IDLE - 30,
            "csrf": claims.csrf.expose(),
        })
    );
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1770"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.assert_no_cookie();

    let reply = call(&kit, &app, req(Method::GET, "/session", &[])).await;
    reply.assert_refused(Refusal::Missing);
}

#[tokio::test]
async fn refresh_reissues_now_with_a_new_jti_and_lat() {
    let kit = TestKit::new();
    let app = app(&kit);
    let t0 = kit.now();
    let mut client = Client::minted(&kit, "alice");
    let before = client.claims(&kit);
    kit.advance(secs(30)); // not due: refresh forces it
    let now = kit.now();

    let reply = call(&kit, &app, get_with("/session/refresh", &client.cookie())).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "/session/refresh",
            &[("cookie", client.cookie().as_str())],
        ),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMissing);
    reply.assert_no_cookie();

    let reply = client.post(&kit, &app, "/session/refresh").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(client.follow(&reply));
    let after = client.claims(&kit);
    assert_eq!(after.sid, before.sid);
    assert_ne!(after.jti, before.jti);
    assert_eq!((after.iat, after.lat), (now, now));
    assert_eq!(after.auth_time, t0);
    assert_eq!(after.csrf, before.csrf);
    assert_eq!(after.exp, now + IDLE);
    assert_eq!(reply.cookie.as_ref().unwrap().max_age, Some(IDLE));
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1800"));
    let body = reply.json();
    assert_eq!(body["sid"], before.sid.as_str());
    assert_eq!(body["lat"], now);
    assert_eq!(body["auth_time"], t0);
    assert_eq!(body["idle_deadline"], now + IDLE);
    assert_eq!(body["absolute_deadline"], t0 + ABSOLUTE);
    assert_eq!(body["expires_in"], IDLE);
}

#[tokio::test]
async fn refresh_never_passes_the_absolute_cap() {
    let kit = TestKit::configure(|b| {
        b.idle_timeout(secs(30 * MIN))
            .absolute_timeout(secs(60 * MIN))
    })
    .unwrap();
    let app = app(&kit);
    let t0 = kit.now();
    let mut client = Client::minted(&kit, "alice");
    kit.advance(secs(29 * MIN));
    assert!(client.follow(&client.post(&kit, &app, "/session/refresh").await));
    kit.advance(secs(29 * MIN));
    let reply = client.post(&kit, &app, "/session/refresh").await;
    assert!(client.follow(&reply));
    let claims = client.claims(&kit);
    assert_eq!(claims.auth_time, t0);
    assert_eq!(claims.exp, t0 + 3600);
    assert_eq!(reply.cookie.as_ref().unwrap().max_age, Some(120));
    assert_eq!(reply.json()["idle_deadline"], t0 + 3600);
    assert_eq!(reply.json()["expires_in"], 120);
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("120"));
}

#[tokio::test]
async fn logout_route_needs_csrf_then_revokes_and_clears() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");

    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "/session/logout",
            &[("cookie", client.cookie().as_str())],
        ),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMissing);
    reply.assert_no_cookie();
    assert_eq!(kit.store().len(), 0, "a refused logout revokes nothing");
    assert_eq!(
        client.get(&kit, &app, "/session").await.status,
        StatusCode::OK
    );

    let reply = client.post(&kit, &app, "/session/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "logged_out": true }));
    reply.assert_cleared();
    assert_eq!(kit.store().len(), 1);
    let reply = client.get(&kit, &app, "/session").await;
    reply.assert_refused(Refusal::Revoked);
    reply.assert_cleared();

    // Logging out without a session is a plain 401 (nothing to revoke, nothing to clear).
    let reply = call(&kit, &app, req(Method::POST, "/session/logout", &[])).await;
    reply.assert_refused(Refusal::Missing);
}

#[tokio::test]
async fn logout_all_route_needs_csrf() {
    let kit = TestKit::new();
    let app = app(&kit);
    let a = Client::minted(&kit, "alice");
    let b = Client::minted(&kit, "alice");
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "/session/logout-all",
            &[
                ("cookie", a.cookie().as_str()),
                ("x-csrf-token", b.csrf.as_str()),
            ],
        ),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMismatch);
    assert_eq!(b.get(&kit, &app, "/me").await.status, StatusCode::OK);
    let reply = a.post(&kit, &app, "/session/logout-all").await;
    assert_eq!(reply.status, StatusCode::OK);
    b.get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test]
async fn jwks_serves_the_public_keys_only() {
    let kit = TestKit::new();
    let app = app(&kit);
    let reply = call(&kit, &app, req(Method::GET, "/.well-known/jwks.json", &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.assert_no_cookie();
    let jwks = reply.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    let kid = kit.config().codec().keyring().signer().kid().to_owned();
    assert_eq!(key["kid"], kid.as_str());
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["use"], "sig");
    assert!(key["x"].as_str().is_some_and(|x| !x.is_empty()));
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(
            key.get(private).is_none(),
            "private member {private}: {key}"
        );
    }
    // A token header names that kid.
    let (token, _) = kit.mint("alice", ()).unwrap();
    let head = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    let head: Value = serde_json::from_slice(&head).unwrap();
    assert_eq!(head["kid"], kid.as_str());
}

// ---------------------------------------------------------------------------------------
// 11. Cookie headers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_session_cookie_is_found_among_other_cookies_and_cookie_headers() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let token = client.token.as_str();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("alone", vec![format!("{COOKIE_NAME}={token}")]),
        (
            "between others",
            vec![format!("theme=dark; {COOKIE_NAME}={token}; lang=en")],
        ),
        (
            "no spaces",
            vec![format!("theme=dark;{COOKIE_NAME}={token};lang=en")],
        ),
        (
            "second Cookie header",
            vec![
                "theme=dark; lang=en".to_owned(),
                format!("a=1; {COOKIE_NAME}={token}"),
            ],
        ),
        (
            "lookalike names",
            vec![format!(
                "{COOKIE_NAME}x=garbage; x{COOKIE_NAME}=garbage; session=garbage; {COOKIE_NAME}={token}"
            )],
        ),
        (
            "empty value first",
            vec![
                format!("{COOKIE_NAME}=; theme=dark"),
                format!("{COOKIE_NAME}={token}"),
            ],
        ),
        ("quoted", vec![format!("{COOKIE_NAME}=\"{token}\"")]),
    ];
    for (what, headers) in cases {
        let mut builder = Request::builder().uri("/me");
        for h in &headers {
            builder = builder.header(header::COOKIE, h.as_str());
        }
        let reply = call(&kit, &app, builder.body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.text());
        assert_eq!(reply.json()["sub"], "alice", "{what}");
        reply.assert_no_cookie();
    }

    // Other cookies with a dead session: only the session cookie is cleared.
    kit.advance(secs(31 * MIN));
    let reply = call(
        &kit,
        &app,
        req(
            Method::GET,
            "/public",
            &[(
                "cookie",
                format!("theme=dark; {COOKIE_NAME}={token}").as_str(),
            )],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.all_cookies.len(), 1, "{:?}", reply.all_cookies);
    reply.assert_cleared();
}

// ---------------------------------------------------------------------------------------
// 12. Refusal reasons in response extensions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refusal_reasons_travel_in_response_extensions() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let cookie = client.cookie();

    // From the layer: CSRF and origin.
    let reply = call(
        &kit,
        &app,
        req(Method::POST, "/write", &[("cookie", cookie.as_str())]),
    )
    .await;
    assert_eq!(reply.refusal, Some(Refusal::CsrfMissing));
    let reply = call(
        &kit,
        &app,
        req(
            Method::DELETE,
            "/write",
            &[("cookie", cookie.as_str()), ("x-csrf-token", "x")],
        ),
    )
    .await;
    assert_eq!(reply.refusal, Some(Refusal::CsrfMismatch));
    let reply = call(
        &kit,
        &app,
        req(
            Method::PUT,
            "/write",
            &[
                ("cookie", cookie.as_str()),
                ("x-csrf-token", client.csrf.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
    )
    .await;
    assert_eq!(reply.refusal, Some(Refusal::OriginRejected));

    // From the layer with require_session.
    let strict = routes().layer(kit.layer::<()>().require_session());
    let reply = call(&kit, &strict, req(Method::GET, "/public", &[])).await;
    assert_eq!(reply.refusal, Some(Refusal::Missing));
    let reply = call(&kit, &strict, get_with("/public", "__Host-session=x.y.z")).await;
    assert_eq!(reply.refusal, Some(Refusal::Malformed));

    // From the extractor.
    let reply = call(&kit, &app, req(Method::GET, "/me", &[])).await;
    assert_eq!(reply.refusal, Some(Refusal::Missing));
    let reply = call(&kit, &app, get_with("/me", "__Host-session=x.y.z")).await;
    assert_eq!(reply.refusal, Some(Refusal::Malformed));
    kit.advance(secs(31 * MIN));
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.refusal, Some(Refusal::ExpiredIdle));

    // A successful response carries none.
    let fresh = Client::minted(&kit, "alice");
    let reply = fresh.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.refusal, None);
}
