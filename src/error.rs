//! Typed errors, one enum per domain.
//!
//! [`Refusal`] is why a request's session was not accepted: every variant has a stable
//! snake_case [`code`](Refusal::code) that the layer puts in its JSON body, and an HTTP
//! [`status`](Refusal::status). The other enums are set-up and issue-time errors.

use std::fmt;

use http::StatusCode;

/// Declares [`Refusal`] from one table: each variant with its doc, stable code, HTTP
/// status, human message and whether it ends the session — so a new refusal is one line,
/// never four parallel `match`es and a hand-kept list (in the spirit of axum-core's
/// `define_rejection!`).
macro_rules! define_refusals {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident => $code:literal, $status:ident, $ends:literal, $message:literal;
    )+) => {
        /// Why a session (or an unsafe request carrying one) was refused.
        ///
        /// Codes are stable: front ends and tests may match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Refusal {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Refusal {
            /// Every variant, for exhaustive tests and documentation.
            pub const ALL: [Refusal; [$(stringify!($variant)),+].len()] =
                [ $( Refusal::$variant, )+ ];

            /// The stable machine-readable code, e.g. `session_expired_idle`.
            pub const fn code(self) -> &'static str {
                match self { $( Refusal::$variant => $code, )+ }
            }

            /// A short human explanation (safe to show; carries no token data).
            pub const fn message(self) -> &'static str {
                match self { $( Refusal::$variant => $message, )+ }
            }

            /// 401 for session problems, 403 for CSRF and origin refusals, 503 when the
            /// revocation check could not be made.
            pub const fn status(self) -> StatusCode {
                match self { $( Refusal::$variant => StatusCode::$status, )+ }
            }

            /// Whether the session itself is dead (the layer clears the cookie), as opposed
            /// to a refusal of one request (CSRF, origin, an unavailable check, no session).
            /// One exception: a verify-only service refuses `session_unknown_key` without
            /// clearing the cookie (the issuer's cookie; the key may just not have reached
            /// it yet).
            pub const fn ends_session(self) -> bool {
                match self { $( Refusal::$variant => $ends, )+ }
            }
        }
    };
}

define_refusals! {
    /// No session token was sent.
    Missing => "session_missing", UNAUTHORIZED, false, "no session: log in first";
    /// The token is not a well-formed JWT of ours (bad shape, base64, JSON, header or claims).
    Malformed => "session_malformed", UNAUTHORIZED, true, "the session token is malformed";
    /// The token is longer than the configured cap; it was not parsed.
    TooLarge => "session_too_large", UNAUTHORIZED, true, "the session token is too large";
    /// The signature does not verify with the key named by `kid`.
    BadSignature => "session_bad_signature", UNAUTHORIZED, true,
        "the session token's signature is invalid";
    /// No key with the token's `kid` (or no `kid` at all).
    UnknownKey => "session_unknown_key", UNAUTHORIZED, true,
        "the session token was signed by an unknown key";
    /// The token's `alg` is not the algorithm pinned to its key (this includes `none`).
    WrongAlgorithm => "session_wrong_algorithm", UNAUTHORIZED, true,
        "the session token uses the wrong algorithm for its key";
    /// The `typ` header is not the configured session type.
    WrongType => "session_wrong_type", UNAUTHORIZED, true, "the token is not a session token";
    /// `iss` is not the configured issuer.
    WrongIssuer => "session_wrong_issuer", UNAUTHORIZED, true,
        "the session token was issued by someone else";
    /// `aud` is not the configured audience.
    WrongAudience => "session_wrong_audience", UNAUTHORIZED, true,
        "the session token is meant for another audience";
    /// The token was issued in the future, or its `nbf` is (beyond the leeway).
    NotYetValid => "session_not_yet_valid", UNAUTHORIZED, true,
        "the session token is not valid yet";
    /// The token's time claims are out of range or contradict each other (e.g. an
    /// `auth_time` after `iat`).
    InvalidTimes => "session_invalid_times", UNAUTHORIZED, true,
        "the session token's times are out of range or inconsistent";
    /// The session was inactive for longer than the idle timeout.
    ExpiredIdle => "session_expired_idle", UNAUTHORIZED, true,
        "the session ended after a period of inactivity";
    /// The session reached its absolute lifetime, counted from login.
    ExpiredAbsolute => "session_expired_absolute", UNAUTHORIZED, true,
        "the session reached its maximum lifetime";
    /// The session was logged out (or all of the user's sessions were).
    Revoked => "session_revoked", UNAUTHORIZED, true, "the session was logged out";
    /// The revocation check could not be made; the request is refused (fail closed).
    RevocationUnavailable => "session_check_unavailable", SERVICE_UNAVAILABLE, false,
        "the session could not be checked; try again";
    /// An unsafe method without the `X-CSRF-Token` header.
    CsrfMissing => "csrf_missing", FORBIDDEN, false,
        "the X-CSRF-Token header is required for this request";
    /// An unsafe method whose `X-CSRF-Token` does not match the session.
    CsrfMismatch => "csrf_mismatch", FORBIDDEN, false,
        "the X-CSRF-Token header does not match the session";
    /// An unsafe method sent from another site (`Origin` / `Sec-Fetch-Site`).
    OriginRejected => "origin_rejected", FORBIDDEN, false, "cross-site requests are not allowed";
    /// A valid session that is not fresh enough for this route (step-up): log in again
    /// or re-authenticate. The session itself stays valid.
    ReauthRequired => "session_reauth_required", FORBIDDEN, false,
        "this action needs a recent login: enter your password again";
    /// The token is valid, but its app data no longer deserializes into the app's type
    /// (the type changed without `#[serde(default)]` for new fields).
    DataInvalid => "session_data_invalid", UNAUTHORIZED, true,
        "the session's data is from an incompatible version: log in again";
}

impl Refusal {
    /// The JSON body the layer sends: `{"error":{"code":…,"message":…}}`.
    pub fn json_body(self) -> String {
        crate::response::ErrorBody::new(self.code(), self.message()).to_json()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for Refusal {}

/// A key could not be loaded, added or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text or DER bytes are not a key of the expected kind.
    #[error("key `{kid}`: not a valid {expected} key")]
    Invalid {
        /// The key's id.
        kid: String,
        /// What was expected, e.g. "Ed25519 private".
        expected: &'static str,
    },
    /// HMAC secrets must have at least 32 bytes.
    #[error("key `{kid}`: HMAC secret has {len} bytes; at least 32 are required")]
    WeakSecret {
        /// The key's id.
        kid: String,
        /// The secret's length.
        len: usize,
    },
    /// A `kid` must be 1–64 characters of `A-Z a-z 0-9 . _ -`.
    #[error("invalid key id {0:?}: use 1-64 characters of A-Z a-z 0-9 . _ -")]
    InvalidKid(String),
    /// Two keys with the same `kid`.
    #[error("duplicate key id `{0}`")]
    DuplicateKid(String),
    /// No key with this `kid` in the keyring.
    #[error("no key `{0}` in the keyring")]
    NoSuchKey(String),
    /// The key has no private part, so it cannot sign.
    #[error("key `{0}` is verify-only and cannot sign")]
    CannotSign(String),
    /// The signing key cannot be retired; promote another key first.
    #[error("key `{0}` is the signer; promote another key before retiring it")]
    RetireSigner(String),
    /// A key directory holds no usable signing key, or several without a `SIGNER` file.
    #[error("key directory {dir}: {problem}")]
    Directory {
        /// The directory.
        dir: String,
        /// What is wrong.
        problem: String,
    },
    /// Reading a key file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Keys cannot be shared through Redis with these settings (an unparsable URL,
    /// impossible options, no Tokio runtime): an error of `RedisKeyShare::connect`.
    #[error("sharing keys through Redis: {0}")]
    Share(String),
    /// The crypto backend failed to sign or verify during the start-up round trip.
    #[error("key `{kid}` failed its sign/verify round trip: {detail}")]
    RoundTrip {
        /// The key's id.
        kid: String,
        /// What failed.
        detail: String,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// A token could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The signed token would be longer than the configured cap (app data too large?).
    #[error("the token would be {len} bytes, over the {max}-byte cap")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The `Set-Cookie` header would pass the 4096-byte limit browsers keep to.
    #[error("the session cookie would be {len} bytes, over the 4096-byte browser limit")]
    CookieTooLarge {
        /// The header's length.
        len: usize,
    },
    /// The claims would be refused by this codec's own `decode` (empty `sub` or `sid`,
    /// another issuer or audience), so they are not signed.
    #[error("refusing to sign claims this service would not accept: {0}")]
    InvalidClaims(&'static str),
    /// The app data could not be serialized.
    #[error("the session data could not be serialized: {0}")]
    Serialize(String),
    /// The backend refused to sign.
    #[error("signing failed: {0}")]
    Sign(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// The user's sessions were ended twice in this second ("log out everywhere"): no
    /// login can be dated after both until the clock moves on. Retry in a second.
    #[error("this user's sessions were just ended; log in again in a second")]
    LoginTooSoon,
}

/// The configuration cannot work; returned by the builder's `build()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{0} must be at least one second")]
    Zero(&'static str),
    /// Durations are whole seconds (JWT times are).
    #[error("{0} must be a whole number of seconds")]
    SubSecond(&'static str),
    /// The idle timeout is longer than the absolute timeout.
    #[error("idle timeout ({idle}s) is longer than the absolute timeout ({absolute}s)")]
    IdleOverAbsolute {
        /// Idle timeout, seconds.
        idle: u64,
        /// Absolute timeout, seconds.
        absolute: u64,
    },
    /// Reissuing after the idle timeout would let every session expire first.
    #[error("reissue-after ({reissue}s) must be shorter than the idle timeout ({idle}s)")]
    ReissueAfterIdle {
        /// Reissue-after, seconds.
        reissue: u64,
        /// Idle timeout, seconds.
        idle: u64,
    },
    /// The leeway is too large to be a clock-skew allowance.
    #[error("leeway ({leeway}s) must be smaller than the idle timeout ({idle}s)")]
    LeewayTooLarge {
        /// Leeway, seconds.
        leeway: u64,
        /// Idle timeout, seconds.
        idle: u64,
    },
    /// A cookie setting contradicts the cookie name's prefix or the cookie rules.
    #[error("cookie: {0}")]
    Cookie(String),
    /// A text setting is empty or not allowed.
    #[error("{field}: {problem}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The keyring failed its start-up round trip.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The revocation store could not answer or record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// Writing the journal failed; the revocation still applies in memory.
    #[error("revocation journal: {0}")]
    Journal(#[from] std::io::Error),
    /// A backend-specific failure.
    #[error("revocation backend: {0}")]
    Backend(String),
}
