//! Every response the layer writes itself, and what it adds to the app's: the JSON error
//! envelope ([`ErrorBody`]), refusals and failures (one function, [`error_response`]),
//! the session stamp (seconds left, `no-store`, CORS exposure) and the removal cookie.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::cookie::CookieSettings;
use crate::error::Refusal;
use crate::headers::{EXPIRES_IN_HEADER, EXPIRES_IN_NAME};

/// The JSON body of every error the layer answers: `{"error":{"code","message"}}`, with
/// `max_age` (seconds) where a refusal names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<u64>,
}

impl<'a> ErrorBody<'a> {
    /// An error with a stable machine-readable `code` and a human `message`.
    pub fn new(code: &'a str, message: &'a str) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message,
                max_age: None,
            },
        }
    }

    /// The body of a [`Refusal`].
    pub fn refusal(reason: Refusal) -> Self {
        Self::new(reason.code(), reason.message())
    }

    /// Add `max_age` (seconds): how recent something must be for the request to pass.
    #[must_use]
    pub fn with_max_age(mut self, seconds: u64) -> Self {
        self.error.max_age = Some(seconds);
        self
    }

    /// The code.
    pub fn code(&self) -> &str {
        self.error.code
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        // Only strings and an integer: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The one way the crate answers an error: the JSON body, `Content-Type:
/// application/json` and `Cache-Control: no-store`.
pub(crate) fn error_response<B: From<String>>(
    status: StatusCode,
    body: ErrorBody<'_>,
) -> Response<B> {
    let mut res = Response::new(B::from(body.to_json()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A refusal: its status and body, the [`Refusal`] in the response extensions (so outer
/// layers can see why), and the removal cookie when the session itself is dead.
pub(crate) fn refusal_response<B: From<String>>(
    reason: Refusal,
    removal: Option<HeaderValue>,
) -> Response<B> {
    let mut res = error_response(reason.status(), ErrorBody::refusal(reason));
    if let Some(cookie) = removal {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res.extensions_mut().insert(reason);
    res
}

/// A 500 for a session that could not be issued; the handler's response is replaced so
/// the client never believes it is logged in without a cookie.
pub(crate) fn issue_failed<B: From<String>>(detail: &str) -> Response<B> {
    tracing::error!(error = detail, "session could not be issued");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody::new("session_issue_failed", "the session could not be issued"),
    )
}

/// A 503 with `Retry-After: 1` for a login that cannot be dated this second (its user's
/// sessions were ended twice in it); the handler's response is replaced, no cookie set.
pub(crate) fn login_retry<B: From<String>>() -> Response<B> {
    let mut res = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorBody::new(
            "session_login_retry",
            "this user's sessions were just ended; log in again in a second",
        ),
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// A 500 for a logout that applies in this process but could not be made durable.
pub(crate) fn revocation_failed<B: From<String>>() -> Response<B> {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody::new(
            "revocation_failed",
            "logged out here, but the logout could not be recorded durably",
        ),
    )
}

/// Let the app's responder answer a refusal `res` (carrying its [`Refusal`]). Its
/// response replaces `res`'s status, headers and body; the refusal, any removal cookie and
/// `no-store` are kept.
pub(crate) fn respond<B: From<String>>(
    responder: &dyn crate::RefusalResponder,
    request: &crate::layer::RequestInfo,
    res: Response<B>,
) -> Response<B> {
    let Some(refusal) = res.extensions().get::<Refusal>().copied() else {
        return res;
    };
    let ctx = crate::responder::RefusalContext {
        refusal,
        navigation: request.navigation,
        path_and_query: &request.target,
        method: &request.method,
    };
    let Some(custom) = responder.respond(&ctx) else {
        return res;
    };
    let (parts, body) = custom.into_parts();
    let (old, _) = res.into_parts();
    let mut next = Response::from_parts(parts, B::from(body));
    for cookie in old.headers.get_all(header::SET_COOKIE) {
        next.headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    next.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    *next.extensions_mut() = old.extensions;
    next
}

/// A 500 for response parts that contradict each other (or need a session there is
/// not); nothing they asked is done.
pub(crate) fn parts_conflict<B: From<String>>(detail: &str) -> Response<B> {
    tracing::error!(detail, "contradictory session response parts");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody::new("session_parts_conflict", detail),
    )
}

/// A 500 for a `Login` / `Update` response part of another data type than the layer's
/// (`session_data_type_mismatch`, as for an extractor): nothing it asked is done.
pub(crate) fn part_type_mismatch<B: From<String>>(
    layer: &str,
    part: &str,
    part_type: &str,
) -> Response<B> {
    let message = format!(
        "the route is behind SessionLayer<{layer}> but its response carries {part}<{part_type}>: \
         use the layer's data type"
    );
    tracing::error!("{message}");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody::new("session_data_type_mismatch", &message),
    )
}

/// Every response of a live session: the seconds left and `no-store`; for a CORS
/// request (`cors`: it named its `Origin`), the header exposed to the reading script.
pub(crate) fn stamp(headers: &mut HeaderMap, seconds_left: u64, cors: bool) {
    headers.insert(EXPIRES_IN_NAME, HeaderValue::from(seconds_left));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if cors {
        headers.append(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPIRES_IN_HEADER),
        );
    }
}

/// Clear the session cookie on this response (and never cache it).
pub(crate) fn add_removal(headers: &mut HeaderMap, cookie: &CookieSettings) {
    headers.append(header::SET_COOKIE, cookie.removal());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
