//! [`SessionService`]: the request half of the layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response, header};
use tower_service::Service;

use super::future::{Ctx, ResponseFuture};
use super::{CachedToken, PASSIVE_HEADER, Shared, Slot, SlotState, Source, refusal_response};
use crate::error::Refusal;
use crate::session::{Session, SessionData};
use crate::{csrf, obs};

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
        // No span at all unless someone listens at INFO: building a disabled span still
        // costs (with tracing's `log` fallback) several hundred instructions per request.
        let span = if tracing::enabled!(tracing::Level::INFO) {
            tracing::info_span!(
                "session",
                route = %req.uri().path(),
                sid = tracing::field::Empty
            )
        } else {
            tracing::Span::none()
        };
        let _entered = span.enter();
        let unsafe_method = csrf::is_unsafe(req.method());
        let found = find_token(req.headers(), config.accept_bearer, &config.cookie);
        let source = found.map(|(_, source)| source);
        // Bearer tokens are not ambient credentials: no cross-site or CSRF checks for them.
        if unsafe_method
            && source != Some(Source::Bearer)
            && let Err(reason) = csrf::check_origin(
                req.headers(),
                req.uri().authority().map(|a| a.as_str()),
                &config.origins,
            )
        {
            obs::refused(reason, req.uri().path());
            return ResponseFuture::rejected(refusal_response(reason, None));
        }
        let state = match found {
            None => SlotState::Absent,
            // A token that is not UTF-8 cannot be ours: refused, never skipped.
            Some((token, _)) => match std::str::from_utf8(token)
                .map_err(|_| Refusal::Malformed)
                .and_then(|token| verify::<T>(shared, token))
            {
                Ok(session) => SlotState::Active(session),
                Err(reason) => SlotState::Refused(reason),
            },
        };
        if let SlotState::Active(session) = &state
            && !span.is_disabled()
        {
            span.record("sid", obs::sid_tag(session.id()));
        }
        match &state {
            SlotState::Active(session) if unsafe_method && source == Some(Source::Cookie) => {
                if let Err(reason) = csrf::check_token(req.headers(), &session.claims().csrf) {
                    obs::refused(reason, req.uri().path());
                    return ResponseFuture::rejected(refusal_response(reason, None));
                }
            }
            SlotState::Refused(reason) => obs::refused(*reason, req.uri().path()),
            _ => {}
        }
        let refused_cookie = source == Some(Source::Cookie)
            && matches!(state, SlotState::Refused(r) if r.ends_session());
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
        let passive = session.is_some() && is_passive(&req, &config.passive_routes);
        req.extensions_mut().insert(Slot {
            shared: shared.clone(),
            state,
        });
        let ctx = Ctx {
            shared: shared.clone(),
            session,
            refused_cookie,
            source,
            passive,
            span: span.clone(),
        };
        ResponseFuture::inner(self.inner.call(req), ctx)
    }
}

/// The bearer token (if accepted and sent), else the session cookie, as raw bytes.
fn find_token<'a>(
    headers: &'a HeaderMap,
    accept_bearer: bool,
    cookie: &crate::cookie::CookieSettings,
) -> Option<(&'a [u8], Source)> {
    if accept_bearer
        && let Some(value) = headers.get(header::AUTHORIZATION)
        && let Some(space) = value.as_bytes().iter().position(|b| *b == b' ')
        && value.as_bytes()[..space].eq_ignore_ascii_case(b"bearer")
    {
        return Some((value.as_bytes()[space + 1..].trim_ascii(), Source::Bearer));
    }
    cookie.find(headers).map(|token| (token, Source::Cookie))
}

fn is_passive<B>(req: &Request<B>, routes: &[crate::config::PassivePredicate]) -> bool {
    let by_header = req
        .headers()
        .get(PASSIVE_HEADER)
        .is_some_and(|v| !(v.as_bytes() == b"0" || v.as_bytes().eq_ignore_ascii_case(b"false")));
    by_header || routes.iter().any(|p| p(req.method(), req.uri().path()))
}

/// Decode (or find in the verified-token cache), check times, check revocation. Every
/// error is a refusal (fail closed); only accepted tokens are cached.
pub(crate) fn verify<T: SessionData>(
    shared: &Shared<T>,
    token: &str,
) -> Result<Session<T>, Refusal> {
    let config = &shared.config.0;
    let generation = config.codec.generation();
    let cached = shared
        .cache
        .as_ref()
        .and_then(|cache| cache.get(token))
        .filter(|hit| hit.generation == generation)
        .map(|hit| hit.claims);
    let fresh = cached.is_none();
    let claims = match cached {
        Some(claims) => claims,
        None => Arc::new(config.codec.decode::<T>(token.as_bytes())?.claims),
    };
    let now = config.clock.now();
    if let Err(reason) = claims.check(now, &config.policy) {
        if !fresh && let Some(cache) = &shared.cache {
            cache.remove(token);
        }
        return Err(reason);
    }
    super::check_revocation(&*shared.store, &claims)?;
    if fresh && let Some(cache) = &shared.cache {
        cache.insert(
            token.into(),
            CachedToken {
                claims: claims.clone(),
                generation,
            },
        );
    }
    Ok(Session {
        claims,
        policy: config.policy,
        now,
    })
}
