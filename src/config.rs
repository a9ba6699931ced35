//! Settings, with secure defaults, checked once by [`SessionConfigBuilder::build`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cookie::SameSite;

use crate::claims::Policy;
use crate::clock::{Clock, SystemClock};
use crate::codec::{Codec, DEFAULT_MAX_TOKEN_LEN, DEFAULT_TOKEN_TYPE};
use crate::cookie::CookieSettings;
use crate::csrf::{Origin, OriginPolicy, Scheme};
use crate::error::ConfigError;
use crate::keys::Keyring;

/// Default idle timeout: 30 minutes (OWASP: 15–30 min for most applications).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// Default absolute timeout: 8 hours (a working day).
pub const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(8 * 3600);
/// Default idle timeout of a remembered session: 7 days.
pub const DEFAULT_REMEMBER_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default absolute timeout of a remembered session: 30 days.
pub const DEFAULT_REMEMBER_ABSOLUTE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default reissue-after: 60 seconds (at most one signature per user per minute).
pub const DEFAULT_REISSUE_AFTER: Duration = Duration::from_secs(60);
/// Default leeway for clock skew between instances: 5 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Default issuer and audience.
pub const DEFAULT_ISSUER: &str = "jwt-session";

/// A checked, immutable configuration. Share it (it is cheap to clone: an `Arc` inside).
#[derive(Clone)]
pub struct SessionConfig(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) codec: Codec,
    pub(crate) policy: Policy,
    pub(crate) remember_policy: Option<Policy>,
    pub(crate) widest_policy: Policy,
    pub(crate) browser_session_cookies: bool,
    pub(crate) cookie: CookieSettings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) origins: OriginPolicy,
    pub(crate) token_cache: usize,
    pub(crate) passive_routes: Vec<PassivePredicate>,
    pub(crate) accept_bearer: bool,
}

/// Decides from a request's method and path that it is passive (see
/// [`SessionConfigBuilder::passive_route`]).
pub type PassivePredicate = Arc<dyn Fn(&http::Method, &str) -> bool + Send + Sync>;

/// Default capacity of the verified-token cache (entries; each about 0.5 KiB).
pub const DEFAULT_TOKEN_CACHE: usize = 10_000;

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("codec", &self.0.codec)
            .field("policy", &self.0.policy)
            .field("remember_policy", &self.0.remember_policy)
            .field("browser_session_cookies", &self.0.browser_session_cookies)
            .field("cookie", &self.0.cookie)
            .field("clock", &self.0.clock)
            .field("origins", &self.0.origins)
            .field("token_cache", &self.0.token_cache)
            .field("passive_routes", &self.0.passive_routes.len())
            .field("accept_bearer", &self.0.accept_bearer)
            .finish()
    }
}

impl SessionConfig {
    /// Start from the defaults, signing with `keyring`.
    pub fn builder(keyring: Keyring) -> SessionConfigBuilder {
        SessionConfigBuilder {
            keyring,
            idle: DEFAULT_IDLE,
            absolute: DEFAULT_ABSOLUTE,
            remember: None,
            browser_session_cookies: false,
            reissue_after: DEFAULT_REISSUE_AFTER,
            leeway: DEFAULT_LEEWAY,
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_ISSUER.into(),
            token_type: DEFAULT_TOKEN_TYPE.into(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            cookie: CookieSettings::default(),
            clock: Arc::new(SystemClock),
            trusted_origins: Vec::new(),
            site_scheme: None,
            forwarded_proto: false,
            token_cache: DEFAULT_TOKEN_CACHE,
            passive_routes: Vec::new(),
            accept_bearer: false,
        }
    }

    /// The token codec (sign, verify, rotate keys).
    pub fn codec(&self) -> &Codec {
        &self.0.codec
    }

    /// The time rules.
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// The time rules of remembered ("remember me") sessions, when configured with
    /// [`remember_me`](SessionConfigBuilder::remember_me): the remembered idle and
    /// absolute timeouts, the same reissue-after and leeway.
    pub fn remember_policy(&self) -> Option<&Policy> {
        self.0.remember_policy.as_ref()
    }

    /// The policy of a session: the remembered one for a remembered session (when
    /// configured), else the normal one.
    pub fn policy_for(&self, remembered: bool) -> &Policy {
        match &self.0.remember_policy {
            Some(remember) if remembered => remember,
            _ => &self.0.policy,
        }
    }

    /// The widest of the normal and remembered policies — the longest idle and the
    /// longest absolute timeout: what a revocation must outlive when it does not know
    /// which kind of session it ends (a "log out everywhere", a revocation by id).
    pub(crate) fn longest_policy(&self) -> &Policy {
        &self.0.widest_policy
    }

    /// Whether sessions that are not remembered get a browser-session cookie (no
    /// `Max-Age`: the browser drops it when it closes).
    pub fn browser_session_cookies(&self) -> bool {
        self.0.browser_session_cookies
    }

    /// The cookie settings.
    pub fn cookie(&self) -> &CookieSettings {
        &self.0.cookie
    }

    /// The clock every time decision uses.
    pub fn clock(&self) -> &dyn Clock {
        &*self.0.clock
    }

    /// The shared clock handle.
    pub fn clock_handle(&self) -> Arc<dyn Clock> {
        self.0.clock.clone()
    }

    /// How unsafe requests' `Origin` is judged: the site's scheme and trusted origins.
    pub fn origins(&self) -> &OriginPolicy {
        &self.0.origins
    }

    /// Whether `Authorization: Bearer` tokens are accepted.
    pub fn accept_bearer(&self) -> bool {
        self.0.accept_bearer
    }

    /// Capacity of the verified-token cache (0: off).
    pub fn token_cache(&self) -> usize {
        self.0.token_cache
    }

    pub(crate) fn passive_routes(&self) -> &[PassivePredicate] {
        &self.0.passive_routes
    }
}

/// Builder for [`SessionConfig`]. Every setting documents its default.
#[must_use]
pub struct SessionConfigBuilder {
    keyring: Keyring,
    idle: Duration,
    absolute: Duration,
    remember: Option<(Duration, Duration)>,
    browser_session_cookies: bool,
    reissue_after: Duration,
    leeway: Duration,
    issuer: String,
    audience: String,
    token_type: String,
    max_token_len: usize,
    cookie: CookieSettings,
    clock: Arc<dyn Clock>,
    trusted_origins: Vec<String>,
    site_scheme: Option<Scheme>,
    forwarded_proto: bool,
    token_cache: usize,
    passive_routes: Vec<PassivePredicate>,
    accept_bearer: bool,
}

impl fmt::Debug for SessionConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfigBuilder")
            .field("keyring", &self.keyring)
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .finish_non_exhaustive()
    }
}

fn whole_secs(d: Duration, what: &'static str) -> Result<u64, ConfigError> {
    if d.subsec_nanos() != 0 {
        return Err(ConfigError::SubSecond(what));
    }
    Ok(d.as_secs())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl SessionConfigBuilder {
    /// Inactivity after which a session ends. Default 30 min ([`DEFAULT_IDLE`]).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle = d;
        self
    }

    /// Lifetime of a session from login, however active. Default 8 h ([`DEFAULT_ABSOLUTE`]).
    pub fn absolute_timeout(mut self, d: Duration) -> Self {
        self.absolute = d;
        self
    }

    /// Lifetimes of remembered sessions ("remember me",
    /// [`Login::remember`](crate::Login::remember)): inactivity `idle` and lifetime
    /// `absolute` from login, e.g. [`DEFAULT_REMEMBER_IDLE`] (7 days) and
    /// [`DEFAULT_REMEMBER_ABSOLUTE`] (30 days). Carried in the token (`rem`), enforced by
    /// every instance and, through `exp`, by any standard verifier. Default: not set — a
    /// remembered login then keeps the normal lifetimes and only gets a persistent cookie.
    ///
    /// # Memory
    ///
    /// A logout of a remembered session is held by the denylist for up to `idle`, and a
    /// "log out everywhere" for `absolute` (I2): size the denylist for logouts per second
    /// × this idle timeout.
    pub fn remember_me(mut self, idle: Duration, absolute: Duration) -> Self {
        self.remember = Some((idle, absolute));
        self
    }

    /// Give sessions that are not remembered a browser-session cookie (no `Max-Age` or
    /// `Expires`: gone when the browser closes); remembered ones stay persistent.
    /// Default `false`: every cookie's `Max-Age` follows its token's `exp`.
    pub fn browser_session_cookies(mut self, on: bool) -> Self {
        self.browser_session_cookies = on;
        self
    }

    /// Reissue a token on a successful response once it is this old. Default 60 s
    /// ([`DEFAULT_REISSUE_AFTER`]). `0` reissues on every request (one signature each).
    pub fn reissue_after(mut self, d: Duration) -> Self {
        self.reissue_after = d;
        self
    }

    /// Clock-skew allowance on every time check. Default 5 s ([`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, d: Duration) -> Self {
        self.leeway = d;
        self
    }

    /// `iss` of issued tokens, required on verified ones. Default `jwt-session`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// `aud` of issued tokens, required on verified ones. Default `jwt-session`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The `typ` header. Default `session+jwt` ([`DEFAULT_TOKEN_TYPE`]).
    pub fn token_type(mut self, typ: impl Into<String>) -> Self {
        self.token_type = typ.into();
        self
    }

    /// Tokens longer than this are refused unparsed, and never issued. Default 4096
    /// ([`DEFAULT_MAX_TOKEN_LEN`]).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// The cookie's name. Default `__Host-session`. A `__Host-` name requires `Secure`,
    /// `Path=/` and no domain; a `__Secure-` name requires `Secure`.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
        self
    }

    /// The cookie's `Secure` attribute. Default `true`.
    ///
    /// # Security
    ///
    /// Without `Secure` the cookie travels over plain HTTP, where anyone on the path can
    /// read and replay it. Turn it off only for local development.
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.cookie.secure = secure;
        self
    }

    /// The cookie's `SameSite` attribute. Default `Lax`. `None` requires `Secure`.
    pub fn cookie_same_site(mut self, same_site: SameSite) -> Self {
        self.cookie.same_site = same_site;
        self
    }

    /// The cookie's `Path`. Default `/`.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// The cookie's `Domain`. Default none (host-only, the safest).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }

    /// Development mode for plain-HTTP `localhost`: cookie named `session`, without
    /// `Secure` (browsers drop `Secure` cookies and `__Host-` names over plain HTTP).
    ///
    /// # Security
    ///
    /// Never in production: the cookie would be sent over unencrypted connections.
    pub fn development_cookies(mut self) -> Self {
        self.cookie.name = "session".into();
        self.cookie.secure = false;
        self
    }

    /// Back to the secure cookie defaults after [`development_cookies`](Self::development_cookies):
    /// `Secure`, and the `__Host-session` name if the development name was in use.
    pub fn secure_cookies(mut self) -> Self {
        self.cookie.secure = true;
        if self.cookie.name == "session" {
            self.cookie.name = "__Host-session".into();
        }
        self
    }

    /// An extra origin (e.g. `https://app.example.com`) allowed to send unsafe requests
    /// besides the site's own. Compared as a full origin (scheme, host, port; default
    /// ports normalised). Default: same origin only.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_origins.push(origin.into());
        self
    }

    /// The scheme browsers use to reach this site, for the same-origin check of unsafe
    /// requests (`Origin` must name this scheme, the `Host` and its port). Default:
    /// [`Scheme::Https`] when the cookie is `Secure` (a `Secure` cookie is only sent over
    /// https), [`Scheme::Http`] otherwise.
    pub fn site_scheme(mut self, scheme: Scheme) -> Self {
        self.site_scheme = Some(scheme);
        self
    }

    /// Take each request's scheme from `X-Forwarded-Proto` (its first value), for an app
    /// behind a TLS-terminating proxy that serves both schemes. Without the header the
    /// [`site_scheme`](Self::site_scheme) applies; a value other than `http`/`https`
    /// makes the request's own origin unknown, so an `Origin` must then be trusted.
    /// Default `false`.
    ///
    /// # Security
    ///
    /// Turn it on only when a proxy you run sets the header and drops any the client
    /// sent; otherwise a client picks the scheme the check compares against.
    pub fn trust_forwarded_proto(mut self, trust: bool) -> Self {
        self.forwarded_proto = trust;
        self
    }

    /// Capacity of the verified-token cache: a token seen before skips signature and
    /// JSON work (its times, revocation and CSRF are still checked on every request).
    /// Keyed by the token's exact bytes; refused tokens are never cached; entries end at
    /// the token's `exp` and with any key rotation. Default 10,000 ([`DEFAULT_TOKEN_CACHE`]);
    /// `0` turns it off.
    pub fn token_cache(mut self, capacity: usize) -> Self {
        self.token_cache = capacity;
        self
    }

    /// Mark requests passive by route: validated, but they neither slide the idle timer
    /// nor get a reissued token (polling and health checks must not keep a session
    /// alive). A request is also passive when it carries the
    /// [`PASSIVE_HEADER`](crate::PASSIVE_HEADER) header. Default: none.
    ///
    /// ```
    /// # use jwt_session::{SessionConfig, generate_key, Algorithm, Keyring};
    /// # let ring = Keyring::new(generate_key(Algorithm::EdDSA, "k-").unwrap().key).unwrap();
    /// let config = SessionConfig::builder(ring)
    ///     .passive_route(|_method, path| path.starts_with("/api/poll"))
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn passive_route(
        mut self,
        predicate: impl Fn(&http::Method, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.passive_routes.push(Arc::new(predicate));
        self
    }

    /// Also accept the token as `Authorization: Bearer <token>` (APIs, non-browser
    /// clients). Bearer tokens are not ambient credentials, so CSRF checks are skipped
    /// for them; a reissued token comes back in the
    /// [`TOKEN_HEADER`](crate::TOKEN_HEADER) response header instead of a cookie.
    /// When both are sent, the bearer token is used. Default `false`.
    pub fn accept_bearer(mut self, accept: bool) -> Self {
        self.accept_bearer = accept;
        self
    }

    /// The clock. Default [`SystemClock`]; tests pass a
    /// `ManualClock` (feature `test-util`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Check every setting, then sign and verify a probe token with the signer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first impossible setting: zero or fractional durations,
    /// idle over absolute, reissue-after or leeway not under idle, empty issuer, audience
    /// or type, a tiny token cap, cookie attributes that contradict the name's prefix or
    /// the cookie grammar, or a key that fails the round trip.
    pub fn build(self) -> Result<SessionConfig, ConfigError> {
        let reissue_after = whole_secs(self.reissue_after, "reissue-after")?;
        let leeway = whole_secs(self.leeway, "leeway")?;
        let policy = Policy::new(
            whole_secs(self.idle, "idle timeout")?,
            whole_secs(self.absolute, "absolute timeout")?,
            reissue_after,
            leeway,
        )?;
        let remember_policy = match self.remember {
            Some((idle, absolute)) => Some(Policy::new(
                whole_secs(idle, "remembered idle timeout")?,
                whole_secs(absolute, "remembered absolute timeout")?,
                reissue_after,
                leeway,
            )?),
            None => None,
        };
        let widest_policy = match &remember_policy {
            Some(r) => Policy::new(
                policy.idle_timeout().max(r.idle_timeout()),
                policy.absolute_timeout().max(r.absolute_timeout()),
                reissue_after,
                leeway,
            )?,
            None => policy,
        };
        for (field, value) in [
            ("issuer", &self.issuer),
            ("audience", &self.audience),
            ("token type", &self.token_type),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    field,
                    problem: "must not be empty".into(),
                });
            }
        }
        if self.max_token_len < 256 {
            return Err(ConfigError::Invalid {
                field: "max token length",
                problem: format!(
                    "{} bytes cannot hold a session token (minimum 256)",
                    self.max_token_len
                ),
            });
        }
        let c = &self.cookie;
        if !is_token(&c.name) {
            return Err(ConfigError::Cookie(format!(
                "{:?} is not a valid cookie name",
                c.name
            )));
        }
        if !c.path.starts_with('/') || c.path.bytes().any(|b| b.is_ascii_control() || b == b';') {
            return Err(ConfigError::Cookie(format!(
                "path {:?} must start with / and hold no ; or control characters",
                c.path
            )));
        }
        let bad_domain = |d: &&String| {
            d.is_empty()
                || d.bytes()
                    .any(|b| b.is_ascii_control() || b == b';' || b == b' ')
        };
        if let Some(domain) = c.domain.as_ref().filter(bad_domain) {
            return Err(ConfigError::Cookie(format!(
                "domain {domain:?} is not valid"
            )));
        }
        if c.name.starts_with("__Host-") && (!c.secure || c.path != "/" || c.domain.is_some()) {
            return Err(ConfigError::Cookie(
                "a __Host- cookie needs Secure, Path=/ and no Domain (use development_cookies() for plain-http localhost)".into(),
            ));
        }
        if c.name.starts_with("__Secure-") && !c.secure {
            return Err(ConfigError::Cookie(
                "a __Secure- cookie needs Secure".into(),
            ));
        }
        if c.same_site == SameSite::None && !c.secure {
            return Err(ConfigError::Cookie("SameSite=None needs Secure".into()));
        }
        let trusted = self
            .trusted_origins
            .iter()
            .map(|origin| {
                Origin::parse(origin).ok_or_else(|| ConfigError::Invalid {
                    field: "trusted origin",
                    problem: format!("{origin:?} must be http(s)://host[:port]"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let scheme = self.site_scheme.unwrap_or(if self.cookie.secure {
            Scheme::Https
        } else {
            Scheme::Http
        });
        let origins = OriginPolicy::new(scheme, self.forwarded_proto, trusted);
        let codec = Codec::new(
            self.keyring,
            self.issuer,
            self.audience,
            self.token_type,
            self.max_token_len,
        )?;
        Ok(SessionConfig(Arc::new(Inner {
            codec,
            policy,
            remember_policy,
            widest_policy,
            browser_session_cookies: self.browser_session_cookies,
            cookie: self.cookie,
            clock: self.clock,
            origins,
            token_cache: self.token_cache,
            passive_routes: self.passive_routes,
            accept_bearer: self.accept_bearer,
        })))
    }
}
