#![allow(clippy::panic)]

//! A `redis-server` child process on a free loopback port, for the tests of the Redis
//! backends and of several example servers sharing one Redis. Without the binary a test
//! prints `SKIPPED:` and passes — except under `CI=true`, where it fails. Also a TCP
//! [`Proxy`] in front of one, to cut, stall and restore an instance's link.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `redis-server` on a loopback port, killed when dropped.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Start one on a free port; `None` (after a loud `SKIPPED:`) if the binary is missing
    /// outside CI.
    pub(crate) fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "redis-server not found, and CI=true: install it (apt-get install -y \
                     redis-server) — the Redis backend must be tested in CI"
                );
            }
            // Straight to the process's stderr: libtest would capture `eprintln!`.
            writeln!(
                std::io::stderr(),
                "SKIPPED: redis-server not found; the Redis backend was NOT tested \
                 (apt-get install -y redis-server)"
            )
            .ok();
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self { port, child: None };
        server.spawn();
        Some(server)
    }

    pub(crate) fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pong() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut buf = [0_u8; 7];
        s.set_read_timeout(Some(Duration::from_millis(500))).ok();
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: no goodbye to the clients, and (no persistence) every key is lost.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Start again, empty, on the same port.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A plain connection for raw commands.
    pub(crate) fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Is `redis-server` installed? Without it a test prints `SKIPPED:` and passes — except
/// under `CI=true`, where this panics. `what` names what goes untested.
pub(crate) fn redis_available(what: &str) -> bool {
    if Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "redis-server not found, and CI=true: install it (apt-get install -y redis-server) \
             — {what} must be tested in CI"
        );
    }
    // Straight to the process's stderr: libtest would capture `eprintln!`.
    writeln!(
        std::io::stderr(),
        "SKIPPED: redis-server not found; {what} was NOT tested (apt-get install -y redis-server)"
    )
    .ok();
    false
}

/// A free loopback port (free when asked; the server binds it right after).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` (or Sentinel) run by a small shell that kills it (SIGKILL) when its
/// stdin closes — that is, when this test process exits, however it exits, or at
/// [`stop`](Self::stop). For servers held in a `static` (never dropped) and for servers a
/// test kills.
pub(crate) struct SharedServer {
    child: Child,
    stdin: std::process::ChildStdin,
}

impl SharedServer {
    /// Start `redis-server <args>` (its log to `log`, if given) and wait until `ready`.
    pub(crate) fn spawn(
        args: &[String],
        log: Option<&std::path::Path>,
        ready: impl Fn() -> bool,
    ) -> Self {
        let out = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("redis log file")),
            None => Stdio::null(),
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("redis-server \"$@\" & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid")
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            if Instant::now() >= deadline {
                let log = log.and_then(|p| std::fs::read_to_string(p).ok());
                panic!("redis-server did not answer; args: {args:?}; log: {log:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, stdin }
    }

    /// Kill it now (SIGKILL: no goodbye to clients or replicas) and wait until it is gone.
    pub(crate) fn stop(self) {
        let Self { mut child, stdin } = self;
        drop(stdin);
        child.wait().ok();
    }
}

/// A plain `redis-server` (no TLS, no persistence) on loopback `port`, ready.
pub(crate) fn plain_server(port: u16) -> SharedServer {
    let args = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
        .into_iter()
        .chain(["--save", "", "--appendonly", "no"])
        .map(str::to_owned)
        .collect::<Vec<_>>();
    SharedServer::spawn(&args, None, || pong(port))
}

/// Does a plain-text `redis-server` answer `PING` on `port`?
pub(crate) fn pong(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut buf = [0_u8; 7];
    s.set_read_timeout(Some(Duration::from_millis(500))).ok();
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

// ---------------------------------------------------------------------------------------
// A TCP proxy that can cut one instance off
// ---------------------------------------------------------------------------------------

/// Forwards a loopback port to Redis (created `open`, or refusing until `restore`); `cut` drops every connection and refuses new ones
/// until `restore`; `stall` holds every byte (a black-holed, very slow link) until
/// `unstall`.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    open: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

/// Copy one direction, holding each chunk while the link is stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0_u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    to.shutdown().await.ok();
}

impl Proxy {
    pub(crate) async fn start(target: u16, open: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(open));
        let stalled = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (o, st, c) = (open.clone(), stalled.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: connection closed at once
                }
                let st = st.clone();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let (in_r, in_w) = inbound.into_split();
                        let (out_r, out_w) = outbound.into_split();
                        tokio::join!(pump(in_r, out_w, st.clone()), pump(out_r, in_w, st));
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            port,
            open,
            stalled,
            conns,
            accept,
        }
    }

    pub(crate) fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn unstall(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub(crate) fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
