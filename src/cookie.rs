//! Finding the session cookie in a request, and building `Set-Cookie` for issue,
//! reissue and removal. Deciding *when* is the layer's job.

use std::sync::OnceLock;

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, HeaderMap, HeaderValue};
use memchr::memmem::Finder;

use crate::error::EncodeError;

/// Browsers keep cookies up to 4096 bytes (name, value and attributes): RFC 6265 §6.1.
pub const MAX_COOKIE_LEN: usize = 4096;

/// The session cookie's name and attributes.
///
/// Defaults (see [`CookieSettings::default`]) follow the OWASP session management cheat
/// sheet: a `__Host-` name (the browser then insists on `Secure`, `Path=/` and no
/// `Domain`, so no subdomain can plant or read it), `HttpOnly` (no script can read the
/// token), `SameSite=Lax` (not sent on cross-site subrequests or POSTs).
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSettings {
    pub(crate) name: String,
    pub(crate) secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    /// The searcher for `name`, built on the first [`find`](Self::find).
    finder: NameFinder,
}

impl std::fmt::Debug for CookieSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSettings")
            .field("name", &self.name)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .finish()
    }
}

/// The cookie name's substring searcher, kept so that it is built once instead of on
/// every request (building one costs about three times what a search does). Derived from
/// `name` alone, so it takes no part in equality; [`CookieSettings::find`] checks that it
/// was built for the current name and builds a fresh one otherwise.
#[derive(Clone, Default)]
struct NameFinder(OnceLock<Finder<'static>>);

impl PartialEq for NameFinder {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for NameFinder {}

impl Default for CookieSettings {
    /// `__Host-session`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`.
    fn default() -> Self {
        Self {
            name: "__Host-session".into(),
            secure: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            domain: None,
            finder: NameFinder::default(),
        }
    }
}

/// RFC 6265: `cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE )`.
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

impl CookieSettings {
    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Find the session cookie's value among every `Cookie` header of a request
    /// (HTTP/2 may split cookies over several headers), as raw bytes.
    ///
    /// Parsing works pair by pair on the raw bytes: each `;`-separated pair is split at its
    /// first `=`, and only a pair whose trimmed name is exactly the session cookie's name
    /// is looked at. No other cookie — whatever its bytes (not UTF-8, control characters,
    /// quotes, no `=`), its length or its position — can hide, shadow or replace the
    /// session cookie. The first session cookie with a non-empty value decides (one
    /// surrounding pair of double quotes is removed, RFC 6265 §4.1.1); a later one is
    /// never tried instead, so a refused token cannot be stepped over to reach another.
    /// A value that is not UTF-8 is returned as it is, so the layer refuses it as
    /// `session_malformed` rather than treating the session as missing.
    ///
    /// Borrows from the headers; copies nothing.
    pub fn find<'a>(&self, headers: &'a HeaderMap) -> Option<&'a [u8]> {
        let name = self.name.as_bytes();
        let cached = self.finder.0.get_or_init(|| Finder::new(name).into_owned());
        // The name is a crate-visible field: never search with a finder for another one.
        let fresh;
        let finder = if cached.needle() == name {
            cached
        } else {
            fresh = Finder::new(name);
            &fresh
        };
        // Search for the name (memmem) instead of splitting every pair: a header full of
        // other cookies stays cheap. A hit counts only where a pair starts (line start or
        // `;`, then whitespace) and is followed by optional whitespace and `=` — exactly
        // the pairs a split on `;` would name so (a name never holds `;` or whitespace).
        for line in headers.get_all(COOKIE) {
            let line = line.as_bytes();
            // A line that starts with the name (often the only cookie) needs no search:
            // that is the first hit the search would find, as the whitespace before it
            // cannot hold a name.
            let lead = line.len() - line.trim_ascii_start().len();
            let mut first = line[lead..].starts_with(name).then_some(lead);
            let mut from = 0;
            // Non-overlapping hits, left to right (as `memmem::find_iter`).
            while let Some(at) = first
                .take()
                .or_else(|| Some(from + finder.find(line.get(from..)?)?))
            {
                from = at + name.len().max(1);
                let before = line[..at].trim_ascii_end();
                if !(before.is_empty() || before.ends_with(b";")) {
                    continue;
                }
                let Some(rest) = line[at + name.len()..]
                    .trim_ascii_start()
                    .strip_prefix(b"=")
                else {
                    continue;
                };
                let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
                let value = unquote(rest[..end].trim_ascii());
                if !value.is_empty() {
                    return Some(value);
                }
            }
        }
        None
    }

    fn build<'c>(&self, value: &'c str, max_age: Option<i64>) -> Cookie<'c> {
        let mut cookie = Cookie::build((self.name.clone(), value))
            .path(self.path.clone())
            .secure(self.secure)
            .http_only(true)
            .same_site(self.same_site);
        if let Some(max_age) = max_age {
            cookie = cookie.max_age(cookie::time::Duration::seconds(max_age));
        }
        if let Some(domain) = &self.domain {
            cookie = cookie.domain(domain.clone());
        }
        cookie.build()
    }

    /// `Set-Cookie` carrying `token`, kept by the browser for `max_age` seconds (the
    /// layer passes the seconds until the token's `exp`).
    ///
    /// # Errors
    ///
    /// [`EncodeError::CookieTooLarge`] if the header would pass [`MAX_COOKIE_LEN`].
    pub fn issue(&self, token: &str, max_age: u64) -> Result<HeaderValue, EncodeError> {
        self.issue_with(token, Some(max_age))
    }

    /// `Set-Cookie` carrying `token` as a browser-session cookie: no `Max-Age`, no
    /// `Expires`, so the browser drops it when it closes (the token's `exp` still ends it
    /// on the server).
    ///
    /// # Errors
    ///
    /// As [`issue`](Self::issue).
    pub fn issue_browser_session(&self, token: &str) -> Result<HeaderValue, EncodeError> {
        self.issue_with(token, None)
    }

    pub(crate) fn issue_with(
        &self,
        token: &str,
        max_age: Option<u64>,
    ) -> Result<HeaderValue, EncodeError> {
        let max_age = max_age.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let line = self.build(token, max_age).to_string();
        if line.len() > MAX_COOKIE_LEN {
            return Err(EncodeError::CookieTooLarge { len: line.len() });
        }
        HeaderValue::from_str(&line).map_err(|e| EncodeError::Serialize(e.to_string()))
    }

    /// `Set-Cookie` that removes the session cookie: empty value, `Max-Age=0`, a past
    /// `Expires`, and every other attribute (`Path`, `Domain`, `Secure`, `SameSite`,
    /// `HttpOnly`) the same as when it was set, so the browser really drops it.
    pub fn removal(&self) -> HeaderValue {
        let mut cookie = self.build("", Some(0));
        cookie.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
        // Name and attributes were validated when the config was built.
        HeaderValue::from_str(&cookie.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("session=; Max-Age=0; Path=/"))
    }
}
