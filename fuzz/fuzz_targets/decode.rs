//! Arbitrary bytes as a session cookie value: the codec and the whole verification path
//! (cache, time, revocation) must refuse with a typed reason and never panic.
#![no_main]

use std::sync::LazyLock;

use jwt_session::testing::TestKit;
use jwt_session::{Key, Keyring, SessionConfig, SessionLayer};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    ed: SessionLayer<()>,
    hs: SessionLayer<()>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let kit = TestKit::new();
    let ring = Keyring::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../keys")).unwrap();
    let ed = SessionConfig::builder(ring).clock(kit.clock().clone()).build().unwrap();
    let hs_ring = Keyring::new(Key::hs256("fuzz-hs", &[42u8; 32]).unwrap()).unwrap();
    let hs = SessionConfig::builder(hs_ring).clock(kit.clock().clone()).build().unwrap();
    Fixture {
        ed: SessionLayer::new(ed, kit.store().clone()),
        hs: SessionLayer::new(hs, kit.store().clone()),
    }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    for layer in [&f.ed, &f.hs] {
        let decoded = layer.config().codec().decode::<serde_json::Value>(data);
        if let Ok(token) = std::str::from_utf8(data) {
            // The layer accepts nothing the codec would refuse.
            if layer.verify_token(token).is_ok() {
                assert!(decoded.is_ok());
            }
        }
    }
});
