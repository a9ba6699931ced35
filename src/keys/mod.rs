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
//! | `<kid>.promoted` | when the key became the signer (UNIX seconds; written by rotation) |
//! | `<kid>.demoted` | when the key stopped signing (UNIX seconds): retired once its last token has expired |
//! | `.rotate.lock` | the rotators' lock ([`LOCK_FILE`]) |
//!
//! Other files (e.g. `README.md`, dot files) are not loaded.
//!
//! A running service follows the directory with a [`KeyWatcher`] (new, promoted and
//! retired keys without a restart) and can rotate on a schedule
//! ([`KeyWatcher::rotate_every`]); [`KeyDir`] makes the same changes by hand, atomically.
//!
//! The files by role: `key` (one key, its algorithm, redacted `Debug`), `ring` (the
//! keyring, rotation, JWKS), `dir` (the directory above: [`Keyring::load_dir`],
//! [`GeneratedKey::write_to`]), `generate` (new keys from the OS RNG), `rotate` (changes
//! to a directory on disk: [`KeyDir`]) and `watch` (hot reload and automatic rotation:
//! [`KeyWatcher`]).

mod dir;
mod generate;
mod jwks;
mod key;
mod ring;
mod rotate;
mod watch;

pub use generate::{GeneratedKey, generate};
pub use jwks::{DEFAULT_JWKS_REFRESH, KeyRefresher, KeySetSource, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use key::{Algorithm, Key, MIN_HMAC_SECRET};
pub use ring::Keyring;
pub use rotate::{KeyDir, KeyDirLock, KeyEntry, LOCK_FILE, Rotation};
pub use watch::{CheckReport, DEFAULT_WATCH_INTERVAL, KeyWatcher};
