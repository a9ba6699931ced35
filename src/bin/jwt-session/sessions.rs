//! `sessions list|stats|revoke`: the session registry ("where you're signed in"), from a
//! registry journal or from Redis.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use jwt_session::{Clock as _, MemoryRegistry, Policy, SystemClock};
use jwt_session::{RegistryStats, SessionEntry};

use crate::{CliError, PolicyArgs, human_secs, human_time, parse_time, printable, seconds};

/// The default key prefix of the Redis backends.
const DEFAULT_NAMESPACE: &str = "jwt-session:";

#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// List the live sessions of USER, most recently active first (read-only).
    ///
    /// From a registry journal (--registry FILE: no lock, nothing written, so also the
    /// journal of a running server) or from Redis (--redis URL).
    List(ListArgs),
    /// Count the live sessions and the users that have them (read-only).
    Stats(StatsArgs),
    /// End the session listed as ID: revoke it in the denylist (as a server's
    /// `POST /session/revoke` would) and drop it from the registry.
    ///
    /// With --registry FILE it needs the denylist's --journal FILE, and both journals are
    /// locked the way servers lock them: run it while the servers using them are stopped,
    /// then start them. With --redis URL it writes to the shared Redis that running
    /// servers use: they refuse the session as soon as the revocation reaches them.
    /// Pass the server's --idle/--absolute/--leeway (and --remember-idle/
    /// --remember-absolute for remembered sessions): the revocation lives as long as a
    /// token of the session could.
    Revoke(RevokeArgs),
}

/// Where the registry is.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["registry", "redis"])))]
struct Source {
    /// A registry journal (`MemoryRegistry::builder().journal(FILE)`).
    #[arg(long, value_name = "FILE")]
    registry: Option<PathBuf>,
    /// The Redis of a `RedisRegistry`: redis://[user:password@]host:port[/db]. Needs a
    /// jwt-session built with the `redis` feature.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Key prefix in Redis (the servers' namespace; default `jwt-session:`).
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
}

impl Source {
    fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    fn check(&self) -> Result<(), CliError> {
        if self.namespace.is_some() && self.redis.is_none() {
            return Err(CliError("--namespace goes with --redis".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The user (`sub`).
    #[arg(value_name = "USER", allow_hyphen_values = true)]
    user: String,
    #[command(flatten)]
    source: Source,
    /// List as of this time (UNIX seconds or RFC 3339) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = parse_time)]
    now: Option<i64>,
    /// Print JSON (one array of entries) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    source: Source,
    /// Count as of this time (UNIX seconds or RFC 3339) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = parse_time)]
    now: Option<i64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The listed id of the session (the `id` of `sessions list` or `GET /session/list`).
    // A listed id is base64url: one in 64 starts with `-`.
    #[arg(value_name = "ID", allow_hyphen_values = true)]
    id: String,
    #[command(flatten)]
    source: Source,
    /// The denylist's revocation journal (with --registry; created if missing).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Idle timeout of remembered sessions.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = seconds)]
    remember_idle: u64,
    /// Absolute timeout of remembered sessions.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = seconds)]
    remember_absolute: u64,
}

pub(crate) fn run(args: &SessionsArgs) -> Result<ExitCode, CliError> {
    match &args.command {
        SessionsCommand::List(args) => list(args),
        SessionsCommand::Stats(args) => stats(args),
        SessionsCommand::Revoke(args) => revoke(args),
    }
}

/// Where the entries came from, for the header.
fn shown(source: &Source) -> String {
    match (&source.registry, &source.redis) {
        (Some(path), _) => format!("registry {}", path.display()),
        (None, Some(url)) => format!(
            "redis    {} (namespace {})",
            redis::address(url),
            printable(source.namespace(), false)
        ),
        (None, None) => String::new(),
    }
}

/// Refuse a registry journal path that is missing or not a regular file.
fn check_file(path: &Path) -> Result<(), CliError> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            CliError(format!("registry journal {shown} does not exist"))
        }
        _ => CliError(format!("registry journal {shown}: {e}")),
    })?;
    if !meta.is_file() {
        return Err(CliError(format!(
            "registry journal {shown} is not a regular file"
        )));
    }
    Ok(())
}

/// Refuse what is clearly not a registry journal; warn about unreadable lines in one that
/// is.
fn check_lines(path: &Path, registry: &MemoryRegistry) -> Result<(), CliError> {
    let (readable, unreadable) = (registry.readable_lines(), registry.unreadable_lines());
    let shown = path.display();
    if unreadable > 0 && readable == 0 {
        return Err(CliError(format!(
            "{shown} is not a session registry journal ({unreadable} unreadable lines, none \
             readable)"
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

/// Load a registry journal read-only, as of `now`.
fn load_readonly(path: &Path, now: i64) -> Result<MemoryRegistry, CliError> {
    check_file(path)?;
    let registry = MemoryRegistry::read_only(path, now)
        .map_err(|e| CliError(format!("loading registry journal {}: {e}", path.display())))?;
    check_lines(path, &registry)?;
    Ok(registry)
}

fn list(args: &ListArgs) -> Result<ExitCode, CliError> {
    args.source.check()?;
    if args.user.is_empty() {
        return Err(CliError("USER must not be empty".into()));
    }
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let entries = match (&args.source.registry, &args.source.redis) {
        (Some(path), _) => {
            use jwt_session::SessionRegistry as _;
            load_readonly(path, now)?.list(&args.user, now)
        }
        (None, Some(url)) => redis::list(url, args.source.namespace(), &args.user, now)?,
        (None, None) => return Err(CliError("give --registry FILE or --redis URL".into())),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&entries)
            .map_err(|e| CliError(format!("printing JSON: {e}")))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", shown(&args.source));
    println!("now      {}", human_time(now, now));
    println!(
        "sessions of {} ({}), most recently active first:",
        printable(&args.user, false),
        entries.len()
    );
    for e in &entries {
        print_entry(e, now);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_entry(e: &SessionEntry, now: i64) {
    println!("  id {}", printable(&e.id, false));
    println!("      sid          {}", printable(&e.sid, false));
    println!("      logged in    {}", human_time(e.created, now));
    println!("      last active  {}", human_time(e.last_active, now));
    println!("      fresh since  {}", human_time(e.fresh_at, now));
    println!(
        "      remembered   {}",
        if e.remember { "yes" } else { "no" }
    );
    if let Some(agent) = &e.user_agent {
        println!("      user agent   {}", printable(agent, false));
    }
    if let Some(ip) = &e.ip {
        println!("      ip           {}", printable(ip, false));
    }
    println!("      listed until {}", human_time(e.expires, now));
}

fn stats(args: &StatsArgs) -> Result<ExitCode, CliError> {
    args.source.check()?;
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let stats: RegistryStats = match (&args.source.registry, &args.source.redis) {
        (Some(path), _) => {
            use jwt_session::SessionRegistry as _;
            load_readonly(path, now)?.stats(now)
        }
        (None, Some(url)) => redis::stats(url, args.source.namespace(), now)?,
        (None, None) => return Err(CliError("give --registry FILE or --redis URL".into())),
    };
    if args.json {
        let text =
            serde_json::to_string(&stats).map_err(|e| CliError(format!("printing JSON: {e}")))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", shown(&args.source));
    println!("now      {}", human_time(now, now));
    println!("sessions      {}", stats.sessions);
    println!("users         {}", stats.users);
    println!("most per user {}", stats.max_per_user);
    Ok(ExitCode::SUCCESS)
}

/// What `sessions revoke` settled on, to print.
struct Ended {
    entry: SessionEntry,
    kept_until: i64,
    policy: Policy,
}

fn revoke(args: &RevokeArgs) -> Result<ExitCode, CliError> {
    args.source.check()?;
    if args.id.trim().is_empty() {
        return Err(CliError("ID must not be empty".into()));
    }
    let normal = args.policy.policy()?;
    let remembered = Policy::new(
        args.remember_idle,
        args.remember_absolute,
        0,
        args.policy.leeway,
    )
    .map_err(|e| CliError(format!("remembered settings: {e}")))?;
    let policy_for = |remember: bool| if remember { remembered } else { normal };
    let ended = match (&args.source.registry, &args.source.redis) {
        (Some(registry), _) => {
            let Some(journal) = &args.journal else {
                return Err(CliError(
                    "--registry needs --journal FILE: ending a session revokes it in the \
                     denylist's journal"
                        .into(),
                ));
            };
            revoke_in_journals(registry, journal, &args.id, &policy_for)?
        }
        (None, Some(url)) => {
            if args.journal.is_some() {
                return Err(CliError(
                    "--journal goes with --registry; with --redis the revocation goes to Redis"
                        .into(),
                ));
            }
            redis::revoke(url, args.source.namespace(), &args.id, &policy_for)?
        }
        (None, None) => return Err(CliError("give --registry FILE or --redis URL".into())),
    };
    let now = SystemClock.now();
    let Ended {
        entry,
        kept_until,
        policy,
    } = ended;
    println!(
        "ended session {} of {}",
        printable(&entry.id, false),
        printable(&entry.sub, false)
    );
    println!("  sid          {}", printable(&entry.sid, false));
    println!("  logged in    {}", human_time(entry.created, now));
    if let Some(agent) = &entry.user_agent {
        println!("  user agent   {}", printable(agent, false));
    }
    println!(
        "  revoked until {} (I2: no token of it is valid after that; idle {}, absolute {}, \
         leeway {})",
        human_time(kept_until, now),
        human_secs(policy.idle_timeout()),
        human_secs(policy.absolute_timeout()),
        human_secs(policy.leeway()),
    );
    match (&args.source.registry, &args.journal) {
        (Some(registry), Some(journal)) => {
            println!("  journal      {}", journal.display());
            println!("  registry     {}", registry.display());
            eprintln!(
                "jwt-session: note: running servers read both journals only at start: (re)start \
                 the servers that use them"
            );
        }
        _ => println!("  {}", shown(&args.source)),
    }
    Ok(ExitCode::SUCCESS)
}

/// I2: until when a revocation of a session that logged in at `auth_time` must live when
/// made at `now`.
fn kept_until(auth_time: i64, now: i64, policy: &Policy) -> i64 {
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    auth_time
        .saturating_add(secs(policy.absolute_timeout()))
        .min(now.saturating_add(secs(policy.idle_timeout())))
        .saturating_add(secs(policy.leeway()))
}

/// Refuse a denylist journal that is clearly not one (a typo must not let the library
/// rewrite some other file).
fn check_denylist_journal(path: &Path) -> Result<(), CliError> {
    if !path.exists() {
        return Ok(());
    }
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| CliError(format!("journal {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(CliError(format!("journal {shown} is not a regular file")));
    }
    let bytes = std::fs::read(path).map_err(|e| CliError(format!("journal {shown}: {e}")))?;
    let summary = jwt_session::summarize_journal(&bytes);
    if summary.unreadable > 0 && summary.sessions + summary.subjects + summary.watermarks == 0 {
        return Err(CliError(format!(
            "{shown} is not a revocation journal ({} unreadable lines, none readable)",
            summary.unreadable
        )));
    }
    Ok(())
}

fn revoke_in_journals(
    registry_path: &Path,
    journal: &Path,
    id: &str,
    policy_for: &dyn Fn(bool) -> Policy,
) -> Result<Ended, CliError> {
    use jwt_session::{MemoryDenylist, RevocationStore as _, SessionRegistry as _};
    let clock = SystemClock;
    let now = clock.now();
    // Read both first: nothing is written unless both are what they claim to be.
    let snapshot = load_readonly(registry_path, now)?;
    check_denylist_journal(journal)?;
    if snapshot.find(id).is_none() {
        return Err(CliError(format!(
            "no live session is listed as {} in {}",
            printable(id, false),
            registry_path.display()
        )));
    }
    drop(snapshot);
    let registry = MemoryRegistry::builder()
        .journal(registry_path)
        .build(&clock)
        .map_err(|e| {
            CliError(format!(
                "opening registry journal {}: {e}",
                registry_path.display()
            ))
        })?;
    let entry = registry
        .find(id)
        .filter(|e| e.expires > now)
        .ok_or_else(|| {
            CliError(format!(
                "no live session is listed as {} in {}",
                printable(id, false),
                registry_path.display()
            ))
        })?;
    let denylist = MemoryDenylist::builder()
        .journal(journal)
        .build(&clock)
        .map_err(|e| CliError(format!("opening journal {}: {e}", journal.display())))?;
    let policy = policy_for(entry.remember);
    denylist
        .revoke_session(&entry.sid, entry.created, &policy, &clock)
        .map_err(|e| CliError(format!("recording in journal {}: {e}", journal.display())))?;
    registry.remove(&entry.sid).map_err(|e| {
        CliError(format!(
            "revoked, but dropping it from registry journal {}: {e}",
            registry_path.display()
        ))
    })?;
    let kept_until = denylist
        .snapshot()
        .into_iter()
        .find(|e| !e.is_subject() && e.id == entry.sid)
        .map_or_else(|| kept_until(entry.created, now, &policy), |e| e.expires_at);
    Ok(Ended {
        entry,
        kept_until,
        policy,
    })
}

#[cfg(feature = "redis")]
mod redis {
    //! The same against Redis (a `RedisRegistry` and a `RedisDenylist`).

    use std::sync::Arc;
    use std::time::Duration;

    use jwt_session::{
        Clock as _, Policy, RedisDenylist, RedisDenylistOptions, RevocationStore as _, SystemClock,
    };
    use jwt_session::{RedisRegistry, RedisRegistryOptions, RegistryStats, SessionEntry};

    use super::{Ended, kept_until};
    use crate::{CliError, printable};

    /// How long to wait for Redis (resync, writes).
    const WAIT: Duration = Duration::from_secs(5);

    /// `host:port` of a Redis URL: never its credentials.
    pub(super) fn address(url: &str) -> String {
        ::redis::Client::open(url).map_or_else(
            |_| "(invalid URL)".into(),
            |c| c.get_connection_info().addr().to_string(),
        )
    }

    fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError(format!("starting the Redis client: {e}")))
    }

    fn open(url: &str, namespace: &str) -> Result<Arc<RedisRegistry>, CliError> {
        if namespace.is_empty() {
            return Err(CliError("--namespace must not be empty".into()));
        }
        ::redis::Client::open(url).map_err(|e| CliError(format!("invalid --redis URL: {e}")))?;
        RedisRegistry::connect(
            url,
            RedisRegistryOptions::default()
                .namespace(namespace)
                .connect_timeout(WAIT)
                .response_timeout(WAIT),
        )
        .map_err(|e| CliError(format!("Redis at {}: {e}", address(url))))
    }

    fn read_error(url: &str) -> impl Fn(jwt_session::RevocationError) -> CliError + '_ {
        move |e| {
            let why = match e {
                jwt_session::RevocationError::Backend(why) => why,
                other => other.to_string(),
            };
            CliError(format!("reading Redis at {}: {why}", address(url)))
        }
    }

    pub(super) fn list(
        url: &str,
        namespace: &str,
        user: &str,
        now: i64,
    ) -> Result<Vec<SessionEntry>, CliError> {
        let rt = runtime()?;
        let _in = rt.enter();
        open(url, namespace)?
            .try_list(user, now)
            .map_err(read_error(url))
    }

    pub(super) fn stats(url: &str, namespace: &str, now: i64) -> Result<RegistryStats, CliError> {
        let rt = runtime()?;
        let _in = rt.enter();
        open(url, namespace)?
            .try_stats(now)
            .map_err(read_error(url))
    }

    pub(super) fn revoke(
        url: &str,
        namespace: &str,
        id: &str,
        policy_for: &dyn Fn(bool) -> Policy,
    ) -> Result<Ended, CliError> {
        let rt = runtime()?;
        rt.block_on(async {
            let clock = SystemClock;
            let now = clock.now();
            let registry = open(url, namespace)?;
            let entry = registry
                .find(id, now)
                .map_err(read_error(url))?
                .ok_or_else(|| {
                    CliError(format!(
                        "no live session is listed as {} in Redis at {} (namespace {})",
                        printable(id, false),
                        address(url),
                        printable(namespace, false)
                    ))
                })?;
            let denylist =
                RedisDenylist::connect(url, RedisDenylistOptions::default().namespace(namespace))
                    .map_err(|e| CliError(format!("Redis at {}: {e}", address(url))))?;
            if !denylist.wait_ready(WAIT).await {
                let why = denylist.status().last_error.unwrap_or_default();
                return Err(CliError(format!(
                    "Redis at {}: the denylist did not sync ({why}); nothing was revoked",
                    address(url)
                )));
            }
            let policy = policy_for(entry.remember);
            // The local mirror takes it at once; what matters is that it reaches Redis.
            let _ = denylist.revoke_session(&entry.sid, entry.created, &policy, &clock);
            if !denylist.flush(WAIT).await {
                return Err(CliError(format!(
                    "Redis at {}: the revocation could not be written ({}); the session is NOT \
                     ended",
                    address(url),
                    denylist.status().last_error.unwrap_or_default()
                )));
            }
            jwt_session::SessionRegistry::remove(&*registry, &entry.sid)
                .map_err(|e| CliError(format!("dropping it from the registry: {e}")))?;
            if !registry.flush(WAIT).await {
                eprintln!(
                    "jwt-session: warning: revoked, but the registry entry could not be dropped \
                     from Redis; it is listed until it expires"
                );
            }
            let kept_until = kept_until(entry.created, now, &policy);
            Ok(Ended {
                entry,
                kept_until,
                policy,
            })
        })
    }
}

#[cfg(not(feature = "redis"))]
mod redis {
    //! Without the `redis` feature: a clear error.

    use jwt_session::Policy;
    use jwt_session::{RegistryStats, SessionEntry};

    use super::Ended;
    use crate::CliError;

    fn off() -> CliError {
        CliError(
            "--redis: this jwt-session was built without Redis support (cargo feature `redis`)"
                .into(),
        )
    }

    pub(super) fn address(_url: &str) -> String {
        String::new()
    }

    pub(super) fn list(
        _url: &str,
        _namespace: &str,
        _user: &str,
        _now: i64,
    ) -> Result<Vec<SessionEntry>, CliError> {
        Err(off())
    }

    pub(super) fn stats(
        _url: &str,
        _namespace: &str,
        _now: i64,
    ) -> Result<RegistryStats, CliError> {
        Err(off())
    }

    pub(super) fn revoke(
        _url: &str,
        _namespace: &str,
        _id: &str,
        _policy_for: &dyn Fn(bool) -> Policy,
    ) -> Result<Ended, CliError> {
        Err(off())
    }
}
