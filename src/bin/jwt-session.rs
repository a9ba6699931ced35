//! `jwt-session`: the operator's command-line tool for jwt-session.
//!
//! ```text
//! jwt-session keygen DIR [--alg eddsa|hs256] [--prefix P]   write a key, print its kid
//! jwt-session jwks [--keys DIR]                              print the public JWK Set
//! jwt-session inspect TOKEN|- [--keys DIR] [settings…]       why is this token accepted/refused?
//! jwt-session revoke --journal FILE (--sid SID --auth-time T | --sub SUB)
//! jwt-session status --journal FILE [--now T]                live revocations in a journal
//! jwt-session sessions list USER (--registry FILE | --redis URL)   a user's live sessions
//! jwt-session sessions stats (--registry FILE | --redis URL)       live sessions and users
//! jwt-session sessions revoke ID (--registry FILE --journal FILE | --redis URL)
//! ```
//!
//! Exit codes: 0 success (for `inspect`: the token would be accepted), 1 the token would
//! be refused (`inspect` only), 2 bad usage or input (arguments, key directory, journal,
//! I/O). Errors are one line on stderr; results go to stdout.

// A command-line tool prints its results.
#![allow(clippy::print_stdout)]

// A crate root looks for modules beside itself; these live in `src/bin/jwt-session/`.
#[path = "jwt-session/inspect.rs"]
mod inspect;
#[path = "jwt-session/journal.rs"]
mod journal;
#[path = "jwt-session/keys.rs"]
mod keys;
#[path = "jwt-session/keys_cmd.rs"]
mod keys_cmd;
#[path = "jwt-session/sessions.rs"]
mod sessions;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use jwt_session::{Clock, DEFAULT_ISSUER, Policy};
use jwt_session::{DEFAULT_MAX_TOKEN_LEN, DEFAULT_TOKEN_TYPE};

/// Operator's tool for jwt-session: keys, token inspection, revocation journals.
#[derive(Debug, Parser)]
#[command(name = "jwt-session", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success (inspect: accepted), 1 inspect: the token \
                        would be refused, 2 bad usage or input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a signing key into DIR and print its kid.
    ///
    /// Writes <kid>.pem + <kid>.pub.pem (EdDSA) or <kid>.hs256 (HS256). DIR is created if
    /// missing; existing files are never overwritten; the private file is mode 0600. With
    /// more than one private key in DIR, name the signer in DIR/SIGNER.
    Keygen(KeygenArgs),
    /// Print the public JWK Set of a key directory (HMAC keys are never included).
    Jwks(JwksArgs),
    /// Show a token's header and claims, and exactly why it would be accepted or refused
    /// now (and when it expires).
    ///
    /// Runs the server's checks in the server's order: decoding and signature (with the
    /// keys of --keys), then the times (with --idle/--absolute/--leeway at --now), then,
    /// with --journal, the revocation journal. Pass the same settings as the server. The
    /// CSRF secret is never printed.
    ///
    /// Pass TOKEN as `-` to read it from stdin, so that a live token does not land in
    /// your shell history: `pbpaste | jwt-session inspect -`.
    Inspect(InspectArgs),
    /// Record a revocation in a journal file, exactly as a server's logout would.
    ///
    /// The entry lives only as long as some token it refuses could be valid (I2), so pass
    /// the server's --idle/--absolute/--leeway. Servers read the journal only when they
    /// start, and opening a journal compacts it (rewrites the file): run this while the
    /// servers using FILE are stopped, then start them.
    Revoke(RevokeArgs),
    /// List the live revocations of a journal file (read-only).
    ///
    /// Takes no lock and writes nothing, so it also reads the journal of a running
    /// server.
    Status(StatusArgs),
    /// The session registry ("where you're signed in"): list a user's sessions, count
    /// them, end one by its listed id — from a registry journal or from Redis.
    #[command(subcommand_required = true, arg_required_else_help = false)]
    Sessions(sessions::SessionsArgs),
    /// Rotate the signer of a key directory: generate a new key with the signer's
    /// algorithm, make it the signer and keep the old one verify-only; print the new kid.
    ///
    /// Every file is written under a temporary name and renamed into place, SIGNER last,
    /// so servers watching DIR switch at once. The old key's <kid>.demoted records when
    /// it stopped signing; retire it once the longest absolute timeout + leeway has
    /// passed. Takes DIR/.rotate.lock, like the servers' automatic rotation.
    Rotate(keys_cmd::RotateArgs),
    /// Retire a key of a key directory: remove its files (never the signer's). Tokens
    /// that name it are refused (session_unknown_key) once servers reload DIR.
    Retire(keys_cmd::RetireArgs),
    /// List the keys of a key directory: role (signer or verify-only), algorithm, when
    /// each was written, promoted and demoted, and (with --absolute) when it may retire.
    Keys(keys_cmd::KeysArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyAlg {
    /// Ed25519 signatures (public key exportable in JWKS).
    #[value(alias = "ed25519")]
    Eddsa,
    /// HMAC-SHA-256 shared secret (never exported).
    Hs256,
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// Key directory (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Key type.
    #[arg(long, value_enum, default_value = "eddsa", ignore_case = true)]
    alg: KeyAlg,
    /// Prefix of the kid (default `ed25519-` or `hs256-`).
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
}

#[derive(Debug, Args)]
struct JwksArgs {
    /// Key directory.
    #[arg(long, value_name = "DIR", default_value = "keys")]
    keys: PathBuf,
}

/// The time rules, as configured on the server.
#[derive(Debug, Clone, Copy, Args)]
struct PolicyArgs {
    /// Idle timeout (e.g. 15m, 3s).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = seconds)]
    idle: u64,
    /// Absolute timeout, counted from login (e.g. 8h).
    #[arg(long, value_name = "DURATION", default_value = "8h", value_parser = seconds)]
    absolute: u64,
    /// Clock-skew leeway.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = seconds)]
    leeway: u64,
}

impl PolicyArgs {
    /// The policy (reissue-after plays no part in the CLI's decisions: 0).
    fn policy(&self) -> Result<Policy, CliError> {
        Policy::new(self.idle, self.absolute, 0, self.leeway)
            .map_err(|e| CliError(format!("settings: {e}")))
    }
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The token, or `-` to read it from stdin (keeps it out of shell history).
    #[arg(value_name = "TOKEN")]
    token: String,
    /// Key directory of the server.
    #[arg(long, value_name = "DIR", default_value = "keys")]
    keys: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Expected `iss`.
    #[arg(long, default_value = DEFAULT_ISSUER)]
    issuer: String,
    /// Expected `aud`.
    #[arg(long, default_value = DEFAULT_ISSUER)]
    audience: String,
    /// Expected `typ` header.
    #[arg(long, value_name = "TYP", default_value = DEFAULT_TOKEN_TYPE)]
    token_type: String,
    /// Length cap in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_TOKEN_LEN)]
    max_token_len: usize,
    /// Revocation journal to check (read-only; never modified).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Decide as of this time (UNIX seconds or RFC 3339) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = parse_time)]
    now: Option<i64>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["sid", "sub"])))]
struct RevokeArgs {
    /// Journal file (created if missing).
    #[arg(long, value_name = "FILE")]
    journal: PathBuf,
    /// Revoke this session (needs --auth-time, the session's login time).
    // A session id is base64url: one in 64 starts with `-`.
    #[arg(
        long,
        value_name = "SID",
        requires = "auth_time",
        allow_hyphen_values = true
    )]
    sid: Option<String>,
    /// The session's `auth_time` (UNIX seconds or RFC 3339; see `inspect`).
    #[arg(long, value_name = "UNIX", requires = "sid", value_parser = parse_time)]
    auth_time: Option<i64>,
    /// Revoke every session of this subject that logged in until now.
    #[arg(
        long,
        value_name = "SUB",
        conflicts_with = "auth_time",
        allow_hyphen_values = true
    )]
    sub: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Journal file (read-only; never modified).
    #[arg(long, value_name = "FILE")]
    journal: PathBuf,
    /// List as of this time (UNIX seconds or RFC 3339) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = parse_time)]
    now: Option<i64>,
}

/// A bad input or a failed operation: one line on stderr, exit code 2.
#[derive(Debug)]
pub(crate) struct CliError(pub(crate) String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the underlying error printed.
        let one_line: String = self
            .0
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        f.write_str(&one_line)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprintln!(
                    "jwt-session: a command is required: keygen, jwks, inspect, revoke or \
                     status (try --help)"
                );
                return ExitCode::from(2);
            }
            // clap's first paragraph, on one line (the usage and tips follow in --help).
            let rendered = e.to_string();
            let first: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("jwt-session: {first} (try --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Keygen(args) => keys::keygen(&args),
        Command::Jwks(args) => keys::jwks(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Revoke(args) => journal::revoke(&args),
        Command::Status(args) => journal::status(&args),
        Command::Sessions(args) => sessions::run(&args),
        Command::Rotate(args) => keys_cmd::rotate(&args),
        Command::Retire(args) => keys_cmd::retire(&args),
        Command::Keys(args) => keys_cmd::keys(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jwt-session: {e}");
            ExitCode::from(2)
        }
    }
}

/// A duration setting in whole seconds: `30m`, `8h`, `1h 30m`, `5s`, or bare seconds.
fn seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    let d = humantime::parse_duration(text).map_err(|e| format!("{e}; use e.g. 30m, 8h, 5s"))?;
    if d.subsec_nanos() != 0 {
        return Err("durations are whole seconds".into());
    }
    Ok(d.as_secs())
}

/// A point in time: UNIX seconds, or RFC 3339 (`2026-11-23T15:00:00Z`).
fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| "expected UNIX seconds or an RFC 3339 time like 2026-11-23T15:00:00Z".into())
}

/// `2026-11-23T15:00:00Z (in 12m 3s)` / `(4m ago)` / `(now)`, relative to `now`.
pub(crate) fn human_time(t: i64, now: i64) -> String {
    let utc = chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{t} (out of range)"));
    let delta = i128::from(t) - i128::from(now);
    let span = |d: i128| {
        let secs = u64::try_from(d.unsigned_abs()).unwrap_or(u64::MAX);
        humantime::format_duration(Duration::from_secs(secs)).to_string()
    };
    match delta {
        0 => format!("{utc} (now)"),
        d if d > 0 => format!("{utc} (in {})", span(d)),
        d => format!("{utc} ({} ago)", span(d)),
    }
}

/// Text from a token or a journal, safe to print: control characters (escape sequences
/// included; a `sub` may be chosen by an attacker) are shown escaped. Newlines are kept
/// only when `keep_newlines` (pretty JSON).
pub(crate) fn printable(text: &str, keep_newlines: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' if keep_newlines => "\n".to_owned(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A duration in seconds, for humans: `30m`, `8h`, `1h 30m`.
pub(crate) fn human_secs(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// A clock stopped at one instant (`--now`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedClock(pub(crate) i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}
