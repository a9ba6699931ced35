//! Sentinel failover: a master, a replica and one Sentinel (quorum 1), each a
//! `redis-server` on a loopback port, and instances that reach Redis through the Sentinel
//! (`redis+sentinel://127.0.0.1:<port>/jwt`). Sessions are revoked before the master is
//! killed (SIGKILL), while the Sentinel notices and promotes the replica, and after: every
//! revocation reaches every instance and the promoted master (an instance started after
//! the failover learns them all from it), and no revoked session is accepted anywhere,
//! while the sessions nobody revoked still are. An instance and a registry pointed straight
//! at the replica meet a typed `ReadOnly` failure and keep their writes until the replica
//! is promoted.
//!
//! Without a `redis-server` binary the test prints `SKIPPED:` and passes, except under
//! `CI=true`, where it fails.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use jwt_session::testing::TestKit;
use jwt_session::{
    RedisFailure, RedisRegistry, RedisRegistryOptions, SessionEntry, SessionRegistry,
};

use support::fleet::{CONVERGE, Sess, instance, login, until_converged};
use support::redis::{SharedServer, free_port, pong, redis_available};

const MASTER_NAME: &str = "jwt";

fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(1))?;
    cmd.query(&mut con)
}

/// The master's port, as the Sentinel says.
fn master_port(sentinel: u16) -> Option<u16> {
    let addr: Option<(String, u16)> = query(
        sentinel,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME),
    )
    .ok()?;
    addr.map(|(_, port)| port)
}

struct Topology {
    master: SharedServer,
    master_port: u16,
    replica_port: u16,
    sentinel_port: u16,
    _replica: SharedServer,
    _sentinel: SharedServer,
    _dir: tempfile::TempDir,
}

fn start() -> Topology {
    let dir = tempfile::tempdir().unwrap();
    let (master_port, replica_port, sentinel_port) = (free_port(), free_port(), free_port());
    let plain = |port: u16| {
        vec![
            "--port".to_owned(),
            port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--save".to_owned(),
            String::new(),
            "--appendonly".to_owned(),
            "no".to_owned(),
            // A replica stores the master's snapshot as it syncs: here, not in the
            // working directory (the repository's, under `cargo test`).
            "--dir".to_owned(),
            dir.path().display().to_string(),
        ]
    };
    let master = SharedServer::spawn(
        &plain(master_port),
        Some(&dir.path().join("master.log")),
        || pong(master_port),
    );
    let mut args = plain(replica_port);
    args.extend([
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        master_port.to_string(),
    ]);
    let replica = SharedServer::spawn(&args, Some(&dir.path().join("replica.log")), || {
        let info: String =
            query(replica_port, redis::cmd("INFO").arg("replication")).unwrap_or_default();
        info.contains("master_link_status:up")
    });
    // Sentinel rewrites its configuration file: it must be its own, and writable.
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sentinel_port}\nbind 127.0.0.1\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {MASTER_NAME} 500\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n"
        ),
    )
    .unwrap();
    let sentinel = SharedServer::spawn(
        &[conf.display().to_string(), "--sentinel".to_owned()],
        Some(&dir.path().join("sentinel.log")),
        || {
            // Ready once it knows the replica it would promote.
            let replicas: Vec<redis::Value> = query(
                sentinel_port,
                redis::cmd("SENTINEL").arg("replicas").arg(MASTER_NAME),
            )
            .unwrap_or_default();
            !replicas.is_empty()
        },
    );
    Topology {
        master,
        master_port,
        replica_port,
        sentinel_port,
        _replica: replica,
        _sentinel: sentinel,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_keep_flowing_through_a_sentinel_failover() {
    if !redis_available("Sentinel failover") {
        return;
    }
    let topology = tokio::task::spawn_blocking(start).await.unwrap();
    let url = format!(
        "redis+sentinel://127.0.0.1:{}/{MASTER_NAME}",
        topology.sentinel_port
    );
    let kit = TestKit::new();
    let ns = "failover:";
    let (a, b) = (
        instance(&kit, &url, ns).await,
        instance(&kit, &url, ns).await,
    );
    let mut sessions: Vec<Sess> = (0..60).map(|i| login(&kit, &format!("u{i}"))).collect();
    let live: Vec<Sess> = sessions.drain(..10).collect();
    let mut revoked = Vec::new();

    // Before: revoked on A and B in turn, refused everywhere.
    for (n, s) in sessions.drain(..10).enumerate() {
        [&a, &b][n % 2].logout(&s).await;
        revoked.push(s);
    }
    until_converged(&[&a, &b], &revoked, &live, "before the failover").await;

    // An instance pointed straight at the replica (not through the Sentinel) cannot write:
    // a typed `ReadOnly` failure, its revocation kept for later, not lost.
    let replica_url = format!("redis://127.0.0.1:{}/", topology.replica_port);
    let d = instance(&kit, &replica_url, ns).await;
    let on_replica = sessions.pop().unwrap();
    d.logout(&on_replica).await;
    let registry = RedisRegistry::connect(
        &replica_url,
        RedisRegistryOptions::default()
            .namespace(ns)
            .clock(kit.config().clock_handle())
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )
    .unwrap();
    let now = kit.now();
    let entry: SessionEntry = serde_json::from_value(serde_json::json!({
        "id": "listed-1", "sid": "sid-1", "sub": "u0", "created": now,
        "last_active": now, "fresh_at": now, "remember": false, "expires": now + 600,
    }))
    .unwrap();
    registry.put(entry.clone()).unwrap();
    let deadline = Instant::now() + CONVERGE;
    while d.store.status().failure != Some(RedisFailure::ReadOnly)
        || registry.status().failure != Some(RedisFailure::ReadOnly)
    {
        assert!(
            Instant::now() < deadline,
            "no ReadOnly failure: {:?} {:?}",
            d.store.status(),
            registry.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(d.store.status().pending_publishes > 0);
    assert!(registry.status().pending > 0);

    // Kill the master; keep revoking while the Sentinel notices and promotes the replica.
    let (master, old) = (topology.master, topology.master_port);
    tokio::task::spawn_blocking(move || master.stop())
        .await
        .unwrap();
    let promoted_at = Instant::now() + CONVERGE;
    let mut n = 0;
    while master_port(topology.sentinel_port) == Some(old) {
        assert!(Instant::now() < promoted_at, "the replica was not promoted");
        if let Some(s) = sessions.pop() {
            [&a, &b][n % 2].logout(&s).await;
            revoked.push(s);
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        master_port(topology.sentinel_port),
        Some(topology.replica_port)
    );
    assert!(n > 0, "nothing was revoked during the failover");
    // The replica is the master now: what waited on D and in the registry gets written.
    revoked.push(on_replica);
    assert!(registry.flush(CONVERGE).await, "{:?}", registry.status());
    assert_eq!(registry.try_list("u0", now).unwrap(), vec![entry]);

    // After: the rest, then every revocation refused everywhere.
    for (n, s) in std::mem::take(&mut sessions).into_iter().enumerate() {
        [&a, &b][n % 2].logout(&s).await;
        revoked.push(s);
    }
    until_converged(&[&a, &b, &d], &revoked, &live, "after the failover").await;
    for i in [&a, &b, &d] {
        assert!(i.store.flush(CONVERGE).await, "{:?}", i.store.status());
        assert!(i.store.status().connected, "{:?}", i.store.status());
    }

    // None lost in Redis either: an instance started now learns every one from the
    // promoted master.
    let c = instance(&kit, &url, ns).await;
    until_converged(&[&c], &revoked, &live, "a new instance after the failover").await;
    assert_eq!(revoked.len(), 50);
    assert!(sessions.is_empty());
}
