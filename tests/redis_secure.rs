//! The Redis backends over TLS with an ACL user and password, against one `redis-server`
//! per test binary: TLS on a loopback port with a CA, a server and a client certificate
//! that this test makes (rcgen; the server asks for the client's), and an ACL user `jwt`
//! that may only run the commands the backends use, on `jwt-test-*` keys and channels. It
//! proves that revocations flow between two instances over TLS (credentials from the
//! builder, or in the URL with the CA and client certificate from files); that the session
//! registry lists across instances over TLS; that a server certificate from another CA, a
//! missing client certificate, a wrong password and a namespace the ACL user may not touch
//! are each a typed failure (`RedisFailure::Tls`, `Auth`, `NoPermission`): the store stays
//! not ready and refuses sessions (fail closed), without a hang or a panic; and that TLS
//! settings that cannot work are errors of `connect`.
//!
//! Without a `redis-server` binary the tests print `SKIPPED:` and pass, except under
//! `CI=true`, where they fail.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{
    RedisConnection, RedisDenylist, RedisDenylistOptions, RedisFailure, RedisRegistry,
    RedisRegistryOptions, Refusal, SessionEntry, SessionLayer, SessionRegistry,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use support::harness::{get_with, post_with, routes, send};
use support::redis::{SharedServer, free_port, pong, redis_available};

const USER: &str = "jwt";
const PASSWORD: &str = "jwt-secret";
const CONVERGE: Duration = Duration::from_secs(10);
/// How long a store that cannot connect is given before its status is read.
const REFUSED: Duration = Duration::from_secs(2);

/// The commands the denylist and the registry (with its scripts) run: the ACL user gets
/// these and nothing else, on `jwt-test-*` keys and channels only.
const ACL: &str = "user jwt on >jwt-secret resetkeys ~jwt-test-* resetchannels &jwt-test-* \
    -@all +hello +auth +ping +select +role +subscribe +publish +multi +exec \
    +discard +set +get +mget +scan +xadd +xinfo +xrange +eval +evalsha +hmget +hget +hset +hsetnx +del +exists \
    +hlen +hvals +hscan +pexpire +pttl +zadd +zcard +zcount +zpopmin +zrange +zrem +zremrangebyscore";

// ---------------------------------------------------------------------------------------
// One TLS redis-server for the whole test binary
// ---------------------------------------------------------------------------------------

struct TlsRedis {
    /// Plain-text port, for the test's own checks (as the `default` user).
    port: u16,
    tls_port: u16,
    ca_pem: String,
    ca_file: PathBuf,
    /// The client certificate and key the server asks for (`tls-auth-clients yes`).
    client_pem: (String, String),
    client_files: (PathBuf, PathBuf),
    /// Where the CA, server and client certificates are (`ca.pem`, `server.pem`, …).
    certs: PathBuf,
    _server: SharedServer,
    _dir: tempfile::TempDir,
}

/// A self-signed CA named `name`.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn tls_redis() -> Option<&'static TlsRedis> {
    static SERVER: OnceLock<Option<TlsRedis>> = OnceLock::new();
    SERVER
        .get_or_init(|| redis_available("Redis over TLS with an ACL user").then(start))
        .as_ref()
}

fn start() -> TlsRedis {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("jwt-session test CA");
    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "redis test server");
    let server_cert = params.signed_by(&server_key, &ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "jwt-session test client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = params.signed_by(&client_key, &ca).unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(path("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(path("client.pem"), client_cert.pem()).unwrap();
    std::fs::write(path("client.key"), client_key.serialize_pem()).unwrap();
    let (port, tls_port) = (free_port(), free_port());
    let conf = format!(
        "port {port}\nbind 127.0.0.1\ntls-port {tls_port}\ntls-cert-file {}\n\
         tls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients yes\nsave \"\"\n\
         appendonly no\n{ACL}\n",
        path("server.pem").display(),
        path("server.key").display(),
        path("ca.pem").display(),
    );
    std::fs::write(path("redis.conf"), conf).unwrap();
    let server = SharedServer::spawn(
        &[path("redis.conf").display().to_string()],
        Some(&path("redis.log")),
        || pong(port),
    );
    TlsRedis {
        port,
        tls_port,
        ca_pem: ca.pem(),
        ca_file: path("ca.pem"),
        client_pem: (client_cert.pem(), client_key.serialize_pem()),
        client_files: (path("client.pem"), path("client.key")),
        certs: dir.path().to_owned(),
        _server: server,
        _dir: dir,
    }
}

impl TlsRedis {
    /// The TLS URL, without credentials.
    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port)
    }

    /// A plain connection as the unrestricted `default` user, for the test's checks.
    fn raw(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Keys under `ns`.
    fn keys(&self, ns: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{ns}*"))
            .query(&mut self.raw())
            .unwrap()
    }
}

/// A namespace of its own for each test, inside what the ACL user may touch.
fn namespace() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "jwt-test-{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Fast retries and timeouts, the CA, the client certificate, the ACL user and password.
fn connection(redis: &TlsRedis) -> RedisConnection {
    RedisConnection::default()
        .ca_pem(redis.ca_pem.clone())
        .client_cert_pem(redis.client_pem.0.clone(), redis.client_pem.1.clone())
        .username(USER)
        .password(PASSWORD)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
}

fn denylist_options(kit: &TestKit, ns: &str, connection: RedisConnection) -> RedisDenylistOptions {
    RedisDenylistOptions::default()
        .connection(connection)
        .namespace(ns)
        .clock(kit.config().clock_handle())
        .health_check_interval(Duration::from_millis(100))
}

/// One "server": a Redis-backed store behind its own layer.
struct Instance {
    store: Arc<RedisDenylist>,
    app: Router,
}

async fn instance(kit: &TestKit, url: &str, options: RedisDenylistOptions) -> Instance {
    let store = RedisDenylist::connect(url, options).unwrap();
    assert!(
        store.wait_ready(CONVERGE).await,
        "instance not ready: {:?}",
        store.status()
    );
    let app = routes().layer(SessionLayer::<()>::new(kit.config().clone(), store.clone()));
    Instance { store, app }
}

impl Instance {
    async fn me(&self, cookie: &str) -> Result<(), Refusal> {
        let res = send(&self.app, get_with("/me", cookie)).await;
        match res.status() {
            StatusCode::OK => Ok(()),
            status => Err(refusal(&res).unwrap_or_else(|| panic!("{status} without a refusal"))),
        }
    }

    async fn post(&self, path: &str, cookie: &str, csrf: &str) {
        let res = send(&self.app, post_with(path, cookie, csrf)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

/// A minted session: its cookie header and CSRF token.
fn login(kit: &TestKit, sub: &str) -> (String, String) {
    let (token, claims) = kit.mint(sub, ()).unwrap();
    (kit.cookie_header(&token), claims.csrf.expose().to_owned())
}

/// Poll `f` until it holds; fail with `what` after `timeout`.
async fn until(timeout: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A store that cannot get through: not ready after [`REFUSED`], refusing sessions with
/// 503 (fail closed), its status naming `failure`.
async fn assert_refused_with(kit: &TestKit, store: Arc<RedisDenylist>, failure: RedisFailure) {
    let started = Instant::now();
    assert!(!store.wait_ready(REFUSED).await, "{:?}", store.status());
    assert!(
        started.elapsed() < REFUSED + Duration::from_secs(1),
        "wait_ready overran its timeout"
    );
    let deadline = Instant::now() + CONVERGE;
    while store.status().failure != Some(failure) {
        assert!(
            Instant::now() < deadline,
            "expected {failure:?}: {:?}",
            store.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = store.status();
    assert_eq!(status.summary(), "not_synced", "{status:?}");
    assert!(!status.connected);
    let message = status.last_error.unwrap();
    assert!(!message.contains(PASSWORD), "{message}");
    let app = routes().layer(SessionLayer::<()>::new(kit.config().clone(), store.clone()));
    let (cookie, _) = login(kit, "alice");
    let res = send(&app, get_with("/me", &cookie)).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "fail closed");
}

/// A Sentinel on TLS only (plus a plain port for the test's checks), monitoring the TLS
/// server as master `tls-master` over TLS (its server certificate doubles as the client
/// certificate the master asks for). Returns it with its TLS port.
fn tls_sentinel(redis: &TlsRedis) -> (SharedServer, u16) {
    let (port, tls_port) = (free_port(), free_port());
    let file = |name: &str| redis.certs.join(name).display().to_string();
    let conf = redis.certs.join(format!("sentinel-{tls_port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ntls-port {tls_port}\ntls-cert-file {}\n\
             tls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients yes\n\
             tls-replication yes\nsentinel monitor tls-master 127.0.0.1 {} 1\n",
            file("server.pem"),
            file("server.key"),
            file("ca.pem"),
            redis.tls_port,
        ),
    )
    .unwrap();
    let sentinel = SharedServer::spawn(
        &[conf.display().to_string(), "--sentinel".to_owned()],
        Some(&redis.certs.join(format!("sentinel-{tls_port}.log"))),
        || {
            // Ready once it has reached the master over TLS.
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
                return false;
            };
            let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                return false;
            };
            let master: redis::RedisResult<Vec<(String, String)>> = redis::cmd("SENTINEL")
                .arg("master")
                .arg("tls-master")
                .query(&mut con);
            master.is_ok_and(|fields| fields.iter().any(|(k, v)| k == "flags" && v == "master"))
        },
    );
    (sentinel, tls_port)
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_flow_through_a_sentinel_over_tls() {
    let Some(redis) = tls_redis() else { return };
    let (_sentinel, sentinel_port) = tokio::task::spawn_blocking(|| tls_sentinel(redis))
        .await
        .unwrap();
    let url = format!("rediss+sentinel://127.0.0.1:{sentinel_port}/tls-master");
    let kit = TestKit::new();
    let ns = namespace();
    let a = instance(&kit, &url, denylist_options(&kit, &ns, connection(redis))).await;
    let b = instance(&kit, &url, denylist_options(&kit, &ns, connection(redis))).await;
    let (alice, alice_csrf) = login(&kit, "alice");
    let (bob, _) = login(&kit, "bob");
    a.post("/session/logout", &alice, &alice_csrf).await;
    until(
        CONVERGE,
        "B (through the TLS Sentinel) refuses alice's session revoked on A",
        async || b.me(&alice).await == Err(Refusal::Revoked),
    )
    .await;
    assert_eq!(b.me(&bob).await, Ok(()));
    assert!(a.store.flush(CONVERGE).await);
    // Written through the master the Sentinel named, by the ACL user.
    let keys = redis.keys(&ns);
    assert!(keys.iter().any(|k| k.contains("revoked:")), "{keys:?}");

    // A Sentinel whose certificate another CA signed: a typed TLS failure, fail closed.
    let other_ca = ca("another CA");
    let wrong = RedisDenylist::connect(
        &url,
        denylist_options(&kit, &namespace(), connection(redis).ca_pem(other_ca.pem())),
    )
    .unwrap();
    assert_refused_with(&kit, wrong, RedisFailure::Tls).await;
    // TLS settings on a plain Sentinel URL cannot work: an error of `connect`.
    let plain = format!("redis+sentinel://127.0.0.1:{sentinel_port}/tls-master");
    let err = RedisDenylist::connect(&plain, denylist_options(&kit, &ns, connection(redis)))
        .err()
        .unwrap();
    assert!(err.to_string().contains("rediss+sentinel://"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_flow_between_two_instances_over_tls_as_an_acl_user() {
    let Some(redis) = tls_redis() else { return };
    let kit = TestKit::new();
    let ns = namespace();
    // A: user and password from the builder, the CA and client certificate as bytes. B:
    // both in the URL, the CA and client certificate from files.
    let a = instance(
        &kit,
        &redis.url(),
        denylist_options(&kit, &ns, connection(redis)),
    )
    .await;
    let url_with_credentials = format!("rediss://{USER}:{PASSWORD}@127.0.0.1:{}/", redis.tls_port);
    let b_connection = RedisConnection::default()
        .ca_file(&redis.ca_file)
        .client_cert_files(&redis.client_files.0, &redis.client_files.1)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let b = instance(
        &kit,
        &url_with_credentials,
        denylist_options(&kit, &ns, b_connection),
    )
    .await;

    let (alice, alice_csrf) = login(&kit, "alice");
    let (bob_phone, _) = login(&kit, "bob");
    let (bob_laptop, bob_csrf) = login(&kit, "bob");
    for i in [&a, &b] {
        assert_eq!(i.me(&alice).await, Ok(()));
        assert_eq!(i.me(&bob_phone).await, Ok(()));
    }

    a.post("/session/logout", &alice, &alice_csrf).await;
    until(
        CONVERGE,
        "B refuses alice's session revoked on A",
        async || b.me(&alice).await == Err(Refusal::Revoked),
    )
    .await;
    b.post("/session/logout-all", &bob_laptop, &bob_csrf).await;
    until(
        CONVERGE,
        "A refuses bob's phone after logout-all on B",
        async || a.me(&bob_phone).await == Err(Refusal::Revoked),
    )
    .await;

    for i in [&a, &b] {
        assert!(i.store.flush(CONVERGE).await);
        let status = i.store.status();
        assert!(status.connected && status.failure.is_none(), "{status:?}");
    }
    // The revocations are in Redis under the namespace, written by the ACL user.
    assert!(redis.keys(&ns).len() >= 2, "{:?}", redis.keys(&ns));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_registry_lists_across_instances_over_tls() {
    let Some(redis) = tls_redis() else { return };
    let kit = TestKit::new();
    let ns = namespace();
    let options = || {
        RedisRegistryOptions::default()
            .connection(connection(redis))
            .namespace(&ns)
            .clock(kit.config().clock_handle())
    };
    let a = RedisRegistry::connect(&redis.url(), options()).unwrap();
    let b = RedisRegistry::connect(&redis.url(), options()).unwrap();
    let now = kit.now();
    let entry: SessionEntry = serde_json::from_value(serde_json::json!({
        "id": "listed-1", "sid": "sid-1", "sub": "alice", "created": now,
        "last_active": now, "fresh_at": now, "remember": false, "expires": now + 600,
    }))
    .unwrap();
    a.put(entry.clone()).unwrap();
    assert!(a.flush(CONVERGE).await, "{:?}", a.status());
    assert_eq!(b.try_list("alice", now).unwrap(), vec![entry]);
    b.remove("sid-1").unwrap();
    assert!(b.flush(CONVERGE).await, "{:?}", b.status());
    assert_eq!(a.try_list("alice", now).unwrap(), vec![]);
    for r in [&a, &b] {
        let status = r.status();
        assert!(status.connected && status.failure.is_none(), "{status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_a_tls_failure() {
    let Some(redis) = tls_redis() else { return };
    let kit = TestKit::new();
    let other = ca("some other CA").pem();
    let store = RedisDenylist::connect(
        &redis.url(),
        denylist_options(&kit, &namespace(), connection(redis).ca_pem(other.clone())),
    )
    .unwrap();
    assert_refused_with(&kit, store, RedisFailure::Tls).await;

    // The registry's reads fail at once with the error; its status names it too.
    let registry = RedisRegistry::connect(
        &redis.url(),
        RedisRegistryOptions::default()
            .connection(connection(redis).ca_pem(other))
            .namespace(namespace()),
    )
    .unwrap();
    let err = registry.try_list("alice", 0).unwrap_err().to_string();
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(registry.status().failure, Some(RedisFailure::Tls));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_client_certificate_the_server_asks_for_it_is_a_tls_failure() {
    let Some(redis) = tls_redis() else { return };
    let kit = TestKit::new();
    let connection = RedisConnection::default()
        .ca_pem(redis.ca_pem.clone())
        .username(USER)
        .password(PASSWORD)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let store = RedisDenylist::connect(
        &redis.url(),
        denylist_options(&kit, &namespace(), connection),
    )
    .unwrap();
    assert_refused_with(&kit, store, RedisFailure::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_auth_failure() {
    let Some(redis) = tls_redis() else { return };
    let kit = TestKit::new();
    let store = RedisDenylist::connect(
        &redis.url(),
        denylist_options(&kit, &namespace(), connection(redis).password("not-it")),
    )
    .unwrap();
    assert_refused_with(&kit, store, RedisFailure::Auth).await;

    // In the URL: the same.
    let url = format!("rediss://{USER}:not-it@127.0.0.1:{}/", redis.tls_port);
    let store = RedisDenylist::connect(
        &url,
        denylist_options(
            &kit,
            &namespace(),
            RedisConnection::default()
                .ca_pem(redis.ca_pem.clone())
                .client_cert_pem(redis.client_pem.0.clone(), redis.client_pem.1.clone()),
        ),
    )
    .unwrap();
    assert_refused_with(&kit, store, RedisFailure::Auth).await;

    let registry = RedisRegistry::connect(
        &redis.url(),
        RedisRegistryOptions::default()
            .connection(connection(redis).password("not-it"))
            .namespace(namespace()),
    )
    .unwrap();
    let err = registry.try_list("alice", 0).unwrap_err().to_string();
    assert!(!err.contains("not-it"), "{err}");
    assert_eq!(registry.status().failure, Some(RedisFailure::Auth));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_the_acl_user_may_not_touch_is_a_permission_failure() {
    let Some(redis) = tls_redis() else { return };
    let kit = TestKit::new();
    let store = RedisDenylist::connect(
        &redis.url(),
        denylist_options(&kit, "elsewhere:", connection(redis)),
    )
    .unwrap();
    assert_refused_with(&kit, store, RedisFailure::NoPermission).await;
}

#[tokio::test]
async fn tls_settings_that_cannot_work_are_errors_of_connect() {
    let backend =
        |r: Result<Arc<RedisDenylist>, jwt_session::RevocationError>| r.unwrap_err().to_string();
    let options = |c: RedisConnection| RedisDenylistOptions::default().connection(c);
    let ca = ca("a CA").pem();

    // A CA (or a client certificate) with a plain-text URL.
    let err = backend(RedisDenylist::connect(
        "redis://127.0.0.1:1/",
        options(RedisConnection::default().ca_pem(ca.clone())),
    ));
    assert!(err.contains("rediss://"), "{err}");
    let err = backend(RedisDenylist::connect(
        "redis://127.0.0.1:1/",
        options(RedisConnection::default().client_cert_pem(ca.clone(), "key")),
    ));
    assert!(err.contains("rediss://"), "{err}");
    // A CA bundle without a certificate, an unreadable CA file, a malformed client key.
    let err = backend(RedisDenylist::connect(
        "rediss://127.0.0.1:1/",
        options(RedisConnection::default().ca_pem("not a certificate")),
    ));
    assert!(err.contains("no PEM certificate"), "{err}");
    let err = backend(RedisDenylist::connect(
        "rediss://127.0.0.1:1/",
        options(RedisConnection::default().ca_file("/nonexistent/ca.pem")),
    ));
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    let err = backend(RedisDenylist::connect(
        "rediss://127.0.0.1:1/",
        options(RedisConnection::default().client_cert_pem(ca.clone(), "not a key")),
    ));
    assert!(err.contains("TLS"), "{err}");
    // The registry checks the same.
    let err = RedisRegistry::connect(
        "redis://127.0.0.1:1/",
        RedisRegistryOptions::default().connection(RedisConnection::default().ca_pem(ca)),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("rediss://"), "{err}");
    // The password never shows in a Debug print.
    let debug = format!("{:?}", RedisConnection::default().password("hunter2"));
    assert!(
        !debug.contains("hunter2") && debug.contains("redacted"),
        "{debug}"
    );
}
