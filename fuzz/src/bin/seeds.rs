//! Writes seed corpora made of real artefacts: valid and tampered tokens, claim sets and
//! headers of real tokens, cookie headers (not UTF-8 included) and journals, in the input
//! layout each target expects (see the targets' docs). `cargo run --bin seeds` (from
//! `fuzz/`), or the `seeds` binary of `cargo fuzz build`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_session::testing::TestKit;
use jwt_session::{Clock, Keyring, ManualClock, MemoryDenylist, RevocationStore, SessionConfig};

fn write(dir: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// `decode` input: a mode byte, then the mode's bytes.
fn decode_seed(name: &str, mode: u8, rest: &[u8]) {
    write("decode", name, &[&[mode][..], rest].concat());
}

/// `cookie_header` input: flags, position (u16 LE), then `\n`-separated lines of
/// `;`-separated pairs.
fn cookie_seed(name: &str, flags: u8, position: u16, body: &[u8]) {
    let [lo, hi] = position.to_le_bytes();
    write(
        "cookie_header",
        name,
        &[&[flags, lo, hi][..], body].concat(),
    );
}

fn main() {
    let kit = TestKit::new();
    let ring = Keyring::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../keys")).unwrap();
    let config = SessionConfig::builder(ring)
        .clock(kit.clock().clone())
        .build()
        .unwrap();
    let codec = config.codec();
    for (i, user) in ["alice", "bob", "a-much-longer-user-name@example.com"]
        .iter()
        .enumerate()
    {
        let claims = jwt_session::Claims::new(
            *user,
            serde_json::json!({"role": "admin", "n": i}),
            kit.now(),
            config.policy(),
            "jwt-session",
            "jwt-session",
        )
        .unwrap();
        let token = codec.encode(&claims).unwrap();
        decode_seed(&format!("valid-{i}"), 0, token.as_bytes());
        let mut bad = token.clone().into_bytes();
        let last = bad.len() - 3;
        bad[last] ^= 1;
        decode_seed(&format!("tampered-{i}"), 0, &bad);
        decode_seed(
            &format!("truncated-{i}"),
            0,
            &token.as_bytes()[..token.len() / 2],
        );
        // The claim set and header of a real token, for the modes that sign what they get.
        let mut parts = token.split('.');
        let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        decode_seed(&format!("claims-{i}"), 1, &payload);
        let hs_header = br#"{"alg":"HS256","kid":"fuzz-hs","typ":"session+jwt"}"#;
        decode_seed(
            &format!("header-claims-{i}"),
            2,
            &[&hs_header[..], b"\0", &payload].concat(),
        );
        decode_seed(
            &format!("ed-header-claims-{i}"),
            2,
            &[&header[..], b"\0", &payload].concat(),
        );

        let t = token.as_bytes();
        cookie_seed(
            &format!("cookie-{i}"),
            2,
            1,
            &[b"theme=dark; __Host-session=", t, b"; lang=en"].concat(),
        );
        cookie_seed(
            &format!("split-{i}"),
            1,
            1,
            &[b"a=b\n__Host-session=", t].concat(),
        );
    }
    let (token, _) = kit.mint("hs", ()).unwrap();
    decode_seed("other-key", 0, token.as_bytes());

    // Hostile cookies: not UTF-8, control characters, quotes, no `=`, empty session
    // cookies, look-alike names, several lines.
    cookie_seed(
        "hostile-bytes",
        0,
        2,
        b"a=\xff\xfe\x80; \xc3\x28=1; b=\xe9t\xe9",
    );
    cookie_seed("hostile-shapes", 6, 3, b"noeq; =; \"q=\"\"; x=\"; __Host-session=; __Host-session=\"\"; __host-session=x; __Host-sessionx=y");
    cookie_seed(
        "hostile-lines",
        17,
        4,
        b"a=1; \x01\x7f\x00c=2\n\xff=\xff; d=\t4\n\n__Host-session = \"\" ; e=\x80\x81",
    );
    cookie_seed(
        "hostile-long",
        8,
        1,
        &[&b"big="[..], &[b'\xaa'; 3000], b"; \xc0\xaf=\xc0\xaf"].concat(),
    );

    // Hundreds of cookies before the session cookie, over several lines.
    let many: Vec<u8> = (0..700)
        .flat_map(|i| format!("c{i}=v{i}{}", if i % 100 == 99 { "\n" } else { "; " }).into_bytes())
        .collect();
    cookie_seed("hostile-many", 2, 600, &many);

    let dir = std::env::temp_dir().join("jwt-session-seeds");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&path);
    let clock = ManualClock::new(1_767_225_600);
    let store = MemoryDenylist::builder()
        .capacity(3)
        .journal(&path)
        .build(&clock)
        .unwrap();
    for sid in ["s1", "s2", "s3", "s4"] {
        store
            .revoke_session(sid, clock.now(), config.policy(), &clock)
            .unwrap();
        clock.advance(std::time::Duration::from_secs(1));
    }
    store
        .revoke_subject("alice", config.policy(), &clock)
        .unwrap();
    drop(store);
    let real = std::fs::read(&path).unwrap();
    write("journal", "real", &real);
    // Torn last write, corrupt and non-UTF-8 lines, duplicates, expired entries, blanks.
    let mut torn = real.clone();
    torn.extend_from_slice(br#"{"t":"s","sid":"s9","ex"#);
    write("journal", "torn", &torn);
    write(
        "journal",
        "mixed",
        &[
            &br#"{"t":"s","sid":"AAAAAAAAAAAAAAAAAAAAAA","exp":1767227400,"at":1767225600}"#[..],
            b"\n\xff\xfe garbage\n  \r\n",
            br#"{"t":"s","sid":"AAAAAAAAAAAAAAAAAAAAAA","exp":1767229000,"at":1767225601}"#,
            b"\n",
            br#"{"t":"u","sub":"bob","before":1767225500,"exp":1767254400,"at":1767225500}"#,
            b"\n",
            br#"{"t":"s","sid":"old","exp":1,"at":0}"#,
            b"\n",
            br#"{"t":"w","at":1767225000}"#,
            b"\n",
            br#"{"at":5,"t":"w","extra":[1,2]}"#,
            b"\n",
            br#"{"t":"x","at":1}"#,
            b"\n",
        ]
        .concat(),
    );
    println!("seed corpora written under fuzz/corpus/");
}
