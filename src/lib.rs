//! Stateless, sliding, revocable sessions for axum/tokio services.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(all(feature = "aws-lc", feature = "rust-crypto"))]
compile_error!(
    "jwt-session: enable exactly one crypto backend: `aws-lc` (default) or `rust-crypto` \
     (with --no-default-features), not both"
);
#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "jwt-session: enable exactly one crypto backend: `aws-lc` (default) or `rust-crypto`"
);

mod claims;
mod clock;
pub mod codec;
mod config;
mod cookie;
mod error;
pub mod keys;

pub use crate::claims::{Claims, CsrfToken, Policy};
#[cfg(any(test, feature = "test-util"))]
pub use crate::clock::ManualClock;
pub use crate::clock::{Clock, SystemClock};
pub use crate::codec::{Codec, Verified};
pub use crate::config::{
    DEFAULT_ABSOLUTE, DEFAULT_IDLE, DEFAULT_ISSUER, DEFAULT_LEEWAY, DEFAULT_REISSUE_AFTER,
    SessionConfig, SessionConfigBuilder,
};
pub use crate::cookie::{CookieSettings, MAX_COOKIE_LEN};
pub use crate::error::{ConfigError, EncodeError, KeyError, Refusal, RevocationError};
pub use crate::keys::{Algorithm, Key, Keyring};
pub use ::cookie::SameSite;
