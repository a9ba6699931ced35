//! CSRF tokens from HTML forms (documented on [`FormCsrfLayer`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt as _, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::cookie::CookieSettings;
use crate::layer::SessionBody;
use crate::response::{ErrorBody, error_response};

/// The form field that carries the CSRF token.
pub const CSRF_FORM_FIELD: &str = "csrf_token";

/// Default cap on a form body the layer reads to find the token: 64 KiB.
pub const DEFAULT_FORM_LIMIT: usize = 64 * 1024;

/// The CSRF token a form carried, for the session layer's check.
#[derive(Debug, Clone)]
pub(crate) struct FormCsrfToken(pub(crate) String);

/// Reads the CSRF token of HTML form posts. Made by
/// [`SessionLayer::form_csrf`](crate::SessionLayer::form_csrf); it must run before
/// (outside) the session layer.
///
/// CSRF tokens from HTML forms: [`FormCsrfLayer`] lets a plain `<form method="post">`
/// carry the session's CSRF token in a hidden field (`csrf_token`, see
/// [`Session::csrf_input`](crate::Session::csrf_input)) instead of the `X-CSRF-Token`
/// header a script sends.
///
/// For an unsafe request that carries the session cookie, a form body
/// (`application/x-www-form-urlencoded` or `multipart/form-data`) and no `X-CSRF-Token`
/// header, the layer reads the body up to a limit (64 KiB by default), takes the
/// `csrf_token` field and hands the request on **with the body intact** for the handler.
/// The session layer then checks that value exactly as it checks the header (constant
/// time; missing → 403 `csrf_missing`, wrong → 403 `csrf_mismatch`); the same-origin
/// checks are unchanged. Fail closed: a body over the limit is 413 `form_too_large`, an
/// unreadable one 400 `form_unreadable`, and nothing reaches the handler.
///
/// Get it from the session layer, so it knows the cookie:
/// [`SessionLayer::with_forms`](crate::SessionLayer::with_forms) stacks both.
#[derive(Debug, Clone)]
#[must_use]
pub struct FormCsrfLayer {
    cookie: CookieSettings,
    limit: usize,
}

impl FormCsrfLayer {
    pub(crate) fn new(cookie: CookieSettings) -> Self {
        Self {
            cookie,
            limit: DEFAULT_FORM_LIMIT,
        }
    }

    /// The most body bytes read to find the token; a larger form is refused with 413
    /// `form_too_large`. Default [`DEFAULT_FORM_LIMIT`] (64 KiB).
    pub fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }
}

impl<S> tower_layer::Layer<S> for FormCsrfLayer {
    type Service = FormCsrf<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FormCsrf {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`FormCsrfLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FormCsrf<S> {
    inner: S,
    layer: FormCsrfLayer,
}

impl<S> FormCsrf<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwrap it.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

enum FormKind {
    UrlEncoded,
    Multipart(String),
}

fn form_kind(headers: &http::HeaderMap) -> Option<FormKind> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = value.split(';').next()?.trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Some(FormKind::UrlEncoded)
    } else if mime.eq_ignore_ascii_case("multipart/form-data") {
        multer::parse_boundary(value).ok().map(FormKind::Multipart)
    } else {
        None
    }
}

type BoxFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

pin_project! {
    /// Response future of [`FormCsrf`].
    #[must_use = "futures do nothing unless polled"]
    pub struct FormCsrfFuture<F, R, E> {
        #[pin]
        kind: FormKindFuture<F, R, E>,
    }
}

pin_project! {
    #[project = FormFutureProj]
    enum FormKindFuture<F, R, E> {
        // Not a form post of a session: straight through.
        Direct { #[pin] future: F },
        // A form post: the body is read first.
        Buffered { future: BoxFuture<R, E> },
    }
}

impl<F, R, E> FormCsrfFuture<F, R, E> {
    fn direct(future: F) -> Self {
        Self {
            kind: FormKindFuture::Direct { future },
        }
    }

    fn buffered(future: BoxFuture<R, E>) -> Self {
        Self {
            kind: FormKindFuture::Buffered { future },
        }
    }
}

impl<F, R, E> Future for FormCsrfFuture<F, R, E>
where
    F: Future<Output = Result<R, E>>,
{
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FormFutureProj::Direct { future } => future.poll(cx),
            FormFutureProj::Buffered { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for FormCsrf<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: SessionBody + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = FormCsrfFuture<S::Future, Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let kind = (crate::csrf::is_unsafe(req.method())
            && !req.headers().contains_key(crate::headers::CSRF_NAME)
            && self.layer.cookie.find(req.headers()).is_some())
        .then(|| form_kind(req.headers()))
        .flatten();
        let Some(kind) = kind else {
            return FormCsrfFuture::direct(self.inner.call(req));
        };
        // The ready service goes with the request; a clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.layer.limit;
        FormCsrfFuture::buffered(Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return Ok(form_refused(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "form_too_large",
                        "the form is larger than this server reads",
                    ));
                }
                Err(e) => {
                    tracing::info!(error = %e, "form body unreadable");
                    return Ok(form_unreadable());
                }
            };
            let token = match kind {
                FormKind::UrlEncoded => form_urlencoded::parse(&bytes)
                    .find(|(name, _)| name == CSRF_FORM_FIELD)
                    .map(|(_, value)| value.into_owned()),
                FormKind::Multipart(boundary) => {
                    match multipart_token(bytes.clone(), boundary).await {
                        Ok(token) => token,
                        Err(()) => return Ok(form_unreadable()),
                    }
                }
            };
            let mut req = Request::from_parts(parts, ReqBody::from(bytes));
            if let Some(token) = token {
                req.extensions_mut().insert(FormCsrfToken(token));
            }
            inner.call(req).await
        }))
    }
}

fn form_refused<B: From<String>>(status: StatusCode, code: &str, message: &str) -> Response<B> {
    error_response(status, ErrorBody::new(code, message))
}

fn form_unreadable<B: From<String>>() -> Response<B> {
    form_refused(
        StatusCode::BAD_REQUEST,
        "form_unreadable",
        "the form body could not be read",
    )
}

/// The `csrf_token` field of a multipart body, reading every part (so a malformed body
/// anywhere is refused, not half-read).
async fn multipart_token(bytes: Bytes, boundary: String) -> Result<Option<String>, ()> {
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut token = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let is_token = field.name() == Some(CSRF_FORM_FIELD);
                let text = field.text().await.map_err(|_| ())?;
                if is_token && token.is_none() {
                    token = Some(text);
                }
            }
            Ok(None) => return Ok(token),
            Err(_) => return Err(()),
        }
    }
}
