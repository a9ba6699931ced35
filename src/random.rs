//! Random ids from the operating system's CSPRNG.

use crate::error::EncodeError;

/// Random URL-safe id of `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_id<const N: usize>() -> Result<String, EncodeError> {
    use base64::Engine as _;
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| EncodeError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
