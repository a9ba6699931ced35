//! Refused cookies are answered and cleared; `require_session`; a missing layer; an
//! unavailable revocation store fails closed (section 4). Refusal reasons in response
//! extensions (section 12).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use http::{Method, StatusCode};
use jwt_session::TokenFacts;
use jwt_session::testing::TestKit;
use jwt_session::{
    Clock, EXPIRES_IN_HEADER, Policy, Refusal, RevocationError, RevocationStore, SameSite,
    SessionLayer,
};
use serde_json::json;

use crate::support::harness::{COOKIE_NAME, Client, app, call, get_with, req, routes, secs};
use crate::{MIN, tamper_signature};

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
