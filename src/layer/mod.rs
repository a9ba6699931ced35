//! The tower layer: the only glue between HTTP and the session domain (documented on
//! [`SessionLayer`]).

mod admission;
mod cache;
mod future;
pub(crate) mod record;
mod service;

use std::marker::PhantomData;
use std::sync::Arc;

pub(crate) use admission::{Admission, RequestInfo, Verdict};
pub(crate) use cache::verify;
pub use future::ResponseFuture;
pub use service::{SessionBody, SessionService};

use crate::config::SessionConfig;
use crate::denylist::RevocationStore;
use crate::error::Refusal;
use crate::responder::RefusalResponder;
use crate::session::{Session, SessionData};

/// Wraps a service with sessions. Holds only configuration (cheap to clone).
///
/// For every request [`SessionService`]:
///
/// 1. finds the session cookie (over every `Cookie` header);
/// 2. verifies it ([`Codec::decode`](crate::Codec::decode)), checks its times
///    ([`Claims::check`](crate::Claims::check)) and the revocation store;
/// 3. on unsafe methods, refuses cross-site requests and, for a cookie-borne session,
///    requires `X-CSRF-Token` to equal the session's token (403);
/// 4. hands the outcome to handlers through request extensions (extract it with
///    [`Session`] or `Option<Session>`); with
///    [`SessionLayer::require_session`] it answers 401 itself instead;
/// 5. on the way out, carries out [`Login`](crate::Login) / [`Logout`](crate::Logout) /
///    [`LogoutAll`](crate::LogoutAll) / [`Refresh`](crate::Refresh), or reissues the token
///    when due on a successful (< 400) response — after re-reading the clock and
///    re-checking revocation (I3) — and clears a refused cookie.
///
/// The request half is one synchronous admission step: from the request to one
/// decision (the session or the refusal, where the token came from, whether the request
/// is passive). `SessionService::call` only opens the span, inserts that decision for the
/// extractors and builds the response future, which finishes the work on the response.
///
/// Every response for a session carries [`EXPIRES_IN_HEADER`](crate::EXPIRES_IN_HEADER) (seconds until the session
/// ends unless there is activity) and `Cache-Control: no-store`. Refusals carry
/// `{"error":{"code":…,"message":…}}` and the [`Refusal`] in their
/// response extensions.
///
/// # Example
///
/// ```
/// use axum::{Router, routing::get, body::Body};
/// use http::{Request, StatusCode};
/// use jwt_session::{Session, SessionLayer, testing::TestKit};
/// use tower::ServiceExt as _;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let kit = TestKit::new();
/// let app = Router::new()
///     .route("/me", get(|s: Session| async move { s.subject().to_owned() }))
///     .layer(kit.layer::<()>());
///
/// let req = Request::get("/me").header("cookie", kit.cookie("alice")).body(Body::empty()).unwrap();
/// let res = app.clone().oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
///
/// let res = app.oneshot(Request::get("/me").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// # }
/// ```
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
    pub(crate) responder: Option<Arc<dyn RefusalResponder>>,
    pub(crate) registry: Option<Registry>,
    pub(crate) cache: cache::TokenCache<T>,
    _data: PhantomData<fn() -> T>,
}

/// The session registry and how the layer feeds it.
#[derive(Clone)]
pub(crate) struct Registry {
    pub(crate) store: Arc<dyn crate::registry::SessionRegistry>,
    pub(crate) ip: crate::registry::IpPolicy,
    /// A header a trusted proxy sets to the client's address (its first value is used).
    pub(crate) ip_header: Option<http::HeaderName>,
}

impl<T: SessionData> LayerState<T> {
    fn new(config: SessionConfig, store: Arc<dyn RevocationStore>) -> Self {
        Self {
            cache: cache::TokenCache::new(config.token_cache()),
            config,
            store,
            require: false,
            responder: None,
            registry: None,
            _data: PhantomData,
        }
    }

    /// The same layer with other options (a fresh verified-token cache).
    fn with(&self, change: impl FnOnce(&mut Self)) -> Self {
        let mut next = Self::new(self.config.clone(), self.store.clone());
        next.require = self.require;
        next.responder = self.responder.clone();
        next.registry = self.registry.clone();
        change(&mut next);
        next
    }
}

/// Which layer (by its data type) admitted a request: lets an extractor of another data
/// type say so instead of "missing layer".
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerMarker {
    pub(crate) data_type: &'static str,
}

impl<T: SessionData> SessionLayer<T> {
    /// Sessions with app data `T`, checked against `store`.
    pub fn new(config: SessionConfig, store: Arc<dyn RevocationStore>) -> Self {
        Self {
            state: Arc::new(LayerState::new(config, store)),
        }
    }

    /// Answer 401 (with the reason) for every request without a valid session, instead
    /// of leaving that to the extractor. Use it on a router that is protected as a whole.
    pub fn require_session(self) -> Self {
        Self {
            state: Arc::new(self.state.with(|s| s.require = true)),
        }
    }

    /// Answer refusals your own way: `responder` gets each refusal (with whether the
    /// request is a browser navigation and its path) and returns the app's response, or
    /// `None` for the default JSON. The layer keeps the [`Refusal`] in the response
    /// extensions, clears a dead cookie and adds `no-store` whatever it returns. See
    /// [`LoginRedirect`](crate::LoginRedirect) for login redirects of navigations.
    pub fn on_refusal(self, responder: impl crate::RefusalResponder) -> Self {
        let responder: Arc<dyn RefusalResponder> = Arc::new(responder);
        Self {
            state: Arc::new(self.state.with(|s| s.responder = Some(responder))),
        }
    }

    /// The layer that lets HTML forms carry the CSRF token in a `csrf_token` field (see
    /// [`FormCsrfLayer`](crate::FormCsrfLayer)); put it outside this layer, or use
    /// [`with_forms`](Self::with_forms).
    pub fn form_csrf(&self) -> crate::form::FormCsrfLayer {
        crate::form::FormCsrfLayer::new(self.state.config.cookie().clone())
    }

    /// This layer with [`form_csrf`](Self::form_csrf) in front of it, as one layer:
    /// `.layer(session.with_forms())`.
    pub fn with_forms(self) -> tower_layer::Stack<Self, crate::form::FormCsrfLayer> {
        let forms = self.form_csrf();
        tower_layer::Stack::new(self, forms)
    }

    /// List each user's sessions in `registry` (see [`SessionRegistry`](crate::SessionRegistry)): the
    /// layer writes to it at login, reissue, update, re-authentication and logout — never
    /// on a plain request, and never reads it to decide one. Client IPs are not kept
    /// unless [`registry_ip`](Self::registry_ip) says so.
    pub fn with_registry(self, registry: Arc<dyn crate::registry::SessionRegistry>) -> Self {
        Self {
            state: Arc::new(self.state.with(|s| {
                s.registry = Some(Registry {
                    store: registry,
                    ip: crate::registry::IpPolicy::Off,
                    ip_header: None,
                });
            })),
        }
    }

    /// How much of the client's IP the registry keeps, and — behind a proxy — the header
    /// (e.g. `x-forwarded-for`, first value) that a proxy **you run** sets to it; without
    /// one the peer address of axum's `ConnectInfo<SocketAddr>` is used. Only with a
    /// registry.
    pub fn registry_ip(
        self,
        policy: crate::registry::IpPolicy,
        trusted_header: Option<http::HeaderName>,
    ) -> Self {
        Self {
            state: Arc::new(self.state.with(|s| {
                if let Some(registry) = &mut s.registry {
                    registry.ip = policy;
                    registry.ip_header = trusted_header;
                }
            })),
        }
    }

    /// This layer with a [`KeyRefreshLayer`](crate::key_refresh::KeyRefreshLayer) in
    /// front: for a verify-only service (a [`Keyring::verify_only`](crate::Keyring::verify_only)
    /// keyring from a key set), a token naming an unknown `kid` first refreshes the keys
    /// from `refresher`'s source (at most once per its interval).
    pub fn with_key_refresh(
        self,
        refresher: Arc<crate::keys::KeyRefresher>,
    ) -> tower_layer::Stack<Self, crate::key_refresh::KeyRefreshLayer> {
        let refresh = self.key_refresh(refresher);
        tower_layer::Stack::new(self, refresh)
    }

    /// The [`KeyRefreshLayer`](crate::key_refresh::KeyRefreshLayer) of
    /// [`with_key_refresh`](Self::with_key_refresh) on its own, to place yourself
    /// (outside this layer).
    pub fn key_refresh(
        &self,
        refresher: Arc<crate::keys::KeyRefresher>,
    ) -> crate::key_refresh::KeyRefreshLayer {
        crate::key_refresh::KeyRefreshLayer::new(self.state.config.clone(), refresher)
    }

    /// The ready-made session routes for this layer's data type (see
    /// [`session_routes`](crate::session_routes)): a data type that differs from the
    /// layer's cannot be written by mistake.
    pub fn session_routes<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        crate::session_routes::<T, S>()
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
        cache::verify(&self.state, token.as_bytes())
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
