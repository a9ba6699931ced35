//! The HTTP harness of the in-process tests: one router of test routes, requests, a
//! response taken apart ([`Reply`]) and a browser holding one session ([`Client`]), all
//! driven with `oneshot` and the test kit's manual clock.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use jwt_session::testing::{SetCookie, TestKit, refusal, set_cookies};
use jwt_session::{
    Claims, Login, LogoutAll, Refusal, SameSite, Session, SessionContext, session_routes,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The session cookie's name under the default configuration.
pub(crate) const COOKIE_NAME: &str = "__Host-session";

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------

/// `POST /login/{user}`: a new session; the body is `{"user", "csrf"}`.
async fn login(Path(user): Path<String>) -> (Login, Json<Value>) {
    let login = Login::new(user.clone(), ()).unwrap();
    let csrf = login.csrf().to_owned();
    (login, Json(json!({ "user": user, "csrf": csrf })))
}

async fn me(s: Session) -> Json<Value> {
    Json(json!({ "sub": s.subject(), "sid": s.id() }))
}

async fn subject(s: Session) -> String {
    s.subject().to_owned()
}

async fn public() -> &'static str {
    "public"
}

async fn maybe(s: Option<Session>) -> Json<Value> {
    Json(json!({ "session": s.map(|s| s.subject().to_owned()) }))
}

async fn write(s: Session) -> String {
    format!("written by {}", s.subject())
}

async fn with_status(Path(code): Path<u16>, _s: Session) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

async fn redirect(_s: Session) -> (StatusCode, [(header::HeaderName, &'static str); 1]) {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/me")])
}

/// A handler that revokes its own session and still answers 200.
async fn revoke_self(s: Session, ctx: SessionContext) -> &'static str {
    ctx.store()
        .revoke_session(
            s.id(),
            s.auth_time(),
            ctx.config().policy(),
            ctx.config().clock(),
        )
        .unwrap();
    "revoked"
}

/// A handler that ends every session of its subject through the `LogoutAll` responder.
async fn logout_all(_s: Session) -> LogoutAll {
    LogoutAll
}

/// Every route the tests use, without the layer:
///
/// * `POST /login/{user}`: log `user` in; the body is `{"user", "csrf"}`;
/// * `GET /me`: `{"sub", "sid"}` of the session;
/// * `GET /poll`: the subject, as text (a route to make passive);
/// * `GET /public`: no session needed;
/// * `GET /maybe`: `{"session": subject or null}` (an optional session);
/// * `/write`, any method: `written by {subject}`;
/// * `GET /status/{code}`: answers `code` (a session needed);
/// * `GET /redirect`: 303 to `/me`;
/// * `GET /revoke-self`: revokes its own session and answers 200;
/// * `POST /all`: logs the subject out everywhere with the `LogoutAll` responder;
/// * the ready-made `session_routes` under `/session`.
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/login/{user}", post(login))
        .route("/me", get(me))
        .route("/poll", get(subject))
        .route("/public", get(public))
        .route("/maybe", get(maybe))
        .route("/write", any(write))
        .route("/status/{code}", get(with_status))
        .route("/redirect", get(redirect))
        .route("/revoke-self", get(revoke_self))
        .route("/all", post(logout_all))
        .merge(session_routes::<(), ()>())
}

/// [`routes`] behind the kit's layer.
pub(crate) fn app(kit: &TestKit) -> Router {
    routes().layer(kit.layer::<()>())
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

pub(crate) fn req(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

pub(crate) fn get_with(uri: &str, cookie: &str) -> Request<Body> {
    req(Method::GET, uri, &[("cookie", cookie)])
}

pub(crate) fn post_with(uri: &str, cookie: &str, csrf: &str) -> Request<Body> {
    req(
        Method::POST,
        uri,
        &[("cookie", cookie), ("x-csrf-token", csrf)],
    )
}

/// A request to the site at `host` as a browser sends it, with its `Cookie` header when
/// it holds one; the builder, for the caller's further headers and body.
pub(crate) fn to_site(
    method: Method,
    host: &str,
    uri: &str,
    cookie: Option<&str>,
) -> http::request::Builder {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, host);
    match cookie {
        Some(cookie) => builder.header(header::COOKIE, cookie),
        None => builder,
    }
}

/// The raw response of `app` to `req`.
pub(crate) async fn send(app: &Router, req: Request<Body>) -> Response<Body> {
    app.clone().oneshot(req).await.unwrap()
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

/// A response, taken apart: everything a test asserts on.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// `testing::refusal(&res)`.
    pub(crate) refusal: Option<Refusal>,
    /// The session cookie the response sets, if any (as `kit.set_cookie(&res)`).
    pub(crate) cookie: Option<SetCookie>,
    /// Every `Set-Cookie`, parsed.
    pub(crate) all_cookies: Vec<SetCookie>,
    pub(crate) body: Bytes,
}

/// `"{what}: "`, or nothing for no context.
fn context(what: &str) -> String {
    if what.is_empty() {
        String::new()
    } else {
        format!("{what}: ")
    }
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("body is not JSON ({e}): {:?}", self.text()))
            .unwrap()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .ok_or_else(|| format!("no error code in {:?}", self.text()))
            .unwrap()
            .to_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// How many `Set-Cookie` remove a cookie.
    pub(crate) fn removals(&self) -> usize {
        self.all_cookies.iter().filter(|c| c.is_removal()).count()
    }

    /// How many `Set-Cookie` set a cookie (not a removal).
    pub(crate) fn issued(&self) -> usize {
        self.all_cookies.iter().filter(|c| !c.is_removal()).count()
    }

    /// The new token this response sets (not a removal).
    pub(crate) fn new_token(&self) -> Option<String> {
        self.cookie
            .as_ref()
            .filter(|c| !c.is_removal())
            .map(|c| c.value.clone())
    }

    /// Answered 200; `what` names the case.
    #[track_caller]
    pub(crate) fn assert_ok(&self, what: &str) {
        assert_eq!(self.status, StatusCode::OK, "{what}: {}", self.text());
    }

    /// Refused with `reason`: its status, JSON code and the extension.
    #[track_caller]
    pub(crate) fn assert_refused(&self, reason: Refusal) {
        self.check_refused(reason, "");
    }

    /// As [`Reply::assert_refused`]; `what` names the case.
    #[track_caller]
    pub(crate) fn assert_refused_for(&self, reason: Refusal, what: &str) {
        self.check_refused(reason, what);
    }

    /// Refused with `reason` (as [`Reply::assert_refused`]) and the refused cookie
    /// cleared (as [`Reply::assert_cleared`]); `what` names the case.
    #[track_caller]
    pub(crate) fn assert_refused_and_cleared(&self, reason: Refusal, what: &str) {
        self.check_refused(reason, what);
        self.check_cleared(what);
    }

    /// The response clears the session cookie — and sets nothing else for it.
    #[track_caller]
    pub(crate) fn assert_cleared(&self) {
        self.check_cleared("");
    }

    /// No `Set-Cookie` at all.
    #[track_caller]
    pub(crate) fn assert_no_cookie(&self) {
        self.assert_no_cookie_for("");
    }

    /// As [`Reply::assert_no_cookie`]; `what` names the case.
    #[track_caller]
    pub(crate) fn assert_no_cookie_for(&self, what: &str) {
        let at = context(what);
        assert!(
            self.all_cookies.is_empty(),
            "{at}unexpected Set-Cookie: {:?}",
            self.all_cookies
        );
    }

    #[track_caller]
    fn check_refused(&self, reason: Refusal, what: &str) {
        let at = context(what);
        assert_eq!(
            self.status,
            reason.status(),
            "{at}status; body {}",
            self.text()
        );
        assert_eq!(self.code(), reason.code(), "{at}code");
        assert_eq!(
            self.refusal,
            Some(reason),
            "{at}Refusal in response extensions"
        );
    }

    #[track_caller]
    fn check_cleared(&self, what: &str) {
        let at = context(what);
        let session: Vec<_> = self
            .all_cookies
            .iter()
            .filter(|c| c.name == COOKIE_NAME)
            .collect();
        assert_eq!(session.len(), 1, "{at}one session Set-Cookie: {session:?}");
        assert_removal_with_default_attributes(session[0]);
    }
}

/// A removal of the session cookie with the default cookie attributes.
#[track_caller]
pub(crate) fn assert_removal_with_default_attributes(c: &SetCookie) {
    assert!(c.is_removal(), "not a removal: {}", c.raw);
    let parsed = cookie::Cookie::parse(c.raw.clone()).unwrap();
    assert_eq!(parsed.value(), "");
    assert_eq!(parsed.max_age(), Some(cookie::time::Duration::ZERO));
    assert_eq!(parsed.path(), Some("/"), "{}", c.raw);
    assert_eq!(parsed.same_site(), Some(SameSite::Lax), "{}", c.raw);
    assert_eq!(parsed.secure(), Some(true), "{}", c.raw);
    assert_eq!(parsed.http_only(), Some(true), "{}", c.raw);
    assert_eq!(parsed.domain(), None, "{}", c.raw);
    let expires = parsed
        .expires_datetime()
        .expect("a removal has a past Expires");
    assert!(expires.unix_timestamp() <= 0, "{}", c.raw);
}

/// `req` through `app`, taken apart; the session cookie is the one of the kit's
/// configuration.
pub(crate) async fn call(kit: &TestKit, app: &Router, req: Request<Body>) -> Reply {
    take_apart(kit.config().cookie().name(), send(app, req).await).await
}

/// `req` through `app`, taken apart, for tests with no kit at hand: the session cookie
/// is the default one, [`COOKIE_NAME`].
pub(crate) async fn fetch(app: &Router, req: Request<Body>) -> Reply {
    take_apart(COOKIE_NAME, send(app, req).await).await
}

/// A response read whole; `cookie_name` names the session cookie ([`Reply::cookie`]).
pub(crate) async fn take_apart(cookie_name: &str, res: Response<Body>) -> Reply {
    let all_cookies = set_cookies(&res);
    let cookie = all_cookies.iter().find(|c| c.name == cookie_name).cloned();
    let refusal = refusal(&res);
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        refusal,
        cookie,
        all_cookies,
        body,
    }
}

/// The claims of a token the kit's codec accepts.
pub(crate) fn decode(kit: &TestKit, token: &str) -> Claims {
    kit.config()
        .codec()
        .decode::<()>(token.as_bytes())
        .unwrap()
        .claims
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// A browser holding one session: its cookie and CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) token: String,
    pub(crate) csrf: String,
}

impl Client {
    /// The same browser, holding `token` instead (its CSRF token unchanged).
    pub(crate) fn with_token(&self, token: String) -> Self {
        Self {
            token,
            csrf: self.csrf.clone(),
        }
    }

    /// A session minted by the kit (no request).
    pub(crate) fn minted(kit: &TestKit, sub: &str) -> Self {
        let (token, claims) = kit.mint(sub, ()).unwrap();
        Self {
            token,
            csrf: claims.csrf.expose().to_owned(),
        }
    }

    pub(crate) fn cookie(&self) -> String {
        format!("{COOKIE_NAME}={}", self.token)
    }

    pub(crate) fn claims(&self, kit: &TestKit) -> Claims {
        decode(kit, &self.token)
    }

    /// Keep the reissued token, if the response set one. Returns whether it did.
    pub(crate) fn follow(&mut self, reply: &Reply) -> bool {
        match reply.new_token() {
            Some(token) => {
                self.token = token;
                true
            }
            None => false,
        }
    }

    pub(crate) async fn get(&self, kit: &TestKit, app: &Router, uri: &str) -> Reply {
        call(kit, app, get_with(uri, &self.cookie())).await
    }

    pub(crate) async fn post(&self, kit: &TestKit, app: &Router, uri: &str) -> Reply {
        call(kit, app, post_with(uri, &self.cookie(), &self.csrf)).await
    }

    /// Use the session now (`GET /me`) and keep the reissued token.
    pub(crate) async fn touch(&mut self, kit: &TestKit, app: &Router, what: &str) {
        let reply = self.get(kit, app, "/me").await;
        reply.assert_ok(what);
        assert!(self.follow(&reply), "{what}: reissued");
    }

    /// `POST /session/logout`: 200, and the cookie is cleared.
    pub(crate) async fn logout(&self, kit: &TestKit, app: &Router) {
        let reply = self.post(kit, app, "/session/logout").await;
        reply.assert_ok("logout");
        assert!(reply.cookie.as_ref().is_some_and(SetCookie::is_removal));
    }

    /// `POST /session/logout-all`: 200, and the cookie is cleared.
    pub(crate) async fn logout_all(&self, kit: &TestKit, app: &Router) {
        let reply = self.post(kit, app, "/session/logout-all").await;
        reply.assert_ok("logout-all");
        assert!(reply.cookie.as_ref().is_some_and(SetCookie::is_removal));
    }
}

/// Log in through the app's login handler (`POST /login/{user}`).
pub(crate) async fn login_as(kit: &TestKit, app: &Router, user: &str) -> (Client, Reply) {
    let reply = call(kit, app, req(Method::POST, &format!("/login/{user}"), &[])).await;
    assert_eq!(reply.status, StatusCode::OK, "login: {}", reply.text());
    let client = Client {
        token: reply.new_token().expect("login sets the session cookie"),
        csrf: reply.json()["csrf"].as_str().unwrap().to_owned(),
    };
    (client, reply)
}
