//! The operator's CLI (`jwt-session`), driven as a built binary with good and bad input.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_session::{Claims, Clock, DEFAULT_ISSUER, Keyring, SessionConfig, SystemClock};

mod support;

use support::cli::{Run, assert_usage_error, run, run_env, run_with};

/// 2027-01-15T08:00:00Z.
const T: i64 = 1_800_000_000;

fn assert_refused(r: &Run, code: &str) {
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!("verdict: refused {code}: ")),
        "expected {code}: {}",
        r.stdout
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `jwt-session keygen DIR`; returns the printed kid.
fn keygen(dir: &Path) -> String {
    let r = run(&["keygen", path(dir)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_owned()
}

/// A token for `alice` that logged in at `now`, signed with the keys of `dir` under the
/// default settings. Returns (token, claims).
fn mint(dir: &Path, now: i64) -> (String, Claims) {
    let config = SessionConfig::builder(Keyring::load_dir(dir).unwrap())
        .build()
        .unwrap();
    let claims = Claims::new(
        "alice",
        (),
        now,
        config.policy(),
        DEFAULT_ISSUER,
        DEFAULT_ISSUER,
    )
    .unwrap();
    (config.codec().encode(&claims).unwrap(), claims)
}

#[test]
fn keygen_then_jwks_of_that_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let kid = keygen(&dir);
    assert!(kid.starts_with("ed25519-"), "{kid}");
    assert!(dir.join(format!("{kid}.pem")).is_file());
    assert!(dir.join(format!("{kid}.pub.pem")).is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(format!("{kid}.pem")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let r = run(&["jwks", "--keys", path(&dir)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jwks: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], kid.as_str());
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert!(keys[0].get("d").is_none(), "no private part in JWKS");

    // A second key: HS256 with a prefix; never exported; the signer must now be named.
    let r = run(&["keygen", path(&dir), "--alg", "hs256", "--prefix", "mac-"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mac = r.stdout.trim().to_owned();
    assert!(mac.starts_with("mac-"), "{mac}");
    assert!(dir.join(format!("{mac}.hs256")).is_file());
    assert!(r.stderr.contains("SIGNER"), "{}", r.stderr);
    std::fs::write(dir.join("SIGNER"), &kid).unwrap();
    let r = run(&["jwks", "--keys", path(&dir)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&kid) && !r.stdout.contains(&mac));
}

#[test]
fn keygen_bad_input_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    assert_usage_error(&run(&["keygen", path(&dir), "--prefix", "a b"]), "key id");
    assert!(!dir.exists(), "no directory left behind by a bad prefix");
    assert_usage_error(&run(&["keygen", path(&dir), "--alg", "es256"]), "es256");
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert_usage_error(&run(&["keygen", path(&file)]), "not a directory");
}

#[test]
fn inspect_valid_token_is_accepted_with_deadlines() {
    let tmp = tempfile::tempdir().unwrap();
    let kid = keygen(tmp.path());
    let (token, claims) = mint(tmp.path(), T);
    let now = (T + 60).to_string();
    let r = run(&["inspect", &token, "--keys", path(tmp.path()), "--now", &now]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(out.contains("verdict: accepted"), "{out}");
    assert!(out.contains(&kid) && out.contains("\"alice\""), "{out}");
    assert!(out.contains(&claims.sid), "{out}");
    assert!(
        out.contains("auth_time  2027-01-15T08:00:00Z (1m ago)"),
        "{out}"
    );
    assert!(
        out.contains("idle       2027-01-15T08:30:00Z (in 29m)"),
        "{out}"
    );
    assert!(
        out.contains("absolute   2027-01-15T16:00:00Z (in 7h 59m)"),
        "{out}"
    );
    assert!(out.contains("refused from 2027-01-15T08:30:05Z"), "{out}");
    assert!(out.contains("revocation not checked"), "{out}");
    // The CSRF secret never reaches the terminal.
    assert!(!out.contains(claims.csrf.expose()), "{out}");
    assert!(out.contains("<redacted"), "{out}");
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn inspect_reads_the_token_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path());
    let (token, _) = mint(tmp.path(), T);
    let input = format!("{token}\n");
    let args = [
        "inspect",
        "-",
        "--keys",
        path(tmp.path()),
        "--now",
        "1800000010",
    ];
    let r = run_with(&args, Some(input.as_bytes()));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("verdict: accepted"));

    assert_usage_error(&run_with(&args, Some(b"  \n")), "no token on stdin");
}

#[test]
fn inspect_expired_tokens_by_now_and_settings() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path());
    let (token, _) = mint(tmp.path(), T);
    let keys = path(tmp.path());
    // Idle: 30m + 5s leeway after the last activity.
    let r = run(&["inspect", &token, "--keys", keys, "--now", "1800001805"]);
    assert_refused(&r, "session_expired_idle");
    assert!(r.stdout.contains("(5s ago)"), "{}", r.stdout);
    // One second earlier it is still accepted (leeway).
    let r = run(&["inspect", &token, "--keys", keys, "--now", "1800001804"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // RFC 3339 for --now; past the absolute deadline wins over idle.
    let r = run(&[
        "inspect",
        &token,
        "--keys",
        keys,
        "--now",
        "2027-01-15T17:00:00Z",
    ]);
    assert_refused(&r, "session_expired_absolute");
    // A stricter server policy refuses earlier.
    let r = run(&[
        "inspect",
        &token,
        "--keys",
        keys,
        "--now",
        "1800000100",
        "--idle",
        "1m",
        "--leeway",
        "0s",
    ]);
    assert_refused(&r, "session_expired_idle");
    // From the future.
    let r = run(&["inspect", &token, "--keys", keys, "--now", "1799999000"]);
    assert_refused(&r, "session_not_yet_valid");
    // Another service's issuer.
    let r = run(&[
        "inspect",
        &token,
        "--keys",
        keys,
        "--now",
        "1800000010",
        "--issuer",
        "other",
    ]);
    assert_refused(&r, "session_wrong_issuer");
    assert!(r.stdout.contains("\"other\""), "{}", r.stdout);
}

#[test]
fn inspect_tampered_token_is_a_bad_signature_not_expired() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path());
    let (token, _) = mint(tmp.path(), T);
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "mallory".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    // Long after expiry: the signature is still what is reported (signature first).
    let r = run(&[
        "inspect",
        &forged,
        "--keys",
        path(tmp.path()),
        "--now",
        "1900000000",
    ]);
    assert_refused(&r, "session_bad_signature");
    assert!(r.stdout.contains("\"mallory\""), "{}", r.stdout);
    assert!(
        r.stdout.contains("(from unverified claims)"),
        "{}",
        r.stdout
    );

    // A flipped signature character.
    let mut sig = parts[2].to_owned().into_bytes();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    let r = run(&[
        "inspect",
        &flipped,
        "--keys",
        path(tmp.path()),
        "--now",
        "1800000010",
    ]);
    assert_refused(&r, "session_bad_signature");
}

#[test]
fn inspect_unknown_kid_names_the_known_keys() {
    let signer = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    keygen(signer.path());
    let other_kid = keygen(other.path());
    let (token, _) = mint(signer.path(), T);
    let r = run(&[
        "inspect",
        &token,
        "--keys",
        path(other.path()),
        "--now",
        "1800000010",
    ]);
    assert_refused(&r, "session_unknown_key");
    assert!(r.stdout.contains(&other_kid), "{}", r.stdout);
}

#[test]
fn inspect_garbage_is_refused_without_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path());
    let keys = path(tmp.path());
    let long = "a".repeat(5000);
    let cases: [(&str, &str); 8] = [
        ("garbage", "session_malformed"),
        ("a.b.c", "session_malformed"),
        ("...", "session_malformed"),
        ("%%%.\u{7f}.é", "session_malformed"),
        ("eyJhbGciOiJub25lIn0.e30.", "session_unknown_key"),
        ("W10.W10.W10", "session_malformed"),
        ("e30.e30.e30.e30", "session_malformed"),
        (&long, "session_too_large"),
    ];
    for (token, code) in cases {
        let r = run(&["inspect", token, "--keys", keys]);
        assert_refused(&r, code);
    }
    // `alg: none` with the right kid: refused as the wrong algorithm.
    let kid = Keyring::load_dir(tmp.path())
        .unwrap()
        .signer()
        .kid()
        .to_owned();
    let head = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#));
    let none = format!("{head}.e30.");
    let r = run(&["inspect", &none, "--keys", keys]);
    assert_refused(&r, "session_wrong_algorithm");
    assert!(r.stdout.contains("EdDSA"), "{}", r.stdout);
}

#[test]
fn inspect_revoked_in_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    keygen(&keys);
    let now = SystemClock.now();
    let (token, claims) = mint(&keys, now - 30);
    let journal = tmp.path().join("data").join("revocations.jsonl");
    let j = path(&journal);

    // A journal that does not name this session: accepted, and said so.
    let auth = claims.auth_time.to_string();
    let r = run(&["revoke", "--journal", j, "--sub", "bob"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["inspect", &token, "--keys", path(&keys), "--journal", j]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("not revoked in"), "{}", r.stdout);

    // Logout of that session.
    let r = run(&[
        "revoke",
        "--journal",
        j,
        "--sid",
        &claims.sid,
        "--auth-time",
        &auth,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&claims.sid), "{}", r.stdout);
    let before = std::fs::read(&journal).unwrap();
    let r = run(&["inspect", &token, "--keys", path(&keys), "--journal", j]);
    assert_refused(&r, "session_revoked");
    assert!(
        r.stdout
            .contains(&format!("session {} was revoked", claims.sid)),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "inspect is read-only"
    );
    // Without the journal the same token passes: the journal is what refuses it.
    let r = run(&["inspect", &token, "--keys", path(&keys)]);
    assert_eq!(r.code, 0, "{}", r.stdout);

    // Logout-all of the subject refuses another session of alice too.
    let (other, _) = mint(&keys, now - 10);
    let r = run(&["revoke", "--journal", j, "--sub", "alice"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["inspect", &other, "--keys", path(&keys), "--journal", j]);
    assert_refused(&r, "session_revoked");
    assert!(
        r.stdout
            .contains("every session of subject \"alice\" that logged in at or before"),
        "{}",
        r.stdout
    );
}

#[test]
fn token_and_journal_text_cannot_inject_terminal_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    keygen(&keys);
    let config = SessionConfig::builder(Keyring::load_dir(&keys).unwrap())
        .build()
        .unwrap();
    let evil = "eve\u{1b}]0;pwned\u{7}\u{9b}2J";
    let now = SystemClock.now();
    let claims = Claims::new(
        evil,
        (),
        now,
        config.policy(),
        DEFAULT_ISSUER,
        DEFAULT_ISSUER,
    )
    .unwrap();
    let token = config.codec().encode(&claims).unwrap();
    let journal = tmp.path().join("j.jsonl");
    let j = path(&journal);
    let r = run(&["revoke", "--journal", j, "--sub", evil]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let inspect = run(&["inspect", &token, "--keys", path(&keys), "--journal", j]);
    assert_refused(&inspect, "session_revoked");
    let status = run(&["status", "--journal", j]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    for out in [&r.stdout, &inspect.stdout, &status.stdout] {
        assert!(
            !out.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "raw control characters printed: {out:?}"
        );
        assert!(out.contains("eve"), "{out}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// The unverified peek never panics, whatever the bytes.
    #[test]
    fn peek_unverified_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let _ = jwt_session::unverified::peek(&bytes);
    }

    /// Three dot-separated parts of arbitrary base64url: still no panic, and an answer
    /// only when both JSON parts are objects.
    #[test]
    fn peek_unverified_of_jwt_shaped_input(head in "[A-Za-z0-9_-]{0,40}", body in "[A-Za-z0-9_-]{0,80}", sig in "[A-Za-z0-9_-]{0,20}") {
        let token = format!("{head}.{body}.{sig}");
        if let Ok((h, c)) = jwt_session::unverified::peek(token.as_bytes()) {
            proptest::prop_assert!(h.is_object() && c.is_object());
        }
    }
}

#[test]
fn peek_unverified_shows_what_decode_verifies() {
    use jwt_session::Refusal;
    use jwt_session::unverified;
    let tmp = tempfile::tempdir().unwrap();
    let kid = keygen(tmp.path());
    let (token, claims) = mint(tmp.path(), T);
    let (header, body) = unverified::peek(token.as_bytes()).unwrap();
    assert_eq!(header["kid"], kid.as_str());
    assert_eq!(header["typ"], "session+jwt");
    assert_eq!(body["sid"], claims.sid.as_str());
    assert_eq!(body["auth_time"], T);
    assert_eq!(unverified::peek(b"a.b"), Err(Refusal::Malformed));
    assert_eq!(unverified::peek(b"e30.W10.x"), Err(Refusal::Malformed));
    assert_eq!(
        unverified::peek(b"e30.e30."),
        Ok((serde_json::json!({}), serde_json::json!({})))
    );
    assert_eq!(
        unverified::peek(&vec![b'a'; 70_000]),
        Err(Refusal::TooLarge)
    );
}

#[test]
fn revoke_then_status_lists_it() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("revocations.jsonl");
    let j = path(&journal);
    let now = SystemClock.now();
    let auth = (now - 3600).to_string();
    let r = run(&[
        "revoke",
        "--journal",
        j,
        "--sid",
        "sid-123",
        "--auth-time",
        &auth,
        "--idle",
        "15m",
        "--absolute",
        "2h",
        "--leeway",
        "0s",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("revoked session sid-123"), "{}", r.stdout);
    // I2: min(auth_time + 2h, revoked_at + 15m) + 0s = revoked_at + 15m.
    assert!(r.stdout.contains("kept until"), "{}", r.stdout);
    assert!(r.stdout.contains("(in 15m"), "{}", r.stdout);

    let r = run(&["revoke", "--journal", j, "--sub", "bob"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("every session of subject bob"),
        "{}",
        r.stdout
    );

    let before = std::fs::read(&journal).unwrap();
    let r = run(&["status", "--journal", j]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("sessions (1):"), "{}", r.stdout);
    assert!(r.stdout.contains("sid sid-123"), "{}", r.stdout);
    assert!(r.stdout.contains("subjects (1):"), "{}", r.stdout);
    assert!(r.stdout.contains("sub bob"), "{}", r.stdout);
    assert!(r.stdout.contains("logged in at or before"), "{}", r.stdout);
    assert!(r.stdout.contains("watermark: none"), "{}", r.stdout);

    // In 20 minutes the session entry is gone (its TTL), the subject's remains.
    let later = (now + 20 * 60).to_string();
    let r = run(&["status", "--journal", j, "--now", &later]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("sessions (0):"), "{}", r.stdout);
    assert!(r.stdout.contains("subjects (1):"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "status is read-only, even with a future --now"
    );

    // A torn last line is skipped with a warning, like the server does.
    let mut torn = before;
    torn.extend_from_slice(b"{\"t\":\"s\",\"sid\":\"x");
    std::fs::write(&journal, &torn).unwrap();
    let r = run(&["status", "--journal", j]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("1 unreadable"), "{}", r.stderr);
    assert!(r.stdout.contains("sid sid-123"), "{}", r.stdout);
}

#[test]
fn status_and_inspect_read_the_journal_a_running_server_holds() {
    use jwt_session::{MemoryDenylist, RevocationStore};
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    keygen(&keys);
    let config = SessionConfig::builder(Keyring::load_dir(&keys).unwrap())
        .build()
        .unwrap();
    let (token, claims) = mint(&keys, SystemClock.now() - 30);
    let data = tmp.path().join("data");
    let journal = data.join("revocations.jsonl");
    let j = path(&journal);
    // The server: it holds the journal (and its lock) while the denylist lives.
    let server = MemoryDenylist::builder()
        .journal(&journal)
        .build(&SystemClock)
        .unwrap();
    server
        .revoke_session(&claims.sid, claims.auth_time, config.policy(), &SystemClock)
        .unwrap();
    server
        .revoke_subject("bob", config.policy(), &SystemClock)
        .unwrap();
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let (bytes, names) = (std::fs::read(&journal).unwrap(), files());

    // The lock is held: a second writer is refused...
    let r = run(&["revoke", "--journal", j, "--sub", "carol"]);
    assert_usage_error(&r, "in use by another process");
    // ...but readers need no lock, and no private copy (TMPDIR does not even exist).
    let nowhere = tmp.path().join("no-tmp");
    let env = [("TMPDIR", nowhere.as_path())];
    let r = run_env(&["status", "--journal", j], None, &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("sessions (1):"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("sid {}", claims.sid)),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("sub bob"), "{}", r.stdout);
    let args = ["inspect", &token, "--keys", path(&keys), "--journal", j];
    assert_refused(&run_env(&args, None, &env), "session_revoked");
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "byte-identical");
    assert_eq!(
        files(),
        names,
        "no lock, rejected or compacted file written"
    );

    // The server's journal was not replaced under it: what it records next is kept.
    server
        .revoke_subject("carol", config.policy(), &SystemClock)
        .unwrap();
    drop(server);
    let r = run(&["status", "--journal", j]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("sub carol"), "{}", r.stdout);
}

#[test]
fn revoke_takes_ids_that_start_with_a_dash() {
    // Session ids are base64url, so one in 64 starts with `-`; a subject may too.
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("revocations.jsonl");
    let j = path(&journal);
    let auth = (SystemClock.now() - 60).to_string();
    let sid = "-Zq3t8mWcY0aB1cD2eF3gH";
    let r = run(&["revoke", "--journal", j, "--sid", sid, "--auth-time", &auth]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["revoke", "--journal", j, "--sub", "-bob"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["status", "--journal", j]);
    assert!(r.stdout.contains(&format!("sid {sid}")), "{}", r.stdout);
    assert!(r.stdout.contains("sub -bob"), "{}", r.stdout);
}

#[test]
fn bad_arguments_and_inputs_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    keygen(&keys);
    let k = path(&keys);
    let (token, _) = mint(&keys, T);
    let missing = tmp.path().join("missing");
    let m = path(&missing);
    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(
        corrupt.join("k1.pem"),
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n",
    )
    .unwrap();
    let not_journal = tmp.path().join("notes.txt");
    std::fs::write(&not_journal, b"hello\nworld\n").unwrap();
    let nj = path(&not_journal);
    let future = (SystemClock.now() + 3600).to_string();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "a command is required"),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["inspect"], "<TOKEN>"),
        (vec!["inspect", &token, "--keys", m], "cannot load keys"),
        (vec!["inspect", &token, "--keys", path(&corrupt)], "k1"),
        (
            vec!["inspect", &token, "--keys", k, "--idle", "5parsecs"],
            "--idle",
        ),
        (
            vec!["inspect", &token, "--keys", k, "--idle", "1.5s"],
            "whole seconds",
        ),
        (
            vec!["inspect", &token, "--keys", k, "--idle", "9h"],
            "absolute",
        ),
        (
            vec!["inspect", &token, "--keys", k, "--now", "soon"],
            "--now",
        ),
        (
            vec!["inspect", &token, "--keys", k, "--journal", m],
            "does not exist",
        ),
        (
            vec!["inspect", &token, "--keys", k, "--journal", nj],
            "not a revocation journal",
        ),
        (vec!["inspect", "", "--keys", k], "empty"),
        (vec!["jwks", "--keys", m], "cannot load keys"),
        (vec!["jwks", "--keys", path(&corrupt)], "k1"),
        (vec!["status", "--journal", m], "does not exist"),
        (vec!["status", "--journal", nj], "not a revocation journal"),
        (vec!["status", "--journal", k], "not a regular file"),
        (vec!["status"], "--journal"),
        (
            vec!["revoke", "--journal", nj, "--sub", "x"],
            "not a revocation journal",
        ),
        (vec!["revoke", "--journal", m], "--sid"),
        (vec!["revoke", "--journal", m, "--sid", "s"], "--auth-time"),
        (
            vec!["revoke", "--journal", m, "--sid", "s", "--sub", "x"],
            "cannot be used",
        ),
        (
            vec![
                "revoke",
                "--journal",
                m,
                "--sid",
                "s",
                "--auth-time",
                &future,
            ],
            "future",
        ),
        (
            vec!["revoke", "--journal", m, "--sid", "s", "--auth-time", "x"],
            "--auth-time",
        ),
        (vec!["revoke", "--journal", m, "--sub", ""], "empty"),
        (
            vec!["revoke", "--journal", m, "--sub", "x", "--idle", "0s"],
            "idle",
        ),
    ];
    for (args, needle) in &cases {
        let r = run(args);
        assert_usage_error(&r, needle);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    assert!(!missing.exists(), "a refused revoke creates no journal");
    assert_eq!(std::fs::read(&not_journal).unwrap(), b"hello\nworld\n");

    // Help is not an error.
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("inspect"));
}
