//! The request half of the layer, as one synchronous step: from the request to one
//! [`Decision`] — let it through with its [`Admission`], or answer it now.

use std::sync::Arc;

use http::{HeaderMap, Method, Request, header};

use super::{LayerState, cache};
use crate::cookie::CookieSettings;
use crate::error::Refusal;
use crate::headers::PASSIVE_NAME;
use crate::session::{Session, SessionData};
use crate::{csrf, obs};

/// Where the request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Cookie,
    Bearer,
}

/// What the layer found for one request.
pub(crate) enum Verdict<T> {
    /// A valid session.
    Active(Session<T>),
    /// A token was sent and refused.
    Refused(Refusal),
    /// No token was sent.
    Absent,
}

impl<T> Clone for Verdict<T> {
    fn clone(&self) -> Self {
        match self {
            Verdict::Active(s) => Verdict::Active(s.clone()),
            Verdict::Refused(r) => Verdict::Refused(*r),
            Verdict::Absent => Verdict::Absent,
        }
    }
}

/// The layer's decision about one request that goes on to the handler: handed to the
/// extractors (request extensions) and kept by the response future.
pub(crate) struct Admission<T> {
    pub(crate) state: Arc<LayerState<T>>,
    pub(crate) verdict: Verdict<T>,
    pub(crate) source: Option<Source>,
    /// Validated, but neither slides nor reissues.
    pub(crate) passive: bool,
    /// The request names its `Origin` (a CORS request): the response exposes the
    /// session's headers to the reading script.
    pub(crate) cors: bool,
    /// What a refusal responder needs to know about the request (only with one).
    pub(crate) request: Option<Arc<RequestInfo>>,
    /// The client, as the session registry keeps it (only with one): handles on the
    /// request's headers, read only if the registry is written.
    pub(crate) client: Option<Arc<Client>>,
}

/// The client of a request, captured for the session registry without allocating or
/// formatting anything (a plain request never writes the registry): see
/// [`Client::user_agent`] and [`Client::ip`], called only at a write.
#[derive(Debug, Clone, Default)]
pub(crate) struct Client {
    agent: Option<http::HeaderValue>,
    forwarded: Option<http::HeaderValue>,
    peer: Option<std::net::IpAddr>,
}

impl Client {
    fn of<B>(req: &Request<B>, registry: &super::Registry) -> Self {
        Self {
            agent: req.headers().get(header::USER_AGENT).cloned(),
            forwarded: registry
                .ip_header
                .as_ref()
                .and_then(|name| req.headers().get(name).cloned()),
            peer: match registry.ip_header {
                Some(_) => None,
                None => req
                    .extensions()
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip()),
            },
        }
    }

    /// The user agent, truncated.
    pub(crate) fn user_agent(&self) -> Option<String> {
        self.agent
            .as_ref()
            .map(|v| crate::registry::truncate_agent(&String::from_utf8_lossy(v.as_bytes())))
    }

    /// The client IP as `registry` keeps it: the first address of the trusted header, or
    /// the peer address.
    pub(crate) fn ip(&self, registry: &super::Registry) -> Option<String> {
        let ip = match registry.ip_header {
            Some(_) => self
                .forwarded
                .as_ref()?
                .to_str()
                .ok()?
                .split(',')
                .next()?
                .trim()
                .parse::<std::net::IpAddr>()
                .ok(),
            None => self.peer,
        };
        ip.and_then(|ip| crate::registry::keep_ip(ip, registry.ip))
    }
}

/// The request as a [`RefusalResponder`](crate::RefusalResponder) and the session
/// registry see it (captured only when one of them is configured).
#[derive(Debug, Default)]
pub(crate) struct RequestInfo {
    pub(crate) navigation: bool,
    pub(crate) method: Method,
    pub(crate) target: Box<str>,
}

impl RequestInfo {
    pub(crate) fn of<B>(req: &Request<B>) -> Self {
        Self {
            navigation: crate::responder::is_navigation(req.method(), req.headers()),
            method: req.method().clone(),
            target: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .into(),
        }
    }
}

impl<T> Clone for Admission<T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            verdict: self.verdict.clone(),
            source: self.source,
            passive: self.passive,
            cors: self.cors,
            request: self.request.clone(),
            client: self.client.clone(),
        }
    }
}

impl<T> Admission<T> {
    /// The session, when the request carries a valid one.
    pub(crate) fn session(&self) -> Option<&Session<T>> {
        match &self.verdict {
            Verdict::Active(session) => Some(session),
            _ => None,
        }
    }

    /// A refused cookie whose session is dead is cleared on the response, so the browser
    /// stops sending it (see [`clears`]).
    pub(crate) fn clears_cookie(&self) -> bool {
        self.source == Some(Source::Cookie)
            && matches!(self.verdict, Verdict::Refused(r) if clears(&self.state.config, r))
    }
}

/// Whether refusing a cookie for `reason` clears it: when the session itself is dead
/// ([`Refusal::ends_session`]) — except `session_unknown_key` on a verify-only service. It
/// cannot tell a forged `kid` from a key its issuer has not published to it yet (its
/// one refresh per interval may be used up), and the cookie is the issuer's: clearing it
/// would log the user out of the whole site for a key this service merely lacks.
pub(crate) fn clears(config: &crate::config::SessionConfig, reason: Refusal) -> bool {
    reason.ends_session() && (reason != Refusal::UnknownKey || config.codec().can_sign())
}

/// Let the request through, or answer it now.
pub(crate) enum Decision<T> {
    Admit(Admission<T>),
    /// Refused before the handler; `true` when the refused cookie is to be cleared.
    Reject(Refusal, bool),
}

/// Decide about `req`: find the token, check the origin of unsafe requests, verify the
/// token, check CSRF for a cookie-borne session, and apply `require_session`.
pub(crate) fn admit<T: SessionData, B>(
    state: &Arc<LayerState<T>>,
    req: &Request<B>,
) -> Decision<T> {
    let config = &state.config;
    let headers = req.headers();
    let unsafe_method = csrf::is_unsafe(req.method());
    let found = find_token(headers, config.accept_bearer(), config.cookie());
    let source = found.map(|(_, source)| source);
    let refuse = |reason: Refusal, clear: bool| {
        obs::refused(reason, req.uri().path());
        Decision::Reject(reason, clear)
    };
    // Bearer tokens are not ambient credentials: no cross-site or CSRF checks for them.
    if unsafe_method
        && source != Some(Source::Bearer)
        && let Err(reason) = csrf::check_origin(
            headers,
            req.uri().authority().map(|a| a.as_str()),
            config.origins(),
        )
    {
        return refuse(reason, false);
    }
    let verdict = match found {
        None => Verdict::Absent,
        // A token that is not UTF-8 cannot be ours: refused, never skipped (checked on a
        // cache miss; a cached token is known to be one the codec accepted).
        Some((token, _)) => match cache::verify(state, token) {
            Ok(session) => Verdict::Active(session),
            Err(reason) => Verdict::Refused(reason),
        },
    };
    match &verdict {
        Verdict::Active(session) if unsafe_method && source == Some(Source::Cookie) => {
            if let Err(reason) =
                csrf::check_request_token(headers, req.extensions(), &session.claims().csrf)
            {
                return refuse(reason, false);
            }
        }
        Verdict::Refused(reason) if state.require => {
            let clear = source == Some(Source::Cookie) && clears(config, *reason);
            return refuse(*reason, clear);
        }
        Verdict::Refused(reason) => obs::refused(*reason, req.uri().path()),
        Verdict::Absent if state.require => return refuse(Refusal::Missing, false),
        _ => {}
    }
    let passive = matches!(verdict, Verdict::Active(_)) && is_passive(req, config);
    let request = state
        .responder
        .is_some()
        .then(|| Arc::new(RequestInfo::of(req)));
    let client = state
        .registry
        .as_ref()
        .map(|r| Arc::new(Client::of(req, r)));
    Decision::Admit(Admission {
        state: state.clone(),
        verdict,
        source,
        passive,
        cors: headers.contains_key(header::ORIGIN),
        request,
        client,
    })
}

/// The bearer token (if accepted and sent), else the session cookie, as raw bytes.
fn find_token<'a>(
    headers: &'a HeaderMap,
    accept_bearer: bool,
    cookie: &CookieSettings,
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

fn is_passive<B>(req: &Request<B>, config: &crate::config::SessionConfig) -> bool {
    let by_header = req
        .headers()
        .get(PASSIVE_NAME)
        .is_some_and(|v| !(v.as_bytes() == b"0" || v.as_bytes().eq_ignore_ascii_case(b"false")));
    by_header
        || config
            .passive_routes()
            .iter()
            .any(|p| p(req.method(), req.uri().path()))
}
