//! What handlers see and say: the [`Session`] they extract, and the [`Login`],
//! [`Update`], [`Reauthenticated`], [`Refresh`], [`Logout`] and [`LogoutAll`] response
//! parts they return for the layer to act on.

use std::fmt;
use std::sync::Arc;

use axum_core::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::time::Duration;

use crate::claims::{Claims, Policy};
use crate::csrf::CsrfToken;
use crate::error::{EncodeError, Refusal};
use crate::response::ErrorBody;

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
    /// A hidden form field with the CSRF token, for an HTML form behind
    /// [`SessionLayer::with_forms`](crate::SessionLayer::with_forms).
    pub fn csrf_input(&self) -> String {
        crate::csrf::hidden_input(self.claims.csrf.expose())
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
    /// Whether this is a remembered ("remember me") session.
    pub fn remembered(&self) -> bool {
        self.claims.rem
    }
    /// When the user last proved their credentials (UNIX seconds): the login or the last
    /// re-authentication ([`Reauthenticated`]).
    pub fn fresh_at(&self) -> i64 {
        self.claims.fresh_at()
    }
    /// The session's time rules (the remembered ones for a remembered session).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Step-up for a sensitive route: `Ok` when the user proved their credentials within
    /// `max_age` (inclusive: exactly `max_age` seconds ago is still fresh), else a
    /// [`ReauthRequired`] that answers **403 `session_reauth_required`** with `max_age` in
    /// the body. The session stays valid either way; a client must not treat the 403 as
    /// the end of the session.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use jwt_session::{Session, ReauthRequired};
    /// async fn change_password(session: Session) -> Result<&'static str, ReauthRequired> {
    ///     session.require_fresh(Duration::from_secs(300))?;
    ///     Ok("changed")
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReauthRequired`] when the last proof is older than `max_age`.
    pub fn require_fresh(&self, max_age: Duration) -> Result<(), ReauthRequired> {
        let max_age = max_age.as_secs();
        let age = self.now.saturating_sub(self.fresh_at());
        if u64::try_from(age).is_ok_and(|age| age > max_age) {
            Err(ReauthRequired { max_age })
        } else {
            Ok(())
        }
    }
}

/// A sensitive route's refusal of a session that is not fresh enough (see
/// [`Session::require_fresh`]): 403 `session_reauth_required`, with the required
/// `max_age` (seconds) in the body. Not the end of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReauthRequired {
    /// How recent the last proof of credentials must be, in seconds.
    pub max_age: u64,
}

impl fmt::Display for ReauthRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (max_age {}s)",
            Refusal::ReauthRequired.code(),
            self.max_age
        )
    }
}

impl std::error::Error for ReauthRequired {}

impl IntoResponse for ReauthRequired {
    fn into_response(self) -> Response {
        let reason = Refusal::ReauthRequired;
        let body = ErrorBody::refusal(reason).with_max_age(self.max_age);
        let mut res = crate::response::error_response(reason.status(), body);
        res.extensions_mut().insert(reason);
        res
    }
}

/// Start a session: return this (with your body) from a login handler after checking
/// credentials. The layer mints the token and sets the cookie on the way out.
///
/// The session id and CSRF token are chosen now, so the handler can put the CSRF token
/// in its body. A login over a live session (the request carried one) ends that session
/// first: a login always starts a new `sid`.
///
/// ```
/// # use jwt_session::Login;
/// # use axum::Json;
/// async fn login() -> Result<(Login, Json<serde_json::Value>), jwt_session::EncodeError> {
///     // … check credentials first …
///     let login = Login::new("alice", ())?.remember(true);
///     let body = Json(serde_json::json!({ "user": "alice", "csrf": login.csrf() }));
///     Ok((login, body))
/// }
/// ```
#[derive(Clone)]
pub struct Login<T = ()> {
    pub(crate) sub: String,
    pub(crate) data: T,
    pub(crate) csrf: CsrfToken,
    pub(crate) remember: bool,
}

impl<T> fmt::Debug for Login<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("sub", &self.sub)
            .field("remember", &self.remember)
            .finish_non_exhaustive()
    }
}

impl<T> Login<T> {
    /// A login of `sub` with app data `data`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Random`] if the operating system's RNG fails.
    pub fn new(sub: impl Into<String>, data: T) -> Result<Self, EncodeError> {
        Ok(Self {
            sub: sub.into(),
            data,
            csrf: CsrfToken::generate()?,
            remember: false,
        })
    }

    /// "Remember me": `true` gives the session the remembered lifetimes
    /// ([`remember_me`](crate::SessionConfigBuilder::remember_me)) and a persistent
    /// cookie; `false` (the default) the normal ones, with a
    /// browser-session cookie when
    /// [`browser_session_cookies`](crate::SessionConfigBuilder::browser_session_cookies)
    /// is on. Carried in the token (`rem`), so every instance applies it.
    #[must_use]
    pub fn remember(mut self, remember: bool) -> Self {
        self.remember = remember;
        self
    }

    /// The CSRF token the session will have.
    pub fn csrf(&self) -> &str {
        self.csrf.expose()
    }
}

/// Change the current session's app data in place: the layer reissues now with `data` —
/// same `sid`, `auth_time`, `csrf` and freshness; `iat`/`lat` now; one new cookie.
///
/// By default older tokens of the session stay valid until they expire (they carry the
/// old data). [`retire_older`](Self::retire_older) also stops accepting them: the
/// session's generation (`gen`) is raised and the revocation store refuses tokens of
/// this `sid` below it (an I2-style entry, shared like any revocation).
///
/// A request already in flight with an older token is answered normally. With
/// `retire_older` its response reissues nothing (no cookie that would overwrite the
/// updated one) and that token is refused with `session_revoked` from then on. Without
/// it, older tokens stay fully valid: a request in flight whose reissue is due may still
/// send a token with the older data after the update's response. Use `retire_older` for
/// data that must not come back (a role, a permission).
///
/// If the new token cannot be issued (e.g. the data makes it too large), the response is
/// replaced by a 500 `session_issue_failed`: the handler asked for it. Nothing is retired
/// then: the older token stays valid.
#[derive(Clone)]
pub struct Update<T = ()> {
    pub(crate) data: T,
    pub(crate) retire_older: bool,
}

impl<T> fmt::Debug for Update<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("retire_older", &self.retire_older)
            .finish_non_exhaustive()
    }
}

impl<T> Update<T> {
    /// Replace the app data with `data`.
    pub fn new(data: T) -> Self {
        Self {
            data,
            retire_older: false,
        }
    }

    /// Also refuse every older token of this session from now on (e.g. after a role was
    /// removed: the old token must not keep the old role).
    #[must_use]
    pub fn retire_older(mut self) -> Self {
        self.retire_older = true;
        self
    }
}

#[derive(Clone)]
pub(crate) struct PendingLogin<T>(pub(crate) Login<T>);

#[derive(Clone)]
pub(crate) struct PendingUpdate<T>(pub(crate) Update<T>);

/// The data types of the `Login` / `Update` parts of a response, by name: lets a layer of
/// another data type answer `session_data_type_mismatch` instead of dropping the part
/// (the pending part itself is keyed by its type, which that layer cannot see).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PartDataTypes {
    pub(crate) login: Option<&'static str>,
    pub(crate) update: Option<&'static str>,
}

impl PartDataTypes {
    fn add(res: &mut ResponseParts, set: impl FnOnce(&mut PartDataTypes)) {
        let extensions = res.extensions_mut();
        match extensions.get_mut::<PartDataTypes>() {
            Some(types) => set(types),
            None => {
                let mut types = PartDataTypes::default();
                set(&mut types);
                extensions.insert(types);
            }
        }
    }
}

/// What the handler's response parts asked of the layer, gathered over every part of one
/// response (several parts compose; see the [`crate::layer`] docs for the order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Asks {
    pub(crate) logout: bool,
    pub(crate) logout_all: bool,
    pub(crate) refresh: bool,
    pub(crate) reauthenticated: bool,
}

impl Asks {
    fn add(res: &mut ResponseParts, set: impl FnOnce(&mut Asks)) {
        let extensions = res.extensions_mut();
        match extensions.get_mut::<Asks>() {
            Some(asks) => set(asks),
            None => {
                let mut asks = Asks::default();
                set(&mut asks);
                extensions.insert(asks);
            }
        }
    }
}

impl<T: Clone + Send + Sync + 'static> IntoResponseParts for Login<T> {
    type Error = std::convert::Infallible;
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(PendingLogin(self));
        PartDataTypes::add(&mut res, |t| t.login = Some(std::any::type_name::<T>()));
        Ok(res)
    }
}

/// Alone, an empty `200 OK` that starts the session.
impl<T: Clone + Send + Sync + 'static> IntoResponse for Login<T> {
    fn into_response(self) -> Response {
        (self, ()).into_response()
    }
}

impl<T: Clone + Send + Sync + 'static> IntoResponseParts for Update<T> {
    type Error = std::convert::Infallible;
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(PendingUpdate(self));
        PartDataTypes::add(&mut res, |t| t.update = Some(std::any::type_name::<T>()));
        Ok(res)
    }
}

/// Alone, an empty `200 OK` that updates the session.
impl<T: Clone + Send + Sync + 'static> IntoResponse for Update<T> {
    fn into_response(self) -> Response {
        (self, ()).into_response()
    }
}

macro_rules! ask_part {
    ($(#[$doc:meta])* $name:ident => $field:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl IntoResponseParts for $name {
            type Error = std::convert::Infallible;
            fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
                Asks::add(&mut res, |asks| asks.$field = true);
                Ok(res)
            }
        }

        /// Alone, an empty `200 OK`.
        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                (self, ()).into_response()
            }
        }
    };
}

ask_part!(
    /// End the current session: the layer revokes its `sid` and clears the cookie.
    Logout => logout
);
ask_part!(
    /// End every session of the current user that logged in until now, on every device,
    /// and clear this cookie.
    LogoutAll => logout_all
);
ask_part!(
    /// Reissue the current session's token now (new `jti`, `lat = now`), even if not due.
    Refresh => refresh
);
ask_part!(
    /// The user just proved their credentials again (step-up): the layer reissues now
    /// with `fresh = now`. `auth_time`, and so the absolute deadline, do not move.
    Reauthenticated => reauthenticated
);
