//! Observability: what the crate logs and counts, and how it keeps secrets out.
//!
//! Every request behind the layer runs in a `session` span carrying the route and, once
//! known, a **salted hash** of the session id ([`sid_tag`]) — never the token, its
//! signature or the CSRF value (I6). Events: `session issued`, `session reissued`,
//! `session refused` (with `reason`), `session revoked` (`all = true` for log-out
//! everywhere), denylist overflow (warn), sweep, journal load, keyring rotation.
//!
//! With the `metrics` feature the same facts are counted through the `metrics` facade
//! (install any recorder, e.g. a Prometheus exporter):
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `jwt_session_refusals_total` | counter | `reason` (the refusal code) |
//! | `jwt_session_issued_total` | counter | |
//! | `jwt_session_reissues_total` | counter | |
//! | `jwt_session_revocations_total` | counter | `kind` = `session` \| `subject` |
//! | `jwt_session_denylist_evictions_total` | counter | |
//! | `jwt_session_cold_verifies_total` | counter | |
//! | `jwt_session_denylist_size` | gauge | |

use std::hash::BuildHasher as _;
use std::sync::OnceLock;

use crate::error::Refusal;

fn salt() -> &'static std::collections::hash_map::RandomState {
    static SALT: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    SALT.get_or_init(std::collections::hash_map::RandomState::new)
}

/// A log-safe tag for a session id: 16 hex digits of a keyed hash (SipHash with a
/// per-process random key). The same `sid` gives the same tag within one process, so
/// one session's events can be followed, but the tag reveals nothing about the id.
pub fn sid_tag(sid: &str) -> String {
    format!("{:016x}", salt().hash_one(sid))
}

pub(crate) fn refused(reason: Refusal, route: &str) {
    tracing::info!(reason = reason.code(), route, "session refused");
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_session_refusals_total", "reason" => reason.code()).increment(1);
}

pub(crate) fn issued() {
    tracing::info!("session issued");
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_session_issued_total").increment(1);
}

pub(crate) fn reissued() {
    tracing::debug!("session reissued");
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_session_reissues_total").increment(1);
}

pub(crate) fn revoked(all: bool) {
    tracing::info!(all, "session revoked");
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_session_revocations_total", "kind" => if all { "subject" } else { "session" })
        .increment(1);
}

/// A token verified in full (signature and claims), whatever the outcome: one not in the
/// verified-token cache, or any token with the cache off. Behind a balancer without
/// sticky sessions each instance verifies each token in full once.
pub(crate) fn cold_verify() {
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_session_cold_verifies_total").increment(1);
}

pub(crate) fn evicted() {
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_session_denylist_evictions_total").increment(1);
}

#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn denylist_size(held: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("jwt_session_denylist_size").set(held as f64);
}
