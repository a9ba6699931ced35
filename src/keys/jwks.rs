//! Keys from a JWK Set, for services that only verify sessions another service issues:
//! [`Keyring::from_jwks`] and [`KeySetSource`], refreshed on an unknown `kid` at most once
//! per interval ([`KeyRefresher`]).

use std::time::{Duration, Instant};

use super::key::Key;
use super::ring::Keyring;
use crate::error::KeyError;

/// Largest JWK Set accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys taken from one JWK Set.
pub const MAX_JWKS_KEYS: usize = 100;
/// Default least interval between two refreshes of a key set: 30 s.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(30);

fn set_error(problem: impl Into<String>) -> KeyError {
    KeyError::Directory {
        dir: "JWK Set".into(),
        problem: problem.into(),
    }
}

impl Keyring {
    /// A [`verify_only`](Keyring::verify_only) keyring from a JWK Set (`{"keys":[…]}`, as
    /// served at `/.well-known/jwks.json`). Only keys of the algorithms this crate pins
    /// (Ed25519, P-256) with `use` absent or `sig` are taken; others (RSA, HMAC `oct`,
    /// encryption keys) are skipped and logged.
    ///
    /// # Errors
    ///
    /// [`KeyError::Directory`] for a set over [`MAX_JWKS_BYTES`] or [`MAX_JWKS_KEYS`], one
    /// that is not a JSON object with a `keys` array, or one without any usable key;
    /// [`KeyError::DuplicateKid`].
    pub fn from_jwks(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(set_error(format!(
                "{} bytes, over the {MAX_JWKS_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let set: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| set_error(format!("not JSON: {e}")))?;
        let keys = set
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| set_error("not a JWK Set: no \"keys\" array"))?;
        if keys.len() > MAX_JWKS_KEYS {
            return Err(set_error(format!(
                "{} keys, over the limit of {MAX_JWKS_KEYS}",
                keys.len()
            )));
        }
        let mut usable = Vec::new();
        for jwk in keys {
            match Key::from_jwk(jwk) {
                Ok(key) => usable.push(key),
                Err(e) => tracing::warn!(error = %e, "skipping a key of the JWK Set"),
            }
        }
        Keyring::verify_only(usable)
    }
}

/// Where a verify-only service gets its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySetSource {
    /// A JWK Set file.
    File(std::path::PathBuf),
    /// A JWK Set URL (e.g. `https://auth.example/.well-known/jwks.json`).
    ///
    /// Available with the `jwks` feature (without it, [`load`](Self::load) refuses it).
    Url(String),
}

impl KeySetSource {
    /// Fetch and parse the key set.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] when it cannot be read or fetched (or a URL without the `jwks`
    /// feature), and the errors of [`Keyring::from_jwks`].
    pub async fn load(&self) -> Result<Keyring, KeyError> {
        let bytes = match self {
            // A small local file: read directly.
            KeySetSource::File(path) => std::fs::read(path).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })?,
            KeySetSource::Url(url) => fetch(url).await?,
        };
        Keyring::from_jwks(&bytes)
    }
}

#[cfg(feature = "jwks")]
async fn fetch(url: &str) -> Result<Vec<u8>, KeyError> {
    let io = |e: String| KeyError::Io {
        path: url.to_owned(),
        source: std::io::Error::other(e),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| io(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| io(e.to_string()))?;
    if !response.status().is_success() {
        return Err(io(format!("HTTP {}", response.status())));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err(set_error("the key set is over the size limit"));
    }
    let bytes = response.bytes().await.map_err(|e| io(e.to_string()))?;
    Ok(bytes.to_vec())
}

#[cfg(not(feature = "jwks"))]
async fn fetch(url: &str) -> Result<Vec<u8>, KeyError> {
    Err(KeyError::Io {
        path: url.to_owned(),
        source: std::io::Error::other("fetching a key set by URL needs the `jwks` feature"),
    })
}

/// Keeps a verify-only codec's keys in step with a [`KeySetSource`]: a refresh when a
/// token names an unknown `kid`, at most once per interval however many such tokens
/// arrive (a flood of random `kid`s is not a fetch amplifier). When the source cannot be
/// reached the keys it has stay in use.
#[derive(Debug)]
pub struct KeyRefresher {
    source: KeySetSource,
    every: Duration,
    /// The last fetch; held across a fetch, so requests that need the same refresh wait
    /// for it instead of being refused meanwhile.
    last: tokio::sync::Mutex<Option<Instant>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl KeyRefresher {
    /// Refresh from `source` at most once per `every`.
    pub fn new(source: KeySetSource, every: Duration) -> Self {
        Self {
            source,
            every,
            last: tokio::sync::Mutex::new(None),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The source.
    pub fn source(&self) -> &KeySetSource {
        &self.source
    }

    /// How many fetches were made since start.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Refresh `codec`'s keys now if the interval allows; returns whether the keys were
    /// replaced. A failure is logged and keeps the current keys.
    pub async fn refresh(&self, codec: &crate::Codec) -> bool {
        self.refresh_for(codec, None).await
    }

    /// As [`refresh`](Self::refresh), for a token naming `kid`: a request that waited
    /// for a refresh another one started finds the key without fetching again.
    pub async fn refresh_for(&self, codec: &crate::Codec, kid: Option<&str>) -> bool {
        let mut last = self.last.lock().await;
        if kid.is_some_and(|kid| codec.knows(kid)) {
            return true;
        }
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
            return false;
        }
        *last = Some(now);
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.source.load().await {
            Ok(keyring) => match codec.replace(keyring) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, "refreshed key set refused; keeping the current keys");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "key set unreachable; keeping the current keys");
                false
            }
        }
    }
}
