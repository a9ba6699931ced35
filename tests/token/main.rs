//! The token core, proved through the public API: exact time boundaries and sliding, key
//! rotation, tampering, key loading, configuration, cookies, refusal codes, and property
//! tests of the codec. Raw (hand-built) tokens are signed here with `hmac`/`sha2` (HS256)
//! or `jsonwebtoken::crypto::sign` (EdDSA), so each tampering case is exactly what it says.
//!
//! One module per topic: `time`, `keys` (rotation, loading, JWKS), `tampering`, `config`,
//! `cookie`, `refusal_codes` and `proptests`; the fixtures and the hand-built token helpers
//! they share are here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod cookie;
mod keys;
mod proptests;
mod refusal_codes;
mod tampering;
mod time;

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::header::HeaderValue;
use jwt_session::{
    Claims, Codec, DEFAULT_ISSUER, Key, Keyring, Policy, Refusal, SessionConfig,
    SessionConfigBuilder,
};
use jwt_session::{DEFAULT_MAX_TOKEN_LEN, DEFAULT_TOKEN_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

const DEV_KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/keys");
const DEV_KID: &str = "dev-mHK7Jujzplbiytma";
const DEV_PRIVATE_PEM: &[u8] = include_bytes!("../../keys/dev-mHK7Jujzplbiytma.pem");
const DEV_PUBLIC_PEM: &[u8] = include_bytes!("../../keys/dev-mHK7Jujzplbiytma.pub.pem");
/// A committed P-256 test key (see `tests/fixtures/README.md`).
const ES256_PEM: &[u8] = include_bytes!("../fixtures/es256-test.pem");
const ES256_PUB_PEM: &[u8] = include_bytes!("../fixtures/es256-test.pub.pem");
/// A P-384 key: not an algorithm of ours, must be refused.
const P384_PEM: &[u8] = include_bytes!("../fixtures/p384-test.pem");
const ES_KID: &str = "es-test";
const HS_KID: &str = "hs-test";
const HS_SECRET: &[u8] = b"test-only HMAC secret of 32+ bytes";
const TYP: &str = DEFAULT_TOKEN_TYPE;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
const IDLE: i64 = 1800;
const ABSOLUTE: i64 = 8 * 3600;

/// idle 30 min, absolute 8 h, reissue after 60 s.
fn policy(leeway: u64) -> Policy {
    Policy::new(1800, 8 * 3600, 60, leeway).unwrap()
}

fn login_with<T>(now: i64, data: T, policy: &Policy) -> Claims<T> {
    Claims::new("alice", data, now, policy, DEFAULT_ISSUER, DEFAULT_ISSUER).unwrap()
}

fn login(now: i64) -> Claims {
    login_with(now, (), &policy(0))
}

fn codec_for(ring: Keyring) -> Codec {
    Codec::new(
        ring,
        DEFAULT_ISSUER,
        DEFAULT_ISSUER,
        TYP,
        DEFAULT_MAX_TOKEN_LEN,
    )
    .unwrap()
}

fn dev_ring() -> Keyring {
    Keyring::load_dir(DEV_KEYS).unwrap()
}

fn ed_codec() -> Codec {
    codec_for(dev_ring())
}

fn es_key() -> Key {
    Key::from_pem(ES_KID, ES256_PEM).unwrap()
}

fn es_codec() -> Codec {
    codec_for(Keyring::new(es_key()).unwrap())
}

fn hs_key() -> Key {
    Key::hs256(HS_KID, HS_SECRET).unwrap()
}

fn hs_codec() -> Codec {
    codec_for(Keyring::new(hs_key()).unwrap())
}

/// The refusal of `token`; fails the test if it was accepted.
fn refusal(codec: &Codec, token: &str) -> Refusal {
    codec
        .decode::<()>(token.as_bytes())
        .expect_err("the token must be refused")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parts(token: &str) -> [&str; 3] {
    let v: Vec<&str> = token.split('.').collect();
    [v[0], v[1], v[2]]
}

/// The decoded JSON header of a token.
fn header_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts(token)[0]).unwrap()).unwrap()
}

fn payload_json<T: Serialize>(claims: &Claims<T>) -> String {
    serde_json::to_string(claims).unwrap()
}

fn signing_input(header: &str, payload: &str) -> String {
    format!("{}.{}", b64(header), b64(payload))
}

/// A token over the exact header and payload text, signed with HMAC-SHA-256 and `HS_SECRET`.
fn hs_token(header: &str, payload: &str) -> String {
    let input = signing_input(header, payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(HS_SECRET).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

/// A token over the exact header and payload text, signed with an Ed25519 private key.
fn ed_token(private_pem: &[u8], header: &str, payload: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_ed_pem(private_pem).unwrap();
    let input = signing_input(header, payload);
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::EdDSA).unwrap();
    format!("{input}.{signature}")
}

fn hs_header() -> String {
    json!({ "alg": "HS256", "kid": HS_KID, "typ": TYP }).to_string()
}

/// `{"alg":"EdDSA","kid":<dev>,"typ":…}` plus the members of `extra`.
fn ed_header_with(extra: Value) -> String {
    let mut header = json!({ "alg": "EdDSA", "kid": DEV_KID, "typ": TYP });
    if let (Some(h), Value::Object(extra)) = (header.as_object_mut(), extra) {
        h.extend(extra);
    }
    header.to_string()
}

/// The app's own payload in property and sliding tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AppData {
    name: String,
    tags: Vec<u32>,
    note: Option<String>,
}

fn sample_data() -> AppData {
    AppData {
        name: "Alice Liddell".into(),
        tags: vec![1, 2, 3],
        note: Some("down the rabbit hole".into()),
    }
}

/// A configuration builder over an HS256 keyring.
fn builder() -> SessionConfigBuilder {
    SessionConfig::builder(Keyring::new(hs_key()).unwrap())
}

/// The `; `-separated parts of a `Set-Cookie` value.
fn attributes(value: &HeaderValue) -> BTreeSet<String> {
    value
        .to_str()
        .unwrap()
        .split(';')
        .map(|p| p.trim().to_owned())
        .collect()
}
