//! The process-wide rustls crypto provider, shared by the TLS clients of the crate:
//! `rediss://` (feature `redis`) and `https://` key sets (feature `jwks`).

/// Install the crate backend's rustls crypto provider as the process default, unless one
/// is installed already (by the application, or an earlier call): aws-lc-rs with the
/// `aws-lc` feature, ring with `rust-crypto`. The crate calls it before it connects over
/// TLS (`rediss://`, an `https://` key set); applications seldom need to.
///
/// One case where they do: with `rust-crypto` and `jwks`, reqwest is built with rustls
/// but no provider of its own (`rustls-no-provider`, so that aws-lc-rs is never built),
/// and that applies to every reqwest client in the program (Cargo unifies features): an
/// application that builds its own reqwest clients calls this first (or installs a
/// provider itself), else reqwest panics when building one.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_some() {
        return;
    }
    #[cfg(feature = "aws-lc")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
    let provider = rustls::crypto::ring::default_provider();
    // Losing a race with another installer is fine: there is a provider either way.
    let _ = provider.install_default();
}
