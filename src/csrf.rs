//! Cross-site request forgery defences for cookie-borne sessions: which methods are
//! unsafe, the `Origin` / `Sec-Fetch-Site` check, and the constant-time double-submit
//! token check.

use http::{HeaderMap, Method, header};

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::EncodeError;
use crate::error::Refusal;
use crate::random::random_id;

use crate::headers::{CSRF_NAME, FORWARDED_PROTO_NAME};

/// The per-session CSRF secret (double-submit token). Compared in constant time;
/// prints as `REDACTED`.
///
/// A token decoded from a session must have exactly the shape minted here — 43
/// characters of the base64url alphabet (256 bits) — or the whole token is refused as
/// `session_malformed`: an empty or short secret could be matched by a forged header.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct CsrfToken(String);

/// Length of a CSRF token as minted: 32 random bytes in unpadded base64url.
pub(crate) const CSRF_TOKEN_LEN: usize = 43;

impl TryFrom<String> for CsrfToken {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if value.len() == CSRF_TOKEN_LEN && value.bytes().all(alphabet) {
            Ok(Self(value))
        } else {
            Err("the csrf claim must be 43 base64url characters")
        }
    }
}

impl From<CsrfToken> for String {
    fn from(token: CsrfToken) -> Self {
        token.0
    }
}

impl CsrfToken {
    /// A fresh random token (256 bits).
    ///
    /// # Errors
    ///
    /// [`EncodeError::Random`] if the operating system's RNG fails.
    pub fn generate() -> Result<Self, EncodeError> {
        random_id::<32>().map(Self)
    }

    /// The value to hand to the front end (it sends it back in `X-CSRF-Token`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value. An empty value never matches.
    pub fn matches(&self, presented: &[u8]) -> bool {
        !presented.is_empty() && bool::from(self.0.as_bytes().ct_eq(presented))
    }
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken(REDACTED)")
    }
}

/// POST, PUT, PATCH, DELETE and any non-standard method are unsafe; GET, HEAD, OPTIONS
/// and TRACE are safe (RFC 9110 §9.2.1).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The scheme a site is served over, as its browsers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http` (default port 80).
    Http,
    /// `https` (default port 443).
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn parse(text: &[u8]) -> Option<Self> {
        if text.eq_ignore_ascii_case(b"https") {
            Some(Scheme::Https)
        } else if text.eq_ignore_ascii_case(b"http") {
            Some(Scheme::Http)
        } else {
            None
        }
    }
}

/// A web origin (RFC 6454): scheme, host and port, with the default port filled in, so
/// `https://h:443` and `https://h` are the same origin. Hosts compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    /// Parse a serialized origin, `scheme://host[:port]` (an IPv6 host in brackets). A
    /// single trailing `/` is tolerated; anything else (a path, user info, `null`, another
    /// scheme) is not an origin.
    pub fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = Scheme::parse(scheme.as_bytes())?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        Self::with_authority(scheme, authority)
    }

    /// The origin of a request for `authority` (a `Host` header, `host[:port]`) served
    /// over `scheme`.
    pub fn with_authority(scheme: Scheme, authority: &str) -> Option<Self> {
        let (host, port) = split_authority(authority)?;
        Some(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(scheme.default_port()),
        })
    }

    fn same(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        self.scheme == scheme && self.port == port && self.host.eq_ignore_ascii_case(host)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if self.port == self.scheme.default_port() {
            write!(f, "{scheme}://{}", self.host)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `host[:port]` → host and port. The host is a bracketed IPv6 literal or a non-empty run
/// of characters without `/ ? # @ [ ] :` or whitespace; the port is 1–5 digits.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let bad = |b: u8| b"/?#@[]:".contains(&b) || b.is_ascii_whitespace() || b.is_ascii_control();
    let plain = !host.starts_with('[');
    if host.is_empty() || (plain && host.bytes().any(bad)) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// How the layer decides what a request's own origin is, and which others it trusts.
/// Built by [`SessionConfigBuilder`](crate::SessionConfigBuilder).
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    pub(crate) scheme: Scheme,
    pub(crate) forwarded_proto: bool,
    pub(crate) trusted: Vec<Origin>,
}

impl OriginPolicy {
    /// A site served over `scheme`, trusting `trusted` besides itself; with
    /// `forwarded_proto`, the scheme of each request is taken from `X-Forwarded-Proto`
    /// when present (only behind a proxy that sets it and strips the client's own).
    pub fn new(scheme: Scheme, forwarded_proto: bool, trusted: Vec<Origin>) -> Self {
        Self {
            scheme,
            forwarded_proto,
            trusted,
        }
    }

    /// The scheme the site is served over, as configured.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The extra origins trusted to send unsafe requests.
    pub fn trusted(&self) -> &[Origin] {
        &self.trusted
    }

    /// The request's scheme: the configured one, or — when trusted — the first value of
    /// `X-Forwarded-Proto`. `None` when that header names something else (fail closed).
    fn request_scheme(&self, headers: &HeaderMap) -> Option<Scheme> {
        if !self.forwarded_proto {
            return Some(self.scheme);
        }
        match headers.get(FORWARDED_PROTO_NAME) {
            None => Some(self.scheme),
            Some(value) => {
                let first = value.as_bytes().split(|b| *b == b',').next()?;
                Scheme::parse(first.trim_ascii())
            }
        }
    }

    fn is_trusted(&self, origin: &[u8]) -> bool {
        std::str::from_utf8(origin)
            .ok()
            .and_then(Origin::parse)
            .is_some_and(|o| self.trusted.contains(&o))
    }

    /// Is `origin` the request's own: same scheme, host and port (default ports
    /// normalised) as the request's scheme and `Host` (or URI authority)?
    fn is_own(&self, origin: &[u8], headers: &HeaderMap, uri_authority: Option<&str>) -> bool {
        let Some(scheme) = self.request_scheme(headers) else {
            return false;
        };
        let host = headers
            .get(header::HOST)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .or(uri_authority);
        let (Some(origin), Some(host)) = (
            std::str::from_utf8(origin).ok().and_then(Origin::parse),
            host.and_then(split_authority),
        ) else {
            return false;
        };
        origin.same(scheme, host.0, host.1.unwrap_or(scheme.default_port()))
    }
}

/// Positive proof that a request comes from this site's own pages: `Sec-Fetch-Site:
/// same-origin`, or an `Origin` that is the request's own (or trusted). For login forms,
/// where there is no session yet and so no CSRF token: without proof, no session (login
/// CSRF). A request with neither header proves nothing.
pub fn proves_same_origin(
    headers: &HeaderMap,
    uri_authority: Option<&str>,
    policy: &OriginPolicy,
) -> bool {
    if check_origin(headers, uri_authority, policy).is_err() {
        return false;
    }
    let site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if site.is_some_and(|s| s.eq_ignore_ascii_case(b"same-origin")) {
        return true;
    }
    headers
        .get(header::ORIGIN)
        .map(|v| v.as_bytes())
        .is_some_and(|o| policy.is_own(o, headers, uri_authority) || policy.is_trusted(o))
}

/// Refuse a request a browser marks as cross-site.
///
/// * `Sec-Fetch-Site: cross-site` is refused; `same-site` is refused unless `Origin` is
///   trusted.
/// * An `Origin` (including `null`) that is neither the request's own nor trusted is
///   refused. The request's own origin is the full origin — scheme, host and port, with
///   default ports normalised — of the configured scheme (or the trusted
///   `X-Forwarded-Proto`) and the `Host` header (or, over HTTP/2, which sends none, the
///   request URI's authority): `http://x` is not `https://x`.
/// * Requests with neither header (non-browser clients) pass; they still need the token.
///
/// # Errors
///
/// [`Refusal::OriginRejected`].
pub fn check_origin(
    headers: &HeaderMap,
    uri_authority: Option<&str>,
    policy: &OriginPolicy,
) -> Result<(), Refusal> {
    let origin = headers.get(header::ORIGIN).map(|v| v.as_bytes());
    let site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    match site {
        Some(s) if s.eq_ignore_ascii_case(b"cross-site") => return Err(Refusal::OriginRejected),
        Some(s)
            if s.eq_ignore_ascii_case(b"same-site")
                && !origin.is_some_and(|o| policy.is_trusted(o)) =>
        {
            return Err(Refusal::OriginRejected);
        }
        _ => {}
    }
    match origin {
        Some(o) if !(policy.is_own(o, headers, uri_authority) || policy.is_trusted(o)) => {
            Err(Refusal::OriginRejected)
        }
        _ => Ok(()),
    }
}

/// The session's token must be presented: in the `X-CSRF-Token` header, or — for an HTML
/// form read by [`FormCsrfLayer`](crate::form::FormCsrfLayer) — in the `csrf_token` field.
pub(crate) fn check_request_token(
    headers: &HeaderMap,
    extensions: &http::Extensions,
    expected: &CsrfToken,
) -> Result<(), Refusal> {
    if !headers.contains_key(CSRF_NAME)
        && let Some(form) = extensions.get::<crate::form::FormCsrfToken>()
    {
        return if !form.0.is_empty() && expected.matches(form.0.as_bytes()) {
            Ok(())
        } else if form.0.is_empty() {
            Err(Refusal::CsrfMissing)
        } else {
            Err(Refusal::CsrfMismatch)
        };
    }
    check_token(headers, expected)
}

/// A hidden form field carrying `token` (`<input type="hidden" name="csrf_token" …>`),
/// for HTML forms behind [`FormCsrfLayer`](crate::form::FormCsrfLayer).
pub fn hidden_input(token: &str) -> String {
    let escaped: String = token
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!(r#"<input type="hidden" name="csrf_token" value="{escaped}">"#)
}

/// The `X-CSRF-Token` header must equal the session's token (constant-time).
///
/// # Errors
///
/// [`Refusal::CsrfMissing`] without the header (or with an empty one),
/// [`Refusal::CsrfMismatch`] otherwise.
pub fn check_token(headers: &HeaderMap, expected: &CsrfToken) -> Result<(), Refusal> {
    // An empty header is no token at all: it never matches (the claim is never empty).
    let presented = headers
        .get(CSRF_NAME)
        .filter(|v| !v.is_empty())
        .ok_or(Refusal::CsrfMissing)?;
    if expected.matches(presented.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::CsrfMismatch)
    }
}
