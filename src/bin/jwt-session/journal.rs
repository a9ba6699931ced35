//! `revoke` and `status`, and read-only loading of a revocation journal.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use jwt_session::{Clock, RevocationStore, SystemClock};
use jwt_session::{JournalSummary, MemoryDenylist, summarize_journal};

use crate::{CliError, FixedClock, RevokeArgs, StatusArgs, human_secs, human_time, printable};

/// Refuse a journal path that is missing or not a regular file.
fn check_file(path: &Path) -> Result<(), CliError> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CliError(format!("journal {shown} does not exist")),
        _ => CliError(format!("journal {shown}: {e}")),
    })?;
    if !meta.is_file() {
        return Err(CliError(format!("journal {shown} is not a regular file")));
    }
    Ok(())
}

/// Refuse what is clearly not a journal (unreadable lines, none readable); warn about
/// unreadable lines in one that is.
fn check_lines(path: &Path, summary: JournalSummary) -> Result<(), CliError> {
    let shown = path.display();
    let readable = summary.sessions + summary.subjects + summary.watermarks;
    let unreadable = summary.unreadable;
    if unreadable > 0 && readable == 0 {
        return Err(CliError(format!(
            "{shown} is not a revocation journal ({unreadable} unreadable lines, none readable)"
        )));
    }
    if unreadable > 0 {
        eprintln!(
            "jwt-session: warning: {shown}: {unreadable} unreadable lines skipped (a torn write \
             or corruption; servers skip them too)"
        );
    }
    Ok(())
}

/// Read a journal file, refusing what is clearly not one.
fn read_journal(path: &Path) -> Result<(), CliError> {
    check_file(path)?;
    let bytes =
        std::fs::read(path).map_err(|e| CliError(format!("journal {}: {e}", path.display())))?;
    check_lines(path, summarize_journal(&bytes))
}

/// Load a journal as a server starting at `now` would, without writing anything: no
/// lock, no compaction, so this also reads the journal of a running server.
pub(crate) fn load_readonly(path: &Path, now: i64) -> Result<Arc<MemoryDenylist>, CliError> {
    check_file(path)?;
    let (list, summary) = MemoryDenylist::builder()
        .journal(path)
        .build_read_only(&FixedClock(now))
        .map_err(|e| CliError(format!("loading journal {}: {e}", path.display())))?;
    check_lines(path, summary)?;
    Ok(list)
}

pub(crate) fn revoke(args: &RevokeArgs) -> Result<ExitCode, CliError> {
    let policy = args.policy.policy()?;
    let clock = SystemClock;
    let now = clock.now();
    let path = &args.journal;
    if path.exists() {
        // Refuse to let the library rewrite a file that is not a journal (a typo such as
        // `--journal keys/k.pem` would otherwise replace it).
        read_journal(path)?;
    }
    let target = match (&args.sid, args.auth_time, &args.sub) {
        (Some(sid), Some(auth_time), None) => {
            if sid.trim().is_empty() {
                return Err(CliError("--sid must not be empty".into()));
            }
            let leeway = i64::try_from(policy.leeway()).unwrap_or(i64::MAX);
            if auth_time > now.saturating_add(leeway) {
                return Err(CliError(format!(
                    "--auth-time {auth_time} is in the future ({}); it is in UNIX seconds, \
                     not milliseconds",
                    human_time(auth_time, now)
                )));
            }
            Target::Session(sid.clone(), auth_time)
        }
        (None, None, Some(sub)) => {
            if sub.is_empty() {
                return Err(CliError("--sub must not be empty".into()));
            }
            Target::Subject(sub.clone())
        }
        _ => {
            return Err(CliError(
                "give either --sid SID --auth-time UNIX, or --sub SUB".into(),
            ));
        }
    };
    let list = MemoryDenylist::builder()
        .journal(path)
        .build(&clock)
        .map_err(|e| CliError(format!("opening journal {}: {e}", path.display())))?;
    let record_error = |e| CliError(format!("recording in journal {}: {e}", path.display()));
    match &target {
        Target::Session(sid, auth_time) => {
            list.revoke_session(sid, *auth_time, &policy, &clock)
                .map_err(record_error)?;
        }
        Target::Subject(sub) => {
            list.revoke_subject(sub, &policy, &clock)
                .map_err(record_error)?;
        }
    }
    let now = clock.now();
    let entry = list.snapshot().into_iter().rev().find(|e| match &target {
        Target::Session(sid, _) => !e.is_subject() && e.id == *sid,
        Target::Subject(sub) => e.is_subject() && e.id == *sub,
    });
    let Some(entry) = entry else {
        return Err(CliError(
            "the revocation was written but is not held (capacity?)".into(),
        ));
    };
    match (&target, entry.before) {
        (Target::Session(sid, auth_time), _) => {
            println!("revoked session {}", printable(sid, false));
            println!("  logged in   {}", human_time(*auth_time, now));
        }
        (Target::Subject(sub), Some(before)) => {
            println!("revoked every session of subject {}", printable(sub, false));
            println!(
                "  refused     sessions that logged in at or before {}",
                human_time(before, now)
            );
        }
        (Target::Subject(sub), None) => println!("revoked subject {}", printable(sub, false)),
    }
    println!("  recorded    {}", human_time(entry.revoked_at, now));
    println!(
        "  kept until  {} (I2: no token it refuses is valid after that; idle {}, absolute {}, \
         leeway {})",
        human_time(entry.expires_at, now),
        human_secs(policy.idle_timeout()),
        human_secs(policy.absolute_timeout()),
        human_secs(policy.leeway()),
    );
    println!("  journal     {}", path.display());
    if entry.expires_at <= now {
        eprintln!(
            "jwt-session: note: that session is already past its absolute timeout; no token \
             of it can be valid, so the entry is dropped at the next start"
        );
    }
    eprintln!(
        "jwt-session: note: running servers read the journal only at start: (re)start the \
         servers that use {}",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

enum Target {
    Session(String, i64),
    Subject(String),
}

pub(crate) fn status(args: &StatusArgs) -> Result<ExitCode, CliError> {
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let list = load_readonly(&args.journal, now)?;
    let entries = list.snapshot();
    let (subjects, sessions): (Vec<_>, Vec<_>) = entries.iter().partition(|e| e.is_subject());
    println!("journal {}", args.journal.display());
    println!("now     {}", human_time(now, now));
    println!("sessions ({}):", sessions.len());
    for e in &sessions {
        println!("  sid {}", printable(&e.id, false));
        println!("      revoked     {}", human_time(e.revoked_at, now));
        println!("      kept until  {}", human_time(e.expires_at, now));
    }
    println!("subjects ({}):", subjects.len());
    for e in &subjects {
        println!("  sub {}", printable(&e.id, false));
        if let Some(before) = e.before {
            println!(
                "      refuses sessions that logged in at or before {}",
                human_time(before, now)
            );
        }
        println!("      revoked     {}", human_time(e.revoked_at, now));
        println!("      kept until  {}", human_time(e.expires_at, now));
    }
    match list.watermark() {
        Some(w) => println!(
            "watermark: {} (after a capacity overflow: tokens whose last activity is at or \
             before it are refused)",
            human_time(w, now)
        ),
        None => println!("watermark: none"),
    }
    Ok(ExitCode::SUCCESS)
}
