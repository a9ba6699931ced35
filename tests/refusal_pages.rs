//! Server-rendered apps (issue 12), part 2: refusals answered the app's way
//! (`SessionLayer::on_refusal`), the built-in `LoginRedirect` for browser navigations, and
//! `safe_next` for the login page's redirect back. Through the public API only, one test
//! per promise and per refusal; in process, with the test kit's manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Query;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use jwt_session::testing::TestKit;
use jwt_session::{
    CSRF_HEADER, LoginRedirect, ReauthRequired, Refusal, RefusalContext, Session, SessionLayer,
    safe_next,
};
mod support;

use support::harness::{Reply, fetch, to_site};

const HOST: &str = "app.example";
const OWN_ORIGIN: &str = "https://app.example";
const EVIL_ORIGIN: &str = "https://evil.example";
/// How recent a login must be for `GET /sensitive`.
const FRESH: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------------------

impl Reply {
    fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The `next` parameter of a redirect to the login page, decoded.
    fn next(&self) -> Option<String> {
        let location = self.location()?;
        let (_, query) = location.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
    }

    /// The default JSON refusal, not redirected.
    #[track_caller]
    fn assert_json_refusal(&self, reason: Refusal) {
        assert_eq!(self.status, reason.status(), "{}", self.text());
        assert_eq!(
            self.json()["error"]["code"],
            reason.code(),
            "{}",
            self.text()
        );
        assert_eq!(self.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(self.location(), None);
        assert_eq!(self.refusal, Some(reason));
    }

    /// A `303` to the login page, carrying the refusal, never cached.
    #[track_caller]
    fn assert_login_redirect(&self, reason: Refusal, next: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.text());
        let location = self.location().unwrap();
        assert!(location.starts_with("/login?next="), "{location}");
        assert_eq!(self.next().as_deref(), Some(next), "{location}");
        assert_eq!(self.refusal, Some(reason));
        assert_eq!(self.headers[header::CACHE_CONTROL], "no-store");
    }
}

/// A page load as a current browser sends it (`Sec-Fetch-Mode: navigate`).
fn navigate(uri: &str, cookie: Option<&str>) -> Request<Body> {
    to_site(Method::GET, HOST, uri, cookie)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "none")
        .header("sec-fetch-dest", "document")
        .header(
            header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .body(Body::empty())
        .unwrap()
}

/// A page load from a browser that sends no fetch metadata: only `Accept: text/html`.
fn old_browser_navigate(uri: &str, cookie: Option<&str>) -> Request<Body> {
    to_site(Method::GET, HOST, uri, cookie)
        .header(header::ACCEPT, "text/html,*/*;q=0.8")
        .body(Body::empty())
        .unwrap()
}

/// A script's `fetch` of the JSON API.
fn api_call(uri: &str, cookie: Option<&str>) -> Request<Body> {
    to_site(Method::GET, HOST, uri, cookie)
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The app under test
// ---------------------------------------------------------------------------------------

/// Pages and an API that extract the session themselves, and a login page that sends
/// the browser back to a safe `next`.
fn routes() -> Router {
    Router::new()
        .route(
            "/account",
            get(|s: Session| async move { format!("account of {}", s.subject()) }),
        )
        .route(
            "/account/settings",
            post(|s: Session| async move { s.subject().to_owned() }),
        )
        .route(
            "/api/me",
            get(|s: Session| async move { Json(s.subject().to_owned()) }),
        )
        .route(
            "/sensitive",
            get(|s: Session| async move {
                s.require_fresh(FRESH)?;
                Ok::<_, ReauthRequired>("sensitive")
            }),
        )
        .route(
            "/login",
            get(|Query(q): Query<Vec<(String, String)>>| async move {
                let next = q.iter().find(|(k, _)| k == "next").map(|(_, v)| v.as_str());
                // Where the login form would send the browser back to.
                next.and_then(safe_next).unwrap_or("/").to_owned()
            }),
        )
}

fn redirecting_app(kit: &TestKit) -> Router {
    routes().layer(kit.layer::<()>().on_refusal(LoginRedirect::to("/login")))
}

// ---------------------------------------------------------------------------------------
// LoginRedirect
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_navigation_without_a_session_goes_to_the_login_page_with_next() {
    let kit = TestKit::new();
    let app = redirecting_app(&kit);

    let reply = fetch(&app, navigate("/account?tab=2&q=a%20b", None)).await;
    reply.assert_login_redirect(Refusal::Missing, "/account?tab=2&q=a%20b");
    assert_eq!(
        reply.location(),
        Some("/login?next=%2Faccount%3Ftab%3D2%26q%3Da%2520b")
    );
    assert!(reply.all_cookies.is_empty(), "there was no cookie to clear");

    // The login page takes `next` back, and it is a path of this site.
    let login = fetch(
        &app,
        Request::get(reply.location().unwrap())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.text(), "/account?tab=2&q=a%20b");
}

#[tokio::test]
async fn an_html_get_without_fetch_metadata_counts_as_a_navigation() {
    let kit = TestKit::new();
    let app = redirecting_app(&kit);
    let reply = fetch(&app, old_browser_navigate("/account", None)).await;
    reply.assert_login_redirect(Refusal::Missing, "/account");

    // HEAD too.
    let req = Request::head("/account")
        .header(header::ACCEPT, "text/html")
        .body(Body::empty())
        .unwrap();
    fetch(&app, req)
        .await
        .assert_login_redirect(Refusal::Missing, "/account");
}

#[tokio::test]
async fn fetch_metadata_decides_over_accept() {
    let kit = TestKit::new();
    let app = redirecting_app(&kit);
    // A script that asks for HTML is still a script: Sec-Fetch-Mode says so.
    let req = Request::get("/account")
        .header(header::ACCEPT, "text/html")
        .header("sec-fetch-mode", "cors")
        .body(Body::empty())
        .unwrap();
    fetch(&app, req).await.assert_json_refusal(Refusal::Missing);

    // Without fetch metadata, only GET/HEAD count: a POST accepting HTML is no page load.
    let req = Request::post("/account/settings")
        .header(header::ACCEPT, "text/html")
        .body(Body::empty())
        .unwrap();
    fetch(&app, req).await.assert_json_refusal(Refusal::Missing);
}

#[tokio::test]
async fn a_navigation_with_a_dead_cookie_is_redirected_and_the_cookie_cleared() {
    let kit = TestKit::new();
    let app = redirecting_app(&kit);
    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(31 * 60)); // past the idle timeout

    let reply = fetch(&app, navigate("/account", Some(&cookie))).await;
    reply.assert_login_redirect(Refusal::ExpiredIdle, "/account");
    assert_eq!(reply.all_cookies.len(), 1, "{:?}", reply.all_cookies);
    assert_eq!(reply.removals(), 1, "the dead cookie is cleared");
    assert_eq!(reply.all_cookies[0].name, kit.config().cookie().name());

    // A revoked session: the same.
    let kit = TestKit::new();
    let app = redirecting_app(&kit);
    let (token, claims) = kit.mint("bob", ()).unwrap();
    kit.layer::<()>()
        .handle()
        .revoke_session(&claims.sid)
        .unwrap();
    let reply = fetch(&app, navigate("/account", Some(&kit.cookie_header(&token)))).await;
    reply.assert_login_redirect(Refusal::Revoked, "/account");
    assert_eq!(reply.removals(), 1);
}

#[tokio::test]
async fn an_api_call_without_a_session_keeps_the_json_401() {
    let kit = TestKit::new();
    let app = redirecting_app(&kit);
    let reply = fetch(&app, api_call("/api/me", None)).await;
    reply.assert_json_refusal(Refusal::Missing);

    // With a dead cookie: JSON 401, and the cookie still cleared.
    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(31 * 60));
    let reply = fetch(&app, api_call("/api/me", Some(&cookie))).await;
    reply.assert_json_refusal(Refusal::ExpiredIdle);
    assert_eq!(reply.removals(), 1);

    // No Accept header at all (curl): JSON.
    let req = Request::get("/api/me").body(Body::empty()).unwrap();
    fetch(&app, req).await.assert_json_refusal(Refusal::Missing);
}

#[tokio::test]
async fn csrf_and_origin_refusals_are_not_redirected() {
    let kit = TestKit::new();
    let app = redirecting_app(&kit);
    let cookie = kit.cookie("alice");

    // A form posted by a page load (navigate) without the token: 403 JSON, not a login.
    let req = Request::post("/account/settings")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, OWN_ORIGIN)
        .header("sec-fetch-mode", "navigate")
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    reply.assert_json_refusal(Refusal::CsrfMissing);
    assert!(reply.all_cookies.is_empty());

    let req = Request::post("/account/settings")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, OWN_ORIGIN)
        .header("sec-fetch-mode", "navigate")
        .header(header::COOKIE, &cookie)
        .header(CSRF_HEADER, "A".repeat(43))
        .body(Body::empty())
        .unwrap();
    fetch(&app, req)
        .await
        .assert_json_refusal(Refusal::CsrfMismatch);

    let req = Request::post("/account/settings")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, EVIL_ORIGIN)
        .header("sec-fetch-mode", "navigate")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    fetch(&app, req)
        .await
        .assert_json_refusal(Refusal::OriginRejected);
}

#[tokio::test]
async fn a_step_up_refusal_is_not_redirected() {
    let kit = TestKit::new();
    let app = redirecting_app(&kit);
    let cookie = kit.cookie("alice");
    kit.advance(FRESH + Duration::from_secs(60)); // logged in too long ago, still alive

    let reply = fetch(&app, navigate("/sensitive", Some(&cookie))).await;
    reply.assert_json_refusal(Refusal::ReauthRequired);
    assert_eq!(reply.json()["error"]["max_age"], 300);
    assert!(
        reply.all_cookies.iter().all(|c| !c.is_removal()),
        "the session stays valid"
    );
}

#[tokio::test]
async fn require_session_refusals_are_redirected_too() {
    let kit = TestKit::new();
    let layer = kit
        .layer::<()>()
        .require_session()
        .on_refusal(LoginRedirect::to("/login"));
    // Pages that do not extract the session: the layer refuses before them.
    let app = Router::new()
        .route("/members", get(|| async { "members only" }))
        .layer(layer);

    fetch(&app, navigate("/members?page=3", None))
        .await
        .assert_login_redirect(Refusal::Missing, "/members?page=3");
    fetch(&app, old_browser_navigate("/members", None))
        .await
        .assert_login_redirect(Refusal::Missing, "/members");

    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(31 * 60));
    let reply = fetch(&app, navigate("/members", Some(&cookie))).await;
    reply.assert_login_redirect(Refusal::ExpiredIdle, "/members");
    assert_eq!(reply.removals(), 1);

    fetch(&app, api_call("/members", None))
        .await
        .assert_json_refusal(Refusal::Missing);
}

#[tokio::test]
async fn a_custom_responder_is_used_and_keeps_the_removal_cookie_and_no_store() {
    let kit = TestKit::new();
    let page = |ctx: &RefusalContext<'_>| -> Option<Response<String>> {
        if !(ctx.navigation && ctx.refusal.status() == StatusCode::UNAUTHORIZED) {
            return None;
        }
        let mut res = Response::new(format!(
            "<h1>Please log in</h1><p>{}</p>",
            ctx.refusal.code()
        ));
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // Whatever the responder says, a refusal is never cached.
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=600"),
        );
        res.headers_mut()
            .insert("x-page", HeaderValue::from_static("login-needed"));
        Some(res)
    };
    let app = routes().layer(kit.layer::<()>().on_refusal(page));

    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(31 * 60));
    let reply = fetch(&app, navigate("/account", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.text(),
        "<h1>Please log in</h1><p>session_expired_idle</p>"
    );
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(reply.headers["x-page"], "login-needed");
    let cache: Vec<_> = reply
        .headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .collect();
    assert_eq!(cache, ["no-store"]);
    assert_eq!(reply.removals(), 1, "{:?}", reply.all_cookies);
    assert_eq!(reply.refusal, Some(Refusal::ExpiredIdle));

    // Where it returns None: the default JSON.
    fetch(&app, api_call("/api/me", None))
        .await
        .assert_json_refusal(Refusal::Missing);
}

#[tokio::test]
async fn a_custom_responder_behind_require_session_keeps_the_removal_cookie() {
    let kit = TestKit::new();
    let html = |ctx: &RefusalContext<'_>| {
        let mut res = Response::new(format!("<p>{}</p>", ctx.refusal.code()));
        *res.status_mut() = ctx.refusal.status();
        Some(res)
    };
    let app = Router::new()
        .route("/members", get(|| async { "members only" }))
        .layer(kit.layer::<()>().require_session().on_refusal(html));
    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(9 * 3600)); // past the absolute timeout
    let reply = fetch(&app, api_call("/members", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.text(), "<p>session_expired_absolute</p>");
    assert_eq!(reply.removals(), 1);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.refusal, Some(Refusal::ExpiredAbsolute));
}

#[tokio::test]
async fn a_responder_sees_the_refusal_the_method_the_path_and_whether_it_is_a_navigation() {
    type Seen = (Refusal, bool, String, Method);
    let kit = TestKit::new();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let spy = move |ctx: &RefusalContext<'_>| -> Option<Response<String>> {
        log.lock().unwrap().push((
            ctx.refusal,
            ctx.navigation,
            ctx.path_and_query.to_owned(),
            ctx.method.clone(),
        ));
        None
    };
    let app = routes().layer(kit.layer::<()>().on_refusal(spy));
    let cookie = kit.cookie("alice");

    fetch(&app, navigate("/account?x=1", None)).await;
    let req = Request::post("/account/settings?from=menu")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    reply.assert_json_refusal(Refusal::CsrfMissing);
    fetch(&app, api_call("/api/me", None)).await;
    // A success is no refusal: the responder is not asked.
    fetch(&app, api_call("/api/me", Some(&cookie))).await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (Refusal::Missing, true, "/account?x=1".into(), Method::GET),
            (
                Refusal::CsrfMissing,
                false,
                "/account/settings?from=menu".into(),
                Method::POST
            ),
            (Refusal::Missing, false, "/api/me".into(), Method::GET),
        ]
    );
}

#[tokio::test]
async fn a_login_url_with_its_own_query_gets_next_as_another_parameter() {
    let kit = TestKit::new();
    let app = routes().layer(
        kit.layer::<()>()
            .on_refusal(LoginRedirect::to("/login?lang=de")),
    );
    let reply = fetch(&app, navigate("/account", None)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.location(),
        Some("/login?lang=de&next=%2Faccount"),
        "a second '?' would make `next` part of `lang`"
    );
}

#[tokio::test]
async fn a_double_slash_request_path_never_gives_a_next_to_another_host() {
    // `GET //evil.example/x` is a valid request whose path looks like another host: the
    // redirect's `next` is `/` instead (and `safe_next` would refuse the path anyway).
    let kit = TestKit::new();
    let app = Router::new()
        .route("/members", get(|| async { "members only" }))
        .layer(
            kit.layer::<()>()
                .require_session()
                .on_refusal(LoginRedirect::to("/login")),
        );
    let reply = fetch(&app, navigate("//evil.example/x", None)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let next = reply.next().unwrap();
    assert_eq!(next, "/");
    assert_eq!(safe_next("//evil.example/x"), None);
}

#[tokio::test]
async fn a_layer_without_a_responder_keeps_json_for_navigations() {
    let kit = TestKit::new();
    let app = routes().layer(SessionLayer::<()>::new(
        kit.config().clone(),
        kit.store().clone(),
    ));
    fetch(&app, navigate("/account", None))
        .await
        .assert_json_refusal(Refusal::Missing);
}

// ---------------------------------------------------------------------------------------
// safe_next
// ---------------------------------------------------------------------------------------

#[test]
fn safe_next_accepts_paths_of_this_origin() {
    for next in [
        "/",
        "/account",
        "/account?x=1",
        "/a/b/c?d=e&f=g#h",
        "/search?q=a%20b",
        "/@user",
        "/.well-known/x",
    ] {
        assert_eq!(safe_next(next), Some(next), "{next:?}");
    }
}

#[test]
fn safe_next_refuses_other_hosts_and_schemes() {
    for next in [
        "//evil.example",
        "//evil.example/account",
        "///evil.example",
        "https://evil.example",
        "http://evil.example/account",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "account",
        "",
        "?next=/x",
        "#/x",
    ] {
        assert_eq!(safe_next(next), None, "{next:?}");
    }
}

#[test]
fn safe_next_refuses_backslashes_which_browsers_read_as_slashes() {
    for next in [
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "/account\\..\\x",
    ] {
        assert_eq!(safe_next(next), None, "{next:?}");
    }
}

#[test]
fn safe_next_accepts_a_percent_encoded_backslash_as_a_plain_path() {
    // Decision: `%5C` is not decoded by a browser resolving a `Location` path, so
    // `/%5Cevil.example` stays on this origin (the path `/%5Cevil.example`); it is a
    // path like any other, not a host.
    assert_eq!(safe_next("/%5Cevil"), Some("/%5Cevil"));
    assert_eq!(safe_next("/%5cevil.example"), Some("/%5cevil.example"));
    assert_eq!(
        safe_next("/%2F%2Fevil.example"),
        Some("/%2F%2Fevil.example")
    );
}

#[test]
fn safe_next_refuses_control_characters_whitespace_and_non_ascii() {
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\nSet-Cookie: x=1",
        "/\0",
        "/\u{7f}",
        "/a b",
        "/caf\u{e9}",
        "/\u{3000}evil",
        "/\u{ff0f}evil.example",
    ] {
        assert_eq!(safe_next(next), None, "{next:?}");
    }
}

#[test]
fn safe_next_refuses_more_than_2_kib() {
    let longest = format!("/{}", "a".repeat(2047));
    assert_eq!(safe_next(&longest), Some(longest.as_str()));
    let over = format!("{longest}a");
    assert_eq!(safe_next(&over), None);
}
