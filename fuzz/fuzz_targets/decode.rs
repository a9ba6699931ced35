//! `Codec::decode` against its contract: it never panics, whatever the bytes, and any token
//! it accepts satisfies everything the codec promises.
//!
//! Input: `[mode, rest…]`.
//! * mode 0: `rest` is the token, decoded by an Ed25519 and an HS256 codec; the layer's own
//!   verification accepts nothing the codec refuses.
//! * mode 1: `rest` is the claims JSON, signed here with the HS256 key under the header we
//!   mint, so the checks after the signature (claims, issuer, audience, ids, CSRF shape) are
//!   reachable by the fuzzer.
//! * mode 2: `rest` is `header JSON \0 claims JSON`, signed here with the HS256 key, so the
//!   header checks (`kid`, `alg`, `typ`, `crit`, `b64`) are reachable too.
//!
//! The contract of an accepted token (`Ok`): at most `max_len` bytes; `iss` and `aud` equal
//! to the configured ones; non-empty `sub` and `sid`; a `csrf` claim of exactly the shape we
//! mint (43 characters of the base64url alphabet `A-Za-z0-9-_`); a `kid` of the keyring.
//! When the header is ours to see (mode 2), it is a JSON object whose `alg` is the key's,
//! whose `typ` is the configured one (ASCII case aside), with no `crit` nor `b64`.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use jwt_session::testing::TestKit;
use jwt_session::{Codec, Key, Keyring, Refusal, SessionConfig, SessionLayer, Verified};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const HS_KID: &str = "fuzz-hs";
const HS_SECRET: [u8; 32] = [42; 32];
const TYP: &str = "session+jwt";

struct Fixture {
    ed: SessionLayer<()>,
    hs: SessionLayer<()>,
    hs_key: EncodingKey,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let kit = TestKit::new();
    let ring = Keyring::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../keys")).unwrap();
    let ed = SessionConfig::builder(ring)
        .clock(kit.clock().clone())
        .build()
        .unwrap();
    let hs_ring = Keyring::new(Key::hs256(HS_KID, &HS_SECRET).unwrap()).unwrap();
    let hs = SessionConfig::builder(hs_ring)
        .clock(kit.clock().clone())
        .build()
        .unwrap();
    Fixture {
        ed: SessionLayer::new(ed, kit.store().clone()),
        hs: SessionLayer::new(hs, kit.store().clone()),
        hs_key: EncodingKey::from_secret(&HS_SECRET),
    }
});

/// The CSRF secret we mint: 32 random bytes as unpadded base64url.
fn csrf_shape(csrf: &str) -> bool {
    csrf.len() == 43
        && csrf
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The contract of a token `codec` accepted.
fn accepted(codec: &Codec, token: &[u8], verified: &Verified<Value>) {
    let c = &verified.claims;
    assert!(
        token.len() <= codec.max_len(),
        "accepted a token over the length cap"
    );
    assert_eq!(c.iss, codec.issuer(), "accepted a foreign issuer");
    assert_eq!(c.aud, codec.audience(), "accepted a foreign audience");
    assert!(!c.sub.is_empty(), "accepted an empty sub");
    assert!(!c.sid.is_empty(), "accepted an empty sid");
    assert!(
        csrf_shape(c.csrf.expose()),
        "accepted a csrf claim we never mint: {:?} (token {:?})",
        c.csrf.expose(),
        String::from_utf8_lossy(token)
    );
    assert!(
        codec.keyring().get(&verified.kid).is_some(),
        "kid {:?} not in the keyring",
        verified.kid
    );
}

/// A token with `header` and `claims` signed by the HS256 key.
fn sign(header: &[u8], claims: &[u8]) -> Vec<u8> {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature =
        jsonwebtoken::crypto::sign(token.as_bytes(), &FIXTURE.hs_key, Algorithm::HS256).unwrap();
    token.push('.');
    token.push_str(&signature);
    token.into_bytes()
}

fn check(layer: &SessionLayer<()>, token: &[u8]) -> Result<Verified<Value>, Refusal> {
    let codec = layer.config().codec();
    let decoded = codec.decode::<Value>(token);
    if let Ok(verified) = &decoded {
        accepted(codec, token, verified);
    }
    if let Ok(text) = std::str::from_utf8(token)
        && layer.verify_token(text).is_ok()
    {
        // The layer accepts nothing the codec would refuse.
        assert!(decoded.is_ok(), "the layer accepted what the codec refuses");
    }
    decoded
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            for layer in [&f.ed, &f.hs] {
                let _ = check(layer, rest);
            }
        }
        1 => {
            let header = format!(r#"{{"alg":"HS256","kid":"{HS_KID}","typ":"{TYP}"}}"#);
            let _ = check(&f.hs, &sign(header.as_bytes(), rest));
        }
        _ => {
            let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let (header, claims) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
            if check(&f.hs, &sign(header, claims)).is_ok() {
                // Parsed on its own; a header serde_json cannot read as a whole (it may skip
                // members it does not need) is only held to what the claims already showed.
                if let Ok(header) = serde_json::from_slice::<Value>(header) {
                    let header = header
                        .as_object()
                        .expect("accepted a header that is not a JSON object");
                    assert_eq!(header.get("alg").and_then(Value::as_str), Some("HS256"));
                    assert_eq!(header.get("kid").and_then(Value::as_str), Some(HS_KID));
                    assert!(
                        header
                            .get("typ")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.eq_ignore_ascii_case(TYP)),
                        "accepted typ {:?}",
                        header.get("typ")
                    );
                    assert!(!header.contains_key("crit") && !header.contains_key("b64"));
                }
            }
        }
    }
});
