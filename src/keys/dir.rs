//! The key directory (see [`Keyring`](crate::Keyring) for its layout): loading a keyring
//! from it, the `SIGNER` file, and writing a generated key into it.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::generate::GeneratedKey;
use super::key::{Algorithm, Key, invalid};
use super::ring::Keyring;
use super::rotate::write_file;
use crate::error::KeyError;

impl Keyring {
    /// Load a key directory (see [`Keyring`](crate::Keyring) for its layout).
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] for unreadable files, [`KeyError::Directory`] when no key can sign
    /// or the signer is ambiguous or unknown, and any error of the individual keys.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, KeyError> {
        let dir = dir.as_ref();
        let shown = dir.display().to_string();
        let (mut private, public) = read_key_files(dir)?;
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

/// Every key file of `dir`, by name: the private keys (`<kid>.pem`, `<kid>.hs256`) and
/// the public ones (`<kid>.pub.pem`).
fn read_key_files(dir: &Path) -> Result<(Vec<Key>, Vec<Key>), KeyError> {
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
    Ok((private, public))
}

impl Keyring {
    /// The public keys of a key directory, for a verify-only service that follows one:
    /// each `<kid>.pub.pem`, and the public half of each `<kid>.pem` (which must match its
    /// `<kid>.pub.pem` if both are there). `SIGNER` is not read; HMAC secrets are skipped
    /// and logged (a shared secret is never verify-only). An empty directory has none.
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir) for unreadable or unparsable files, and
    /// [`KeyError::Directory`] for a `<kid>.pub.pem` that does not match its `<kid>.pem`.
    pub(crate) fn public_keys_in(dir: &Path) -> Result<Vec<Key>, KeyError> {
        let (private, public) = read_key_files(dir)?;
        let mut keys: Vec<Key> = Vec::new();
        for key in private {
            match key.to_verify_only() {
                Ok(key) => keys.push(key),
                Err(_) => tracing::warn!(
                    dir = %dir.display(),
                    kid = %key.kid,
                    "an HMAC secret in the key directory of a verify-only service: skipped"
                ),
            }
        }
        for key in public {
            match keys.iter().find(|k| k.kid == key.kid) {
                Some(existing) if existing.same_public_key(&key) => {}
                Some(_) => {
                    return Err(KeyError::Directory {
                        dir: dir.display().to_string(),
                        problem: format!("{}.pub.pem does not match {}.pem", key.kid, key.kid),
                    });
                }
                None => keys.push(key),
            }
        }
        Ok(keys)
    }
}

impl GeneratedKey {
    /// Write `<kid>.pem` (or `<kid>.hs256`) and `<kid>.pub.pem` into `dir`; the private
    /// file is created with mode 0600 on Unix and never overwrites an existing file. Each
    /// file is written under a temporary name and renamed into place, so a
    /// [`KeyWatcher`](super::KeyWatcher) never reads half of one.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] if a file exists or cannot be written.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<(), KeyError> {
        let dir = dir.as_ref();
        let kid = self.key.kid();
        let private_name = match self.key.algorithm() {
            Algorithm::HS256 => format!("{kid}.hs256"),
            _ => format!("{kid}.pem"),
        };
        write_file(
            dir,
            &private_name,
            self.private_file.as_bytes(),
            true,
            false,
        )?;
        if let Some(public) = &self.public_file {
            write_file(
                dir,
                &format!("{kid}.pub.pem"),
                public.as_bytes(),
                false,
                false,
            )?;
        }
        Ok(())
    }
}
