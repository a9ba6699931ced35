//! Criterion benches of the token core: sign (`Codec::encode`) and verify
//! (`Codec::decode`) per algorithm, and the pure time check (`Claims::check`).
//!
//! `cargo bench --bench token -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jwt_session::{Claims, Codec, DEFAULT_ISSUER, Key, Keyring, Policy};
use jwt_session::{DEFAULT_MAX_TOKEN_LEN, DEFAULT_TOKEN_TYPE};

/// The committed development key (EdDSA) and P-256 test key (ES256).
const DEV_KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/keys");
const ES256_PEM: &[u8] = include_bytes!("../tests/fixtures/es256-test.pem");
const HS_SECRET: &[u8] = b"bench-only HMAC secret of 32+ bytes";
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

fn codec(ring: Keyring) -> Codec {
    Codec::new(
        ring,
        DEFAULT_ISSUER,
        DEFAULT_ISSUER,
        DEFAULT_TOKEN_TYPE,
        DEFAULT_MAX_TOKEN_LEN,
    )
    .expect("codec")
}

fn codecs() -> [(&'static str, Codec); 3] {
    [
        ("EdDSA", codec(Keyring::load_dir(DEV_KEYS).expect("keys/"))),
        (
            "ES256",
            codec(Keyring::new(Key::from_pem("es-bench", ES256_PEM).unwrap()).unwrap()),
        ),
        (
            "HS256",
            codec(Keyring::new(Key::hs256("hs-bench", HS_SECRET).unwrap()).unwrap()),
        ),
    ]
}

fn policy() -> Policy {
    Policy::new(30 * 60, 8 * 3600, 60, 5).unwrap()
}

fn claims() -> Claims {
    Claims::new("alice", (), T0, &policy(), DEFAULT_ISSUER, DEFAULT_ISSUER).unwrap()
}

fn sign(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("sign");
    for (alg, codec) in codecs() {
        group.bench_function(alg, |b| {
            b.iter(|| codec.encode(black_box(&claims)).unwrap())
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("verify");
    for (alg, codec) in codecs() {
        let token = codec.encode(&claims).unwrap();
        group.bench_function(alg, |b| {
            b.iter(|| codec.decode::<()>(black_box(token.as_bytes())).unwrap())
        });
    }
    group.finish();
}

fn check(c: &mut Criterion) {
    let claims = claims();
    let policy = policy();
    c.bench_function("claims/check", |b| {
        b.iter(|| black_box(&claims).check(black_box(T0 + 600), black_box(&policy)))
    });
}

criterion_group!(benches, sign, verify, check);
criterion_main!(benches);
