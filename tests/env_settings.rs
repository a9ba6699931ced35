//! Server-rendered apps (issue 12), part 4: settings from the environment (feature
//! `env`): `SessionConfigBuilder::from_env(prefix)` and `jwt_session::env`.
//!
//! The crate forbids `unsafe` code, and `std::env::set_var` is `unsafe` in edition 2024
//! (another thread may read the environment at the same time), so no test here changes
//! its own environment. Each test runs this test binary again as a child process with the
//! variables it needs (each test with its own prefix), filtered to `env_probe_child`,
//! which builds the configuration and prints what it got as one JSON line. Run normally,
//! without the probe variable, `env_probe_child` does nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::io::Write as _;
use std::process::Command;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};
use jwt_session::env::{self, EnvError};
use jwt_session::{Algorithm, generate_key};
use jwt_session::{
    DEFAULT_ABSOLUTE, DEFAULT_IDLE, DEFAULT_ISSUER, DEFAULT_LEEWAY, DEFAULT_REISSUE_AFTER,
    DEFAULT_REMEMBER_ABSOLUTE, DEFAULT_REMEMBER_IDLE, DEFAULT_TOKEN_CACHE, Keyring, SessionConfig,
    SessionConfigBuilder,
};
use jwt_session::{Scheme, check_origin};
use serde_json::{Value, json};

/// The prefix the child reads (set only for the child).
const PROBE_PREFIX: &str = "JWT_SESSION_ENV_PROBE_PREFIX";
/// The builder settings the child starts from: "" (defaults), "dev", "custom", or
/// "functions" (the `env::duration` / `env::flag` helpers instead of `from_env`).
const PROBE_BASE: &str = "JWT_SESSION_ENV_PROBE_BASE";
/// Marks the child's report line on its standard output.
const MARK: &str = "ENV-PROBE-REPORT:";

// ---------------------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------------------

/// Not a test on its own: the child process of the tests below (see the module docs).
#[test]
fn env_probe_child() {
    let Ok(prefix) = std::env::var(PROBE_PREFIX) else {
        return;
    };
    let base = std::env::var(PROBE_BASE).unwrap_or_default();
    let report = if base == "functions" {
        functions(&prefix)
    } else {
        configure(&prefix, &base)
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{MARK}{report}").unwrap();
    out.flush().unwrap();
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// A builder with the base settings of a test.
fn builder(base: &str) -> SessionConfigBuilder {
    let key = generate_key(Algorithm::EdDSA, "env-").unwrap().key;
    let builder = SessionConfig::builder(Keyring::new(key).unwrap());
    match base {
        "" => builder,
        "dev" => builder.development_cookies(),
        "custom" => builder
            .idle_timeout(Duration::from_secs(600))
            .absolute_timeout(Duration::from_secs(7200))
            .reissue_after(Duration::from_secs(120))
            .issuer("custom-issuer")
            .browser_session_cookies(true),
        other => panic!("unknown probe base {other:?}"),
    }
}

fn env_error(e: &EnvError) -> Value {
    match e {
        EnvError::Invalid {
            var,
            value,
            problem,
        } => json!({
            "kind": "invalid", "var": var, "value": value, "problem": problem,
            "display": e.to_string(),
        }),
        EnvError::NotUnicode { var } => json!({
            "kind": "not_unicode", "var": var, "display": e.to_string(),
        }),
        _ => json!({ "kind": "other", "display": e.to_string() }),
    }
}

/// `from_env` on the base builder, then `build`: the settings, or the error.
fn configure(prefix: &str, base: &str) -> Value {
    let config = match builder(base).from_env(prefix) {
        Err(e) => return json!({ "env_error": env_error(&e) }),
        Ok(builder) => match builder.build() {
            Err(e) => return json!({ "build_error": e.to_string() }),
            Ok(config) => config,
        },
    };
    let policy = config.policy();
    let removal = config.cookie().removal();
    // Whether X-Forwarded-Proto is trusted: an Origin of the other scheme than the
    // site's passes only when the forwarded scheme is believed.
    let (site, other) = match config.origins().scheme() {
        Scheme::Https => ("https", "http"),
        Scheme::Http => ("http", "https"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("probe.example"));
    headers.insert("x-forwarded-proto", HeaderValue::from_str(other).unwrap());
    headers.insert(
        header::ORIGIN,
        HeaderValue::from_str(&format!("{other}://probe.example")).unwrap(),
    );
    let forwarded = check_origin(&headers, None, config.origins()).is_ok();
    json!({ "config": {
        "idle": policy.idle_timeout(),
        "absolute": policy.absolute_timeout(),
        "reissue_after": policy.reissue_after(),
        "leeway": policy.leeway(),
        "remember": config
            .remember_policy()
            .map(|p| [p.idle_timeout(), p.absolute_timeout()]),
        "cookie_name": config.cookie().name(),
        "secure": removal.to_str().unwrap().contains("Secure"),
        "site_scheme": site,
        "browser_session_cookies": config.browser_session_cookies(),
        "trusted": config
            .origins()
            .trusted()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        "trust_forwarded_proto": forwarded,
        "token_cache": config.token_cache(),
        "issuer": config.codec().issuer(),
        "audience": config.codec().audience(),
    }})
}

/// `env::duration` of `<prefix>D` (default 5 s) and `env::flag` of `<prefix>F`.
fn functions(prefix: &str) -> Value {
    let duration = match env::duration(&format!("{prefix}D"), Duration::from_secs(5)) {
        Ok(d) => json!(secs(d)),
        Err(e) => json!({ "error": env_error(&e) }),
    };
    let flag = match env::flag(&format!("{prefix}F")) {
        Ok(f) => json!(f),
        Err(e) => json!({ "error": env_error(&e) }),
    };
    json!({ "duration": duration, "flag": flag })
}

// ---------------------------------------------------------------------------------------
// The parent side
// ---------------------------------------------------------------------------------------

/// Run the child with `vars` (names after `prefix`) set, from the `base` builder.
fn probe_os(prefix: &str, base: &str, vars: &[(&str, &OsStr)]) -> Value {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "env_probe_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(PROBE_PREFIX, prefix)
    .env(PROBE_BASE, base);
    for (name, value) in vars {
        cmd.env(format!("{prefix}{name}"), value);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find(MARK).map(|at| &l[at + MARK.len()..]))
        .unwrap_or_else(|| panic!("no report from the probe child:\n{stdout}"));
    serde_json::from_str(line).unwrap()
}

fn probe(prefix: &str, base: &str, vars: &[(&str, &str)]) -> Value {
    let vars: Vec<(&str, &OsStr)> = vars.iter().map(|(k, v)| (*k, OsStr::new(*v))).collect();
    probe_os(prefix, base, &vars)
}

/// The settings of a probe that must succeed.
#[track_caller]
fn config(report: &Value) -> &Value {
    assert!(report["config"].is_object(), "expected settings: {report}");
    &report["config"]
}

/// The `EnvError` of a probe that must fail.
#[track_caller]
fn env_err(report: &Value) -> &Value {
    assert!(
        report["env_error"].is_object(),
        "expected an EnvError: {report}"
    );
    &report["env_error"]
}

/// The settings a builder has without any variable.
fn defaults() -> Value {
    json!({
        "idle": secs(DEFAULT_IDLE),
        "absolute": secs(DEFAULT_ABSOLUTE),
        "reissue_after": secs(DEFAULT_REISSUE_AFTER),
        "leeway": secs(DEFAULT_LEEWAY),
        "remember": null,
        "cookie_name": "__Host-session",
        "secure": true,
        "site_scheme": "https",
        "browser_session_cookies": false,
        "trusted": [],
        "trust_forwarded_proto": false,
        "token_cache": DEFAULT_TOKEN_CACHE,
        "issuer": DEFAULT_ISSUER,
        "audience": DEFAULT_ISSUER,
    })
}

// ---------------------------------------------------------------------------------------
// Unset: unchanged
// ---------------------------------------------------------------------------------------

#[test]
fn unset_variables_leave_the_builder_as_it_is() {
    let report = probe("JST_UNSET_", "", &[]);
    assert_eq!(*config(&report), defaults());

    // A builder's own settings stay too.
    let report = probe("JST_UNSET_CUSTOM_", "custom", &[]);
    let got = config(&report);
    assert_eq!(got["idle"], 600);
    assert_eq!(got["absolute"], 7200);
    assert_eq!(got["reissue_after"], 120);
    assert_eq!(got["issuer"], "custom-issuer");
    assert_eq!(got["browser_session_cookies"], true);

    let report = probe("JST_UNSET_DEV_", "dev", &[]);
    let got = config(&report);
    assert_eq!(got["cookie_name"], "session");
    assert_eq!(got["secure"], false);
}

#[test]
fn empty_or_blank_variables_count_as_unset() {
    let report = probe(
        "JST_BLANK_",
        "custom",
        &[
            ("IDLE", ""),
            ("ABSOLUTE", "   "),
            ("SECURE_COOKIES", ""),
            ("BROWSER_SESSION_COOKIES", " "),
            ("TRUSTED_ORIGINS", ""),
            ("TOKEN_CACHE", ""),
            ("ISSUER", "  "),
            ("REMEMBER_IDLE", ""),
        ],
    );
    let got = config(&report);
    assert_eq!(got["idle"], 600);
    assert_eq!(got["absolute"], 7200);
    assert_eq!(got["secure"], true);
    assert_eq!(got["browser_session_cookies"], true);
    assert_eq!(got["trusted"], json!([]));
    assert_eq!(got["token_cache"], DEFAULT_TOKEN_CACHE);
    assert_eq!(got["issuer"], "custom-issuer");
    assert_eq!(got["remember"], Value::Null);
}

// ---------------------------------------------------------------------------------------
// Set: durations, flags, origins, the rest
// ---------------------------------------------------------------------------------------

#[test]
fn durations_are_humantime_and_override_the_builder() {
    let report = probe(
        "JST_DURATIONS_",
        "custom",
        &[
            ("IDLE", "15m"),
            ("ABSOLUTE", "12h"),
            ("REISSUE_AFTER", " 90s "),
            ("LEEWAY", "2s"),
        ],
    );
    let got = config(&report);
    assert_eq!(got["idle"], 15 * 60);
    assert_eq!(got["absolute"], 12 * 3600);
    assert_eq!(got["reissue_after"], 90);
    assert_eq!(got["leeway"], 2);
    // What the environment does not name stays the builder's.
    assert_eq!(got["issuer"], "custom-issuer");

    let report = probe(
        "JST_DURATIONS_COMPOUND_",
        "",
        &[("IDLE", "1h 30m"), ("ABSOLUTE", "1day")],
    );
    let got = config(&report);
    assert_eq!(got["idle"], 5400);
    assert_eq!(got["absolute"], 86_400);
}

#[test]
fn remember_lifetimes_either_variable_sets_both() {
    let day = 86_400;
    let report = probe(
        "JST_REMEMBER_BOTH_",
        "",
        &[("REMEMBER_IDLE", "3d"), ("REMEMBER_ABSOLUTE", "14d")],
    );
    assert_eq!(config(&report)["remember"], json!([3 * day, 14 * day]));

    let report = probe("JST_REMEMBER_IDLE_", "", &[("REMEMBER_IDLE", "2d")]);
    assert_eq!(
        config(&report)["remember"],
        json!([2 * day, secs(DEFAULT_REMEMBER_ABSOLUTE)])
    );

    let report = probe(
        "JST_REMEMBER_ABSOLUTE_",
        "",
        &[("REMEMBER_ABSOLUTE", "60d")],
    );
    assert_eq!(
        config(&report)["remember"],
        json!([secs(DEFAULT_REMEMBER_IDLE), 60 * day])
    );
    // The normal lifetimes are untouched.
    assert_eq!(config(&report)["idle"], secs(DEFAULT_IDLE));
}

#[test]
fn secure_cookies_off_gives_development_cookies() {
    for (i, off) in ["0", "false", "FALSE", "no", "off", " Off "]
        .into_iter()
        .enumerate()
    {
        let report = probe(
            &format!("JST_INSECURE_{i}_"),
            "",
            &[("SECURE_COOKIES", off)],
        );
        let got = config(&report);
        assert_eq!(got["cookie_name"], "session", "{off:?}");
        assert_eq!(got["secure"], false, "{off:?}");
        assert_eq!(got["site_scheme"], "http", "{off:?}");
    }
    // On (the default): secure.
    let report = probe("JST_SECURE_ON_", "", &[("SECURE_COOKIES", "1")]);
    let got = config(&report);
    assert_eq!(got["cookie_name"], "__Host-session");
    assert_eq!(got["secure"], true);
}

#[test]
fn secure_cookies_on_gives_the_secure_defaults_even_over_development_cookies() {
    // The module table: `SECURE_COOKIES` `1`/`true`: the secure defaults. An app whose
    // own default is development cookies, deployed with SECURE_COOKIES=1, must get them.
    let report = probe("JST_SECURE_OVER_DEV_", "dev", &[("SECURE_COOKIES", "1")]);
    let got = config(&report);
    assert_eq!(
        (got["cookie_name"].clone(), got["secure"].clone()),
        (json!("__Host-session"), json!(true)),
        "SECURE_COOKIES=1 over a builder with development_cookies(): {got}"
    );
}

#[test]
fn boolean_flags_accept_the_usual_spellings() {
    for (i, on) in ["1", "true", "True", "yes", "on"].into_iter().enumerate() {
        let report = probe(
            &format!("JST_FLAGS_ON_{i}_"),
            "",
            &[
                ("BROWSER_SESSION_COOKIES", on),
                ("TRUST_FORWARDED_PROTO", on),
            ],
        );
        let got = config(&report);
        assert_eq!(got["browser_session_cookies"], true, "{on:?}");
        assert_eq!(got["trust_forwarded_proto"], true, "{on:?}");
    }
    let report = probe(
        "JST_FLAGS_OFF_",
        "custom",
        &[
            ("BROWSER_SESSION_COOKIES", "0"),
            ("TRUST_FORWARDED_PROTO", "off"),
        ],
    );
    let got = config(&report);
    assert_eq!(
        got["browser_session_cookies"], false,
        "overrides the builder"
    );
    assert_eq!(got["trust_forwarded_proto"], false);
}

#[test]
fn trusted_origins_are_a_comma_separated_list() {
    let report = probe(
        "JST_ORIGINS_",
        "",
        &[(
            "TRUSTED_ORIGINS",
            "https://a.example, https://b.example:8443 ,,HTTPS://C.EXAMPLE:443/",
        )],
    );
    assert_eq!(
        config(&report)["trusted"],
        json!([
            "https://a.example",
            "https://b.example:8443",
            "https://c.example"
        ])
    );
}

#[test]
fn token_cache_issuer_and_audience() {
    let report = probe(
        "JST_MISC_",
        "",
        &[
            ("TOKEN_CACHE", "0"),
            ("ISSUER", "my-app"),
            ("AUDIENCE", "my-api"),
        ],
    );
    let got = config(&report);
    assert_eq!(got["token_cache"], 0);
    assert_eq!(got["issuer"], "my-app");
    assert_eq!(got["audience"], "my-api");
}

// ---------------------------------------------------------------------------------------
// Invalid: an EnvError naming the variable and its value
// ---------------------------------------------------------------------------------------

#[test]
fn an_invalid_duration_names_the_variable_and_the_value() {
    for (i, (name, value)) in [
        ("IDLE", "15"),
        ("ABSOLUTE", "eight hours"),
        ("REISSUE_AFTER", "-5s"),
        ("LEEWAY", "5 parsecs"),
        ("REMEMBER_IDLE", "soon"),
        ("REMEMBER_ABSOLUTE", "forever"),
    ]
    .into_iter()
    .enumerate()
    {
        let prefix = format!("JST_BAD_DURATION_{i}_");
        let report = probe(&prefix, "", &[(name, value)]);
        let err = env_err(&report);
        assert_eq!(err["kind"], "invalid", "{report}");
        assert_eq!(err["var"], format!("{prefix}{name}"));
        assert_eq!(err["value"], value);
        let display = err["display"].as_str().unwrap();
        assert!(
            display.contains(&format!("{prefix}{name}")) && display.contains(value),
            "{display}"
        );
        assert!(
            err["problem"].as_str().unwrap().contains("duration"),
            "{report}"
        );
    }
}

#[test]
fn an_invalid_flag_names_the_variable_and_the_value() {
    for (i, (name, value)) in [
        ("SECURE_COOKIES", "maybe"),
        ("BROWSER_SESSION_COOKIES", "2"),
        ("TRUST_FORWARDED_PROTO", "enabled"),
    ]
    .into_iter()
    .enumerate()
    {
        let prefix = format!("JST_BAD_FLAG_{i}_");
        let report = probe(&prefix, "", &[(name, value)]);
        let err = env_err(&report);
        assert_eq!(err["kind"], "invalid", "{report}");
        assert_eq!(err["var"], format!("{prefix}{name}"));
        assert_eq!(err["value"], value);
    }
}

#[test]
fn an_invalid_trusted_origin_names_the_variable_the_list_and_the_entry() {
    let list = "https://ok.example,app.example";
    let report = probe("JST_BAD_ORIGIN_", "", &[("TRUSTED_ORIGINS", list)]);
    let err = env_err(&report);
    assert_eq!(err["kind"], "invalid");
    assert_eq!(err["var"], "JST_BAD_ORIGIN_TRUSTED_ORIGINS");
    assert_eq!(err["value"], list);
    assert!(
        err["problem"].as_str().unwrap().contains("app.example"),
        "{report}"
    );

    for (i, bad) in ["https://a.example/path", "null", "ftp://a.example"]
        .into_iter()
        .enumerate()
    {
        let report = probe(
            &format!("JST_BAD_ORIGIN_{i}_"),
            "",
            &[("TRUSTED_ORIGINS", bad)],
        );
        assert_eq!(env_err(&report)["kind"], "invalid", "{bad:?}: {report}");
    }
}

#[test]
fn an_invalid_token_cache_names_the_variable_and_the_value() {
    for (i, value) in ["lots", "-1", "1e4"].into_iter().enumerate() {
        let prefix = format!("JST_BAD_CACHE_{i}_");
        let report = probe(&prefix, "", &[("TOKEN_CACHE", value)]);
        let err = env_err(&report);
        assert_eq!(err["kind"], "invalid", "{report}");
        assert_eq!(err["var"], format!("{prefix}TOKEN_CACHE"));
        assert_eq!(err["value"], value);
    }
}

#[cfg(unix)]
#[test]
fn a_value_that_is_not_unicode_is_a_not_unicode_error() {
    use std::os::unix::ffi::OsStrExt as _;
    let report = probe_os(
        "JST_NOT_UNICODE_",
        "",
        &[("IDLE", OsStr::from_bytes(b"15m\xff"))],
    );
    let err = env_err(&report);
    assert_eq!(err["kind"], "not_unicode", "{report}");
    assert_eq!(err["var"], "JST_NOT_UNICODE_IDLE");
}

#[test]
fn settings_the_builder_refuses_are_a_config_error_at_build() {
    // Each value parses; together they are impossible (idle over absolute).
    let report = probe("JST_IMPOSSIBLE_", "", &[("IDLE", "9h"), ("ABSOLUTE", "8h")]);
    assert!(report["build_error"].is_string(), "{report}");
}

// ---------------------------------------------------------------------------------------
// jwt_session::env helpers
// ---------------------------------------------------------------------------------------

#[test]
fn env_helpers_read_an_unset_variable_as_the_default() {
    // Reading (not setting) the environment is safe in process; nobody sets this name.
    let name = "JST_IN_PROCESS_NEVER_SET_7f3a";
    assert_eq!(env::var(name), Ok(None));
    assert_eq!(
        env::duration(name, Duration::from_secs(42)),
        Ok(Duration::from_secs(42))
    );
    assert_eq!(env::flag(name), Ok(None));
}

#[test]
fn env_helpers_parse_set_variables_and_name_them_in_errors() {
    let report = probe("JST_FN_OK_", "functions", &[("D", "3s"), ("F", "on")]);
    assert_eq!(report, json!({ "duration": 3, "flag": true }));

    let report = probe("JST_FN_UNSET_", "functions", &[]);
    assert_eq!(report, json!({ "duration": 5, "flag": null }));

    let report = probe("JST_FN_BAD_", "functions", &[("D", "3"), ("F", "nope")]);
    assert_eq!(report["duration"]["error"]["var"], "JST_FN_BAD_D");
    assert_eq!(report["duration"]["error"]["value"], "3");
    assert_eq!(report["flag"]["error"]["var"], "JST_FN_BAD_F");
    assert_eq!(report["flag"]["error"]["value"], "nope");
}
