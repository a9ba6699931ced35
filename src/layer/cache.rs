//! The verified-token cache and the verification every request (and
//! [`SessionLayer::verify_token`](super::SessionLayer::verify_token)) goes through.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use quick_cache::Equivalent;

use super::LayerState;
use crate::claims::Claims;
use crate::error::Refusal;
use crate::session::{Session, SessionData};

/// Tokens whose signature and claims were verified, keyed by their exact bytes, so a
/// token seen before skips the signature and JSON work. Entries carry the keyring
/// generation read before decoding and are ignored after any rotation. Only accepted
/// tokens are cached; their times and revocation are still checked on every request.
pub(crate) struct TokenCache<T>(Option<quick_cache::sync::Cache<TokenKey, Entry<T>>>);

#[derive(Clone)]
pub(crate) struct Entry<T> {
    claims: Arc<Claims<T>>,
    generation: u64,
}

/// How many bytes at the end of a token its cache hash covers.
const HASHED_TAIL: usize = 16;

/// A cached token: its exact bytes. Equal only to the very same bytes (a full
/// comparison), but *hashed* over its length and last [`HASHED_TAIL`] bytes, which are
/// signature (16 base64url characters, 96 bits). Hashing a ~500-byte token whole cost
/// more than the rest of the lookup. Only tokens whose signature was verified are ever
/// inserted, so the tails of the entries are signatures made with the keyring: no one
/// without the key can fill the cache with tokens that share a hash. A token forged to
/// share a cached one's tail lands in its bucket, fails the full comparison and is
/// decoded like any unknown token (and refused).
pub(crate) struct TokenKey(Box<str>);

/// A token being looked up, before any copy of it is made.
#[derive(Clone, Copy)]
struct Lookup<'a>(&'a [u8]);

fn hash_token<H: Hasher>(token: &[u8], state: &mut H) {
    state.write_usize(token.len());
    state.write(&token[token.len().saturating_sub(HASHED_TAIL)..]);
}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.0.as_bytes(), state);
    }
}

impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.0, state);
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for TokenKey {}

impl Equivalent<TokenKey> for Lookup<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        self.0 == key.0.as_bytes()
    }
}

impl<T: SessionData> TokenCache<T> {
    /// A cache of `capacity` tokens; `0` turns it off.
    pub(crate) fn new(capacity: usize) -> Self {
        Self((capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)))
    }

    fn get(&self, token: &[u8], generation: u64) -> Option<Arc<Claims<T>>> {
        let hit = self.0.as_ref()?.get(&Lookup(token))?;
        (hit.generation == generation).then_some(hit.claims)
    }

    fn insert(&self, token: &str, claims: Arc<Claims<T>>, generation: u64) {
        if let Some(cache) = &self.0 {
            cache.insert(TokenKey(token.into()), Entry { claims, generation });
        }
    }

    fn remove(&self, token: &[u8]) {
        if let Some(cache) = &self.0 {
            cache.remove(&Lookup(token));
        }
    }
}

/// Decode (or find in the verified-token cache), check times, check revocation. Every
/// error is a refusal (fail closed); only accepted tokens are cached.
///
/// `token` is the raw bytes the request carried: the cache is asked first (a hit is the
/// very bytes of a token the codec accepted, so valid UTF-8); on a miss, bytes that are
/// not UTF-8 are refused `session_malformed` before anything else.
pub(crate) fn verify<T: SessionData>(
    state: &LayerState<T>,
    token: &[u8],
) -> Result<Session<T>, Refusal> {
    let config = &state.config;
    let codec = config.codec();
    let generation = codec.generation();
    // `fresh`: the token as text when it was just decoded (not found in the cache).
    let (claims, fresh) = match state.cache.get(token, generation) {
        Some(claims) => (claims, None),
        None => {
            let text = std::str::from_utf8(token).map_err(|_| Refusal::Malformed)?;
            crate::obs::cold_verify();
            (Arc::new(codec.decode::<T>(token)?.claims), Some(text))
        }
    };
    let now = config.clock().now();
    let policy = *config.policy_for(claims.rem);
    if let Err(reason) = claims.check(now, &policy) {
        if fresh.is_none() {
            state.cache.remove(token);
        }
        return Err(reason);
    }
    super::check_revocation(&*state.store, &claims)?;
    if let Some(text) = fresh {
        state.cache.insert(text, claims.clone(), generation);
    }
    Ok(Session {
        claims,
        policy,
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::{HASHED_TAIL, Lookup, TokenKey};

    /// Tokens that share their hash (same length, same tail) are still told apart by the
    /// full comparison: a lookup finds only the very same bytes.
    #[test]
    fn keys_hashed_on_the_tail_match_only_the_same_bytes() {
        let cache = quick_cache::sync::Cache::<TokenKey, u32>::new(16);
        let tail = "s".repeat(HASHED_TAIL);
        let cached = format!("header.claims-of-alice.{tail}");
        let forged = format!("header.claims-of-mally.{tail}");
        cache.insert(TokenKey(cached.as_str().into()), 1);
        assert_eq!(cache.get(&Lookup(cached.as_bytes())), Some(1));
        assert_eq!(cache.get(&Lookup(forged.as_bytes())), None);
        assert_eq!(cache.get(&Lookup(&cached.as_bytes()[1..])), None);
        assert_eq!(cache.get(&Lookup(b"")), None);
        cache.insert(TokenKey(forged.as_str().into()), 2);
        assert_eq!(cache.get(&Lookup(cached.as_bytes())), Some(1));
        assert_eq!(cache.get(&Lookup(forged.as_bytes())), Some(2));
        cache.remove(&Lookup(cached.as_bytes()));
        assert_eq!(cache.get(&Lookup(cached.as_bytes())), None);
        assert_eq!(cache.get(&Lookup(forged.as_bytes())), Some(2));
        // Shorter than the tail: hashed whole.
        cache.insert(TokenKey("short".into()), 3);
        assert_eq!(cache.get(&Lookup(b"short")), Some(3));
    }
}
