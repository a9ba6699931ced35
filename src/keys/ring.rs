//! The keyring: keys by `kid`, one signer, rotation and the JWK Set.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::key::Key;
use crate::error::KeyError;

/// Keys by `kid`: exactly one signer, any number of verify-only keys — or, for a
/// verify-only service ([`Keyring::verify_only`]), public keys only.
///
/// Keys load from PEM (files, a directory, or bytes) or from an HMAC secret. Rotation is
/// [`Keyring::add`] → [`Keyring::promote`] → (after the absolute timeout)
/// [`Keyring::retire`]. [`Keyring::jwks`] exports public keys only. Every key type prints
/// as `REDACTED`; the underlying key material is zeroized on drop by `jsonwebtoken`.
///
/// # Key directory layout
///
/// | file | meaning |
/// | --- | --- |
/// | `<kid>.pem` | PKCS#8 private key (Ed25519 → EdDSA, P-256 → ES256): can sign |
/// | `<kid>.pub.pem` | SPKI public key: verify-only (ignored if `<kid>.pem` exists, but must match it) |
/// | `<kid>.hs256` | base64 or base64url HMAC secret of at least 32 bytes: can sign |
/// | `SIGNER` | the `kid` of the signing key; optional when exactly one key can sign |
/// | `<kid>.promoted` | when the key became the signer (UNIX seconds; written by rotation) |
/// | `<kid>.demoted` | when the key stopped signing (UNIX seconds): retired once its last token has expired |
/// | `<kid>.next` | when automatic rotation published the key as the next signer (UNIX seconds) |
/// | `.rotate.lock` | the rotators' lock ([`KEY_DIR_LOCK_FILE`](crate::KEY_DIR_LOCK_FILE)) |
///
/// Other files (e.g. `README.md`, dot files) are not loaded.
///
/// A running service follows the directory with a [`KeyWatcher`](crate::KeyWatcher) (new, promoted and
/// retired keys without a restart) and can rotate on a schedule
/// ([`KeyWatcher::rotate_every`](crate::KeyWatcher::rotate_every)); [`KeyDir`](crate::KeyDir) makes the same changes by hand, atomically.
#[derive(Clone)]
pub struct Keyring {
    signer: Arc<Key>,
    keys: HashMap<String, Arc<Key>>,
    verify_only: bool,
    /// A verify-only service's own public keys (its key directory, followed by a
    /// [`KeyWatcher`](crate::KeyWatcher)) on top of the key set's; kept when the key set
    /// is refreshed. Empty otherwise.
    local: Vec<Arc<Key>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        let local: Vec<_> = self.local.iter().map(|k| &k.kid).collect();
        f.debug_struct("Keyring")
            .field("signer", &(!self.verify_only).then_some(&self.signer.kid))
            .field("kids", &kids)
            .field("local", &local)
            .finish()
    }
}

impl Keyring {
    /// A keyring whose signer is `signer`.
    ///
    /// # Errors
    ///
    /// [`KeyError::CannotSign`] if `signer` is verify-only.
    pub fn new(signer: Key) -> Result<Self, KeyError> {
        if !signer.can_sign() {
            return Err(KeyError::CannotSign(signer.kid));
        }
        let signer = Arc::new(signer);
        Ok(Self {
            signer: signer.clone(),
            keys: HashMap::from([(signer.kid.clone(), signer)]),
            verify_only: false,
            local: Vec::new(),
        })
    }

    /// A keyring for a service that only verifies sessions another one issues: public
    /// keys only, nothing signs ([`can_sign`](Self::can_sign) is false, encoding fails,
    /// the layer never reissues). Private halves of the given keys are dropped.
    ///
    /// # Errors
    ///
    /// [`KeyError::Directory`] for an empty set, [`KeyError::DuplicateKid`], and
    /// [`KeyError::Invalid`] for an HMAC key (a shared secret is never verify-only).
    pub fn verify_only(keys: impl IntoIterator<Item = Key>) -> Result<Self, KeyError> {
        let mut map = HashMap::new();
        let mut first: Option<Arc<Key>> = None;
        for key in keys {
            let key = Arc::new(key.to_verify_only()?);
            if map.contains_key(&key.kid) {
                return Err(KeyError::DuplicateKid(key.kid.clone()));
            }
            first.get_or_insert_with(|| key.clone());
            map.insert(key.kid.clone(), key);
        }
        let signer = first.ok_or_else(|| KeyError::Directory {
            dir: "key set".into(),
            problem: "no usable public key".into(),
        })?;
        Ok(Self {
            signer,
            keys: map,
            verify_only: true,
            local: Vec::new(),
        })
    }

    /// Whether this keyring can sign (false for [`verify_only`](Self::verify_only)).
    pub fn can_sign(&self) -> bool {
        !self.verify_only && self.signer.can_sign()
    }

    /// Builder form of [`add`](Self::add).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    pub fn with_key(mut self, key: Key) -> Result<Self, KeyError> {
        self.add(key)?;
        Ok(self)
    }

    /// Add a key for verification (rotation step 1). It does not sign until promoted.
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKid`] if the `kid` is taken.
    pub fn add(&mut self, key: Key) -> Result<(), KeyError> {
        if self.keys.contains_key(&key.kid) {
            return Err(KeyError::DuplicateKid(key.kid));
        }
        self.keys.insert(key.kid.clone(), Arc::new(key));
        Ok(())
    }

    /// Make `kid` the signer (rotation step 2). The previous signer stays for verification.
    ///
    /// # Errors
    ///
    /// [`KeyError::NoSuchKey`], or [`KeyError::CannotSign`] for a verify-only key.
    pub fn promote(&mut self, kid: &str) -> Result<(), KeyError> {
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| KeyError::NoSuchKey(kid.to_owned()))?;
        if !key.can_sign() || self.verify_only {
            return Err(KeyError::CannotSign(kid.to_owned()));
        }
        self.signer = key.clone();
        Ok(())
    }

    /// Remove `kid` (rotation step 3, once the absolute timeout has passed since it last
    /// signed). Tokens that name it are refused with `session_unknown_key` from then on.
    ///
    /// # Errors
    ///
    /// [`KeyError::NoSuchKey`], or [`KeyError::RetireSigner`] for the current signer.
    pub fn retire(&mut self, kid: &str) -> Result<(), KeyError> {
        if kid == self.signer.kid && !self.verify_only {
            return Err(KeyError::RetireSigner(kid.to_owned()));
        }
        if self.verify_only && self.keys.len() == 1 && self.keys.contains_key(kid) {
            return Err(KeyError::RetireSigner(kid.to_owned()));
        }
        let removed = self
            .keys
            .remove(kid)
            .ok_or_else(|| KeyError::NoSuchKey(kid.to_owned()))?;
        if self.verify_only
            && removed.kid == self.signer.kid
            && let Some(next) = self.keys.values().next()
        {
            self.signer = next.clone();
        }
        Ok(())
    }

    /// The key that signs new tokens. In a [`verify_only`](Self::verify_only) keyring it
    /// is one of the public keys and cannot sign.
    pub fn signer(&self) -> &Key {
        &self.signer
    }

    /// The key named `kid`, if any.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid).map(|k| &**k)
    }

    /// All key ids, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// This verify-only keyring with `local` as the service's own keys instead of those it
    /// had: each is added unless the key set holds its `kid` already (the same key: kept
    /// once; another key under that `kid`: skipped and logged, the set wins). A signing
    /// keyring is returned unchanged.
    pub(crate) fn with_local(&self, local: Vec<Arc<Key>>) -> Keyring {
        let mut next = self.clone();
        if !self.verify_only {
            return next;
        }
        // The previous local keys, where they were added (not where the set had them).
        for old in &self.local {
            if next.keys.get(&old.kid).is_some_and(|k| Arc::ptr_eq(k, old)) {
                next.keys.remove(&old.kid);
            }
        }
        for key in &local {
            match next.keys.get(&key.kid) {
                None => {
                    next.keys.insert(key.kid.clone(), key.clone());
                }
                Some(set) if set.same_public_key(key) => {}
                Some(_) => tracing::warn!(
                    kid = %key.kid,
                    "a local key has the kid of another key in the key set: the set's is used"
                ),
            }
        }
        if !next.keys.contains_key(&next.signer.kid) {
            // A verify-only keyring's `signer` is one of its keys (it never signs).
            let first = next
                .kids()
                .first()
                .and_then(|kid| next.keys.get(*kid))
                .cloned();
            if let Some(first) = first {
                next.signer = first;
            }
        }
        next.local = local;
        next
    }

    /// The service's own keys of a verify-only keyring (see [`with_local`](Self::with_local)).
    pub(crate) fn local(&self) -> &[Arc<Key>] {
        &self.local
    }

    /// The public JWK Set (`{"keys":[…]}`), sorted by `kid`. HMAC keys are never included.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .kids()
            .into_iter()
            .filter_map(|kid| self.get(kid)?.public_jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
