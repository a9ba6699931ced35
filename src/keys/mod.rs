//! Keys, keyrings and key directories (documented on [`Keyring`]).
//!
//! The files by role: `key` (one key, its algorithm, redacted `Debug`), `ring` (the
//! keyring, rotation, JWKS), `dir` (the directory layout: [`Keyring::load_dir`],
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
pub use watch::{CheckReport, DEFAULT_PUBLISH_LEAD, DEFAULT_WATCH_INTERVAL, KeyWatcher};
