//! Writes seed corpora made of real artefacts: valid and tampered tokens, cookie headers
//! and journals. `cargo run --bin seeds` (from `fuzz/`).

use std::path::Path;

use jwt_session::testing::TestKit;
use jwt_session::{Clock, Keyring, ManualClock, MemoryDenylist, RevocationStore, SessionConfig};

fn write(dir: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let kit = TestKit::new();
    let ring = Keyring::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../keys")).unwrap();
    let config = SessionConfig::builder(ring).clock(kit.clock().clone()).build().unwrap();
    let codec = config.codec();
    for (i, user) in ["alice", "bob", "a-much-longer-user-name@example.com"].iter().enumerate() {
        let claims = jwt_session::Claims::new(*user, serde_json::json!({"role": "admin", "n": i}), kit.now(), config.policy(), "jwt-session", "jwt-session").unwrap();
        let token = codec.encode(&claims).unwrap();
        write("decode", &format!("valid-{i}"), token.as_bytes());
        let mut bad = token.clone().into_bytes();
        let last = bad.len() - 3;
        bad[last] ^= 1;
        write("decode", &format!("tampered-{i}"), &bad);
        write("decode", &format!("truncated-{i}"), &token.as_bytes()[..token.len() / 2]);
        write("cookie_header", &format!("cookie-{i}"), format!("theme=dark; __Host-session={token}; lang=en").as_bytes());
        write("cookie_header", &format!("split-{i}"), format!("a=b\u{ff}__Host-session={token}").as_bytes());
    }
    let (token, _) = kit.mint("hs", ()).unwrap();
    write("decode", "other-key", token.as_bytes());

    let dir = std::env::temp_dir().join("jwt-session-seeds");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&path);
    let clock = ManualClock::new(1_767_225_600);
    let store = MemoryDenylist::builder().capacity(3).journal(&path).build(&clock).unwrap();
    for sid in ["s1", "s2", "s3", "s4"] {
        store.revoke_session(sid, clock.now(), config.policy(), &clock).unwrap();
        clock.advance(std::time::Duration::from_secs(1));
    }
    store.revoke_subject("alice", config.policy(), &clock).unwrap();
    drop(store);
    write("journal", "real", &std::fs::read(&path).unwrap());
    println!("seed corpora written under fuzz/corpus/");
}
