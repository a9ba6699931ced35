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
//! Every response for a session carries [`EXPIRES_IN_HEADER`] (seconds until the session
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

mod future;
mod service;

use std::marker::PhantomData;
use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode, header};

pub use future::ResponseFuture;
pub use service::SessionService;

use crate::config::SessionConfig;
use crate::denylist::RevocationStore;
use crate::error::Refusal;
use crate::session::{Session, SessionData};

/// Response header with the seconds left until the session ends unless there is
/// activity (the earlier of the idle and absolute deadlines), as of this response —
/// after any reissue. Exposed to CORS readers.
pub const EXPIRES_IN_HEADER: &str = "session-expires-in";

/// Request header marking a request passive (any value but `0` or `false`): validated,
/// but it neither slides the idle timer nor gets a reissued token. Use it for polling.
pub const PASSIVE_HEADER: &str = "x-session-passive";

/// Response header carrying a reissued token when the request's token came as
/// `Authorization: Bearer` (see
/// [`SessionConfigBuilder::accept_bearer`](crate::SessionConfigBuilder::accept_bearer)).
/// Never sent for cookie-borne sessions, so scripts never see a cookie's token.
pub const TOKEN_HEADER: &str = "session-token";

pub(crate) const EXPIRES_IN_NAME: http::HeaderName =
    http::HeaderName::from_static(EXPIRES_IN_HEADER);
pub(crate) const TOKEN_NAME: http::HeaderName = http::HeaderName::from_static(TOKEN_HEADER);

/// Where the request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Cookie,
    Bearer,
}

#[derive(Clone)]
pub(crate) struct CachedToken<T> {
    pub(crate) claims: Arc<crate::claims::Claims<T>>,
    pub(crate) generation: u64,
}

/// Wraps a service with sessions. Holds only configuration (cheap to clone).
pub struct SessionLayer<T = ()> {
    pub(crate) shared: Arc<Shared<T>>,
}

impl<T> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.shared.config)
            .field("require", &self.shared.require)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared<T> {
    pub(crate) config: SessionConfig,
    pub(crate) store: Arc<dyn RevocationStore>,
    pub(crate) require: bool,
    pub(crate) cache: Option<quick_cache::sync::Cache<Box<str>, CachedToken<T>>>,
    _data: PhantomData<fn() -> T>,
}

fn cache_for<T: SessionData>(
    config: &SessionConfig,
) -> Option<quick_cache::sync::Cache<Box<str>, CachedToken<T>>> {
    let capacity = config.0.token_cache;
    (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity))
}

impl<T: SessionData> SessionLayer<T> {
    /// Sessions with app data `T`, checked against `store`.
    pub fn new(config: SessionConfig, store: Arc<dyn RevocationStore>) -> Self {
        Self {
            shared: Arc::new(Shared {
                cache: cache_for::<T>(&config),
                config,
                store,
                require: false,
                _data: PhantomData,
            }),
        }
    }

    /// Answer 401 (with the reason) for every request without a valid session, instead
    /// of leaving that to the extractor. Use it on a router that is protected as a whole.
    #[must_use]
    pub fn require_session(self) -> Self {
        let shared = &self.shared;
        Self {
            shared: Arc::new(Shared {
                config: shared.config.clone(),
                store: shared.store.clone(),
                require: true,
                cache: cache_for::<T>(&shared.config),
                _data: PhantomData,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }

    /// Check a token outside HTTP (a WebSocket handshake, a job queue): the same
    /// verification, cache, time and revocation checks as a request, without CSRF.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] of the first failing check.
    pub fn verify_token(&self, token: &str) -> Result<Session<T>, Refusal> {
        service::verify(&self.shared, token)
    }

    /// The revocation store.
    pub fn store(&self) -> &Arc<dyn RevocationStore> {
        &self.shared.store
    }
}

impl<S, T> tower_layer::Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// What the layer found, handed to extractors in request extensions.
pub(crate) struct Slot<T> {
    pub(crate) shared: Arc<Shared<T>>,
    pub(crate) state: SlotState<T>,
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            state: self.state.clone(),
        }
    }
}

pub(crate) enum SlotState<T> {
    Active(Session<T>),
    Refused(Refusal),
    Absent,
}

impl<T> Clone for SlotState<T> {
    fn clone(&self) -> Self {
        match self {
            SlotState::Active(s) => SlotState::Active(s.clone()),
            SlotState::Refused(r) => SlotState::Refused(*r),
            SlotState::Absent => SlotState::Absent,
        }
    }
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

/// The JSON refusal response, with the reason in its extensions and, when the session
/// itself is dead, a removal cookie.
pub(crate) fn refusal_response<B: From<String>>(
    reason: Refusal,
    removal: Option<HeaderValue>,
) -> Response<B> {
    let mut res = Response::new(B::from(reason.json_body()));
    *res.status_mut() = reason.status();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = removal {
        headers.append(header::SET_COOKIE, cookie);
    }
    res.extensions_mut().insert(reason);
    res
}

/// A JSON error response `{"error":{"code","message"}}` with `no-store`: every failure
/// the layer answers itself that is not a [`Refusal`].
pub(crate) fn error_response<B: From<String>>(
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response<B> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut res = Response::new(B::from(body.to_string()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A 500 for a session that could not be issued; the handler's response is replaced so
/// the client never believes it is logged in without a cookie.
pub(crate) fn issue_failed<B: From<String>>(detail: &str) -> Response<B> {
    tracing::error!(error = detail, "session could not be issued");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "session_issue_failed",
        "the session could not be issued",
    )
}

/// A 503 with `Retry-After: 1` for a login that cannot be dated this second (its user's
/// sessions were ended twice in it); the handler's response is replaced, no cookie set.
pub(crate) fn login_retry<B: From<String>>() -> Response<B> {
    let mut res = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "session_login_retry",
        "this user's sessions were just ended; log in again in a second",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}
