//! One key: its `kid`, its one algorithm, the verifying and (if it can sign) the signing
//! half, with a redacted `Debug`.

use std::fmt;

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
    pub(super) kid: String,
    pub(super) alg: Algorithm,
    pub(crate) decoding: DecodingKey,
    pub(crate) encoding: Option<EncodingKey>,
    pub(super) public_jwk: Option<Jwk>,
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

pub(super) fn invalid(kid: &str, expected: &'static str) -> KeyError {
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

    /// A verify-only key from one public JWK of a JWK Set (`{"kty":"OKP","crv":"Ed25519",
    /// "x":…}` for EdDSA, `{"kty":"EC","crv":"P-256","x":…,"y":…}` for ES256), with its
    /// `kid`. The algorithm comes from the key type and curve; an `alg` member must agree
    /// with it and a `use` member must be `sig`.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] for a missing or bad `kid`; [`KeyError::Invalid`] for any
    /// other key type (HMAC `oct` keys are never taken from a key set), curve, `alg` or
    /// `use`, and for malformed key material.
    pub fn from_jwk(value: &serde_json::Value) -> Result<Self, KeyError> {
        let kid = value
            .get("kid")
            .and_then(|k| k.as_str())
            .ok_or_else(|| KeyError::InvalidKid(String::new()))?
            .to_owned();
        check_kid(&kid)?;
        let member = |name: &str| value.get(name).and_then(|v| v.as_str());
        let alg = match (member("kty"), member("crv")) {
            (Some("OKP"), Some("Ed25519")) => Algorithm::EdDSA,
            (Some("EC"), Some("P-256")) => Algorithm::ES256,
            _ => return Err(invalid(&kid, "Ed25519 (OKP) or P-256 (EC) public JWK")),
        };
        if member("alg").is_some_and(|a| a != alg.as_str()) {
            return Err(invalid(&kid, "JWK whose alg matches its key type"));
        }
        if member("use").is_some_and(|u| u != "sig") {
            return Err(invalid(&kid, "signature (use: sig) JWK"));
        }
        if value.get("d").is_some() {
            return Err(invalid(&kid, "public JWK (no private member d)"));
        }
        let mut jwk: Jwk =
            serde_json::from_value(value.clone()).map_err(|_| invalid(&kid, "well-formed JWK"))?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| invalid(&kid, "public JWK"))?;
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

    /// Whether both hold the same public key (HMAC keys: never).
    pub(super) fn same_public_key(&self, other: &Key) -> bool {
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

/// DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410 §7), before the 32-byte seed.
pub(super) const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
