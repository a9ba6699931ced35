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
use crate::session::{
    Asks, Login, PartDataTypes, PendingLogin, PendingUpdate, Session, SessionData,
};

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

    /// A request an outer application of the same layer already admitted.
    pub(crate) fn passthrough(future: F) -> Self {
        Self {
            kind: Kind::Inner { future, ctx: None },
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

/// Carry out what the handler asked (its response parts), or reissue when due. Parts
/// compose in this order: 1. `Logout` / `LogoutAll` — or a `Login` over a live session —
/// end the current session; 2. `Login` starts the new one; or `Update` /
/// `Reauthenticated` / `Refresh` reissue the current one (these three combine: the new
/// token has the new data and, with `Reauthenticated`, `fresh = now`). Ending a session
/// and changing it in one response contradict each other: 500
/// `session_parts_conflict`, and nothing is done.
fn finish<T: SessionData, B: From<String>>(ctx: Ctx<T>, res: Response<B>) -> Response<B> {
    let res = act(&ctx.admission, res);
    // The app's own refusal responses (a refusal from an extractor, a step-up).
    match (&ctx.admission.state.responder, &ctx.admission.request) {
        (Some(responder), Some(request)) if res.extensions().get::<Refusal>().is_some() => {
            response::respond(&**responder, request, res)
        }
        _ => res,
    }
}

fn act<T: SessionData, B: From<String>>(
    admission: &Admission<T>,
    mut res: Response<B>,
) -> Response<B> {
    let state = &*admission.state;
    let extensions = res.extensions_mut();
    let login = extensions.remove::<PendingLogin<T>>().map(|p| p.0);
    let update = extensions.remove::<PendingUpdate<T>>().map(|p| p.0);
    let asks = extensions.remove::<Asks>().unwrap_or_default();
    let parts = extensions.remove::<PartDataTypes>().unwrap_or_default();
    // A `Login<U>` / `Update<U>` behind a `SessionLayer<T>` is invisible to this layer
    // (extensions are keyed by type): answer the bug instead of dropping the part.
    let foreign = match (parts.login, parts.update) {
        (Some(part), _) if login.is_none() => Some(("Login", part)),
        (_, Some(part)) if update.is_none() => Some(("Update", part)),
        _ => None,
    };
    if let Some((part, part_type)) = foreign {
        let failed = response::part_type_mismatch(std::any::type_name::<T>(), part, part_type);
        return if admission.clears_cookie() {
            with_removal(state, failed)
        } else {
            failed
        };
    }
    let session = admission.session();
    let ending = asks.logout || asks.logout_all;
    let changing = update.is_some() || asks.refresh || asks.reauthenticated;
    let conflict = if changing && (ending || login.is_some()) {
        Some(
            "a response both ends or replaces the session and changes it \
             (Logout/LogoutAll/Login with Update/Refresh/Reauthenticated)",
        )
    } else if (update.is_some() || asks.reauthenticated) && session.is_none() {
        Some("Update or Reauthenticated on a response without a valid session")
    } else {
        None
    };
    if let Some(detail) = conflict {
        let failed = response::parts_conflict(detail);
        return if admission.clears_cookie() {
            with_removal(state, failed)
        } else {
            failed
        };
    }
    if let Some(session) = session
        && (ending || login.is_some())
    {
        // A login over a live session ends it too: a login always starts a new `sid`.
        let ended = end_session(state, session, asks.logout_all);
        if ended.is_err() && login.is_none() {
            return with_removal(state, response::revocation_failed());
        }
    }
    if let Some(login) = login {
        let replaced = session.is_some();
        let res = issue_login(state, login, admission, res);
        // A login over a live session that could not be issued has still ended that
        // session: clear its cookie too.
        return if replaced && res.status().is_server_error() {
            with_removal(state, res)
        } else {
            res
        };
    }
    if ending {
        return with_removal(state, res);
    }
    let Some(session) = session else {
        return if admission.clears_cookie() {
            with_removal(state, res)
        } else {
            res
        };
    };
    let change = if update.is_some() || asks.reauthenticated {
        Change::Update {
            data: update.as_ref().map(|u| u.data.clone()),
            retire_older: update.as_ref().is_some_and(|u| u.retire_older),
            fresh: asks.reauthenticated,
        }
    } else if asks.refresh {
        Change::Now
    } else if res.status().as_u16() < 400 && !admission.passive {
        Change::IfDue
    } else {
        let now = state.config.clock().now();
        stamp(&mut res, session.claims(), session, now, admission.cors);
        return res;
    };
    reissue(state, session, change, admission, res)
}

fn stamp<T, U, B>(
    res: &mut Response<B>,
    claims: &Claims<U>,
    session: &Session<T>,
    now: i64,
    cors: bool,
) {
    response::stamp(
        res.headers_mut(),
        claims.seconds_left(now, session.policy()),
        cors,
    );
}

fn with_removal<T, B>(state: &LayerState<T>, mut res: Response<B>) -> Response<B> {
    add_removal(res.headers_mut(), state.config.cookie());
    res
}

/// The `Set-Cookie` of a token: persistent (`Max-Age` follows `exp`) unless the config
/// gives sessions that are not remembered a browser-session cookie.
fn session_cookie<T>(
    state: &LayerState<T>,
    token: &str,
    claims_remembered: bool,
    seconds_left: u64,
) -> Result<HeaderValue, crate::error::EncodeError> {
    let config = &state.config;
    let persistent = claims_remembered || !config.browser_session_cookies();
    config
        .cookie()
        .issue_with(token, persistent.then_some(seconds_left))
}

fn issue_login<T: SessionData, B: From<String>>(
    state: &LayerState<T>,
    login: Login<T>,
    admission: &Admission<T>,
    mut res: Response<B>,
) -> Response<B> {
    let config = &state.config;
    let minted =
        crate::handle::mint_login(config, &*state.store, login).and_then(|(token, claims)| {
            let now = config.clock().now();
            let policy = config.policy_for(claims.rem);
            let left = claims.seconds_left(now, policy);
            let cookie = session_cookie(state, &token, claims.rem, left)?;
            Ok((claims, cookie, left))
        });
    match minted {
        Ok((claims, cookie, left)) => {
            let span = tracing::Span::current();
            if !span.is_disabled() {
                span.record("sid", crate::obs::sid_tag(&claims.sid));
            }
            crate::obs::issued();
            super::record::record(state, &claims, admission.client.as_deref());
            let headers = res.headers_mut();
            headers.append(header::SET_COOKIE, cookie);
            response::stamp(headers, left, admission.cors);
            res
        }
        Err(crate::error::EncodeError::LoginTooSoon) => response::login_retry(),
        Err(e) => issue_failed(&e.to_string()),
    }
}

/// Revoke the current session (or, `all`, every session of its user). The revocation
/// applies in this process even when it could not be made durable; that is logged.
fn end_session<T>(
    state: &LayerState<T>,
    session: &Session<T>,
    all: bool,
) -> Result<(), crate::error::RevocationError> {
    let config = &state.config;
    let claims = session.claims();
    let result = if all {
        state
            .store
            .revoke_subject(&claims.sub, config.longest_policy(), config.clock())
            .map(|_| ())
    } else {
        state.store.revoke_session(
            &claims.sid,
            claims.auth_time,
            session.policy(),
            config.clock(),
        )
    };
    crate::obs::revoked(all);
    if all {
        super::record::forget(state, None, Some(&claims.sub));
    } else {
        super::record::forget(state, Some(&claims.sid), None);
    }
    if let Err(e) = &result {
        // The revocation applies in this process, but it may not survive a restart or
        // reach other instances: say so instead of pretending.
        tracing::error!(all, error = %e, "revocation not durable");
    }
    result
}

/// Older tokens of this session stop being accepted: the store refuses tokens of this
/// `sid` below the new generation (I2 TTL, shared like any revocation). Recorded once the
/// new token is minted and before it is sent, so a request in flight with an older token
/// that finishes after this point reissues nothing, and an update whose token cannot be
/// issued retires nothing.
fn retire<T, U>(state: &LayerState<T>, next: &Claims<U>, policy: &crate::claims::Policy) {
    if let Err(e) = state.store.retire_generations(
        &next.sid,
        next.generation,
        next.auth_time,
        policy,
        state.config.clock(),
    ) {
        tracing::error!(error = %e, "retiring older tokens not durable");
    }
}

/// How the current session's token is to change on this response.
enum Change<T> {
    /// Reissue if `reissue_after` has passed.
    IfDue,
    /// Reissue now ([`Refresh`](crate::Refresh)).
    Now,
    /// Reissue now with new data and/or `fresh = now`.
    Update {
        data: Option<T>,
        retire_older: bool,
        fresh: bool,
    },
}

/// Reissue when due or asked. I3: read the clock, then check revocation, then mint with
/// `lat` = that reading.
fn reissue<T: SessionData, B: From<String>>(
    state: &LayerState<T>,
    session: &Session<T>,
    change: Change<T>,
    admission: &Admission<T>,
    mut res: Response<B>,
) -> Response<B> {
    let source = admission.source;
    let client = admission.client.as_deref();
    let config = &state.config;
    let policy = session.policy();
    let claims = session.claims();
    // I3: read the clock, then check revocation, then mint with `lat` = that reading. The
    // check runs even when no reissue is due, so a session revoked while this request
    // ran gets its cookie cleared instead of a fresh deadline.
    let now = config.clock().now();
    match super::check_revocation(&*state.store, claims) {
        Ok(()) => {}
        Err(Refusal::Revoked) if !super::session_revoked(&*state.store, claims) => {
            // Only superseded: an update retired this token while the request ran. The
            // browser already holds the newer cookie; set none that would replace it.
            return res;
        }
        Err(Refusal::Revoked) => {
            tracing::info!("session revoked during the request: no reissue, cookie cleared");
            return with_removal(state, res);
        }
        Err(_) => {
            // Cannot tell: mint nothing, keep the current token (fail closed).
            stamp(&mut res, claims, session, now, admission.cors);
            return res;
        }
    }
    if matches!(change, Change::IfDue) && !claims.reissue_due(now, policy) {
        stamp(&mut res, claims, session, now, admission.cors);
        return res;
    }
    if !config.codec().can_sign() {
        // A verify-only service never signs: it keeps the current token (its issuer slides
        // the session), and an explicit change cannot be made here.
        if matches!(change, Change::Update { .. }) {
            return issue_failed("this service only verifies sessions (verify-only keyring)");
        }
        stamp(&mut res, claims, session, now, admission.cors);
        return res;
    }
    if claims.check(now, policy).is_err() {
        return with_removal(state, res);
    }
    // The handler asked for this token: failing to mint it is an error, not a success.
    let explicit = matches!(change, Change::Update { .. });
    let retiring = matches!(
        change,
        Change::Update {
            retire_older: true,
            ..
        }
    );
    let next = match change {
        Change::Update {
            data,
            retire_older,
            fresh,
        } => {
            let data = data.unwrap_or_else(|| claims.data.clone());
            claims
                .updated(data, now, policy, retire_older)
                .map(|mut next| {
                    if fresh {
                        // Never before the login (dated a second ahead after a "log out
                        // everywhere" of the same second).
                        next.fresh = Some(next.iat.max(next.auth_time));
                    }
                    next
                })
        }
        Change::IfDue | Change::Now => claims.slid(now, policy),
    };
    let bearer = source == Some(Source::Bearer);
    let issued = next.and_then(|next| {
        let token = config.codec().encode(&next)?;
        let left = next.seconds_left(now, policy);
        let header = if bearer {
            let value = HeaderValue::try_from(token)
                .map_err(|e| crate::error::EncodeError::Serialize(e.to_string()))?;
            (TOKEN_NAME, value)
        } else {
            (
                header::SET_COOKIE,
                session_cookie(state, &token, next.rem, left)?,
            )
        };
        Ok((next, header, left))
    });
    match issued {
        Ok((next, (name, value), left)) => {
            // Only once the new token exists: a retirement without it would leave the
            // session no valid token at all.
            if retiring {
                retire(state, &next, policy);
            }
            crate::obs::reissued();
            super::record::record(state, &next, client);
            let headers = res.headers_mut();
            headers.append(name, value);
            if bearer && admission.cors {
                headers.append(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(TOKEN_HEADER),
                );
            }
            response::stamp(headers, left, admission.cors);
        }
        Err(e) if explicit => return issue_failed(&e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "reissue failed; keeping the current token");
            stamp(&mut res, claims, session, now, admission.cors);
        }
    }
    res
}
