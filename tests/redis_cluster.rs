//! Redis Cluster: three masters and three replicas, each a `redis-server` on a loopback
//! port (`--cluster-enabled yes`, joined with `redis-cli --cluster create`), and instances
//! that reach it through `redis+cluster://` (each given a different node to start from).
//! A revocation's key, change-log entry and sharded publish (`SPUBLISH`) share the slot of
//! the namespace's hash tag, so they stay one transaction on one node; every instance
//! `SSUBSCRIBE`s on that node. Sessions are revoked before the master of that slot is
//! killed (SIGKILL), while the cluster promotes its replica, and after: every revocation
//! reaches every instance and the promoted master (an instance started after the failover
//! learns them all from it), no revoked session is accepted anywhere, and the sessions
//! nobody revoked still are.
//!
//! Without a `redis-server` binary the test prints `SKIPPED:` and passes, except under
//! `CI=true`, where it fails.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use jwt_session::testing::TestKit;
use jwt_session::{RedisDenylist, RedisDenylistOptions, RedisRegistry, RedisRegistryOptions};

use support::fleet::{CONVERGE, Sess, instance, login, until_converged};
use support::redis::{SharedServer, free_port, pong, redis_available};

/// The namespace of the test: its keys live in the slot of `{cluster:}`.
const NS: &str = "cluster:";

fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(1))?;
    cmd.query(&mut con)
}

/// The port of the master serving `slot`, as the node on `port` sees the cluster.
fn master_of(port: u16, slot: u16) -> Option<u16> {
    let nodes: String = query(port, redis::cmd("CLUSTER").arg("NODES")).ok()?;
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let flags = fields.get(2)?;
        if !flags.contains("master") || flags.contains("fail") {
            return None;
        }
        let serves = fields.iter().skip(8).any(|range| {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
        });
        let addr = fields.get(1)?.split('@').next()?;
        serves.then(|| addr.rsplit_once(':')?.1.parse().ok())?
    })
}

struct Cluster {
    nodes: Vec<(u16, Option<SharedServer>)>,
    _dir: tempfile::TempDir,
}

/// Six nodes, three masters with a replica each, every slot served.
fn start() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let nodes = ports
        .iter()
        .map(|&port| {
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &dir.path()
                    .join(format!("nodes-{port}.conf"))
                    .display()
                    .to_string(),
                "--cluster-node-timeout",
                "1000",
                // A replica takes over however long ago it last heard its master (a
                // fresh cluster's replicas may not have heard it recently enough).
                "--cluster-replica-validity-factor",
                "0",
                "--dir",
                &dir.path().display().to_string(),
            ]
            .into_iter()
            .map(str::to_owned)
            .collect();
            let log = dir.path().join(format!("{port}.log"));
            (
                port,
                Some(SharedServer::spawn(&args, Some(&log), || pong(port))),
            )
        })
        .collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .expect("run redis-cli --cluster create");
    assert!(
        out.status.success(),
        "redis-cli --cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + CONVERGE;
    for &port in &ports {
        loop {
            let info: String = query(port, redis::cmd("CLUSTER").arg("INFO")).unwrap_or_default();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {port} never saw the cluster ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Cluster { nodes, _dir: dir }
}

fn options(kit: &TestKit) -> RedisDenylistOptions {
    RedisDenylistOptions::default()
        .namespace(NS)
        .clock(kit.config().clock_handle())
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .health_check_interval(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_flow_through_a_cluster_and_survive_a_failover() {
    if !redis_available("Redis Cluster") {
        return;
    }
    let mut cluster = tokio::task::spawn_blocking(start).await.unwrap();
    let ports: Vec<u16> = cluster.nodes.iter().map(|(p, _)| *p).collect();
    let url = |i: usize| format!("redis+cluster://127.0.0.1:{}", ports[i]);
    let kit = TestKit::new();
    let (a, b) = (
        instance(&kit, &url(0), NS).await,
        instance(&kit, &url(4), NS).await,
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
    assert!(a.store.flush(CONVERGE).await && b.store.flush(CONVERGE).await);

    // Everything in the slot of the namespace's hash tag, on one master: the change log
    // holds the ten, and both instances listen there with sharded pub/sub.
    let slot: u16 = query(
        ports[0],
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(format!("{{{NS}}}changes")),
    )
    .unwrap();
    let master = master_of(ports[0], slot).expect("a master for the namespace's slot");
    let logged: usize = query(master, redis::cmd("XLEN").arg(format!("{{{NS}}}changes"))).unwrap();
    assert_eq!(logged, 10);
    let buckets: Vec<String> = query(
        master,
        redis::cmd("KEYS").arg(format!("{{{NS}}}revoked:b:*")),
    )
    .unwrap();
    let held: usize = buckets
        .iter()
        .map(|b| query::<usize>(master, redis::cmd("HLEN").arg(b)).unwrap())
        .sum();
    assert_eq!(held, 10, "{buckets:?}");
    let (_, listeners): (String, usize) = query(
        master,
        redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(format!("{{{NS}}}revocations")),
    )
    .unwrap();
    assert_eq!(
        listeners, 2,
        "both instances SSUBSCRIBE on the slot's master"
    );

    // Kill that master; keep revoking while the cluster promotes its replica.
    let victim = cluster
        .nodes
        .iter_mut()
        .find(|(p, _)| *p == master)
        .and_then(|(_, s)| s.take())
        .unwrap();
    tokio::task::spawn_blocking(move || victim.stop())
        .await
        .unwrap();
    let survivor = *ports.iter().find(|&&p| p != master).unwrap();
    let promoted_at = Instant::now() + CONVERGE;
    let mut n = 0;
    loop {
        let now_master = master_of(survivor, slot);
        if now_master.is_some_and(|p| p != master) {
            break;
        }
        assert!(Instant::now() < promoted_at, "the replica was not promoted");
        if let Some(s) = sessions.pop() {
            [&a, &b][n % 2].logout(&s).await;
            revoked.push(s);
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(n > 0, "nothing was revoked during the failover");

    // After: the rest, then every revocation refused everywhere.
    for (n, s) in std::mem::take(&mut sessions).into_iter().enumerate() {
        [&a, &b][n % 2].logout(&s).await;
        revoked.push(s);
    }
    until_converged(&[&a, &b], &revoked, &live, "after the failover").await;
    for i in [&a, &b] {
        assert!(i.store.flush(CONVERGE).await, "{:?}", i.store.status());
        assert!(i.store.status().connected, "{:?}", i.store.status());
    }

    // None lost in Redis either: an instance started now, from another node, learns every
    // one from the promoted master (a full read: SCAN on the slot's node).
    let c = instance(&kit, &url(if master == ports[2] { 3 } else { 2 }), NS).await;
    until_converged(&[&c], &revoked, &live, "a new instance after the failover").await;
    assert_eq!(c.store.status().full_syncs, 1);
    assert_eq!(revoked.len(), 50);
}

#[tokio::test]
async fn cluster_urls_are_checked() {
    let kit = TestKit::new();
    for (url, says) in [
        ("redis+cluster://127.0.0.1:7000/2", "only database 0"),
        ("redis+cluster://127.0.0.1", "host:port"),
        ("redis+cluster://127.0.0.1:7000,:7001", "host:port"),
    ] {
        let err = RedisDenylist::connect(url, options(&kit)).err().unwrap();
        assert!(err.to_string().contains(says), "{url}: {err}");
    }
    // The session registry's scripts are not cluster-ready: a clear error, not a
    // registry that fails at its first write.
    let err = RedisRegistry::connect(
        "redis+cluster://127.0.0.1:7000",
        RedisRegistryOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("not supported"), "{err}");
}
