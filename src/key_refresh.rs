//! Verify-only services' key refresh (documented on [`KeyRefreshLayer`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response, header};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::config::SessionConfig;
use crate::keys::KeyRefresher;

/// Refreshes a verify-only service's keys ahead of the session layer.
///
/// Verify-only services: [`KeyRefreshLayer`] refreshes the key set (see
/// [`KeyRefresher`]) **before** a request whose token names a
/// `kid` the service does not know yet is verified — so the first session signed with the
/// issuer's new key is accepted instead of refused (and its cookie cleared). Refreshes run
/// at most once per interval however many unknown `kid`s arrive; a `kid` still unknown
/// after that is refused `session_unknown_key` as usual.
///
/// Get it from the session layer, which knows where tokens are:
/// [`SessionLayer::with_key_refresh`](crate::SessionLayer::with_key_refresh).
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyRefreshLayer {
    config: SessionConfig,
    refresher: Arc<KeyRefresher>,
}

impl KeyRefreshLayer {
    pub(crate) fn new(config: SessionConfig, refresher: Arc<KeyRefresher>) -> Self {
        Self { config, refresher }
    }
}

impl<S> tower_layer::Layer<S> for KeyRefreshLayer {
    type Service = KeyRefresh<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyRefresh {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`KeyRefreshLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyRefresh<S> {
    inner: S,
    layer: KeyRefreshLayer,
}

/// The `kid` of a token's header, read without verifying anything (it only decides
/// whether to refresh the key set; the token is then verified as usual).
fn peek_kid(token: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Header {
        kid: Option<String>,
    }
    let head = token.split(|b| *b == b'.').next()?;
    if head.len() > 1024 {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(head).ok()?;
    serde_json::from_slice::<Header>(&json).ok()?.kid
}

impl KeyRefreshLayer {
    /// The `kid` of the request's token when the keyring does not know it.
    fn unknown_kid<B>(&self, req: &Request<B>) -> Option<String> {
        let headers = req.headers();
        let bearer = self
            .config
            .accept_bearer()
            .then(|| headers.get(header::AUTHORIZATION))
            .flatten()
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        let token = bearer.or_else(|| self.config.cookie().find(headers))?;
        peek_kid(token).filter(|kid| !self.config.codec().knows(kid))
    }
}

type BoxFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

pin_project! {
    /// Response future of [`KeyRefresh`].
    #[must_use = "futures do nothing unless polled"]
    pub struct KeyRefreshFuture<F, R, E> {
        #[pin]
        kind: Kind<F, R, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, R, E> {
        Direct { #[pin] future: F },
        Refreshing { future: BoxFuture<R, E> },
    }
}

impl<F, R, E> Future for KeyRefreshFuture<F, R, E>
where
    F: Future<Output = Result<R, E>>,
{
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Direct { future } => future.poll(cx),
            KindProj::Refreshing { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for KeyRefresh<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = KeyRefreshFuture<S::Future, Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let Some(kid) = self.layer.unknown_kid(&req) else {
            return KeyRefreshFuture {
                kind: Kind::Direct {
                    future: self.inner.call(req),
                },
            };
        };
        // The ready service goes with the request; a clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        KeyRefreshFuture {
            kind: Kind::Refreshing {
                future: Box::pin(async move {
                    layer
                        .refresher
                        .refresh_for(layer.config.codec(), Some(&kid))
                        .await;
                    inner.call(req).await
                }),
            },
        }
    }
}
