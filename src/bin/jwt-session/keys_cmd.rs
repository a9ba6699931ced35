//! `rotate`, `retire` and `keys`: a key directory changed by hand, atomically on disk and
//! under the same lock as the servers' automatic rotation (`jwt_session::KeyDir`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use jwt_session::{Clock as _, SystemClock};
use jwt_session::{KEY_DIR_LOCK_FILE, KeyDir, KeyDirLock};

use crate::{CliError, human_time, parse_time, seconds};

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Key directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Prefix of the new kid (default `ed25519-` or `hs256-`, after the signer's algorithm).
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RetireArgs {
    /// Key directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The kid to retire (never the signer).
    #[arg(value_name = "KID", allow_hyphen_values = true)]
    kid: String,
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// Key directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The servers' longest absolute timeout (remembered sessions included): shows when
    /// each verify-only key may be retired.
    #[arg(long, value_name = "DURATION", value_parser = seconds)]
    absolute: Option<u64>,
    /// Clock-skew leeway, added to --absolute.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = seconds)]
    leeway: u64,
    /// List as of this time (UNIX seconds or RFC 3339) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = parse_time)]
    now: Option<i64>,
}

fn key_dir(dir: &Path) -> Result<KeyDir, CliError> {
    if !dir.is_dir() {
        return Err(CliError(format!(
            "{} is not a directory (a key directory, as `keygen` writes)",
            dir.display()
        )));
    }
    Ok(KeyDir::new(dir))
}

/// The rotation lock, waiting a little for a server's rotator to finish its check.
fn lock(dir: &KeyDir) -> Result<KeyDirLock, CliError> {
    let lock_path = dir.path().join(KEY_DIR_LOCK_FILE);
    for _ in 0..20 {
        match dir.try_lock() {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(CliError(format!("locking {}: {e}", lock_path.display()))),
        }
    }
    Err(CliError(format!(
        "{} is held by another rotator (a server's automatic rotation or another \
         jwt-session); try again",
        lock_path.display()
    )))
}

pub(crate) fn rotate(args: &RotateArgs) -> Result<ExitCode, CliError> {
    let dir = key_dir(&args.dir)?;
    let lock = lock(&dir)?;
    let rotation = dir
        .rotate(&lock, SystemClock.now(), args.prefix.as_deref())
        .map_err(|e| CliError(format!("rotate: {e}")))?;
    println!("{}", rotation.signer);
    eprintln!(
        "jwt-session: note: {} signs from now on; {} is verify-only: retire it once the \
         servers' longest absolute timeout + leeway has passed (`jwt-session retire {} {}`), \
         or let a server with automatic rotation retire it",
        rotation.signer,
        rotation.previous,
        args.dir.display(),
        rotation.previous,
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn retire(args: &RetireArgs) -> Result<ExitCode, CliError> {
    let dir = key_dir(&args.dir)?;
    let lock = lock(&dir)?;
    dir.retire(&lock, &args.kid).map_err(|e| {
        let shown = crate::printable(&args.kid, false);
        CliError(format!("retire {shown}: {e}"))
    })?;
    println!("retired {}", args.kid);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn keys(args: &KeysArgs) -> Result<ExitCode, CliError> {
    let dir = key_dir(&args.dir)?;
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let entries = dir
        .entries()
        .map_err(|e| CliError(format!("cannot load keys from {}: {e}", args.dir.display())))?;
    let width = entries.iter().map(|e| e.kid.len()).max().unwrap_or(0);
    for entry in &entries {
        let role = if entry.signer {
            "signer"
        } else {
            "verify-only"
        };
        let mut details = Vec::new();
        if !entry.private {
            details.push("public key only".to_owned());
        }
        if let Some(written) = entry
            .written
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        {
            let t = i64::try_from(written.as_secs()).unwrap_or(i64::MAX);
            details.push(format!("written {}", human_time(t, now)));
        }
        if let (false, Some(at)) = (entry.signer, entry.published_at) {
            details.push(format!("next signer, published {}", human_time(at, now)));
        }
        if let Some(at) = entry.promoted_at {
            details.push(format!("promoted {}", human_time(at, now)));
        }
        if let (false, Some(at)) = (entry.signer, entry.demoted_at) {
            details.push(format!("demoted {}", human_time(at, now)));
            if let Some(absolute) = args.absolute {
                let keep = i64::try_from(absolute.saturating_add(args.leeway)).unwrap_or(i64::MAX);
                let from = at.saturating_add(keep);
                let due = if now >= from { ", due" } else { "" };
                details.push(format!("retire from {}{due}", human_time(from, now)));
            }
        }
        println!(
            "{:<width$}  {:<5}  {role:<11}  {}",
            entry.kid,
            entry.algorithm.as_str(),
            details.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
