//! `inspect`: a token's header and claims, and the server's verdict on it.

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;
use std::time::Duration;

use jwt_session::unverified;
use jwt_session::{Claims, Clock, Policy, Refusal, RevocationStore, SessionConfig, SystemClock};
use jwt_session::{MemoryDenylist, TokenFacts};
use serde_json::Value;

use crate::{CliError, InspectArgs, human_secs, human_time, journal, keys, printable};

/// The most read from stdin (any token is far shorter; the codec caps it anyway).
const STDIN_CAP: u64 = 1 << 20;

fn read_token(arg: &str) -> Result<Vec<u8>, CliError> {
    let raw = if arg == "-" {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprintln!("jwt-session: paste the token, then press Enter and Ctrl-D");
        }
        let mut buf = Vec::new();
        stdin
            .lock()
            .take(STDIN_CAP + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CliError(format!("reading the token from stdin: {e}")))?;
        if buf.len() as u64 > STDIN_CAP {
            return Err(CliError(format!(
                "the token on stdin is longer than {STDIN_CAP} bytes"
            )));
        }
        buf
    } else {
        arg.as_bytes().to_vec()
    };
    let token = raw.trim_ascii().to_vec();
    if token.is_empty() {
        return Err(CliError(if arg == "-" {
            "no token on stdin".into()
        } else {
            "the token is empty".into()
        }));
    }
    Ok(token)
}

/// Pretty JSON with the CSRF secret replaced (it must never reach a terminal or a ticket).
fn redacted(mut claims: Value) -> String {
    if let Some(csrf) = claims.get_mut("csrf")
        && let Some(len) = csrf.as_str().map(str::len)
    {
        *csrf = Value::String(format!("<redacted: {len} characters>"));
    }
    pretty(&claims)
}

fn pretty(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    printable(&text, true)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn run(args: &InspectArgs) -> Result<ExitCode, CliError> {
    // Every input first (exit 2), then the verdict (exit 0 or 1).
    let token = read_token(&args.token)?;
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let ring = keys::load(&args.keys)?;
    let p = args.policy;
    let config = SessionConfig::builder(ring)
        .idle_timeout(Duration::from_secs(p.idle))
        .absolute_timeout(Duration::from_secs(p.absolute))
        .leeway(Duration::from_secs(p.leeway))
        .reissue_after(Duration::ZERO)
        .issuer(args.issuer.clone())
        .audience(args.audience.clone())
        .token_type(args.token_type.clone())
        .max_token_len(args.max_token_len)
        .build()
        .map_err(|e| CliError(format!("settings: {e}")))?;
    let policy = *config.policy();
    let denylist = match &args.journal {
        Some(path) => Some(journal::load_readonly(path, now)?),
        None => None,
    };

    // What the token says, unverified.
    let peeked = unverified::peek(&token);
    match &peeked {
        Ok((header, claims)) => {
            println!("header (unverified):\n{}", indent(&pretty(header)));
            println!(
                "claims (unverified):\n{}",
                indent(&redacted(claims.clone()))
            );
        }
        Err(r) => println!("header, claims: unreadable ({}: {})", r.code(), r.message()),
    }
    println!("now: {}", human_time(now, now));

    // The server's checks, in the server's order.
    let codec = config.codec();
    let decoded = codec.decode::<Value>(&token);
    let verdict = match &decoded {
        Err(r) => Err(*r),
        Ok(v) => v.claims.check(now, &policy).and_then(|()| match &denylist {
            None => Ok(()),
            Some(list) => match list.is_revoked(TokenFacts::of(&v.claims)) {
                Ok(false) => Ok(()),
                Ok(true) => Err(Refusal::Revoked),
                Err(_) => Err(Refusal::RevocationUnavailable),
            },
        }),
    };

    // Claims to date, and whether they are trustworthy.
    let (claims, verified): (Option<Claims<Value>>, bool) = match decoded {
        Ok(v) => (Some(v.claims), true),
        Err(_) => (
            peeked
                .ok()
                .and_then(|(_, c)| serde_json::from_value::<Claims<Value>>(c).ok()),
            false,
        ),
    };
    if let Some(c) = &claims {
        print_times(c, &policy, now, verified);
    }

    match verdict {
        Ok(()) => {
            println!("verdict: accepted");
            let journal = match &args.journal {
                Some(path) => format!("not revoked in {}", path.display()),
                None => "revocation not checked (no --journal)".into(),
            };
            println!("  signature, key, type, issuer, audience and times pass; {journal}");
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            println!("verdict: refused {}: {}", refusal.code(), refusal.message());
            if refusal == Refusal::Revoked
                && let (Some(list), Some(c)) = (&denylist, &claims)
            {
                for line in revoked_why(list, c, now) {
                    println!("  {line}");
                }
            }
            if let Some(hint) = hint(
                refusal,
                &config,
                &token,
                claims.as_ref(),
                now,
                &policy,
                &args.token_type,
            ) {
                println!("  {hint}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn print_times(c: &Claims<Value>, policy: &Policy, now: i64, verified: bool) {
    let note = if verified {
        ""
    } else {
        " (from unverified claims)"
    };
    println!("times{note}:");
    for (name, t) in [
        ("auth_time", c.auth_time),
        ("iat", c.iat),
        ("lat", c.lat),
        ("exp", c.exp),
    ] {
        println!("  {name:<10} {}", human_time(t, now));
    }
    let idle = c.exp.min(c.idle_deadline(policy));
    let absolute = c.absolute_deadline(policy);
    let leeway = i64::try_from(policy.leeway()).unwrap_or(i64::MAX);
    println!("deadlines{note}:");
    println!(
        "  idle       {} = min(exp, lat + {})",
        human_time(idle, now),
        human_secs(policy.idle_timeout())
    );
    println!(
        "  absolute   {} = auth_time + {}",
        human_time(absolute, now),
        human_secs(policy.absolute_timeout())
    );
    println!(
        "  refused from {} (the earlier deadline + {} leeway)",
        human_time(idle.min(absolute).saturating_add(leeway), now),
        human_secs(policy.leeway())
    );
}

/// One more line for the refusals an operator usually has to dig into.
fn hint(
    refusal: Refusal,
    config: &SessionConfig,
    token: &[u8],
    claims: Option<&Claims<Value>>,
    now: i64,
    policy: &Policy,
    expected_typ: &str,
) -> Option<String> {
    let header = unverified::peek(token).ok().map(|(h, _)| h);
    let field = |name: &str| {
        header
            .as_ref()
            .and_then(|h| h.get(name))
            .map_or_else(|| "(none)".to_owned(), |v| printable(&v.to_string(), false))
    };
    let codec = config.codec();
    let ring = codec.keyring();
    match refusal {
        Refusal::UnknownKey => Some(format!(
            "the token names kid {}; the key directory holds: {}",
            field("kid"),
            ring.kids().join(", ")
        )),
        Refusal::WrongAlgorithm => {
            let kid = header.as_ref()?.get("kid")?.as_str()?;
            Some(format!(
                "the token says alg {}; key {kid} is pinned to {}",
                field("alg"),
                ring.get(kid)?.algorithm()
            ))
        }
        Refusal::TooLarge => Some(format!(
            "{} bytes, over the {}-byte cap (--max-token-len)",
            token.len(),
            codec.max_len()
        )),
        Refusal::WrongType => Some(format!(
            "the token's typ is {}; expected {expected_typ:?} (--token-type)",
            field("typ"),
        )),
        Refusal::WrongIssuer => claims.map(|c| {
            format!(
                "iss is {:?}; expected {:?} (--issuer)",
                c.iss,
                codec.issuer()
            )
        }),
        Refusal::WrongAudience => claims.map(|c| {
            format!(
                "aud is {:?}; expected {:?} (--audience)",
                c.aud,
                codec.audience()
            )
        }),
        Refusal::NotYetValid => claims.map(|c| {
            format!(
                "issued {} / last active {}, beyond the {} leeway",
                human_time(c.iat, now),
                human_time(c.lat, now),
                human_secs(policy.leeway())
            )
        }),
        _ => None,
    }
}

/// Which journal entries refuse this token (the same rules as `is_revoked`).
fn revoked_why(list: &MemoryDenylist, c: &Claims<Value>, now: i64) -> Vec<String> {
    let mut why = Vec::new();
    for e in list.snapshot() {
        match e.before {
            None if e.id == c.sid => why.push(format!(
                "session {} was revoked {}; entry kept until {}",
                printable(&e.id, false),
                human_time(e.revoked_at, now),
                human_time(e.expires_at, now)
            )),
            Some(before) if e.id == c.sub && c.auth_time <= before => why.push(format!(
                "every session of subject {:?} that logged in at or before {} was revoked \
                 (this one logged in {})",
                e.id,
                human_time(before, now),
                human_time(c.auth_time, now)
            )),
            _ => {}
        }
    }
    if let Some(w) = list.watermark().filter(|w| c.lat <= *w) {
        why.push(format!(
            "the denylist overflowed: last activity {} is at or before the watermark {}",
            human_time(c.lat, now),
            human_time(w, now)
        ));
    }
    why
}
