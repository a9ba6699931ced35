//! Encoding and verifying session tokens (documented on [`Codec`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::value::RawValue;

use crate::claims::Claims;
use crate::error::{EncodeError, KeyError, Refusal};
use crate::keys::{Key, Keyring};

/// Default cap on a token's length, in bytes (a cookie must fit in 4 KiB anyway).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 4096;
/// Default `typ` header of session tokens: a session-specific type, so that other JWTs
/// signed with the same key are never taken for sessions.
pub const DEFAULT_TOKEN_TYPE: &str = "session+jwt";

/// A token that passed every check of the codec: its key, algorithm, signature, type,
/// issuer and audience. Its times are not checked yet.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The claims.
    pub claims: Claims<T>,
    /// The `kid` of the key that verified it.
    pub kid: String,
}

/// Signs and verifies tokens with a [`Keyring`] that can be rotated while in use.
///
/// # Decoding
///
/// Decoding order (each step refuses with its own [`Refusal`]):
///
/// 1. length cap, before any parsing → `session_too_large`;
/// 2. three base64url parts, a JSON-object header without duplicate names and without
///    `crit` or `b64` → `session_malformed`;
/// 3. `kid` present and known — in the keyring, else among the public keys other
///    instances shared ([`knows`](Codec::knows)) → `session_unknown_key` (`jku`, `jwk`,
///    `x5u`, `x5c` are never used to find a key);
/// 4. `alg` equal to the algorithm pinned to that key (so `none` and algorithm confusion
///    fail) → `session_wrong_algorithm`;
/// 5. the signature → `session_bad_signature`;
/// 6. only then `typ`, the claims JSON, `iss` and `aud`.
///
/// Time is not checked here: that is [`Claims::check`](crate::Claims::check), against an
/// injected clock.
pub struct Codec {
    keys: ArcSwap<Keyring>,
    /// Verify-only keys other instances shared (through a `RedisKeyShare`), consulted only
    /// for a `kid` the keyring does not hold. Kept apart from the keyring, so a reload of
    /// the key directory or a refreshed key set never drops them.
    shared: ArcSwap<HashMap<String, Key>>,
    /// Bumped with every keyring change (not with shared keys): wakes a key share's
    /// publisher.
    keyring_changes: tokio::sync::watch::Sender<u64>,
    /// Held by [`rotate`](Codec::rotate) from reading the keyring to storing the next one,
    /// so two changes (a key-set refresh and a key-directory reload) never lose one
    /// another. Readers never take it.
    writer: std::sync::Mutex<()>,
    generation: AtomicU64,
    issuer: String,
    audience: String,
    typ: String,
    max_len: usize,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("keys", &*self.keys.load())
            .field("shared_keys", &self.shared.load().len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("typ", &self.typ)
            .field("max_len", &self.max_len)
            .finish()
    }
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    b64: bool,
}

/// `true` whenever the member is there, whatever its value (even `null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

impl Codec {
    /// A codec for tokens of `issuer` for `audience`, with `typ` header `typ` and a length
    /// cap of `max_len` bytes. Signs and verifies a probe with the signer first, so a
    /// broken key or crypto backend fails here, at start, not on a request.
    ///
    /// # Errors
    ///
    /// [`KeyError::RoundTrip`] if the probe fails.
    pub fn new(
        keyring: Keyring,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        typ: impl Into<String>,
        max_len: usize,
    ) -> Result<Self, KeyError> {
        if keyring.can_sign() {
            round_trip(keyring.signer())?;
        }
        Ok(Self {
            keys: ArcSwap::from_pointee(keyring),
            shared: ArcSwap::from_pointee(HashMap::new()),
            keyring_changes: tokio::sync::watch::Sender::new(0),
            writer: std::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            issuer: issuer.into(),
            audience: audience.into(),
            typ: typ.into(),
            max_len,
        })
    }

    /// The keyring in use now.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keys.load_full()
    }

    /// Change the keyring in place (add, promote, retire), atomically for every request.
    /// The new signer must pass the same sign/verify round trip as at start. Changes are
    /// serialized: each starts from the keyring the previous one stored.
    ///
    /// # Errors
    ///
    /// The error of `change`, or [`KeyError::RoundTrip`]; the keyring is then unchanged.
    pub fn rotate(
        &self,
        change: impl FnOnce(&mut Keyring) -> Result<(), KeyError>,
    ) -> Result<(), KeyError> {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = Keyring::clone(&self.keys.load());
        change(&mut next)?;
        if next.can_sign() {
            round_trip(next.signer())?;
        }
        tracing::info!(signer = next.signer().kid(), kids = ?next.kids(), "keyring rotated");
        self.keys.store(Arc::new(next));
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.keyring_changes.send_replace(generation);
        Ok(())
    }

    /// Whether a token naming `kid` finds a key here: in the keyring, or among the keys
    /// other instances shared (see `RedisKeyShare`, feature `redis`).
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.load().get(kid).is_some() || self.shared.load().contains_key(kid)
    }

    /// Replace the verify-only keys other instances shared, atomically for every request
    /// (the verified-token cache starts over). A `kid` the keyring holds is always
    /// verified with the keyring's key.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set_shared_keys(&self, keys: HashMap<String, Key>) {
        self.shared.store(Arc::new(keys));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Notified of every keyring change (a rotation, a reload, a refreshed key set).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn keyring_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.keyring_changes.subscribe()
    }

    /// Replace the whole keyring (a refreshed key set, a reloaded key directory),
    /// atomically for every request. A keyring that signs must pass the round trip.
    ///
    /// # Errors
    ///
    /// [`KeyError::RoundTrip`]; the keyring is then unchanged.
    pub fn replace(&self, keyring: Keyring) -> Result<(), KeyError> {
        self.rotate(|current| {
            *current = keyring;
            Ok(())
        })
    }

    /// Whether this codec can sign (false with a [`Keyring::verify_only`] keyring).
    pub fn can_sign(&self) -> bool {
        self.keys.load().can_sign()
    }

    /// Changes with every rotation: caches of verified tokens tag entries with the
    /// generation read *before* decoding and drop entries of older generations.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The length cap in bytes.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Sign `claims` with the current signer, naming it in `kid`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::TooLarge`] if the token would pass the length cap (too much app
    /// data), [`EncodeError::InvalidClaims`] for claims `decode` would refuse,
    /// [`EncodeError::Serialize`] / [`EncodeError::Sign`] otherwise.
    pub fn encode<T: Serialize>(&self, claims: &Claims<T>) -> Result<String, EncodeError> {
        if claims.sub.is_empty() || claims.sid.is_empty() {
            return Err(EncodeError::InvalidClaims("empty sub or sid"));
        }
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(EncodeError::InvalidClaims(
                "iss or aud differ from the configuration",
            ));
        }
        let keys = self.keys.load();
        if !keys.can_sign() {
            return Err(EncodeError::Sign(
                "this service only verifies sessions (a verify-only keyring)".into(),
            ));
        }
        let signer = keys.signer();
        let encoding = signer.encoding.as_ref().ok_or_else(|| {
            EncodeError::Sign(format!("signer `{}` has no private key", signer.kid()))
        })?;
        let mut header = jsonwebtoken::Header::new(signer.algorithm().to_jwt());
        header.kid = Some(signer.kid().to_owned());
        header.typ = Some(self.typ.clone());
        let token =
            jsonwebtoken::encode(&header, claims, encoding).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::Json(e) => EncodeError::Serialize(e.to_string()),
                _ => EncodeError::Sign(e.to_string()),
            })?;
        if token.len() > self.max_len {
            return Err(EncodeError::TooLarge {
                len: token.len(),
                max: self.max_len,
            });
        }
        Ok(token)
    }

    /// Verify `token` (see [`Codec`]'s docs for the order of checks).
    ///
    /// # Errors
    ///
    /// The [`Refusal`] of the first check that fails. Never panics, whatever the bytes.
    pub fn decode<T: DeserializeOwned>(&self, token: &[u8]) -> Result<Verified<T>, Refusal> {
        let [head, payload, signature] = split(token, self.max_len)?;
        let signed = &token[..head.len() + 1 + payload.len()];
        let head = json_object_part(head)?;
        let header: RawHeader<'_> =
            serde_json::from_slice(&head).map_err(|_| Refusal::Malformed)?;
        if header.crit || header.b64 {
            return Err(Refusal::Malformed);
        }
        let keys = self.keys.load();
        let kid = header.kid.as_deref().ok_or(Refusal::UnknownKey)?;
        let shared;
        let key = match keys.get(kid) {
            Some(key) => key,
            None => {
                shared = self.shared.load();
                shared.get(kid).ok_or(Refusal::UnknownKey)?
            }
        };
        if header.alg != key.algorithm().as_str() {
            return Err(Refusal::WrongAlgorithm);
        }
        verify_signature(key, signed, signature)?;
        match header.typ.as_deref() {
            Some(typ) if typ.eq_ignore_ascii_case(&self.typ) => {}
            _ => return Err(Refusal::WrongType),
        }
        let payload = json_object_part(payload)?;
        // The app data is read on its own, so a token whose claims are ours but whose data
        // no longer fits the app's type is told apart (`session_data_invalid`).
        let claims: Claims<Box<RawValue>> =
            serde_json::from_slice(&payload).map_err(|_| Refusal::Malformed)?;
        if claims.iss != self.issuer {
            return Err(Refusal::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(Refusal::WrongAudience);
        }
        if claims.sid.is_empty() || claims.sub.is_empty() {
            return Err(Refusal::Malformed);
        }
        let data: T = serde_json::from_str(claims.data.get()).map_err(|_| Refusal::DataInvalid)?;
        Ok(Verified {
            claims: claims.with_data(data),
            kid: key.kid().to_owned(),
        })
    }
}

/// Whether `json` opens a JSON object (serde_json then insists it is one whole object).
/// serde also fills a struct from a JSON array, field by field in order; a JOSE header and
/// a claim set must be objects (RFC 7515 §4, RFC 7519 §7.2), so anything else is refused
/// before it reaches serde.
fn is_json_object(json: &[u8]) -> bool {
    json.trim_ascii_start().first() == Some(&b'{')
}

/// Length of `header.payload` (everything before the last `.`).
/// Length cap (checked before anything else), then exactly three `.`-separated parts.
pub(crate) fn split(token: &[u8], max_len: usize) -> Result<[&[u8]; 3], Refusal> {
    if token.len() > max_len {
        return Err(Refusal::TooLarge);
    }
    let mut parts = token.split(|b| *b == b'.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(head), Some(payload), Some(signature), None) => Ok([head, payload, signature]),
        _ => Err(Refusal::Malformed),
    }
}

/// A base64url (no padding) part whose JSON is an object — not an array serde would
/// also map onto a struct.
pub(crate) fn json_object_part(part: &[u8]) -> Result<Vec<u8>, Refusal> {
    let json = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refusal::Malformed)?;
    if is_json_object(&json) {
        Ok(json)
    } else {
        Err(Refusal::Malformed)
    }
}

fn verify_signature(key: &Key, message: &[u8], signature: &[u8]) -> Result<(), Refusal> {
    let signature = std::str::from_utf8(signature).map_err(|_| Refusal::BadSignature)?;
    match jsonwebtoken::crypto::verify(signature, message, &key.decoding, key.algorithm().to_jwt())
    {
        Ok(true) => Ok(()),
        // A non-canonical or undecodable signature, a wrong length, a failed check: all
        // are bad signatures (fail closed).
        Ok(false) | Err(_) => Err(Refusal::BadSignature),
    }
}

fn round_trip(signer: &Key) -> Result<(), KeyError> {
    let fail = |detail: String| KeyError::RoundTrip {
        kid: signer.kid().to_owned(),
        detail,
    };
    let encoding = signer
        .encoding
        .as_ref()
        .ok_or_else(|| fail("no private key".into()))?;
    let alg = signer.algorithm().to_jwt();
    let probe = b"jwt-session start-up probe";
    let signature =
        jsonwebtoken::crypto::sign(probe, encoding, alg).map_err(|e| fail(e.to_string()))?;
    match jsonwebtoken::crypto::verify(&signature, probe, &signer.decoding, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(fail("the signature did not verify".into())),
        Err(e) => Err(fail(e.to_string())),
    }
}
