//! The test kit for applications (feature `test-util`): a manual clock the layer uses,
//! a signing key made on the spot, minting a valid cookie for any user in one call, and
//! reading `Set-Cookie` and refusal reasons off responses.
//!
//! Available with the `test-util` feature.
//!
//! ```
//! use axum::{Router, routing::post, body::Body};
//! use http::{Request, StatusCode};
//! use jwt_session::{Refusal, Session, testing::{TestKit, refusal}};
//! use std::time::Duration;
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let kit = TestKit::new();
//! let app = Router::new()
//!     .route("/notes", post(|s: Session| async move { s.subject().to_owned() }))
//!     .layer(kit.layer::<()>());
//!
//! let (token, claims) = kit.mint("alice", ()).unwrap();
//! let post = |csrf: &str| Request::post("/notes")
//!     .header("cookie", kit.cookie_header(&token))
//!     .header("x-csrf-token", csrf)
//!     .body(Body::empty())
//!     .unwrap();
//! let res = app.clone().oneshot(post(claims.csrf.expose())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//!
//! kit.advance(Duration::from_secs(31 * 60)); // past the idle timeout, no sleeping
//! let res = app.oneshot(post(claims.csrf.expose())).await.unwrap();
//! assert_eq!(refusal(&res), Some(Refusal::ExpiredIdle));
//! # }
//! ```

#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use http::Response;
use http::header::SET_COOKIE;

use crate::claims::Claims;
use crate::clock::{Clock, ManualClock};
use crate::config::{SessionConfig, SessionConfigBuilder};
use crate::denylist::MemoryDenylist;
use crate::error::{ConfigError, EncodeError, Refusal};
use crate::keys::{Algorithm, Keyring, generate};
use crate::layer::SessionLayer;
use crate::session::SessionData;

/// A session configuration for tests: a fresh Ed25519 key, a [`ManualClock`] and a
/// memory denylist, all shared with the layers it makes.
///
/// Available with the `test-util` feature.
#[derive(Debug, Clone)]
pub struct TestKit {
    clock: ManualClock,
    config: SessionConfig,
    store: Arc<MemoryDenylist>,
}

impl Default for TestKit {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKit {
    /// Default settings (idle 30 min, absolute 8 h, reissue after 60 s, leeway 5 s).
    ///
    /// # Panics
    ///
    /// Only if the operating system's RNG fails.
    pub fn new() -> Self {
        Self::configure(|b| b).expect("default test configuration")
    }

    /// Settings of your own: `configure(|b| b.idle_timeout(…).leeway(Duration::ZERO))`.
    /// The clock is the kit's, whatever `f` sets.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of an impossible setting.
    pub fn configure(
        f: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder,
    ) -> Result<Self, ConfigError> {
        let key = generate(Algorithm::EdDSA, "test-")?.key;
        let clock = ManualClock::default();
        let config = f(SessionConfig::builder(Keyring::new(key)?))
            .clock(clock.clone())
            .build()?;
        let store = MemoryDenylist::builder()
            .build(&clock)
            .map_err(|e| ConfigError::Invalid {
                field: "denylist",
                problem: e.to_string(),
            })?;
        Ok(Self {
            clock,
            config,
            store,
        })
    }

    /// Use another revocation store (e.g. a small-capacity or journaled one).
    #[must_use]
    pub fn with_store(mut self, store: Arc<MemoryDenylist>) -> Self {
        self.store = store;
        self
    }

    /// The manual clock.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Now, by the kit's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The memory denylist the kit's layers use.
    pub fn store(&self) -> &Arc<MemoryDenylist> {
        &self.store
    }

    /// A layer with the kit's configuration and store.
    pub fn layer<T: SessionData>(&self) -> SessionLayer<T> {
        SessionLayer::new(self.config.clone(), self.store.clone())
    }

    /// A valid token for a new login of `sub` now, and its claims.
    ///
    /// # Errors
    ///
    /// As [`Codec::encode`](crate::Codec::encode).
    pub fn mint<T: SessionData>(
        &self,
        sub: &str,
        data: T,
    ) -> Result<(String, Claims<T>), EncodeError> {
        let codec = self.config.codec();
        let claims = Claims::new(
            sub,
            data,
            self.now(),
            self.config.policy(),
            codec.issuer(),
            codec.audience(),
        )?;
        Ok((codec.encode(&claims)?, claims))
    }

    /// A `Cookie` header value holding `token`.
    pub fn cookie_header(&self, token: &str) -> String {
        format!("{}={token}", self.config.cookie().name())
    }

    /// A `Cookie` header value with a fresh session for `sub` whose app data is `()`
    /// (the claim `"dat": null`): for a [`SessionLayer<()>`](SessionLayer).
    ///
    /// Behind a layer with app data (`SessionLayer<UserData>`) this cookie is refused
    /// with 401 `session_data_invalid`, because `null` is not a `UserData` (not even one
    /// whose fields all have `#[serde(default)]`): use [`cookie_with`](Self::cookie_with)
    /// there. For a request that needs the CSRF token too, use [`mint`](Self::mint) and
    /// [`cookie_header`](Self::cookie_header), or a [`TestClient`].
    ///
    /// # Panics
    ///
    /// Only if the operating system's RNG fails.
    pub fn cookie(&self, sub: &str) -> String {
        self.cookie_with(sub, ())
    }

    /// A `Cookie` header value with a fresh session for `sub` carrying the app data
    /// `data`: what a `SessionLayer<T>` accepts.
    ///
    /// ```
    /// # use axum::{Router, body::Body, routing::get};
    /// # use http::{Request, StatusCode};
    /// # use jwt_session::{Session, testing::TestKit};
    /// # use serde::{Deserialize, Serialize};
    /// # use tower::ServiceExt as _;
    /// #[derive(Clone, Serialize, Deserialize)]
    /// struct UserData { role: String }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let kit = TestKit::new();
    /// let app = Router::new()
    ///     .route("/role", get(|s: Session<UserData>| async move { s.data().role.clone() }))
    ///     .layer(kit.layer::<UserData>());
    /// let cookie = kit.cookie_with("alice", UserData { role: "admin".into() });
    /// let req = Request::get("/role").header("cookie", cookie).body(Body::empty()).unwrap();
    /// let res = app.oneshot(req).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::OK);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Only if the operating system's RNG fails or `data` is too large for a token.
    pub fn cookie_with<T: SessionData>(&self, sub: &str, data: T) -> String {
        let (token, _) = self.mint(sub, data).expect("minting a test session");
        self.cookie_header(&token)
    }

    /// A [`TestClient`] for `app` (a router behind this kit's layer): a browser in a few
    /// lines.
    pub fn client(&self, app: axum::Router) -> TestClient {
        TestClient {
            kit: self.clone(),
            app,
            token: None,
            origin: None,
        }
    }

    /// The session cookie a response sets, if any.
    pub fn set_cookie<B>(&self, res: &Response<B>) -> Option<SetCookie> {
        set_cookies(res)
            .into_iter()
            .find(|c| c.name == self.config.cookie().name())
    }
}

/// One parsed `Set-Cookie` header.
///
/// Available with the `test-util` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetCookie {
    /// Cookie name.
    pub name: String,
    /// Cookie value (empty for a removal).
    pub value: String,
    /// `Max-Age` in seconds, if set.
    pub max_age: Option<i64>,
    /// The whole header line.
    pub raw: String,
}

impl SetCookie {
    /// Whether this removes the cookie (empty value and `Max-Age=0`).
    pub fn is_removal(&self) -> bool {
        self.value.is_empty() && self.max_age == Some(0)
    }

    /// A `Cookie` request header value sending this cookie back.
    pub fn as_request_header(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

/// Every `Set-Cookie` of a response, parsed.
///
/// Available with the `test-util` feature.
pub fn set_cookies<B>(res: &Response<B>) -> Vec<SetCookie> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|raw| {
            let c = cookie::Cookie::parse(raw.to_owned()).ok()?;
            Some(SetCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                max_age: c.max_age().map(|d| d.whole_seconds()),
                raw: raw.to_owned(),
            })
        })
        .collect()
}

/// The refusal reason a response carries (in its extensions), if any.
///
/// Available with the `test-util` feature.
pub fn refusal<B>(res: &Response<B>) -> Option<Refusal> {
    res.extensions().get::<Refusal>().copied()
}

/// Drives a [`Router`](axum::Router) the way a browser would, for an app's tests (from
/// [`TestKit::client`]): it keeps the session cookie (following every reissue and
/// removal), sends the session's CSRF token on unsafe requests — in `X-CSRF-Token`, or as
/// the `csrf_token` field of [`form`](TestRequest::form) bodies — and exposes each
/// response's refusal.
///
/// Available with the `test-util` feature.
///
/// ```
/// use axum::{Router, routing::{get, post}};
/// use jwt_session::{Logout, Refusal, Session, testing::TestKit};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let kit = TestKit::new();
/// let app = Router::new()
///     .route("/me", get(|s: Session| async move { s.subject().to_owned() }))
///     .route("/logout", post(|_: Session| async { Logout }))
///     .layer(kit.layer::<()>());
/// let mut browser = kit.client(app);
/// browser.login_as("alice", ());
/// assert_eq!(browser.get("/me").send().await.text(), "alice");
/// assert!(browser.post("/logout").send().await.status.is_success()); // CSRF sent for you
/// assert_eq!(browser.get("/me").send().await.refusal, Some(Refusal::Missing));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TestClient {
    kit: TestKit,
    app: axum::Router,
    token: Option<String>,
    origin: Option<String>,
}

/// One response seen by a [`TestClient`].
///
/// Available with the `test-util` feature.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestResponse {
    /// The status.
    pub status: http::StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: axum::body::Bytes,
    /// The refusal the layer (or an extractor) put in the response extensions.
    pub refusal: Option<Refusal>,
}

impl TestResponse {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
}

/// A request being built by a [`TestClient`]; [`send`](Self::send) it.
///
/// Available with the `test-util` feature.
#[derive(Debug)]
#[must_use]
pub struct TestRequest<'c> {
    client: &'c mut TestClient,
    builder: http::request::Builder,
    body: axum::body::Body,
    form: Option<Vec<(String, String)>>,
    csrf: bool,
}

impl TestClient {
    /// Start (or replace) a session for `sub` as if it had logged in: the cookie is set
    /// directly (minted with the kit's key and clock). Returns the claims.
    ///
    /// # Panics
    ///
    /// Only if the operating system's RNG fails or the data is too large for a token.
    pub fn login_as<T: SessionData>(&mut self, sub: &str, data: T) -> Claims<T> {
        let (token, claims) = self.kit.mint(sub, data).expect("minting a test session");
        self.token = Some(token);
        claims
    }

    /// Forget the session cookie, as a new browser would.
    pub fn clear_cookies(&mut self) {
        self.token = None;
    }

    /// Send `Origin: origin` on every request from now on (e.g. `https://app.example`),
    /// as a browser does on unsafe requests.
    pub fn origin(&mut self, origin: impl Into<String>) -> &mut Self {
        self.origin = Some(origin.into());
        self
    }

    /// The session token the client holds now, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The CSRF token of the session the client holds now (read from its token).
    pub fn csrf(&self) -> Option<String> {
        let token = self.token.as_deref()?;
        let verified = self
            .kit
            .config()
            .codec()
            .decode::<serde_json::Value>(token.as_bytes())
            .ok()?;
        Some(verified.claims.csrf.expose().to_owned())
    }

    /// A `GET` request.
    pub fn get(&mut self, uri: &str) -> TestRequest<'_> {
        self.request(http::Method::GET, uri)
    }

    /// A `POST` request.
    pub fn post(&mut self, uri: &str) -> TestRequest<'_> {
        self.request(http::Method::POST, uri)
    }

    /// A request with any method.
    pub fn request(&mut self, method: http::Method, uri: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            builder: http::Request::builder().method(method).uri(uri),
            body: axum::body::Body::empty(),
            form: None,
            csrf: true,
        }
    }

    fn keep_cookie<B>(&mut self, res: &Response<B>) {
        if let Some(cookie) = self.kit.set_cookie(res) {
            self.token = (!cookie.is_removal()).then_some(cookie.value);
        }
    }
}

impl TestRequest<'_> {
    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.builder = self
            .builder
            .header(http::header::CONTENT_TYPE, "application/json");
        self.body = axum::body::Body::from(value.to_string());
        self
    }

    /// An HTML form body (`application/x-www-form-urlencoded`); on unsafe methods the
    /// session's CSRF token goes in its `csrf_token` field instead of the header.
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        self.form = Some(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self
    }

    /// Do not send the CSRF token (to test a refusal).
    pub fn without_csrf(mut self) -> Self {
        self.csrf = false;
        self
    }

    /// Send it through the app; the client keeps whatever cookie the response sets.
    ///
    /// # Panics
    ///
    /// If the request cannot be built (an invalid URI or header) or the app fails.
    pub async fn send(self) -> TestResponse {
        use http_body_util::BodyExt as _;
        use tower_service::Service as _;
        let Self {
            client,
            mut builder,
            mut body,
            form,
            csrf,
        } = self;
        let unsafe_method = builder.method_ref().is_some_and(crate::csrf::is_unsafe);
        let csrf_token = (csrf && unsafe_method).then(|| client.csrf()).flatten();
        if let Some(token) = &client.token {
            builder = builder.header(http::header::COOKIE, client.kit.cookie_header(token));
        }
        if let Some(origin) = &client.origin {
            builder = builder.header(http::header::ORIGIN, origin);
        }
        match form {
            Some(mut fields) => {
                if let Some(token) = csrf_token {
                    fields.push((crate::form::CSRF_FORM_FIELD.to_owned(), token));
                }
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish();
                builder = builder.header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                body = axum::body::Body::from(encoded);
            }
            None => {
                if let Some(token) = csrf_token {
                    builder = builder.header(crate::headers::CSRF_HEADER, token);
                }
            }
        }
        let req = builder.body(body).expect("a valid test request");
        let mut app = client.app.clone();
        std::future::poll_fn(|cx| {
            tower_service::Service::<http::Request<axum::body::Body>>::poll_ready(&mut app, cx)
        })
        .await
        .expect("the router is ready");
        let res = app.call(req).await.expect("the router answers");
        client.keep_cookie(&res);
        let found = refusal(&res);
        let (parts, body) = res.into_parts();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body: body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default(),
            refusal: found,
        }
    }
}
