//! A per-request round-robin HTTP/1.1 balancer for the multi-instance bench
//! (`bench/multi.sh`): no sticky sessions, as a balancer in front of stateless instances.
//!
//! ```text
//! balancer [--addr 127.0.0.1:0] BACKEND_ADDR...
//! ```
//!
//! Request *k* (counted over every client connection) goes to backend *k mod N*, so every
//! session token reaches every instance. Each client connection gets its own keep-alive
//! connection to each backend, opened on first use: HTTP/1 requests on one connection are
//! sequential, so no pool is needed. Requests and responses are streamed as they are; a
//! backend that cannot be reached closes the client's connection (wrk counts it as an
//! error). Loopback addresses only. Prints `listening on http://ADDR` on stdout.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self as client, SendRequest};
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: balancer [--addr 127.0.0.1:0] BACKEND_ADDR...";

/// The next backend, over all connections: true round robin.
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn parse_args() -> Result<(SocketAddr, Vec<SocketAddr>), String> {
    let mut addr: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let mut backends = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let text = if arg == "--addr" {
            let value = args.next().ok_or(USAGE)?;
            addr = value.parse().map_err(|e| format!("--addr {value:?}: {e}"))?;
            continue;
        } else {
            arg.trim_start_matches("http://").to_owned()
        };
        backends.push(
            text.parse::<SocketAddr>()
                .map_err(|e| format!("backend {text:?}: {e}\n{USAGE}"))?,
        );
    }
    if backends.is_empty() {
        return Err(USAGE.into());
    }
    if !addr.ip().is_loopback() || backends.iter().any(|b| !b.ip().is_loopback()) {
        return Err("loopback addresses only".into());
    }
    Ok((addr, backends))
}

/// One client connection's keep-alive links, one per backend (opened on first use).
type Links = Arc<Mutex<Vec<Option<SendRequest<Incoming>>>>>;

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Box::new(e)
}

/// Send `req` to the next backend on this connection's link to it, opening it if needed.
async fn forward(
    links: Links,
    backends: Arc<Vec<SocketAddr>>,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, Error> {
    let i = NEXT.fetch_add(1, Ordering::Relaxed) % backends.len();
    let mut links = links.lock().await;
    let link = &mut links[i];
    if link.as_ref().is_none_or(SendRequest::is_closed) {
        let stream = TcpStream::connect(backends[i]).await.map_err(boxed)?;
        stream.set_nodelay(true).map_err(boxed)?;
        let (sender, conn) = client::handshake(TokioIo::new(stream))
            .await
            .map_err(boxed)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("balancer: backend connection: {e}");
            }
        });
        *link = Some(sender);
    }
    let Some(sender) = link.as_mut() else {
        return Err("no backend link".into());
    };
    sender.ready().await.map_err(boxed)?;
    sender.send_request(req).await.map_err(boxed)
}

async fn run(addr: SocketAddr, backends: Vec<SocketAddr>) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    eprintln!("balancer: {} backend(s), round robin per request", backends.len());
    let backends = Arc::new(backends);
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let backends = backends.clone();
        tokio::spawn(async move {
            let links: Links = Arc::new(Mutex::new((0..backends.len()).map(|_| None).collect()));
            let service = service_fn(move |req| forward(links.clone(), backends.clone(), req));
            // A client that goes away, or a backend error, ends the connection.
            let _ = server::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> ExitCode {
    let (addr, backends) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("balancer: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the bench pins the balancer to one CPU.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("balancer: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(addr, backends)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("balancer: {e}");
            ExitCode::from(2)
        }
    }
}
