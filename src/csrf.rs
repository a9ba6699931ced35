//! Cross-site request forgery defences for cookie-borne sessions: which methods are
//! unsafe, the `Origin` / `Sec-Fetch-Site` check, and the constant-time double-submit
//! token check.

use http::{HeaderMap, Method, header};

use crate::claims::CsrfToken;
use crate::error::Refusal;

/// The request header that carries the CSRF token on unsafe methods.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// POST, PUT, PATCH, DELETE and any non-standard method are unsafe; GET, HEAD, OPTIONS
/// and TRACE are safe (RFC 9110 §9.2.1).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Refuse a request a browser marks as cross-site.
///
/// * `Sec-Fetch-Site: cross-site` is refused; `same-site` is refused unless `Origin` is
///   trusted.
/// * An `Origin` (including `null`) that is neither the request's own (the `Host`
///   header, or — over HTTP/2, which sends none — the request URI's authority) nor in
///   `trusted` is refused.
/// * Requests with neither header (non-browser clients) pass; they still need the token.
///
/// # Errors
///
/// [`Refusal::OriginRejected`].
pub fn check_origin(
    headers: &HeaderMap,
    uri_authority: Option<&str>,
    trusted: &[String],
) -> Result<(), Refusal> {
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(uri_authority);
    let origin_ok = |origin: &str| {
        let origin = origin.trim_end_matches('/');
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let same = matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
        same || trusted.iter().any(|t| t.eq_ignore_ascii_case(origin))
    };
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match site {
        Some(s) if s.eq_ignore_ascii_case("cross-site") => return Err(Refusal::OriginRejected),
        Some(s)
            if s.eq_ignore_ascii_case("same-site")
                && !origin.is_some_and(|o| trusted.iter().any(|t| t.eq_ignore_ascii_case(o))) =>
        {
            return Err(Refusal::OriginRejected);
        }
        _ => {}
    }
    match origin {
        Some(o) if !origin_ok(o) => Err(Refusal::OriginRejected),
        _ => Ok(()),
    }
}

/// The `X-CSRF-Token` header must equal the session's token (constant-time).
///
/// # Errors
///
/// [`Refusal::CsrfMissing`] without the header, [`Refusal::CsrfMismatch`] otherwise.
pub fn check_token(headers: &HeaderMap, expected: &CsrfToken) -> Result<(), Refusal> {
    let presented = headers.get(CSRF_HEADER).ok_or(Refusal::CsrfMissing)?;
    if expected.matches(presented.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::CsrfMismatch)
    }
}
