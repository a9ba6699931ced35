//! [`SessionService`]: opens the span, admits the request, builds the response future.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::LayerState;
use super::admission::{self, Decision};
use super::future::ResponseFuture;
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

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
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
        match admission::admit(&self.state, &req) {
            Decision::Reject(reason, clear) => {
                let removal = clear.then(|| self.state.config.cookie().removal());
                ResponseFuture::rejected(response::refusal_response(reason, removal))
            }
            Decision::Admit(admission) => {
                if let Some(session) = admission.session()
                    && !span.is_disabled()
                {
                    span.record("sid", obs::sid_tag(session.id()));
                }
                req.extensions_mut().insert(admission.clone());
                let future = self.inner.call(req);
                drop(_entered);
                ResponseFuture::inner(future, admission, span)
            }
        }
    }
}
