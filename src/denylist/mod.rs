//! Revocation (documented on [`RevocationStore`]).

mod journal;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod wire;

#[cfg(feature = "redis")]
pub use self::redis::{
    DEFAULT_CHANGE_LOG_LEN, DEFAULT_NAMESPACE, DEFAULT_PROPAGATION_MARGIN, RedisDenylist,
    RedisDenylistOptions, RedisStatus,
};
pub use journal::{JournalSummary, summarize as summarize_journal};
pub use memory::{DEFAULT_CAPACITY, MemoryDenylist, MemoryDenylistBuilder, RevocationEntry};

use crate::claims::Policy;
use crate::clock::Clock;
use crate::error::RevocationError;

/// What a revocation check needs to know about a token.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    /// Session id.
    pub sid: &'a str,
    /// Subject.
    pub sub: &'a str,
    /// Login time (UNIX seconds).
    pub auth_time: i64,
    /// Last activity (UNIX seconds).
    pub lat: i64,
    /// The session's data generation (`gen`): tokens below a retired generation of
    /// their session are refused.
    pub generation: u32,
}

impl<'a> TokenFacts<'a> {
    /// The facts of a token's claims.
    pub fn of<T>(claims: &'a crate::claims::Claims<T>) -> Self {
        Self {
            sid: &claims.sid,
            sub: &claims.sub,
            auth_time: claims.auth_time,
            lat: claims.lat,
            generation: claims.generation,
        }
    }
}

/// The highest generation a token can carry: below the floor of a whole-session
/// revocation (`u32::MAX`), so asking about a token of this generation tells whether the
/// session itself is revoked.
pub(crate) const NEWEST_GENERATION: u32 = u32::MAX - 1;

/// A place that records revocations and answers "is this token revoked?".
///
/// Implementations must be fast and non-blocking on [`is_revoked`](Self::is_revoked):
/// it runs on every request. Errors make the layer refuse (fail closed, I5).
///
/// Revocation: the [`RevocationStore`] trait and the bounded, swept, optionally journaled
/// in-memory backend [`MemoryDenylist`].
///
/// Revocations are keyed on the session id (`sid`), never on token bytes (an ECDSA
/// signature has two valid encodings), and on the subject for "log out everywhere".
/// Each entry lives only as long as some token it refuses could still be valid (I2):
///
/// * a session revoked at `R`: until `min(auth_time + absolute, R + idle) + leeway`;
/// * a subject revoked at `T` (every session with `auth_time <= T`): until
///   `T + absolute + leeway`.
pub trait RevocationStore: Send + Sync + 'static {
    /// Revoke session `sid` (logged in at `auth_time`). The store reads `clock` *after*
    /// the revocation is visible to [`is_revoked`](Self::is_revoked), and dates it with
    /// that reading: a reissue racing this call read its own time before its check, so
    /// every token it could still mint has `lat <=` that date (I3).
    ///
    /// # Errors
    ///
    /// A [`RevocationError`] if the revocation could not be made durable; it still
    /// applies in this process.
    fn revoke_session(
        &self,
        sid: &str,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError>;

    /// Revoke every session of `sub` that logged in at or before now. Returns the
    /// cut-off `T`: sessions with `auth_time <= T` are refused. `T` is now, or one second
    /// past an earlier cut-off of the same second (which dated a login `T + 1`).
    ///
    /// # Errors
    ///
    /// As [`revoke_session`](Self::revoke_session).
    fn revoke_subject(
        &self,
        sub: &str,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<i64, RevocationError>;

    /// Stop accepting tokens of session `sid` whose generation is below `generation`
    /// (an update that retired older tokens, see [`Update::retire_older`]); tokens of
    /// that generation and above stay valid. Kept as long as a session revocation would
    /// be (I2). A later revocation of the whole session still wins.
    ///
    /// [`Update::retire_older`]: crate::Update::retire_older
    ///
    /// The default (for stores written before generations existed) supports nothing and
    /// says so: older tokens then stay valid until they expire, and the layer logs the
    /// error. Both stores of this crate implement it.
    ///
    /// # Errors
    ///
    /// As [`revoke_session`](Self::revoke_session).
    fn retire_generations(
        &self,
        sid: &str,
        generation: u32,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        let _ = (sid, generation, auth_time, policy, clock);
        Err(RevocationError::Backend(
            "this revocation store cannot retire older tokens of a session".into(),
        ))
    }

    /// Is this token revoked: its session (or its generation of the session), its
    /// subject before its login, or (after an overflow) idle since before the watermark?
    ///
    /// # Errors
    ///
    /// A [`RevocationError`] when the store cannot answer; the layer then refuses.
    fn is_revoked(&self, token: TokenFacts<'_>) -> Result<bool, RevocationError>;

    /// The latest "all sessions before" time recorded for `sub`, if any. A login in the
    /// same second is dated one second later so that it is not refused.
    fn subject_revoked_at(&self, sub: &str) -> Option<i64>;

    /// Drop entries that can no longer refuse any unexpired token. Returns how many.
    fn sweep(&self, now: i64) -> usize;

    /// How many revocations are held.
    fn len(&self) -> usize;

    /// Whether no revocation is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// I2: how long a session revocation made at `revoked_at` must live.
pub(crate) fn session_ttl(auth_time: i64, revoked_at: i64, policy: &Policy) -> i64 {
    let idle = i64::try_from(policy.idle_timeout()).unwrap_or(i64::MAX);
    let absolute = i64::try_from(policy.absolute_timeout()).unwrap_or(i64::MAX);
    let leeway = i64::try_from(policy.leeway()).unwrap_or(i64::MAX);
    auth_time
        .saturating_add(absolute)
        .min(revoked_at.saturating_add(idle))
        .saturating_add(leeway)
}

/// I2: how long a subject revocation made at `revoked_at` must live.
pub(crate) fn subject_ttl(revoked_at: i64, policy: &Policy) -> i64 {
    let absolute = i64::try_from(policy.absolute_timeout()).unwrap_or(i64::MAX);
    let leeway = i64::try_from(policy.leeway()).unwrap_or(i64::MAX);
    revoked_at.saturating_add(absolute).saturating_add(leeway)
}
