//! Observability: what the crate logs and counts (documented in the crate docs'
//! "Observability" section), and the salted session tag that keeps secrets out.

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

#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn denylist_fill(held: usize, capacity: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("jwt_session_denylist_fill_ratio").set(held as f64 / capacity.max(1) as f64);
}
