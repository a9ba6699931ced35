//! The HTTP bench server: the same trivial handler (`GET /protected` → `hello`) behind
//! one of several session stacks, on a loopback address.
//!
//! ```text
//! bench-server MODE [--addr 127.0.0.1:0] [--reissue-after 1h] [--idle 2h]
//! ```
//!
//! | mode | stack in front of the handler |
//! | --- | --- |
//! | `bare` | plain axum, no session (the baseline) |
//! | `noop-layer` | plain axum with an identity tower layer (`MapResponseLayer`) on the router: what axum's `Router::layer` costs any middleware (the extra boxed route level), for reference |
//! | `eddsa` | jwt-session, Ed25519 key, verified-token cache on (the default, 10,000) |
//! | `eddsa-nocache` | jwt-session, Ed25519 key, `.token_cache(0)` |
//! | `hs256` | jwt-session, HS256 key, cache on |
//! | `tower-sessions` | tower-sessions + `MemoryStore`; the handler reads `user` from the session |
//!
//! Output on stdout, in this order:
//!
//! ```text
//! listening on http://127.0.0.1:PORT
//! cookie: NAME=VALUE
//! ```
//!
//! The cookie is a valid session for `alice`, made at start by sending `GET /login` to the
//! server's own router (the same route is served, unmeasured, for manual checks). `bare`
//! prints an EdDSA jwt-session cookie too, so its requests carry the same bytes as the
//! `eddsa` modes' (bare axum ignores it).
//!
//! `--reissue-after` (default 1 h, so the measured requests never reissue and the cached
//! path is what is measured) and `--idle` (default 2 h; it must be longer than
//! reissue-after) apply to the jwt-session modes.
//!
//! For several instances sharing sessions (`bench/multi.sh`), jwt-session modes only:
//!
//! * `--key FILE`: sign and verify with the Ed25519 key in FILE (PEM), created there if
//!   missing, instead of a fresh key per process (EdDSA modes);
//! * `--sessions N --cookies-out FILE`: log in N times (N distinct sessions) and write
//!   their `NAME=VALUE` cookies to FILE, one a line;
//! * `--count-cold`: count full verifications (the crate's
//!   `jwt_session_cold_verifies_total` metric: a verified-token cache miss) and serve the
//!   count, unprotected, as `GET /stats` → `cold_verifies=N`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use jwt_session::{Algorithm, generate_key};
use jwt_session::{Key, Keyring, Login, MemoryDenylist, Session, SessionConfig, SessionLayer};
use tower::ServiceExt as _;

const USAGE: &str = "usage: bench-server bare|noop-layer|eddsa|eddsa-nocache|hs256|tower-sessions \
                     [--addr 127.0.0.1:0] [--reissue-after 1h] [--idle 2h] [--key FILE] \
                     [--sessions N --cookies-out FILE] [--count-cold]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bare,
    NoopLayer,
    EdDsa,
    EdDsaNoCache,
    Hs256,
    TowerSessions,
}

struct Args {
    mode: Mode,
    addr: SocketAddr,
    reissue_after: Duration,
    idle: Duration,
    key: Option<PathBuf>,
    sessions: usize,
    cookies_out: Option<PathBuf>,
    count_cold: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("bare") => Mode::Bare,
        Some("noop-layer") => Mode::NoopLayer,
        Some("eddsa") => Mode::EdDsa,
        Some("eddsa-nocache") => Mode::EdDsaNoCache,
        Some("hs256") => Mode::Hs256,
        Some("tower-sessions") => Mode::TowerSessions,
        Some(other) => return Err(format!("unknown mode {other:?}\n{USAGE}")),
        None => return Err(USAGE.into()),
    };
    let mut parsed = Args {
        mode,
        addr: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        reissue_after: Duration::from_secs(3600),
        idle: Duration::from_secs(2 * 3600),
        key: None,
        sessions: 1,
        cookies_out: None,
        count_cold: false,
    };
    while let Some(flag) = args.next() {
        if flag == "--count-cold" {
            parsed.count_cold = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let duration = |v: &str| {
            humantime::parse_duration(v).map_err(|e| format!("{flag} {v:?}: {e}\n{USAGE}"))
        };
        match flag.as_str() {
            "--addr" => {
                parsed.addr = value
                    .parse()
                    .map_err(|e| format!("--addr {value:?}: {e}"))?;
                if !parsed.addr.ip().is_loopback() {
                    return Err(format!("--addr {value:?}: loopback addresses only"));
                }
            }
            "--reissue-after" => parsed.reissue_after = duration(&value)?,
            "--idle" => parsed.idle = duration(&value)?,
            "--key" => parsed.key = Some(PathBuf::from(value)),
            "--sessions" => {
                parsed.sessions = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("--sessions {value:?}: a whole number >= 1"))?;
            }
            "--cookies-out" => parsed.cookies_out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {flag:?}\n{USAGE}")),
        }
    }
    if parsed.sessions > 1 && parsed.cookies_out.is_none() {
        return Err(format!("--sessions needs --cookies-out\n{USAGE}"));
    }
    Ok(parsed)
}

/// The measured handler of the no-session baseline.
async fn protected_bare() -> &'static str {
    "hello"
}

/// The measured handler behind jwt-session: the session must be there (401 otherwise).
async fn protected_jwt(session: Session) -> &'static str {
    std::hint::black_box(session.subject());
    "hello"
}

/// The measured handler behind tower-sessions: reads a value from the existing session.
async fn protected_tower(session: tower_sessions::Session) -> Result<&'static str, StatusCode> {
    match session.get::<String>("user").await {
        Ok(Some(user)) => {
            std::hint::black_box(user);
            Ok("hello")
        }
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

async fn login_jwt() -> Result<(Login, &'static str), StatusCode> {
    let login = Login::new("alice", ()).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok((login, "logged in"))
}

async fn login_tower(session: tower_sessions::Session) -> Result<&'static str, StatusCode> {
    session
        .insert("user", "alice")
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok("logged in")
}

/// The Ed25519 key in `path` (PEM), written there first if the file does not exist, so
/// that several instances verify each other's tokens.
fn shared_key(path: &Path) -> Result<Key, String> {
    if !path.exists() {
        let generated = generate_key(Algorithm::EdDSA, "bench-").map_err(|e| e.to_string())?;
        // Written whole under another name, then renamed: a concurrent reader never sees
        // half a key.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, generated.private_file.as_bytes())
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Key::from_pem("bench-shared", &pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// Full verifications counted by [`ColdCounter`] (`--count-cold`).
static COLD_VERIFIES: AtomicU64 = AtomicU64::new(0);

/// A `metrics` recorder that keeps one counter, `jwt_session_cold_verifies_total`, and
/// drops every other metric.
struct ColdCounter;

impl metrics::Recorder for ColdCounter {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        if key.name() == "jwt_session_cold_verifies_total" {
            metrics::Counter::from_arc(Arc::new(ColdVerifies))
        } else {
            metrics::Counter::noop()
        }
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

struct ColdVerifies;

impl metrics::CounterFn for ColdVerifies {
    fn increment(&self, value: u64) {
        COLD_VERIFIES.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        COLD_VERIFIES.fetch_max(value, Ordering::Relaxed);
    }
}

async fn stats() -> String {
    format!("cold_verifies={}\n", COLD_VERIFIES.load(Ordering::Relaxed))
}

fn jwt_router(args: &Args, alg: Algorithm, cache: bool) -> Result<Router, String> {
    let key = match (&args.key, alg) {
        (Some(path), Algorithm::EdDSA) => shared_key(path)?,
        (Some(_), _) => return Err("--key: EdDSA modes only".into()),
        (None, _) => generate_key(alg, "bench-").map_err(|e| e.to_string())?.key,
    };
    let mut builder = SessionConfig::builder(Keyring::new(key).map_err(|e| e.to_string())?)
        .development_cookies()
        .idle_timeout(args.idle)
        .reissue_after(args.reissue_after);
    if !cache {
        builder = builder.token_cache(0);
    }
    let config = builder.build().map_err(|e| e.to_string())?;
    let denylist = MemoryDenylist::builder()
        .build(config.clock())
        .map_err(|e| e.to_string())?;
    denylist.spawn_sweeper(config.clock_handle(), Duration::from_secs(60));
    Ok(Router::new()
        .route("/protected", get(protected_jwt))
        .route("/login", get(login_jwt))
        .layer(SessionLayer::<()>::new(
            config,
            denylist as Arc<dyn jwt_session::RevocationStore>,
        )))
}

fn tower_router() -> Router {
    let store = tower_sessions::MemoryStore::default();
    let layer = tower_sessions::SessionManagerLayer::new(store).with_secure(false);
    Router::new()
        .route("/protected", get(protected_tower))
        .route("/login", get(login_tower))
        .layer(layer)
}

/// `GET /login` on `app`; the `NAME=VALUE` of the cookie it sets.
async fn login_cookie(app: &Router) -> Result<String, String> {
    let req = Request::get("/login")
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let res = app
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| format!("login: {e}"))?;
    if res.status() != StatusCode::OK {
        return Err(format!("login answered {}", res.status()));
    }
    let set_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .ok_or("login set no cookie")?;
    let pair = set_cookie.split(';').next().unwrap_or_default().trim();
    Ok(pair.to_owned())
}

/// Check that the cookie opens `/protected` on `app` before serving.
async fn check_cookie(app: &Router, cookie: &str) -> Result<(), String> {
    let req = Request::get("/protected")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let res = app.clone().oneshot(req).await.map_err(|e| e.to_string())?;
    if res.status() == StatusCode::OK {
        Ok(())
    } else {
        Err(format!(
            "the login cookie got {} on /protected",
            res.status()
        ))
    }
}

async fn run(args: Args) -> Result<(), String> {
    let (app, cookie) = match args.mode {
        Mode::Bare | Mode::NoopLayer => {
            // Same request bytes as the eddsa modes: a real EdDSA session cookie, ignored.
            let jwt = jwt_router(&args, Algorithm::EdDSA, true)?;
            let cookie = login_cookie(&jwt).await?;
            let app = Router::new()
                .route("/protected", get(protected_bare))
                .route("/login", get(|| async { "no sessions here" }));
            let app = if args.mode == Mode::NoopLayer {
                app.layer(tower::util::MapResponseLayer::new(
                    |res: axum::response::Response| res,
                ))
            } else {
                app
            };
            (app, cookie)
        }
        Mode::EdDsa | Mode::EdDsaNoCache | Mode::Hs256 => {
            let (alg, cache) = match args.mode {
                Mode::EdDsa => (Algorithm::EdDSA, true),
                Mode::EdDsaNoCache => (Algorithm::EdDSA, false),
                _ => (Algorithm::HS256, true),
            };
            let app = jwt_router(&args, alg, cache)?;
            let cookie = login_cookie(&app).await?;
            if let Some(path) = &args.cookies_out {
                let mut lines = String::new();
                for _ in 0..args.sessions {
                    lines.push_str(&login_cookie(&app).await?);
                    lines.push('\n');
                }
                std::fs::write(path, lines)
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
            }
            (app, cookie)
        }
        Mode::TowerSessions => {
            let app = tower_router();
            let cookie = login_cookie(&app).await?;
            (app, cookie)
        }
    };
    check_cookie(&app, &cookie).await?;
    let app = if args.count_cold {
        metrics::set_global_recorder(ColdCounter).map_err(|e| format!("metrics recorder: {e}"))?;
        // After the session layer: not behind it, not counted.
        app.route("/stats", get(stats))
    } else {
        app
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("binding {}: {e}", args.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    println!("cookie: {cookie}");
    eprintln!(
        "bench-server: mode {:?}, {} worker thread(s), reissue-after {:?}, idle {:?}",
        args.mode,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.reissue_after,
        args.idle
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench-server: {e}");
            return ExitCode::from(2);
        }
    };
    // One worker per CPU this process may run on (`taskset -c 1` → one worker).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-server: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-server: {e}");
            ExitCode::from(2)
        }
    }
}
