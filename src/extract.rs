//! Extractors: [`Session`], `Option<Session>` and [`SessionContext`]. They only read what
//! the layer put in the request's extensions; they verify nothing.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::config::SessionConfig;
use crate::denylist::RevocationStore;
use crate::error::Refusal;
use crate::layer::{Admission, LayerMarker, Verdict};
use crate::response::{ErrorBody, error_response, refusal_response};
use crate::session::{Session, SessionData};

/// Why a [`Session`] could not be extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No valid session: 401 (or 503 if revocation could not be checked) with the
    /// reason's JSON body.
    Refused(Refusal),
    /// The route is not behind any [`SessionLayer`](crate::SessionLayer): a server bug,
    /// answered with 500.
    MissingLayer,
    /// The route is behind a [`SessionLayer`](crate::SessionLayer) of another data type
    /// than the extractor's (e.g. `Session` behind `SessionLayer<UserData>`): a server
    /// bug, answered with 500 naming both types.
    DataTypeMismatch {
        /// The layer's data type.
        layer: &'static str,
        /// The extractor's data type.
        extractor: &'static str,
    },
}

const MISSING_LAYER_CODE: &str = "session_layer_missing";
const MISSING_LAYER: &str = "Session extractor used on a route without jwt_session::SessionLayer: \
     add `.layer(session_layer)` to the router";
const MISMATCH_CODE: &str = "session_data_type_mismatch";

impl SessionRejection {
    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            SessionRejection::Refused(r) => r.status(),
            SessionRejection::MissingLayer | SessionRejection::DataTypeMismatch { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The JSON body of this rejection.
    pub fn body_text(&self) -> String {
        match self {
            SessionRejection::Refused(r) => r.json_body(),
            SessionRejection::MissingLayer => {
                ErrorBody::new(MISSING_LAYER_CODE, MISSING_LAYER).to_json()
            }
            SessionRejection::DataTypeMismatch { .. } => {
                ErrorBody::new(MISMATCH_CODE, &self.to_string()).to_json()
            }
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            SessionRejection::Refused(reason) => refusal_response(reason, None),
            SessionRejection::MissingLayer => {
                tracing::error!("{MISSING_LAYER}");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new(MISSING_LAYER_CODE, MISSING_LAYER),
                )
            }
            SessionRejection::DataTypeMismatch { .. } => {
                let message = self.to_string();
                tracing::error!("{message}");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new(MISMATCH_CODE, &message),
                )
            }
        }
    }
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionRejection::Refused(r) => write!(f, "{}", r.code()),
            SessionRejection::MissingLayer => f.write_str(MISSING_LAYER),
            SessionRejection::DataTypeMismatch { layer, extractor } => write!(
                f,
                "the route is behind SessionLayer<{layer}> but extracts Session<{extractor}> \
                 (or uses session_routes::<{extractor}, _>): use the layer's data type \
                 (SessionLayer::session_routes gives routes of the right type)"
            ),
        }
    }
}

impl std::error::Error for SessionRejection {}

fn admission<T: SessionData>(parts: &Parts) -> Result<&Admission<T>, SessionRejection> {
    parts.extensions.get::<Admission<T>>().ok_or_else(|| {
        match parts.extensions.get::<LayerMarker>() {
            Some(marker) => SessionRejection::DataTypeMismatch {
                layer: marker.data_type,
                extractor: std::any::type_name::<T>(),
            },
            None => SessionRejection::MissingLayer,
        }
    })
}

impl<S: Send + Sync, T: SessionData> FromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match &admission::<T>(parts)?.verdict {
            Verdict::Active(session) => Ok(session.clone()),
            Verdict::Refused(reason) => Err(SessionRejection::Refused(*reason)),
            Verdict::Absent => Err(SessionRejection::Refused(Refusal::Missing)),
        }
    }
}

impl<S: Send + Sync, T: SessionData> OptionalFromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match &admission::<T>(parts)?.verdict {
            Verdict::Active(session) => Ok(Some(session.clone())),
            Verdict::Refused(_) | Verdict::Absent => Ok(None),
        }
    }
}

/// The layer's configuration and revocation store, for handlers that need them (status
/// pages, JWKS, admin revocation). Extracting it never fails behind the layer.
pub struct SessionContext<T = ()> {
    admission: Admission<T>,
}

impl<T> std::fmt::Debug for SessionContext<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext").finish_non_exhaustive()
    }
}

impl<T> SessionContext<T> {
    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.admission.state.config
    }

    /// The revocation store.
    pub fn store(&self) -> &dyn RevocationStore {
        &*self.admission.state.store
    }

    /// A handle on the layer's sessions (issue a token, end a session or a user's).
    pub fn handle(&self) -> crate::SessionHandle<T>
    where
        T: SessionData,
    {
        crate::SessionHandle::new(self.admission.state.clone())
    }

    /// Now, by the configured clock.
    pub fn now(&self) -> i64 {
        self.admission.state.config.clock().now()
    }

    /// Why the request's session was refused, if it carried one that was.
    pub fn refusal(&self) -> Option<Refusal> {
        match self.admission.verdict {
            Verdict::Refused(r) => Some(r),
            _ => None,
        }
    }
}

impl<S: Send + Sync, T: SessionData> FromRequestParts<S> for SessionContext<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            admission: admission::<T>(parts)?.clone(),
        })
    }
}
