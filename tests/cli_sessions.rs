//! The operator's `jwt-session sessions list|stats|revoke`, driven as a built binary
//! against the journals (and, with the `redis` feature, the Redis) of an in-process server:
//! what it lists and counts, ending one session (refused by the server afterwards), the
//! journals' locks, and bad input (exit 2, one line on stderr, nothing written).
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Path as UrlPath;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use jwt_session::testing::{TestClient, TestKit, refusal};
use jwt_session::{
    Clock as _, Login, MemoryDenylist, MemoryRegistry, Refusal, Session, SessionRegistry as _,
    SystemClock, session_routes,
};
use serde_json::Value;
use tower::ServiceExt as _;

mod support;
use support::cli::{Run, assert_usage_error, run};

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148";
const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const TABLET: &str = "Mozilla/5.0 (iPad; CPU OS 18_0 like Mac OS X) Safari/604.1";

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, 0,
        "{args:?}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------
// An in-process server with journaled denylist and registry
// ---------------------------------------------------------------------------------------

async fn login(UrlPath(user): UrlPath<String>) -> (Login, &'static str) {
    (Login::new(user, ()).unwrap(), "logged in")
}

async fn me(s: Session) -> String {
    s.subject().to_owned()
}

fn routes() -> Router {
    Router::new()
        .route("/login/{user}", post(login))
        .route("/me", get(me))
        .merge(session_routes::<(), ()>())
}

/// A test kit whose clock reads the real time: the CLI decides with the system clock.
fn kit_now() -> TestKit {
    let kit = TestKit::new();
    kit.clock().set(SystemClock.now());
    kit
}

struct Journals {
    _dir: tempfile::TempDir,
    denylist: PathBuf,
    registry: PathBuf,
}

fn journals() -> Journals {
    let dir = tempfile::tempdir().unwrap();
    Journals {
        denylist: dir.path().join("revoked.jsonl"),
        registry: dir.path().join("sessions.jsonl"),
        _dir: dir,
    }
}

/// A server on the journals: its app and registry (holding both journals' locks).
struct Server {
    app: Router,
    registry: Arc<MemoryRegistry>,
}

fn server(kit: &TestKit, j: &Journals) -> (TestKit, Server) {
    let store = MemoryDenylist::builder()
        .journal(&j.denylist)
        .build(kit.clock())
        .unwrap();
    let registry = MemoryRegistry::builder()
        .journal(&j.registry)
        .build(kit.clock())
        .unwrap();
    let kit = kit.clone().with_store(store);
    let app = routes().layer(kit.layer::<()>().with_registry(registry.clone()));
    (kit, Server { app, registry })
}

/// Log `user` in with `agent`; the client holding the session.
async fn device(kit: &TestKit, app: &Router, user: &str, agent: &str) -> TestClient {
    let mut client = kit.client(app.clone());
    let res = client
        .post(&format!("/login/{user}"))
        .header("user-agent", agent)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    client
}

/// `GET /me` with `token`: Ok or the refusal.
async fn me_with(kit: &TestKit, app: &Router, token: &str) -> Result<(), Refusal> {
    let res = app
        .clone()
        .oneshot(
            Request::get("/me")
                .header("cookie", kit.cookie_header(token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    match res.status() {
        StatusCode::OK => Ok(()),
        _ => Err(refusal(&res).unwrap()),
    }
}

// ---------------------------------------------------------------------------------------
// Journals
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn list_and_stats_read_the_registry_journal_of_a_running_server() {
    let base = kit_now();
    let j = journals();
    let (kit, server) = server(&base, &j);
    let _phone = device(&kit, &server.app, "alice", PHONE).await;
    kit.advance(std::time::Duration::from_secs(5));
    let _laptop = device(&kit, &server.app, "alice", LAPTOP).await;
    let _bob = device(&kit, &server.app, "bob", TABLET).await;
    let now = kit.now().to_string();

    let r = ok(&[
        "sessions",
        "list",
        "alice",
        "--registry",
        path(&j.registry),
        "--now",
        &now,
    ]);
    assert!(r.stdout.contains("sessions of alice (2)"), "{}", r.stdout);
    let listed = server.registry.list("alice", kit.now());
    for e in &listed {
        assert!(r.stdout.contains(&format!("  id {}", e.id)), "{}", r.stdout);
        assert!(r.stdout.contains(&e.sid), "operators see the sid");
    }
    assert!(r.stdout.contains(PHONE) && r.stdout.contains(LAPTOP));
    assert!(!r.stdout.contains(TABLET), "bob's session is not alice's");
    let laptop_at = r.stdout.find(LAPTOP).unwrap();
    assert!(
        laptop_at < r.stdout.find(PHONE).unwrap(),
        "most recent first"
    );
    assert!(r.stdout.contains("remembered   no"));

    let r = ok(&[
        "sessions",
        "list",
        "alice",
        "--registry",
        path(&j.registry),
        "--now",
        &now,
        "--json",
    ]);
    let json: Value = serde_json::from_str(&r.stdout).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [listed[0].id.as_str(), listed[1].id.as_str()]);
    assert_eq!(json[0]["sub"], "alice");
    assert_eq!(json[0]["user_agent"], LAPTOP);

    let r = ok(&["sessions", "list", "carol", "--registry", path(&j.registry)]);
    assert!(r.stdout.contains("sessions of carol (0)"), "{}", r.stdout);

    let r = ok(&[
        "sessions",
        "stats",
        "--registry",
        path(&j.registry),
        "--now",
        &now,
    ]);
    assert!(r.stdout.contains("sessions      3"), "{}", r.stdout);
    assert!(r.stdout.contains("users         2"));
    assert!(r.stdout.contains("most per user 2"));
    let r = ok(&[
        "sessions",
        "stats",
        "--registry",
        path(&j.registry),
        "--json",
    ]);
    let stats: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        stats,
        serde_json::json!({ "sessions": 3, "users": 2, "max_per_user": 2 })
    );

    // As of a later time: the sessions have expired (idle 30 min + leeway).
    let later = (kit.now() + 31 * 60).to_string();
    let r = ok(&[
        "sessions",
        "stats",
        "--registry",
        path(&j.registry),
        "--now",
        &later,
    ]);
    assert!(r.stdout.contains("sessions      0"), "{}", r.stdout);
}

#[tokio::test]
async fn revoke_ends_that_session_for_the_server_after_its_restart() {
    let base = kit_now();
    let j = journals();
    let (tokens, ids) = {
        let (kit, server) = server(&base, &j);
        let phone = device(&kit, &server.app, "alice", PHONE).await;
        let laptop = device(&kit, &server.app, "alice", LAPTOP).await;
        let listed = server.registry.list("alice", kit.now());
        let phone_entry = listed
            .iter()
            .find(|e| e.user_agent.as_deref() == Some(PHONE))
            .unwrap();

        // While the server holds the journals: refused, nothing written.
        let denylist_before = std::fs::read(&j.denylist).unwrap();
        let registry_before = std::fs::read(&j.registry).unwrap();
        let r = run(&[
            "sessions",
            "revoke",
            &phone_entry.id,
            "--registry",
            path(&j.registry),
            "--journal",
            path(&j.denylist),
        ]);
        assert_usage_error(&r, "in use by another process");
        assert_eq!(std::fs::read(&j.denylist).unwrap(), denylist_before);
        assert_eq!(std::fs::read(&j.registry).unwrap(), registry_before);

        (
            [
                phone.token().unwrap().to_owned(),
                laptop.token().unwrap().to_owned(),
            ],
            (phone_entry.id.clone(), listed.len()),
        )
    }; // the server stops: its locks are released
    assert_eq!(ids.1, 2);

    let r = ok(&[
        "sessions",
        "revoke",
        &ids.0,
        "--registry",
        path(&j.registry),
        "--journal",
        path(&j.denylist),
    ]);
    assert!(
        r.stdout
            .contains(&format!("ended session {} of alice", ids.0)),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(PHONE));
    assert!(r.stdout.contains("revoked until"));
    assert!(r.stderr.contains("(re)start"), "{}", r.stderr);

    // Again: it is no longer listed.
    let r = run(&[
        "sessions",
        "revoke",
        &ids.0,
        "--registry",
        path(&j.registry),
        "--journal",
        path(&j.denylist),
    ]);
    assert_usage_error(&r, "no live session is listed as");

    // The server starts again: that session is refused, the other one is not.
    let (kit, server) = server(&base, &j);
    assert_eq!(
        me_with(&kit, &server.app, &tokens[0]).await,
        Err(Refusal::Revoked)
    );
    assert_eq!(me_with(&kit, &server.app, &tokens[1]).await, Ok(()));
    let listed = server.registry.list("alice", kit.now());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_agent.as_deref(), Some(LAPTOP));
}

#[tokio::test]
async fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let base = kit_now();
    let j = journals();
    {
        let (kit, server) = server(&base, &j);
        let _ = device(&kit, &server.app, "alice", PHONE).await;
        // A revocation, so that the denylist journal has a line.
        let mut other = device(&kit, &server.app, "bob", PHONE).await;
        let res = other.post("/session/logout").send().await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let denylist_before = std::fs::read(&j.denylist).unwrap();
    let registry_before = std::fs::read(&j.registry).unwrap();
    assert!(!denylist_before.is_empty() && !registry_before.is_empty());
    let (reg, jour) = (path(&j.registry), path(&j.denylist));
    let missing = j.registry.with_file_name("nope.jsonl");
    let missing = path(&missing);
    let dir = j.registry.parent().unwrap().to_str().unwrap();

    let cases: &[(&[&str], &str)] = &[
        (&["sessions"], "requires a subcommand"),
        (
            &["sessions", "list"],
            "required arguments were not provided",
        ),
        (&["sessions", "list", "alice"], "--registry"),
        (
            &[
                "sessions",
                "list",
                "alice",
                "--registry",
                reg,
                "--redis",
                "redis://h/",
            ],
            "cannot be used with",
        ),
        (
            &["sessions", "list", "", "--registry", reg],
            "USER must not be empty",
        ),
        (
            &["sessions", "list", "alice", "--registry", missing],
            "does not exist",
        ),
        (
            &["sessions", "list", "alice", "--registry", dir],
            "not a regular file",
        ),
        // The denylist's journal is not a registry journal, and the other way round.
        (
            &["sessions", "list", "alice", "--registry", jour],
            "is a revocation journal",
        ),
        (
            &["sessions", "stats", "--registry", jour],
            "is a revocation journal",
        ),
        (
            &[
                "sessions",
                "revoke",
                "x",
                "--registry",
                jour,
                "--journal",
                reg,
            ],
            "is a revocation journal",
        ),
        (
            &[
                "sessions",
                "list",
                "alice",
                "--registry",
                reg,
                "--now",
                "soon",
            ],
            "RFC 3339",
        ),
        (
            &["sessions", "stats", "--registry", reg, "--namespace", "x:"],
            "--redis",
        ),
        (
            &["sessions", "revoke", "x", "--registry", reg],
            "needs --journal",
        ),
        (
            &[
                "sessions",
                "revoke",
                "",
                "--registry",
                reg,
                "--journal",
                jour,
            ],
            "ID must not be empty",
        ),
        (
            &[
                "sessions",
                "revoke",
                "no-such-id",
                "--registry",
                reg,
                "--journal",
                jour,
            ],
            "no live session is listed as no-such-id",
        ),
        (
            &[
                "sessions",
                "revoke",
                "x",
                "--redis",
                "redis://h/",
                "--journal",
                jour,
            ],
            "--journal goes with --registry",
        ),
        (
            &[
                "sessions",
                "revoke",
                "x",
                "--registry",
                reg,
                "--journal",
                jour,
                "--idle",
                "0",
            ],
            "settings",
        ),
        (
            &[
                "sessions",
                "revoke",
                "x",
                "--registry",
                reg,
                "--journal",
                jour,
                "--idle",
                "soon",
            ],
            "30m",
        ),
    ];
    for (args, needle) in cases {
        let r = run(args);
        assert_usage_error(&r, needle);
    }
    assert_eq!(std::fs::read(&j.denylist).unwrap(), denylist_before);
    assert_eq!(std::fs::read(&j.registry).unwrap(), registry_before);

    // A registry journal given as the denylist's journal: refused before anything is
    // written.
    let (kit, server) = server(&base, &j);
    let id = server.registry.list("alice", kit.now())[0].id.clone();
    drop((kit, server));
    let registry_before = std::fs::read(&j.registry).unwrap();
    let copy = j.registry.with_file_name("copy.jsonl");
    std::fs::write(&copy, &registry_before).unwrap();
    let r = run(&[
        "sessions",
        "revoke",
        &id,
        "--registry",
        reg,
        "--journal",
        path(&copy),
    ]);
    assert_usage_error(&r, "not a revocation journal");
    assert_eq!(std::fs::read(&copy).unwrap(), registry_before);
    assert_eq!(std::fs::read(&j.registry).unwrap(), registry_before);

    // A user name with escape sequences is printed escaped.
    let r = ok(&["sessions", "list", "\u{1b}[31mred", "--registry", reg]);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

#[cfg(feature = "redis")]
mod redis_backend {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use jwt_session::{RedisDenylist, RedisDenylistOptions, SessionLayer};
    use jwt_session::{RedisRegistry, RedisRegistryOptions};

    use super::support::redis::{SharedServer, free_port, plain_server, redis_available};
    use super::*;

    /// The URL of one redis-server for this test binary; `None` (skipped, loudly) without
    /// one outside CI.
    fn redis_url() -> Option<String> {
        static SERVER: OnceLock<Option<(u16, SharedServer)>> = OnceLock::new();
        SERVER
            .get_or_init(|| {
                if !redis_available("`sessions --redis`") {
                    return None;
                }
                let port = free_port();
                Some((port, plain_server(port)))
            })
            .as_ref()
            .map(|(port, _)| format!("redis://127.0.0.1:{port}/"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_stats_and_revoke_against_redis_reach_a_running_server() {
        let Some(url) = redis_url() else { return };
        let ns = format!("cli-{}:", std::process::id());
        let kit = kit_now();
        let denylist = RedisDenylist::connect(
            &url,
            RedisDenylistOptions::default()
                .namespace(&ns)
                .clock(kit.config().clock_handle())
                .health_check_interval(Duration::from_millis(100)),
        )
        .unwrap();
        assert!(denylist.wait_ready(Duration::from_secs(5)).await);
        let registry = RedisRegistry::connect(
            &url,
            RedisRegistryOptions::default()
                .namespace(&ns)
                .clock(kit.config().clock_handle()),
        )
        .unwrap();
        let app = routes().layer(
            SessionLayer::<()>::new(kit.config().clone(), denylist.clone())
                .with_registry(registry.clone()),
        );
        let phone = device(&kit, &app, "alice", PHONE).await;
        let laptop = device(&kit, &app, "alice", LAPTOP).await;
        let _bob = device(&kit, &app, "bob", TABLET).await;
        assert!(registry.flush(Duration::from_secs(5)).await);

        let r = ok(&[
            "sessions",
            "list",
            "alice",
            "--redis",
            &url,
            "--namespace",
            &ns,
        ]);
        assert!(r.stdout.contains("sessions of alice (2)"), "{}", r.stdout);
        assert!(r.stdout.contains(PHONE) && r.stdout.contains(LAPTOP));
        let r = ok(&[
            "sessions",
            "stats",
            "--redis",
            &url,
            "--namespace",
            &ns,
            "--json",
        ]);
        let stats: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(
            stats,
            serde_json::json!({ "sessions": 3, "users": 2, "max_per_user": 2 })
        );
        // Another namespace sees nothing.
        let r = ok(&["sessions", "list", "alice", "--redis", &url]);
        assert!(r.stdout.contains("sessions of alice (0)"), "{}", r.stdout);

        // Ending the phone's session from the CLI: the running server refuses it.
        let phone_id = registry
            .list("alice", kit.now())
            .into_iter()
            .find(|e| e.user_agent.as_deref() == Some(PHONE))
            .unwrap()
            .id;
        let r = ok(&[
            "sessions",
            "revoke",
            &phone_id,
            "--redis",
            &url,
            "--namespace",
            &ns,
        ]);
        assert!(r.stdout.contains("ended session"), "{}", r.stdout);
        let deadline = Instant::now() + Duration::from_secs(10);
        while me_with(&kit, &app, phone.token().unwrap()).await != Err(Refusal::Revoked) {
            assert!(Instant::now() < deadline, "the server never refused it");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(me_with(&kit, &app, laptop.token().unwrap()).await, Ok(()));
        let left = registry.list("alice", kit.now());
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].user_agent.as_deref(), Some(LAPTOP));
        let r = run(&[
            "sessions",
            "revoke",
            &phone_id,
            "--redis",
            &url,
            "--namespace",
            &ns,
        ]);
        assert_usage_error(&r, "no live session is listed as");
    }

    #[test]
    fn an_unreachable_redis_is_one_clear_line_without_credentials() {
        if redis_url().is_none() {
            return;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("redis://operator:s3cret@127.0.0.1:{port}/");
        for args in [
            vec!["sessions", "list", "alice", "--redis", &url],
            vec!["sessions", "stats", "--redis", &url],
            vec!["sessions", "revoke", "some-id", "--redis", &url],
        ] {
            let r = run(&args);
            assert_usage_error(&r, &format!("127.0.0.1:{port}"));
            assert!(!r.stderr.contains("s3cret"), "{}", r.stderr);
        }
        let r = run(&["sessions", "list", "alice", "--redis", "http://nope"]);
        assert_usage_error(&r, "invalid --redis URL");
        let r = run(&[
            "sessions",
            "list",
            "alice",
            "--redis",
            "redis://h/",
            "--namespace",
            "",
        ]);
        assert_usage_error(&r, "--namespace must not be empty");
    }
}
