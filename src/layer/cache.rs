//! The verified-token cache and the verification every request (and
//! [`SessionLayer::verify_token`](super::SessionLayer::verify_token)) goes through.

use std::sync::Arc;

use super::LayerState;
use crate::claims::Claims;
use crate::error::Refusal;
use crate::session::{Session, SessionData};

/// Tokens whose signature and claims were verified, keyed by their exact bytes, so a
/// token seen before skips the signature and JSON work. Entries carry the keyring
/// generation read before decoding and are ignored after any rotation. Only accepted
/// tokens are cached; their times and revocation are still checked on every request.
pub(crate) struct TokenCache<T>(Option<quick_cache::sync::Cache<Box<str>, Entry<T>>>);

#[derive(Clone)]
pub(crate) struct Entry<T> {
    claims: Arc<Claims<T>>,
    generation: u64,
}

impl<T: SessionData> TokenCache<T> {
    /// A cache of `capacity` tokens; `0` turns it off.
    pub(crate) fn new(capacity: usize) -> Self {
        Self((capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)))
    }

    fn get(&self, token: &str, generation: u64) -> Option<Arc<Claims<T>>> {
        let hit = self.0.as_ref()?.get(token)?;
        (hit.generation == generation).then_some(hit.claims)
    }

    fn insert(&self, token: &str, claims: Arc<Claims<T>>, generation: u64) {
        if let Some(cache) = &self.0 {
            cache.insert(token.into(), Entry { claims, generation });
        }
    }

    fn remove(&self, token: &str) {
        if let Some(cache) = &self.0 {
            cache.remove(token);
        }
    }
}

/// Decode (or find in the verified-token cache), check times, check revocation. Every
/// error is a refusal (fail closed); only accepted tokens are cached.
pub(crate) fn verify<T: SessionData>(
    state: &LayerState<T>,
    token: &str,
) -> Result<Session<T>, Refusal> {
    let config = &state.config;
    let codec = config.codec();
    let generation = codec.generation();
    let cached = state.cache.get(token, generation);
    let fresh = cached.is_none();
    let claims = match cached {
        Some(claims) => claims,
        None => Arc::new(codec.decode::<T>(token.as_bytes())?.claims),
    };
    let now = config.clock().now();
    let policy = *config.policy_for(claims.rem);
    if let Err(reason) = claims.check(now, &policy) {
        if !fresh {
            state.cache.remove(token);
        }
        return Err(reason);
    }
    super::check_revocation(&*state.store, &claims)?;
    if fresh {
        state.cache.insert(token, claims.clone(), generation);
    }
    Ok(Session {
        claims,
        policy,
        now,
    })
}
