//! The HTTP header names the crate reads and writes, in one place.

use http::HeaderName;

/// Response header with the seconds left until the session ends unless there is
/// activity (the earlier of the idle and absolute deadlines), as of this response —
/// after any reissue. Exposed to CORS readers.
pub const EXPIRES_IN_HEADER: &str = "session-expires-in";

/// Request header marking a request passive (any value but `0` or `false`): validated,
/// but it neither slides the idle timer nor gets a reissued token. Use it for polling.
/// An explicit `POST /session/refresh` ignores it: a refresh is an action, not polling.
pub const PASSIVE_HEADER: &str = "x-session-passive";

/// Response header carrying a reissued token when the request's token came as
/// `Authorization: Bearer` (see
/// [`SessionConfigBuilder::accept_bearer`](crate::SessionConfigBuilder::accept_bearer)).
/// Never sent for cookie-borne sessions, so scripts never see a cookie's token.
pub const TOKEN_HEADER: &str = "session-token";

/// The request header that carries the CSRF token on unsafe methods.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The header a TLS-terminating proxy sets to the scheme the client used (read only with
/// [`trust_forwarded_proto`](crate::SessionConfigBuilder::trust_forwarded_proto)).
pub const FORWARDED_PROTO_HEADER: &str = "x-forwarded-proto";

/// The response headers a cross-origin front end must be allowed to read: give them to
/// tower-http's `CorsLayer::expose_headers(jwt_session::EXPOSE_HEADERS)` (it replaces
/// the `Access-Control-Expose-Headers` the layer sets, so name them there).
pub const EXPOSE_HEADERS: [HeaderName; 2] = [EXPIRES_IN_NAME, TOKEN_NAME];

pub(crate) const EXPIRES_IN_NAME: HeaderName = HeaderName::from_static(EXPIRES_IN_HEADER);
pub(crate) const TOKEN_NAME: HeaderName = HeaderName::from_static(TOKEN_HEADER);
pub(crate) const PASSIVE_NAME: HeaderName = HeaderName::from_static(PASSIVE_HEADER);
pub(crate) const CSRF_NAME: HeaderName = HeaderName::from_static(CSRF_HEADER);
pub(crate) const FORWARDED_PROTO_NAME: HeaderName = HeaderName::from_static(FORWARDED_PROTO_HEADER);
