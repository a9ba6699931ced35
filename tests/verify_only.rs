//! Verify-only services (issue 16, part 1): keys from the issuer's JWK Set, no signing,
//! a refresh on an unknown `kid` at most once per interval.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode, header};
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{Algorithm, KeyRefresher, KeySetSource, generate_key};
use jwt_session::{Key, Keyring, MemoryDenylist, Refusal, Session, SessionConfig, SessionLayer};
use serde_json::json;
use tower::ServiceExt as _;

/// A verify-only layer over `keyring`, sharing the issuer kit's clock.
fn verifier(issuer: &TestKit, keyring: Keyring) -> SessionLayer {
    let config = SessionConfig::builder(keyring)
        .clock(issuer.clock().clone())
        .build()
        .unwrap();
    SessionLayer::new(config, MemoryDenylist::with_capacity(100).unwrap())
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .route(
            "/write",
            post(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(layer)
}

fn jwks_of(kit: &TestKit) -> Vec<u8> {
    kit.config()
        .codec()
        .keyring()
        .jwks()
        .to_string()
        .into_bytes()
}

async fn get_me(app: &Router, kit: &TestKit, token: &str) -> http::Response<Body> {
    let req = Request::get("/me")
        .header(header::COOKIE, kit.cookie_header(token))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn a_verifier_accepts_the_issuers_sessions_and_never_signs() {
    let issuer = TestKit::new();
    let keyring = Keyring::from_jwks(&jwks_of(&issuer)).unwrap();
    assert!(!keyring.can_sign());
    let layer = verifier(&issuer, keyring);
    assert!(!layer.config().codec().can_sign());
    let app = app(layer.clone());

    let (token, claims) = issuer.mint("alice", ()).unwrap();
    let res = get_me(&app, &issuer, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Past reissue_after: an issuer would reissue; a verifier keeps the token.
    issuer.advance(Duration::from_secs(120));
    let res = get_me(&app, &issuer, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        issuer.set_cookie(&res).is_none(),
        "a verifier never reissues"
    );
    assert!(res.headers().get("session-expires-in").is_some());
    // CSRF like any instance.
    let post = |csrf: Option<&str>| {
        let mut req = Request::post("/write").header(header::COOKIE, issuer.cookie_header(&token));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    assert_eq!(
        refusal(&post(None).await.unwrap()),
        Some(Refusal::CsrfMissing)
    );
    assert_eq!(
        post(Some(claims.csrf.expose())).await.unwrap().status(),
        StatusCode::OK
    );
    // Revocation through its store.
    let config = layer.config();
    layer
        .store()
        .revoke_session(
            &claims.sid,
            claims.auth_time,
            config.policy(),
            config.clock(),
        )
        .unwrap();
    assert_eq!(
        refusal(&get_me(&app, &issuer, &token).await),
        Some(Refusal::Revoked)
    );
    // Minting is refused, and so is a handle's issue.
    assert!(
        layer
            .handle()
            .issue(jwt_session::Login::new("bob", ()).unwrap())
            .is_err()
    );
}

#[test]
fn a_key_set_takes_only_pinned_signature_keys() {
    let ed = generate_key(Algorithm::EdDSA, "ed-").unwrap().key;
    let ec = Key::from_pem("ec-1", include_bytes!("fixtures/es256-test.pem")).unwrap();
    let mut ed_jwk = ed.public_jwk().unwrap();
    let ec_jwk = ec.public_jwk().unwrap();
    let rsa = json!({"kty":"RSA","kid":"rsa-1","n":"AQAB","e":"AQAB","use":"sig"});
    let oct = json!({"kty":"oct","kid":"hmac-1","k":"c2VjcmV0"});
    let mut enc = ed_jwk.clone();
    enc["kid"] = json!("enc-1");
    enc["use"] = json!("enc");
    let mut wrong_alg = ec_jwk.clone();
    wrong_alg["kid"] = json!("wrong-alg");
    wrong_alg["alg"] = json!("EdDSA");
    ed_jwk["alg"] = json!("EdDSA");
    let set = json!({ "keys": [ed_jwk, ec_jwk, rsa, oct, enc, wrong_alg] });
    let ring = Keyring::from_jwks(set.to_string().as_bytes()).unwrap();
    assert_eq!(ring.kids(), vec![ec.kid(), ed.kid()]);
    assert!(
        ring.get(ec.kid())
            .is_some_and(|k| k.algorithm() == Algorithm::ES256)
    );

    for bad in [
        b"not json".to_vec(),
        br#"{"nokeys":[]}"#.to_vec(),
        br#"{"keys":{}}"#.to_vec(),
        br#"{"keys":[]}"#.to_vec(),
        json!({"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]})
            .to_string()
            .into_bytes(),
        vec![b' '; jwt_session::MAX_JWKS_BYTES + 1],
    ] {
        assert!(
            Keyring::from_jwks(&bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(&bad[..bad.len().min(40)])
        );
    }
    let many: Vec<serde_json::Value> = (0..=jwt_session::MAX_JWKS_KEYS)
        .map(|i| {
            let mut k = ed.public_jwk().unwrap();
            k["kid"] = json!(format!("k{i}"));
            k
        })
        .collect();
    assert!(Keyring::from_jwks(json!({ "keys": many }).to_string().as_bytes()).is_err());
    // A private member is never taken from a key set.
    let mut private = ed.public_jwk().unwrap();
    private["d"] = json!("AAAA");
    assert!(Key::from_jwk(&private).is_err());
}

#[tokio::test]
async fn after_the_issuer_rotates_one_refresh_brings_the_new_key_and_old_tokens_keep_working() {
    let issuer = TestKit::new();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, jwks_of(&issuer)).unwrap();
    let refresher = Arc::new(KeyRefresher::new(
        KeySetSource::File(jwks.clone()),
        Duration::from_secs(3600),
    ));
    let keyring = refresher.source().load().await.unwrap();
    let layer = verifier(&issuer, keyring);
    let app = Router::new()
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(layer.with_key_refresh(refresher.clone()));

    let (old_token, _) = issuer.mint("alice", ()).unwrap();
    assert_eq!(
        get_me(&app, &issuer, &old_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(refresher.refreshes(), 0, "a known kid needs no refresh");

    // The issuer rotates: a new signer, the old key verify-only; it publishes both.
    let next = generate_key(Algorithm::EdDSA, "next-").unwrap().key;
    let next_kid = next.kid().to_owned();
    issuer
        .config()
        .codec()
        .rotate(|ring| {
            ring.add(next)?;
            ring.promote(&next_kid)
        })
        .unwrap();
    std::fs::write(&jwks, jwks_of(&issuer)).unwrap();
    let (new_token, _) = issuer.mint("bob", ()).unwrap();

    // Concurrent first requests with the new kid: one refresh, all accepted.
    let results =
        futures_util::future::join_all((0..5).map(|_| get_me(&app, &issuer, &new_token))).await;
    for res in results {
        assert_eq!(res.status(), StatusCode::OK);
        assert!(issuer.set_cookie(&res).is_none(), "no cookie cleared");
    }
    assert_eq!(refresher.refreshes(), 1);
    assert_eq!(
        get_me(&app, &issuer, &old_token).await.status(),
        StatusCode::OK
    );

    // A flood of random kids is not a fetch amplifier: no refresh within the interval.
    for i in 0..50 {
        let forged = format!(
            "{}.e30.AAAA",
            base64_url(
                &json!({"alg":"EdDSA","typ":"session+jwt","kid":format!("rnd-{i}")}).to_string()
            )
        );
        let res = get_me(&app, &issuer, &forged).await;
        assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
    }
    assert_eq!(refresher.refreshes(), 1, "at most one refresh per interval");
}

#[tokio::test]
async fn an_unreachable_key_set_keeps_the_keys_in_use() {
    let issuer = TestKit::new();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, jwks_of(&issuer)).unwrap();
    let refresher = KeyRefresher::new(KeySetSource::File(jwks.clone()), Duration::ZERO);
    let layer = verifier(&issuer, refresher.source().load().await.unwrap());
    std::fs::remove_file(&jwks).unwrap();
    assert!(!refresher.refresh(layer.config().codec()).await);
    std::fs::write(&jwks, b"{broken").unwrap();
    assert!(!refresher.refresh(layer.config().codec()).await);
    let app = app(layer);
    let (token, _) = issuer.mint("alice", ()).unwrap();
    assert_eq!(get_me(&app, &issuer, &token).await.status(), StatusCode::OK);
    assert_eq!(refresher.refreshes(), 2);
}

#[tokio::test]
async fn a_key_set_by_url_is_fetched_over_http() {
    let issuer = TestKit::new();
    let body = String::from_utf8(jwks_of(&issuer)).unwrap();
    let server = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server).await.ok() });
    let source = KeySetSource::Url(format!("http://{addr}/.well-known/jwks.json"));
    let ring = source.load().await.unwrap();
    assert_eq!(ring.kids(), issuer.config().codec().keyring().kids());
    let missing = KeySetSource::Url(format!("http://{addr}/nothing-here"));
    assert!(missing.load().await.is_err());
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
