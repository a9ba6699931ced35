//! [`ResponseFuture`]: the response half of the layer (login, logout, refresh, reissue).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Response, header};
use pin_project_lite::pin_project;

use super::LayerState;
use super::admission::{Admission, Source};
use crate::claims::Claims;
use crate::error::Refusal;
use crate::headers::{TOKEN_HEADER, TOKEN_NAME};
use crate::response::{self, add_removal, issue_failed};
use crate::session::{Ask, Login, PendingLogin, Session, SessionData};

/// What the response half needs: the request's admission and its span.
struct Ctx<T> {
    admission: Admission<T>,
    span: tracing::Span,
}

pin_project! {
    /// Response future of [`SessionService`](super::SessionService).
    #[must_use = "futures do nothing unless polled"]
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
    pub(crate) fn inner(future: F, admission: Admission<T>, span: tracing::Span) -> Self {
        Self {
            kind: Kind::Inner {
                future,
                ctx: Some(Ctx { admission, span }),
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
    let admission = &ctx.admission;
    let state = &*admission.state;
    if let Some(PendingLogin(login)) = res.extensions_mut().remove::<PendingLogin<T>>() {
        return issue_login(state, login, res);
    }
    let ask = res.extensions_mut().remove::<Ask>();
    match (ask, admission.session()) {
        (Some(Ask::Logout), Some(session)) => logout(state, session, false, res),
        (Some(Ask::LogoutAll), Some(session)) => logout(state, session, true, res),
        (Some(Ask::Logout | Ask::LogoutAll), None) => with_removal(state, res),
        (Some(Ask::Refresh), Some(session)) => reissue(state, session, true, admission.source, res),
        (None, Some(session)) if res.status().as_u16() < 400 && !admission.passive => {
            reissue(state, session, false, admission.source, res)
        }
        (_, Some(session)) => {
            let now = state.config.clock().now();
            stamp(&mut res, session.claims(), state, now);
            res
        }
        (_, None) if admission.clears_cookie() => with_removal(state, res),
        (_, None) => res,
    }
}

fn stamp<T, B>(res: &mut Response<B>, claims: &Claims<T>, state: &LayerState<T>, now: i64) {
    response::stamp(
        res.headers_mut(),
        claims.seconds_left(now, state.config.policy()),
    );
}

fn with_removal<T, B>(state: &LayerState<T>, mut res: Response<B>) -> Response<B> {
    add_removal(res.headers_mut(), state.config.cookie());
    res
}

fn issue_login<T: SessionData, B: From<String>>(
    state: &LayerState<T>,
    login: Login<T>,
    mut res: Response<B>,
) -> Response<B> {
    let config = &state.config;
    let now = config.clock().now();
    // A login in the same second as a "log out everywhere" of this user is dated one
    // second later, so that `auth_time <= T` does not refuse it. No further: a token's
    // `auth_time` may lead its `iat` by one second at most (`Claims::check`). After a
    // second cut-off in the same second (which already covers a login dated `now + 1`),
    // no date works until the clock moves on: ask the client to retry.
    let auth_time = match state.store.subject_revoked_at(&login.sub) {
        Some(t) if t > now => {
            tracing::warn!("login refused: the user's sessions were ended again this second");
            return response::login_retry();
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
        config.policy(),
        config.codec().issuer(),
        config.codec().audience(),
    ) {
        Ok(c) => c,
        Err(e) => return issue_failed(&e.to_string()),
    };
    let cookie = config.codec().encode(&claims).and_then(|token| {
        config
            .cookie()
            .issue(&token, claims.seconds_left(now, config.policy()))
    });
    match cookie {
        Ok(cookie) => {
            let span = tracing::Span::current();
            if !span.is_disabled() {
                span.record("sid", crate::obs::sid_tag(&claims.sid));
            }
            crate::obs::issued();
            res.headers_mut().append(header::SET_COOKIE, cookie);
            stamp(&mut res, &claims, state, now);
            res
        }
        Err(e) => issue_failed(&e.to_string()),
    }
}

fn logout<T: SessionData, B: From<String>>(
    state: &LayerState<T>,
    session: &Session<T>,
    all: bool,
    res: Response<B>,
) -> Response<B> {
    let config = &state.config;
    let claims = session.claims();
    let result = if all {
        state
            .store
            .revoke_subject(&claims.sub, config.policy(), config.clock())
            .map(|_| ())
    } else {
        state.store.revoke_session(
            &claims.sid,
            claims.auth_time,
            config.policy(),
            config.clock(),
        )
    };
    match result {
        Ok(()) => {
            crate::obs::revoked(all);
            with_removal(state, res)
        }
        Err(e) => {
            // The revocation applies in this process, but it may not survive a restart or
            // reach other instances: say so instead of pretending.
            tracing::error!(all, error = %e, "revocation not durable");
            with_removal(state, response::revocation_failed())
        }
    }
}

/// Reissue when due (or `force`d by [`Refresh`](crate::Refresh)). I3: read the clock, then
/// check revocation, then mint with `lat` = that reading.
fn reissue<T: SessionData, B>(
    state: &LayerState<T>,
    session: &Session<T>,
    force: bool,
    source: Option<Source>,
    mut res: Response<B>,
) -> Response<B> {
    let config = &state.config;
    let policy = config.policy();
    let claims = session.claims();
    // I3: read the clock, then check revocation, then mint with `lat` = that reading. The
    // check runs even when no reissue is due, so a session revoked while this request
    // ran gets its cookie cleared instead of a fresh deadline.
    let now = config.clock().now();
    match super::check_revocation(&*state.store, claims) {
        Ok(()) => {}
        Err(Refusal::Revoked) => {
            tracing::info!("session revoked during the request: no reissue, cookie cleared");
            return with_removal(state, res);
        }
        Err(_) => {
            // Cannot tell: mint nothing, keep the current token (fail closed).
            stamp(&mut res, claims, state, now);
            return res;
        }
    }
    if !force && !claims.reissue_due(now, policy) {
        stamp(&mut res, claims, state, now);
        return res;
    }
    if claims.check(now, policy).is_err() {
        return with_removal(state, res);
    }
    let bearer = source == Some(Source::Bearer);
    let issued = claims.slid(now, policy).and_then(|next| {
        let token = config.codec().encode(&next)?;
        let header = if bearer {
            let value = HeaderValue::try_from(token)
                .map_err(|e| crate::error::EncodeError::Serialize(e.to_string()))?;
            (TOKEN_NAME, value)
        } else {
            let max_age = next.seconds_left(now, policy);
            (header::SET_COOKIE, config.cookie().issue(&token, max_age)?)
        };
        Ok((next, header))
    });
    match issued {
        Ok((next, (name, value))) => {
            crate::obs::reissued();
            let headers = res.headers_mut();
            headers.append(name, value);
            if bearer {
                headers.append(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(TOKEN_HEADER),
                );
            }
            stamp(&mut res, &next, state, now);
        }
        Err(e) => {
            tracing::error!(error = %e, "reissue failed; keeping the current token");
            stamp(&mut res, claims, state, now);
        }
    }
    res
}
