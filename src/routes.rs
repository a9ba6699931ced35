//! Ready-made session routes (documented on [`session_routes`]).

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};

use crate::registry::{ListedSession, RegistryError};
use crate::response::{ErrorBody, error_response};
use serde::Serialize;

use crate::extract::SessionContext;
use crate::session::{Logout, LogoutAll, Refresh, Session, SessionData};

/// Status of a session, as served by `GET /session`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStatus {
    /// Session id.
    pub sid: String,
    /// User id.
    pub sub: String,
    /// Login time (UNIX seconds).
    pub auth_time: i64,
    /// Last activity (UNIX seconds).
    pub lat: i64,
    /// When the session ends without further activity (UNIX seconds).
    pub idle_deadline: i64,
    /// When the session ends however active (UNIX seconds).
    pub absolute_deadline: i64,
    /// Seconds until `idle_deadline`.
    pub expires_in: u64,
    /// The CSRF token for `X-CSRF-Token`.
    pub csrf: String,
}

impl SessionStatus {
    /// The status of `session` as the layer saw it.
    pub fn of<T>(session: &Session<T>) -> Self {
        Self {
            sid: session.id().to_owned(),
            sub: session.subject().to_owned(),
            auth_time: session.auth_time(),
            lat: session.last_activity(),
            idle_deadline: session.idle_deadline(),
            absolute_deadline: session.absolute_deadline(),
            expires_in: session.seconds_left(),
            csrf: session.csrf().to_owned(),
        }
    }

    /// The status after a reissue at `now` (what `POST /session/refresh` answers).
    fn slid<T>(session: &Session<T>, now: i64, idle: u64) -> Self {
        let mut status = Self::of(session);
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        status.lat = now.max(status.lat);
        status.idle_deadline = status
            .lat
            .saturating_add(idle)
            .min(status.absolute_deadline);
        status.expires_in = u64::try_from(status.idle_deadline.saturating_sub(now)).unwrap_or(0);
        status
    }
}

/// The session routes, for a router behind a
/// [`SessionLayer<T>`](crate::SessionLayer).
///
/// ```
/// use axum::Router;
/// let app: Router = Router::new().merge(jwt_session::session_routes::<(), ()>());
/// ```
///
/// # Routes
///
/// | route | answer |
/// | --- | --- |
/// | `GET /session` | the [`SessionStatus`] of the current session |
/// | `POST /session/refresh` | reissues now; the status as of the new token |
/// | `POST /session/logout` | revokes this session, clears the cookie; `{"logged_out":true}` |
/// | `POST /session/logout-all` | revokes every session of this user; `{"logged_out":true,"all":true}` |
/// | `GET /.well-known/jwks.json` | the public keys (JWK Set) |
/// | `GET /session/list` | with a [registry](crate::SessionRegistry): `{"sessions":[{"id","current","created","last_active","user_agent","remember",…}]}` of this user, newest first |
/// | `POST /session/revoke` `{"id"}` | ends that session of this user; 404 `session_not_found` when it is not this user's live session |
/// | `POST /session/logout-others` | ends every session of this user but this one; `{"revoked":n}` |
///
/// Without a registry the three inventory routes answer 404 `session_registry_off`; when
/// a shared registry cannot be read, 503 `session_registry_unavailable`.
///
/// POSTs are unsafe methods, so they need `X-CSRF-Token` like every other — or, from an
/// HTML form behind [`SessionLayer::with_forms`](crate::SessionLayer::with_forms), the
/// `csrf_token` field. A logout posted by a form (a `application/x-www-form-urlencoded`
/// or `multipart/form-data` body) answers `303 See Other` back to the page it came from
/// (its `Referer`, when that is a page of this site; else `/`) instead of JSON.
pub fn session_routes<T: SessionData, S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/session", get(status::<T>))
        .route("/session/refresh", post(refresh::<T>))
        .route("/session/logout", post(logout::<T>))
        .route("/session/logout-all", post(logout_all::<T>))
        .route("/session/list", get(list::<T>))
        .route("/session/revoke", post(revoke::<T>))
        .route("/session/logout-others", post(logout_others::<T>))
        .route("/.well-known/jwks.json", get(jwks::<T>))
}

async fn status<T: SessionData>(session: Session<T>) -> Json<SessionStatus> {
    Json(SessionStatus::of(&session))
}

async fn refresh<T: SessionData>(
    session: Session<T>,
    ctx: SessionContext<T>,
) -> (Refresh, Json<SessionStatus>) {
    // The session's own policy: a remembered session slides by the remembered idle.
    let idle = session.policy().idle_timeout();
    (
        Refresh,
        Json(SessionStatus::slid(&session, ctx.now(), idle)),
    )
}

async fn logout<T: SessionData>(_session: Session<T>, headers: HeaderMap) -> Response {
    match form_back(&headers) {
        Some(back) => (Logout, Redirect::to(&back)).into_response(),
        None => (Logout, Json(serde_json::json!({ "logged_out": true }))).into_response(),
    }
}

async fn logout_all<T: SessionData>(_session: Session<T>, headers: HeaderMap) -> Response {
    match form_back(&headers) {
        Some(back) => (LogoutAll, Redirect::to(&back)).into_response(),
        None => (
            LogoutAll,
            Json(serde_json::json!({ "logged_out": true, "all": true })),
        )
            .into_response(),
    }
}

/// For a request posted by an HTML form: where to send the browser back to (the
/// `Referer`'s path when it is a page of this site, else `/`). `None` for API calls.
fn form_back(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = content_type.split(';').next()?.trim();
    let form = mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        || mime.eq_ignore_ascii_case("multipart/form-data");
    if !form {
        return None;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| {
            let rest = r
                .strip_prefix("https://")
                .or_else(|| r.strip_prefix("http://"))?;
            let (authority, path) = rest.split_at(rest.find('/')?);
            (Some(authority) == host).then_some(path)
        })
        .and_then(crate::safe_next)
        .unwrap_or("/");
    Some(back.to_owned())
}

fn registry_error(e: &RegistryError) -> Response {
    let (status, code, message) = match e {
        RegistryError::Off => (
            StatusCode::NOT_FOUND,
            "session_registry_off",
            "this server does not list sessions",
        ),
        RegistryError::NotFound => (
            StatusCode::NOT_FOUND,
            "session_not_found",
            "no such session of yours",
        ),
        RegistryError::Revocation(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "revocation_failed",
            "ended here, but the revocation could not be recorded durably",
        ),
        RegistryError::Unavailable(e) => {
            tracing::warn!(error = %e, "session registry unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "session_registry_unavailable",
                "your sessions cannot be listed right now; try again shortly",
            )
        }
    };
    error_response(status, ErrorBody::new(code, message))
}

async fn list<T: SessionData>(session: Session<T>, ctx: SessionContext<T>) -> Response {
    match ctx.handle().list_sessions(session.subject()) {
        Ok(entries) => {
            let sessions: Vec<ListedSession> = entries
                .iter()
                .map(|e| ListedSession::of(e, Some(session.id())))
                .collect();
            Json(serde_json::json!({ "sessions": sessions })).into_response()
        }
        Err(e) => registry_error(&e),
    }
}

#[derive(serde::Deserialize)]
struct RevokeBody {
    id: String,
}

async fn revoke<T: SessionData>(
    session: Session<T>,
    ctx: SessionContext<T>,
    body: Result<Json<RevokeBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorBody::new("invalid_request", "send JSON {\"id\":…}"),
        );
    };
    match ctx.handle().revoke_listed(session.subject(), &body.id) {
        Ok(()) => Json(serde_json::json!({ "revoked": true })).into_response(),
        Err(e) => registry_error(&e),
    }
}

async fn logout_others<T: SessionData>(session: Session<T>, ctx: SessionContext<T>) -> Response {
    match ctx.handle().revoke_others(session.subject(), session.id()) {
        Ok(n) => Json(serde_json::json!({ "revoked": n })).into_response(),
        Err(e) => registry_error(&e),
    }
}

async fn jwks<T: SessionData>(ctx: SessionContext<T>) -> Json<serde_json::Value> {
    Json(ctx.config().codec().keyring().jwks())
}
