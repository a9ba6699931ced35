//! [`SessionHandle`]: the app's handle on its sessions outside the request/response
//! flow — issue a token for a non-browser client, end one session, end a user's
//! sessions — and the minting rules the layer's own [`Login`] shares with it.

use std::sync::Arc;

use crate::claims::{Claims, LOGIN_DATING_SLACK};
use crate::config::SessionConfig;
use crate::denylist::RevocationStore;
use crate::error::{EncodeError, Refusal, RevocationError};
use crate::layer::LayerState;
use crate::registry::{RegistryError, RegistryStats, SessionEntry, SessionRegistry};
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
        // Listed like a browser login (without a user agent or address).
        crate::layer::record::record(&self.state, &claims, None);
        Ok(IssuedSession { token, claims })
    }

    /// Verify a token as a request would (signature, times, revocation; no CSRF).
    ///
    /// # Errors
    ///
    /// The [`Refusal`] of the first failing check.
    pub fn verify(&self, token: &str) -> Result<Session<T>, Refusal> {
        crate::layer::verify(&self.state, token.as_bytes())
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
        crate::layer::record::forget(&self.state, Some(sid), None);
        result
    }

    /// The live sessions of `sub` in the registry, most recently active first (an
    /// operator's view of any user; for the user's own page see the `GET /session/list`
    /// route).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Off`] without a registry; [`RegistryError::Unavailable`] when it
    /// could not be read.
    pub fn list_sessions(&self, sub: &str) -> Result<Vec<SessionEntry>, RegistryError> {
        let registry = self.registry()?;
        registry
            .try_list(sub, self.state.config.clock().now())
            .map_err(RegistryError::Unavailable)
    }

    /// End the session of `sub` listed as `id` (see [`SessionEntry::id`]): revoked in the
    /// store like a logout (I1 on every instance sharing it) and dropped from the listing.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotFound`] when `sub` has no live session listed as `id` (so a
    /// user can never end, or learn about, another user's session);
    /// [`RegistryError::Off`]; [`RegistryError::Unavailable`] when the registry could not
    /// be read (nothing was ended); [`RegistryError::Revocation`] if the revocation could
    /// not be made durable.
    pub fn revoke_listed(&self, sub: &str, id: &str) -> Result<(), RegistryError> {
        let entry = self
            .list_sessions(sub)?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(RegistryError::NotFound)?;
        self.end(&entry)
    }

    /// End every listed session of `sub` but `keep_sid` (the current one); returns how
    /// many were ended.
    ///
    /// # Errors
    ///
    /// As [`revoke_listed`](Self::revoke_listed) (not [`RegistryError::NotFound`]).
    pub fn revoke_others(&self, sub: &str, keep_sid: &str) -> Result<usize, RegistryError> {
        let others: Vec<SessionEntry> = self
            .list_sessions(sub)?
            .into_iter()
            .filter(|e| e.sid != keep_sid)
            .collect();
        let mut first_error = None;
        for entry in &others {
            if let Err(e) = self.end(entry) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(others.len()),
        }
    }

    /// Counts of the registry.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Off`] without a registry; [`RegistryError::Unavailable`] when it
    /// could not be read.
    pub fn registry_stats(&self) -> Result<RegistryStats, RegistryError> {
        self.registry()?
            .try_stats(self.state.config.clock().now())
            .map_err(RegistryError::Unavailable)
    }

    fn registry(&self) -> Result<&Arc<dyn SessionRegistry>, RegistryError> {
        self.state
            .registry
            .as_ref()
            .map(|r| &r.store)
            .ok_or(RegistryError::Off)
    }

    fn end(&self, entry: &SessionEntry) -> Result<(), RegistryError> {
        let config = &self.state.config;
        let result = self.state.store.revoke_session(
            &entry.sid,
            entry.created,
            config.policy_for(entry.remember),
            config.clock(),
        );
        crate::obs::revoked(false);
        crate::layer::record::forget(&self.state, Some(&entry.sid), None);
        result.map_err(RegistryError::from)
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
        crate::layer::record::forget(&self.state, None, Some(sub));
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
