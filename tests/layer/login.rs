//! Login (section 1): the cookie a login sets, and a new session with new ids on every
//! login.

use http::{Method, StatusCode};
use jwt_session::testing::TestKit;
use jwt_session::{EXPIRES_IN_HEADER, SameSite};

use crate::support::harness::{COOKIE_NAME, app, call, login_as, req, secs};
use crate::{IDLE, MIN};

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
    // A same-origin request (no `Origin`) has no script to expose headers to.
    assert_eq!(reply.header("access-control-expose-headers"), None);
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

/// A CORS request (it names its `Origin`) gets `Session-Expires-In` exposed to the
/// reading script; a same-origin one (no `Origin`) does not need it and gets none.
#[tokio::test]
async fn session_headers_are_exposed_to_cors_requests_only() {
    let kit = TestKit::new();
    let app = app(&kit);
    let cookie = kit.cookie("alice");
    let cross = call(
        &kit,
        &app,
        req(
            Method::GET,
            "/me",
            &[("cookie", &cookie), ("origin", "https://front.example")],
        ),
    )
    .await;
    assert_eq!(cross.status, StatusCode::OK);
    assert_eq!(
        cross.header("access-control-expose-headers"),
        Some(EXPIRES_IN_HEADER)
    );
    let same = call(&kit, &app, req(Method::GET, "/me", &[("cookie", &cookie)])).await;
    assert_eq!(same.status, StatusCode::OK);
    assert!(same.header(EXPIRES_IN_HEADER).is_some());
    assert_eq!(same.header("access-control-expose-headers"), None);
}
