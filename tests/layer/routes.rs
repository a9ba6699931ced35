//! The ready-made routes (section 10): session status, refresh, logout, logout-all and
//! JWKS.

use base64::Engine as _;
use http::{Method, StatusCode};
use jwt_session::testing::TestKit;
use jwt_session::{EXPIRES_IN_HEADER, Refusal, RevocationStore};
use serde_json::{Value, json};

use crate::support::harness::{Client, app, call, get_with, req, secs};
use crate::{ABSOLUTE, IDLE, MIN};

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
