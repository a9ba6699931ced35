//! Time, injected.
//!
//! Every decision the crate makes about time (expiry, sliding, revocation TTLs, the
//! sweeper) asks a [`Clock`]. [`SystemClock`] is the only place in the crate that reads
//! the wall clock; tests (ours and yours, with the `test-util` feature) move a
//! [`ManualClock`] instead of sleeping (invariant I7).

use std::fmt;
use std::sync::Arc;
#[cfg(any(test, feature = "test-util"))]
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time, in whole UNIX seconds (the JWT `NumericDate` unit).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Seconds since the UNIX epoch, now.
    fn now(&self) -> i64;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> i64 {
        (**self).now()
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        // `SystemTime` directly: this runs several times per request, and chrono's
        // calendar conversion costs more than the clock read itself.
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        }
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// Available with the `test-util` feature.
///
/// ```
/// use jwt_session::{Clock, ManualClock};
/// let clock = ManualClock::new(1_700_000_000);
/// let view = clock.clone();
/// clock.advance(std::time::Duration::from_secs(90));
/// assert_eq!(view.now(), 1_700_000_090);
/// ```
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock stopped at `unix_seconds`.
    pub fn new(unix_seconds: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix_seconds)))
    }

    /// Move the clock forward by `by` (whole seconds; sub-second parts are dropped).
    pub fn advance(&self, by: std::time::Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(secs))
            })
            .ok();
    }

    /// Set the clock to `unix_seconds` (it may move backwards: useful to test skew).
    pub fn set(&self, unix_seconds: i64) {
        self.0.store(unix_seconds, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Default for ManualClock {
    /// Starts at 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(1_767_225_600)
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
