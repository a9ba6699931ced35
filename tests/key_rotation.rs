//! Hot reload of a key directory and automatic rotation (`KeyWatcher`): keys promoted on
//! disk while requests flow, broken directories that leave the keyring in place, and the
//! rotation schedule under a manual clock — the old key retired exactly when its last
//! token has expired, never earlier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query};
use axum::routing::{get, post};
use http::{Request, StatusCode};
use jwt_session::testing::{refusal, set_cookies};
use jwt_session::unverified;
use jwt_session::{
    Algorithm, Clock, Keyring, Login, ManualClock, MemoryDenylist, Refusal, Session, SessionConfig,
    SessionConfigBuilder, SessionLayer,
};
use jwt_session::{KeyDir, KeyWatcher, generate_key};
use tower::ServiceExt as _;

mod support;
use support::logs::Capture;

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;
/// How long automatic rotation publishes the next signer before it signs, in these tests.
const LEAD: u64 = 600;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A new Ed25519 key written into `dir`; its kid.
fn add_key(dir: &Path) -> String {
    let key = generate_key(Algorithm::EdDSA, "test-").unwrap();
    key.write_to(dir).unwrap();
    key.key.kid().to_owned()
}

/// Name `kid` the signer, atomically (as the CLI and the rotator do).
fn promote(dir: &Path, kid: &str) {
    let tmp = dir.join(".SIGNER.tmp");
    std::fs::write(&tmp, format!("{kid}\n")).unwrap();
    std::fs::rename(tmp, dir.join("SIGNER")).unwrap();
}

fn remove_key(dir: &Path, kid: &str) {
    for suffix in [".pem", ".pub.pem"] {
        std::fs::remove_file(dir.join(format!("{kid}{suffix}"))).unwrap();
    }
}

/// One instance: its configuration (keys loaded from `dir`, the shared manual clock) and
/// its router behind the session layer.
struct Instance {
    config: SessionConfig,
    app: Router,
}

fn instance(
    dir: &Path,
    clock: &ManualClock,
    f: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder,
) -> Instance {
    let config = f(SessionConfig::builder(Keyring::load_dir(dir).unwrap()))
        .clock(clock.clone())
        .build()
        .unwrap();
    let store = MemoryDenylist::builder().build(clock).unwrap();
    let app = Router::new()
        .route(
            "/login/{user}",
            post(
                |UrlPath(user): UrlPath<String>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    Login::new(user, ())
                        .unwrap()
                        .remember(q.contains_key("remember"))
                },
            ),
        )
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(SessionLayer::<()>::new(config.clone(), store));
    Instance { config, app }
}

/// What a request got back: its status, its refusal and the new token it set, if any.
struct Got {
    status: StatusCode,
    refusal: Option<Refusal>,
    token: Option<String>,
}

async fn call(app: &Router, req: Request<Body>) -> Got {
    let res = app.clone().oneshot(req).await.unwrap();
    Got {
        status: res.status(),
        refusal: refusal(&res),
        token: set_cookies(&res)
            .into_iter()
            .find(|c| !c.value.is_empty())
            .map(|c| c.value),
    }
}

/// Log `user` in; the new session's token.
async fn login(app: &Router, user: &str, remember: bool) -> String {
    let uri = if remember {
        format!("/login/{user}?remember")
    } else {
        format!("/login/{user}")
    };
    let got = call(app, Request::post(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(got.status, StatusCode::OK, "login of {user}");
    got.token.expect("a login sets the session cookie")
}

async fn me(app: &Router, token: &str) -> Got {
    let req = Request::get("/me")
        .header("cookie", format!("__Host-session={token}"))
        .body(Body::empty())
        .unwrap();
    call(app, req).await
}

/// The `kid` a token names.
fn kid(token: &str) -> String {
    let (header, _) = unverified::peek(token.as_bytes()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn read_time(dir: &Path, name: &str) -> i64 {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Hot reload
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_promoted_on_disk_while_requests_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = add_key(dir);
    promote(dir, &old);
    let clock = ManualClock::default();
    let site = instance(dir, &clock, |b| b);
    let watcher = KeyWatcher::new(&site.config, dir);
    assert!(
        !watcher.check_once().unwrap().reloaded,
        "nothing changed yet"
    );
    let before = login(&site.app, "early", false).await;
    assert_eq!(kid(&before), old);

    // Browsers: log in, use the new session and the old one, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let kids = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let mut browsers = Vec::new();
    for b in 0..4 {
        let (app, stop, sent, kids) = (site.app.clone(), stop.clone(), sent.clone(), kids.clone());
        let before = before.clone();
        browsers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) || n < 20 {
                let token = login(&app, &format!("user-{b}-{n}"), false).await;
                kids.lock().unwrap().insert(kid(&token));
                for t in [&token, &before] {
                    let got = me(&app, t).await;
                    assert_eq!(got.status, StatusCode::OK, "{:?}", got.refusal);
                }
                sent.fetch_add(3, Ordering::SeqCst);
                n += 1;
                tokio::task::yield_now().await;
            }
        }));
    }

    // The new key arrives verify-only, then becomes the signer, while they browse.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new = add_key(dir);
    let report = watcher.check_once().unwrap();
    assert!(report.reloaded);
    assert_eq!(site.config.codec().keyring().signer().kid(), old);
    assert!(site.config.codec().keyring().get(&new).is_some());
    tokio::time::sleep(Duration::from_millis(20)).await;
    promote(dir, &new);
    assert!(watcher.check_once().unwrap().reloaded);
    assert_eq!(site.config.codec().keyring().signer().kid(), new);
    let after = login(&site.app, "late", false).await;
    assert_eq!(kid(&after), new, "new sessions carry the new kid");
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop.store(true, Ordering::SeqCst);
    for browser in browsers {
        browser.await.expect("no request failed");
    }
    assert!(sent.load(Ordering::SeqCst) >= 4 * 20 * 3);
    assert!(kids.lock().unwrap().contains(&new));

    // Old sessions keep working until their key is retired…
    assert_eq!(me(&site.app, &before).await.status, StatusCode::OK);
    remove_key(dir, &old);
    assert!(watcher.check_once().unwrap().reloaded);
    // …then they are refused as signed by an unknown key; new ones are not.
    let got = me(&site.app, &before).await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    assert_eq!(got.refusal, Some(Refusal::UnknownKey));
    assert_eq!(me(&site.app, &after).await.status, StatusCode::OK);
    assert!(
        !watcher.check_once().unwrap().reloaded,
        "unchanged: no reload"
    );
}

#[tokio::test]
async fn the_background_task_follows_the_directory_and_ends_with_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = add_key(dir);
    promote(dir, &old);
    let clock = ManualClock::default();
    let site = instance(dir, &clock, |b| b);
    let task = site.config.watch_key_dir(dir, Duration::from_millis(20));
    let before = login(&site.app, "alice", false).await;

    let new = add_key(dir);
    promote(dir, &new);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while site.config.codec().keyring().signer().kid() != new {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(kid(&login(&site.app, "bob", false).await), new);
    assert_eq!(me(&site.app, &before).await.status, StatusCode::OK);

    remove_key(dir, &old);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while site.config.codec().keyring().get(&old).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never retired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        me(&site.app, &before).await.refusal,
        Some(Refusal::UnknownKey)
    );

    drop(site);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the task ends once the configuration is dropped")
        .unwrap();
}

impl Capture {
    /// Run `f` with this capture as the log subscriber (`info` and above).
    fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(self.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f)
    }
}

#[test]
fn a_broken_directory_keeps_the_keyring_and_is_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = add_key(dir);
    let clock = ManualClock::default();
    let config = SessionConfig::builder(Keyring::load_dir(dir).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let claims = jwt_session::Claims::new(
        "alice",
        (),
        clock.now(),
        config.policy(),
        config.codec().issuer(),
        config.codec().audience(),
    )
    .unwrap();
    let token = config.codec().encode(&claims).unwrap();
    let watcher = KeyWatcher::new(&config, dir);
    let log = Capture::default();
    let unchanged = |what: &str| {
        let ring = config.codec().keyring();
        assert_eq!(ring.signer().kid(), first, "{what}: signer kept");
        assert_eq!(ring.kids(), vec![first.as_str()], "{what}: keys kept");
        assert!(
            config.codec().decode::<()>(token.as_bytes()).is_ok(),
            "{what}"
        );
    };
    let broken = |what: &str, needle: &str| {
        let before = log.text().matches("keeping the current keyring").count();
        let e = log.during(|| watcher.check_once()).expect_err(what);
        assert!(e.to_string().contains(needle), "{what}: {e}");
        // Every poll retries; the same problem is logged once.
        log.during(|| watcher.check_once()).expect_err(what);
        let text = log.text();
        assert_eq!(
            text.matches("keeping the current keyring").count(),
            before + 1,
            "{what}: logged once: {text}"
        );
        assert!(
            text.lines().last().unwrap().contains(" WARN "),
            "{what}: {text}"
        );
        unchanged(what);
    };
    log.during(|| watcher.check_once()).unwrap();
    unchanged("a first check");

    // An unparsable key file.
    std::fs::write(
        dir.join("garbage.pem"),
        "-----BEGIN PRIVATE KEY-----\nnope\n",
    )
    .unwrap();
    broken("unparsable key", "garbage");
    std::fs::remove_file(dir.join("garbage.pem")).unwrap();

    // SIGNER naming a key that is not there.
    promote(dir, "missing-key");
    broken("SIGNER naming a missing key", "missing-key");
    std::fs::remove_file(dir.join("SIGNER")).unwrap();

    // Several private keys and no SIGNER: no signer.
    let second = add_key(dir);
    broken("no SIGNER", "SIGNER");

    // No private key at all.
    for kid in [&first, &second] {
        std::fs::remove_file(dir.join(format!("{kid}.pem"))).unwrap();
    }
    broken("no private key", "no private key");

    // The directory gone (unreadable).
    let moved = tmp.path().with_extension("moved");
    std::fs::rename(dir, &moved).unwrap();
    broken("directory gone", "reading");
    std::fs::rename(&moved, dir).unwrap();

    // Fixed: the keyring follows, and the recovery is logged.
    let third = add_key(dir);
    promote(dir, &third);
    assert!(log.during(|| watcher.check_once()).unwrap().reloaded);
    assert_eq!(config.codec().keyring().signer().kid(), third);
    assert!(
        log.text().contains("key directory loads again"),
        "{}",
        log.text()
    );
}

// ---------------------------------------------------------------------------------------
// Automatic rotation under the manual clock
// ---------------------------------------------------------------------------------------

/// Normal sessions: idle 30 min, absolute 1 h; remembered: idle = absolute = 2 h (so a
/// remembered token can live its whole absolute timeout); leeway 5 s.
fn rotation_settings(b: SessionConfigBuilder) -> SessionConfigBuilder {
    b.idle_timeout(secs(30 * 60))
        .absolute_timeout(secs(HOUR))
        .remember_me(secs(2 * HOUR), secs(2 * HOUR))
        .leeway(secs(5))
}

#[tokio::test]
async fn the_old_key_is_retired_exactly_when_its_last_token_has_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = add_key(dir);
    let clock = ManualClock::default();
    let t0 = clock.now();
    let site = instance(dir, &clock, rotation_settings);
    let rotator = |config: &SessionConfig| {
        KeyWatcher::new(config, dir)
            .rotate_every(secs(DAY))
            .publish_lead(secs(LEAD))
            .propagation_margin(Duration::ZERO)
    };
    let watcher = rotator(&site.config);

    // The first check records since when the signer signs; nothing is due.
    assert_eq!(watcher.check_once().unwrap(), Default::default());
    assert_eq!(read_time(dir, &format!("{old}.promoted")), t0);
    clock.advance(secs(DAY - LEAD - 1));
    assert_eq!(watcher.check_once().unwrap(), Default::default());

    // LEAD before D: the next signer is published, verify-only, in the JWK Set.
    clock.advance(secs(1));
    let report = watcher.check_once().unwrap();
    let published = report.published.clone().expect("published LEAD before D");
    assert_eq!(report.rotated, None);
    assert!(report.reloaded);
    assert_eq!(read_time(dir, &format!("{published}.next")), clock.now());
    let ring = site.config.codec().keyring();
    assert_eq!(ring.signer().kid(), old, "the old key still signs");
    assert!(ring.get(&published).is_some());
    assert!(ring.jwks().to_string().contains(&published), "published");
    clock.advance(secs(LEAD - 1));
    assert_eq!(watcher.check_once().unwrap(), Default::default());

    // D: the last tokens the old key signs, one remembered (alive 2 h), one not (1 h).
    clock.advance(secs(1));
    let d = clock.now();
    let remembered = login(&site.app, "alice", true).await;
    let normal = login(&site.app, "bob", false).await;
    assert_eq!(kid(&remembered), old);

    let report = watcher.check_once().unwrap();
    let new = report.rotated.clone().expect("rotated at D");
    assert!(report.reloaded);
    assert_eq!(new, published, "the published key is promoted");
    assert!(!dir.join(format!("{new}.next")).exists());
    assert_ne!(new, old);
    assert_eq!(site.config.codec().keyring().signer().kid(), new);
    assert_eq!(read_time(dir, &format!("{old}.demoted")), d);
    assert_eq!(read_time(dir, &format!("{new}.promoted")), d);
    assert_eq!(
        std::fs::read_to_string(dir.join("SIGNER")).unwrap().trim(),
        new
    );
    assert!(
        files(dir).iter().all(|f| !f.ends_with(".tmp")),
        "no temporary file left: {:?}",
        files(dir)
    );
    assert_eq!(
        kid(&login(&site.app, "carol", false).await),
        new,
        "new sessions: new kid"
    );
    assert_eq!(me(&site.app, &remembered).await.status, StatusCode::OK);
    assert_eq!(me(&site.app, &normal).await.status, StatusCode::OK);

    // A restart between D and the retirement keeps the schedule (it is on disk).
    drop(watcher);
    drop(site);
    let site = instance(dir, &clock, rotation_settings);
    let watcher = rotator(&site.config);
    assert_eq!(site.config.codec().keyring().signer().kid(), new);
    assert_eq!(watcher.check_once().unwrap(), Default::default());

    // The old key's last token (remembered, signed at D) lives until D + 2 h + leeway.
    let due = d + 2 * 3600 + 5;
    clock.set(due - 1);
    let report = watcher.check_once().unwrap();
    assert!(report.retired.is_empty(), "one second early: {report:?}");
    let got = me(&site.app, &remembered).await;
    assert_eq!(
        got.status,
        StatusCode::OK,
        "still verifies: {:?}",
        got.refusal
    );
    let rolled = got.token.expect("an old session is reissued…");
    assert_eq!(kid(&rolled), new, "…with the new key");

    clock.set(due);
    let report = watcher.check_once().unwrap();
    assert_eq!(report.retired, vec![old.clone()]);
    assert!(report.reloaded);
    assert!(site.config.codec().keyring().get(&old).is_none());
    assert!(
        files(dir).iter().all(|f| !f.starts_with(old.as_str())),
        "every file of the old key is gone: {:?}",
        files(dir)
    );
    let got = me(&site.app, &remembered).await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    assert_eq!(got.refusal, Some(Refusal::UnknownKey));
    // The rolled-over token of that session ends with the session, not with the key.
    assert_eq!(
        me(&site.app, &rolled).await.refusal,
        Some(Refusal::ExpiredAbsolute)
    );
    let fresh = login(&site.app, "dave", false).await;
    assert_eq!(me(&site.app, &fresh).await.status, StatusCode::OK);

    // The new signer's turn comes one day after D, its successor published LEAD before.
    clock.set(d + (DAY - LEAD) as i64);
    let published = watcher.check_once().unwrap().published.unwrap();
    assert_eq!(site.config.codec().keyring().kids().len(), 2);
    clock.set(d + DAY as i64 - 1);
    assert_eq!(watcher.check_once().unwrap().rotated, None);
    clock.set(d + DAY as i64);
    let next = watcher.check_once().unwrap().rotated.unwrap();
    assert_eq!(next, published);
    assert_eq!(site.config.codec().keyring().signer().kid(), next);
    assert_eq!(site.config.codec().keyring().kids().len(), 2);
}

#[tokio::test]
async fn a_next_key_published_late_is_promoted_only_after_the_lead() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = add_key(dir);
    let clock = ManualClock::default();
    let site = instance(dir, &clock, rotation_settings);
    let other = instance(dir, &clock, rotation_settings);
    // The directory has no SIGNER: publishing names the signer first, so that the
    // directory still loads with two private keys.
    assert!(!dir.join("SIGNER").exists());
    let watcher = KeyWatcher::new(&site.config, dir)
        .rotate_every(secs(HOUR))
        .publish_lead(secs(2 * HOUR));
    let follower = KeyWatcher::new(&other.config, dir);

    // The lead is longer than the schedule: the next key is published at once…
    let t0 = clock.now();
    let report = watcher.check_once().unwrap();
    let next = report.published.expect("published at the first check");
    assert_eq!(report.rotated, None);
    assert_eq!(
        std::fs::read_to_string(dir.join("SIGNER")).unwrap().trim(),
        old
    );
    // …and every instance of the directory verifies it (and publishes it) from its next
    // poll, while the old key signs.
    assert!(follower.check_once().unwrap().reloaded);
    for ring in [
        site.config.codec().keyring(),
        other.config.codec().keyring(),
    ] {
        assert_eq!(ring.signer().kid(), old);
        assert!(ring.jwks().to_string().contains(&next));
    }
    let token = login(&other.app, "alice", false).await;
    assert_eq!(kid(&token), old);

    // Due by the schedule, but not published long enough: not yet.
    clock.set(t0 + HOUR as i64);
    assert_eq!(watcher.check_once().unwrap(), Default::default());
    clock.set(t0 + 2 * HOUR as i64 - 1);
    assert_eq!(watcher.check_once().unwrap(), Default::default());
    let token = login(&other.app, "bob", false).await;
    assert_eq!(kid(&token), old);
    clock.set(t0 + 2 * HOUR as i64);
    let report = watcher.check_once().unwrap();
    assert_eq!(report.rotated.as_deref(), Some(next.as_str()));
    assert_eq!(report.published, None, "no second key at once");
    assert!(follower.check_once().unwrap().reloaded);
    assert_eq!(other.config.codec().keyring().signer().kid(), next);
    assert_eq!(me(&site.app, &token).await.status, StatusCode::OK);

    // Retiring the published key by hand drops its record too; the next check publishes
    // another one (and does not promote it: it was just published).
    clock.set(t0 + 3 * HOUR as i64);
    let third = watcher.check_once().unwrap().published.unwrap();
    let lock = KeyDir::new(dir).lock().unwrap();
    KeyDir::new(dir).retire(&lock, &third).unwrap();
    drop(lock);
    assert!(!dir.join(format!("{third}.next")).exists());
    let fourth = watcher.check_once().unwrap().published.unwrap();
    assert_ne!(fourth, third);
}

#[tokio::test]
async fn instances_sharing_a_directory_rotate_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    add_key(dir);
    let clock = ManualClock::default();
    let (a, b) = (
        instance(dir, &clock, rotation_settings),
        instance(dir, &clock, rotation_settings),
    );
    // Published and promoted in one step (lead 0): this test is about the lock.
    let rotator = |config: &SessionConfig| {
        KeyWatcher::new(config, dir)
            .rotate_every(secs(HOUR))
            .publish_lead(Duration::ZERO)
    };
    let (wa, wb) = (rotator(&a.config), rotator(&b.config));
    wa.check_once().unwrap();
    wb.check_once().unwrap();
    let private_keys = || {
        files(dir)
            .iter()
            .filter(|f| f.ends_with(".pem") && !f.ends_with(".pub.pem"))
            .count()
    };

    clock.advance(secs(HOUR));
    let new = wa
        .check_once()
        .unwrap()
        .rotated
        .expect("the first one rotates");
    let report = wb.check_once().unwrap();
    assert_eq!(report.rotated, None, "the second one finds it done");
    assert!(report.reloaded);
    assert_eq!(private_keys(), 2);
    for site in [&a, &b] {
        assert_eq!(site.config.codec().keyring().signer().kid(), new);
        let token = login(&site.app, "alice", false).await;
        assert_eq!(me(&a.app, &token).await.status, StatusCode::OK);
        assert_eq!(me(&b.app, &token).await.status, StatusCode::OK);
    }

    // While another rotator holds the lock, nothing rotates; the next check does.
    clock.advance(secs(HOUR));
    let lock = KeyDir::new(dir)
        .try_lock()
        .unwrap()
        .expect("the lock is free");
    assert!(KeyDir::new(dir).try_lock().unwrap().is_none(), "held");
    assert_eq!(wa.check_once().unwrap().rotated, None);
    assert_eq!(wb.check_once().unwrap().rotated, None);
    assert_eq!(private_keys(), 2);
    drop(lock);
    assert!(wb.check_once().unwrap().rotated.is_some());
    assert_eq!(wa.check_once().unwrap().rotated, None);
    assert_eq!(private_keys(), 3);
}

#[test]
fn a_key_promoted_by_hand_is_scheduled_for_retirement_with_the_default_margin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = add_key(dir);
    let clock = ManualClock::default();
    let config = rotation_settings(SessionConfig::builder(Keyring::load_dir(dir).unwrap()))
        .clock(clock.clone())
        .build()
        .unwrap();
    // Default poll interval 2 s: the margin for the other instances to notice is 2 s.
    let watcher = KeyWatcher::new(&config, dir).rotate_every(secs(DAY));
    watcher.check_once().unwrap();
    let staged = add_key(dir); // added by hand: never retired automatically
    let new = add_key(dir);
    clock.advance(secs(60));
    promote(dir, &new);
    let promoted_at = clock.now();
    let report = watcher.check_once().unwrap();
    assert!(report.reloaded);
    assert_eq!(report.rotated, None);
    assert_eq!(read_time(dir, &format!("{old}.demoted")), promoted_at);
    assert_eq!(read_time(dir, &format!("{new}.promoted")), promoted_at);
    assert!(!dir.join(format!("{staged}.demoted")).exists());

    let due = promoted_at + 2 * 3600 + 5 + 2;
    clock.set(due - 1);
    assert!(watcher.check_once().unwrap().retired.is_empty());
    clock.set(due);
    assert_eq!(watcher.check_once().unwrap().retired, vec![old]);
    let ring = config.codec().keyring();
    assert_eq!(ring.kids().len(), 2);
    assert!(ring.get(&staged).is_some() && ring.get(&new).is_some());
}

#[test]
fn an_es256_signer_is_not_rotated_and_the_failure_is_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::copy(fixtures.join("es256-test.pem"), dir.join("es-1.pem")).unwrap();
    let clock = ManualClock::default();
    let config = SessionConfig::builder(Keyring::load_dir(dir).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let watcher = KeyWatcher::new(&config, dir).rotate_every(secs(HOUR));
    watcher.check_once().unwrap();
    clock.advance(secs(HOUR));
    let before = files(dir);
    let log = Capture::default();
    let e = log.during(|| watcher.check_once()).unwrap_err();
    assert!(e.to_string().contains("ES256"), "{e}");
    let text = log.text();
    assert!(
        text.contains(" ERROR ") && text.contains("key rotation failed"),
        "{text}"
    );
    assert_eq!(files(dir), before, "nothing written");
    assert_eq!(config.codec().keyring().signer().kid(), "es-1");
}
