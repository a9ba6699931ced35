//! [`SessionService`]: opens the span, admits the request, builds the response future.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::Full;
use tower_service::Service;

use super::admission::{self, Admission, Decision, RequestInfo, Verdict};
use super::future::ResponseFuture;
use super::{LayerMarker, LayerState};
use crate::error::Refusal;
use crate::session::SessionData;
use crate::{obs, response};

/// The service made by [`SessionLayer`](super::SessionLayer).
#[must_use]
pub struct SessionService<S, T> {
    inner: S,
    state: Arc<LayerState<T>>,
}

impl<S, T> SessionService<S, T> {
    pub(crate) fn new(inner: S, state: Arc<LayerState<T>>) -> Self {
        Self { inner, state }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap it.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, T> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S: std::fmt::Debug, T> std::fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// A response body the session layer can write its own responses into (refusals, errors,
/// a [`RefusalResponder`](crate::RefusalResponder)'s page): axum's
/// [`Body`](axum_core::body::Body), `String` and `http_body_util::Full<D>`.
///
/// Layers that wrap the body (tower-http's `TraceLayer`, compression) must therefore sit
/// *outside* the session layer: with `ServiceBuilder` list them first. Put the other way
/// round, the compiler says so (this trait's message), instead of a bare
/// `ResponseBody<…>: From<String>` bound. A service with a body type of its own that can
/// be made from a `String` can opt in with an empty `impl SessionBody for MyBody {}`.
#[diagnostic::on_unimplemented(
    message = "the session layer must sit inside layers that change the response body (`{Self}` is not a body it can write refusals into)",
    label = "this service's responses have a body the session layer cannot write refusals into",
    note = "put the session layer inside TraceLayer / compression: ServiceBuilder::new().layer(TraceLayer::new_for_http()).layer(CorsLayer::new()).layer(session_layer) lists the outermost first; with Router::layer, call `.layer(session_layer)` before `.layer(TraceLayer::new_for_http())`",
    note = "the session layer answers with axum's `Body`, `String` or `http_body_util::Full<_>` bodies (see `jwt_session::SessionBody`)"
)]
pub trait SessionBody: From<String> {}

impl SessionBody for axum_core::body::Body {}

impl SessionBody for String {}

impl<D> SessionBody for Full<D> where Full<D>: From<String> {}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: SessionBody,
    T: SessionData,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // No span at all unless someone listens at INFO: building a disabled span still
        // costs (with tracing's `log` fallback) several hundred instructions per request.
        let span = if tracing::enabled!(tracing::Level::INFO) {
            tracing::info_span!(
                "session",
                route = %req.uri().path(),
                sid = tracing::field::Empty
            )
        } else {
            tracing::Span::none()
        };
        let _entered = span.enter();
        // A second application of the layer on the same request (the whole app, then a
        // protected router) reuses the first one's decision: one verification, one
        // Set-Cookie. Its own `require_session` still holds.
        let decision = match req.extensions().get::<Admission<T>>() {
            Some(outer) if self.state.require => match &outer.verdict {
                Verdict::Active(_) => None,
                // The outer layer clears a dead cookie on the way out: once.
                Verdict::Refused(reason) => Some(Decision::Reject(*reason, false)),
                Verdict::Absent => Some(Decision::Reject(Refusal::Missing, false)),
            },
            Some(_) => None,
            None => Some(admission::admit(&self.state, &req)),
        };
        let Some(decision) = decision else {
            return ResponseFuture::passthrough(self.inner.call(req));
        };
        match decision {
            Decision::Reject(reason, clear) => {
                let removal = clear.then(|| self.state.config.cookie().removal());
                let res = response::refusal_response(reason, removal);
                let res = match &self.state.responder {
                    Some(responder) => response::respond(&**responder, &RequestInfo::of(&req), res),
                    None => res,
                };
                ResponseFuture::rejected(res)
            }
            Decision::Admit(admission) => {
                if let Some(session) = admission.session()
                    && !span.is_disabled()
                {
                    span.record("sid", obs::sid_tag(session.id()));
                }
                let extensions = req.extensions_mut();
                extensions.insert(LayerMarker {
                    data_type: std::any::type_name::<T>(),
                });
                extensions.insert(admission.clone());
                let future = self.inner.call(req);
                drop(_entered);
                ResponseFuture::inner(future, admission, span)
            }
        }
    }
}
