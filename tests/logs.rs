//! I6: no token, signature, CSRF value or raw session id ever reaches a log line, while
//! every refusal, issue, reissue, revocation, overflow and rotation is logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use jwt_session::testing::TestKit;
use jwt_session::{MemoryDenylist, sid_tag};
use tower::ServiceExt as _;

use support::harness::app;
use support::logs::Capture;

#[test]
fn no_secret_reaches_a_log_line() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let mut secrets: Vec<String> = Vec::new();
    let mut sids: Vec<String> = Vec::new();

    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = MemoryDenylist::builder()
                .capacity(2)
                .journal(tempfile::tempdir().unwrap().keep().join("j.jsonl"))
                .build(&jwt_session::SystemClock)
                .unwrap();
            let kit = TestKit::new().with_store(store);
            let app = app(&kit);
            let send = |req: Request<Body>| app.clone().oneshot(req);

            // Login through the layer.
            let res = send(Request::post("/login/alice").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let set = kit.set_cookie(&res).unwrap();
            let token = set.value.clone();
            let claims = kit
                .config()
                .codec()
                .decode::<()>(token.as_bytes())
                .unwrap()
                .claims;
            secrets.extend(token.split('.').map(str::to_owned));
            secrets.push(token.clone());
            secrets.push(claims.csrf.expose().to_owned());
            sids.push(claims.sid.clone());
            let cookie = set.as_request_header();

            // A request that reissues, a CSRF refusal, a tampered token.
            kit.advance(Duration::from_secs(120));
            let res = send(
                Request::get("/me")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            let next = kit.set_cookie(&res).unwrap();
            secrets.extend(next.value.split('.').map(str::to_owned));
            let res = send(
                Request::post("/session/refresh")
                    .header("cookie", &cookie)
                    .header("x-csrf-token", "wrong")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            let tampered = format!("{}x", &token[..token.len() - 1]);
            let res = send(
                Request::get("/me")
                    .header("cookie", kit.cookie_header(&tampered))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

            // Logout, then the revoked token; logout-all; overflow of the tiny denylist.
            let res = send(
                Request::post("/session/logout")
                    .header("cookie", &cookie)
                    .header("x-csrf-token", claims.csrf.expose())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let res = send(
                Request::get("/me")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            for user in ["bob", "carol", "dave"] {
                // Sessions active after an overflow's watermark keep working.
                kit.advance(Duration::from_secs(1));
                let (token, claims) = kit.mint(user, ()).unwrap();
                secrets.push(token);
                secrets.push(claims.csrf.expose().to_owned());
                sids.push(claims.sid.clone());
                let res = send(
                    Request::post("/all")
                        .header(
                            "cookie",
                            kit.cookie_header(secrets.iter().rev().nth(1).unwrap()),
                        )
                        .header("x-csrf-token", claims.csrf.expose())
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
            }
            // Key rotation and a sweep.
            let next_key = jwt_session::generate_key(jwt_session::Algorithm::EdDSA, "n-")
                .unwrap()
                .key;
            let kid = next_key.kid().to_owned();
            kit.config()
                .codec()
                .rotate(|ring| {
                    ring.add(next_key)?;
                    ring.promote(&kid)
                })
                .unwrap();
            jwt_session::RevocationStore::sweep(&**kit.store(), i64::MAX);
        });
    });

    let logs = capture.text();
    for expected in [
        "session issued",
        "session reissued",
        "reason=\"csrf_mismatch\"",
        "reason=\"session_bad_signature\"",
        "reason=\"session_revoked\"",
        "session revoked",
        "all=true",
        "denylist full",
        "keyring rotated",
        "revocation sweep",
    ] {
        assert!(
            logs.contains(expected),
            "missing log event {expected:?} in:\n{logs}"
        );
    }
    assert!(
        logs.contains(&sid_tag(&sids[0])),
        "events carry the salted sid tag"
    );
    for secret in &secrets {
        assert!(secret.len() >= 16);
        assert!(
            !logs.contains(secret.as_str()),
            "a token part or CSRF value was logged"
        );
    }
    for sid in &sids {
        assert!(!logs.contains(sid.as_str()), "a raw session id was logged");
    }
}
