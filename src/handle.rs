//! [`SessionHandle`]: the app's handle on its sessions outside the request/response
//! flow — issue a token for a non-browser client, end one session, end a user's
//! sessions — and the minting rules the layer's own [`Login`] shares with it.

use std::sync::Arc;

use crate::claims::{Claims, LOGIN_DATING_SLACK};
use crate::config::SessionConfig;
use crate::denylist::RevocationStore;
use crate::error::{EncodeError, Refusal, RevocationError};
use crate::layer::LayerState;
use crate::session::{Login, Session, SessionData};

/// A cloneable handle on the sessions of one [`SessionLayer`](crate::SessionLayer): from
/// [`SessionLayer::handle`](crate::SessionLayer::handle) or the
/// [`SessionContext`](crate::SessionContext) extractor; usable in handlers and in
/// background jobs. Every operation uses the layer's configuration, clock and store —
/// nobody passes policies or clocks.
///
/// ```
/// # use jwt_session::{Login, testing::TestKit};
/// let kit = TestKit::new();
/// let handle = kit.layer::<()>().handle();
/// // A CLI client logs in: the same rules as a browser login, the token in hand.
/// let issued = handle.issue(Login::new("alice", ()).unwrap()).unwrap();
/// assert_eq!(handle.verify(&issued.token).unwrap().subject(), "alice");
/// // An admin ends that session, then every session of the user.
/// handle.revoke_session(&issued.claims.sid).unwrap();
/// assert!(handle.verify(&issued.token).is_err());
/// handle.revoke_user("alice").unwrap();
/// ```
pub struct SessionHandle<T = ()> {
    state: Arc<LayerState<T>>,
}

impl<T> Clone for SessionHandle<T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SessionHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}

/// A token issued by [`SessionHandle::issue`], with its claims.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedSession<T = ()> {
    /// The signed token: send it as `Authorization: Bearer` (with
    /// [`accept_bearer`](crate::SessionConfigBuilder::accept_bearer)) or as the cookie.
    pub token: String,
    /// Its claims (`sid`, deadlines, the CSRF token for cookie use).
    pub claims: Claims<T>,
}

impl<T: SessionData> SessionHandle<T> {
    pub(crate) fn new(state: Arc<LayerState<T>>) -> Self {
        Self { state }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.state.config
    }

    /// The revocation store.
    pub fn store(&self) -> &Arc<dyn RevocationStore> {
        &self.state.store
    }

    /// Start a session and hand back its token, by the same rules as a [`Login`] response
    /// part (dating after a "log out everywhere" of the same second, remembered
    /// lifetimes). For non-browser clients.
    ///
    /// # Errors
    ///
    /// [`EncodeError::LoginTooSoon`] right after two "log out everywhere" of this user in
    /// one second; any other [`EncodeError`] of minting.
    pub fn issue(&self, login: Login<T>) -> Result<IssuedSession<T>, EncodeError> {
        let (token, claims) = mint_login(&self.state.config, &*self.state.store, login)?;
        crate::obs::issued();
        Ok(IssuedSession { token, claims })
    }

    /// Verify a token as a request would (signature, times, revocation; no CSRF).
    ///
    /// # Errors
    ///
    /// The [`Refusal`] of the first failing check.
    pub fn verify(&self, token: &str) -> Result<Session<T>, Refusal> {
        crate::layer::verify(&self.state, token)
    }

    /// End the session `sid` (a listed session, a token you hold): its tokens are refused
    /// from now on, on every instance sharing the store. Kept until every token it could
    /// have has expired (I2, with the longest configured idle timeout, since the login
    /// time is not known here).
    ///
    /// # Errors
    ///
    /// A [`RevocationError`] if it could not be made durable; it still applies here.
    pub fn revoke_session(&self, sid: &str) -> Result<(), RevocationError> {
        let config = &self.state.config;
        let clock = config.clock();
        let result =
            self.state
                .store
                .revoke_session(sid, clock.now(), config.longest_policy(), clock);
        crate::obs::revoked(false);
        result
    }

    /// End every session of `sub` that logged in until now, on every device. Returns the
    /// cut-off (see [`RevocationStore::revoke_subject`]).
    ///
    /// # Errors
    ///
    /// As [`revoke_session`](Self::revoke_session).
    pub fn revoke_user(&self, sub: &str) -> Result<i64, RevocationError> {
        let config = &self.state.config;
        let result = self
            .state
            .store
            .revoke_subject(sub, config.longest_policy(), config.clock());
        crate::obs::revoked(true);
        result
    }
}

/// `auth_time` of a login of `sub` at `now`. A login in the same second as a "log out
/// everywhere" of this user is dated one second later, so that `auth_time <= T` does not
/// refuse it. No further: a token's `auth_time` may lead its `iat` by one second at most
/// (`Claims::check`); after a second cut-off in the same second (which already covers a
/// login dated `now + 1`) no date works until the clock moves on.
pub(crate) fn login_time(
    store: &dyn RevocationStore,
    sub: &str,
    now: i64,
) -> Result<i64, EncodeError> {
    match store.subject_revoked_at(sub) {
        Some(t) if t > now => {
            tracing::warn!("login refused: the user's sessions were ended again this second");
            Err(EncodeError::LoginTooSoon)
        }
        Some(t) if t == now => Ok(t.saturating_add(LOGIN_DATING_SLACK)),
        _ => Ok(now),
    }
}

/// Mint the token of a new login: date it, pick its policy, sign it.
pub(crate) fn mint_login<T: SessionData>(
    config: &SessionConfig,
    store: &dyn RevocationStore,
    login: Login<T>,
) -> Result<(String, Claims<T>), EncodeError> {
    let now = config.clock().now();
    let auth_time = login_time(store, &login.sub, now)?;
    let codec = config.codec();
    let claims = Claims::for_login(
        login.sub,
        login.data,
        login.csrf,
        login.remember,
        auth_time,
        now,
        config.policy_for(login.remember),
        codec.issuer(),
        codec.audience(),
    )?;
    let token = codec.encode(&claims)?;
    Ok((token, claims))
}
