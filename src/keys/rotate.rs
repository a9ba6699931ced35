//! Changing a key directory on disk, atomically: rotate (generate and promote a new
//! signer), retire a key, the schedule files (`<kid>.promoted`, `<kid>.demoted`,
//! `<kid>.next`) and the lock that lets only one rotator work at a time.
//!
//! Every file is written to a temporary name in the same directory, synced, then renamed
//! into place, so a reader (another instance's [`KeyWatcher`](super::KeyWatcher), a
//! restart) sees either the old or the new file, never half of one. A rotation writes the
//! new key's files before `SIGNER` names it.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::generate::generate;
use super::key::Algorithm;
use super::ring::Keyring;
use crate::error::KeyError;

/// Name of the lock file in a key directory (held only while a rotator changes it).
pub const LOCK_FILE: &str = ".rotate.lock";
/// Suffix of the file that records when a key became the signer (UNIX seconds).
pub(super) const PROMOTED: &str = ".promoted";
/// Suffix of the file that records when a key stopped signing (UNIX seconds).
pub(super) const DEMOTED: &str = ".demoted";
/// Suffix of the file that records when automatic rotation published a key as the next
/// signer (UNIX seconds); removed when it is promoted.
pub(super) const NEXT: &str = ".next";

/// A key directory on disk (see [`Keyring`](crate::Keyring) for its layout) and the changes
/// an operator or an automatic rotator makes to it, each atomic on disk.
///
/// ```
/// # use jwt_session::{KeyDir, generate_key, Algorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # generate_key(Algorithm::EdDSA, "k-").unwrap().write_to(tmp.path()).unwrap();
/// let dir = KeyDir::new(tmp.path());
/// let old = dir.load()?.signer().kid().to_owned();
/// let lock = dir.lock()?;
/// let rotation = dir.rotate(&lock, 1_800_000_000, None)?;
/// assert_eq!(rotation.previous, old);
/// assert_eq!(dir.load()?.signer().kid(), rotation.signer);
/// assert!(dir.load()?.get(&old).is_some()); // verify-only until retired
/// dir.retire(&lock, &old)?;
/// assert!(dir.load()?.get(&old).is_none());
/// # Ok::<(), jwt_session::KeyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct KeyDir {
    path: PathBuf,
}

/// Proof that this process holds a key directory's rotation lock ([`LOCK_FILE`]), an
/// exclusive advisory file lock: two rotators (instances sharing the directory, the
/// CLI) never change the directory at the same time. Released when dropped.
#[derive(Debug)]
pub struct KeyDirLock {
    _file: File,
    dir: PathBuf,
}

/// What a rotation did: the new signer, and the key it replaced (now verify-only).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// The `kid` of the new signer.
    pub signer: String,
    /// The `kid` of the previous signer, verify-only from now on.
    pub previous: String,
}

/// One key of a directory, as [`KeyDir::entries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyEntry {
    /// The key id.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Whether it signs new tokens (the directory's signer).
    pub signer: bool,
    /// Whether its private part (or HMAC secret) is in the directory.
    pub private: bool,
    /// When it became the signer (`<kid>.promoted`), if recorded.
    pub promoted_at: Option<i64>,
    /// When it stopped signing (`<kid>.demoted`), if recorded: it is retired once every
    /// token it signed has expired.
    pub demoted_at: Option<i64>,
    /// When automatic rotation published it as the next signer (`<kid>.next`), if it is
    /// that key: verify-only until it is promoted.
    pub published_at: Option<i64>,
    /// When its key file was last written (file system time).
    pub written: Option<SystemTime>,
}

impl KeyDir {
    /// The key directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Load its keyring ([`Keyring::load_dir`]).
    ///
    /// # Errors
    ///
    /// As [`Keyring::load_dir`].
    pub fn load(&self) -> Result<Keyring, KeyError> {
        Keyring::load_dir(&self.path)
    }

    /// Take the rotation lock, waiting while another process holds it.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] if the lock file cannot be created (a read-only directory).
    pub fn lock(&self) -> Result<KeyDirLock, KeyError> {
        let (file, path) = self.lock_file()?;
        file.lock().map_err(io(&path))?;
        Ok(KeyDirLock {
            _file: file,
            dir: self.path.clone(),
        })
    }

    /// Take the rotation lock if no one holds it; `None` when another rotator does.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] if the lock file cannot be created or locked.
    pub fn try_lock(&self) -> Result<Option<KeyDirLock>, KeyError> {
        let (file, path) = self.lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(KeyDirLock {
                _file: file,
                dir: self.path.clone(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    fn lock_file(&self) -> Result<(File, PathBuf), KeyError> {
        let path = self.path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok((file, path))
    }

    fn check_lock(&self, lock: &KeyDirLock) -> Result<(), KeyError> {
        if lock.dir == self.path {
            Ok(())
        } else {
            Err(self.problem(format!(
                "the lock held is the one of {}",
                lock.dir.display()
            )))
        }
    }

    fn problem(&self, problem: String) -> KeyError {
        KeyError::Directory {
            dir: self.path.display().to_string(),
            problem,
        }
    }

    /// Rotate: generate a new key with the signer's algorithm (`kid` = `prefix`, default
    /// `ed25519-` / `hs256-`, followed by a thumbprint or random id), write its files,
    /// record `<new>.promoted` = `now`, make it the signer (`SIGNER`, written last) and
    /// record `<old>.demoted` = `now`. The previous signer stays, verify-only, until it is
    /// [retired](Self::retire).
    ///
    /// Instances that read the directory switch when they next load it (a
    /// [`KeyWatcher`](super::KeyWatcher) within its interval), so retire the old key only
    /// once the longest absolute timeout + leeway has passed since then.
    ///
    /// # Errors
    ///
    /// The directory's load error (a broken directory is not rotated), a
    /// [`KeyError::Directory`] for an ES256 signer (ES256 keys are not generated), and
    /// [`KeyError::Io`] for a failed write (the directory is then left loadable: either
    /// the old signer or the new one signs).
    pub fn rotate(
        &self,
        lock: &KeyDirLock,
        now: i64,
        prefix: Option<&str>,
    ) -> Result<Rotation, KeyError> {
        let rotation = self.promote_new(lock, now, prefix)?;
        self.mark(lock, &rotation.previous, DEMOTED, now)?;
        Ok(rotation)
    }

    /// [`rotate`](Self::rotate) without recording the old signer's demotion: the watcher
    /// records it with the clock read after its own keyring has switched.
    pub(super) fn promote_new(
        &self,
        lock: &KeyDirLock,
        now: i64,
        prefix: Option<&str>,
    ) -> Result<Rotation, KeyError> {
        let kid = self.generate_next(lock, prefix)?;
        self.promote(lock, &kid, now)
    }

    /// Publish the next signer: generate a key with the signer's algorithm, write its
    /// files (verify-only: `SIGNER` still names the current signer) and record
    /// `<kid>.next` = `now`. Returns its `kid`.
    pub(super) fn publish_next(
        &self,
        lock: &KeyDirLock,
        now: i64,
        prefix: Option<&str>,
    ) -> Result<String, KeyError> {
        let kid = self.generate_next(lock, prefix)?;
        self.mark(lock, &kid, NEXT, now)?;
        tracing::info!(
            dir = %self.path.display(),
            next = %kid,
            "key directory: next signer published (verify-only until it is promoted)"
        );
        Ok(kid)
    }

    /// Generate a key with the signer's algorithm and write its files; its `kid`.
    fn generate_next(&self, lock: &KeyDirLock, prefix: Option<&str>) -> Result<String, KeyError> {
        self.check_lock(lock)?;
        let ring = self.load()?;
        let previous = ring.signer().kid();
        let alg = ring.signer().algorithm();
        let default_prefix = match alg {
            Algorithm::EdDSA => "ed25519-",
            Algorithm::HS256 => "hs256-",
            _ => {
                return Err(self.problem(format!(
                    "the signer `{previous}` is {alg}, which cannot be generated: add the new \
                     key's PEM file and name it in SIGNER by hand"
                )));
            }
        };
        let generated = generate(alg, prefix.unwrap_or(default_prefix))?;
        // A directory whose only private key signs without `SIGNER` would have two and no
        // signer once the new one is written: name the signer first.
        if !self.path.join("SIGNER").exists() {
            write_file(
                &self.path,
                "SIGNER",
                format!("{previous}\n").as_bytes(),
                false,
                true,
            )?;
        }
        generated.write_to(&self.path)?;
        Ok(generated.key.kid().to_owned())
    }

    /// Make `kid` (a key of the directory that can sign) the signer: record
    /// `<kid>.promoted` = `now`, write `SIGNER`, drop its `<kid>.next`.
    pub(super) fn promote(
        &self,
        lock: &KeyDirLock,
        kid: &str,
        now: i64,
    ) -> Result<Rotation, KeyError> {
        self.check_lock(lock)?;
        let ring = self.load()?;
        let previous = ring.signer().kid().to_owned();
        match ring.get(kid) {
            None => return Err(KeyError::NoSuchKey(kid.to_owned())),
            Some(key) if !key.can_sign() => return Err(KeyError::CannotSign(kid.to_owned())),
            Some(_) => {}
        }
        self.mark(lock, kid, PROMOTED, now)?;
        write_file(
            &self.path,
            "SIGNER",
            format!("{kid}\n").as_bytes(),
            false,
            true,
        )?;
        self.unmark(kid, NEXT)?;
        tracing::info!(
            dir = %self.path.display(),
            signer = %kid,
            previous = %previous,
            "key directory rotated: new signer written"
        );
        Ok(Rotation {
            signer: kid.to_owned(),
            previous,
        })
    }

    /// Retire `kid`: remove its files (private, public, then its schedule files). Tokens
    /// that name it are refused with `session_unknown_key` by every instance once it
    /// reloads the directory.
    ///
    /// # Errors
    ///
    /// The directory's load error, [`KeyError::RetireSigner`] for the signer,
    /// [`KeyError::NoSuchKey`] for a `kid` the directory does not hold, [`KeyError::Io`].
    pub fn retire(&self, lock: &KeyDirLock, kid: &str) -> Result<(), KeyError> {
        self.check_lock(lock)?;
        let ring = self.load()?;
        if ring.signer().kid() == kid {
            return Err(KeyError::RetireSigner(kid.to_owned()));
        }
        if ring.get(kid).is_none() {
            return Err(KeyError::NoSuchKey(kid.to_owned()));
        }
        self.remove_key_files(kid)?;
        tracing::info!(dir = %self.path.display(), kid, "key retired: its files are removed");
        Ok(())
    }

    pub(super) fn remove_key_files(&self, kid: &str) -> Result<(), KeyError> {
        // The schedule file last: an interrupted retirement is retried.
        let suffixes = [".pem", ".hs256", ".pub.pem", PROMOTED, NEXT, DEMOTED];
        for suffix in suffixes {
            let path = self.path.join(format!("{kid}{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        sync_dir(&self.path);
        Ok(())
    }

    /// Every key of the directory with its role and schedule, sorted by `kid`.
    ///
    /// # Errors
    ///
    /// The directory's load error.
    pub fn entries(&self) -> Result<Vec<KeyEntry>, KeyError> {
        let ring = self.load()?;
        let signer = ring.signer().kid();
        Ok(ring
            .kids()
            .into_iter()
            .filter_map(|kid| {
                let key = ring.get(kid)?;
                let written = [".pem", ".hs256", ".pub.pem"].iter().find_map(|suffix| {
                    let meta = std::fs::metadata(self.path.join(format!("{kid}{suffix}")));
                    meta.and_then(|m| m.modified()).ok()
                });
                Some(KeyEntry {
                    kid: kid.to_owned(),
                    algorithm: key.algorithm(),
                    signer: kid == signer,
                    private: key.can_sign(),
                    promoted_at: self.read_time(kid, PROMOTED).ok().flatten(),
                    demoted_at: self.read_time(kid, DEMOTED).ok().flatten(),
                    published_at: self.read_time(kid, NEXT).ok().flatten(),
                    written,
                })
            })
            .collect())
    }

    /// The time recorded in `<kid><suffix>`: `None` when there is no such file.
    pub(super) fn read_time(&self, kid: &str, suffix: &str) -> Result<Option<i64>, KeyError> {
        let path = self.path.join(format!("{kid}{suffix}"));
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map(Some).map_err(|_| {
                self.problem(format!(
                    "{} does not hold UNIX seconds",
                    path.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Record `<kid><suffix>` = `at`, atomically and durably.
    pub(super) fn mark(
        &self,
        lock: &KeyDirLock,
        kid: &str,
        suffix: &str,
        at: i64,
    ) -> Result<(), KeyError> {
        self.check_lock(lock)?;
        let name = format!("{kid}{suffix}");
        write_file(&self.path, &name, format!("{at}\n").as_bytes(), false, true)
    }

    /// Remove `<kid><suffix>` if it exists.
    pub(super) fn unmark(&self, kid: &str, suffix: &str) -> Result<(), KeyError> {
        let path = self.path.join(format!("{kid}{suffix}"));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The `kid`s of the schedule files (`<kid>.promoted`, `<kid>.demoted`,
    /// `<kid>.next`) in the directory, with their suffix.
    pub(super) fn schedule_files(&self) -> Result<Vec<(String, &'static str)>, KeyError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io(&self.path))? {
            let entry = entry.map_err(io(&self.path))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            for suffix in [PROMOTED, DEMOTED, NEXT] {
                if let Some(kid) = name.strip_suffix(suffix) {
                    found.push((kid.to_owned(), suffix));
                }
            }
        }
        Ok(found)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + use<> {
    let path = path.display().to_string();
    move |source| KeyError::Io { path, source }
}

/// Write `dir/name` atomically: a temporary file in `dir` (mode 0600 on Unix when
/// `secret`), synced, then renamed into place. Without `replace` an existing file is
/// never overwritten (a hard link publishes it where the file system has them).
pub(super) fn write_file(
    dir: &Path,
    name: &str,
    contents: &[u8],
    secret: bool,
    replace: bool,
) -> Result<(), KeyError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let target = dir.join(name);
    // A dot name that ends in neither `.pem` nor `.hs256`: never loaded as a key.
    let tmp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let _ = secret;
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    let published = written.and_then(|()| {
        if replace {
            return std::fs::rename(&tmp, &target);
        }
        match std::fs::hard_link(&tmp, &target) {
            Ok(()) => std::fs::remove_file(&tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
            // No hard links here (some network and FAT file systems).
            Err(_) if target.exists() => Err(std::io::ErrorKind::AlreadyExists.into()),
            Err(_) => std::fs::rename(&tmp, &target),
        }
    });
    if let Err(e) = published {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&target)(e));
    }
    sync_dir(dir);
    Ok(())
}

/// Make a rename durable (Unix: sync the directory). Best effort: some file systems
/// refuse to sync a directory, and the rename itself is atomic either way.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    let _ = dir;
}
