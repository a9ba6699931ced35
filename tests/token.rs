//! The token core, proved through the public API: exact time boundaries and sliding, key
//! rotation, tampering, key loading, configuration, cookies, refusal codes, and property
//! tests of the codec. Raw (hand-built) tokens are signed here with `hmac`/`sha2` (HS256)
//! or `jsonwebtoken::crypto::sign` (EdDSA), so each tampering case is exactly what it says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};
use jwt_session::codec::{DEFAULT_MAX_TOKEN_LEN, DEFAULT_TOKEN_TYPE};
use jwt_session::keys;
use jwt_session::{
    Algorithm, Claims, Clock, Codec, ConfigError, CookieSettings, CsrfToken, DEFAULT_ABSOLUTE,
    DEFAULT_IDLE, DEFAULT_ISSUER, DEFAULT_LEEWAY, DEFAULT_REISSUE_AFTER, EncodeError, Key,
    KeyError, Keyring, MAX_COOKIE_LEN, ManualClock, Policy, Refusal, SameSite, SessionConfig,
    SessionConfigBuilder,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

const DEV_KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/keys");
const DEV_KID: &str = "dev-mHK7Jujzplbiytma";
const DEV_PRIVATE_PEM: &[u8] = include_bytes!("../keys/dev-mHK7Jujzplbiytma.pem");
const DEV_PUBLIC_PEM: &[u8] = include_bytes!("../keys/dev-mHK7Jujzplbiytma.pub.pem");
/// A committed P-256 test key (see `tests/fixtures/README.md`).
const ES256_PEM: &[u8] = include_bytes!("fixtures/es256-test.pem");
const ES256_PUB_PEM: &[u8] = include_bytes!("fixtures/es256-test.pub.pem");
/// A P-384 key: not an algorithm of ours, must be refused.
const P384_PEM: &[u8] = include_bytes!("fixtures/p384-test.pem");
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

// ---------------------------------------------------------------------------------------
// Controls: the hand-built token helpers produce tokens the codec accepts, so every
// refusal below is caused by the one thing each test changes.
// ---------------------------------------------------------------------------------------

#[test]
fn control_hand_built_tokens_are_accepted() {
    let claims = login(T0);
    let hs = hs_token(&hs_header(), &payload_json(&claims));
    assert_eq!(
        hs_codec().decode::<()>(hs.as_bytes()).unwrap().claims,
        claims
    );
    let ed = ed_token(
        DEV_PRIVATE_PEM,
        &ed_header_with(json!({})),
        &payload_json(&claims),
    );
    let verified = ed_codec().decode::<()>(ed.as_bytes()).unwrap();
    assert_eq!(verified.claims, claims);
    assert_eq!(verified.kid, DEV_KID);
}

// ---------------------------------------------------------------------------------------
// Time: exact boundaries, leeway, idle vs absolute, reissue, sliding
// ---------------------------------------------------------------------------------------

#[test]
fn new_claims_start_the_session_at_now() {
    let c = login(T0);
    assert_eq!((c.auth_time, c.iat, c.lat), (T0, T0, T0));
    assert_eq!(c.exp, T0 + IDLE);
    assert_eq!(
        (c.iss.as_str(), c.aud.as_str()),
        (DEFAULT_ISSUER, DEFAULT_ISSUER)
    );
    assert_eq!(c.sub, "alice");
}

#[test]
fn zero_leeway_now_equal_to_exp_is_expired() {
    let p = policy(0);
    let c = login(T0);
    assert_eq!(c.check(c.exp - 1, &p), Ok(()));
    assert_eq!(c.check(c.exp, &p), Err(Refusal::ExpiredIdle));
    assert_eq!(c.check(c.exp + 1, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn seconds_left_counts_down_to_zero_at_exp() {
    let p = policy(0);
    let c = login(T0);
    assert_eq!(c.expires_at(&p), T0 + IDLE);
    assert_eq!(c.seconds_left(T0, &p), 1800);
    assert_eq!(c.seconds_left(c.exp - 1, &p), 1);
    assert_eq!(c.seconds_left(c.exp, &p), 0);
    assert_eq!(c.seconds_left(c.exp + 100, &p), 0);
}

#[test]
fn leeway_five_extends_expiry_by_exactly_five_seconds() {
    let p = policy(5);
    let c = login_with(T0, (), &p);
    assert_eq!(c.exp, T0 + IDLE);
    assert_eq!(c.check(c.exp + 4, &p), Ok(()));
    assert_eq!(c.check(c.exp + 5, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn zero_leeway_token_from_the_future_is_not_yet_valid() {
    let p = policy(0);
    let c = login(T0);
    assert_eq!(c.check(T0, &p), Ok(()));
    assert_eq!(c.check(T0 - 1, &p), Err(Refusal::NotYetValid));
}

#[test]
fn leeway_five_tolerates_exactly_five_seconds_of_future_iat() {
    let p = policy(5);
    let c = login_with(T0, (), &p);
    // Valid while iat <= now + leeway.
    assert_eq!(c.check(T0 - 5, &p), Ok(()));
    assert_eq!(c.check(T0 - 6, &p), Err(Refusal::NotYetValid));
}

#[test]
fn future_last_activity_is_not_yet_valid() {
    let p = policy(5);
    let mut c = login_with(T0, (), &p);
    c.lat = T0 + 100;
    c.exp = c.lat + IDLE;
    assert_eq!(c.check(T0 + 95, &p), Ok(()));
    assert_eq!(c.check(T0 + 94, &p), Err(Refusal::NotYetValid));
}

#[test]
fn leeway_is_applied_to_the_absolute_deadline_exactly() {
    for leeway in [0_i64, 5] {
        let p = Policy::new(1800, 3600, 60, leeway.unsigned_abs()).unwrap();
        // Slid shortly before the cap: exp is the absolute deadline.
        let c = login_with(T0, (), &p).slid(T0 + 3000, &p).unwrap();
        assert_eq!(c.exp, T0 + 3600);
        assert_eq!(
            c.check(T0 + 3600 + leeway - 1, &p),
            Ok(()),
            "leeway {leeway}"
        );
        assert_eq!(
            c.check(T0 + 3600 + leeway, &p),
            Err(Refusal::ExpiredAbsolute),
            "leeway {leeway}"
        );
    }
}

#[test]
fn idle_expiry_is_reported_as_idle() {
    let p = Policy::new(1800, 3600, 60, 0).unwrap();
    let c = login_with(T0, (), &p);
    assert_eq!(c.check(T0 + 1800, &p), Err(Refusal::ExpiredIdle));
    assert_eq!(c.check(T0 + 3599, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn absolute_expiry_is_reported_as_absolute() {
    let p = Policy::new(1800, 3600, 60, 0).unwrap();
    let c = login_with(T0, (), &p).slid(T0 + 3000, &p).unwrap();
    // The idle deadline (T0 + 4800) is far away; only the absolute one has passed.
    assert_eq!(c.idle_deadline(&p), T0 + 4800);
    assert_eq!(c.absolute_deadline(&p), T0 + 3600);
    assert_eq!(c.check(T0 + 3600, &p), Err(Refusal::ExpiredAbsolute));
}

#[test]
fn absolute_wins_when_both_deadlines_passed() {
    let p = Policy::new(1800, 3600, 60, 0).unwrap();
    let c = login_with(T0, (), &p);
    assert!(T0 + 4000 >= c.idle_deadline(&p) && T0 + 4000 >= c.absolute_deadline(&p));
    assert_eq!(c.check(T0 + 4000, &p), Err(Refusal::ExpiredAbsolute));
    assert_eq!(c.check(T0 + 3600, &p), Err(Refusal::ExpiredAbsolute));
}

#[test]
fn a_stricter_exp_in_the_token_is_kept() {
    // A token issued under a stricter policy keeps its own exp.
    let p = policy(0);
    let mut c = login(T0);
    c.exp = T0 + 600;
    assert_eq!(c.check(T0 + 599, &p), Ok(()));
    assert_eq!(c.check(T0 + 600, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn reissue_is_due_exactly_at_lat_plus_reissue_after() {
    let p = policy(5);
    let c = login_with(T0, (), &p);
    assert!(!c.reissue_due(T0, &p));
    assert!(!c.reissue_due(T0 + 59, &p));
    assert!(c.reissue_due(T0 + 60, &p));
    assert!(c.reissue_due(T0 + 61, &p));
}

#[test]
fn slid_keeps_the_session_and_renews_the_token() {
    let p = policy(0);
    let c = login_with(T0, sample_data(), &p);
    let now = T0 + 100;
    let next = c.slid(now, &p).unwrap();
    assert_eq!(next.sid, c.sid);
    assert_eq!(next.sub, c.sub);
    assert_eq!(next.auth_time, c.auth_time);
    assert_eq!(next.csrf, c.csrf);
    assert_eq!(next.data, c.data);
    assert_eq!(
        (next.iss.as_str(), next.aud.as_str()),
        (c.iss.as_str(), c.aud.as_str())
    );
    assert_ne!(next.jti, c.jti);
    assert_eq!((next.iat, next.lat), (now, now));
    assert_eq!(next.exp, (now + IDLE).min(c.auth_time + ABSOLUTE));
    assert_eq!(next.exp, now + IDLE);
}

#[test]
fn slid_never_passes_the_absolute_cap_nor_moves_auth_time() {
    let p = policy(0);
    let c = login(T0);
    let cap = T0 + ABSOLUTE;
    for now in [
        cap - IDLE - 1,
        cap - IDLE,
        cap - 10,
        cap - 1,
        cap,
        cap + 1000,
    ] {
        let next = c.slid(now, &p).unwrap();
        assert_eq!(next.auth_time, T0, "at {now}");
        assert!(next.exp <= cap, "at {now}: exp {} past the cap", next.exp);
        assert_eq!(next.exp, (now + IDLE).min(cap), "at {now}");
        assert_eq!(next.absolute_deadline(&p), cap);
    }
    assert_eq!(
        c.slid(cap, &p).unwrap().check(cap, &p),
        Err(Refusal::ExpiredAbsolute)
    );
}

#[test]
fn activity_keeps_a_session_past_idle_until_the_absolute_cap() {
    let p = policy(0);
    let codec = ed_codec();
    let clock = ManualClock::new(T0);
    let first = login_with(clock.now(), (), &p);
    let mut token = codec.encode(&first).unwrap();
    let step = Duration::from_secs(1000); // < idle
    let refused_at = loop {
        clock.advance(step);
        let now = clock.now();
        let claims = codec.decode::<()>(token.as_bytes()).unwrap().claims;
        match claims.check(now, &p) {
            Ok(()) => {
                assert!(claims.reissue_due(now, &p));
                token = codec.encode(&claims.slid(now, &p).unwrap()).unwrap();
            }
            Err(refusal) => break (now, refusal),
        }
    };
    // Alive long past the idle timeout thanks to activity, then ended by the cap,
    // at the first request at or after it.
    assert_eq!(refused_at.1, Refusal::ExpiredAbsolute);
    assert!(refused_at.0 >= T0 + ABSOLUTE && refused_at.0 < T0 + ABSOLUTE + 1000);
    // The first token alone died at the idle deadline.
    assert_eq!(first.check(T0 + IDLE, &p), Err(Refusal::ExpiredIdle));
}

// ---------------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------------

#[test]
fn rotation_old_tokens_verify_until_the_old_key_is_retired() {
    let codec = ed_codec();
    let old = codec.encode(&login(T0)).unwrap();
    assert_eq!(header_of(&old)["kid"], DEV_KID);

    let next = keys::generate(Algorithm::EdDSA, "next-").unwrap().key;
    let next_kid = next.kid().to_owned();
    codec
        .rotate(|ring| {
            ring.add(next)?;
            ring.promote(&next_kid)
        })
        .unwrap();
    assert_eq!(codec.keyring().signer().kid(), next_kid);

    // New tokens name the new key.
    let fresh = codec.encode(&login(T0)).unwrap();
    let header = header_of(&fresh);
    assert_eq!(header["kid"], next_kid.as_str());
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], TYP);
    assert_eq!(codec.decode::<()>(fresh.as_bytes()).unwrap().kid, next_kid);

    // Old tokens still verify with the old, now verify-only-in-practice, key.
    assert_eq!(codec.decode::<()>(old.as_bytes()).unwrap().kid, DEV_KID);

    codec.rotate(|ring| ring.retire(DEV_KID)).unwrap();
    assert_eq!(refusal(&codec, &old), Refusal::UnknownKey);
    assert!(codec.decode::<()>(fresh.as_bytes()).is_ok());
}

#[test]
fn rotation_across_algorithms_signs_with_the_new_signer() {
    let codec = ed_codec();
    codec
        .rotate(|ring| {
            ring.add(es_key())?;
            ring.promote(ES_KID)
        })
        .unwrap();
    let token = codec.encode(&login(T0)).unwrap();
    let header = header_of(&token);
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES256"), Some(ES_KID))
    );
    assert_eq!(codec.decode::<()>(token.as_bytes()).unwrap().kid, ES_KID);
}

#[test]
fn a_failed_rotation_leaves_the_keyring_unchanged() {
    let codec = ed_codec();
    let before: Vec<String> = codec
        .keyring()
        .kids()
        .iter()
        .map(|k| k.to_string())
        .collect();
    let err = codec
        .rotate(|ring| {
            ring.add(es_key())?;
            ring.promote("no-such-key")
        })
        .unwrap_err();
    assert!(matches!(err, KeyError::NoSuchKey(k) if k == "no-such-key"));
    let after: Vec<String> = codec
        .keyring()
        .kids()
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(before, after);
    assert_eq!(codec.keyring().signer().kid(), DEV_KID);
}

#[test]
fn unknown_kid_is_refused() {
    let other = keys::generate(Algorithm::EdDSA, "other-").unwrap().key;
    let token = codec_for(Keyring::new(other).unwrap())
        .encode(&login(T0))
        .unwrap();
    assert_eq!(refusal(&ed_codec(), &token), Refusal::UnknownKey);
}

#[test]
fn promoting_a_verify_only_key_is_refused() {
    let mut ring = dev_ring();
    ring.add(Key::from_pem(ES_KID, ES256_PUB_PEM).unwrap())
        .unwrap();
    let err = ring.promote(ES_KID).unwrap_err();
    assert!(matches!(err, KeyError::CannotSign(k) if k == ES_KID));
    assert_eq!(ring.signer().kid(), DEV_KID);

    let verify_only = keys::generate(Algorithm::EdDSA, "v-")
        .unwrap()
        .key
        .to_verify_only()
        .unwrap();
    assert!(!verify_only.can_sign());
    assert!(matches!(
        Keyring::new(verify_only).unwrap_err(),
        KeyError::CannotSign(_)
    ));
}

#[test]
fn retiring_the_signer_is_refused() {
    let mut ring = dev_ring();
    let err = ring.retire(DEV_KID).unwrap_err();
    assert!(matches!(err, KeyError::RetireSigner(k) if k == DEV_KID));
    assert!(ring.get(DEV_KID).is_some());
    assert!(matches!(
        ring.retire("never-added").unwrap_err(),
        KeyError::NoSuchKey(_)
    ));
}

#[test]
fn duplicate_kid_is_refused() {
    let mut ring = dev_ring();
    let err = ring
        .add(Key::hs256(DEV_KID, HS_SECRET).unwrap())
        .unwrap_err();
    assert!(matches!(err, KeyError::DuplicateKid(k) if k == DEV_KID));
    // The original key is untouched.
    assert_eq!(ring.get(DEV_KID).unwrap().algorithm(), Algorithm::EdDSA);
}

// ---------------------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------------------

#[test]
fn alg_none_is_wrong_algorithm() {
    let payload = payload_json(&login(T0));
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "kid": DEV_KID, "typ": TYP }).to_string();
        let token = format!("{}.", signing_input(&header, &payload));
        assert_eq!(
            refusal(&ed_codec(), &token),
            Refusal::WrongAlgorithm,
            "{alg}"
        );
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_wrong_algorithm() {
    // Algorithm confusion: the attacker uses the (public) verification key as an HMAC
    // secret and names the real kid.
    let x = ed_codec()
        .keyring()
        .get(DEV_KID)
        .unwrap()
        .public_jwk()
        .unwrap()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw_public = URL_SAFE_NO_PAD.decode(x).unwrap();
    for secret in [DEV_PUBLIC_PEM, raw_public.as_slice()] {
        let forger = codec_for(Keyring::new(Key::hs256(DEV_KID, secret).unwrap()).unwrap());
        let token = forger.encode(&login(T0)).unwrap();
        assert_eq!(header_of(&token)["alg"], "HS256");
        assert_eq!(refusal(&ed_codec(), &token), Refusal::WrongAlgorithm);
    }
}

#[test]
fn es256_header_on_an_eddsa_kid_is_wrong_algorithm() {
    let forger = codec_for(Keyring::new(Key::from_pem(DEV_KID, ES256_PEM).unwrap()).unwrap());
    let token = forger.encode(&login(T0)).unwrap();
    assert_eq!(refusal(&ed_codec(), &token), Refusal::WrongAlgorithm);
}

#[test]
fn alg_in_another_case_is_wrong_algorithm() {
    let header = json!({ "alg": "eddsa", "kid": DEV_KID, "typ": TYP }).to_string();
    let token = ed_token(DEV_PRIVATE_PEM, &header, &payload_json(&login(T0)));
    assert_eq!(refusal(&ed_codec(), &token), Refusal::WrongAlgorithm);
}

#[test]
fn hostile_kid_values_are_unknown_keys() {
    let payload = payload_json(&login(T0));
    for kid in [
        "../../etc/passwd",
        "' OR 1=1 --",
        "/dev/null",
        "",
        "dev-mHK7Jujzplbiytma ",
        "DEV-MHK7JUJZPLBIYTMA",
        "dev-mHK7Jujzplbiytma\u{0}",
        "https://attacker.example/key",
    ] {
        let header = json!({ "alg": "EdDSA", "kid": kid, "typ": TYP }).to_string();
        let token = ed_token(DEV_PRIVATE_PEM, &header, &payload);
        assert_eq!(refusal(&ed_codec(), &token), Refusal::UnknownKey, "{kid:?}");
    }
}

#[test]
fn missing_or_null_kid_is_unknown_key() {
    let payload = payload_json(&login(T0));
    for header in [
        json!({ "alg": "EdDSA", "typ": TYP }),
        json!({ "alg": "EdDSA", "kid": null, "typ": TYP }),
    ] {
        let token = ed_token(DEV_PRIVATE_PEM, &header.to_string(), &payload);
        assert_eq!(
            refusal(&ed_codec(), &token),
            Refusal::UnknownKey,
            "{header}"
        );
    }
}

#[test]
fn crit_header_is_malformed_whatever_its_value() {
    let payload = payload_json(&login(T0));
    for crit in [json!(["exp"]), json!([]), json!(null), json!("b64")] {
        let header = ed_header_with(json!({ "crit": crit, "exp": 1 }));
        let token = ed_token(DEV_PRIVATE_PEM, &header, &payload);
        assert_eq!(
            refusal(&ed_codec(), &token),
            Refusal::Malformed,
            "crit {crit}"
        );
    }
}

#[test]
fn b64_header_is_malformed() {
    let header = ed_header_with(json!({ "b64": false }));
    let token = ed_token(DEV_PRIVATE_PEM, &header, &payload_json(&login(T0)));
    assert_eq!(refusal(&ed_codec(), &token), Refusal::Malformed);
}

/// A token naming the real kid, carrying `extra` header members that point at the
/// attacker's key, signed by the attacker. Also checks that the attacker's own key would
/// accept the very same header, so only the key choice makes the difference.
fn assert_embedded_key_ignored(extra: impl Fn(&Value) -> Value) {
    let attacker = keys::generate(Algorithm::EdDSA, "atk-").unwrap();
    let attacker_jwk = attacker.key.public_jwk().unwrap();
    let payload = payload_json(&login(T0));
    let header = ed_header_with(extra(&attacker_jwk));
    let token = ed_token(attacker.private_file.as_bytes(), &header, &payload);
    assert_eq!(refusal(&ed_codec(), &token), Refusal::BadSignature);

    // Control: the same header with the attacker's kid verifies under the attacker's key.
    let mut own: Value = serde_json::from_str(&header).unwrap();
    own["kid"] = json!(attacker.key.kid());
    let own = ed_token(attacker.private_file.as_bytes(), &own.to_string(), &payload);
    assert!(
        codec_for(Keyring::new(attacker.key).unwrap())
            .decode::<()>(own.as_bytes())
            .is_ok()
    );
}

#[test]
fn embedded_jwk_header_is_ignored() {
    assert_embedded_key_ignored(|jwk| json!({ "jwk": jwk }));
}

#[test]
fn embedded_jku_header_is_ignored() {
    assert_embedded_key_ignored(|_| json!({ "jku": "https://attacker.example/jwks.json" }));
}

#[test]
fn embedded_x5u_header_is_ignored() {
    assert_embedded_key_ignored(|_| json!({ "x5u": "https://attacker.example/cert.pem" }));
}

#[test]
fn embedded_x5c_header_is_ignored() {
    assert_embedded_key_ignored(|jwk| {
        let x = jwk["x"].as_str().unwrap_or_default();
        json!({ "x5c": [base64::engine::general_purpose::STANDARD.encode(x)] })
    });
}

#[test]
fn payload_swapped_under_a_valid_signature_is_bad_signature() {
    let codec = ed_codec();
    let alice = codec.encode(&login(T0)).unwrap();
    let mut admin = login(T0);
    admin.sub = "admin".into();
    let admin = codec.encode(&admin).unwrap();
    let [h, _, s] = parts(&alice);
    let [_, p, _] = parts(&admin);
    assert_eq!(
        refusal(&codec, &format!("{h}.{p}.{s}")),
        Refusal::BadSignature
    );
}

#[test]
fn truncated_signature_is_bad_signature() {
    let codec = ed_codec();
    let token = codec.encode(&login(T0)).unwrap();
    for cut in [1, 2, 4, 43, 86] {
        let truncated = &token[..token.len() - cut];
        assert_eq!(
            refusal(&codec, truncated),
            Refusal::BadSignature,
            "cut {cut}"
        );
    }
}

#[test]
fn padded_signature_is_bad_signature() {
    let codec = ed_codec();
    let token = codec.encode(&login(T0)).unwrap();
    for pad in ["=", "==", "%3D"] {
        assert_eq!(
            refusal(&codec, &format!("{token}{pad}")),
            Refusal::BadSignature,
            "{pad}"
        );
    }
}

#[test]
fn non_canonical_base64_signature_is_bad_signature() {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let codec = ed_codec();
    let token = codec.encode(&login(T0)).unwrap();
    let [h, p, s] = parts(&token);
    // 64 bytes → 86 characters: the last one carries 2 bits and 4 unused zero bits.
    assert_eq!(s.len(), 86);
    let last = s.as_bytes()[85];
    let index = ALPHABET.iter().position(|c| *c == last).unwrap();
    assert_eq!(
        index & 0b1111,
        0,
        "canonical encodings leave the unused bits zero"
    );
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    for low in [1_usize, 0b1000, 0b1111] {
        let other = char::from(ALPHABET[index | low]);
        let forged = format!("{h}.{p}.{}{other}", &s[..85]);
        // Same signature bytes, different text.
        assert_eq!(
            lenient.decode(parts(&forged)[2]).unwrap(),
            URL_SAFE_NO_PAD.decode(s).unwrap()
        );
        assert_eq!(refusal(&codec, &forged), Refusal::BadSignature, "{other}");
    }
}

#[test]
fn standard_alphabet_signature_is_bad_signature() {
    let codec = ed_codec();
    // Find a signature that contains a character that differs between the alphabets.
    let token = (0..200)
        .map(|_| codec.encode(&login(T0)).unwrap())
        .find(|t| parts(t)[2].contains(['-', '_']))
        .unwrap();
    let [h, p, s] = parts(&token);
    let standard = s.replace('-', "+").replace('_', "/");
    assert_eq!(
        refusal(&codec, &format!("{h}.{p}.{standard}")),
        Refusal::BadSignature
    );
}

#[test]
fn all_zero_es256_signature_is_bad_signature() {
    let codec = es_codec();
    let token = codec.encode(&login(T0)).unwrap();
    assert!(codec.decode::<()>(token.as_bytes()).is_ok());
    let [h, p, _] = parts(&token);
    for zeros in [vec![0_u8; 64], vec![0_u8; 8], vec![0_u8; 72]] {
        let forged = format!("{h}.{p}.{}", b64(&zeros));
        assert_eq!(
            refusal(&codec, &forged),
            Refusal::BadSignature,
            "{} bytes",
            zeros.len()
        );
    }
}

#[test]
fn empty_signature_is_bad_signature() {
    for codec in [ed_codec(), es_codec(), hs_codec()] {
        let token = codec.encode(&login(T0)).unwrap();
        let [h, p, _] = parts(&token);
        assert_eq!(refusal(&codec, &format!("{h}.{p}.")), Refusal::BadSignature);
    }
}

#[test]
fn duplicate_claim_names_are_malformed() {
    let payload = payload_json(&login(T0));
    let body = payload.strip_suffix('}').unwrap();
    for dup in [
        r#","sub":"admin""#,
        r#","exp":9999999999"#,
        r#","sid":"other""#,
        r#","dat":null"#,
    ] {
        let token = hs_token(&hs_header(), &format!("{body}{dup}}}"));
        assert_eq!(refusal(&hs_codec(), &token), Refusal::Malformed, "{dup}");
    }
}

#[test]
fn duplicate_header_names_are_malformed() {
    let payload = payload_json(&login(T0));
    for header in [
        format!(r#"{{"alg":"HS256","kid":"{HS_KID}","typ":"{TYP}","kid":"{HS_KID}"}}"#),
        format!(r#"{{"alg":"none","alg":"HS256","kid":"{HS_KID}","typ":"{TYP}"}}"#),
        format!(r#"{{"alg":"HS256","kid":"{HS_KID}","typ":"JWT","typ":"{TYP}"}}"#),
    ] {
        let token = hs_token(&header, &payload);
        assert_eq!(refusal(&hs_codec(), &token), Refusal::Malformed, "{header}");
    }
}

#[test]
fn non_json_payload_is_malformed() {
    for payload in ["not json", "", "[]", "null", "{}", r#"{"sub":"alice"}"#] {
        let token = hs_token(&hs_header(), payload);
        assert_eq!(
            refusal(&hs_codec(), &token),
            Refusal::Malformed,
            "{payload:?}"
        );
    }
}

#[test]
fn non_integer_times_are_malformed() {
    let mut claims: Value = serde_json::from_str(&payload_json(&login(T0))).unwrap();
    claims["exp"] = json!(1.9e9);
    let token = hs_token(&hs_header(), &claims.to_string());
    assert_eq!(refusal(&hs_codec(), &token), Refusal::Malformed);
    claims["exp"] = json!("9999999999");
    let token = hs_token(&hs_header(), &claims.to_string());
    assert_eq!(refusal(&hs_codec(), &token), Refusal::Malformed);
}

#[test]
fn empty_sub_or_sid_is_malformed() {
    for field in ["sub", "sid"] {
        let mut claims: Value = serde_json::from_str(&payload_json(&login(T0))).unwrap();
        claims[field] = json!("");
        let token = hs_token(&hs_header(), &claims.to_string());
        assert_eq!(refusal(&hs_codec(), &token), Refusal::Malformed, "{field}");
    }
}

#[test]
fn oversized_token_is_too_large_before_parsing() {
    let codec = ed_codec();
    assert_eq!(codec.max_len(), DEFAULT_MAX_TOKEN_LEN);
    assert_eq!(DEFAULT_MAX_TOKEN_LEN, 4096);
    assert_eq!(refusal(&codec, &"a".repeat(4097)), Refusal::TooLarge);
    // Exactly at the cap it is parsed (and refused for what it is).
    assert_eq!(refusal(&codec, &"a".repeat(4096)), Refusal::Malformed);
    // A real token grown past the cap with junk is refused unparsed too.
    let token = codec.encode(&login(T0)).unwrap();
    let grown = format!("{token}{}", "A".repeat(4097 - token.len()));
    assert_eq!(refusal(&codec, &grown), Refusal::TooLarge);
}

/// A codec of another service (other issuer / audience) sharing `codec`'s keys.
fn same_key_other_service(codec: &Codec, iss: &str, aud: &str) -> Codec {
    Codec::new(
        Keyring::clone(&codec.keyring()),
        iss,
        aud,
        DEFAULT_TOKEN_TYPE,
        DEFAULT_MAX_TOKEN_LEN,
    )
    .unwrap()
}

#[test]
fn wrong_issuer_is_refused() {
    let codec = ed_codec();
    let mut claims = login(T0);
    claims.iss = "someone-else".into();
    // Our own codec refuses to sign claims it would not accept; another service with
    // the same key would.
    assert!(matches!(
        codec.encode(&claims),
        Err(EncodeError::InvalidClaims(_))
    ));
    let token = same_key_other_service(&codec, "someone-else", DEFAULT_ISSUER)
        .encode(&claims)
        .unwrap();
    assert_eq!(refusal(&codec, &token), Refusal::WrongIssuer);
}

#[test]
fn wrong_audience_is_refused() {
    let codec = ed_codec();
    let mut claims = login(T0);
    claims.aud = "another-service".into();
    assert!(matches!(
        codec.encode(&claims),
        Err(EncodeError::InvalidClaims(_))
    ));
    let token = same_key_other_service(&codec, DEFAULT_ISSUER, "another-service")
        .encode(&claims)
        .unwrap();
    assert_eq!(refusal(&codec, &token), Refusal::WrongAudience);
}

#[test]
fn wrong_type_is_refused() {
    let other = Codec::new(
        dev_ring(),
        DEFAULT_ISSUER,
        DEFAULT_ISSUER,
        "JWT",
        DEFAULT_MAX_TOKEN_LEN,
    )
    .unwrap();
    let token = other.encode(&login(T0)).unwrap();
    assert_eq!(header_of(&token)["typ"], "JWT");
    assert_eq!(refusal(&ed_codec(), &token), Refusal::WrongType);
}

#[test]
fn missing_type_is_refused() {
    let header = json!({ "alg": "EdDSA", "kid": DEV_KID }).to_string();
    let token = ed_token(DEV_PRIVATE_PEM, &header, &payload_json(&login(T0)));
    assert_eq!(refusal(&ed_codec(), &token), Refusal::WrongType);
}

#[test]
fn two_part_and_four_part_tokens_are_malformed() {
    let codec = ed_codec();
    let token = codec.encode(&login(T0)).unwrap();
    let [h, p, s] = parts(&token);
    for bad in [
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        h.to_owned(),
        String::new(),
        "..".into(),
        "...".into(),
    ] {
        assert_eq!(refusal(&codec, &bad), Refusal::Malformed, "{bad:?}");
    }
}

#[test]
fn header_that_is_not_an_object_is_malformed() {
    let payload = payload_json(&login(T0));
    // A JSON array would otherwise fill the header's fields in order.
    let as_array = format!(r#"["HS256","{HS_KID}","{TYP}"]"#);
    for header in [
        as_array.as_str(),
        "[]",
        r#"["HS256"]"#,
        r#""HS256""#,
        "null",
        "1",
        "true",
        "not json",
    ] {
        let token = hs_token(header, &payload);
        assert_eq!(refusal(&hs_codec(), &token), Refusal::Malformed, "{header}");
    }
}

#[test]
fn payload_that_is_not_an_object_is_malformed() {
    // The claims as a JSON array in field order: it must not be read as the claims.
    let claims = login(T0);
    let object: Value = serde_json::from_str(&payload_json(&claims)).unwrap();
    let fields = [
        "iss",
        "aud",
        "sub",
        "sid",
        "jti",
        "auth_time",
        "iat",
        "lat",
        "exp",
        "csrf",
        "dat",
    ];
    let array = Value::Array(fields.iter().map(|f| object[*f].clone()).collect());
    let token = hs_token(&hs_header(), &array.to_string());
    assert_eq!(refusal(&hs_codec(), &token), Refusal::Malformed);
}

#[test]
fn header_that_is_not_base64url_is_malformed() {
    let codec = ed_codec();
    let token = codec.encode(&login(T0)).unwrap();
    let [h, p, s] = parts(&token);
    for bad in [format!("{h}=.{p}.{s}"), format!("*{h}.{p}.{s}")] {
        assert_eq!(refusal(&codec, &bad), Refusal::Malformed);
    }
}

#[test]
fn expired_token_with_bad_signature_is_bad_signature_not_expired() {
    let codec = ed_codec();
    let p = policy(0);
    let now = T0 + 10 * IDLE;
    let claims = login(T0);
    let token = codec.encode(&claims).unwrap();
    // The codec does not look at time: a validly signed expired token decodes ...
    let verified = codec.decode::<()>(token.as_bytes()).unwrap();
    // ... and the time check, a separate step, reports the expiry.
    assert_eq!(verified.claims.check(now, &p), Err(Refusal::ExpiredIdle));
    // With a bad signature the signature is what is reported.
    let [h, pl, s] = parts(&token);
    let mut sig = URL_SAFE_NO_PAD.decode(s).unwrap();
    sig[10] ^= 0x01;
    let forged = format!("{h}.{pl}.{}", b64(sig));
    assert_eq!(refusal(&codec, &forged), Refusal::BadSignature);
}

#[test]
fn signature_is_checked_before_issuer_and_audience() {
    let codec = ed_codec();
    let mut claims = login(T0);
    claims.iss = "someone-else".into();
    claims.aud = "another-service".into();
    let token = same_key_other_service(&codec, "someone-else", "another-service")
        .encode(&claims)
        .unwrap();
    let [h, p, _] = parts(&token);
    let forged = format!("{h}.{p}.{}", b64([7_u8; 64]));
    assert_eq!(refusal(&codec, &forged), Refusal::BadSignature);
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

#[test]
fn load_dir_reads_the_development_keys() {
    let ring = dev_ring();
    assert_eq!(ring.signer().kid(), DEV_KID);
    assert_eq!(ring.signer().algorithm(), Algorithm::EdDSA);
    assert!(ring.signer().can_sign());
    assert_eq!(ring.kids(), vec![DEV_KID]);
}

#[test]
fn load_dir_adds_public_only_keys_as_verify_only() {
    let dir = tempfile::tempdir().unwrap();
    keys::generate(Algorithm::EdDSA, "a-")
        .unwrap()
        .write_to(dir.path())
        .unwrap();
    std::fs::write(dir.path().join("old.pub.pem"), ES256_PUB_PEM).unwrap();
    std::fs::write(dir.path().join("README.md"), "ignored").unwrap();
    let ring = Keyring::load_dir(dir.path()).unwrap();
    assert!(ring.signer().kid().starts_with("a-"));
    let old = ring.get("old").unwrap();
    assert!(!old.can_sign());
    assert_eq!(old.algorithm(), Algorithm::ES256);
}

#[test]
fn load_dir_without_a_private_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Keyring::load_dir(dir.path()).unwrap_err(),
        KeyError::Directory { .. }
    ));
    std::fs::write(dir.path().join("only.pub.pem"), DEV_PUBLIC_PEM).unwrap();
    let err = Keyring::load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, KeyError::Directory { problem, .. } if problem.contains("no private key")),
        "{err}"
    );
}

#[test]
fn load_dir_of_a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Keyring::load_dir(dir.path().join("nope")).unwrap_err(),
        KeyError::Io { .. }
    ));
}

#[test]
fn load_dir_with_two_private_keys_needs_a_signer_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = keys::generate(Algorithm::EdDSA, "a-").unwrap();
    let b = keys::generate(Algorithm::HS256, "b-").unwrap();
    a.write_to(dir.path()).unwrap();
    b.write_to(dir.path()).unwrap();
    let err = Keyring::load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, KeyError::Directory { problem, .. } if problem.contains("SIGNER")),
        "{err}"
    );
    std::fs::write(dir.path().join("SIGNER"), format!("{}\n", b.key.kid())).unwrap();
    let ring = Keyring::load_dir(dir.path()).unwrap();
    assert_eq!(ring.signer().kid(), b.key.kid());
    assert_eq!(ring.signer().algorithm(), Algorithm::HS256);
    assert!(ring.get(a.key.kid()).unwrap().can_sign());
}

#[test]
fn load_dir_with_signer_naming_a_missing_kid_fails() {
    let dir = tempfile::tempdir().unwrap();
    keys::generate(Algorithm::EdDSA, "a-")
        .unwrap()
        .write_to(dir.path())
        .unwrap();
    std::fs::write(dir.path().join("SIGNER"), "ghost").unwrap();
    let err = Keyring::load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, KeyError::Directory { problem, .. } if problem.contains("ghost")),
        "{err}"
    );
    // A kid with only a public key cannot be the signer either.
    std::fs::write(dir.path().join("pubonly.pub.pem"), DEV_PUBLIC_PEM).unwrap();
    std::fs::write(dir.path().join("SIGNER"), "pubonly").unwrap();
    assert!(matches!(
        Keyring::load_dir(dir.path()).unwrap_err(),
        KeyError::Directory { .. }
    ));
}

#[test]
fn load_dir_with_a_mismatched_public_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let a = keys::generate(Algorithm::EdDSA, "a-").unwrap();
    let b = keys::generate(Algorithm::EdDSA, "b-").unwrap();
    let kid = a.key.kid().to_owned();
    std::fs::write(dir.path().join(format!("{kid}.pem")), &a.private_file).unwrap();
    std::fs::write(
        dir.path().join(format!("{kid}.pub.pem")),
        b.public_file.as_deref().unwrap(),
    )
    .unwrap();
    let err = Keyring::load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, KeyError::Directory { problem, .. } if problem.contains("does not match")),
        "{err}"
    );
    // The matching public key is fine.
    std::fs::write(
        dir.path().join(format!("{kid}.pub.pem")),
        a.public_file.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(Keyring::load_dir(dir.path()).unwrap().signer().kid(), kid);
}

#[test]
fn load_dir_with_a_weak_hmac_secret_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("weak.hs256"), b64([1_u8; 31])).unwrap();
    assert!(matches!(
        Keyring::load_dir(dir.path()).unwrap_err(),
        KeyError::WeakSecret { len: 31, .. }
    ));
}

#[test]
fn hmac_secret_under_32_bytes_is_weak() {
    let err = Key::hs256("short", &[7_u8; 31]).unwrap_err();
    assert!(matches!(&err, KeyError::WeakSecret { kid, len: 31 } if kid == "short"));
    assert!(Key::hs256("short", &[]).is_err());
    assert!(Key::hs256("ok", &[7_u8; 32]).is_ok());
}

#[test]
fn invalid_kid_characters_are_refused() {
    let too_long = "k".repeat(65);
    for kid in [
        "",
        "a b",
        "../x",
        "a/b",
        "kid\n",
        "ünï",
        "' OR 1=1 --",
        too_long.as_str(),
    ] {
        assert!(
            matches!(Key::hs256(kid, HS_SECRET).unwrap_err(), KeyError::InvalidKid(k) if k == kid),
            "{kid:?}"
        );
        assert!(
            matches!(
                Key::from_pem(kid, DEV_PRIVATE_PEM).unwrap_err(),
                KeyError::InvalidKid(_)
            ),
            "{kid:?}"
        );
    }
    assert!(Key::hs256("k".repeat(64), HS_SECRET).is_ok());
    assert!(Key::hs256("A-z_0.9", HS_SECRET).is_ok());
}

#[test]
fn keys_other_than_ed25519_and_p256_are_refused() {
    assert!(matches!(
        Key::from_pem("p384", P384_PEM).unwrap_err(),
        KeyError::Invalid { .. }
    ));
    assert!(matches!(
        Key::from_pem(
            "junk",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .unwrap_err(),
        KeyError::Invalid { .. }
    ));
    assert!(matches!(
        Key::from_pem("bin", &[0xff, 0xfe, 0x00]).unwrap_err(),
        KeyError::Invalid { .. }
    ));
}

#[test]
fn jwks_has_public_keys_only() {
    let verify_only = keys::generate(Algorithm::EdDSA, "old-")
        .unwrap()
        .key
        .to_verify_only()
        .unwrap();
    let verify_only_kid = verify_only.kid().to_owned();
    let ring = dev_ring()
        .with_key(es_key())
        .unwrap()
        .with_key(hs_key())
        .unwrap()
        .with_key(verify_only)
        .unwrap();
    let jwks = ring.jwks();
    let entries = jwks["keys"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "one entry per asymmetric key: {jwks}");

    let mut kids = BTreeSet::new();
    for entry in entries {
        let kid = entry["kid"].as_str().unwrap();
        kids.insert(kid.to_owned());
        assert_eq!(entry["use"], "sig", "{entry}");
        match entry["kty"].as_str().unwrap() {
            "OKP" => {
                assert_eq!(entry["alg"], "EdDSA");
                assert_eq!(entry["crv"], "Ed25519");
                assert!(entry["x"].is_string());
            }
            "EC" => {
                assert_eq!(entry["alg"], "ES256");
                assert_eq!(entry["crv"], "P-256");
                assert!(entry["x"].is_string() && entry["y"].is_string());
            }
            other => panic!("unexpected kty {other}"),
        }
    }
    let expected: BTreeSet<String> = [DEV_KID, ES_KID, verify_only_kid.as_str()]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(kids, expected);

    fn has_member(v: &Value, names: &[&str]) -> bool {
        match v {
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| names.contains(&k.as_str()) || has_member(v, names)),
            Value::Array(a) => a.iter().any(|v| has_member(v, names)),
            _ => false,
        }
    }
    // No private members (`d`; `p`, `q`… for RSA) and no symmetric key (`k`) anywhere.
    assert!(
        !has_member(&jwks, &["d", "k", "p", "q", "dp", "dq", "qi"]),
        "{jwks}"
    );
    let text = jwks.to_string();
    assert!(!text.contains(HS_KID));
    assert!(!text.contains(&b64(HS_SECRET)));
    assert!(!text.contains("oct"));
    assert!(hs_key().public_jwk().is_none());
}

/// The base64 body lines of a PEM document (the key material).
fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn debug_output_never_shows_key_material() {
    let generated = keys::generate(Algorithm::EdDSA, "dbg-").unwrap();
    let hmac = keys::generate(Algorithm::HS256, "hdbg-").unwrap();
    let es = es_key();
    let hs = hs_key();
    let ring = dev_ring()
        .with_key(es.clone())
        .unwrap()
        .with_key(hs.clone())
        .unwrap();

    let mut secrets: Vec<String> = Vec::new();
    for pem in [
        &generated.private_file,
        generated.public_file.as_ref().unwrap(),
        &String::from_utf8(ES256_PEM.to_vec()).unwrap(),
        &String::from_utf8(DEV_PRIVATE_PEM.to_vec()).unwrap(),
    ] {
        secrets.extend(pem_body_lines(pem));
    }
    secrets.push(hmac.private_file.trim().to_owned());
    secrets.push(String::from_utf8(HS_SECRET.to_vec()).unwrap());
    secrets.push(b64(HS_SECRET));
    let x = generated.key.public_jwk().unwrap()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(x);

    let shown = [
        format!("{:?}", generated.key),
        format!("{generated:?}"),
        format!("{hmac:?}"),
        format!("{es:?}"),
        format!("{hs:?}"),
        format!("{ring:?}"),
        format!("{:?}", codec_for(ring)),
        format!("{generated:#?}"),
    ];
    for text in &shown {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{text} shows {secret}");
        }
    }
    for key_text in [&shown[0], &shown[3], &shown[4]] {
        assert!(key_text.contains("REDACTED"), "{key_text}");
    }
    assert!(shown[0].contains(generated.key.kid()));
}

#[test]
fn debug_output_never_shows_the_csrf_value() {
    let csrf = CsrfToken::generate().unwrap();
    assert_eq!(format!("{csrf:?}"), "CsrfToken(REDACTED)");
    let claims = login(T0);
    let shown = format!("{claims:?} {claims:#?}");
    assert!(!shown.contains(claims.csrf.expose()), "{shown}");
    assert!(shown.contains("REDACTED"));
}

#[test]
fn csrf_tokens_are_random_and_compare_exactly() {
    let a = CsrfToken::generate().unwrap();
    let b = CsrfToken::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.expose().len(), 43);
    assert!(a.matches(a.expose().as_bytes()));
    assert!(!a.matches(b.expose().as_bytes()));
    assert!(!a.matches(&a.expose().as_bytes()[..42]));
    assert!(!a.matches(b""));
}

#[test]
fn generated_ed25519_key_reloads_from_its_pem_files() {
    let g = keys::generate(Algorithm::EdDSA, "gen-").unwrap();
    let kid = g.key.kid().to_owned();
    assert!(
        kid.starts_with("gen-") && kid.len() == "gen-".len() + 16,
        "{kid}"
    );
    assert_eq!(g.key.algorithm(), Algorithm::EdDSA);
    assert!(g.key.can_sign());

    let private = Key::from_pem(kid.clone(), g.private_file.as_bytes()).unwrap();
    assert!(private.can_sign());
    assert_eq!(private.algorithm(), Algorithm::EdDSA);
    assert_eq!(private.public_jwk(), g.key.public_jwk());

    let public = Key::from_pem(kid.clone(), g.public_file.as_deref().unwrap().as_bytes()).unwrap();
    assert!(!public.can_sign());
    assert_eq!(public.public_jwk(), g.key.public_jwk());

    // A token of the generated key verifies with the key reloaded from the public file.
    let token = codec_for(Keyring::new(g.key).unwrap())
        .encode(&login(T0))
        .unwrap();
    let verifier = codec_for(dev_ring().with_key(public).unwrap());
    assert_eq!(verifier.decode::<()>(token.as_bytes()).unwrap().kid, kid);
    // And the private key reloaded from PEM signs tokens the original key accepts.
    let resigned = codec_for(Keyring::new(private).unwrap())
        .encode(&login(T0))
        .unwrap();
    assert!(verifier.decode::<()>(resigned.as_bytes()).is_ok());
}

#[test]
fn generated_keys_write_to_a_directory_that_load_dir_reads() {
    for alg in [Algorithm::EdDSA, Algorithm::HS256] {
        let dir = tempfile::tempdir().unwrap();
        let g = keys::generate(alg, "w-").unwrap();
        g.write_to(dir.path()).unwrap();
        let ring = Keyring::load_dir(dir.path()).unwrap();
        assert_eq!(ring.signer().kid(), g.key.kid());
        assert_eq!(ring.signer().algorithm(), alg);
        // Tokens cross between the in-memory key and the reloaded one.
        let token = codec_for(Keyring::new(g.key.clone()).unwrap())
            .encode(&login(T0))
            .unwrap();
        assert!(codec_for(ring).decode::<()>(token.as_bytes()).is_ok());

        let private_name = match alg {
            Algorithm::HS256 => format!("{}.hs256", g.key.kid()),
            _ => format!("{}.pem", g.key.kid()),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(&private_name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{private_name}");
        }
        assert_eq!(
            dir.path().join(format!("{}.pub.pem", g.key.kid())).exists(),
            alg == Algorithm::EdDSA
        );

        // Never overwrites.
        let before = std::fs::read(dir.path().join(&private_name)).unwrap();
        let err = g.write_to(dir.path()).unwrap_err();
        assert!(
            matches!(&err, KeyError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(
            std::fs::read(dir.path().join(&private_name)).unwrap(),
            before
        );
    }
}

#[test]
fn es256_keys_are_loaded_not_generated() {
    assert!(matches!(
        keys::generate(Algorithm::ES256, "es-").unwrap_err(),
        KeyError::Invalid { .. }
    ));
    let key = es_key();
    assert_eq!(key.algorithm(), Algorithm::ES256);
    assert!(key.can_sign());
    let public = Key::from_pem(ES_KID, ES256_PUB_PEM).unwrap();
    assert!(!public.can_sign());
    assert_eq!(public.public_jwk(), key.public_jwk());
}

// ---------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------

fn builder() -> SessionConfigBuilder {
    SessionConfig::builder(Keyring::new(hs_key()).unwrap())
}

fn build_err(change: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder) -> ConfigError {
    change(builder()).build().unwrap_err()
}

fn is_cookie_error(err: &ConfigError, needle: &str) -> bool {
    matches!(err, ConfigError::Cookie(msg) if msg.contains(needle))
}

#[test]
fn config_defaults() {
    assert_eq!(DEFAULT_IDLE, Duration::from_secs(30 * 60));
    assert_eq!(DEFAULT_ABSOLUTE, Duration::from_secs(8 * 3600));
    assert_eq!(DEFAULT_REISSUE_AFTER, Duration::from_secs(60));
    assert_eq!(DEFAULT_LEEWAY, Duration::from_secs(5));
    let config = SessionConfig::builder(dev_ring())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    let p = config.policy();
    assert_eq!(p.idle_timeout(), 30 * 60);
    assert_eq!(p.absolute_timeout(), 8 * 3600);
    assert_eq!(p.reissue_after(), 60);
    assert_eq!(p.leeway(), 5);
    assert_eq!(config.codec().issuer(), DEFAULT_ISSUER);
    assert_eq!(config.codec().audience(), DEFAULT_ISSUER);
    assert_eq!(config.codec().max_len(), DEFAULT_MAX_TOKEN_LEN);
    assert_eq!(config.cookie().name(), "__Host-session");
    assert_eq!(config.cookie(), &CookieSettings::default());
    assert_eq!(config.clock().now(), T0);
    // The configured codec signs with the keyring's signer and verifies its own tokens.
    let token = config
        .codec()
        .encode(&login_with(T0, (), config.policy()))
        .unwrap();
    assert_eq!(header_of(&token)["kid"], DEV_KID);
    assert!(config.codec().decode::<()>(token.as_bytes()).is_ok());
}

#[test]
fn config_idle_over_absolute_is_refused() {
    let err = build_err(|b| {
        b.idle_timeout(Duration::from_secs(7200))
            .absolute_timeout(Duration::from_secs(3600))
    });
    assert!(
        matches!(
            err,
            ConfigError::IdleOverAbsolute {
                idle: 7200,
                absolute: 3600
            }
        ),
        "{err}"
    );
}

#[test]
fn config_zero_durations_are_refused() {
    let err = build_err(|b| b.idle_timeout(Duration::ZERO));
    assert!(matches!(err, ConfigError::Zero("idle timeout")), "{err}");
    let err = build_err(|b| b.absolute_timeout(Duration::ZERO));
    assert!(
        matches!(err, ConfigError::Zero("absolute timeout")),
        "{err}"
    );
}

#[test]
fn config_sub_second_durations_are_refused() {
    let err = build_err(|b| b.idle_timeout(Duration::from_millis(1500)));
    assert!(
        matches!(err, ConfigError::SubSecond("idle timeout")),
        "{err}"
    );
    let err = build_err(|b| b.absolute_timeout(Duration::from_millis(3_600_001)));
    assert!(
        matches!(err, ConfigError::SubSecond("absolute timeout")),
        "{err}"
    );
    let err = build_err(|b| b.reissue_after(Duration::from_millis(500)));
    assert!(
        matches!(err, ConfigError::SubSecond("reissue-after")),
        "{err}"
    );
    let err = build_err(|b| b.leeway(Duration::from_nanos(1)));
    assert!(matches!(err, ConfigError::SubSecond("leeway")), "{err}");
}

#[test]
fn config_reissue_after_not_under_idle_is_refused() {
    for reissue in [600, 601] {
        let err = build_err(|b| {
            b.idle_timeout(Duration::from_secs(600))
                .reissue_after(Duration::from_secs(reissue))
        });
        assert!(
            matches!(err, ConfigError::ReissueAfterIdle { idle: 600, reissue: r } if r == reissue),
            "{err}"
        );
    }
    assert!(
        builder()
            .idle_timeout(Duration::from_secs(600))
            .reissue_after(Duration::from_secs(599))
            .build()
            .is_ok()
    );
}

#[test]
fn config_leeway_not_under_idle_is_refused() {
    let err = build_err(|b| {
        b.idle_timeout(Duration::from_secs(60))
            .reissue_after(Duration::from_secs(10))
            .leeway(Duration::from_secs(60))
    });
    assert!(
        matches!(
            err,
            ConfigError::LeewayTooLarge {
                leeway: 60,
                idle: 60
            }
        ),
        "{err}"
    );
}

#[test]
fn config_host_cookie_without_secure_is_refused() {
    let err = build_err(|b| b.cookie_secure(false));
    assert!(is_cookie_error(&err, "__Host-"), "{err}");
}

#[test]
fn config_host_cookie_with_a_path_is_refused() {
    let err = build_err(|b| b.cookie_path("/app"));
    assert!(is_cookie_error(&err, "__Host-"), "{err}");
}

#[test]
fn config_host_cookie_with_a_domain_is_refused() {
    let err = build_err(|b| b.cookie_domain("example.com"));
    assert!(is_cookie_error(&err, "__Host-"), "{err}");
}

#[test]
fn config_secure_prefix_cookie_without_secure_is_refused() {
    let err = build_err(|b| b.cookie_name("__Secure-session").cookie_secure(false));
    assert!(is_cookie_error(&err, "__Secure-"), "{err}");
}

#[test]
fn config_same_site_none_without_secure_is_refused() {
    let err = build_err(|b| {
        b.cookie_name("session")
            .cookie_secure(false)
            .cookie_same_site(SameSite::None)
    });
    assert!(is_cookie_error(&err, "SameSite=None"), "{err}");
    assert!(builder().cookie_same_site(SameSite::None).build().is_ok());
}

#[test]
fn config_empty_issuer_is_refused() {
    for issuer in ["", "   "] {
        let err = build_err(|b| b.issuer(issuer));
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "issuer",
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = build_err(|b| b.audience(""));
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "audience",
                ..
            }
        ),
        "{err}"
    );
    let err = build_err(|b| b.token_type(""));
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "token type",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn config_invalid_cookie_name_is_refused() {
    for name in ["", "bad name", "a;b", "a=b", "sess\u{e9}", "a,b", "(x)"] {
        let err = build_err(|b| b.cookie_name(name));
        assert!(is_cookie_error(&err, "cookie name"), "{name:?}: {err}");
    }
}

#[test]
fn config_invalid_cookie_path_or_domain_is_refused() {
    let err = build_err(|b| b.cookie_name("sess").cookie_path("app"));
    assert!(is_cookie_error(&err, "path"), "{err}");
    let err = build_err(|b| b.cookie_name("sess").cookie_path("/a;b"));
    assert!(is_cookie_error(&err, "path"), "{err}");
    let err = build_err(|b| b.cookie_name("sess").cookie_domain("a b"));
    assert!(is_cookie_error(&err, "domain"), "{err}");
}

#[test]
fn config_tiny_token_cap_is_refused() {
    let err = build_err(|b| b.max_token_len(255));
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "max token length",
                ..
            }
        ),
        "{err}"
    );
    assert!(builder().max_token_len(256).build().is_ok());
}

#[test]
fn config_development_cookies_build() {
    let config = builder().development_cookies().build().unwrap();
    assert_eq!(config.cookie().name(), "session");
    let set_cookie = config.cookie().issue("tok", 60).unwrap();
    let attrs = attributes(&set_cookie);
    assert!(!attrs.contains("Secure"), "{attrs:?}");
    assert!(attrs.contains("HttpOnly"));
    let removal = attributes(&config.cookie().removal());
    assert!(!removal.contains("Secure"), "{removal:?}");
}

// ---------------------------------------------------------------------------------------
// Cookie
// ---------------------------------------------------------------------------------------

/// The `; `-separated parts of a `Set-Cookie` value.
fn attributes(value: &HeaderValue) -> BTreeSet<String> {
    value
        .to_str()
        .unwrap()
        .split(';')
        .map(|p| p.trim().to_owned())
        .collect()
}

/// The attributes of a `Set-Cookie` value other than its `name=value` pair and lifetime.
fn without_value_and_lifetime(attrs: &BTreeSet<String>, name: &str) -> BTreeSet<String> {
    let pair = format!("{name}=");
    attrs
        .iter()
        .filter(|a| !a.starts_with(&pair))
        .filter(|a| !a.starts_with("Max-Age=") && !a.starts_with("Expires="))
        .cloned()
        .collect()
}

#[test]
fn cookie_find_across_several_cookie_headers() {
    let settings = CookieSettings::default();
    let mut headers = HeaderMap::new();
    headers.append(
        COOKIE,
        HeaderValue::from_static("theme=dark; __Host-session2=no; x__Host-session=no"),
    );
    headers.append(
        COOKIE,
        HeaderValue::from_static("a=1; __Host-session=; b=2"),
    );
    headers.append(
        COOKIE,
        HeaderValue::from_static("lang=en;__Host-session=hdr.pay.sig ; z=9"),
    );
    headers.append(
        COOKIE,
        HeaderValue::from_static("__Host-session=later.one.sig"),
    );
    assert_eq!(settings.find(&headers), Some(&b"hdr.pay.sig"[..]));
}

#[test]
fn cookie_find_among_other_cookies_in_one_header() {
    let settings = CookieSettings::default();
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_static("a=1; session=wrong; __Host-session=\"quoted.tok.en\"; b=2"),
    );
    assert_eq!(settings.find(&headers), Some(&b"quoted.tok.en"[..]));

    let mut none = HeaderMap::new();
    assert_eq!(settings.find(&none), None);
    none.insert(
        COOKIE,
        HeaderValue::from_static("session=x; __host-session=y"),
    );
    assert_eq!(settings.find(&none), None);
}

#[test]
fn cookie_issue_has_secure_attributes() {
    let value = CookieSettings::default().issue("hdr.pay.sig", 600).unwrap();
    let text = value.to_str().unwrap();
    assert!(text.starts_with("__Host-session=hdr.pay.sig;"), "{text}");
    let attrs = attributes(&value);
    for expected in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(attrs.contains(expected), "{expected} missing from {text}");
    }
    assert!(!text.contains("Domain"), "{text}");
}

#[test]
fn cookie_removal_mirrors_the_issue_attributes() {
    let config = builder()
        .cookie_name("sid")
        .cookie_path("/app")
        .cookie_domain("example.com")
        .cookie_same_site(SameSite::Strict)
        .build()
        .unwrap();
    for settings in [CookieSettings::default(), config.cookie().clone()] {
        let issued = attributes(&settings.issue("tok", 600).unwrap());
        let removed = attributes(&settings.removal());
        let text = settings.removal().to_str().unwrap().to_owned();
        assert!(
            text.starts_with(&format!("{}=;", settings.name())),
            "{text}"
        );
        assert!(removed.contains("Max-Age=0"), "{text}");
        assert!(
            removed
                .iter()
                .any(|a| a.starts_with("Expires=") && a.contains("1970")),
            "{text}"
        );
        assert_eq!(
            without_value_and_lifetime(&issued, settings.name()),
            without_value_and_lifetime(&removed, settings.name()),
            "{text}"
        );
    }
    let custom = attributes(&config.cookie().removal());
    for expected in [
        "Domain=example.com",
        "Path=/app",
        "SameSite=Strict",
        "Secure",
        "HttpOnly",
    ] {
        assert!(
            custom.contains(expected),
            "{expected} missing from {custom:?}"
        );
    }
}

#[test]
fn cookie_issue_refuses_a_value_over_the_browser_limit() {
    let err = CookieSettings::default()
        .issue(&"a".repeat(5000), 600)
        .unwrap_err();
    assert!(
        matches!(err, EncodeError::CookieTooLarge { len } if len > MAX_COOKIE_LEN),
        "{err}"
    );
    // A real token at the default cap fits.
    let token = ed_codec().encode(&login(T0)).unwrap();
    assert!(CookieSettings::default().issue(&token, 600).is_ok());
}

// ---------------------------------------------------------------------------------------
// Refusal
// ---------------------------------------------------------------------------------------

#[test]
fn refusal_codes_are_unique_snake_case() {
    let mut seen = BTreeSet::new();
    for refusal in Refusal::ALL {
        let code = refusal.code();
        assert!(seen.insert(code), "duplicate code {code}");
        assert!(
            !code.is_empty()
                && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && !code.starts_with('_')
                && !code.ends_with('_')
                && !code.contains("__"),
            "{code} is not snake_case"
        );
        assert_eq!(refusal.to_string(), code);
        assert!(!refusal.message().is_empty());
        let body: Value = serde_json::from_str(&refusal.json_body()).unwrap();
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["message"], refusal.message());
    }
    assert_eq!(seen.len(), Refusal::ALL.len());
    assert_eq!(Refusal::ExpiredIdle.code(), "session_expired_idle");
}

#[test]
fn refusal_statuses_are_401_403_503() {
    for refusal in Refusal::ALL {
        let expected = match refusal {
            Refusal::CsrfMissing | Refusal::CsrfMismatch | Refusal::OriginRejected => 403,
            Refusal::RevocationUnavailable => 503,
            _ => 401,
        };
        assert_eq!(refusal.status().as_u16(), expected, "{refusal}");
    }
    assert!(Refusal::ExpiredIdle.ends_session());
    assert!(Refusal::BadSignature.ends_session());
    assert!(!Refusal::CsrfMismatch.ends_session());
    assert!(!Refusal::RevocationUnavailable.ends_session());
    assert!(!Refusal::Missing.ends_session());
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

static ED: LazyLock<Codec> = LazyLock::new(ed_codec);
static ED_TOKEN: LazyLock<String> = LazyLock::new(|| ED.encode(&login(T0)).unwrap());

fn any_string(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

fn app_data(max_chars: usize, max_tags: usize) -> impl Strategy<Value = AppData> {
    (
        any_string(max_chars),
        prop::collection::vec(any::<u32>(), 0..=max_tags),
        prop::option::of(any_string(max_chars)),
    )
        .prop_map(|(name, tags, note)| AppData { name, tags, note })
}

fn b64_part(max_bytes: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..=max_bytes).prop_map(b64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Small app data always fits under the cap and comes back unchanged.
    #[test]
    fn prop_app_data_round_trips(data in app_data(80, 32)) {
        let claims = login_with(T0, data, &policy(0));
        let token = ED.encode(&claims).unwrap();
        prop_assert!(token.len() <= DEFAULT_MAX_TOKEN_LEN);
        let back = ED.decode::<AppData>(token.as_bytes()).unwrap();
        prop_assert_eq!(back.claims, claims);
    }

    /// Large app data either round-trips or is refused with `TooLarge`; never a panic,
    /// never an over-long token.
    #[test]
    fn prop_large_app_data_round_trips_or_is_too_large(data in app_data(1500, 400)) {
        let claims = login_with(T0, data, &policy(0));
        match ED.encode(&claims) {
            Ok(token) => {
                prop_assert!(token.len() <= DEFAULT_MAX_TOKEN_LEN);
                let back = ED.decode::<AppData>(token.as_bytes()).unwrap();
                prop_assert_eq!(back.claims, claims);
            }
            Err(EncodeError::TooLarge { len, max }) => {
                prop_assert_eq!(max, DEFAULT_MAX_TOKEN_LEN);
                prop_assert!(len > max);
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    /// Arbitrary bytes never panic the decoder and are always refused.
    #[test]
    fn prop_decode_arbitrary_bytes_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
        prop_assert!(ED.decode::<()>(&bytes).is_err());
        prop_assert!(ED.decode::<AppData>(&bytes).is_err());
    }

    /// Three dot-joined base64url parts of arbitrary bytes are refused.
    #[test]
    fn prop_decode_arbitrary_three_part_tokens_is_refused(
        h in b64_part(200), p in b64_part(600), s in b64_part(100)
    ) {
        let token = format!("{h}.{p}.{s}");
        prop_assert!(ED.decode::<()>(token.as_bytes()).is_err());
    }

    /// Arbitrary payloads and signatures under plausible headers (real kid, every
    /// algorithm name, extra members) reach the key lookup and signature check, and are
    /// refused.
    #[test]
    fn prop_decode_plausible_headers_with_arbitrary_rest_is_refused(
        alg in prop::sample::select(vec!["EdDSA", "ES256", "HS256", "none", "RS256", ""]),
        kid in prop::sample::select(vec![DEV_KID, "", "x", "../keys"]),
        p in b64_part(600),
        s in prop_oneof![b64_part(100), prop::collection::vec(any::<u8>(), 64).prop_map(b64)],
    ) {
        let header = json!({ "alg": alg, "kid": kid, "typ": TYP }).to_string();
        let token = format!("{}.{p}.{s}", b64(header));
        prop_assert!(ED.decode::<()>(token.as_bytes()).is_err());
    }

    /// Changing any single byte of a valid token makes it refused.
    #[test]
    fn prop_any_single_byte_change_is_refused(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut token = ED_TOKEN.as_bytes().to_vec();
        let i = index.index(token.len());
        prop_assume!(token[i] != byte);
        token[i] = byte;
        prop_assert!(ED.decode::<()>(&token).is_err());
    }

    /// Dot-and-base64 soup is refused.
    #[test]
    fn prop_decode_token_alphabet_soup_is_refused(s in "[A-Za-z0-9_=.-]{0,400}") {
        prop_assert!(ED.decode::<()>(s.as_bytes()).is_err());
    }
}

#[test]
fn valid_token_still_decodes_for_the_properties() {
    // The properties above mutate this token; it must be valid to start with.
    assert!(ED.decode::<()>(ED_TOKEN.as_bytes()).is_ok());
}

/// The order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `a - b` for big-endian 256-bit numbers with `a >= b`.
fn sub_256(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
    let mut out = [0_u8; 32];
    let mut borrow = 0_i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    out
}

#[test]
fn es256_signature_malleability_does_not_change_the_session() {
    // (r, s) and (r, n - s) are both valid ECDSA signatures of one message: two different
    // token strings for one session (the aws-lc backend accepts both; a backend that
    // enforces low-s would refuse the twin). Either way the twin never yields another
    // session, which is why revocation keys on `sid`, never on token bytes.
    let codec = es_codec();
    let token = codec.encode(&login(T0)).unwrap();
    let [h, p, s] = parts(&token);
    let sig = URL_SAFE_NO_PAD.decode(s).unwrap();
    let mut twin = sig[..32].to_vec();
    twin.extend_from_slice(&sub_256(&P256_N, &sig[32..]));
    let forged = format!("{h}.{p}.{}", b64(&twin));
    assert_ne!(forged, token);
    let original = codec.decode::<()>(token.as_bytes()).unwrap().claims;
    match codec.decode::<()>(forged.as_bytes()) {
        Ok(v) => assert_eq!(v.claims, original),
        Err(refusal) => assert_eq!(refusal, Refusal::BadSignature),
    }
}
