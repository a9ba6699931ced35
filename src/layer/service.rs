//! [`SessionService`]: the request half of the layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::{Ctx, ResponseFuture};
use super::{Shared, Slot, SlotState, refusal_response};
use crate::csrf;
use crate::denylist::TokenFacts;
use crate::error::Refusal;
use crate::session::{Session, SessionData, Verified};

/// The service made by [`SessionLayer`](super::SessionLayer).
pub struct SessionService<S, T> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<T>>,
}

impl<S: Clone, T> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug, T> std::fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
    T: SessionData,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let config = &shared.config.0;
        let unsafe_method = csrf::is_unsafe(req.method());
        if unsafe_method
            && let Err(reason) = csrf::check_origin(req.headers(), &config.trusted_origins)
        {
            refused(reason, req.uri().path(), None);
            return ResponseFuture::rejected(refusal_response(reason, None));
        }
        let state = match config.cookie.find(req.headers()) {
            None => SlotState::Absent,
            Some(token) => match verify::<T>(shared, token.as_bytes()) {
                Ok(session) => SlotState::Active(session),
                Err(reason) => SlotState::Refused(reason),
            },
        };
        match &state {
            SlotState::Active(session) if unsafe_method => {
                if let Err(reason) = csrf::check_token(req.headers(), &session.claims().csrf) {
                    refused(reason, req.uri().path(), Some(session.id()));
                    return ResponseFuture::rejected(refusal_response(reason, None));
                }
            }
            SlotState::Refused(reason) => refused(*reason, req.uri().path(), None),
            _ => {}
        }
        let refused_cookie = matches!(state, SlotState::Refused(r) if r.ends_session());
        if shared.require {
            match &state {
                SlotState::Active(_) => {}
                SlotState::Refused(reason) => {
                    let removal = refused_cookie.then(|| config.cookie.removal());
                    return ResponseFuture::rejected(refusal_response(*reason, removal));
                }
                SlotState::Absent => {
                    return ResponseFuture::rejected(refusal_response(Refusal::Missing, None));
                }
            }
        }
        let session = match &state {
            SlotState::Active(s) => Some(s.clone()),
            _ => None,
        };
        req.extensions_mut().insert(Slot {
            shared: shared.clone(),
            state,
        });
        let ctx = Ctx {
            shared: shared.clone(),
            session,
            refused_cookie,
        };
        ResponseFuture::inner(self.inner.call(req), ctx)
    }
}

fn refused(reason: Refusal, path: &str, sid: Option<&str>) {
    tracing::info!(reason = reason.code(), route = path, sid, "session refused");
}

/// Decode, check times, check revocation. Every error is a refusal (fail closed).
pub(crate) fn verify<T: SessionData>(
    shared: &Shared<T>,
    token: &[u8],
) -> Result<Session<T>, Refusal> {
    let config = &shared.config.0;
    let verified = config.codec.decode::<T>(token)?;
    let now = config.clock.now();
    let claims = verified.claims;
    claims.check(now, &config.policy)?;
    let facts = TokenFacts {
        sid: &claims.sid,
        sub: &claims.sub,
        auth_time: claims.auth_time,
        lat: claims.lat,
    };
    match shared.store.is_revoked(facts) {
        Ok(false) => {}
        Ok(true) => return Err(Refusal::Revoked),
        Err(e) => {
            tracing::error!(error = %e, sid = %claims.sid, "revocation check failed; refusing");
            return Err(Refusal::RevocationUnavailable);
        }
    }
    Ok(Session {
        inner: Arc::new(Verified {
            claims,
            policy: config.policy,
            now,
        }),
    })
}
