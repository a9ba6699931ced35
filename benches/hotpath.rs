//! The hot path of a protected request, piece by piece, with baselines measured in the
//! same run (issue "Performance"):
//!
//! * `verify/raw-ed25519` — aws-lc-rs Ed25519 signature check alone (the floor);
//! * `verify/cold/<alg>` — [`Codec::decode`]: length cap, header, key, signature, claims;
//! * `verify/cached/<alg>` — [`SessionLayer::verify_token`] on a token seen before
//!   (cache hit + time check + revocation check);
//! * `claims/check`, `cookie/find`, `denylist/lookup/<n>` at 0, 100k and 1M entries,
//!   `reissue/sign/<alg>` ([`Codec::encode`] of slid claims).
//!
//! `cargo bench --bench hotpath`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use jwt_session::TokenFacts;
use jwt_session::{
    Claims, Clock, CookieSettings, Key, Keyring, ManualClock, MemoryDenylist, RevocationStore,
    SessionConfig, SessionLayer,
};

const ES256_PEM: &[u8] = include_bytes!("../tests/fixtures/es256-test.pem");

fn config(ring: Keyring, clock: &ManualClock) -> SessionConfig {
    SessionConfig::builder(ring)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn rings() -> Vec<(&'static str, Keyring)> {
    vec![
        (
            "EdDSA",
            Keyring::new(
                jwt_session::generate_key(jwt_session::Algorithm::EdDSA, "b-")
                    .unwrap()
                    .key,
            )
            .unwrap(),
        ),
        (
            "ES256",
            Keyring::new(Key::from_pem("es", ES256_PEM).unwrap()).unwrap(),
        ),
        (
            "HS256",
            Keyring::new(Key::hs256("hs", &[7u8; 32]).unwrap()).unwrap(),
        ),
    ]
}

fn raw_ed25519(c: &mut Criterion) {
    use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    // A message the size of a session token's signing input.
    let msg = vec![b'a'; 330];
    let sig = pair.sign(&msg);
    let public = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
    c.bench_function("verify/raw-ed25519", |b| {
        b.iter(|| {
            public
                .verify(black_box(&msg), black_box(sig.as_ref()))
                .unwrap()
        })
    });
}

fn verify(c: &mut Criterion) {
    let clock = ManualClock::default();
    for (alg, ring) in rings() {
        let config = config(ring, &clock);
        let claims = Claims::new(
            "alice",
            (),
            clock.now(),
            config.policy(),
            "jwt-session",
            "jwt-session",
        )
        .unwrap();
        let token = config.codec().encode(&claims).unwrap();
        c.bench_function(&format!("verify/cold/{alg}"), |b| {
            b.iter(|| {
                config
                    .codec()
                    .decode::<()>(black_box(token.as_bytes()))
                    .unwrap()
            })
        });
        let store = MemoryDenylist::with_capacity(1000).unwrap();
        let layer = SessionLayer::<()>::new(config.clone(), store);
        layer.verify_token(&token).unwrap();
        c.bench_function(&format!("verify/cached/{alg}"), |b| {
            b.iter(|| layer.verify_token(black_box(&token)).unwrap())
        });
        let next = claims.slid(clock.now() + 60, config.policy()).unwrap();
        c.bench_function(&format!("reissue/sign/{alg}"), |b| {
            b.iter(|| config.codec().encode(black_box(&next)).unwrap())
        });
    }
}

fn claims_and_cookie(c: &mut Criterion) {
    let clock = ManualClock::default();
    let config = config(rings().remove(0).1, &clock);
    let claims = Claims::new(
        "alice",
        (),
        clock.now(),
        config.policy(),
        "jwt-session",
        "jwt-session",
    )
    .unwrap();
    c.bench_function("claims/check", |b| {
        b.iter(|| {
            black_box(&claims)
                .check(black_box(clock.now() + 10), config.policy())
                .unwrap()
        })
    });
    let token = config.codec().encode(&claims).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        format!("_ga=GA1.2.3.4; theme=dark; __Host-session={token}; lang=en")
            .parse()
            .unwrap(),
    );
    let cookie = CookieSettings::default();
    c.bench_function("cookie/find", |b| {
        b.iter(|| cookie.find(black_box(&headers)).unwrap())
    });
}

/// A session id of the real shape: 16 bytes (distinct for every `i`), base64url.
fn sid(i: u64) -> String {
    use base64::Engine as _;
    let x = u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x.to_be_bytes())
}

fn denylist(c: &mut Criterion) {
    let clock = ManualClock::default();
    let config = config(rings().remove(0).1, &clock);
    let mut group = c.benchmark_group("denylist/lookup");
    for n in [0usize, 100_000, 1_000_000] {
        let store = MemoryDenylist::with_capacity(n.max(1)).unwrap();
        for i in 0..n {
            store
                .revoke_session(
                    &sid(u64::try_from(i).unwrap()),
                    clock.now(),
                    config.policy(),
                    &clock,
                )
                .unwrap();
        }
        let facts = TokenFacts {
            sid: &sid(u64::MAX),
            sub: "alice",
            auth_time: clock.now(),
            lat: clock.now(),
            generation: 0,
        };
        group.bench_with_input(
            BenchmarkId::from_parameter(n),
            &store,
            |b, store: &Arc<MemoryDenylist>| {
                b.iter(|| assert!(!store.is_revoked(black_box(facts)).unwrap()))
            },
        );
    }
    group.finish();
}

/// The whole layer in-process (no sockets): one `GET /protected` through a bare router and
/// through the same router behind `SessionLayer` with a cached EdDSA token. The difference
/// is the layer's cost per request.
fn layer_overhead(c: &mut Criterion) {
    use axum::{Router, body::Body, routing::get};
    use tower::ServiceExt as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let handler = || async { "ok" };
    let bare: Router = Router::new().route("/protected", get(handler));
    let clock = ManualClock::default();
    let config = SessionConfig::builder(rings().remove(0).1)
        .clock(clock.clone())
        .reissue_after(Duration::from_secs(3600))
        .idle_timeout(Duration::from_secs(7200))
        .build()
        .unwrap();
    let layer =
        SessionLayer::<()>::new(config.clone(), MemoryDenylist::with_capacity(1000).unwrap());
    let protected: Router = Router::new()
        .route(
            "/protected",
            get(|s: jwt_session::Session| async move {
                drop(s);
                "ok"
            }),
        )
        .layer(layer);
    let claims = Claims::new(
        "alice",
        (),
        clock.now(),
        config.policy(),
        "jwt-session",
        "jwt-session",
    )
    .unwrap();
    let cookie = format!(
        "{}={}",
        config.cookie().name(),
        config.codec().encode(&claims).unwrap()
    );
    let request = |cookie: Option<&str>| {
        let mut req = http::Request::get("/protected");
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.body(Body::empty()).unwrap()
    };
    c.bench_function("layer/oneshot/bare", |b| {
        b.iter(|| {
            rt.block_on(bare.clone().oneshot(request(Some(&cookie))))
                .unwrap()
        })
    });
    c.bench_function("layer/oneshot/eddsa-cached", |b| {
        b.iter(|| {
            let res = rt
                .block_on(protected.clone().oneshot(request(Some(&cookie))))
                .unwrap();
            assert_eq!(res.status(), 200);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = raw_ed25519, verify, claims_and_cookie, denylist, layer_overhead
}
criterion_main!(benches);
