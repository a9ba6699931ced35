//! Feeding the session registry (when there is one): best effort, after the fact, never
//! on a plain request and never read to decide one.

use super::LayerState;
use super::admission::Client;
use crate::claims::Claims;
use crate::registry::SessionEntry;

/// Record the session of `claims` (a login, a reissue, an update, a re-authentication).
pub(crate) fn record<T, U>(state: &LayerState<T>, claims: &Claims<U>, client: Option<&Client>) {
    let Some(registry) = &state.registry else {
        return;
    };
    let policy = state.config.policy_for(claims.rem);
    let leeway = i64::try_from(policy.leeway()).unwrap_or(i64::MAX);
    // A new session gets a listed id of its own; the registry keeps the one it has.
    let Ok(id) = crate::random::random_id::<16>() else {
        return;
    };
    let entry = SessionEntry {
        id,
        sid: claims.sid.clone(),
        sub: claims.sub.clone(),
        created: claims.auth_time,
        last_active: claims.lat,
        fresh_at: claims.fresh_at(),
        remember: claims.rem,
        user_agent: client.and_then(Client::user_agent),
        ip: client.and_then(|c| c.ip(registry)),
        expires: claims.expires_at(policy).saturating_add(leeway),
    };
    if let Err(e) = registry.store.put(entry) {
        tracing::warn!(error = %e, "session registry write failed (the request is not affected)");
    }
}

/// Forget one session (`sid`), or every session of a user (`sub`).
pub(crate) fn forget<T>(state: &LayerState<T>, sid: Option<&str>, sub: Option<&str>) {
    let Some(registry) = &state.registry else {
        return;
    };
    let result = match (sid, sub) {
        (Some(sid), _) => registry.store.remove(sid),
        (None, Some(sub)) => registry.store.remove_user(sub),
        (None, None) => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "session registry write failed (the request is not affected)");
    }
}
