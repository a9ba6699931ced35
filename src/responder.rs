//! Your own refusal responses: a [`RefusalResponder`] turns a refusal into the app's
//! response (a login redirect for browser navigations, an HTML page, another JSON shape),
//! while the layer keeps the [`Refusal`] in the response extensions and still clears a
//! dead cookie. Built in: [`LoginRedirect`].
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode, header};
//! use jwt_session::{LoginRedirect, Session, testing::TestKit};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let kit = TestKit::new();
//! let layer = kit.layer::<()>().on_refusal(LoginRedirect::to("/login"));
//! let app = Router::new()
//!     .route("/account", get(|s: Session| async move { s.subject().to_owned() }))
//!     .route("/api/me", get(|s: Session| async move { s.subject().to_owned() }))
//!     .layer(layer);
//!
//! // A browser navigation without a session: 303 to the login page, back here after.
//! let nav = Request::get("/account?tab=2")
//!     .header("sec-fetch-mode", "navigate")
//!     .body(Body::empty())
//!     .unwrap();
//! let res = app.clone().oneshot(nav).await.unwrap();
//! assert_eq!(res.status(), StatusCode::SEE_OTHER);
//! assert_eq!(res.headers()[header::LOCATION], "/login?next=%2Faccount%3Ftab%3D2");
//!
//! // An API call keeps its JSON 401.
//! let api = Request::get("/api/me").body(Body::empty()).unwrap();
//! assert_eq!(app.oneshot(api).await.unwrap().status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use crate::error::Refusal;

/// What a responder knows about a refused request.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RefusalContext<'a> {
    /// Why.
    pub refusal: Refusal,
    /// A browser navigation (`Sec-Fetch-Mode: navigate`, or — from browsers that do not
    /// send it — a `GET`/`HEAD` whose `Accept` names `text/html`): a page load the user
    /// sees, not a script's `fetch`.
    pub navigation: bool,
    /// The request's path and query, e.g. `/account?tab=2`.
    pub path_and_query: &'a str,
    /// The request's method.
    pub method: &'a Method,
}

/// Turns a refusal into the app's own response. Return `None` to keep the default JSON
/// (`{"error":{"code","message"}}`). The layer adds the [`Refusal`] to the response
/// extensions, the removal cookie when the session is dead, and `Cache-Control:
/// no-store`, whatever the responder returns.
pub trait RefusalResponder: Send + Sync + 'static {
    /// The response for this refusal, or `None` for the default.
    fn respond(&self, refusal: &RefusalContext<'_>) -> Option<Response<String>>;
}

impl<F> RefusalResponder for F
where
    F: Fn(&RefusalContext<'_>) -> Option<Response<String>> + Send + Sync + 'static,
{
    fn respond(&self, refusal: &RefusalContext<'_>) -> Option<Response<String>> {
        self(refusal)
    }
}

/// Browser navigations refused for want of a valid session (401) go to the login page:
/// `303 See Other` to `login_url?next=<the page>`; everything else (API calls, CSRF and
/// origin refusals, a step-up) keeps its JSON.
///
/// `next` is always a path of this origin: the request's own path when [`safe_next`]
/// accepts it, else `/`. When the login handler redirects back, check it with
/// [`safe_next`] too: a `next` taken from a request can point anywhere.
#[derive(Debug, Clone)]
pub struct LoginRedirect {
    login_url: String,
}

impl LoginRedirect {
    /// Redirect to `login_url` (a path such as `/login`).
    pub fn to(login_url: impl Into<String>) -> Self {
        Self {
            login_url: login_url.into(),
        }
    }
}

impl RefusalResponder for LoginRedirect {
    fn respond(&self, ctx: &RefusalContext<'_>) -> Option<Response<String>> {
        if !ctx.navigation || ctx.refusal.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        // Only ever a path of this site (a request for `//host/x` comes back to `/`).
        let target = safe_next(ctx.path_and_query).unwrap_or("/");
        let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
        let separator = if self.login_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!("{}{separator}next={next}", self.login_url);
        let mut res = Response::new(String::new());
        *res.status_mut() = StatusCode::SEE_OTHER;
        res.headers_mut()
            .insert(header::LOCATION, HeaderValue::try_from(location).ok()?);
        Some(res)
    }
}

/// `next` if it is a path of this origin to redirect to after a login, else `None`.
///
/// Accepted: a path starting with a single `/` (`/account`, `/a?b=c#d`). Refused:
/// anything with a scheme or host (`https://evil.example`, `//evil.example`), a
/// backslash (`/\evil.example`, which browsers read as `//`), control characters or
/// whitespace, and anything over 2 KiB.
///
/// ```
/// use jwt_session::safe_next;
/// assert_eq!(safe_next("/account?tab=2"), Some("/account?tab=2"));
/// for evil in ["//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example"] {
///     assert_eq!(safe_next(evil), None);
/// }
/// ```
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.len() <= 2048
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next
            .bytes()
            .any(|b| b == b'\\' || b.is_ascii_control() || b == b' ' || b >= 0x80);
    ok.then_some(next)
}

/// Whether a request is a browser navigation (see [`RefusalContext::navigation`]).
pub(crate) fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode.as_bytes().eq_ignore_ascii_case(b"navigate");
    }
    matches!(*method, Method::GET | Method::HEAD)
        && headers
            .get(header::ACCEPT)
            .is_some_and(|a| memchr::memmem::find(a.as_bytes(), b"text/html").is_some())
}
