//! Smoke test: the shipped development keys sign and verify.
#![allow(clippy::unwrap_used)]
use jwt_session::{Claims, Keyring, ManualClock, SessionConfig};

#[test]
fn dev_keys_round_trip() {
    let ring = Keyring::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/keys")).unwrap();
    let config = SessionConfig::builder(ring)
        .clock(ManualClock::default())
        .build()
        .unwrap();
    let claims = Claims::new(
        "alice",
        (),
        1_000,
        config.policy(),
        "jwt-session",
        "jwt-session",
    )
    .unwrap();
    let token = config.codec().encode(&claims).unwrap();
    let back = config.codec().decode::<()>(token.as_bytes()).unwrap();
    assert_eq!(back.claims, claims);
    let hs = jwt_session::generate_key(jwt_session::Algorithm::HS256, "h-").unwrap();
    let config = SessionConfig::builder(Keyring::new(hs.key).unwrap())
        .build()
        .unwrap();
    let token = config.codec().encode(&claims).unwrap();
    assert_eq!(
        config
            .codec()
            .decode::<()>(token.as_bytes())
            .unwrap()
            .claims,
        claims
    );
}
