//! Public keys shared through Redis (`RedisKeyShare`, issue 16 item 3): instances with key
//! directories of their own — no private key copied anywhere — accept each other's
//! sessions; a verify-only instance accepts them all; rotations and retirements reach the
//! others; a stopped instance's keys expire with their TTL; whatever else is in Redis is
//! never trusted; Redis away at start-up or mid-run costs only the keys published while it
//! was away. Each test starts its own `redis-server` on loopback.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, StatusCode, header};
use jwt_session::{
    Algorithm, Claims, Key, KeyWatcher, Keyring, MemoryDenylist, RedisConnection, RedisKeyShare,
    RedisKeyShareOptions, Refusal, Session, SessionConfig, SessionLayer, generate_key,
};
use serde_json::{Value, json};
use support::logs::Capture;
use support::redis::{Proxy, RedisServer};
use tower::ServiceExt as _;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Every log line of this test binary (the share's task logs from Tokio's worker
/// threads, so the subscriber is the global one). Call it first in each test.
fn logs() -> &'static Capture {
    static LOGS: OnceLock<Capture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new("jwt_session=debug"))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    })
}

/// A key directory of its own, with one new Ed25519 key (the signer); its kid.
fn key_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_key(Algorithm::EdDSA, "ed25519-").unwrap();
    key.write_to(dir.path()).unwrap();
    let kid = key.key.kid().to_owned();
    (dir, kid)
}

fn config_of(keyring: Keyring, short: bool) -> SessionConfig {
    let builder = SessionConfig::builder(keyring);
    let builder = if short {
        builder
            .idle_timeout(Duration::from_secs(2))
            .absolute_timeout(Duration::from_secs(2))
            .reissue_after(Duration::from_secs(1))
            .leeway(Duration::ZERO)
    } else {
        builder
    };
    builder.build().unwrap()
}

fn options(ns: &str) -> RedisKeyShareOptions {
    RedisKeyShareOptions::default()
        .namespace(ns)
        .health_check_interval(Duration::from_millis(100))
        .refresh_every(Duration::from_secs(3600))
        .connection(
            RedisConnection::default()
                .retry_backoff(Duration::from_millis(20), Duration::from_millis(200)),
        )
}

/// One instance: its configuration and its key share.
struct Node {
    config: SessionConfig,
    share: Arc<RedisKeyShare>,
}

impl Node {
    fn start(url: &str, keyring: Keyring, short: bool, options: RedisKeyShareOptions) -> Self {
        let config = config_of(keyring, short);
        let share = RedisKeyShare::connect(url, &config, options).unwrap();
        Self { config, share }
    }

    /// A signing instance on the key directory `dir`.
    fn signing(url: &str, dir: &Path, options: RedisKeyShareOptions) -> Self {
        Self::start(url, Keyring::load_dir(dir).unwrap(), false, options)
    }

    /// A token for a new login of `sub`, signed by this instance's signer.
    fn mint(&self, sub: &str) -> String {
        mint(&self.config, sub)
    }

    /// How this instance judges `token` (signature and key; times are not the point).
    fn verdict(&self, token: &str) -> Result<(), Refusal> {
        self.config.codec().decode::<()>(token.as_bytes()).map(drop)
    }
}

fn mint(config: &SessionConfig, sub: &str) -> String {
    let codec = config.codec();
    let claims = Claims::new(
        sub,
        (),
        config.clock().now(),
        config.policy(),
        codec.issuer(),
        codec.audience(),
    )
    .unwrap();
    codec.encode(&claims).unwrap()
}

fn kid_of(token: &str) -> String {
    let head = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Poll `check` every 20 ms until it holds; panic with `what` after `within`.
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn raw_get(redis: &RedisServer, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(&mut redis.raw()).unwrap()
}

fn raw_pttl(redis: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(&mut redis.raw()).unwrap()
}

/// Every value under `<ns>key:*`.
fn raw_entries(redis: &RedisServer, ns: &str) -> Vec<String> {
    let mut con = redis.raw();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{ns}key:*"))
        .query(&mut con)
        .unwrap();
    keys.iter()
        .filter_map(|k| redis::cmd("GET").arg(k).query(&mut con).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// Two signing instances whose key directories share nothing accept each other's sessions
/// once they are published; a verify-only instance (no private key at all) accepts both;
/// nothing private is ever written to Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_with_their_own_keys_accept_each_others_sessions() {
    logs();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ns = "share1:";
    let (dir_a, kid_a) = key_dir();
    let (dir_b, kid_b) = key_dir();
    let a = Node::signing(&redis.url(), dir_a.path(), options(ns));
    let b = Node::signing(&redis.url(), dir_b.path(), options(ns));
    // No private key in common: each keyring holds only its own key.
    assert_eq!(a.config.codec().keyring().kids(), [kid_a.as_str()]);
    assert_eq!(b.config.codec().keyring().kids(), [kid_b.as_str()]);

    let token_a = a.mint("alice");
    let token_b = b.mint("bob");
    eventually("A trusts B's key", Duration::from_secs(5), || {
        a.verdict(&token_b).is_ok()
    })
    .await;
    eventually("B trusts A's key", Duration::from_secs(5), || {
        b.verdict(&token_a).is_ok()
    })
    .await;
    // Trusted, not copied: the keyrings are unchanged, nothing can sign with the other's key.
    assert_eq!(a.config.codec().keyring().kids(), [kid_a.as_str()]);
    assert!(a.config.codec().knows(&kid_b));

    // A verify-only instance: one unrelated public key to start with, then both from Redis.
    let unrelated = generate_key(Algorithm::EdDSA, "other-").unwrap().key;
    let verifier = Node::start(
        &redis.url(),
        Keyring::verify_only([unrelated]).unwrap(),
        false,
        options(ns),
    );
    assert!(verifier.share.wait_synced(Duration::from_secs(5)).await);
    assert_eq!(verifier.verdict(&token_a), Ok(()));
    assert_eq!(verifier.verdict(&token_b), Ok(()));
    assert!(!verifier.config.codec().can_sign());

    // Through the whole layer, too: B serves A's session (and does not sign a new one of A's).
    let layer = SessionLayer::<()>::new(
        b.config.clone(),
        MemoryDenylist::with_capacity(100).unwrap(),
    );
    let app = Router::new()
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(layer);
    let req = Request::get("/me")
        .header(
            header::COOKIE,
            format!("{}={token_a}", b.config.cookie().name()),
        )
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // What is in Redis: one public JWK per instance, never a private member.
    let entries = raw_entries(&redis, ns);
    assert_eq!(entries.len(), 2, "{entries:?}");
    for entry in &entries {
        let entry: Value = serde_json::from_str(entry).unwrap();
        let jwk = &entry["jwk"];
        assert_eq!(jwk["kty"], "OKP", "{entry}");
        assert!(jwk.get("d").is_none(), "a private member in Redis: {entry}");
        assert!(entry["exp"].as_i64().unwrap() > a.config.clock().now());
    }
    assert!(a.share.wait_synced(Duration::from_secs(5)).await);
    let status = a.share.status();
    assert_eq!(status.summary(), "ready");
    assert_eq!(status.published, [kid_a.as_str()]);
    assert!(status.unpublished.is_empty() && status.conflicts.is_empty());
    assert_eq!(status.shared, [kid_b.as_str()]);
    let mut both = vec![kid_a.clone(), kid_b.clone()];
    both.sort();
    let status = verifier.share.status();
    assert!(status.published.is_empty(), "a verifier publishes nothing");
    assert_eq!(status.shared, both);
    // The TTL covers every token: absolute timeout (8 h) + leeway (5 s) + 2 × refresh (1 h).
    assert_eq!(
        a.share.key_ttl(),
        Duration::from_secs(8 * 3600 + 5 + 2 * 3600)
    );
    let pttl = raw_pttl(&redis, &format!("{ns}key:{kid_a}"));
    assert!(pttl > 9 * 3600 * 1000, "PTTL {pttl}");
}

/// A rotation on A (a new signer promoted in its watched directory) reaches B through the
/// announcement alone (B's periodic read is an hour away); old tokens keep working until
/// A retires the old key, which B then refuses too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_the_others_and_a_retired_key_stops_being_trusted() {
    logs();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ns = "share2:";
    let (dir_a, old_kid) = key_dir();
    let (dir_b, _) = key_dir();
    let a = Node::signing(&redis.url(), dir_a.path(), options(ns));
    let b = Node::signing(&redis.url(), dir_b.path(), options(ns));
    assert!(b.share.wait_synced(Duration::from_secs(5)).await);
    let old = a.mint("alice");
    eventually("B trusts A's first key", Duration::from_secs(5), || {
        b.verdict(&old).is_ok()
    })
    .await;

    // Rotate on disk; A's watcher applies it.
    let watcher = KeyWatcher::new(&a.config, dir_a.path());
    let next = generate_key(Algorithm::EdDSA, "ed25519-").unwrap();
    next.write_to(dir_a.path()).unwrap();
    std::fs::write(dir_a.path().join("SIGNER"), next.key.kid()).unwrap();
    assert!(watcher.check_once().unwrap().reloaded);
    let new = a.mint("alice");
    assert_eq!(kid_of(&new), next.key.kid());
    eventually("B trusts A's new key", Duration::from_secs(5), || {
        b.verdict(&new).is_ok()
    })
    .await;
    assert_eq!(b.verdict(&old), Ok(()), "the old key is still trusted");
    let mut published = vec![old_kid.clone(), next.key.kid().to_owned()];
    published.sort();
    eventually(
        "A publishes both keys (the demoted one too)",
        Duration::from_secs(5),
        || a.share.status().published == published,
    )
    .await;

    // A retires the old key (its files removed): B stops trusting it at once, and it is
    // gone from Redis.
    for suffix in [".pem", ".pub.pem"] {
        std::fs::remove_file(dir_a.path().join(format!("{old_kid}{suffix}"))).unwrap();
    }
    assert!(watcher.check_once().unwrap().reloaded);
    assert_eq!(a.verdict(&old), Err(Refusal::UnknownKey));
    eventually("B drops the retired key", Duration::from_secs(5), || {
        b.verdict(&old) == Err(Refusal::UnknownKey)
    })
    .await;
    assert_eq!(b.verdict(&new), Ok(()));
    assert_eq!(raw_get(&redis, &format!("{ns}key:{old_kid}")), None);
    assert_eq!(a.share.status().published, [next.key.kid().to_owned()]);
}

/// A stopped instance's keys are not deleted — its tokens stay valid elsewhere — but
/// expire from Redis and from the others' mirrors one TTL after its last publication
/// (here: absolute 2 s + leeway 0 + 2 × 1 s refresh = 4 s), while the live instance keeps
/// extending its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instances_keys_expire_after_their_ttl() {
    logs();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ns = "share3:";
    let short = |ns: &str| options(ns).refresh_every(Duration::from_millis(500));
    let (dir_a, kid_a) = key_dir();
    let (dir_b, kid_b) = key_dir();
    let a = Node::start(
        &redis.url(),
        Keyring::load_dir(dir_a.path()).unwrap(),
        true,
        short(ns),
    );
    let b = Node::start(
        &redis.url(),
        Keyring::load_dir(dir_b.path()).unwrap(),
        true,
        short(ns),
    );
    assert_eq!(a.share.key_ttl(), Duration::from_secs(4));
    let token_b = b.mint("bob");
    eventually("A trusts B's key", Duration::from_secs(5), || {
        a.verdict(&token_b).is_ok()
    })
    .await;
    let pttl = raw_pttl(&redis, &format!("{ns}key:{kid_b}"));
    assert!(pttl > 0 && pttl <= 4000, "PTTL {pttl}");

    // B stops (its share and configuration dropped, as when the process ends).
    let stopped = Instant::now();
    drop(b);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        a.verdict(&token_b),
        Ok(()),
        "still trusted while B's tokens may be valid"
    );
    eventually(
        "B's key expires from Redis and from A",
        Duration::from_secs(8),
        || {
            raw_get(&redis, &format!("{ns}key:{kid_b}")).is_none()
                && a.verdict(&token_b) == Err(Refusal::UnknownKey)
        },
    )
    .await;
    assert!(
        stopped.elapsed() >= Duration::from_secs(2),
        "not before B's last publication + TTL"
    );
    assert!(a.share.status().shared.is_empty());
    // A's own key lives on: refreshed every 500 ms.
    let pttl = raw_pttl(&redis, &format!("{ns}key:{kid_a}"));
    assert!(pttl > 2000, "A's own key is kept alive: PTTL {pttl}");
}

/// Whatever else is in Redis — a private JWK, an HMAC secret, garbage, an RSA key, a key
/// under another key's name — is ignored, counted and logged (without its material), and
/// never trusted: tokens signed with those keys stay `session_unknown_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_private_entries_are_ignored_and_logged_never_trusted() {
    let log = logs();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ns = "share4:";
    let (dir_a, _) = key_dir();
    // A re-reads every published key every 300 ms.
    let a = Node::signing(
        &redis.url(),
        dir_a.path(),
        options(ns).refresh_every(Duration::from_millis(300)),
    );
    assert!(a.share.wait_synced(Duration::from_secs(5)).await);

    // An attacker's Ed25519 key, published with its private half.
    let evil = generate_key(Algorithm::EdDSA, "evil-").unwrap();
    let der = pem::parse(&evil.private_file).unwrap().into_contents();
    let seed = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    let mut private_jwk = evil.key.public_jwk().unwrap();
    private_jwk["d"] = Value::String(seed.clone());
    let evil_kid = evil.key.kid().to_owned();
    let evil_token = mint(
        &config_of(Keyring::new(evil.key).unwrap(), false),
        "mallory",
    );
    // An HMAC secret of the attacker's choice.
    let secret = b"an attacker-chosen hmac secret of 32+ bytes";
    let hmac_jwk =
        json!({"kty":"oct","k":URL_SAFE_NO_PAD.encode(secret),"kid":"evil-hmac","alg":"HS256"});
    let hmac_token = mint(
        &config_of(
            Keyring::new(Key::hs256("evil-hmac", secret).unwrap()).unwrap(),
            false,
        ),
        "mallory",
    );
    let rsa_jwk = json!({"kty":"RSA","n":"sXch","e":"AQAB","kid":"evil-rsa"});
    let good = generate_key(Algorithm::EdDSA, "named-").unwrap().key;
    let entry = |kid: &str, jwk: &Value| {
        json!({"kid": kid, "jwk": jwk, "exp": 4_000_000_000_i64, "by": "mallory"}).to_string()
    };
    let mut con = redis.raw();
    let set = |con: &mut redis::Connection, key: &str, value: &str| {
        redis::cmd("SET")
            .arg(format!("{ns}key:{key}"))
            .arg(value)
            .query::<()>(con)
            .unwrap();
    };
    set(&mut con, &evil_kid, &entry(&evil_kid, &private_jwk));
    set(&mut con, "evil-hmac", &entry("evil-hmac", &hmac_jwk));
    set(&mut con, "evil-rsa", &entry("evil-rsa", &rsa_jwk));
    set(&mut con, "junk", "{not json at all");
    // A good public key, but stored under another kid's name.
    set(
        &mut con,
        "renamed",
        &entry(good.kid(), &good.public_jwk().unwrap()),
    );
    // The same private key announced on the channel.
    redis::cmd("PUBLISH")
        .arg(format!("{ns}keys"))
        .arg(entry(&evil_kid, &private_jwk))
        .query::<i64>(&mut con)
        .unwrap();
    eventually(
        "A reads and refuses every bad entry",
        Duration::from_secs(10),
        || a.share.status().ignored >= 6,
    )
    .await;
    assert_eq!(a.verdict(&evil_token), Err(Refusal::UnknownKey));
    assert_eq!(a.verdict(&hmac_token), Err(Refusal::UnknownKey));
    let status = a.share.status();
    assert!(status.shared.is_empty(), "nothing trusted: {status:?}");
    assert!(!a.config.codec().knows("renamed") && !a.config.codec().knows(good.kid()));

    let text = log.text();
    for (kid, why) in [
        (evil_kid.as_str(), "no private member d"),
        ("evil-hmac", "Ed25519 (OKP) or P-256 (EC) public JWK"),
        ("evil-rsa", "Ed25519 (OKP) or P-256 (EC) public JWK"),
        ("junk", "not a key entry"),
        ("renamed", "kid differs from its key's name"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains("ignoring a key shared through Redis")
                    && l.contains(kid)
                    && l.contains(why)),
            "no warning for {kid} ({why}):\n{text}"
        );
    }
    assert!(!text.contains(&seed), "the private half was logged");
    assert!(
        !text.contains(&URL_SAFE_NO_PAD.encode(secret)),
        "the secret was logged"
    );
}

/// Redis unreachable at start-up: each instance's own sessions verify from the start;
/// the other's become known once Redis is reachable. Redis lost mid-run: every key known
/// stays trusted; a key published meanwhile is unknown until the link is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_costs_only_the_keys_published_while_it_is_away() {
    logs();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ns = "share5:";
    let link_a = Proxy::start(redis.port, false).await;
    let link_b = Proxy::start(redis.port, false).await;
    let (dir_a, _) = key_dir();
    let (dir_b, _) = key_dir();
    let a = Node::signing(&link_a.url(), dir_a.path(), options(ns));
    let b = Node::signing(&link_b.url(), dir_b.path(), options(ns));
    let token_a = a.mint("alice");
    let token_b = b.mint("bob");
    assert!(!a.share.wait_synced(Duration::from_millis(300)).await);
    let status = a.share.status();
    assert_eq!(status.summary(), "not_synced");
    assert!(status.failure.is_some(), "{status:?}");
    assert_eq!(status.unpublished.len(), 1, "{status:?}");
    assert_eq!(a.verdict(&token_a), Ok(()), "own keys verify without Redis");
    assert_eq!(b.verdict(&token_b), Ok(()));
    assert_eq!(a.verdict(&token_b), Err(Refusal::UnknownKey));

    link_a.restore();
    link_b.restore();
    eventually(
        "both learn the other's key",
        Duration::from_secs(10),
        || a.verdict(&token_b).is_ok() && b.verdict(&token_a).is_ok(),
    )
    .await;

    // A's link is cut: B's key stays trusted; a key B promotes meanwhile is unknown to A
    // until the link is back.
    link_a.cut();
    eventually("A notices", Duration::from_secs(5), || {
        a.share.status().summary() == "stale"
    })
    .await;
    assert_eq!(a.verdict(&token_b), Ok(()), "known keys stay trusted");
    let next = generate_key(Algorithm::EdDSA, "ed25519-").unwrap();
    let next_kid = next.key.kid().to_owned();
    b.config
        .codec()
        .rotate(|ring| {
            ring.add(next.key)?;
            ring.promote(&next_kid)
        })
        .unwrap();
    let new_b = b.mint("bob");
    eventually("B publishes its new key", Duration::from_secs(5), || {
        b.share.status().published.contains(&next_kid)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.verdict(&new_b), Err(Refusal::UnknownKey));
    link_a.restore();
    eventually("A learns it once back", Duration::from_secs(10), || {
        a.verdict(&new_b).is_ok() && a.share.status().summary() == "ready"
    })
    .await;
}

/// Two instances that published different keys under one hand-made `kid`: the first
/// stays, the second does not overwrite it and reports the conflict; each verifies its
/// own tokens with its own key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kid_with_two_keys_is_a_reported_conflict_not_an_overwrite() {
    let log = logs();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ns = "share6:";
    let same_name = |seed_prefix: &str| {
        let generated = generate_key(Algorithm::EdDSA, seed_prefix).unwrap();
        Key::from_pem("hand-made", generated.private_file.as_bytes()).unwrap()
    };
    let a = Node::start(
        &redis.url(),
        Keyring::new(same_name("a-")).unwrap(),
        false,
        options(ns),
    );
    assert!(a.share.wait_synced(Duration::from_secs(5)).await);
    eventually("A publishes", Duration::from_secs(5), || {
        a.share.status().published == ["hand-made"]
    })
    .await;
    let before = raw_get(&redis, &format!("{ns}key:hand-made")).unwrap();
    let b = Node::start(
        &redis.url(),
        Keyring::new(same_name("b-")).unwrap(),
        false,
        options(ns),
    );
    eventually("B reports the conflict", Duration::from_secs(5), || {
        b.share.status().conflicts == ["hand-made"]
    })
    .await;
    assert_eq!(b.share.status().unpublished, ["hand-made"]);
    assert_eq!(
        raw_get(&redis, &format!("{ns}key:hand-made")).unwrap(),
        before
    );
    assert_eq!(b.verdict(&b.mint("bob")), Ok(()));
    assert_eq!(a.verdict(&a.mint("alice")), Ok(()));
    assert_eq!(a.verdict(&b.mint("bob")), Err(Refusal::BadSignature));
    assert!(
        log.text()
            .contains("another instance publishes a different key under this instance's kid")
    );
}

// ---------------------------------------------------------------------------------------
// The example server
// ---------------------------------------------------------------------------------------

/// A running example server; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(keys: &Path, data: &Path, redis_url: &str) -> Self {
        let mut cmd = Command::new(support::server_binary());
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("JWT_SESSION_") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .env("JWT_SESSION_ADDR", "127.0.0.1:0")
            .env("JWT_SESSION_KEYS", keys)
            .env("JWT_SESSION_DATA", data)
            .env("JWT_SESSION_REDIS_URL", redis_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the example server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line {line:?}"))
            .to_owned();
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    async fn login(&self, http: &reqwest::Client, user: &str, password: &str) -> String {
        let res = http
            .post(format!("{}/login", self.base))
            .json(&json!({ "username": user, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("session="))
            .expect("a session cookie");
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn me(&self, http: &reqwest::Client, token: &str) -> StatusCode {
        http.get(format!("{}/api/me", self.base))
            .header(header::COOKIE, format!("session={token}"))
            .send()
            .await
            .unwrap()
            .status()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two example servers with key directories of their own and one Redis: a session from
/// either works on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_servers_with_their_own_keys_accept_each_others_sessions() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (keys_a, kid_a) = key_dir();
    let (keys_b, kid_b) = key_dir();
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(keys_a.path(), data_a.path(), &redis.url());
    let b = Server::start(keys_b.path(), data_b.path(), &redis.url());
    let http = reqwest::Client::new();
    let alice = a.login(&http, "alice", "wonderland").await;
    let bob = b.login(&http, "bob", "builder").await;
    assert_eq!(kid_of(&alice), kid_a);
    assert_eq!(kid_of(&bob), kid_b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (on_b, on_a) = (b.me(&http, &alice).await, a.me(&http, &bob).await);
        if on_b == StatusCode::OK && on_a == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sessions not accepted across instances: {on_b} / {on_a}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
