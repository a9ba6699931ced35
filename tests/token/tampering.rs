//! Tampering: every hand-built token refused for exactly the one thing it changes
//! (algorithm, key id, header members, signature, claims, shape, issuer, audience, type),
//! after a control that the unchanged hand-built tokens are accepted.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_session::{Algorithm, Codec, DEFAULT_ISSUER, EncodeError, Key, Keyring, Refusal};
use jwt_session::{DEFAULT_MAX_TOKEN_LEN, DEFAULT_TOKEN_TYPE};
use serde_json::{Value, json};

use crate::{
    DEV_KID, DEV_PRIVATE_PEM, DEV_PUBLIC_PEM, ES256_PEM, HS_KID, IDLE, T0, TYP, b64, codec_for,
    dev_ring, ed_codec, ed_header_with, ed_token, es_codec, header_of, hs_codec, hs_header,
    hs_token, login, parts, payload_json, policy, refusal, signing_input,
};

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
    let attacker = jwt_session::generate_key(Algorithm::EdDSA, "atk-").unwrap();
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
