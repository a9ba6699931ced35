//! Properties of the codec: app data round-trips or is too large; arbitrary bytes,
//! parts and headers are refused, never a panic. And an ES256 signature's malleable twin
//! never yields another session.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_session::DEFAULT_MAX_TOKEN_LEN;
use jwt_session::{Codec, EncodeError, Refusal};
use proptest::prelude::*;
use serde_json::json;

use crate::{AppData, DEV_KID, T0, TYP, b64, ed_codec, es_codec, login, login_with, parts, policy};

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
