//! What handlers see and say: the [`Session`] they extract, and the [`Login`],
//! [`Logout`], [`LogoutAll`] and [`Refresh`] response parts they return for the layer to
//! act on.

use std::fmt;
use std::sync::Arc;

use axum_core::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::claims::{Claims, Policy};
use crate::csrf::CsrfToken;
use crate::error::EncodeError;

/// What app data in a session must be: small, serializable, cloneable, shareable.
/// Implemented for every such type; use `()` for none.
pub trait SessionData: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> SessionData for T {}

/// The session of the current request, as verified by the layer.
///
/// Extract it in a handler (`Session<T>` answers 401 when there is none; use
/// `Option<Session<T>>` for routes that work either way). Cheap to clone.
pub struct Session<T = ()> {
    pub(crate) claims: Arc<Claims<T>>,
    pub(crate) policy: Policy,
    pub(crate) now: i64,
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        Self {
            claims: self.claims.clone(),
            policy: self.policy,
            now: self.now,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sub", &self.claims.sub)
            .field("sid", &self.claims.sid)
            .field("data", &self.claims.data)
            .finish_non_exhaustive()
    }
}

impl<T> Session<T> {
    /// The user id (`sub`).
    pub fn subject(&self) -> &str {
        &self.claims.sub
    }
    /// The session id (`sid`).
    pub fn id(&self) -> &str {
        &self.claims.sid
    }
    /// The app's data.
    pub fn data(&self) -> &T {
        &self.claims.data
    }
    /// The CSRF token to give the front end (it sends it back in `X-CSRF-Token`).
    pub fn csrf(&self) -> &str {
        self.claims.csrf.expose()
    }
    /// All claims of the token this request carried.
    pub fn claims(&self) -> &Claims<T> {
        &self.claims
    }
    /// Login time (UNIX seconds).
    pub fn auth_time(&self) -> i64 {
        self.claims.auth_time
    }
    /// Last activity recorded in the token (UNIX seconds).
    pub fn last_activity(&self) -> i64 {
        self.claims.lat
    }
    /// The time the layer checked this request at (UNIX seconds).
    pub fn checked_at(&self) -> i64 {
        self.now
    }
    /// When the session ends unless there is activity (UNIX seconds), as of the token
    /// this request carried.
    pub fn idle_deadline(&self) -> i64 {
        self.claims.expires_at(&self.policy)
    }
    /// When the session ends however active (UNIX seconds).
    pub fn absolute_deadline(&self) -> i64 {
        self.claims.absolute_deadline(&self.policy)
    }
    /// Seconds left at [`checked_at`](Self::checked_at).
    pub fn seconds_left(&self) -> u64 {
        self.claims.seconds_left(self.now, &self.policy)
    }
}

/// Start a session: return this (with your body) from a login handler after checking
/// credentials. The layer mints the token and sets the cookie on the way out.
///
/// The session id and CSRF token are chosen now, so the handler can put the CSRF token
/// in its body.
///
/// ```
/// # use jwt_session::Login;
/// # use axum::Json;
/// async fn login() -> Result<(Login, Json<serde_json::Value>), jwt_session::EncodeError> {
///     // … check credentials first …
///     let login = Login::new("alice", ())?;
///     let body = Json(serde_json::json!({ "user": "alice", "csrf": login.csrf() }));
///     Ok((login, body))
/// }
/// ```
#[derive(Clone)]
pub struct Login<T = ()> {
    pub(crate) sub: String,
    pub(crate) data: T,
    pub(crate) csrf: CsrfToken,
}

impl<T> fmt::Debug for Login<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

impl<T> Login<T> {
    /// A login of `sub` carrying `data`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Random`] if the operating system's RNG fails.
    pub fn new(sub: impl Into<String>, data: T) -> Result<Self, EncodeError> {
        Ok(Self {
            sub: sub.into(),
            data,
            csrf: CsrfToken::generate()?,
        })
    }

    /// The new session's CSRF token.
    pub fn csrf(&self) -> &str {
        self.csrf.expose()
    }
}

#[derive(Clone)]
pub(crate) struct PendingLogin<T>(pub(crate) Login<T>);

/// What a handler asked the layer to do with the current session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    Logout,
    LogoutAll,
    Refresh,
}

impl<T: Clone + Send + Sync + 'static> IntoResponseParts for Login<T> {
    type Error = std::convert::Infallible;
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(PendingLogin(self));
        Ok(res)
    }
}

/// Alone, an empty `200 OK` that starts the session.
impl<T: Clone + Send + Sync + 'static> IntoResponse for Login<T> {
    fn into_response(self) -> Response {
        (self, ()).into_response()
    }
}

macro_rules! ask_part {
    ($(#[$doc:meta])* $name:ident => $ask:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl IntoResponseParts for $name {
            type Error = std::convert::Infallible;
            fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
                res.extensions_mut().insert($ask);
                Ok(res)
            }
        }

        /// Alone, an empty `200 OK` carrying the request to the layer.
        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                (self, ()).into_response()
            }
        }
    };
}

ask_part!(
    /// End the current session: the layer revokes its `sid` and clears the cookie.
    Logout => Ask::Logout
);
ask_part!(
    /// End every session of the current user that logged in until now, on every device,
    /// and clear this cookie.
    LogoutAll => Ask::LogoutAll
);
ask_part!(
    /// Reissue the current session's token now (new `jti`, `lat = now`), even if not due.
    Refresh => Ask::Refresh
);
