//! The claim set of a session token, and the pure time rules over it.
//!
//! Nothing here reads a clock, touches HTTP or knows about signatures: every function
//! takes `now` (UNIX seconds) and a [`Policy`], so each boundary is testable exactly.

use serde::{Deserialize, Serialize};

use crate::csrf::CsrfToken;
use crate::error::{ConfigError, EncodeError, Refusal};
use crate::random::random_id;

/// The time rules of a session: idle and absolute timeouts, when to reissue, and the
/// clock-skew leeway. All in whole seconds. Built by [`SessionConfig`](crate::SessionConfig)
/// or [`Policy::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    idle: u64,
    absolute: u64,
    reissue_after: u64,
    leeway: u64,
}

impl Policy {
    /// A policy from durations in seconds.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when a timeout is zero, `idle > absolute`,
    /// `reissue_after >= idle`, or `leeway >= idle`.
    pub fn new(
        idle: u64,
        absolute: u64,
        reissue_after: u64,
        leeway: u64,
    ) -> Result<Self, ConfigError> {
        if idle == 0 {
            return Err(ConfigError::Zero("idle timeout"));
        }
        if absolute == 0 {
            return Err(ConfigError::Zero("absolute timeout"));
        }
        if idle > absolute {
            return Err(ConfigError::IdleOverAbsolute { idle, absolute });
        }
        if reissue_after >= idle {
            return Err(ConfigError::ReissueAfterIdle {
                reissue: reissue_after,
                idle,
            });
        }
        if leeway >= idle {
            return Err(ConfigError::LeewayTooLarge { leeway, idle });
        }
        Ok(Self {
            idle,
            absolute,
            reissue_after,
            leeway,
        })
    }

    /// Inactivity allowed before the session ends (seconds).
    pub fn idle_timeout(&self) -> u64 {
        self.idle
    }
    /// Lifetime of a session from login, however active (seconds).
    pub fn absolute_timeout(&self) -> u64 {
        self.absolute
    }
    /// A token older than this (since its `lat`) is reissued on a successful response.
    pub fn reissue_after(&self) -> u64 {
        self.reissue_after
    }
    /// Clock-skew allowance applied to every time comparison (seconds).
    pub fn leeway(&self) -> u64 {
        self.leeway
    }
}

/// The claims of one session token.
///
/// `T` is the app's own small payload (serialized under `dat`); use `()` for none.
/// Build one with [`Claims::new`]; derive the next with [`Claims::slid`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims<T = ()> {
    /// Issuer (checked against the configured issuer).
    pub iss: String,
    /// Audience (checked against the configured audience).
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// Session id: 128 random bits, the same for every token of one login.
    pub sid: String,
    /// Token id: 128 random bits, new on every issue.
    pub jti: String,
    /// When the user logged in (UNIX seconds); the absolute timeout counts from here.
    pub auth_time: i64,
    /// When this token was issued (UNIX seconds).
    pub iat: i64,
    /// Last activity (UNIX seconds): the sliding field.
    pub lat: i64,
    /// `min(lat + idle, auth_time + absolute)`, so standard JWT verifiers enforce expiry too.
    pub exp: i64,
    /// Not before (UNIX seconds): never minted here, but honoured when present (RFC 7519
    /// §4.1.5), as any standard verifier would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// When the user last proved their credentials (UNIX seconds): the login, or a later
    /// re-authentication. Separate from `auth_time`, so re-authenticating never moves the
    /// absolute deadline. Absent in tokens minted before it existed: `auth_time` then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh: Option<i64>,
    /// A remembered ("remember me") session: its lifetimes are the configured remembered
    /// policy, and its cookie is persistent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rem: bool,
    /// The session's data generation: raised by an update that retires older tokens, so
    /// a revocation store can refuse tokens of this session below it.
    #[serde(rename = "gen", default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    /// The double-submit CSRF secret, the same for every token of one login.
    pub csrf: CsrfToken,
    /// The app's payload.
    #[serde(rename = "dat")]
    pub data: T,
}

impl<T> Claims<T> {
    /// Claims for a new login of `sub` at `now`: fresh `sid`, `jti` and `csrf`;
    /// `auth_time = iat = lat = now`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Random`] if the operating system's RNG fails.
    pub fn new(
        sub: impl Into<String>,
        data: T,
        now: i64,
        policy: &Policy,
        iss: impl Into<String>,
        aud: impl Into<String>,
    ) -> Result<Self, EncodeError> {
        let mut claims = Self {
            iss: iss.into(),
            aud: aud.into(),
            sub: sub.into(),
            sid: random_id::<16>()?,
            jti: random_id::<16>()?,
            auth_time: now,
            iat: now,
            lat: now,
            exp: 0,
            nbf: None,
            fresh: None,
            rem: false,
            generation: 0,
            csrf: CsrfToken::generate()?,
            data,
        };
        claims.exp = claims.deadline(policy);
        Ok(claims)
    }

    /// Claims for a login at `now` with a CSRF token chosen earlier and an `auth_time`
    /// that may be a second later than `now` (see `RevocationStore::subject_revoked_at`),
    /// under the policy of its kind (`remember`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_login(
        sub: String,
        data: T,
        csrf: CsrfToken,
        remember: bool,
        auth_time: i64,
        now: i64,
        policy: &Policy,
        iss: &str,
        aud: &str,
    ) -> Result<Self, EncodeError> {
        let mut claims = Self::new(sub, data, now, policy, iss, aud)?;
        claims.csrf = csrf;
        claims.rem = remember;
        claims.auth_time = auth_time;
        claims.fresh = Some(auth_time);
        claims.exp = claims.deadline(policy);
        Ok(claims)
    }

    /// A copy of the claims without the app data.
    fn without_data(&self) -> Claims<()> {
        Claims {
            iss: self.iss.clone(),
            aud: self.aud.clone(),
            sub: self.sub.clone(),
            sid: self.sid.clone(),
            jti: self.jti.clone(),
            auth_time: self.auth_time,
            iat: self.iat,
            lat: self.lat,
            exp: self.exp,
            nbf: self.nbf,
            fresh: self.fresh,
            rem: self.rem,
            generation: self.generation,
            csrf: self.csrf.clone(),
            data: (),
        }
    }

    /// The same claims with other app data.
    pub(crate) fn with_data<U>(self, data: U) -> Claims<U> {
        Claims {
            iss: self.iss,
            aud: self.aud,
            sub: self.sub,
            sid: self.sid,
            jti: self.jti,
            auth_time: self.auth_time,
            iat: self.iat,
            lat: self.lat,
            exp: self.exp,
            nbf: self.nbf,
            fresh: self.fresh,
            rem: self.rem,
            generation: self.generation,
            csrf: self.csrf,
            data,
        }
    }

    /// When the user last proved their credentials: `fresh`, or `auth_time` for tokens
    /// without it.
    pub fn fresh_at(&self) -> i64 {
        self.fresh.unwrap_or(self.auth_time)
    }

    /// `auth_time + absolute`: the session ends here however active it is.
    pub fn absolute_deadline(&self, policy: &Policy) -> i64 {
        self.auth_time.saturating_add(secs(policy.absolute))
    }

    /// `lat + idle`: the session ends here unless there is activity first.
    pub fn idle_deadline(&self, policy: &Policy) -> i64 {
        self.lat.saturating_add(secs(policy.idle))
    }

    /// When this token stops being valid: the earliest of its `exp`, the idle deadline
    /// and the absolute deadline (a token issued under a stricter policy keeps its `exp`).
    pub fn expires_at(&self, policy: &Policy) -> i64 {
        self.exp.min(self.deadline(policy))
    }

    /// Seconds from `now` until [`expires_at`](Self::expires_at) (0 once past).
    pub fn seconds_left(&self, now: i64, policy: &Policy) -> u64 {
        u64::try_from(self.expires_at(policy).saturating_sub(now)).unwrap_or(0)
    }

    fn deadline(&self, policy: &Policy) -> i64 {
        self.idle_deadline(policy)
            .min(self.absolute_deadline(policy))
    }

    /// Is the token valid at `now`? Every time claim is checked, in this order:
    ///
    /// 1. each of `auth_time`, `iat`, `lat`, `exp` (and `nbf` when present) lies in
    ///    `0..=`[`MAX_TIME`] → else [`Refusal::InvalidTimes`];
    /// 2. `iat`, `lat` and `nbf` are not later than `now + leeway` →
    ///    else [`Refusal::NotYetValid`];
    /// 3. `auth_time <= iat + 1` and `auth_time <= lat + 1`, and `fresh` (when present)
    ///    between `auth_time` and that same bound → else
    ///    [`Refusal::InvalidTimes`]. The one second allows a login in the same second as
    ///    a "log out everywhere" of its user, which is dated one second later so the
    ///    logout does not end it; an `auth_time` further ahead would slide past the
    ///    absolute cap and outlive a later "log out everywhere";
    /// 4. the absolute deadline `auth_time + absolute` → [`Refusal::ExpiredAbsolute`]
    ///    (this wins over idle);
    /// 5. the earliest of `exp` and `lat + idle` → [`Refusal::ExpiredIdle`].
    ///
    /// Leeway is applied the same way on both sides: a token is expired once
    /// `now >= deadline + leeway` and not yet valid while `iat > now + leeway`. With zero
    /// leeway, `now == exp` is expired and `now == exp - 1` is valid.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] of the first failing rule above.
    pub fn check(&self, now: i64, policy: &Policy) -> Result<(), Refusal> {
        let leeway = secs(policy.leeway);
        let late = |deadline: i64| now >= deadline.saturating_add(leeway);
        let sane = |t: i64| (0..=MAX_TIME).contains(&t);
        if ![self.auth_time, self.iat, self.lat, self.exp]
            .into_iter()
            .all(sane)
            || self.nbf.is_some_and(|nbf| !sane(nbf))
        {
            return Err(Refusal::InvalidTimes);
        }
        let ahead = now.saturating_add(leeway);
        if self.iat > ahead || self.lat > ahead || self.nbf.is_some_and(|nbf| nbf > ahead) {
            return Err(Refusal::NotYetValid);
        }
        let newest_proof = self.iat.min(self.lat).saturating_add(LOGIN_DATING_SLACK);
        if self.auth_time > newest_proof
            || self
                .fresh
                .is_some_and(|f| !sane(f) || f < self.auth_time || f > newest_proof)
        {
            return Err(Refusal::InvalidTimes);
        }
        if late(self.absolute_deadline(policy)) {
            return Err(Refusal::ExpiredAbsolute);
        }
        if late(self.exp.min(self.idle_deadline(policy))) {
            return Err(Refusal::ExpiredIdle);
        }
        Ok(())
    }

    /// Is a reissue due at `now`? True once `now - lat >= reissue_after`.
    pub fn reissue_due(&self, now: i64, policy: &Policy) -> bool {
        now.saturating_sub(self.lat) >= secs(policy.reissue_after)
    }

    /// The claims of the token that carries new app `data` at `now`: as
    /// [`slid`](Self::slid) (same `sid`, `auth_time`, `csrf`, freshness), with the data
    /// replaced and, when `retire_older`, the generation raised.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Random`] if the operating system's RNG fails.
    pub fn updated<U>(
        &self,
        data: U,
        now: i64,
        policy: &Policy,
        retire_older: bool,
    ) -> Result<Claims<U>, EncodeError> {
        let lat = now.max(self.lat);
        let mut next = Claims {
            jti: random_id::<16>()?,
            iat: lat,
            lat,
            nbf: None,
            generation: self
                .generation
                .saturating_add(u32::from(retire_older))
                .min(crate::denylist::NEWEST_GENERATION),
            ..self.without_data()
        }
        .with_data(data);
        next.exp = next.deadline(policy);
        Ok(next)
    }

    /// The claims of the token that replaces this one at `now`: same `sid`, `sub`,
    /// `auth_time`, `csrf` and data; new `jti`; `iat = lat = now` (or the old `lat`, if
    /// the clock went back);
    /// `exp = min(now + idle, auth_time + absolute)`. Never moves `auth_time` and never
    /// passes the absolute cap.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Random`] if the operating system's RNG fails.
    pub fn slid(&self, now: i64, policy: &Policy) -> Result<Self, EncodeError>
    where
        T: Clone,
    {
        let mut next = self.clone();
        next.jti = random_id::<16>()?;
        // Never backwards, even if the clock is: `auth_time <= iat + 1` must keep holding.
        next.lat = now.max(self.lat);
        next.iat = next.lat;
        next.exp = next.deadline(policy);
        Ok(next)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The latest time any claim may hold: 9999-12-31T23:59:59Z. Anything beyond is refused
/// as [`Refusal::InvalidTimes`] before any arithmetic.
pub const MAX_TIME: i64 = 253_402_300_799;

/// How far `auth_time` may lie past `iat` / `lat`: a login in the same second as a
/// "log out everywhere" is dated one second later (see [`Claims::check`]).
pub(crate) const LOGIN_DATING_SLACK: i64 = 1;

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::new(1800, 8 * 3600, 60, 0).unwrap()
    }

    #[test]
    fn new_claims_have_random_ids_of_at_least_128_bits() {
        let a = Claims::new("alice", (), 100, &policy(), "i", "a").unwrap();
        let b = Claims::new("alice", (), 100, &policy(), "i", "a").unwrap();
        assert_ne!(a.sid, b.sid);
        assert_ne!(a.jti, b.jti);
        assert_ne!(a.csrf, b.csrf);
        assert_eq!(a.sid.len(), 22); // 16 bytes, base64url
        assert_eq!(a.csrf.expose().len(), 43); // 32 bytes
        assert_eq!(a.exp, 100 + 1800);
    }

    #[test]
    fn csrf_debug_is_redacted() {
        let c = CsrfToken::generate().unwrap();
        assert_eq!(format!("{c:?}"), "CsrfToken(REDACTED)");
        assert!(c.matches(c.expose().as_bytes()));
        assert!(!c.matches(b"nope"));
    }
}
