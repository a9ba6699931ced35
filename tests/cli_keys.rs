//! The operator's key commands (`jwt-session rotate`, `retire`, `keys`), driven as a
//! built binary with good and bad input.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jwt_session::{Algorithm, Keyring};
use jwt_session::{KEY_DIR_LOCK_FILE, KeyDir, generate_key};

mod support;

use support::cli::{Run, assert_usage_error, run};

/// 2027-01-15T08:00:00Z.
const T: i64 = 1_800_000_000;

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A key directory with one Ed25519 key; its kid.
fn key_dir(dir: &Path) -> String {
    let key = generate_key(Algorithm::EdDSA, "ed25519-").unwrap();
    key.write_to(dir).unwrap();
    key.key.kid().to_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn rotate_promotes_a_new_key_and_keeps_the_old_one_verify_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = key_dir(dir);

    let r = run(&["rotate", s(dir)]);
    ok(&r);
    let new = r.stdout.trim().to_owned();
    assert!(new.starts_with("ed25519-") && new != old, "{new:?}");
    assert!(
        r.stderr
            .contains(&format!("retire {} {old}", dir.display())),
        "{}",
        r.stderr
    );

    let ring = Keyring::load_dir(dir).unwrap();
    assert_eq!(ring.signer().kid(), new);
    assert!(
        ring.get(&old).is_some(),
        "the old key stays for verification"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("SIGNER")).unwrap(),
        format!("{new}\n")
    );
    let demoted: i64 = std::fs::read_to_string(dir.join(format!("{old}.demoted")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let promoted: i64 = std::fs::read_to_string(dir.join(format!("{new}.promoted")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(demoted >= promoted && promoted > T - 10 * 365 * 86_400);
    assert!(
        files(dir).iter().all(|f| !f.ends_with(".tmp")),
        "no temporary file left: {:?}",
        files(dir)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(format!("{new}.pem")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the new private key is 0600");
    }

    // A second rotation: two verify-only keys.
    let r = run(&["rotate", s(dir), "--prefix", "k2-"]);
    ok(&r);
    let newer = r.stdout.trim().to_owned();
    assert!(newer.starts_with("k2-"));
    let ring = Keyring::load_dir(dir).unwrap();
    assert_eq!(ring.signer().kid(), newer);
    assert_eq!(ring.kids().len(), 3);
}

#[test]
fn rotate_keeps_an_hmac_signer_hmac() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    generate_key(Algorithm::HS256, "hs256-")
        .unwrap()
        .write_to(dir)
        .unwrap();
    let r = run(&["rotate", s(dir)]);
    ok(&r);
    let new = r.stdout.trim();
    assert!(dir.join(format!("{new}.hs256")).is_file());
    let ring = Keyring::load_dir(dir).unwrap();
    assert_eq!(ring.signer().algorithm(), Algorithm::HS256);
}

#[test]
fn keys_lists_roles_and_ages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = key_dir(dir);
    let lock = KeyDir::new(dir).lock().unwrap();
    let rotation = KeyDir::new(dir).rotate(&lock, T, None).unwrap();
    drop(lock);
    let new = rotation.signer;

    let now = (T + 3600).to_string();
    let r = run(&["keys", s(dir), "--now", &now]);
    ok(&r);
    let line = |kid: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(kid))
            .unwrap_or_else(|| panic!("{kid} listed: {}", r.stdout))
            .to_owned()
    };
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    let signer = line(&new);
    assert!(
        signer.contains("EdDSA") && signer.contains(" signer "),
        "{signer}"
    );
    assert!(
        signer.contains("promoted 2027-01-15T08:00:00Z (1h ago)"),
        "{signer}"
    );
    let previous = line(&old);
    assert!(previous.contains(" verify-only "), "{previous}");
    assert!(
        previous.contains("demoted 2027-01-15T08:00:00Z (1h ago)"),
        "{previous}"
    );
    assert!(!previous.contains("retire from"), "{previous}");

    // With the servers' longest absolute timeout: when each key may retire.
    let r = run(&[
        "keys",
        s(dir),
        "--now",
        &now,
        "--absolute",
        "8h",
        "--leeway",
        "5s",
    ]);
    ok(&r);
    assert!(
        r.stdout
            .contains("retire from 2027-01-15T16:00:05Z (in 7h 5s)"),
        "{}",
        r.stdout
    );
    let later = (T + 8 * 3600 + 5).to_string();
    let r = run(&["keys", s(dir), "--now", &later, "--absolute", "8h"]);
    ok(&r);
    assert!(r.stdout.contains("(now), due"), "{}", r.stdout);

    // A public key only.
    let public = generate_key(Algorithm::EdDSA, "pub-").unwrap();
    std::fs::write(
        dir.join(format!("{}.pub.pem", public.key.kid())),
        public.public_file.unwrap(),
    )
    .unwrap();
    let r = run(&["keys", s(dir)]);
    ok(&r);
    assert!(r.stdout.contains("public key only"), "{}", r.stdout);

    // The next signer automatic rotation published (`<kid>.next`).
    let next = generate_key(Algorithm::EdDSA, "next-").unwrap();
    next.write_to(dir).unwrap();
    std::fs::write(
        dir.join(format!("{}.next", next.key.kid())),
        format!("{T}\n"),
    )
    .unwrap();
    let r = run(&["keys", s(dir), "--now", &now]);
    ok(&r);
    let listed = r
        .stdout
        .lines()
        .find(|l| l.starts_with(next.key.kid()))
        .unwrap_or_else(|| panic!("{} listed: {}", next.key.kid(), r.stdout));
    assert!(
        listed.contains(" verify-only ")
            && listed.contains("next signer, published 2027-01-15T08:00:00Z (1h ago)"),
        "{listed}"
    );
}

#[test]
fn retire_removes_a_verify_only_key_and_refuses_the_signer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = key_dir(dir);
    let new = run(&["rotate", s(dir)]).stdout.trim().to_owned();

    let r = run(&["retire", s(dir), &new]);
    assert_usage_error(&r, "is the signer");
    assert!(Keyring::load_dir(dir).unwrap().get(&new).is_some());

    let r = run(&["retire", s(dir), "no-such-key"]);
    assert_usage_error(&r, "no key `no-such-key`");
    let r = run(&["retire", s(dir), "../../etc/passwd"]);
    assert_usage_error(&r, "no key");

    let r = run(&["retire", s(dir), &old]);
    ok(&r);
    assert_eq!(r.stdout.trim(), format!("retired {old}"));
    assert!(
        files(dir).iter().all(|f| !f.starts_with(old.as_str())),
        "every file of {old} is gone: {:?}",
        files(dir)
    );
    let ring = Keyring::load_dir(dir).unwrap();
    assert_eq!(ring.kids(), vec![new.as_str()]);
    assert_eq!(ring.signer().kid(), new);

    let r = run(&["retire", s(dir), &old]);
    assert_usage_error(&r, "no key");
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    for args in [
        vec!["rotate", s(&missing)],
        vec!["retire", s(&missing), "k"],
        vec!["keys", s(&missing)],
    ] {
        assert_usage_error(&run(&args), "is not a directory");
    }
    assert!(!missing.exists(), "nothing created");

    // A directory that does not load: nothing rotated, nothing written.
    let dir = tmp.path().join("broken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("bad.pem"), "not a key").unwrap();
    assert_usage_error(&run(&["rotate", s(&dir)]), "bad");
    assert_usage_error(&run(&["keys", s(&dir)]), "cannot load keys");
    let written: Vec<String> = files(&dir)
        .into_iter()
        .filter(|f| f.as_str() != KEY_DIR_LOCK_FILE)
        .collect();
    assert_eq!(written, vec!["bad.pem".to_owned()]);

    // An ES256 signer cannot be generated: a clear refusal.
    let es = tmp.path().join("es");
    std::fs::create_dir(&es).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/es256-test.pem");
    std::fs::copy(fixture, es.join("es-1.pem")).unwrap();
    assert_usage_error(&run(&["rotate", s(&es)]), "ES256");

    // Missing arguments and bad values.
    assert_usage_error(&run(&["retire", s(tmp.path())]), "KID");
    assert_usage_error(&run(&["keys", s(tmp.path()), "--now", "soon"]), "--now");
    assert_usage_error(
        &run(&["keys", s(tmp.path()), "--absolute", "forever"]),
        "--absolute",
    );

    // A prefix that makes an invalid kid: refused before anything is written.
    let ed = tmp.path().join("ed");
    std::fs::create_dir(&ed).unwrap();
    key_dir(&ed);
    let before = files(&ed);
    assert_usage_error(
        &run(&["rotate", s(&ed), "--prefix", "bad prefix/"]),
        "invalid key id",
    );
    let after: Vec<String> = files(&ed)
        .into_iter()
        .filter(|f| f.as_str() != KEY_DIR_LOCK_FILE)
        .collect();
    assert_eq!(after, before);
}

#[test]
fn a_rotation_in_progress_elsewhere_is_waited_for_then_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = key_dir(dir);
    let lock = KeyDir::new(dir).lock().unwrap();
    assert_usage_error(&run(&["rotate", s(dir)]), "held by another rotator");
    assert_usage_error(&run(&["retire", s(dir), &old]), "held by another rotator");
    assert_eq!(Keyring::load_dir(dir).unwrap().kids(), vec![old.as_str()]);
    drop(lock);
    ok(&run(&["rotate", s(dir)]));
}
