//! New keys from the operating system's RNG, and the files that hold them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::key::{Algorithm, ED25519_PKCS8_PREFIX, Key, invalid};
use crate::error::KeyError;

/// DER prefix of an Ed25519 SPKI public key (RFC 8410 §4), before the 32-byte point.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A freshly generated key and the files that hold it.
pub struct GeneratedKey {
    /// The key, ready for a [`Keyring`](super::Keyring).
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
