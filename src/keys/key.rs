//! The keyring: one signing key plus any number of verify-only keys, each with its
//! `kid` and exactly one algorithm.
//!
//! Keys load from PEM (files, a directory, or bytes) or from an HMAC secret. Rotation is
//! [`Keyring::add`] → [`Keyring::promote`] → (after the absolute timeout)
//! [`Keyring::retire`]. [`Keyring::jwks`] exports public keys only. Every key type prints
//! as `REDACTED`; the underlying key material is zeroized on drop by `jsonwebtoken`.
//!
//! # Key directory layout
//!
//! | file | meaning |
//! | --- | --- |
//! | `<kid>.pem` | PKCS#8 private key (Ed25519 → EdDSA, P-256 → ES256): can sign |
//! | `<kid>.pub.pem` | SPKI public key: verify-only (ignored if `<kid>.pem` exists, but must match it) |
//! | `<kid>.hs256` | base64 or base64url HMAC secret of at least 32 bytes: can sign |
//! | `SIGNER` | the `kid` of the signing key; optional when exactly one key can sign |
//!
//! Other files (e.g. `README.md`) are ignored.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{DecodingKey, EncodingKey};

use crate::error::KeyError;

/// The signature algorithm pinned to a key. A token's `alg` header must equal it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519 signatures (the default: small, fast to verify, no nonce pitfalls).
    #[default]
    EdDSA,
    /// ECDSA over P-256 with SHA-256.
    ES256,
    /// HMAC-SHA-256 with a shared secret (never exported in JWKS).
    HS256,
}

impl Algorithm {
    /// The JOSE name, as in the `alg` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::HS256 => "HS256",
        }
    }

    pub(crate) const fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key: a `kid`, its algorithm, the verifying half and, if it can sign, the signing half.
#[derive(Clone)]
pub struct Key {
    kid: String,
    alg: Algorithm,
    pub(crate) decoding: DecodingKey,
    pub(crate) encoding: Option<EncodingKey>,
    public_jwk: Option<Jwk>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("can_sign", &self.encoding.is_some())
            .field("material", &"REDACTED")
            .finish()
    }
}

/// Minimum HMAC secret length in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_SECRET: usize = 32;

/// Check a key id: 1–64 characters of `A-Z a-z 0-9 . _ -`.
fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKid(kid.to_owned()))
    }
}

fn invalid(kid: &str, expected: &'static str) -> KeyError {
    KeyError::Invalid {
        kid: kid.to_owned(),
        expected,
    }
}

impl Key {
    /// A key from PEM text: a PKCS#8 private key (Ed25519 or P-256; can sign) or an SPKI
    /// public key (verify-only). The algorithm is read from the key itself.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] for a bad `kid`, [`KeyError::Invalid`] for anything that
    /// is not an Ed25519 or P-256 key.
    pub fn from_pem(kid: impl Into<String>, pem: &[u8]) -> Result<Self, KeyError> {
        let kid = kid.into();
        check_kid(&kid)?;
        let text = std::str::from_utf8(pem).map_err(|_| invalid(&kid, "PEM"))?;
        if text.contains("PUBLIC KEY-----") {
            if let Ok(decoding) = DecodingKey::from_ed_pem(pem) {
                return Self::verify_only(kid, Algorithm::EdDSA, decoding);
            }
            if let Ok(decoding) = DecodingKey::from_ec_pem(pem) {
                return Self::verify_only(kid, Algorithm::ES256, decoding);
            }
            return Err(invalid(&kid, "Ed25519 or P-256 public"));
        }
        if let Ok(encoding) = EncodingKey::from_ed_pem(pem) {
            return Self::signing(kid, Algorithm::EdDSA, encoding);
        }
        if let Ok(encoding) = EncodingKey::from_ec_pem(pem) {
            return Self::signing(kid, Algorithm::ES256, encoding);
        }
        Err(invalid(&kid, "Ed25519 or P-256 PKCS#8 private"))
    }

    /// An Ed25519 signing key from its PKCS#8 DER bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::Invalid`] if the bytes are not an Ed25519 PKCS#8 key.
    pub fn ed25519_from_pkcs8_der(kid: impl Into<String>, der: &[u8]) -> Result<Self, KeyError> {
        let kid = kid.into();
        check_kid(&kid)?;
        if der.len() != 48 || der[..16] != ED25519_PKCS8_PREFIX {
            return Err(invalid(&kid, "Ed25519 PKCS#8 private"));
        }
        Self::signing(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(der))
    }

    /// An HS256 key from a shared secret of at least [`MIN_HMAC_SECRET`] bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::WeakSecret`] for a shorter secret.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Self, KeyError> {
        let kid = kid.into();
        check_kid(&kid)?;
        if secret.len() < MIN_HMAC_SECRET {
            return Err(KeyError::WeakSecret {
                kid,
                len: secret.len(),
            });
        }
        Ok(Self {
            kid,
            alg: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            public_jwk: None,
        })
    }

    fn signing(kid: String, alg: Algorithm, encoding: EncodingKey) -> Result<Self, KeyError> {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.to_jwt())
            .map_err(|_| invalid(&kid, "private"))?;
        if alg == Algorithm::ES256 && !is_p256(&jwk) {
            return Err(invalid(&kid, "P-256 private"));
        }
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| invalid(&kid, "private"))?;
        label(&mut jwk, &kid);
        Ok(Self {
            kid,
            alg,
            decoding,
            encoding: Some(encoding),
            public_jwk: Some(jwk),
        })
    }

    fn verify_only(kid: String, alg: Algorithm, decoding: DecodingKey) -> Result<Self, KeyError> {
        let mut jwk = Jwk::from_decoding_key(&decoding, Some(alg.to_jwt()))
            .map_err(|_| invalid(&kid, "public"))?;
        if alg == Algorithm::ES256 && !is_p256(&jwk) {
            return Err(invalid(&kid, "P-256 public"));
        }
        label(&mut jwk, &kid);
        Ok(Self {
            kid,
            alg,
            decoding,
            encoding: None,
            public_jwk: Some(jwk),
        })
    }

    /// The key id, as in the `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key is used with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Whether this key has a private part (or is an HMAC secret) and can sign.
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    /// This key without its private part.
    ///
    /// # Errors
    ///
    /// [`KeyError::CannotSign`]… never; HMAC keys cannot be split and return
    /// [`KeyError::Invalid`].
    pub fn to_verify_only(&self) -> Result<Self, KeyError> {
        if self.alg == Algorithm::HS256 {
            return Err(invalid(&self.kid, "asymmetric"));
        }
        Ok(Self {
            encoding: None,
            ..self.clone()
        })
    }

    /// The public JWK of this key (`None` for HMAC keys, which are never exported).
    pub fn public_jwk(&self) -> Option<serde_json::Value> {
        self.public_jwk
            .as_ref()
            .and_then(|j| serde_json::to_value(j).ok())
    }

    fn same_public_key(&self, other: &Key) -> bool {
        match (&self.public_jwk, &other.public_jwk) {
            (Some(a), Some(b)) => a.algorithm == b.algorithm,
            _ => false,
        }
    }
}

fn is_p256(jwk: &Jwk) -> bool {
    matches!(&jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(p)
        if p.curve == jsonwebtoken::jwk::EllipticCurve::P256)
}

fn label(jwk: &mut Jwk, kid: &str) {
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
}

/// Keys by `kid`: exactly one signer, any number of verify-only keys.
#[derive(Clone)]
pub struct Keyring {
    signer: Arc<Key>,
    keys: HashMap<String, Arc<Key>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Keyring")
            .field("signer", &self.signer.kid)
            .field("kids", &kids)
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
        })
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
        if !key.can_sign() {
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
        if kid == self.signer.kid {
            return Err(KeyError::RetireSigner(kid.to_owned()));
        }
        self.keys
            .remove(kid)
            .map(|_| ())
            .ok_or_else(|| KeyError::NoSuchKey(kid.to_owned()))
    }

    /// The key that signs new tokens.
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

    /// The public JWK Set (`{"keys":[…]}`), sorted by `kid`. HMAC keys are never included.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .kids()
            .into_iter()
            .filter_map(|kid| self.get(kid)?.public_jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Load a key directory (see the [module docs](self) for its layout).
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] for unreadable files, [`KeyError::Directory`] when no key can sign
    /// or the signer is ambiguous or unknown, and any error of the individual keys.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, KeyError> {
        let dir = dir.as_ref();
        let shown = dir.display().to_string();
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| KeyError::Io { path, source }
        };
        let mut private: Vec<Key> = Vec::new();
        let mut public: Vec<Key> = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io(dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let read = || std::fs::read(&path).map_err(io(&path));
            if let Some(kid) = name.strip_suffix(".pub.pem") {
                public.push(Key::from_pem(kid, &read()?)?);
            } else if let Some(kid) = name.strip_suffix(".pem") {
                private.push(Key::from_pem(kid, &read()?)?);
            } else if let Some(kid) = name.strip_suffix(".hs256") {
                let text = String::from_utf8(read()?).map_err(|_| invalid(kid, "base64 HMAC"))?;
                let text = text.trim();
                let secret = URL_SAFE_NO_PAD
                    .decode(text.trim_end_matches('='))
                    .or_else(|_| STANDARD.decode(text))
                    .map_err(|_| invalid(kid, "base64 HMAC"))?;
                private.push(Key::hs256(kid, &secret)?);
            }
        }
        let problem = |p: String| KeyError::Directory {
            dir: shown.clone(),
            problem: p,
        };
        let signer_file = dir.join("SIGNER");
        let chosen = match std::fs::read_to_string(&signer_file) {
            Ok(text) => Some(text.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(KeyError::Io {
                    path: signer_file.display().to_string(),
                    source: e,
                });
            }
        };
        let signing: Vec<&Key> = private.iter().filter(|k| k.can_sign()).collect();
        let signer_kid = match (chosen, signing.as_slice()) {
            (Some(kid), _) => kid,
            (None, [one]) => one.kid.clone(),
            (None, []) => return Err(problem("no private key (<kid>.pem or <kid>.hs256)".into())),
            (None, _) => {
                return Err(problem(
                    "several private keys: name the signer in a SIGNER file".into(),
                ));
            }
        };
        let index = private
            .iter()
            .position(|k| k.kid == signer_kid)
            .ok_or_else(|| {
                problem(format!(
                    "SIGNER names `{signer_kid}`, which has no private key"
                ))
            })?;
        let mut ring = Keyring::new(private.swap_remove(index))?;
        for key in private {
            ring.add(key)?;
        }
        for key in public {
            match ring.get(&key.kid) {
                Some(existing) if existing.same_public_key(&key) => {}
                Some(_) => {
                    return Err(problem(format!(
                        "{}.pub.pem does not match {}.pem",
                        key.kid, key.kid
                    )));
                }
                None => ring.add(key)?,
            }
        }
        Ok(ring)
    }
}

/// DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410 §7), before the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SPKI public key (RFC 8410 §4), before the 32-byte point.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A freshly generated key and the files that hold it.
pub struct GeneratedKey {
    /// The key, ready for a [`Keyring`].
    pub key: Key,
    /// The private key file's text (`<kid>.pem` or `<kid>.hs256`). Secret.
    pub private_file: String,
    /// The public key file's text (`<kid>.pub.pem`); `None` for HMAC.
    pub public_file: Option<String>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl GeneratedKey {
    /// Write `<kid>.pem` (or `<kid>.hs256`) and `<kid>.pub.pem` into `dir`; the private
    /// file is created with mode 0600 on Unix and never overwrites an existing file.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] if a file exists or cannot be written.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<(), KeyError> {
        use std::io::Write as _;
        let dir = dir.as_ref();
        let kid = self.key.kid();
        let private_name = match self.key.algorithm() {
            Algorithm::HS256 => format!("{kid}.hs256"),
            _ => format!("{kid}.pem"),
        };
        let write = |name: &str, text: &str, secret: bool| -> Result<(), KeyError> {
            let path = dir.join(name);
            let err = |source| KeyError::Io {
                path: path.display().to_string(),
                source,
            };
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            if secret {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let _ = secret;
            let mut file = options.open(&path).map_err(err)?;
            file.write_all(text.as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)
        };
        write(&private_name, &self.private_file, true)?;
        if let Some(public) = &self.public_file {
            write(&format!("{kid}.pub.pem"), public, false)?;
        }
        Ok(())
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Generate a new key with the operating system's RNG, no openssl needed.
///
/// The `kid` is `prefix` followed by the first 16 characters of the key's RFC 7638
/// thumbprint (EdDSA) or of a random id (HS256), e.g. `ed25519-Zq3…`.
/// ES256 keys are loaded, not generated (use `openssl genpkey -algorithm EC
/// -pkeyopt ec_paramgen_curve:P-256`).
///
/// # Errors
///
/// [`KeyError::Random`] if the RNG fails, [`KeyError::Invalid`] for
/// [`Algorithm::ES256`].
pub fn generate(alg: Algorithm, prefix: &str) -> Result<GeneratedKey, KeyError> {
    match alg {
        Algorithm::EdDSA => {
            let seed: [u8; 32] = random_bytes()?;
            let mut der = Vec::with_capacity(48);
            der.extend_from_slice(&ED25519_PKCS8_PREFIX);
            der.extend_from_slice(&seed);
            let probe = Key::ed25519_from_pkcs8_der("probe", &der)?;
            let jwk = probe
                .public_jwk
                .as_ref()
                .ok_or_else(|| invalid("probe", "Ed25519"))?;
            let thumb = jwk
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .map_err(|_| invalid("probe", "Ed25519"))?;
            let kid = format!("{prefix}{}", &thumb[..16.min(thumb.len())]);
            let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
                return Err(invalid(&kid, "Ed25519"));
            };
            let point = URL_SAFE_NO_PAD
                .decode(&okp.x)
                .map_err(|_| invalid(&kid, "Ed25519"))?;
            let mut spki = Vec::with_capacity(44);
            spki.extend_from_slice(&ED25519_SPKI_PREFIX);
            spki.extend_from_slice(&point);
            let private_file = pem::encode_config(&pem::Pem::new("PRIVATE KEY", der.clone()), lf());
            let public_file = pem::encode_config(&pem::Pem::new("PUBLIC KEY", spki), lf());
            let key = Key::ed25519_from_pkcs8_der(kid, &der)?;
            der.fill(0);
            Ok(GeneratedKey {
                key,
                private_file,
                public_file: Some(public_file),
            })
        }
        Algorithm::HS256 => {
            let secret: [u8; 32] = random_bytes()?;
            let id: [u8; 12] = random_bytes()?;
            let kid = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(id));
            let key = Key::hs256(kid, &secret)?;
            let private_file = format!("{}\n", URL_SAFE_NO_PAD.encode(secret));
            Ok(GeneratedKey {
                key,
                private_file,
                public_file: None,
            })
        }
        Algorithm::ES256 => Err(invalid(
            prefix,
            "generatable (ES256 keys are loaded from PEM)",
        )),
    }
}

fn lf() -> pem::EncodeConfig {
    pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF)
}
