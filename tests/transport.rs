//! Passive requests, bearer transport and the verified-token cache, through `oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{
    EXPIRES_IN_HEADER, PASSIVE_HEADER, Refusal, RevocationStore, SessionConfigBuilder, TOKEN_HEADER,
};

use support::harness::{app, send};

fn kit(f: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder) -> TestKit {
    TestKit::configure(|b| {
        f(b.idle_timeout(Duration::from_secs(600))
            .reissue_after(Duration::from_secs(60))
            .leeway(Duration::ZERO))
    })
    .unwrap()
}

/// `GET path` with one header (a cookie or a bearer token).
fn get_with(path: &str, header: (&str, String)) -> Request<Body> {
    Request::get(path)
        .header(header.0, header.1)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn passive_header_validates_without_sliding() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    kit.advance(Duration::from_secs(300)); // reissue due
    let mut req = get_with("/me", ("cookie", kit.cookie_header(&token)));
    req.headers_mut()
        .insert(PASSIVE_HEADER, "1".parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        kit.set_cookie(&res).is_none(),
        "a passive request must not be reissued"
    );
    assert_eq!(res.headers()[EXPIRES_IN_HEADER], "300");

    // Polling alone does not keep the session alive: idle expiry still happens.
    kit.advance(Duration::from_secs(300));
    let mut req = get_with("/me", ("cookie", kit.cookie_header(&token)));
    req.headers_mut()
        .insert(PASSIVE_HEADER, "1".parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(refusal(&res), Some(Refusal::ExpiredIdle));
}

#[tokio::test]
async fn passive_header_false_is_active() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    kit.advance(Duration::from_secs(60));
    let mut req = get_with("/me", ("cookie", kit.cookie_header(&token)));
    req.headers_mut()
        .insert(PASSIVE_HEADER, "false".parse().unwrap());
    let res = send(&app, req).await;
    assert!(kit.set_cookie(&res).is_some_and(|c| !c.is_removal()));
}

#[tokio::test]
async fn passive_route_predicate_validates_without_sliding() {
    let kit = kit(|b| b.passive_route(|_, path| path == "/poll"));
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    kit.advance(Duration::from_secs(120));
    let res = send(
        &app,
        get_with("/poll", ("cookie", kit.cookie_header(&token))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(kit.set_cookie(&res).is_none());
    let res = send(&app, get_with("/me", ("cookie", kit.cookie_header(&token)))).await;
    assert!(
        kit.set_cookie(&res).is_some_and(|c| !c.is_removal()),
        "an active route slides"
    );
}

#[tokio::test]
async fn bearer_is_refused_unless_enabled() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    let res = send(
        &app,
        get_with("/me", ("authorization", format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(refusal(&res), Some(Refusal::Missing));
}

#[tokio::test]
async fn bearer_token_authenticates_and_skips_csrf() {
    let kit = kit(|b| b.accept_bearer(true));
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    let res = send(
        &app,
        get_with("/me", ("authorization", format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // An unsafe method without X-CSRF-Token, and even from another origin, passes:
    // a bearer token is not sent by browsers on their own.
    let req = Request::post("/write")
        .header("authorization", format!("bearer {token}"))
        .header("origin", "https://other.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.status(), StatusCode::OK);
    // The same token in a cookie still needs the CSRF header.
    let req = Request::post("/write")
        .header("cookie", kit.cookie_header(&token))
        .body(Body::empty())
        .unwrap();
    assert_eq!(refusal(&send(&app, req).await), Some(Refusal::CsrfMissing));
}

#[tokio::test]
async fn bearer_reissue_comes_back_in_the_token_header_not_a_cookie() {
    let kit = kit(|b| b.accept_bearer(true));
    let app = app(&kit);
    let (token, claims) = kit.mint("alice", ()).unwrap();
    kit.advance(Duration::from_secs(61));
    // A CORS request (it names its `Origin`): the new token is exposed to the script.
    let cors = Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .header("origin", "https://front.example")
        .body(Body::empty())
        .unwrap();
    let res = send(&app, cors).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(kit.set_cookie(&res).is_none());
    let next = res.headers()[TOKEN_HEADER].to_str().unwrap().to_owned();
    let exposed = res.headers().get_all("access-control-expose-headers");
    assert!(exposed.iter().any(|v| v == TOKEN_HEADER));
    let decoded = kit
        .config()
        .codec()
        .decode::<()>(next.as_bytes())
        .unwrap()
        .claims;
    assert_eq!(decoded.sid, claims.sid);
    assert_eq!(decoded.lat, kit.now());
    // A cookie-borne reissue never exposes the token in a header.
    let res = send(&app, get_with("/me", ("cookie", kit.cookie_header(&token)))).await;
    assert!(res.headers().get(TOKEN_HEADER).is_none());
    assert!(kit.set_cookie(&res).is_some());
}

#[tokio::test]
async fn bad_bearer_token_is_refused_without_clearing_cookies() {
    let kit = kit(|b| b.accept_bearer(true));
    let app = app(&kit);
    let res = send(
        &app,
        get_with("/me", ("authorization", "Bearer not.a.token".into())),
    )
    .await;
    assert_eq!(refusal(&res), Some(Refusal::Malformed));
    assert!(kit.set_cookie(&res).is_none());
}

/// A token served from the verified-token cache still gets every time and revocation
/// check: idle, absolute and revoked.
#[tokio::test]
async fn cached_token_still_expires_idle() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    let cookie = kit.cookie_header(&token);
    assert_eq!(
        send(&app, get_with("/me", ("cookie", cookie.clone())))
            .await
            .status(),
        StatusCode::OK
    );
    kit.advance(Duration::from_secs(600));
    let res = send(&app, get_with("/me", ("cookie", cookie))).await;
    assert_eq!(refusal(&res), Some(Refusal::ExpiredIdle));
}

#[tokio::test]
async fn cached_token_still_expires_absolute() {
    let kit = TestKit::configure(|b| {
        b.idle_timeout(Duration::from_secs(600))
            .absolute_timeout(Duration::from_secs(900))
            .reissue_after(Duration::from_secs(60))
            .leeway(Duration::ZERO)
    })
    .unwrap();
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    let mut cookie = kit.cookie_header(&token);
    // Keep it active: follow reissues until the absolute cap.
    for _ in 0..3 {
        kit.advance(Duration::from_secs(290));
        let res = send(&app, get_with("/me", ("cookie", cookie.clone()))).await;
        assert_eq!(res.status(), StatusCode::OK);
        // Ask twice: the second request is served from the cache.
        let again = send(&app, get_with("/me", ("cookie", cookie.clone()))).await;
        assert_eq!(again.status(), StatusCode::OK);
        cookie = kit.set_cookie(&res).unwrap().as_request_header();
    }
    kit.advance(Duration::from_secs(30)); // 900 s after login
    let res = send(&app, get_with("/me", ("cookie", cookie))).await;
    assert_eq!(refusal(&res), Some(Refusal::ExpiredAbsolute));
}

#[tokio::test]
async fn cached_token_is_refused_once_revoked() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, claims) = kit.mint("alice", ()).unwrap();
    let cookie = kit.cookie_header(&token);
    assert_eq!(
        send(&app, get_with("/me", ("cookie", cookie.clone())))
            .await
            .status(),
        StatusCode::OK
    );
    kit.store()
        .revoke_session(
            &claims.sid,
            claims.auth_time,
            kit.config().policy(),
            kit.clock(),
        )
        .unwrap();
    let res = send(&app, get_with("/me", ("cookie", cookie))).await;
    assert_eq!(refusal(&res), Some(Refusal::Revoked));
}

#[tokio::test]
async fn cached_token_still_needs_csrf() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, claims) = kit.mint("alice", ()).unwrap();
    let post = |csrf: Option<&str>| {
        let mut req = Request::post("/write").header("cookie", kit.cookie_header(&token));
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.body(Body::empty()).unwrap()
    };
    assert_eq!(
        send(&app, post(Some(claims.csrf.expose()))).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        refusal(&send(&app, post(None)).await),
        Some(Refusal::CsrfMissing)
    );
    assert_eq!(
        refusal(&send(&app, post(Some("wrong"))).await),
        Some(Refusal::CsrfMismatch)
    );
}

#[tokio::test]
async fn cache_never_accepts_a_tampered_token() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    assert_eq!(
        send(&app, get_with("/me", ("cookie", kit.cookie_header(&token))))
            .await
            .status(),
        StatusCode::OK
    );
    // Same token with one signature character changed, and with a byte appended.
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let res = send(
        &app,
        get_with("/me", ("cookie", kit.cookie_header(&flipped))),
    )
    .await;
    assert_eq!(refusal(&res), Some(Refusal::BadSignature));
    let res = send(
        &app,
        get_with("/me", ("cookie", kit.cookie_header(&format!("{token}A")))),
    )
    .await;
    assert!(matches!(
        refusal(&res),
        Some(Refusal::BadSignature | Refusal::Malformed)
    ));
}

#[tokio::test]
async fn cache_forgets_tokens_of_a_retired_key() {
    let kit = kit(|b| b);
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    let cookie = kit.cookie_header(&token);
    assert_eq!(
        send(&app, get_with("/me", ("cookie", cookie.clone())))
            .await
            .status(),
        StatusCode::OK
    );
    let old = kit.config().codec().keyring().signer().kid().to_owned();
    let next = jwt_session::generate_key(jwt_session::Algorithm::EdDSA, "next-")
        .unwrap()
        .key;
    let next_kid = next.kid().to_owned();
    kit.config()
        .codec()
        .rotate(|ring| {
            ring.add(next)?;
            ring.promote(&next_kid)?;
            ring.retire(&old)
        })
        .unwrap();
    let res = send(&app, get_with("/me", ("cookie", cookie))).await;
    assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
}

#[tokio::test]
async fn cache_can_be_turned_off() {
    let kit = kit(|b| b.token_cache(0));
    let app = app(&kit);
    let (token, _) = kit.mint("alice", ()).unwrap();
    for _ in 0..3 {
        let res = send(&app, get_with("/me", ("cookie", kit.cookie_header(&token)))).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}
