//! Server-rendered apps (issue 12), part 3: the session layer in a real middleware stack.
//! The same layer applied twice (the whole app, then a protected router) — one
//! verification, one `Set-Cookie`, and the inner application's own options; an extractor
//! of another data type than the layer's; `SessionLayer::session_routes`; and the README's
//! tower-http recipe (`TraceLayer`, `CorsLayer` with `EXPOSE_HEADERS`, then the session
//! layer). Through the public API only; in process, with the test kit's manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderValue, Method, Request, StatusCode, header};
use jwt_session::TokenFacts;
use jwt_session::testing::TestKit;
use jwt_session::{
    CSRF_HEADER, Clock, EXPIRES_IN_HEADER, EXPOSE_HEADERS, Login, LoginRedirect, Logout,
    MemoryDenylist, Policy, Refusal, RevocationError, RevocationStore, Session, SessionLayer,
    TOKEN_HEADER, Update, session_routes,
};
use serde::{Deserialize, Serialize};
use tower::ServiceBuilder;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

mod support;

use support::harness::{Reply, fetch, to_site};

const HOST: &str = "api.example.com";
const OWN_ORIGIN: &str = "https://api.example.com";
/// The single-page front end, served from another origin of the same site.
const FRONT_END: &str = "https://app.example.com";

// ---------------------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------------------

impl Reply {
    /// Every value of a (possibly repeated, comma-separated) header, lowercased.
    fn list(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(','))
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

fn get_req(uri: &str, cookie: Option<&str>) -> Request<Body> {
    to_site(Method::GET, HOST, uri, cookie)
        .body(Body::empty())
        .unwrap()
}

fn post_req(uri: &str, cookie: &str, csrf: &str) -> Request<Body> {
    to_site(Method::POST, HOST, uri, Some(cookie))
        .header(header::ORIGIN, OWN_ORIGIN)
        .header(CSRF_HEADER, csrf)
        .body(Body::empty())
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// A revocation store that counts the checks
// ---------------------------------------------------------------------------------------

/// The kit's memory store, counting `is_revoked` calls: one per verification (and one
/// per reissue, which re-checks revocation).
struct Counting {
    inner: Arc<MemoryDenylist>,
    checks: AtomicUsize,
}

impl Counting {
    fn new(kit: &TestKit) -> Arc<Self> {
        Arc::new(Self {
            inner: kit.store().clone(),
            checks: AtomicUsize::new(0),
        })
    }

    fn take(&self) -> usize {
        self.checks.swap(0, Ordering::SeqCst)
    }
}

impl RevocationStore for Counting {
    fn revoke_session(
        &self,
        sid: &str,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        self.inner.revoke_session(sid, auth_time, policy, clock)
    }
    fn revoke_subject(
        &self,
        sub: &str,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<i64, RevocationError> {
        self.inner.revoke_subject(sub, policy, clock)
    }
    fn retire_generations(
        &self,
        sid: &str,
        generation: u32,
        auth_time: i64,
        policy: &Policy,
        clock: &dyn Clock,
    ) -> Result<(), RevocationError> {
        self.inner
            .retire_generations(sid, generation, auth_time, policy, clock)
    }
    fn is_revoked(&self, token: TokenFacts<'_>) -> Result<bool, RevocationError> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.is_revoked(token)
    }
    fn subject_revoked_at(&self, sub: &str) -> Option<i64> {
        self.inner.subject_revoked_at(sub)
    }
    fn sweep(&self, now: i64) -> usize {
        self.inner.sweep(now)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

// ---------------------------------------------------------------------------------------
// The same layer twice
// ---------------------------------------------------------------------------------------

/// Routes that work with or without a session, and protected ones (the session is
/// extracted by some, not by `/members/static`).
fn protected_routes() -> Router {
    Router::new()
        .route(
            "/members/account",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .route("/members/logout", post(|_: Session| async { Logout }))
        .route("/members/static", get(|| async { "members only" }))
}

fn public_routes() -> Router {
    Router::new().route(
        "/public",
        get(|s: Option<Session>| async move {
            s.map_or_else(|| "guest".to_owned(), |s| s.subject().to_owned())
        }),
    )
}

/// The whole app behind `layer`; the protected routes behind it again, with
/// `require_session()`, as a route layer.
fn twice_route_layer(layer: &SessionLayer) -> Router {
    public_routes()
        .merge(protected_routes().route_layer(layer.clone().require_session()))
        .layer(layer.clone())
}

/// The same, the protected routes nested under `/area` with `.layer(...)`.
fn twice_nested(layer: &SessionLayer) -> Router {
    public_routes()
        .nest(
            "/area",
            protected_routes().layer(layer.clone().require_session()),
        )
        .layer(layer.clone())
}

/// The baseline: every route behind the layer once.
fn once(layer: &SessionLayer) -> Router {
    public_routes()
        .merge(protected_routes())
        .layer(layer.clone())
}

#[tokio::test]
async fn the_same_layer_twice_sets_one_cookie_per_reissue_and_verifies_once() {
    let kit = TestKit::new();
    let store = Counting::new(&kit);
    let layer = SessionLayer::<()>::new(kit.config().clone(), store.clone());
    let (token, _) = kit.mint("alice", ()).unwrap();
    let cookie = kit.cookie_header(&token);

    // The baseline's count of revocation checks, for a request without and with a
    // reissue.
    let single = once(&layer);
    let reply = fetch(&single, get_req("/members/account", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let plain_checks = store.take();
    assert!(plain_checks >= 1);

    for (name, app, path) in [
        ("route_layer", twice_route_layer(&layer), "/members/account"),
        ("nested", twice_nested(&layer), "/area/members/account"),
    ] {
        let reply = fetch(&app, get_req(path, Some(&cookie))).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        assert_eq!(reply.text(), "alice");
        assert_eq!(reply.all_cookies.len(), 0, "{name}: no reissue due yet");
        assert_eq!(store.take(), plain_checks, "{name}: one verification");
        assert_eq!(
            reply.headers.get_all(EXPIRES_IN_HEADER).iter().count(),
            1,
            "{name}: one stamp"
        );
    }

    kit.advance(Duration::from_secs(61)); // past reissue_after
    let reply = fetch(&single, get_req("/members/account", Some(&cookie))).await;
    assert_eq!(reply.issued(), 1);
    let reissue_checks = store.take();

    for (name, app, path) in [
        ("route_layer", twice_route_layer(&layer), "/members/account"),
        ("nested", twice_nested(&layer), "/area/members/account"),
    ] {
        let reply = fetch(&app, get_req(path, Some(&cookie))).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        assert_eq!(
            reply.all_cookies.len(),
            1,
            "{name}: {:?}",
            reply.all_cookies
        );
        assert_eq!(reply.issued(), 1, "{name}: exactly one Set-Cookie");
        assert_eq!(
            store.take(),
            reissue_checks,
            "{name}: one verification, one reissue check"
        );
        assert_eq!(
            reply.headers.get_all(header::CACHE_CONTROL).iter().count(),
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_same_layer_twice_sends_one_removal_cookie_on_logout() {
    for nested in [false, true] {
        let kit = TestKit::new();
        let layer = kit.layer::<()>();
        let (app, prefix) = if nested {
            (twice_nested(&layer), "/area")
        } else {
            (twice_route_layer(&layer), "")
        };
        let (token, claims) = kit.mint("alice", ()).unwrap();
        let cookie = kit.cookie_header(&token);

        let reply = fetch(
            &app,
            post_req(
                &format!("{prefix}/members/logout"),
                &cookie,
                claims.csrf.expose(),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(
            reply.all_cookies.len(),
            1,
            "nested={nested}: {:?}",
            reply.all_cookies
        );
        assert_eq!(reply.removals(), 1);

        let reply = fetch(&app, get_req("/public", Some(&cookie))).await;
        assert_eq!(reply.text(), "guest", "the token is revoked");
        assert_eq!(reply.removals(), 1, "and cleared once");
    }
}

#[tokio::test]
async fn the_same_layer_twice_clears_a_dead_cookie_once() {
    let kit = TestKit::new();
    let layer = kit.layer::<()>();
    let app = twice_route_layer(&layer);
    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(31 * 60));

    let reply = fetch(&app, get_req("/members/account", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.refusal, Some(Refusal::ExpiredIdle));
    assert_eq!(reply.all_cookies.len(), 1, "{:?}", reply.all_cookies);
    assert_eq!(reply.removals(), 1);
}

#[tokio::test]
async fn an_inner_require_session_layer_still_refuses_requests_without_a_session() {
    // The outer layer lets a request without a session through (routes may work either
    // way); the inner `require_session()` must still refuse it before a protected handler
    // that does not extract the session itself.
    let kit = TestKit::new();
    let layer = kit.layer::<()>();
    let mut got = Vec::new();
    for (name, app, path) in [
        ("route_layer", twice_route_layer(&layer), "/members/static"),
        ("nested", twice_nested(&layer), "/area/members/static"),
    ] {
        let reply = fetch(&app, get_req(path, None)).await;
        got.push((name, path, reply.status, reply.refusal, reply.text()));
    }
    for (name, path, status, refusal, _) in &got {
        assert!(
            *status == StatusCode::UNAUTHORIZED && *refusal == Some(Refusal::Missing),
            "{name}: GET {path} without a cookie must be 401 session_missing; got {got:?}"
        );
    }
}

#[tokio::test]
async fn an_inner_require_session_layer_still_refuses_a_dead_cookie() {
    let kit = TestKit::new();
    let layer = kit.layer::<()>();
    let app = twice_route_layer(&layer);
    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(31 * 60));

    let reply = fetch(&app, get_req("/members/static", Some(&cookie))).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "GET /members/static with an expired cookie got {} {:?}",
        reply.status,
        reply.text()
    );
    assert_eq!(reply.refusal, Some(Refusal::ExpiredIdle));
    assert_eq!(reply.removals(), 1, "{:?}", reply.all_cookies);
}

#[tokio::test]
async fn an_inner_layers_refusal_responder_still_answers() {
    // The inner application of the layer has its own responder (login pages for the
    // members' area); the outer one keeps the JSON.
    let kit = TestKit::new();
    let layer = kit.layer::<()>();
    let app = public_routes()
        .merge(
            protected_routes().route_layer(
                layer
                    .clone()
                    .require_session()
                    .on_refusal(LoginRedirect::to("/login")),
            ),
        )
        .layer(layer.clone());
    let req = Request::get("/members/account")
        .header("sec-fetch-mode", "navigate")
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(
        reply.status,
        StatusCode::SEE_OTHER,
        "got {} {:?}",
        reply.status,
        reply.text()
    );
    assert_eq!(
        reply.headers[header::LOCATION],
        "/login?next=%2Fmembers%2Faccount"
    );
}

#[tokio::test]
async fn an_inner_require_session_layer_lets_a_valid_session_through_once() {
    let kit = TestKit::new();
    let layer = kit.layer::<()>();
    let app = twice_route_layer(&layer);
    let cookie = kit.cookie("alice");
    let reply = fetch(&app, get_req("/members/static", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "members only");
    assert_eq!(reply.headers.get_all(EXPIRES_IN_HEADER).iter().count(), 1);
}

// ---------------------------------------------------------------------------------------
// Data types: the extractor's and the layer's
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct UserData {
    role: String,
}

#[tokio::test]
async fn a_session_of_another_data_type_than_the_layers_is_a_500_naming_both_types() {
    let kit = TestKit::new();
    let app = Router::new()
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(kit.layer::<UserData>());
    let (token, _) = kit
        .mint(
            "alice",
            UserData {
                role: "admin".into(),
            },
        )
        .unwrap();
    let reply = fetch(&app, get_req("/me", Some(&kit.cookie_header(&token)))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.code(), "session_data_type_mismatch");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("SessionLayer<stack::UserData>"),
        "names the layer's type: {message}"
    );
    assert!(
        message.contains("Session<()>"),
        "names the extractor's type: {message}"
    );
    assert!(message.contains("session_routes"), "says how: {message}");

    // Without a cookie too: it is the route that is wrong, not the request.
    let reply = fetch(&app, get_req("/me", None)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.code(), "session_data_type_mismatch");

    // `Option<Session>` does not hide the bug as "no session".
    let app = Router::new()
        .route(
            "/maybe",
            get(|s: Option<Session>| async move { format!("{}", s.is_some()) }),
        )
        .layer(kit.layer::<UserData>());
    let reply = fetch(&app, get_req("/maybe", None)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.code(), "session_data_type_mismatch");
}

#[tokio::test]
async fn a_route_without_any_layer_is_a_500_session_layer_missing() {
    let app = Router::new().route(
        "/me",
        get(|s: Session| async move { s.subject().to_owned() }),
    );
    let reply = fetch(&app, get_req("/me", None)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.code(), "session_layer_missing");
    assert!(
        !reply.text().contains("data type"),
        "no mismatch is claimed: {}",
        reply.text()
    );
}

#[tokio::test]
async fn the_layers_own_session_routes_work() {
    let kit = TestKit::new();
    let layer = kit.layer::<UserData>();
    let app = Router::new()
        .merge(layer.session_routes())
        .layer(layer.clone());
    let (token, claims) = kit
        .mint(
            "alice",
            UserData {
                role: "editor".into(),
            },
        )
        .unwrap();
    let cookie = kit.cookie_header(&token);

    let reply = fetch(&app, get_req("/session", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["sub"], "alice");
    assert_eq!(reply.json()["csrf"], claims.csrf.expose());

    let reply = fetch(
        &app,
        post_req("/session/refresh", &cookie, claims.csrf.expose()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.issued(), 1);

    let reply = fetch(
        &app,
        post_req("/session/logout", &cookie, claims.csrf.expose()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.removals(), 1);

    // The free function with the wrong type behind this layer: the 500 that names it.
    let wrong = Router::new().merge(session_routes::<(), ()>()).layer(layer);
    let (token, _) = kit.mint("bob", UserData::default()).unwrap();
    let reply = fetch(
        &wrong,
        get_req("/session", Some(&kit.cookie_header(&token))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.code(), "session_data_type_mismatch");
}

#[tokio::test]
async fn a_login_or_update_part_of_another_data_type_is_a_500_naming_both_types() {
    let kit = TestKit::new();
    // `Login<UserData>` behind `SessionLayer<()>`: the layer cannot see the part (response
    // extensions are keyed by type), so it must not answer as if nothing was asked.
    let app = Router::new()
        .route(
            "/login",
            post(|| async { Login::new("alice", UserData::default()).unwrap() }),
        )
        .layer(kit.layer::<()>());
    let req = to_site(Method::POST, HOST, "/login", None)
        .header(header::ORIGIN, OWN_ORIGIN)
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.text()
    );
    assert_eq!(reply.code(), "session_data_type_mismatch");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("SessionLayer<()>"),
        "names the layer's type: {message}"
    );
    assert!(
        message.contains("Login<stack::UserData>"),
        "names the part's type: {message}"
    );
    assert_eq!(reply.issued(), 0, "no session was started");

    // `Update<()>` behind `SessionLayer<UserData>`: 500, the token is not reissued.
    let app = Router::new()
        .route(
            "/profile",
            post(|_: Session<UserData>| async { Update::new(()) }),
        )
        .layer(kit.layer::<UserData>());
    let (token, claims) = kit.mint("alice", UserData::default()).unwrap();
    let reply = fetch(
        &app,
        post_req("/profile", &kit.cookie_header(&token), claims.csrf.expose()),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.text()
    );
    assert_eq!(reply.code(), "session_data_type_mismatch");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("SessionLayer<stack::UserData>"),
        "{message}"
    );
    assert!(message.contains("Update<()>"), "{message}");
    assert_eq!(reply.issued(), 0, "the session was not changed");

    // The same parts of the layer's type work.
    let app = Router::new()
        .route(
            "/login",
            post(|| async {
                Login::new(
                    "alice",
                    UserData {
                        role: "admin".into(),
                    },
                )
                .unwrap()
            }),
        )
        .layer(kit.layer::<UserData>());
    let req = to_site(Method::POST, HOST, "/login", None)
        .header(header::ORIGIN, OWN_ORIGIN)
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.issued(), 1);
}

#[tokio::test]
async fn the_kits_cookie_is_unit_data_and_cookie_with_carries_the_apps_data() {
    let kit = TestKit::new();
    let app = Router::new()
        .route(
            "/role",
            get(|s: Session<UserData>| async move { s.data().role.clone() }),
        )
        .layer(kit.layer::<UserData>());

    // `kit.cookie` mints `()` (`"dat": null`): not a `UserData`.
    let reply = fetch(&app, get_req("/role", Some(&kit.cookie("alice")))).await;
    reply.assert_refused(Refusal::DataInvalid);

    // `kit.cookie_with` mints the layer's data type: accepted, the handler sees the data.
    let cookie = kit.cookie_with(
        "alice",
        UserData {
            role: "editor".into(),
        },
    );
    let reply = fetch(&app, get_req("/role", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "editor");

    // And the `TestClient` with the same data, for requests that need the CSRF token.
    let mut browser = kit.client(app);
    browser.login_as(
        "bob",
        UserData {
            role: "viewer".into(),
        },
    );
    assert_eq!(browser.get("/role").send().await.text(), "viewer");
}

// ---------------------------------------------------------------------------------------
// tower-http: TraceLayer, CorsLayer, then the session layer
// ---------------------------------------------------------------------------------------

/// The README recipe: outermost first, the session layer innermost.
fn cors_app(kit: &TestKit) -> Router {
    let session_layer = kit.layer::<()>().require_session();
    Router::new()
        .route(
            "/api/me",
            get(|s: Session| async move { Json(s.subject().to_owned()) }),
        )
        .route(
            "/api/notes",
            post(|s: Session| async move { s.subject().to_owned() }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(
                    CorsLayer::new()
                        .allow_origin(HeaderValue::from_static(FRONT_END))
                        .allow_credentials(true)
                        .allow_methods([Method::GET, Method::POST])
                        .allow_headers([header::CONTENT_TYPE, CSRF_HEADER.parse().unwrap()])
                        .expose_headers(EXPOSE_HEADERS),
                )
                .layer(session_layer),
        )
}

fn cross_origin_get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(uri)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, FRONT_END)
        .header("sec-fetch-site", "same-site")
        .header("sec-fetch-mode", "cors");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_cross_origin_get_refused_by_the_session_layer_still_carries_the_cors_headers() {
    let kit = TestKit::new();
    let app = cors_app(&kit);

    let reply = fetch(&app, cross_origin_get("/api/me", None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "session_missing");
    assert_eq!(reply.refusal, Some(Refusal::Missing));
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        FRONT_END,
        "the front end can read the refusal"
    );
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );

    // A dead cookie: the same, with its removal.
    let cookie = kit.cookie("alice");
    kit.advance(Duration::from_secs(31 * 60));
    let reply = fetch(&app, cross_origin_get("/api/me", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.refusal, Some(Refusal::ExpiredIdle));
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        FRONT_END
    );
    assert_eq!(reply.removals(), 1);
}

#[tokio::test]
async fn a_successful_cross_origin_response_exposes_the_session_headers() {
    let kit = TestKit::new();
    let app = cors_app(&kit);
    let cookie = kit.cookie("alice");

    let reply = fetch(&app, cross_origin_get("/api/me", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), "alice");
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        FRONT_END
    );
    assert!(reply.headers.contains_key(EXPIRES_IN_HEADER));
    let exposed = reply.list("access-control-expose-headers");
    assert!(
        exposed.contains(&EXPIRES_IN_HEADER.to_owned()),
        "{exposed:?}"
    );
    assert!(exposed.contains(&TOKEN_HEADER.to_owned()), "{exposed:?}");
}

#[tokio::test]
async fn a_preflight_is_answered_by_cors_before_the_session_layer() {
    // A preflight carries no cookie: the session layer (require_session) must not see it.
    let kit = TestKit::new();
    let app = cors_app(&kit);
    let req = Request::options("/api/notes")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, FRONT_END)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "x-csrf-token")
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.refusal, None);
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        FRONT_END
    );
    assert!(
        reply
            .list("access-control-allow-headers")
            .contains(&"x-csrf-token".to_owned())
    );
}

#[tokio::test]
async fn a_cross_origin_post_from_an_untrusted_front_end_is_refused_with_cors_headers() {
    // CORS lets the front end read the answer; the session layer still decides: the
    // front end's origin is not trusted for unsafe requests unless configured.
    let kit = TestKit::new();
    let app = cors_app(&kit);
    let (token, claims) = kit.mint("alice", ()).unwrap();
    let req = Request::post("/api/notes")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, FRONT_END)
        .header("sec-fetch-site", "same-site")
        .header(header::COOKIE, kit.cookie_header(&token))
        .header(CSRF_HEADER, claims.csrf.expose())
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(reply.refusal, Some(Refusal::OriginRejected));
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        FRONT_END
    );

    // Trusted: it passes.
    let kit = TestKit::configure(|b| b.trusted_origin(FRONT_END)).unwrap();
    let app = cors_app(&kit);
    let (token, claims) = kit.mint("alice", ()).unwrap();
    let req = Request::post("/api/notes")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, FRONT_END)
        .header("sec-fetch-site", "same-site")
        .header(header::COOKIE, kit.cookie_header(&token))
        .header(CSRF_HEADER, claims.csrf.expose())
        .body(Body::empty())
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
