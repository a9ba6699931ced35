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
//! | `test-util` | no | `ManualClock` and the `testing` kit |
//! | `redis` | no | `RedisDenylist`: revocation shared by many instances |
//! | `metrics` | no | counters and gauges through the `metrics` facade ([`obs`]) |
//! | `cli` | no | the operator's `jwt-session` binary |
//!
//! Exactly one crypto backend must be enabled; anything else is a compile error.
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
pub mod codec;
mod config;
mod cookie;
pub mod csrf;
pub mod denylist;
#[cfg(feature = "env")]
pub mod env;
mod error;
mod extract;
pub mod form;
mod handle;
pub mod headers;
pub mod key_refresh;
pub mod keys;
pub mod layer;
pub mod obs;
mod random;
pub mod registry;
mod responder;
mod response;
pub mod routes;
mod session;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use crate::claims::{Claims, MAX_TIME, Policy};
#[cfg(any(test, feature = "test-util"))]
pub use crate::clock::ManualClock;
pub use crate::clock::{Clock, SystemClock};
pub use crate::codec::{Codec, Verified};
pub use crate::config::{
    DEFAULT_ABSOLUTE, DEFAULT_IDLE, DEFAULT_ISSUER, DEFAULT_LEEWAY, DEFAULT_REISSUE_AFTER,
    DEFAULT_REMEMBER_ABSOLUTE, DEFAULT_REMEMBER_IDLE, DEFAULT_TOKEN_CACHE, PassivePredicate,
    SessionConfig, SessionConfigBuilder,
};
pub use crate::cookie::{CookieSettings, MAX_COOKIE_LEN};
pub use crate::csrf::CsrfToken;
pub use crate::denylist::{MemoryDenylist, RevocationStore};
#[cfg(feature = "redis")]
pub use crate::denylist::{RedisDenylist, RedisDenylistOptions, RedisStatus};
pub use crate::error::{ConfigError, EncodeError, KeyError, Refusal, RevocationError};
pub use crate::extract::{SessionContext, SessionRejection};
pub use crate::handle::{IssuedSession, SessionHandle};
pub use crate::headers::{
    CSRF_HEADER, EXPIRES_IN_HEADER, EXPOSE_HEADERS, PASSIVE_HEADER, TOKEN_HEADER,
};
pub use crate::keys::{Algorithm, Key, Keyring};
pub use crate::layer::{SessionLayer, SessionService};
pub use crate::obs::sid_tag;
pub use crate::registry::{MemoryRegistry, SessionRegistry};
#[cfg(feature = "redis")]
pub use crate::registry::{RedisRegistry, RedisRegistryOptions};
pub use crate::responder::{LoginRedirect, RefusalContext, RefusalResponder, safe_next};
pub use crate::response::ErrorBody;
pub use crate::routes::{SessionStatus, session_routes};
pub use crate::session::{
    Login, Logout, LogoutAll, ReauthRequired, Reauthenticated, Refresh, Session, SessionData,
    Update,
};
pub use ::cookie::SameSite;

// The README's examples compile and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
