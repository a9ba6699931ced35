//! Settings from the environment (feature `env`): the variables every app would
//! otherwise parse by hand, with a prefix of your choice, humantime durations and typed
//! errors that name the variable.
//!
//! Available with the `env` feature.
//!
//! | variable (after the prefix) | setting | example |
//! | --- | --- | --- |
//! | `IDLE` / `ABSOLUTE` | [`idle_timeout`](crate::SessionConfigBuilder::idle_timeout) / [`absolute_timeout`](crate::SessionConfigBuilder::absolute_timeout) | `15m` / `8h` |
//! | `REISSUE_AFTER` / `LEEWAY` | [`reissue_after`](crate::SessionConfigBuilder::reissue_after) / [`leeway`](crate::SessionConfigBuilder::leeway) | `60s` / `5s` |
//! | `REMEMBER_IDLE` / `REMEMBER_ABSOLUTE` | [`remember_me`](crate::SessionConfigBuilder::remember_me) (either sets both; the other defaults to 7 d / 30 d) | `7d` / `30d` |
//! | `SECURE_COOKIES` | `0`/`false`: [`development_cookies`](crate::SessionConfigBuilder::development_cookies); `1`/`true`: the secure defaults | `1` |
//! | `BROWSER_SESSION_COOKIES` | [`browser_session_cookies`](crate::SessionConfigBuilder::browser_session_cookies) | `true` |
//! | `TRUSTED_ORIGINS` | [`trusted_origin`](crate::SessionConfigBuilder::trusted_origin), comma-separated | `https://app.example` |
//! | `TRUST_FORWARDED_PROTO` | [`trust_forwarded_proto`](crate::SessionConfigBuilder::trust_forwarded_proto) | `true` |
//! | `TOKEN_CACHE` | [`token_cache`](crate::SessionConfigBuilder::token_cache) | `10000` |
//! | `ISSUER` / `AUDIENCE` | [`issuer`](crate::SessionConfigBuilder::issuer) / [`audience`](crate::SessionConfigBuilder::audience) | `my-app` |
//!
//! An unset (or empty) variable leaves the builder's setting as it is.
//!
//! ```
//! # use jwt_session::{SessionConfig, generate_key, Algorithm, Keyring};
//! # let keyring = Keyring::new(generate_key(Algorithm::EdDSA, "k-").unwrap().key).unwrap();
//! // e.g. MYAPP_IDLE=15m MYAPP_SECURE_COOKIES=0
//! let config = SessionConfig::builder(keyring).from_env("MYAPP_")?.build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use crate::config::{DEFAULT_REMEMBER_ABSOLUTE, DEFAULT_REMEMBER_IDLE, SessionConfigBuilder};

/// A variable that is set but cannot be used.
///
/// Available with the `env` feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The value does not parse.
    #[error("{var}={value:?}: {problem}")]
    Invalid {
        /// The variable's full name.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong, and what is expected.
        problem: String,
    },
    /// The value is not valid Unicode.
    #[error("{var} is not valid Unicode")]
    NotUnicode {
        /// The variable's full name.
        var: String,
    },
}

/// The value of `var`, or `None` when it is unset or empty.
///
/// Available with the `env` feature.
///
/// # Errors
///
/// [`EnvError::NotUnicode`].
pub fn var(var: &str) -> Result<Option<String>, EnvError> {
    match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(EnvError::NotUnicode { var: var.into() }),
    }
}

fn invalid(name: &str, value: &str, problem: impl Into<String>) -> EnvError {
    EnvError::Invalid {
        var: name.into(),
        value: value.into(),
        problem: problem.into(),
    }
}

/// A humantime duration (`3s`, `15m`, `8h`, `7d`) from `name`, or `default` when unset.
///
/// Available with the `env` feature.
///
/// # Errors
///
/// [`EnvError`] naming the variable when it is set but not a duration.
pub fn duration(name: &str, default: Duration) -> Result<Duration, EnvError> {
    match var(name)? {
        None => Ok(default),
        Some(text) => humantime::parse_duration(&text).map_err(|e| {
            invalid(
                name,
                &text,
                format!("not a duration like 3s, 15m or 8h ({e})"),
            )
        }),
    }
}

/// A boolean (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`) from `name`, if set.
///
/// Available with the `env` feature.
///
/// # Errors
///
/// [`EnvError`] naming the variable when it is set to anything else.
pub fn flag(name: &str) -> Result<Option<bool>, EnvError> {
    match var(name)? {
        None => Ok(None),
        Some(text) => match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(invalid(name, &text, "use 1 or 0 (true or false)")),
        },
    }
}

impl SessionConfigBuilder {
    /// Apply the settings of the environment variables named `prefix` + the names in the
    /// [module table](crate::env) (feature `env`). Unset variables change nothing, so
    /// call it after your own defaults.
    ///
    /// Available with the `env` feature.
    ///
    /// # Errors
    ///
    /// The first [`EnvError`]: it names the variable, its value and what is expected.
    pub fn from_env(mut self, prefix: &str) -> Result<Self, EnvError> {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let maybe_duration = |suffix: &str| -> Result<Option<Duration>, EnvError> {
            let var_name = name(suffix);
            Ok(match var(&var_name)? {
                None => None,
                Some(_) => Some(duration(&var_name, Duration::ZERO)?),
            })
        };
        if let Some(d) = maybe_duration("IDLE")? {
            self = self.idle_timeout(d);
        }
        if let Some(d) = maybe_duration("ABSOLUTE")? {
            self = self.absolute_timeout(d);
        }
        if let Some(d) = maybe_duration("REISSUE_AFTER")? {
            self = self.reissue_after(d);
        }
        if let Some(d) = maybe_duration("LEEWAY")? {
            self = self.leeway(d);
        }
        let remember_idle = maybe_duration("REMEMBER_IDLE")?;
        let remember_absolute = maybe_duration("REMEMBER_ABSOLUTE")?;
        if remember_idle.is_some() || remember_absolute.is_some() {
            self = self.remember_me(
                remember_idle.unwrap_or(DEFAULT_REMEMBER_IDLE),
                remember_absolute.unwrap_or(DEFAULT_REMEMBER_ABSOLUTE),
            );
        }
        match flag(&name("SECURE_COOKIES"))? {
            Some(false) => self = self.development_cookies(),
            Some(true) => self = self.secure_cookies(),
            None => {}
        }
        if let Some(on) = flag(&name("BROWSER_SESSION_COOKIES"))? {
            self = self.browser_session_cookies(on);
        }
        if let Some(list) = var(&name("TRUSTED_ORIGINS"))? {
            for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if crate::csrf::Origin::parse(origin).is_none() {
                    return Err(invalid(
                        &name("TRUSTED_ORIGINS"),
                        &list,
                        format!("{origin:?} is not an origin like https://app.example"),
                    ));
                }
                self = self.trusted_origin(origin);
            }
        }
        if let Some(on) = flag(&name("TRUST_FORWARDED_PROTO"))? {
            self = self.trust_forwarded_proto(on);
        }
        if let Some(text) = var(&name("TOKEN_CACHE"))? {
            let capacity = text
                .parse()
                .map_err(|_| invalid(&name("TOKEN_CACHE"), &text, "a number of tokens"))?;
            self = self.token_cache(capacity);
        }
        if let Some(issuer) = var(&name("ISSUER"))? {
            self = self.issuer(issuer);
        }
        if let Some(audience) = var(&name("AUDIENCE"))? {
            self = self.audience(audience);
        }
        Ok(self)
    }
}
