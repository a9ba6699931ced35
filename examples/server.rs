//! The example server: `cargo run --example server`.
//!
//! Starts with no set-up on `127.0.0.1:3000`, signs with the keys in `keys/` (development
//! keys: it warns) and journals revocations and its session registry under `data/`. Demo users: `alice` /
//! `wonderland`, `bob` / `builder`.
//!
//! | env | default | meaning |
//! | --- | --- | --- |
//! | `JWT_SESSION_ADDR` | `127.0.0.1:3000` | listen address (`127.0.0.1:0` picks a free port) |
//! | `JWT_SESSION_IDLE` | `15m` | idle timeout (humantime: `3s`, `15m`, `1h`) |
//! | `JWT_SESSION_ABSOLUTE` | `8h` | absolute timeout |
//! | `JWT_SESSION_REISSUE_AFTER` | `60s` | reissue a token once it is this old |
//! | `JWT_SESSION_LEEWAY` | `5s` | clock-skew leeway |
//! | `JWT_SESSION_KEYS` | `keys` | key directory |
//! | `JWT_SESSION_DATA` | `data` | data folder: the revocation journal and `sessions.jsonl` (the session registry's journal) |
//! | `JWT_SESSION_SECURE_COOKIES` | unset | `1`: `__Host-` + `Secure` cookies (behind HTTPS) |
//! | `JWT_SESSION_REDIS_URL` | unset | shared revocation on Redis (`redis://host:port/`, `rediss://user:password@host:port/` for TLS with an ACL user, `redis+sentinel://host:port,host:port/<master>`, `redis+cluster://host:port,host:port`; needs `--features redis`); a signing instance also shares its public keys there and trusts the other instances' ([`jwt_session::RedisKeyShare`]) |
//! | `JWT_SESSION_REDIS_CA` | unset | a PEM CA bundle for a `rediss://` Redis whose certificate a private CA signed |
//! | `JWT_SESSION_FRESH` | `5m` | how recent a login (or re-authentication) must be for `POST /api/password` |
//! | `JWT_SESSION_REMEMBER_IDLE` | `7d` | idle timeout of a remembered ("remember me") session |
//! | `JWT_SESSION_REMEMBER_ABSOLUTE` | `30d` | absolute timeout of a remembered session |
//! | `JWT_SESSION_DENYLIST_CAPACITY` | `1000000` | live revocations the memory denylist holds |
//! | `JWT_SESSION_JWKS_URL` | unset | verify-only instance: the issuer's JWK Set (no private key; `POST /login` answers 404) |
//! | `JWT_SESSION_JWKS_REFRESH` | `30s` | least interval between two refreshes of that key set |
//! | `JWT_SESSION_JWKS_CA` | unset | a PEM CA bundle for an `https://` key set whose certificate a private CA signed |
//! | `JWT_SESSION_ROTATE_EVERY` | unset | rotate the signer on this schedule (the key directory is watched in every mode) |
//! | `JWT_SESSION_ROTATE_LEAD` | `5m` | publish the next signer (verify-only, in the JWK Set) this long before it signs |
//!
//! The first line on stdout is `listening on http://ADDR`, with the real port.
//!
//! Session lifecycle: `POST /login` takes `"remember": true` for a persistent cookie with
//! the remembered lifetimes (else a browser-session cookie); a login over a live session
//! ends it. `POST /api/profile` changes the display name in the session in place,
//! `POST /api/password` needs a login or `POST /reauth` within `JWT_SESSION_FRESH`
//! (else 403 `session_reauth_required` with `max_age`).
//!
//! With `JWT_SESSION_REDIS_URL` (and `cargo run --example server --features redis`) the
//! revocations are shared with every instance on that Redis ([`jwt_session::RedisDenylist`]);
//! without it they are journaled under the data folder. `GET /readyz` answers 200 `ready`,
//! or 503 with the reason (`not_synced`: no resync from Redis yet, every session is
//! refused; `stale`: the Redis link is down, revocations made elsewhere may be missing).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequest as _;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jwt_session::{
    DEFAULT_JWKS_REFRESH, DEFAULT_REMEMBER_ABSOLUTE, DEFAULT_REMEMBER_IDLE, KeyRefresher,
    KeySetSource, Keyring, Login, LoginRedirect, MemoryDenylist, MemoryRegistry, Reauthenticated,
    RefusalContext, RefusalResponder as _, RevocationStore, SessionConfig, SessionContext,
    SessionLayer, Update, env,
};

#[path = "server/pages.rs"]
mod pages;

use jwt_session::IpPolicy;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq as _;

const USERS: [(&str, &str); 2] = [("alice", "wonderland"), ("bob", "builder")];
const SPA: &str = include_str!("spa/index.html");
const SPA_CLIENT: &str = include_str!("spa/session-client.js");

/// What the example keeps in the session besides the user id. `#[serde(default)]` on
/// every field: a field added later does not log anyone out (older tokens lack it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct UserData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
}

type Session = jwt_session::Session<UserData>;

#[derive(Clone)]
struct App {
    notes: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// The demo users' passwords (changed by `POST /api/password`, in memory only).
    passwords: Arc<Mutex<HashMap<String, String>>>,
    /// How recent a proof of the password `POST /api/password` needs.
    fresh: Duration,
}

impl App {
    fn new(fresh: Duration) -> Self {
        let passwords = USERS
            .iter()
            .map(|(user, password)| ((*user).to_owned(), (*password).to_owned()))
            .collect();
        Self {
            notes: Arc::default(),
            passwords: Arc::new(Mutex::new(passwords)),
            fresh,
        }
    }

    /// Whether `username`/`password` match a user. Every user is compared, so the time
    /// taken does not reveal which names exist.
    fn check(&self, username: &str, password: &str) -> bool {
        let Ok(passwords) = self.passwords.lock() else {
            return false;
        };
        passwords.iter().fold(false, |found, (user, pass)| {
            let user_ok = user.as_bytes().ct_eq(username.as_bytes());
            let pass_ok = pass.as_bytes().ct_eq(password.as_bytes());
            found | bool::from(user_ok & pass_ok)
        })
    }
}

/// The example's own settings; the session's come from `SessionConfigBuilder::from_env`.
struct Settings {
    addr: SocketAddr,
    keys: PathBuf,
    data: PathBuf,
    secure_cookies: bool,
    fresh: Duration,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis_url: Option<String>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis_ca: Option<PathBuf>,
    /// Verify-only: the issuer's JWK Set (`JWT_SESSION_JWKS_URL`), refreshed on an unknown
    /// `kid` at most once per `jwks_refresh`.
    jwks_url: Option<String>,
    jwks_refresh: Duration,
    /// A private CA for an `https://` key set (`JWT_SESSION_JWKS_CA`, a PEM file).
    jwks_ca: Option<PathBuf>,
    /// Live revocations the memory denylist holds (`JWT_SESSION_DENYLIST_CAPACITY`).
    denylist_capacity: usize,
}

const PREFIX: &str = "JWT_SESSION_";

fn settings() -> Result<Settings, String> {
    let addr_text = std::env::var("JWT_SESSION_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let addr = addr_text
        .parse()
        .map_err(|e| format!("JWT_SESSION_ADDR={addr_text:?} is not host:port: {e}"))?;
    let redis_url = std::env::var("JWT_SESSION_REDIS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty());
    if cfg!(not(feature = "redis"))
        && let Some(url) = &redis_url
    {
        return Err(format!(
            "JWT_SESSION_REDIS_URL is set ({} chars) but this build has no Redis backend; \
             rebuild with `--features redis` (cargo run --example server --features redis), \
             or unset it to use the memory denylist",
            url.len()
        ));
    }
    let redis_ca = std::env::var_os("JWT_SESSION_REDIS_CA")
        .filter(|ca| !ca.is_empty())
        .map(PathBuf::from);
    if redis_ca.is_some() && redis_url.is_none() {
        return Err("JWT_SESSION_REDIS_CA is set but JWT_SESSION_REDIS_URL is not".into());
    }
    let jwks_url = env::var("JWT_SESSION_JWKS_URL").map_err(|e| e.to_string())?;
    let jwks_ca = std::env::var_os("JWT_SESSION_JWKS_CA")
        .filter(|ca| !ca.is_empty())
        .map(PathBuf::from);
    if jwks_ca.is_some() && jwks_url.is_none() {
        return Err("JWT_SESSION_JWKS_CA is set but JWT_SESSION_JWKS_URL is not".into());
    }
    Ok(Settings {
        addr,
        redis_ca,
        keys: std::env::var_os("JWT_SESSION_KEYS").map_or_else(|| "keys".into(), PathBuf::from),
        data: std::env::var_os("JWT_SESSION_DATA").map_or_else(|| "data".into(), PathBuf::from),
        secure_cookies: env::flag("JWT_SESSION_SECURE_COOKIES")
            .map_err(|e| e.to_string())?
            .unwrap_or(false),
        fresh: env::duration("JWT_SESSION_FRESH", Duration::from_secs(5 * 60))
            .map_err(|e| e.to_string())?,
        redis_url,
        jwks_url,
        jwks_refresh: env::duration("JWT_SESSION_JWKS_REFRESH", DEFAULT_JWKS_REFRESH)
            .map_err(|e| e.to_string())?,
        jwks_ca,
        denylist_capacity: match env::var("JWT_SESSION_DENYLIST_CAPACITY")
            .map_err(|e| e.to_string())?
        {
            None => jwt_session::DEFAULT_DENYLIST_CAPACITY,
            Some(text) => text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("JWT_SESSION_DENYLIST_CAPACITY={text:?}: a positive number of revocations")
            })?,
        },
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jwt_session=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("server: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let s = settings()?;
    let source = match (&s.jwks_url, &s.jwks_ca) {
        (None, _) => None,
        (Some(url), None) => Some(KeySetSource::Url(url.clone())),
        (Some(url), Some(ca)) => {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("JWT_SESSION_JWKS_CA={}: {e}", ca.display()))?;
            Some(KeySetSource::url_with_ca(url.clone(), pem))
        }
    };
    let refresher = source.map(|source| Arc::new(KeyRefresher::new(source, s.jwks_refresh)));
    let keyring = match &refresher {
        Some(refresher) => verify_only_keys(refresher).await?,
        None => Keyring::load_dir(&s.keys).map_err(|e| e.to_string())?,
    };
    if keyring.can_sign() && keyring.signer().kid().starts_with("dev-") {
        tracing::warn!(
            kid = keyring.signer().kid(),
            "SIGNING WITH THE DEVELOPMENT KEY from keys/: anyone can forge sessions. \
             Make a real key with `cargo run --features cli --bin jwt-session -- keygen DIR` \
             and set JWT_SESSION_KEYS."
        );
    }
    // The example's defaults, then every JWT_SESSION_* session setting from the
    // environment (jwt_session::env).
    let mut builder = SessionConfig::builder(keyring)
        .idle_timeout(Duration::from_secs(15 * 60))
        .remember_me(DEFAULT_REMEMBER_IDLE, DEFAULT_REMEMBER_ABSOLUTE)
        .browser_session_cookies(true);
    if !s.secure_cookies {
        tracing::info!(
            "development cookies (plain http): set JWT_SESSION_SECURE_COOKIES=1 behind HTTPS"
        );
        builder = builder.development_cookies();
    }
    let builder = builder.from_env(PREFIX).map_err(|e| e.to_string())?;
    let config = builder.build().map_err(|e| e.to_string())?;
    // Keys without a restart: the key directory is watched in every mode (new, promoted
    // and retired keys; on a verify-only instance its public keys verify on top of the JWK
    // Set's). JWT_SESSION_ROTATE_EVERY (humantime; unset = off) also rotates the signer on
    // that schedule, publishing the next one JWT_SESSION_ROTATE_LEAD ahead.
    let rotate_every = match env::var("JWT_SESSION_ROTATE_EVERY").map_err(|e| e.to_string())? {
        None => None,
        Some(_) => Some(
            env::duration("JWT_SESSION_ROTATE_EVERY", Duration::ZERO).map_err(|e| e.to_string())?,
        ),
    };
    let rotate_lead = env::duration("JWT_SESSION_ROTATE_LEAD", jwt_session::DEFAULT_PUBLISH_LEAD)
        .map_err(|e| e.to_string())?;
    if !config.codec().keyring().can_sign() && rotate_every.is_some() {
        return Err(
            "JWT_SESSION_ROTATE_EVERY needs a signing instance (unset JWT_SESSION_JWKS_URL)".into(),
        );
    }
    let mut watcher = jwt_session::KeyWatcher::new(&config, &s.keys);
    if let Some(every) = rotate_every.filter(|d| !d.is_zero()) {
        watcher = watcher.rotate_every(every).publish_lead(rotate_lead);
    }
    watcher.spawn();
    // With Redis, a signing instance publishes its public keys there and trusts those of
    // the others: instances with key directories of their own accept each other's
    // sessions. Kept for as long as the server runs.
    #[cfg(feature = "redis")]
    let key_share = key_share(&s, &config)?;
    let (denylist, readiness) = revocation_store(&s, &config).await?;
    #[cfg(feature = "redis")]
    if let Some(share) = &key_share
        && !share.wait_synced(Duration::from_secs(1)).await
    {
        tracing::warn!(
            status = ?share.status(),
            "public keys not shared through Redis yet: this instance's sessions verify here, \
             the other instances' once Redis is reachable"
        );
    }

    let config_policy = *config.policy();
    // "Where you're signed in": a session registry journaled beside the denylist.
    let registry_journal = s.data.join("sessions.jsonl");
    let registry = MemoryRegistry::builder()
        .journal(&registry_journal)
        .build(config.clock())
        .map_err(|e| format!("session registry {}: {e}", registry_journal.display()))?;
    registry.spawn_sweeper(config.clock_handle(), Duration::from_secs(60));
    let app = router(
        config,
        denylist,
        registry,
        readiness.clone(),
        App::new(s.fresh),
        refresher,
    );
    let listener = tokio::net::TcpListener::bind(s.addr)
        .await
        .map_err(|e| format!("binding {}: {e}", s.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{local}");
    }
    tracing::info!(addr = %local, policy = ?config_policy, "jwt-session example server");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        tokio::signal::ctrl_c().await.ok();
    })
    .await
    .map_err(|e| e.to_string());
    readiness.shutdown().await;
    served
}

/// What `/readyz` reports on: the revocation backend.
#[derive(Clone)]
enum Readiness {
    Memory,
    #[cfg(feature = "redis")]
    Redis(Arc<jwt_session::RedisDenylist>),
}

impl Readiness {
    async fn check(self) -> Response {
        match self {
            Readiness::Memory => (StatusCode::OK, "ready").into_response(),
            #[cfg(feature = "redis")]
            Readiness::Redis(store) => {
                let status = store.status();
                let why = match status.summary() {
                    "ready" => return (StatusCode::OK, "ready").into_response(),
                    "stale" => format!(
                        "stale: the Redis link is down; revocations made on other instances \
                         may be missing ({} of ours not yet published)",
                        status.pending_publishes
                    ),
                    other => format!("{other}: no resync from Redis yet; every session is refused"),
                };
                (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
            }
        }
    }

    /// Publish what is still queued before exiting.
    async fn shutdown(&self) {
        #[cfg(feature = "redis")]
        if let Readiness::Redis(store) = self
            && !store.flush(Duration::from_secs(3)).await
        {
            tracing::error!(
                pending = store.status().pending_publishes,
                "exiting with revocations not yet written to Redis: other instances will \
                 not learn them"
            );
        }
    }
}

/// The revocation backend: Redis when `JWT_SESSION_REDIS_URL` is set (feature `redis`),
/// else the memory denylist journaled under the data folder.
async fn revocation_store(
    s: &Settings,
    config: &SessionConfig,
) -> Result<(Arc<dyn RevocationStore>, Readiness), String> {
    #[cfg(feature = "redis")]
    if let Some(url) = &s.redis_url {
        let mut options = jwt_session::RedisDenylistOptions::default().clock(config.clock_handle());
        if let Some(ca) = &s.redis_ca {
            options = options.connection(jwt_session::RedisConnection::default().ca_file(ca));
        }
        let store = jwt_session::RedisDenylist::connect(url, options)
            .map_err(|e| format!("JWT_SESSION_REDIS_URL: {e}"))?;
        if store.wait_ready(Duration::from_secs(5)).await {
            tracing::info!("revocations shared through Redis: mirror resynced, ready");
        } else {
            tracing::error!(
                status = ?store.status(),
                "Redis NOT REACHABLE within 5 s: serving anyway, but every session is refused \
                 (503 session_check_unavailable) and /readyz says not_synced until the first \
                 resync from Redis completes; retrying in the background"
            );
        }
        store.spawn_sweeper(config.clock_handle(), Duration::from_secs(30));
        return Ok((store.clone(), Readiness::Redis(store)));
    }
    let journal = s.data.join("revocations.jsonl");
    let denylist = MemoryDenylist::builder()
        .capacity(s.denylist_capacity)
        .journal(&journal)
        .build(config.clock())
        .map_err(|e| format!("revocation journal {}: {e}", journal.display()))?;
    denylist.spawn_sweeper(config.clock_handle(), Duration::from_secs(30));
    Ok((denylist, Readiness::Memory))
}

/// With `JWT_SESSION_REDIS_URL` and a signing key: share the public keys through Redis
/// (a verify-only instance follows its JWK Set only).
#[cfg(feature = "redis")]
fn key_share(
    s: &Settings,
    config: &SessionConfig,
) -> Result<Option<Arc<jwt_session::RedisKeyShare>>, String> {
    let Some(url) = &s.redis_url else {
        return Ok(None);
    };
    if !config.codec().can_sign() {
        return Ok(None);
    }
    let mut options = jwt_session::RedisKeyShareOptions::default();
    if let Some(ca) = &s.redis_ca {
        options = options.connection(jwt_session::RedisConnection::default().ca_file(ca));
    }
    jwt_session::RedisKeyShare::connect(url, config, options)
        .map(Some)
        .map_err(|e| format!("JWT_SESSION_REDIS_URL: {e}"))
}

/// Verify-only mode: the issuer's keys, fetched at start (retried for 10 s).
async fn verify_only_keys(refresher: &KeyRefresher) -> Result<Keyring, String> {
    let mut last = String::new();
    for _ in 0..10 {
        match refresher.source().load().await {
            Ok(keyring) => {
                tracing::info!(kids = ?keyring.kids(), "verify-only: keys from the JWK Set");
                return Ok(keyring);
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let hint = if last.contains("not trusted") {
        " — for a private CA, set JWT_SESSION_JWKS_CA to its PEM file"
    } else {
        ""
    };
    Err(format!(
        "JWT_SESSION_JWKS_URL: no usable key set: {last}{hint}"
    ))
}

fn router(
    config: SessionConfig,
    denylist: Arc<dyn RevocationStore>,
    registry: Arc<MemoryRegistry>,
    readiness: Readiness,
    app: App,
    refresher: Option<Arc<KeyRefresher>>,
) -> Router {
    let verify_only = refresher.is_some();
    let session = SessionLayer::<UserData>::new(config, denylist)
        .with_registry(registry)
        .registry_ip(IpPolicy::Truncated, None)
        // Pages: a navigation without a session goes to the login form; the JSON API
        // (and the session routes) keep their JSON 401.
        .on_refusal(|ctx: &RefusalContext<'_>| {
            let api = ctx.path_and_query.starts_with("/api/")
                || ctx.path_and_query.starts_with("/session");
            (!api)
                .then(|| LoginRedirect::to("/login").respond(ctx))
                .flatten()
        });
    // HTML forms carry the CSRF token in a `csrf_token` field.
    let forms = session.form_csrf();
    let refresh = refresher.map(|r| session.key_refresh(r));
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || readiness.clone().check()))
        .route("/account", get(pages::account))
        .route("/api/me", get(me))
        .route("/api/notes", get(list_notes).post(add_note));
    // A verify-only instance cannot sign: no login (404), nothing that changes a session.
    let routes = if verify_only {
        routes
    } else {
        routes
            .route("/", get(|| async { Html(SPA) }))
            .route(
                "/session-client.js",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                        SPA_CLIENT,
                    )
                }),
            )
            .route("/login", get(pages::login_page).post(login))
            .route("/account/profile", post(pages::account_profile))
            .route("/api/profile", post(profile))
            .route("/api/password", post(change_password))
            .route("/reauth", post(reauth))
    };
    let routes = routes
        .merge(session.session_routes::<App>())
        .with_state(app)
        .layer(session);
    let routes = match refresh {
        Some(refresh) => routes.layer(refresh),
        None => routes,
    };
    routes.layer(forms)
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    #[serde(default)]
    remember: bool,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// `POST /login`: JSON from the SPA, or the HTML form of `GET /login`.
async fn login(
    State(app): State<App>,
    ctx: SessionContext<UserData>,
    request: axum::extract::Request,
) -> Response {
    if pages::is_form(request.headers()) {
        return pages::login_form(app, ctx, request).await;
    }
    let body = Json::<Credentials>::from_request(request, &()).await;
    let Ok(Json(creds)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send JSON {\"username\":…,\"password\":…,\"remember\":false}",
        );
    };
    if !app.check(&creds.username, &creds.password) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        );
    }
    // Over a live session of this request, the layer ends that session first.
    match Login::new(creds.username.clone(), UserData::default()) {
        Ok(login) => {
            let login = login.remember(creds.remember);
            let body = json!({ "user": creds.username, "csrf": login.csrf() });
            (login, Json(body)).into_response()
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "session_issue_failed",
            &e.to_string(),
        ),
    }
}

async fn me(session: Session) -> Json<serde_json::Value> {
    Json(json!({
        "user": session.subject(),
        "display_name": session.data().display_name,
        "sid": session.id(),
        "auth_time": session.auth_time(),
        "fresh_at": session.fresh_at(),
        "remember": session.remembered(),
        "expires_in": session.seconds_left(),
    }))
}

#[derive(Deserialize)]
struct Profile {
    display_name: String,
}

/// Change the display name kept in the session: one new cookie, same session.
async fn profile(
    session: Session,
    body: Result<Json<Profile>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(profile)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send JSON {\"display_name\":…}",
        );
    };
    let name = profile.display_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_display_name",
            "a display name has 1 to 64 characters",
        );
    }
    let data = UserData {
        display_name: Some(name.to_owned()),
    };
    let body = json!({ "user": session.subject(), "display_name": name });
    (Update::new(data), Json(body)).into_response()
}

#[derive(Deserialize)]
struct NewPassword {
    new_password: String,
}

/// A sensitive route: needs a login or re-authentication within `JWT_SESSION_FRESH`.
async fn change_password(
    State(app): State<App>,
    session: Session,
    body: Result<Json<NewPassword>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(reauth) = session.require_fresh(app.fresh) {
        return reauth.into_response();
    }
    let Ok(Json(new)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send JSON {\"new_password\":…}",
        );
    };
    let length = new.new_password.chars().count();
    if !(8..=128).contains(&length) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_password",
            "a password has 8 to 128 characters",
        );
    }
    let Ok(mut passwords) = app.passwords.lock() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "passwords unavailable",
        );
    };
    passwords.insert(session.subject().to_owned(), new.new_password);
    Json(json!({ "changed": true })).into_response()
}

#[derive(Deserialize)]
struct Reauth {
    password: String,
}

/// Step-up: the current user's password again marks the session fresh; `auth_time` and
/// the absolute deadline do not move. A wrong password is 401 `invalid_credentials` and
/// the session stays valid.
async fn reauth(
    State(app): State<App>,
    session: Session,
    body: Result<Json<Reauth>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(reauth)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send JSON {\"password\":…}",
        );
    };
    if !app.check(session.subject(), &reauth.password) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong password",
        );
    }
    (
        Reauthenticated,
        Json(json!({ "user": session.subject(), "fresh": true })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

async fn list_notes(State(app): State<App>, session: Session) -> Json<serde_json::Value> {
    let notes = app
        .notes
        .lock()
        .map(|n| n.get(session.subject()).cloned())
        .unwrap_or_default();
    Json(json!({ "notes": notes.unwrap_or_default() }))
}

async fn add_note(
    State(app): State<App>,
    session: Session,
    body: Result<Json<NewNote>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(note)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send JSON {\"text\":…}",
        );
    };
    let text = note.text.trim();
    if text.is_empty() || text.len() > 1000 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
            "a note has 1 to 1000 characters",
        );
    }
    let Ok(mut notes) = app.notes.lock() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "notes unavailable",
        );
    };
    let list = notes.entry(session.subject().to_owned()).or_default();
    list.push(text.to_owned());
    // A demo keeps the last 100 notes per user, so memory stays flat under load.
    if list.len() > 100 {
        let excess = list.len() - 100;
        list.drain(..excess);
    }
    (
        StatusCode::CREATED,
        Json(json!({ "text": text, "count": list.len() })),
    )
        .into_response()
}
