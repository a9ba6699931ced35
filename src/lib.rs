//! Stateless, sliding, revocable sessions for axum/tokio services.
//!
//! The whole session lives in a signed JWT cookie. [`SessionLayer`] verifies it on every
//! request, slides the inactivity deadline by reissuing the token, enforces CSRF on
//! unsafe methods, and refuses revoked sessions through a bounded [`MemoryDenylist`].
//!
//! The invariants the code cites as I1–I7 (never resurrect, tight revocation TTL, reissue
//! re-checks, bounded, fail closed, no secrets in logs, injected time) are defined in the
//! repository's `docs/invariants.md`, with the tests that prove each.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Json, Router, routing::{get, post}};
//! use jwt_session::{Keyring, Login, MemoryDenylist, Session, SessionConfig, SessionLayer, session_routes};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SessionConfig::builder(Keyring::load_dir("keys")?)
//!     .idle_timeout(Duration::from_secs(15 * 60))
//!     .build()?;
//! let denylist = MemoryDenylist::builder().journal("data/revocations.jsonl").build(config.clock())?;
//! denylist.spawn_sweeper(config.clock_handle(), Duration::from_secs(60));
//!
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .route("/api/me", get(|s: Session| async move { s.subject().to_owned() }))
//!     .merge(session_routes::<(), ()>())
//!     .layer(SessionLayer::<()>::new(config, denylist));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//!
//! async fn login() -> Result<(Login, Json<serde_json::Value>), http::StatusCode> {
//!     // … check the credentials first, then:
//!     let login = Login::new("alice", ()).map_err(|_| http::StatusCode::INTERNAL_SERVER_ERROR)?;
//!     let csrf = login.csrf().to_owned();
//!     Ok((login, Json(serde_json::json!({ "user": "alice", "csrf": csrf }))))
//! }
//! ```
//!
//! # Features
//!
//! | feature | default | what |
//! | --- | --- | --- |
//! | `aws-lc` | yes | jsonwebtoken's aws-lc-rs backend |
//! | `rust-crypto` | no | jsonwebtoken's RustCrypto backend (use with `--no-default-features`) |
//! | `test-util` | no | `ManualClock` and the `testing` kit (`testing::TestKit`, `testing::TestClient`) |
//! | `env` | no | settings from environment variables: `SessionConfigBuilder::from_env` and the `env` module |
//! | `jwks` | no | verify-only services that fetch the issuer's JWK Set by URL ([`KeySetSource::Url`]) |
//! | `redis` | no | `RedisDenylist` and `RedisRegistry`: revocation and the session registry shared by many instances through Redis (`RedisConnection`, `RedisStatus`, …); `RedisKeyShare`: their public keys shared, no private key copied |
//! | `metrics` | no | counters and gauges through the `metrics` facade ([Observability](#observability)) |
//! | `cli` | no | the operator's `jwt-session` binary (`keygen`, `jwks`, `inspect`, `revoke`, `status`, `sessions`, `rotate`, …) |
//!
//! Exactly one crypto backend must be enabled; anything else is a compile error. Every
//! item that needs a feature says so in its documentation ("Available with the `redis`
//! feature.").
//!
//! # Observability
//!
//! Every request behind the layer runs in a `session` span carrying the route and, once
//! known, a **salted hash** of the session id ([`sid_tag`]) — never the token, its
//! signature or the CSRF value (I6). Events: `session issued`, `session reissued`,
//! `session refused` (with `reason`), `session revoked` (`all = true` for log-out
//! everywhere), denylist overflow (warn), sweep, journal load, keyring rotation.
//!
//! With the `metrics` feature the same facts are counted through the `metrics` facade
//! (install any recorder, e.g. a Prometheus exporter):
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `jwt_session_refusals_total` | counter | `reason` (the refusal code) |
//! | `jwt_session_issued_total` | counter | |
//! | `jwt_session_reissues_total` | counter | |
//! | `jwt_session_revocations_total` | counter | `kind` = `session` \| `subject` |
//! | `jwt_session_denylist_evictions_total` | counter | |
//! | `jwt_session_cold_verifies_total` | counter | |
//! | `jwt_session_denylist_size` | gauge | |
//! | `jwt_session_denylist_fill_ratio` | gauge | (held ÷ capacity of the memory denylist; it warns at 0.8 and 0.95) |
//!
//! # Security model
//!
//! See the README's "Security model" section: claims are signed, not encrypted (anyone
//! holding the cookie can read them); a stolen token is valid until it expires or its
//! session is revoked; revocation is per process unless a shared backend is used.

#[cfg(all(feature = "aws-lc", feature = "rust-crypto"))]
compile_error!(
    "jwt-session: enable exactly one crypto backend: `aws-lc` (default) or `rust-crypto` \
     (with --no-default-features), not both"
);
#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "jwt-session: enable exactly one crypto backend: `aws-lc` (default) or `rust-crypto`"
);

mod claims;
mod clock;
mod codec;
mod config;
mod cookie;
mod csrf;
mod denylist;
#[cfg(feature = "env")]
pub mod env;
mod error;
mod extract;
mod form;
mod handle;
mod headers;
mod key_refresh;
#[cfg(feature = "redis")]
mod key_share;
mod keys;
mod layer;
mod obs;
mod random;
#[cfg(feature = "redis")]
mod redis_conn;
mod registry;
mod responder;
mod response;
mod routes;
mod session;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
#[cfg(any(feature = "redis", feature = "jwks"))]
mod tls;
pub mod unverified;

// The public surface: every public item at the crate root, under one path. The modules
// are private; only `env`, `testing` (feature-gated helpers) and `unverified` (quarantined
// on purpose) are namespaces of their own.
pub use crate::claims::{Claims, MAX_TIME, Policy};
#[cfg(any(test, feature = "test-util"))]
pub use crate::clock::ManualClock;
pub use crate::clock::{Clock, SystemClock};
pub use crate::codec::{Codec, DEFAULT_MAX_TOKEN_LEN, DEFAULT_TOKEN_TYPE, Verified};
pub use crate::config::{
    DEFAULT_ABSOLUTE, DEFAULT_IDLE, DEFAULT_ISSUER, DEFAULT_LEEWAY, DEFAULT_REISSUE_AFTER,
    DEFAULT_REMEMBER_ABSOLUTE, DEFAULT_REMEMBER_IDLE, DEFAULT_TOKEN_CACHE, PassivePredicate,
    SessionConfig, SessionConfigBuilder,
};
pub use crate::cookie::{CookieSettings, MAX_COOKIE_LEN};
pub use crate::csrf::{
    CsrfToken, Origin, OriginPolicy, Scheme, check_origin, check_token as check_csrf_token,
    hidden_input as csrf_hidden_input, is_unsafe as is_unsafe_method, proves_same_origin,
};
pub use crate::denylist::{
    DEFAULT_CAPACITY as DEFAULT_DENYLIST_CAPACITY, JournalSummary, MemoryDenylist,
    MemoryDenylistBuilder, RevocationEntry, RevocationStore, TokenFacts, summarize_journal,
};
#[cfg(feature = "redis")]
pub use crate::denylist::{
    DEFAULT_CHANGE_LOG_LEN, DEFAULT_NAMESPACE as DEFAULT_REDIS_NAMESPACE,
    DEFAULT_PROPAGATION_MARGIN, RedisDenylist, RedisDenylistOptions, RedisStatus,
};
pub use crate::error::{ConfigError, EncodeError, KeyError, Refusal, RevocationError};
pub use crate::extract::{SessionContext, SessionRejection};
pub use crate::form::{
    CSRF_FORM_FIELD, DEFAULT_FORM_LIMIT, FormCsrf, FormCsrfFuture, FormCsrfLayer,
};
pub use crate::handle::{IssuedSession, SessionHandle};
pub use crate::headers::{
    CSRF_HEADER, EXPIRES_IN_HEADER, EXPOSE_HEADERS, FORWARDED_PROTO_HEADER, PASSIVE_HEADER,
    TOKEN_HEADER,
};
pub use crate::key_refresh::{KeyRefresh, KeyRefreshFuture, KeyRefreshLayer};
#[cfg(feature = "redis")]
pub use crate::key_share::{
    DEFAULT_KEY_SHARE_REFRESH, RedisKeyShare, RedisKeyShareOptions, RedisKeyShareStatus,
};
pub use crate::keys::{
    Algorithm, CheckReport, DEFAULT_JWKS_REFRESH, DEFAULT_PUBLISH_LEAD, DEFAULT_WATCH_INTERVAL,
    GeneratedKey, Key, KeyDir, KeyDirLock, KeyEntry, KeyRefresher, KeySetSource, KeyWatcher,
    Keyring, LOCK_FILE as KEY_DIR_LOCK_FILE, MAX_JWKS_BYTES, MAX_JWKS_KEYS, MIN_HMAC_SECRET,
    Rotation, generate as generate_key,
};
pub use crate::layer::{ResponseFuture, SessionBody, SessionLayer, SessionService};
pub use crate::obs::sid_tag;
#[cfg(feature = "redis")]
pub use crate::redis_conn::{RedisConnection, RedisFailure};
pub use crate::registry::{
    DEFAULT_PER_USER as DEFAULT_SESSIONS_PER_USER, DEFAULT_REGISTRY_CAPACITY, IpPolicy,
    ListedSession, MAX_USER_AGENT, MemoryRegistry, MemoryRegistryBuilder, RegistryError,
    RegistryStats, SessionEntry, SessionRegistry,
};
#[cfg(feature = "redis")]
pub use crate::registry::{
    DEFAULT_QUEUE_CAPACITY as DEFAULT_REGISTRY_QUEUE_CAPACITY, RedisRegistry, RedisRegistryOptions,
    RedisRegistryStatus,
};
pub use crate::responder::{LoginRedirect, RefusalContext, RefusalResponder, safe_next};
pub use crate::response::ErrorBody;
pub use crate::routes::{SessionStatus, session_routes};
pub use crate::session::{
    Login, Logout, LogoutAll, ReauthRequired, Reauthenticated, Refresh, Session, SessionData,
    Update,
};
#[cfg(any(feature = "redis", feature = "jwks"))]
pub use crate::tls::install_crypto_provider;
pub use ::cookie::SameSite;

// The README's examples compile and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
