//! Verify-only services (issue 16, part 1): keys from the issuer's JWK Set, no signing,
//! a refresh on an unknown `kid` at most once per interval.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode, header};
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{Algorithm, KeyRefresher, KeySetSource, KeyWatcher, generate_key};
use jwt_session::{Clock as _, SessionConfigBuilder};
use jwt_session::{Key, Keyring, MemoryDenylist, Refusal, Session, SessionConfig, SessionLayer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;
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
        let res = get_me(&app, &issuer, &forged_token(&format!("rnd-{i}"))).await;
        assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
        assert!(
            issuer.set_cookie(&res).is_none(),
            "a verifier keeps the cookie"
        );
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

// ---------------------------------------------------------------------------------------
// A key set over https (feature `jwks`: rustls with the crate backend's provider)
// ---------------------------------------------------------------------------------------

/// The crate backend's rustls provider, for the test's own TLS server.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(feature = "aws-lc")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc"))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// A self-signed CA made for the test.
fn test_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A tiny HTTPS server on loopback whose certificate `ca` signed: `GET
/// /.well-known/jwks.json` answers `body`, `GET /chunked` a chunked body (no
/// `Content-Length`) over the key-set size limit, anything else 404.
async fn https_key_set_server(ca: &CertifiedIssuer<'static, KeyPair>, body: String) -> SocketAddr {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to say.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let response = match head.split_whitespace().nth(1) {
                    Some("/.well-known/jwks.json") => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    Some("/chunked") => {
                        let chunk = " ".repeat(16 * 1024);
                        let mut r = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                     transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                            .to_owned();
                        for _ in 0..5 {
                            r.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
                        }
                        r.push_str("0\r\n\r\n");
                        r
                    }
                    _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned(),
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_key_set_by_url_is_fetched_over_https() {
    let issuer = TestKit::new();
    let ca = test_ca("jwt-session key-set test CA");
    let addr = https_key_set_server(&ca, String::from_utf8(jwks_of(&issuer)).unwrap()).await;
    let url = format!("https://{addr}/.well-known/jwks.json");

    // Trusting the private CA: the keyring is fetched over https.
    let source = KeySetSource::url_with_ca(url.clone(), ca.pem());
    let ring = source.load().await.unwrap();
    assert!(!ring.can_sign());
    assert_eq!(ring.kids(), issuer.config().codec().keyring().kids());
    let by_name = KeySetSource::url_with_ca(
        format!("https://localhost:{}/.well-known/jwks.json", addr.port()),
        ca.pem(),
    );
    assert_eq!(by_name.load().await.unwrap().kids(), ring.kids());

    // With the system's roots, or another CA, the certificate is not trusted: a clear
    // error that says so.
    let other = test_ca("another CA");
    for (what, untrusted) in [
        ("system roots", KeySetSource::Url(url.clone())),
        (
            "another CA",
            KeySetSource::url_with_ca(url.clone(), other.pem()),
        ),
    ] {
        let e = untrusted.load().await.expect_err(what).to_string();
        assert!(e.contains(&url), "{what}: {e}");
        assert!(
            e.contains("invalid peer certificate") && e.contains("UnknownIssuer"),
            "{what}: {e}"
        );
        assert!(e.contains("KeySetSource::UrlWithCa"), "{what}: {e}");
    }

    // A CA bundle without a certificate is refused before any connection.
    let e = KeySetSource::url_with_ca(url.clone(), "not a PEM bundle")
        .load()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");

    // A body without Content-Length stops at the size limit.
    let chunked = KeySetSource::url_with_ca(format!("https://{addr}/chunked"), ca.pem());
    let e = chunked.load().await.unwrap_err();
    assert!(e.to_string().contains("byte limit"), "{e}");
    let missing = KeySetSource::url_with_ca(format!("https://{addr}/nothing-here"), ca.pem());
    assert!(
        missing
            .load()
            .await
            .unwrap_err()
            .to_string()
            .contains("404")
    );
}

#[tokio::test]
async fn an_unreachable_key_set_url_keeps_the_keys_in_use() {
    let issuer = TestKit::new();
    // A port nobody listens on (bound, then closed).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refresher = KeyRefresher::new(
        KeySetSource::Url(format!("http://{addr}/.well-known/jwks.json")),
        Duration::ZERO,
    );
    let layer = verifier(&issuer, Keyring::from_jwks(&jwks_of(&issuer)).unwrap());
    let before = layer.config().codec().keyring().kids().join(",");
    assert!(!refresher.refresh(layer.config().codec()).await);
    assert_eq!(refresher.refreshes(), 1);
    assert_eq!(layer.config().codec().keyring().kids().join(","), before);
    let app = app(layer);
    let (token, _) = issuer.mint("alice", ()).unwrap();
    assert_eq!(get_me(&app, &issuer, &token).await.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Time, cookies, and the verifier's own key directory
// ---------------------------------------------------------------------------------------

/// Idle 10 min, absolute 1 h, leeway 5 s: the issuer's and the verifier's settings.
fn short(b: SessionConfigBuilder) -> SessionConfigBuilder {
    b.idle_timeout(Duration::from_secs(600))
        .absolute_timeout(Duration::from_secs(3600))
        .leeway(Duration::from_secs(5))
}

/// What a response says about a token: status, refusal, and whether it clears the cookie.
fn outcome(kit: &TestKit, res: &http::Response<Body>) -> (StatusCode, Option<Refusal>, bool) {
    let cleared = kit.set_cookie(res).is_some_and(|c| c.is_removal());
    (res.status(), refusal(res), cleared)
}

#[tokio::test]
async fn a_verifier_refuses_by_time_exactly_like_the_issuer() {
    let issuer = TestKit::configure(short).unwrap();
    let config = short(SessionConfig::builder(
        Keyring::from_jwks(&jwks_of(&issuer)).unwrap(),
    ))
    .clock(issuer.clock().clone())
    .build()
    .unwrap();
    let on_issuer = app(issuer.layer());
    let on_verifier = app(SessionLayer::new(
        config,
        MemoryDenylist::with_capacity(100).unwrap(),
    ));
    let t0 = issuer.now();

    // Both, second by second around a deadline: the same answer every second.
    let compare = |token: String, around: i64, expected: Refusal| {
        let (issuer, on_issuer, on_verifier) = (&issuer, &on_issuer, &on_verifier);
        async move {
            let mut seen = Vec::new();
            for at in around - 3..=around + 3 {
                issuer.clock().set(at);
                let a = outcome(issuer, &get_me(on_issuer, issuer, &token).await);
                let b = outcome(issuer, &get_me(on_verifier, issuer, &token).await);
                assert_eq!(
                    (a.0, a.1),
                    (b.0, b.1),
                    "at {at}: issuer {a:?}, verifier {b:?}"
                );
                if a.1.is_some() {
                    assert!(a.2 && b.2, "both clear the dead cookie at {at}");
                }
                seen.push(b.1);
            }
            let first = seen.iter().position(Option::is_some).expect("refused");
            assert!(first > 0, "accepted before the deadline: {seen:?}");
            assert!(
                seen[first..].iter().all(|r| *r == Some(expected)),
                "{seen:?}"
            );
        }
    };

    // Idle: a token used last at t0 dies 10 min (+ leeway) later.
    let (idle, _) = issuer.mint("alice", ()).unwrap();
    compare(idle, t0 + 600 + 5, Refusal::ExpiredIdle).await;

    // Absolute: a session kept active on the issuer (reissued every 8 min) dies 1 h (+
    // leeway) after its login, however recently it was used.
    issuer.clock().set(t0);
    let (mut token, _) = issuer.mint("bob", ()).unwrap();
    while issuer.now() < t0 + 3600 - 480 {
        issuer.advance(Duration::from_secs(480));
        let res = get_me(&on_issuer, &issuer, &token).await;
        assert_eq!(res.status(), StatusCode::OK);
        token = issuer.set_cookie(&res).expect("reissued").value;
    }
    compare(token, t0 + 3600 + 5, Refusal::ExpiredAbsolute).await;
}

/// The `kid` a token names (read without verifying).
fn kid_of(token: &str) -> String {
    let (header, _) = jwt_session::unverified::peek(token.as_bytes()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// A token naming `kid`, which no one has (its signature is junk too).
fn forged_token(kid: &str) -> String {
    format!(
        "{}.e30.AAAA",
        base64_url(&json!({"alg":"EdDSA","typ":"session+jwt","kid":kid}).to_string())
    )
}

#[tokio::test]
async fn a_verify_only_refusal_for_an_unknown_key_keeps_the_cookie() {
    let issuer = TestKit::new();
    let on_verifier = app(verifier(
        &issuer,
        Keyring::from_jwks(&jwks_of(&issuer)).unwrap(),
    ));
    let on_issuer = app(issuer.layer());
    let forged = forged_token("not-yet-known");

    // The verifier cannot tell a forged kid from a key it has not fetched yet: refused,
    // the (issuer's) cookie left alone.
    let res = get_me(&on_verifier, &issuer, &forged).await;
    assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
    assert!(
        res.headers().get(header::SET_COOKIE).is_none(),
        "no removal Set-Cookie from a verifier for session_unknown_key"
    );
    // A signer owns its keys: it clears the cookie.
    let res = get_me(&on_issuer, &issuer, &forged).await;
    assert_eq!(
        outcome(&issuer, &res),
        (StatusCode::UNAUTHORIZED, Some(Refusal::UnknownKey), true)
    );
    // Any other dead session is still cleared by the verifier (here: a bad signature).
    let (token, _) = issuer.mint("alice", ()).unwrap();
    let (head, _) = token.rsplit_once('.').unwrap();
    let res = get_me(&on_verifier, &issuer, &format!("{head}.AAAA")).await;
    assert_eq!(
        outcome(&issuer, &res),
        (StatusCode::UNAUTHORIZED, Some(Refusal::BadSignature), true)
    );
}

/// A signing codec for `key` with the kit's issuer, audience and clock: tokens as another
/// instance of the issuer would sign them.
fn mint_with(kit: &TestKit, key: Key, sub: &str) -> String {
    let config = SessionConfig::builder(Keyring::new(key).unwrap())
        .clock(kit.clock().clone())
        .build()
        .unwrap();
    let codec = config.codec();
    let claims = jwt_session::Claims::new(
        sub,
        (),
        kit.now(),
        config.policy(),
        codec.issuer(),
        codec.audience(),
    )
    .unwrap();
    codec.encode(&claims).unwrap()
}

#[tokio::test]
async fn a_verifier_follows_the_public_keys_of_its_key_directory() {
    let issuer = TestKit::new();
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("jwks.json");
    std::fs::write(&set, jwks_of(&issuer)).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let refresher = Arc::new(KeyRefresher::new(
        KeySetSource::File(set.clone()),
        Duration::ZERO,
    ));
    let layer = verifier(&issuer, refresher.source().load().await.unwrap());
    let config = layer.config().clone();
    let app = Router::new()
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(layer.with_key_refresh(refresher.clone()));
    let watcher = KeyWatcher::new(&config, keys.path());
    assert!(
        !watcher.check_once().unwrap().reloaded,
        "an empty directory"
    );

    // A public key appears in the directory (as a deployment would put it there).
    let local = generate_key(Algorithm::EdDSA, "local-").unwrap();
    let local_kid = local.key.kid().to_owned();
    let token = mint_with(&issuer, local.key.clone(), "carol");
    assert_eq!(
        refusal(&get_me(&app, &issuer, &token).await),
        Some(Refusal::UnknownKey),
        "not before the watcher's poll"
    );
    std::fs::write(
        keys.path().join(format!("{local_kid}.pub.pem")),
        local.public_file.as_deref().unwrap(),
    )
    .unwrap();
    assert!(watcher.check_once().unwrap().reloaded);
    let ring = config.codec().keyring();
    assert!(!ring.can_sign(), "still verify-only");
    assert!(ring.get(&local_kid).is_some());
    let res = get_me(&app, &issuer, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The issuer's keys verify as before, and a refresh of the key set keeps the local key.
    let (issued, _) = issuer.mint("alice", ()).unwrap();
    assert_eq!(
        get_me(&app, &issuer, &issued).await.status(),
        StatusCode::OK
    );
    assert!(refresher.refresh(config.codec()).await);
    assert_eq!(get_me(&app, &issuer, &token).await.status(), StatusCode::OK);
    assert_eq!(
        get_me(&app, &issuer, &issued).await.status(),
        StatusCode::OK
    );

    // A private key there verifies by its public half; nothing signs; an HMAC secret is
    // skipped.
    let private = generate_key(Algorithm::EdDSA, "private-").unwrap();
    private.write_to(keys.path()).unwrap();
    generate_key(Algorithm::HS256, "hmac-")
        .unwrap()
        .write_to(keys.path())
        .unwrap();
    assert!(watcher.check_once().unwrap().reloaded);
    let other = mint_with(&issuer, private.key.clone(), "dave");
    assert_eq!(get_me(&app, &issuer, &other).await.status(), StatusCode::OK);
    assert!(!config.codec().can_sign());
    assert_eq!(
        config.codec().keyring().kids().len(),
        issuer.config().codec().keyring().kids().len() + 2
    );

    // The key leaves the directory: its tokens are refused again (the set lacks it).
    std::fs::remove_file(keys.path().join(format!("{local_kid}.pub.pem"))).unwrap();
    assert!(watcher.check_once().unwrap().reloaded);
    let res = get_me(&app, &issuer, &token).await;
    assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
    assert_eq!(get_me(&app, &issuer, &other).await.status(), StatusCode::OK);

    // A verify-only instance never rotates its directory.
    let rotator = KeyWatcher::new(&config, keys.path()).rotate_every(Duration::from_secs(1));
    let e = rotator.check_once().unwrap_err();
    assert!(e.to_string().contains("only verifies"), "{e}");
}

#[tokio::test]
async fn a_forged_kid_before_a_published_rotation_costs_the_verifier_nothing() {
    const DAY: u64 = 24 * 3600;
    // The issuer: a key directory with automatic rotation, its JWK Set served over http
    // from its live keyring.
    let keys = tempfile::tempdir().unwrap();
    generate_key(Algorithm::EdDSA, "issuer-")
        .unwrap()
        .write_to(keys.path())
        .unwrap();
    let clock = jwt_session::ManualClock::default();
    let issuer = SessionConfig::builder(Keyring::load_dir(keys.path()).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let rotator = |lead: u64| {
        KeyWatcher::new(&issuer, keys.path())
            .rotate_every(Duration::from_secs(DAY))
            .publish_lead(Duration::from_secs(lead))
    };
    let watcher = rotator(600);
    let served = issuer.clone();
    let server = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let set = served.codec().keyring().jwks();
            async move { axum::Json(set) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server).await.ok() });

    // The verifier: one refresh per hour at most (in real time: only one in this test).
    let refresher = Arc::new(KeyRefresher::new(
        KeySetSource::Url(format!("http://{addr}/.well-known/jwks.json")),
        Duration::from_secs(3600),
    ));
    let config = SessionConfig::builder(refresher.source().load().await.unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let name = config.cookie().name().to_owned();
    let layer = SessionLayer::<()>::new(config, MemoryDenylist::with_capacity(100).unwrap());
    let app = Router::new()
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(layer.with_key_refresh(refresher.clone()));
    let cookie = |token: &str| format!("{name}={token}");
    let me = |token: String| {
        let req = Request::get("/me")
            .header(header::COOKIE, cookie(&token))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req)
    };
    let mint = |sub: &str| {
        let codec = issuer.codec();
        let claims = jwt_session::Claims::new(
            sub,
            (),
            clock.now(),
            issuer.policy(),
            codec.issuer(),
            codec.audience(),
        )
        .unwrap();
        codec.encode(&claims).unwrap()
    };
    let t0 = clock.now();
    watcher.check_once().unwrap();

    // The next signer is published ten minutes before it signs…
    clock.set(t0 + DAY as i64 - 600);
    let next = watcher.check_once().unwrap().published.unwrap();
    // …then a forged kid uses up the verifier's one refresh of the interval…
    let res = me(forged_token("forged")).await.unwrap();
    assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(refresher.refreshes(), 1);
    // …and the issuer rotates: its new tokens are accepted at once, with no refresh.
    clock.set(t0 + DAY as i64);
    assert_eq!(
        watcher.check_once().unwrap().rotated.as_deref(),
        Some(next.as_str())
    );
    let token = mint("alice");
    assert_eq!(kid_of(&token), next);
    let res = me(token).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(refresher.refreshes(), 1, "no refresh needed");

    // Without a lead (published and promoted at once) the same order leaves the verifier
    // without the new key for its interval: refused, but the cookie is kept, so the
    // user's session survives until the verifier's next refresh.
    let watcher = rotator(0);
    clock.set(t0 + 2 * DAY as i64);
    let res = me(forged_token("forged-again")).await.unwrap();
    assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
    let newest = watcher.check_once().unwrap().rotated.unwrap();
    let token = mint("bob");
    assert_eq!(kid_of(&token), newest);
    let res = me(token).await.unwrap();
    assert_eq!(refusal(&res), Some(Refusal::UnknownKey));
    assert!(
        res.headers().get(header::SET_COOKIE).is_none(),
        "the issuer's cookie is kept"
    );
    assert_eq!(refresher.refreshes(), 1);
}
