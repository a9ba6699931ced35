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
    /// A JWK Set URL (e.g. `https://auth.example/.well-known/jwks.json`). `https://` is
    /// checked against the system's root certificates.
    ///
    /// Available with the `jwks` feature (without it, [`load`](Self::load) refuses it).
    Url(String),
    /// A JWK Set `https://` URL whose server certificate a private CA signed (feature
    /// `jwks`): only the CA certificates in `ca_pem` (PEM, one or more) are trusted for
    /// it, not the system's roots. See [`KeySetSource::url_with_ca`].
    UrlWithCa {
        /// The key set's URL.
        url: String,
        /// The trusted CA certificates, PEM.
        ca_pem: Vec<u8>,
    },
}

impl KeySetSource {
    /// A key set at `url` served with a certificate of a private CA: trust only the CA
    /// certificates in `ca_pem` (PEM, one or more) for it.
    pub fn url_with_ca(url: impl Into<String>, ca_pem: impl Into<Vec<u8>>) -> Self {
        KeySetSource::UrlWithCa {
            url: url.into(),
            ca_pem: ca_pem.into(),
        }
    }

    /// Fetch and parse the key set.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] when it cannot be read or fetched (an unreachable server, an HTTP
    /// error status, a certificate that is not trusted — the message says why — or a URL
    /// without the `jwks` feature), [`KeyError::Directory`] for a body over
    /// [`MAX_JWKS_BYTES`] or a CA bundle without a certificate, and the errors of
    /// [`Keyring::from_jwks`].
    pub async fn load(&self) -> Result<Keyring, KeyError> {
        let bytes = match self {
            // A small local file: read directly.
            KeySetSource::File(path) => std::fs::read(path).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })?,
            KeySetSource::Url(url) => fetch(url, None).await?,
            KeySetSource::UrlWithCa { url, ca_pem } => fetch(url, Some(ca_pem)).await?,
        };
        Keyring::from_jwks(&bytes)
    }
}

/// An error and its sources, `a: b: c` (reqwest's own message only says "error sending
/// request"; the cause, such as an untrusted certificate, is in its sources).
#[cfg(feature = "jwks")]
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(feature = "jwks")]
async fn fetch(url: &str, ca_pem: Option<&[u8]>) -> Result<Vec<u8>, KeyError> {
    let io = |e: String| KeyError::Io {
        path: url.to_owned(),
        source: std::io::Error::other(e),
    };
    // `https://`: rustls with the crate backend's provider (reqwest is built without one).
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| set_error(format!("the key set's CA bundle: {}", with_causes(&e))))?;
        if certs.is_empty() {
            return Err(set_error(
                "the key set's CA bundle holds no PEM CERTIFICATE",
            ));
        }
        builder = builder.tls_certs_only(certs);
    }
    let client = builder.build().map_err(|e| io(with_causes(&e)))?;
    let mut response = client.get(url).send().await.map_err(|e| {
        let text = with_causes(&e);
        if text.contains("certificate") {
            io(format!(
                "{text} (the server's certificate is not trusted: a private CA needs \
                 KeySetSource::UrlWithCa)"
            ))
        } else {
            io(text)
        }
    })?;
    if !response.status().is_success() {
        return Err(io(format!("HTTP {}", response.status())));
    }
    let too_large = || {
        set_error(format!(
            "the key set is over the {MAX_JWKS_BYTES}-byte limit"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err(too_large());
    }
    // Chunk by chunk: a body without `Content-Length` stops at the limit too.
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| io(with_causes(&e)))? {
        if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(not(feature = "jwks"))]
async fn fetch(url: &str, _ca_pem: Option<&[u8]>) -> Result<Vec<u8>, KeyError> {
    Err(KeyError::Io {
        path: url.to_owned(),
        source: std::io::Error::other("fetching a key set by URL needs the `jwks` feature"),
    })
}

/// Keeps a verify-only codec's keys in step with a [`KeySetSource`]: a refresh when a
/// token names an unknown `kid`, at most once per interval however many such tokens
/// arrive (a flood of random `kid`s is not a fetch amplifier). When the source cannot be
/// reached the keys it has stay in use. Public keys the service follows in its own key
/// directory ([`KeyWatcher`](crate::KeyWatcher)) are kept across refreshes.
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
            // The service's own keys (a watched key directory) stay on top of the set.
            Ok(keyring) => match codec.rotate(|current| {
                *current = keyring.with_local(current.local().to_vec());
                Ok(())
            }) {
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
