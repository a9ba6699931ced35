//! Keys: rotation of the keyring; loading, generating and publishing (JWKS) keys;
//! key material and the CSRF value never in debug output.

use std::collections::BTreeSet;

use jwt_session::{Algorithm, CsrfToken, Key, KeyError, Keyring, Refusal};
use serde_json::Value;

use crate::{
    DEV_KID, DEV_PRIVATE_PEM, DEV_PUBLIC_PEM, ES_KID, ES256_PEM, ES256_PUB_PEM, HS_KID, HS_SECRET,
    P384_PEM, T0, TYP, b64, codec_for, dev_ring, ed_codec, es_key, header_of, hs_key, login,
    refusal,
};

// ---------------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------------

#[test]
fn rotation_old_tokens_verify_until_the_old_key_is_retired() {
    let codec = ed_codec();
    let old = codec.encode(&login(T0)).unwrap();
    assert_eq!(header_of(&old)["kid"], DEV_KID);

    let next = jwt_session::generate_key(Algorithm::EdDSA, "next-")
        .unwrap()
        .key;
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
    let other = jwt_session::generate_key(Algorithm::EdDSA, "other-")
        .unwrap()
        .key;
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

    let verify_only = jwt_session::generate_key(Algorithm::EdDSA, "v-")
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
    jwt_session::generate_key(Algorithm::EdDSA, "a-")
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
    let a = jwt_session::generate_key(Algorithm::EdDSA, "a-").unwrap();
    let b = jwt_session::generate_key(Algorithm::HS256, "b-").unwrap();
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
    jwt_session::generate_key(Algorithm::EdDSA, "a-")
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
    let a = jwt_session::generate_key(Algorithm::EdDSA, "a-").unwrap();
    let b = jwt_session::generate_key(Algorithm::EdDSA, "b-").unwrap();
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
    let verify_only = jwt_session::generate_key(Algorithm::EdDSA, "old-")
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
    let generated = jwt_session::generate_key(Algorithm::EdDSA, "dbg-").unwrap();
    let hmac = jwt_session::generate_key(Algorithm::HS256, "hdbg-").unwrap();
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
    let g = jwt_session::generate_key(Algorithm::EdDSA, "gen-").unwrap();
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
        let g = jwt_session::generate_key(alg, "w-").unwrap();
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
        jwt_session::generate_key(Algorithm::ES256, "es-").unwrap_err(),
        KeyError::Invalid { .. }
    ));
    let key = es_key();
    assert_eq!(key.algorithm(), Algorithm::ES256);
    assert!(key.can_sign());
    let public = Key::from_pem(ES_KID, ES256_PUB_PEM).unwrap();
    assert!(!public.can_sign());
    assert_eq!(public.public_jwk(), key.public_jwk());
}
