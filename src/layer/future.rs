//! [`ResponseFuture`]: the response half of the layer (login, logout, refresh, reissue).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Response, StatusCode, header};
use pin_project_lite::pin_project;

use super::{
    EXPIRES_IN_HEADER, EXPIRES_IN_NAME, Shared, Source, TOKEN_HEADER, TOKEN_NAME, issue_failed,
};
use crate::claims::Claims;
use crate::error::Refusal;
use crate::session::{Ask, Login, PendingLogin, Session, SessionData};

pub(crate) struct Ctx<T> {
    pub(crate) shared: Arc<Shared<T>>,
    pub(crate) session: Option<Session<T>>,
    pub(crate) refused_cookie: bool,
    pub(crate) source: Option<Source>,
    pub(crate) passive: bool,
    pub(crate) span: tracing::Span,
}

pin_project! {
    /// Response future of [`SessionService`](super::SessionService).
    pub struct ResponseFuture<F, B, T> {
        #[pin]
        kind: Kind<F, B, T>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, T> {
        Inner { #[pin] future: F, ctx: Option<Ctx<T>> },
        Rejected { response: Option<Response<B>> },
    }
}

impl<F, B, T> ResponseFuture<F, B, T> {
    pub(crate) fn inner(future: F, ctx: Ctx<T>) -> Self {
        Self {
            kind: Kind::Inner {
                future,
                ctx: Some(ctx),
            },
        }
    }

    pub(crate) fn rejected(response: Response<B>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E, T> Future for ResponseFuture<F, B, T>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<String>,
    T: SessionData,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future, ctx } => {
                let response = {
                    let _entered = ctx.as_ref().map(|c| c.span.enter());
                    ready!(future.poll(cx))?
                };
                Poll::Ready(Ok(match ctx.take() {
                    Some(ctx) => {
                        let span = ctx.span.clone();
                        let _entered = span.enter();
                        finish(ctx, response)
                    }
                    None => response,
                }))
            }
            KindProj::Rejected { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| issue_failed("response future polled after completion")))),
        }
    }
}

fn finish<T: SessionData, B: From<String>>(ctx: Ctx<T>, mut res: Response<B>) -> Response<B> {
    let shared = &*ctx.shared;
    if let Some(PendingLogin(login)) = res.extensions_mut().remove::<PendingLogin<T>>() {
        return issue_login(shared, login, res);
    }
    let ask = res.extensions_mut().remove::<Ask>();
    match (ask, &ctx.session) {
        (Some(Ask::Logout), Some(session)) => logout(shared, session, false, res),
        (Some(Ask::LogoutAll), Some(session)) => logout(shared, session, true, res),
        (Some(Ask::Logout | Ask::LogoutAll), None) => with_removal(shared, res),
        (Some(Ask::Refresh), Some(session)) => reissue(shared, session, true, ctx.source, res),
        (None, Some(session)) if res.status().as_u16() < 400 && !ctx.passive => {
            reissue(shared, session, false, ctx.source, res)
        }
        (_, Some(session)) => {
            let now = shared.config.0.clock.now();
            stamp(&mut res, session.claims(), shared, now);
            res
        }
        (_, None) if ctx.refused_cookie => with_removal(shared, res),
        (_, None) => res,
    }
}

/// Seconds-left header, no-store, and CORS exposure of the header.
fn stamp<T, B>(res: &mut Response<B>, claims: &Claims<T>, shared: &Shared<T>, now: i64) {
    let left = claims.seconds_left(now, &shared.config.0.policy);
    let headers = res.headers_mut();
    headers.insert(EXPIRES_IN_NAME, HeaderValue::from(left));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPIRES_IN_HEADER),
    );
}

fn with_removal<T, B>(shared: &Shared<T>, mut res: Response<B>) -> Response<B> {
    let headers = res.headers_mut();
    headers.append(header::SET_COOKIE, shared.config.0.cookie.removal());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn issue_login<T: SessionData, B: From<String>>(
    shared: &Shared<T>,
    login: Login<T>,
    mut res: Response<B>,
) -> Response<B> {
    let config = &shared.config.0;
    let now = config.clock.now();
    // A login in the same second as a "log out everywhere" of this user is dated one
    // second later, so that `auth_time <= T` does not refuse it. No further: a token's
    // `auth_time` may lead its `iat` by one second at most (`Claims::check`). After a
    // second cut-off in the same second (which already covers a login dated `now + 1`),
    // no date works until the clock moves on: ask the client to retry.
    let auth_time = match shared.store.subject_revoked_at(&login.sub) {
        Some(t) if t > now => {
            tracing::warn!("login refused: the user's sessions were ended again this second");
            return super::login_retry();
        }
        Some(t) if t == now => t.saturating_add(crate::claims::LOGIN_DATING_SLACK),
        _ => now,
    };
    let claims = match Claims::for_login(
        login.sub,
        login.data,
        login.csrf,
        auth_time,
        now,
        &config.policy,
        config.codec.issuer(),
        config.codec.audience(),
    ) {
        Ok(c) => c,
        Err(e) => return issue_failed(&e.to_string()),
    };
    let cookie = config.codec.encode(&claims).and_then(|token| {
        config
            .cookie
            .issue(&token, claims.seconds_left(now, &config.policy))
    });
    match cookie {
        Ok(cookie) => {
            let span = tracing::Span::current();
            if !span.is_disabled() {
                span.record("sid", crate::obs::sid_tag(&claims.sid));
            }
            crate::obs::issued();
            res.headers_mut().append(header::SET_COOKIE, cookie);
            stamp(&mut res, &claims, shared, now);
            res
        }
        Err(e) => issue_failed(&e.to_string()),
    }
}

fn logout<T: SessionData, B: From<String>>(
    shared: &Shared<T>,
    session: &Session<T>,
    all: bool,
    res: Response<B>,
) -> Response<B> {
    let config = &shared.config.0;
    let claims = session.claims();
    let result = if all {
        shared
            .store
            .revoke_subject(&claims.sub, &config.policy, &*config.clock)
            .map(|_| ())
    } else {
        shared.store.revoke_session(
            &claims.sid,
            claims.auth_time,
            &config.policy,
            &*config.clock,
        )
    };
    match result {
        Ok(()) => {
            crate::obs::revoked(all);
            with_removal(shared, res)
        }
        Err(e) => {
            // The revocation applies in this process, but it may not survive a restart or
            // reach other instances: say so instead of pretending.
            tracing::error!(all, error = %e, "revocation not durable");
            let failed = super::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "revocation_failed",
                "logged out here, but the logout could not be recorded durably",
            );
            with_removal(shared, failed)
        }
    }
}

/// Reissue when due (or `force`d by [`Refresh`](crate::Refresh)). I3: read the clock, then
/// check revocation, then mint with `lat` = that reading.
fn reissue<T: SessionData, B>(
    shared: &Shared<T>,
    session: &Session<T>,
    force: bool,
    source: Option<Source>,
    mut res: Response<B>,
) -> Response<B> {
    let config = &shared.config.0;
    let claims = session.claims();
    // I3: read the clock, then check revocation, then mint with `lat` = that reading. The
    // check runs even when no reissue is due, so a session revoked while this request
    // ran gets its cookie cleared instead of a fresh deadline.
    let now = config.clock.now();
    match super::check_revocation(&*shared.store, claims) {
        Ok(()) => {}
        Err(Refusal::Revoked) => {
            tracing::info!("session revoked during the request: no reissue, cookie cleared");
            return with_removal(shared, res);
        }
        Err(_) => {
            // Cannot tell: mint nothing, keep the current token (fail closed).
            stamp(&mut res, claims, shared, now);
            return res;
        }
    }
    if !force && !claims.reissue_due(now, &config.policy) {
        stamp(&mut res, claims, shared, now);
        return res;
    }
    if claims.check(now, &config.policy).is_err() {
        return with_removal(shared, res);
    }
    let issued = claims.slid(now, &config.policy).and_then(|next| {
        let token = config.codec.encode(&next)?;
        let header = if source == Some(Source::Bearer) {
            let value = HeaderValue::try_from(token)
                .map_err(|e| crate::error::EncodeError::Serialize(e.to_string()))?;
            (TOKEN_NAME, value)
        } else {
            let max_age = next.seconds_left(now, &config.policy);
            (header::SET_COOKIE, config.cookie.issue(&token, max_age)?)
        };
        Ok((next, header))
    });
    match issued {
        Ok((next, (name, value))) => {
            crate::obs::reissued();
            let bearer = name == TOKEN_HEADER;
            res.headers_mut().append(name, value);
            if bearer {
                res.headers_mut().append(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(TOKEN_HEADER),
                );
            }
            stamp(&mut res, &next, shared, now);
        }
        Err(e) => {
            tracing::error!(error = %e, "reissue failed; keeping the current token");
            stamp(&mut res, claims, shared, now);
        }
    }
    res
}
