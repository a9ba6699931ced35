//! The test kit for applications (feature `test-util`): a manual clock the layer uses,
//! a signing key made on the spot, minting a valid cookie for any user in one call, and
//! reading `Set-Cookie` and refusal reasons off responses.
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

    /// A `Cookie` header value with a fresh session for `sub` (no app data).
    ///
    /// # Panics
    ///
    /// Only if the operating system's RNG fails.
    pub fn cookie(&self, sub: &str) -> String {
        let (token, _) = self.mint(sub, ()).expect("minting a test session");
        self.cookie_header(&token)
    }

    /// The session cookie a response sets, if any.
    pub fn set_cookie<B>(&self, res: &Response<B>) -> Option<SetCookie> {
        set_cookies(res)
            .into_iter()
            .find(|c| c.name == self.config.cookie().name())
    }
}

/// One parsed `Set-Cookie` header.
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
pub fn refusal<B>(res: &Response<B>) -> Option<Refusal> {
    res.extensions().get::<Refusal>().copied()
}
