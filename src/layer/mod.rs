//! The tower layer: the only glue between HTTP and the session domain.
//!
//! For every request [`SessionService`]:
//!
//! 1. finds the session cookie (over every `Cookie` header);
//! 2. verifies it ([`Codec::decode`](crate::Codec::decode)), checks its times
//!    ([`Claims::check`](crate::Claims::check)) and the revocation store;
//! 3. on unsafe methods, refuses cross-site requests and, for a cookie-borne session,
//!    requires `X-CSRF-Token` to equal the session's token (403);
//! 4. hands the outcome to handlers through request extensions (extract it with
//!    [`Session`] or `Option<Session>`); with
//!    [`SessionLayer::require_session`] it answers 401 itself instead;
//! 5. on the way out, carries out [`Login`](crate::Login) / [`Logout`](crate::Logout) /
//!    [`LogoutAll`](crate::LogoutAll) / [`Refresh`](crate::Refresh), or reissues the token
//!    when due on a successful (< 400) response — after re-reading the clock and
//!    re-checking revocation (I3) — and clears a refused cookie.
//!
//! The request half is one synchronous admission step: from the request to one
//! decision (the session or the refusal, where the token came from, whether the request
//! is passive). `SessionService::call` only opens the span, inserts that decision for the
//! extractors and builds the response future, which finishes the work on the response.
//!
//! Every response for a session carries [`EXPIRES_IN_HEADER`](crate::EXPIRES_IN_HEADER) (seconds until the session
//! ends unless there is activity) and `Cache-Control: no-store`. Refusals carry
//! `{"error":{"code":…,"message":…}}` and the [`Refusal`] in their
//! response extensions.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get, body::Body};
//! use http::{Request, StatusCode};
//! use jwt_session::{Session, SessionLayer, testing::TestKit};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let kit = TestKit::new();
//! let app = Router::new()
//!     .route("/me", get(|s: Session| async move { s.subject().to_owned() }))
//!     .layer(kit.layer::<()>());
//!
//! let req = Request::get("/me").header("cookie", kit.cookie("alice")).body(Body::empty()).unwrap();
//! let res = app.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//!
//! let res = app.oneshot(Request::get("/me").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

mod admission;
mod cache;
mod future;
mod service;

use std::marker::PhantomData;
use std::sync::Arc;

pub(crate) use admission::{Admission, Verdict};
pub(crate) use cache::verify;
pub use future::ResponseFuture;
pub use service::SessionService;

use crate::config::SessionConfig;
use crate::denylist::RevocationStore;
use crate::error::Refusal;
use crate::session::{Session, SessionData};

/// Wraps a service with sessions. Holds only configuration (cheap to clone).
#[must_use]
pub struct SessionLayer<T = ()> {
    pub(crate) state: Arc<LayerState<T>>,
}

impl<T> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.state.config)
            .field("require", &self.state.require)
            .finish_non_exhaustive()
    }
}

/// What every service and response future of one layer shares: the configuration, the
/// revocation store and the verified-token cache.
pub(crate) struct LayerState<T> {
    pub(crate) config: SessionConfig,
    pub(crate) store: Arc<dyn RevocationStore>,
    pub(crate) require: bool,
    pub(crate) cache: cache::TokenCache<T>,
    _data: PhantomData<fn() -> T>,
}

impl<T: SessionData> LayerState<T> {
    fn new(config: SessionConfig, store: Arc<dyn RevocationStore>, require: bool) -> Self {
        Self {
            cache: cache::TokenCache::new(config.token_cache()),
            config,
            store,
            require,
            _data: PhantomData,
        }
    }
}

impl<T: SessionData> SessionLayer<T> {
    /// Sessions with app data `T`, checked against `store`.
    pub fn new(config: SessionConfig, store: Arc<dyn RevocationStore>) -> Self {
        Self {
            state: Arc::new(LayerState::new(config, store, false)),
        }
    }

    /// Answer 401 (with the reason) for every request without a valid session, instead
    /// of leaving that to the extractor. Use it on a router that is protected as a whole.
    pub fn require_session(self) -> Self {
        let state = &self.state;
        Self {
            state: Arc::new(LayerState::new(
                state.config.clone(),
                state.store.clone(),
                true,
            )),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.state.config
    }

    /// Check a token outside HTTP (a WebSocket handshake, a job queue): the same
    /// verification, cache, time and revocation checks as a request, without CSRF.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] of the first failing check.
    pub fn verify_token(&self, token: &str) -> Result<Session<T>, Refusal> {
        cache::verify(&self.state, token)
    }

    /// The revocation store.
    pub fn store(&self) -> &Arc<dyn RevocationStore> {
        &self.state.store
    }

    /// A cloneable handle on this layer's sessions for handlers and background jobs:
    /// issue a token, end a session, end a user's sessions.
    pub fn handle(&self) -> crate::SessionHandle<T> {
        crate::SessionHandle::new(self.state.clone())
    }
}

impl<S, T> tower_layer::Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.state.clone())
    }
}

/// Whether the session itself is revoked (not only an older generation of its tokens):
/// asked as a token of the newest generation. A store that cannot answer counts as
/// revoked (fail closed).
pub(crate) fn session_revoked<T>(
    store: &dyn RevocationStore,
    claims: &crate::claims::Claims<T>,
) -> bool {
    let facts = crate::denylist::TokenFacts {
        generation: crate::denylist::NEWEST_GENERATION,
        ..crate::denylist::TokenFacts::of(claims)
    };
    store.is_revoked(facts).unwrap_or(true)
}

/// Ask the revocation store about `claims`: `Revoked`, or `RevocationUnavailable` when it
/// cannot answer (fail closed, I5).
pub(crate) fn check_revocation<T>(
    store: &dyn RevocationStore,
    claims: &crate::claims::Claims<T>,
) -> Result<(), Refusal> {
    match store.is_revoked(crate::denylist::TokenFacts::of(claims)) {
        Ok(false) => Ok(()),
        Ok(true) => Err(Refusal::Revoked),
        Err(e) => {
            tracing::error!(error = %e, "revocation check failed; refusing");
            Err(Refusal::RevocationUnavailable)
        }
    }
}
