//! Hot reload of a key directory, and automatic rotation (opt-in).
//!
//! A [`KeyWatcher`] polls its directory (every 2 s by default): it compares a cheap
//! fingerprint (the key files' names, sizes, modification times and inode numbers, and
//! the `SIGNER` text) and reloads only when it changed. A directory that loads replaces
//! the keyring through [`Codec::rotate`](crate::Codec::rotate), atomically for every
//! request; one that does not (an unparsable key, `SIGNER` naming a missing key, no
//! signer, an unreadable directory) leaves the keyring in place, is logged at `warn`
//! once per distinct problem, and is retried at every poll.
//!
//! With [`rotate_every`](KeyWatcher::rotate_every), the watcher also rotates: a
//! [lead](KeyWatcher::publish_lead) before the signer has signed for that long it
//! generates a new key with the same algorithm and writes it into the directory
//! (verify-only: published in every instance's JWK Set), then makes it the signer; the
//! previous key stays verify-only until every token it signed has expired, then its files
//! are removed. See [`KeyWatcher::rotate_every`] for the schedule and the failure
//! behaviour.
//!
//! On a verify-only configuration (keys from a JWK Set) the watcher adds the directory's
//! public keys to the set's instead, and never rotates.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use super::key::Key;
use super::ring::Keyring;
use super::rotate::{DEMOTED, KeyDir, KeyDirLock, NEXT, PROMOTED};
use crate::config::{Inner, SessionConfig};
use crate::error::KeyError;

/// Default interval between two looks at the key directory: 2 seconds.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Default time automatic rotation publishes the next signer before it signs
/// ([`KeyWatcher::publish_lead`]): 5 minutes, ten times verifiers' default key-set refresh
/// interval.
pub const DEFAULT_PUBLISH_LEAD: Duration = Duration::from_secs(5 * 60);

/// Watches a key directory for new, promoted and retired keys and applies them to a
/// [`SessionConfig`]'s keyring without a restart; optionally rotates the signer on a
/// schedule. Start it with [`spawn`](Self::spawn) (or
/// [`SessionConfig::watch_key_dir`]); [`check_once`](Self::check_once) runs one poll,
/// for tests and for callers with their own scheduler.
///
/// The directory is the source of truth: a reload replaces the whole keyring with the
/// directory's keys. A key's material is expected never to change under the same `kid`.
///
/// On a verify-only configuration ([`Keyring::verify_only`], e.g. from
/// [`Keyring::from_jwks`]) the directory's public keys — each `<kid>.pub.pem`, and the
/// public half of each `<kid>.pem`; HMAC secrets are skipped and logged — verify on top
/// of the key set's: a refresh of the set keeps them, a key removed from the directory
/// stops verifying (unless the set has it), and a key of the set wins over a different
/// one under the same `kid`. Nothing signs, and [`rotate_every`](Self::rotate_every)
/// is refused (logged at `error`).
///
/// ```
/// # use std::time::Duration;
/// # use jwt_session::{SessionConfig, Keyring, KeyWatcher, generate_key, Algorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # generate_key(Algorithm::EdDSA, "k-").unwrap().write_to(tmp.path()).unwrap();
/// let config = SessionConfig::builder(Keyring::load_dir(tmp.path())?).build()?;
/// let watcher = KeyWatcher::new(&config, tmp.path()).every(Duration::from_secs(2));
///
/// // A new key is promoted on disk (by the CLI, another instance, a deployment)…
/// let next = generate_key(Algorithm::EdDSA, "k-")?;
/// next.write_to(tmp.path())?;
/// std::fs::write(tmp.path().join("SIGNER"), next.key.kid())?;
///
/// // …and the next poll applies it (the background task polls every 2 s).
/// assert!(watcher.check_once()?.reloaded);
/// assert_eq!(config.codec().keyring().signer().kid(), next.key.kid());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct KeyWatcher {
    config: Weak<Inner>,
    dir: KeyDir,
    every: Duration,
    rotation: Option<Schedule>,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
struct Schedule {
    every: u64,
    prefix: Option<String>,
    margin: Option<u64>,
    lead: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// The fingerprint of the directory the keyring was last loaded from.
    loaded: Option<Fingerprint>,
    /// The last reload problem logged (each distinct one is logged once).
    reload_problem: Option<String>,
    /// The last rotation problem logged.
    rotate_problem: Option<String>,
}

/// What one [`check_once`](KeyWatcher::check_once) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The keyring was replaced with the directory's keys.
    pub reloaded: bool,
    /// This check published the next signer (verify-only until it is promoted): its
    /// `kid`.
    pub published: Option<String>,
    /// This check rotated: the new signer's `kid`.
    pub rotated: Option<String>,
    /// The keys this check retired (their files removed), sorted.
    pub retired: Vec<String>,
}

/// The key files' names, sizes, modification times and inode numbers, and the `SIGNER`
/// text: what changes when a key is added, promoted or retired.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    files: Vec<(OsString, u64, Option<SystemTime>, u64)>,
    signer: Option<Vec<u8>>,
}

impl Fingerprint {
    fn read(dir: &KeyDir) -> Result<Self, KeyError> {
        let path = dir.path();
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        let mut signer = None;
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let text = name.to_string_lossy();
            let key_file = text.ends_with(".pem") || text.ends_with(".hs256");
            if text.starts_with('.') || !(key_file || text == "SIGNER") {
                continue;
            }
            // Through symlinks (volumes that swap a linked directory); a file removed
            // between the listing and this look is simply not there.
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if text == "SIGNER" {
                signer = std::fs::read(entry.path()).ok();
            }
            files.push((name, meta.len(), meta.modified().ok(), inode(&meta)));
        }
        files.sort();
        Ok(Self { files, signer })
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// Whether two keyrings hold the same keys with the same roles (HMAC keys: by `kid`).
fn same_keys(a: &Keyring, b: &Keyring) -> bool {
    a.signer().kid() == b.signer().kid()
        && a.kids() == b.kids()
        && a.kids()
            .into_iter()
            .all(|kid| match (a.get(kid), b.get(kid)) {
                (Some(x), Some(y)) => {
                    x.algorithm() == y.algorithm()
                        && x.can_sign() == y.can_sign()
                        && x.public_jwk() == y.public_jwk()
                }
                _ => false,
            })
}

fn whole_secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl KeyWatcher {
    /// A watcher that applies the key directory `dir` to `config`'s keyring. It holds
    /// the configuration weakly: once every copy of it is dropped, the background task
    /// ends.
    pub fn new(config: &SessionConfig, dir: impl Into<PathBuf>) -> Self {
        Self {
            config: Arc::downgrade(&config.0),
            dir: KeyDir::new(dir),
            every: DEFAULT_WATCH_INTERVAL,
            rotation: None,
            state: Mutex::new(State::default()),
        }
    }

    /// How often the background task looks at the directory. Default 2 s
    /// ([`DEFAULT_WATCH_INTERVAL`]); at least 10 ms.
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = interval.max(Duration::from_millis(10));
        self
    }

    /// Turn on automatic rotation: once the signer has signed for `every` (whole seconds,
    /// rounded up; at least 1 s), promote a new key with its algorithm (EdDSA or HS256;
    /// an ES256 signer is never rotated automatically: logged at `error`), generated and
    /// written into the directory [`publish_lead`](Self::publish_lead) earlier. Default:
    /// off.
    ///
    /// # The schedule, on disk
    ///
    /// * `<kid>.next` records when the next signer was published (UNIX seconds); it is
    ///   removed when that key is promoted. Until then the key is verify-only.
    /// * `<kid>.promoted` records when the signer started signing (UNIX seconds; written
    ///   at the first check for a signer that lacks one), so a restart keeps the
    ///   schedule.
    /// * `<kid>.demoted` records `D`, when a key stopped signing here. It is retired
    ///   (all its files removed) at `D` + the longest absolute timeout (remembered
    ///   sessions included) + leeway + the [propagation
    ///   margin](Self::propagation_margin), never earlier: by then every token it signed
    ///   has expired. Until then it verifies.
    /// * A key that was signer here (it has `<kid>.promoted`) but no longer is, without
    ///   `<kid>.demoted` (promoted by hand, or a rotation interrupted by a crash), gets
    ///   `<kid>.demoted` = now. Keys without schedule files (added by hand) are never
    ///   retired automatically.
    ///
    /// # Failure behaviour
    ///
    /// * **Several instances** share one directory: each rotating instance takes the
    ///   directory's lock ([`LOCK_FILE`](super::LOCK_FILE), an advisory `flock`) for a
    ///   check and decides from the files, so one rotation happens per schedule however
    ///   many instances rotate; an instance that finds the lock taken skips that check's
    ///   rotation and just reloads. Instances may all have rotation on, or only one.
    /// * **Key directory unreadable or broken**: the instance keeps serving with the
    ///   keyring it has (signing with its signer), logs the problem at `warn` (rotation
    ///   failures at `error`) and retries at every poll. If the directory cannot be
    ///   written, nothing rotates and nothing is retired until it can.
    /// * An instance that cannot read the directory for a long time keeps signing with
    ///   an old key, whose tokens the others refuse once it is retired; watch the logs.
    #[must_use]
    pub fn rotate_every(mut self, every: Duration) -> Self {
        let schedule = self.rotation.get_or_insert(Schedule {
            every: 1,
            prefix: None,
            margin: None,
            lead: None,
        });
        schedule.every = whole_secs_up(every).max(1);
        self
    }

    /// Prefix of the `kid` of rotated keys. Default `ed25519-` / `hs256-`.
    #[must_use]
    pub fn kid_prefix(mut self, prefix: impl Into<String>) -> Self {
        if let Some(schedule) = &mut self.rotation {
            schedule.prefix = Some(prefix.into());
        }
        self
    }

    /// Extra time a demoted key is kept, for the other instances sharing the directory to
    /// notice the new signer (until then they still sign with the old key). Default: the
    /// [`every`](Self::every) interval, rounded up to whole seconds; set it to the longest
    /// poll interval of the instances that share the directory. `0` retires exactly at
    /// `D` + absolute timeout + leeway (one instance).
    #[must_use]
    pub fn propagation_margin(mut self, margin: Duration) -> Self {
        if let Some(schedule) = &mut self.rotation {
            schedule.margin = Some(whole_secs_up(margin));
        }
        self
    }

    /// How long before it signs the next signer is published: generated and written into
    /// the directory verify-only (`<kid>.next` records when), so every instance sharing
    /// the directory has it in its keyring and serves it in its JWK Set (whole seconds,
    /// rounded up). Default [`DEFAULT_PUBLISH_LEAD`] (5 min).
    ///
    /// Verify-only services fetch the key set on an unknown `kid` at most once per their
    /// refresh interval; with the key published for longer than that interval, the first
    /// token of the new signer never finds that refresh used up (by a forged `kid`, say):
    /// either the last refresh already brought the new key, or it is old enough to be
    /// made again. Set it to more than the verifiers' refresh interval
    /// ([`DEFAULT_JWKS_REFRESH`](super::DEFAULT_JWKS_REFRESH), 30 s) plus this watcher's
    /// poll interval, and more than any cache in front of the JWK Set.
    ///
    /// The signer is replaced at the schedule (`every` after it started signing), or
    /// `lead` after the next key was published if that is later (a lead longer than
    /// `every` stretches the schedule to it). `0` publishes and promotes in one step.
    #[must_use]
    pub fn publish_lead(mut self, lead: Duration) -> Self {
        if let Some(schedule) = &mut self.rotation {
            schedule.lead = Some(whole_secs_up(lead));
        }
        self
    }

    /// The directory watched.
    pub fn dir(&self) -> &KeyDir {
        &self.dir
    }

    /// One poll: with rotation on, take the lock if free and rotate or retire what is
    /// due; then reload the keyring if the directory changed. What the background task
    /// runs at every interval. Problems are logged here (each distinct one once).
    ///
    /// # Errors
    ///
    /// The directory's load error (the keyring is then unchanged), a rotation error, or
    /// [`KeyError::Directory`] once the configuration is gone.
    pub fn check_once(&self) -> Result<CheckReport, KeyError> {
        let Some(inner) = self.config.upgrade() else {
            return Err(KeyError::Directory {
                dir: self.dir.path().display().to_string(),
                problem: "the session configuration is gone".into(),
            });
        };
        let config = SessionConfig(inner);
        let mut report = CheckReport::default();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rotate_error = None;
        let mut demoted = None;
        // Held until the new signer is in use here and the old one's demotion recorded.
        let mut held = None;
        if self.rotation.is_some() && !config.codec().keyring().can_sign() {
            rotate_error = Some(KeyError::Directory {
                dir: self.dir.path().display().to_string(),
                problem: "this instance only verifies (no signing key): it does not rotate".into(),
            });
        } else if let Some(schedule) = &self.rotation {
            match self.maintain(schedule, &config, &mut report) {
                Ok((lock, previous)) => {
                    // Only a check that held the lock says whether rotation works.
                    if lock.is_some() && state.rotate_problem.take().is_some() {
                        tracing::info!(dir = %self.dir.path().display(), "key rotation works again");
                    }
                    held = lock;
                    demoted = previous;
                }
                Err(e) => rotate_error = Some(e),
            }
        }
        let reloaded = self.reload(&config, &mut state);
        if let (Some(lock), Some(previous)) = (&held, demoted) {
            // `D`: read after this instance switched, so nothing it signed is later.
            let at = config.clock().now();
            if let Err(e) = self.dir.mark(lock, &previous, DEMOTED, at) {
                rotate_error.get_or_insert(e);
            }
        }
        drop(held);
        if let Some(e) = &rotate_error {
            let text = e.to_string();
            if state.rotate_problem.as_ref() != Some(&text) {
                tracing::error!(
                    dir = %self.dir.path().display(),
                    error = %text,
                    "key rotation failed: signing on with the current key; retrying at every poll"
                );
                state.rotate_problem = Some(text);
            }
        }
        report.reloaded = reloaded?;
        match rotate_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Rotation and retirement under the lock. Returns the lock (if taken) and the kid
    /// demoted by a rotation, whose `.demoted` is written after the reload.
    fn maintain(
        &self,
        schedule: &Schedule,
        config: &SessionConfig,
        report: &mut CheckReport,
    ) -> Result<(Option<KeyDirLock>, Option<String>), KeyError> {
        let Some(lock) = self.dir.try_lock()? else {
            tracing::debug!(dir = %self.dir.path().display(), "another rotator holds the key directory lock");
            return Ok((None, None));
        };
        // A directory that does not load is reported by the reload; nothing to rotate.
        let Ok(ring) = self.dir.load() else {
            return Ok((Some(lock), None));
        };
        let now = config.clock().now();
        let signer = ring.signer().kid().to_owned();
        let kids = ring.kids();

        // Schedule files of keys that are gone.
        for (kid, suffix) in self.dir.schedule_files()? {
            if ring.get(&kid).is_none() {
                self.dir.unmark(&kid, suffix)?;
            }
        }

        // The signer: since when it signs (a published key promoted by hand is no longer
        // the next one).
        self.dir.unmark(&signer, NEXT)?;
        let since = match (
            self.dir.read_time(&signer, DEMOTED),
            self.dir.read_time(&signer, PROMOTED),
        ) {
            (Ok(None), Ok(Some(since))) => since,
            (demoted, _) => {
                // New here, promoted again by hand, or an unreadable record: from now.
                if !matches!(demoted, Ok(None)) {
                    self.dir.unmark(&signer, DEMOTED)?;
                }
                self.dir.mark(&lock, &signer, PROMOTED, now)?;
                now
            }
        };

        // The other keys: record demotions, retire what is due.
        let widest = config.longest_policy();
        let margin = schedule.margin.unwrap_or_else(|| whole_secs_up(self.every));
        let keep = widest
            .absolute_timeout()
            .saturating_add(widest.leeway())
            .saturating_add(margin);
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        for kid in kids.into_iter().filter(|kid| *kid != signer) {
            let demoted_at = match self.dir.read_time(kid, DEMOTED) {
                Ok(Some(at)) => at,
                Ok(None) if !matches!(self.dir.read_time(kid, PROMOTED), Ok(None)) => {
                    self.dir.mark(&lock, kid, DEMOTED, now)?;
                    now
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, kid, "unreadable demotion record: counting from now");
                    self.dir.mark(&lock, kid, DEMOTED, now)?;
                    now
                }
            };
            if now >= demoted_at.saturating_add(keep) {
                self.dir.remove_key_files(kid)?;
                tracing::info!(
                    dir = %self.dir.path().display(),
                    kid,
                    demoted_at,
                    "key retired: every token it signed has expired"
                );
                report.retired.push(kid.to_owned());
            }
        }

        // The rotation itself: the next key is published (verify-only, so it is in every
        // instance's JWK Set) `lead` before it is due, and promoted once it is due and was
        // published for at least `lead`.
        let every = i64::try_from(schedule.every).unwrap_or(i64::MAX);
        let lead = i64::try_from(schedule.lead.unwrap_or(DEFAULT_PUBLISH_LEAD.as_secs()))
            .unwrap_or(i64::MAX);
        let due = since.saturating_add(every);
        let mut next = self.pending(&lock, &ring, &signer, now)?;
        if next.is_none() && now >= due.saturating_sub(lead) {
            let kid = self
                .dir
                .publish_next(&lock, now, schedule.prefix.as_deref())?;
            report.published = Some(kid.clone());
            next = Some((kid, now));
        }
        if let Some((kid, published)) = next
            && now >= due
            && now >= published.saturating_add(lead)
        {
            let rotation = self.dir.promote(&lock, &kid, now)?;
            report.rotated = Some(rotation.signer);
            return Ok((Some(lock), Some(rotation.previous)));
        }
        Ok((Some(lock), None))
    }

    /// The published next signer (`<kid>.next`) and when it was published; the earliest
    /// if there are several. An unreadable record counts from now.
    fn pending(
        &self,
        lock: &KeyDirLock,
        ring: &Keyring,
        signer: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, KeyError> {
        let mut found: Option<(String, i64)> = None;
        for kid in ring.kids() {
            if kid == signer || !ring.get(kid).is_some_and(Key::can_sign) {
                continue;
            }
            let at = match self.dir.read_time(kid, NEXT) {
                Ok(Some(at)) => at,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, kid, "unreadable publication record: counting from now");
                    self.dir.mark(lock, kid, NEXT, now)?;
                    now
                }
            };
            if found.as_ref().is_none_or(|(_, t)| at < *t) {
                found = Some((kid.to_owned(), at));
            }
        }
        Ok(found)
    }

    /// Reload the keyring if the directory changed; `Ok(true)` when it was replaced.
    fn reload(&self, config: &SessionConfig, state: &mut State) -> Result<bool, KeyError> {
        let result = self.try_reload(config, state);
        match &result {
            Ok(_) => {
                if let Some(problem) = state.reload_problem.take() {
                    tracing::info!(
                        dir = %self.dir.path().display(),
                        was = %problem,
                        "key directory loads again"
                    );
                }
            }
            Err(e) => {
                let text = e.to_string();
                if state.reload_problem.as_ref() != Some(&text) {
                    tracing::warn!(
                        dir = %self.dir.path().display(),
                        error = %text,
                        "key directory not applied: keeping the current keyring; retrying at \
                         every poll"
                    );
                    state.reload_problem = Some(text);
                } else {
                    tracing::debug!(dir = %self.dir.path().display(), "key directory still broken");
                }
            }
        }
        result
    }

    fn try_reload(&self, config: &SessionConfig, state: &mut State) -> Result<bool, KeyError> {
        let fingerprint = Fingerprint::read(&self.dir)?;
        if state.loaded.as_ref() == Some(&fingerprint) {
            return Ok(false);
        }
        let codec = config.codec();
        if !codec.keyring().can_sign() {
            let changed = self.reload_verify_only(config)?;
            state.loaded = Some(fingerprint);
            return Ok(changed);
        }
        let ring = self.dir.load()?;
        let first = state.loaded.is_none();
        let changed = !(first && same_keys(&codec.keyring(), &ring));
        if changed {
            codec.rotate(move |current| {
                *current = ring;
                Ok(())
            })?;
            tracing::info!(dir = %self.dir.path().display(), "key directory reloaded");
        }
        state.loaded = Some(fingerprint);
        Ok(changed)
    }

    /// A verify-only instance: the directory's public keys verify too, on top of the key
    /// set (they stay across its refreshes); a key removed from the directory stops
    /// verifying unless the set has it. Nothing signs.
    fn reload_verify_only(&self, config: &SessionConfig) -> Result<bool, KeyError> {
        let keys: Vec<Arc<Key>> = Keyring::public_keys_in(self.dir.path())?
            .into_iter()
            .map(Arc::new)
            .collect();
        let codec = config.codec();
        let same = {
            let current = codec.keyring();
            let had = current.local();
            had.len() == keys.len()
                && had
                    .iter()
                    .zip(&keys)
                    .all(|(a, b)| a.kid() == b.kid() && a.public_jwk() == b.public_jwk())
        };
        if same {
            return Ok(false);
        }
        let kids: Vec<String> = keys.iter().map(|k| k.kid().to_owned()).collect();
        codec.rotate(move |current| {
            *current = current.with_local(keys);
            Ok(())
        })?;
        tracing::info!(
            dir = %self.dir.path().display(),
            local = ?kids,
            "key directory reloaded: its public keys verify too (verify-only instance)"
        );
        Ok(true)
    }

    /// Poll the directory every [`every`](Self::every) interval (the first poll at once)
    /// in a Tokio task, until every copy of the configuration is dropped or the task is
    /// aborted. The file work of each poll runs on Tokio's blocking pool.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let watcher = Arc::new(self);
        tracing::info!(
            dir = %watcher.dir.path().display(),
            every = ?watcher.every,
            rotate_every_secs = watcher.rotation.as_ref().map(|s| s.every),
            "watching the key directory"
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(watcher.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if watcher.config.strong_count() == 0 {
                    break;
                }
                let this = watcher.clone();
                // Errors are logged by `check_once`.
                if let Err(e) = tokio::task::spawn_blocking(move || this.check_once()).await {
                    tracing::error!(error = %e, "key directory check failed to run");
                }
            }
        })
    }
}

impl SessionConfig {
    /// Watch the key directory `dir` (its keys, `SIGNER` and removals) and apply it to
    /// this configuration's keyring, polling every `every` (e.g.
    /// [`DEFAULT_WATCH_INTERVAL`]): a [`KeyWatcher`] without rotation, spawned. On a
    /// verify-only configuration the directory's public keys verify on top of the key
    /// set's (see [`KeyWatcher`]).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn watch_key_dir(
        &self,
        dir: impl Into<PathBuf>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        KeyWatcher::new(self, dir).every(every).spawn()
    }
}
