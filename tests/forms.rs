//! Server-rendered apps (issue 12), part 1: the CSRF token of HTML forms
//! (`SessionLayer::with_forms` / `form_csrf`) and the `TestClient`, through the public API
//! only, one test per promise and per refusal. Everything runs in process with `oneshot`
//! (or the `TestClient`) and the test kit's manual clock: no sleeping, no sockets.
//!
//! The refusal responders (`on_refusal`, `LoginRedirect`, `safe_next`) are in
//! `tests/refusal_pages.rs`, the layer in a real middleware stack in `tests/stack.rs` and
//! the settings from the environment in `tests/env_settings.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Form, Multipart};
use axum::response::Html;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use jwt_session::testing::TestKit;
use jwt_session::{
    CSRF_HEADER, Login, Logout, Refusal, Session, SessionContext, proves_same_origin,
};
use serde::Deserialize;
use serde_json::{Value, json};
mod support;

use support::harness::{Reply, fetch, to_site};

// ---------------------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------------------

/// The site's own host and origin (the kit's cookies are `Secure`, so the site is https).
const HOST: &str = "app.example";
const OWN_ORIGIN: &str = "https://app.example";
const EVIL_ORIGIN: &str = "https://evil.example";

const URLENCODED: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "----jwt-session-test-boundary-7MA4YWxk";

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

impl Reply {
    /// An error answered by the form layer (no session refusal involved).
    #[track_caller]
    fn assert_form_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.code(), code, "{}", self.text());
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/json",
            "the form layer answers with the crate's JSON error body"
        );
    }
}

/// A browser's session: its `Cookie` header and the CSRF token its pages embed.
struct Browser {
    cookie: String,
    csrf: String,
}

fn login(kit: &TestKit, sub: &str) -> Browser {
    let (token, claims) = kit.mint(sub, ()).unwrap();
    Browser {
        cookie: kit.cookie_header(&token),
        csrf: claims.csrf.expose().to_owned(),
    }
}

/// A same-origin `POST` as a browser sends it from one of the site's pages, with the
/// session cookie when `browser` is given.
fn post_to(uri: &str, browser: Option<&Browser>, content_type: &str) -> http::request::Builder {
    to_site(Method::POST, HOST, uri, browser.map(|b| b.cookie.as_str()))
        .header(header::ORIGIN, OWN_ORIGIN)
        .header(header::CONTENT_TYPE, content_type)
}

/// `post_to(...)` with its body, as a request.
fn form_request(
    uri: &str,
    browser: Option<&Browser>,
    content_type: &str,
    body: impl Into<Body>,
) -> Request<Body> {
    post_to(uri, browser, content_type)
        .body(body.into())
        .unwrap()
}

/// A `multipart/form-data` body: `(name, file name, bytes)` per part.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file_name {
            Some(file_name) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `key=value&…`, percent-encoded as a browser does.
fn urlencoded(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

// ---------------------------------------------------------------------------------------
// The app under test
// ---------------------------------------------------------------------------------------

/// How many times handlers ran.
#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
}

/// Handlers that echo what they received: the raw bytes, the decoded form fields, the
/// multipart parts. A login form, and a page that renders the CSRF field.
fn routes(hits: &Hits) -> Router {
    let (h1, h2, h3, h4) = (hits.clone(), hits.clone(), hits.clone(), hits.clone());
    Router::new()
        .route(
            "/echo/bytes",
            post(
                move |session: Option<Session>, headers: HeaderMap, body: Bytes| async move {
                    h1.hit();
                    let who = session.map_or_else(String::new, |s| s.subject().to_owned());
                    let header_sent = headers.contains_key(CSRF_HEADER).to_string();
                    (
                        [("x-subject", who), ("x-csrf-header-sent", header_sent)],
                        body,
                    )
                },
            ),
        )
        .route(
            "/echo/form",
            post(
                move |_: Session, Form(fields): Form<Vec<(String, String)>>| async move {
                    h2.hit();
                    Json(fields)
                },
            ),
        )
        .route(
            "/echo/multipart",
            post(move |_: Session, mut form: Multipart| async move {
                h3.hit();
                let mut parts = Vec::new();
                while let Some(field) = form.next_field().await.unwrap() {
                    let name = field.name().unwrap_or_default().to_owned();
                    let file_name = field.file_name().map(str::to_owned);
                    let bytes = field.bytes().await.unwrap().to_vec();
                    parts.push(json!({ "name": name, "file_name": file_name, "bytes": bytes }));
                }
                Json(parts)
            }),
        )
        .route(
            "/login",
            post(move |Form(form): Form<LoginForm>| async move {
                h4.hit();
                (Login::new(form.user, ()).unwrap(), "welcome")
            }),
        )
        .route(
            "/notes/new",
            get(|s: Session| async move {
                Html(format!(
                    "<form method=\"post\" action=\"/echo/form\">{}\
                     <input name=\"title\"><button>Save</button></form>",
                    s.csrf_input()
                ))
            }),
        )
}

/// The routes behind `SessionLayer::with_forms()` (default 64 KiB read limit).
fn forms_app(kit: &TestKit, hits: &Hits) -> Router {
    routes(hits).layer(kit.layer::<()>().with_forms())
}

/// The routes behind the session layer and, outside it, `form_csrf().limit(limit)`.
fn limited_app(kit: &TestKit, hits: &Hits, limit: usize) -> Router {
    let session = kit.layer::<()>();
    let forms = session.form_csrf().limit(limit);
    routes(hits).layer(session).layer(forms)
}

// ---------------------------------------------------------------------------------------
// Form CSRF: the token in the `csrf_token` field passes, and the body stays whole
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn urlencoded_form_with_the_right_csrf_field_passes_and_the_handler_gets_the_whole_body() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let body = urlencoded(&[
        ("title", "Hello world"),
        ("csrf_token", &alice.csrf),
        ("note", "a&b=c; ünïcode ✓"),
    ]);

    // The raw bytes reach the handler unchanged.
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, body.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
    assert_eq!(reply.headers["x-subject"], "alice");
    assert_eq!(reply.headers["x-csrf-header-sent"], "false");

    // And axum's `Form` decodes every field, the token's included.
    let reply = fetch(
        &app,
        form_request("/echo/form", Some(&alice), URLENCODED, body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!([
            ["title", "Hello world"],
            ["csrf_token", alice.csrf],
            ["note", "a&b=c; ünïcode ✓"]
        ])
    );
    assert_eq!(hits.count(), 2);
}

#[tokio::test]
async fn urlencoded_form_with_a_charset_parameter_is_read_too() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let body = urlencoded(&[("csrf_token", &alice.csrf), ("title", "x")]);
    let reply = fetch(
        &app,
        form_request(
            "/echo/bytes",
            Some(&alice),
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            body.clone(),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
}

#[tokio::test]
async fn multipart_form_with_the_right_csrf_field_passes_and_the_handler_gets_every_part() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    // A file of every byte value (not UTF-8) after the token, so nothing may be decoded
    // or dropped on the way.
    let file: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let body = multipart(&[
        ("title", None, "Quarterly report".as_bytes()),
        ("csrf_token", None, alice.csrf.as_bytes()),
        ("attachment", Some("report.bin"), &file),
    ]);

    let reply = fetch(
        &app,
        form_request(
            "/echo/multipart",
            Some(&alice),
            &multipart_type(),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!([
            { "name": "title", "file_name": null, "bytes": b"Quarterly report".to_vec() },
            { "name": "csrf_token", "file_name": null, "bytes": alice.csrf.as_bytes().to_vec() },
            { "name": "attachment", "file_name": "report.bin", "bytes": file },
        ])
    );

    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), &multipart_type(), body.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.body, body,
        "the multipart body reaches the handler byte for byte"
    );
    assert_eq!(hits.count(), 2);
}

#[tokio::test]
async fn the_hidden_field_a_page_renders_is_the_one_its_form_posts_back() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");

    let page = fetch(
        &app,
        Request::get("/notes/new")
            .header(header::COOKIE, &alice.cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let expected = format!(
        r#"<input type="hidden" name="csrf_token" value="{}">"#,
        alice.csrf
    );
    assert!(html.contains(&expected), "{html}");

    // The browser posts the form back with the field it rendered.
    let value = html
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let body = urlencoded(&[("csrf_token", value), ("title", "from the page")]);
    let reply = fetch(
        &app,
        form_request("/echo/form", Some(&alice), URLENCODED, body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()[1], json!(["title", "from the page"]));
}

// ---------------------------------------------------------------------------------------
// Form CSRF: refusals
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn form_post_without_the_csrf_field_is_refused_csrf_missing() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");

    let body = urlencoded(&[("title", "no token")]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, body),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMissing);

    let body = multipart(&[("title", None, b"no token")]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), &multipart_type(), body),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMissing);

    // An empty body with a form content type.
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, ""),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMissing);
    assert_eq!(hits.count(), 0, "no handler ran");
}

#[tokio::test]
async fn form_post_with_the_csrf_field_of_another_session_is_refused_csrf_mismatch() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let mallory = login(&kit, "mallory");

    let body = urlencoded(&[("csrf_token", &mallory.csrf), ("title", "x")]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, body),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMismatch);

    let body = multipart(&[("csrf_token", None, mallory.csrf.as_bytes())]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), &multipart_type(), body),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMismatch);

    // Alice's own token with one character changed, and a prefix of it.
    let mut altered = alice.csrf.clone().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for wrong in [altered.as_str(), &alice.csrf[..20]] {
        let body = urlencoded(&[("csrf_token", wrong)]);
        let reply = fetch(
            &app,
            form_request("/echo/bytes", Some(&alice), URLENCODED, body),
        )
        .await;
        reply.assert_refused(Refusal::CsrfMismatch);
    }
    assert_eq!(hits.count(), 0, "no handler ran");
    // A CSRF refusal does not end the session: no cookie is cleared.
    assert!(
        fetch(
            &app,
            form_request(
                "/echo/bytes",
                Some(&alice),
                URLENCODED,
                urlencoded(&[("csrf_token", &mallory.csrf)])
            )
        )
        .await
        .all_cookies
        .is_empty()
    );
}

#[tokio::test]
async fn form_post_with_an_empty_csrf_field_is_refused_csrf_missing() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");

    for body in ["csrf_token=", "csrf_token=&title=x", "title=x&csrf_token"] {
        let reply = fetch(
            &app,
            form_request("/echo/bytes", Some(&alice), URLENCODED, body),
        )
        .await;
        reply.assert_refused(Refusal::CsrfMissing);
    }
    let body = multipart(&[("csrf_token", None, b""), ("title", None, b"x")]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), &multipart_type(), body),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMissing);
    assert_eq!(hits.count(), 0, "no handler ran");
}

#[tokio::test]
async fn form_body_over_the_read_limit_is_413_form_too_large_and_never_reaches_the_handler() {
    const LIMIT: usize = 256;
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = limited_app(&kit, &hits, LIMIT);
    let alice = login(&kit, "alice");

    // The token comes first: the layer must still not hand on a half-read body.
    let head = format!("csrf_token={}&pad=", alice.csrf);
    let exactly = format!("{head}{}", "x".repeat(LIMIT - head.len()));
    assert_eq!(exactly.len(), LIMIT);
    let over = format!("{exactly}x");

    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, over),
    )
    .await;
    reply.assert_form_error(StatusCode::PAYLOAD_TOO_LARGE, "form_too_large");
    assert_eq!(reply.refusal, None, "not a session refusal");

    let file = vec![b'z'; LIMIT];
    let body = multipart(&[
        ("csrf_token", None, alice.csrf.as_bytes()),
        ("f", Some("big.bin"), &file),
    ]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), &multipart_type(), body),
    )
    .await;
    reply.assert_form_error(StatusCode::PAYLOAD_TOO_LARGE, "form_too_large");
    assert_eq!(hits.count(), 0, "the handler never ran");

    // A form of exactly the limit is read and passes.
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, exactly.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, exactly.as_bytes());
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn the_default_read_limit_is_64_kib() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let head = format!("csrf_token={}&pad=", alice.csrf);
    let exactly = format!("{head}{}", "x".repeat(64 * 1024 - head.len()));

    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, exactly.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body.len(), 64 * 1024);

    let reply = fetch(
        &app,
        form_request(
            "/echo/bytes",
            Some(&alice),
            URLENCODED,
            format!("{exactly}x"),
        ),
    )
    .await;
    reply.assert_form_error(StatusCode::PAYLOAD_TOO_LARGE, "form_too_large");
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn malformed_multipart_body_is_400_form_unreadable_and_never_reaches_the_handler() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");

    let unterminated = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{}",
        alice.csrf
    );
    let no_headers_end = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"{}",
        alice.csrf
    );
    // A well-formed token part, then a part that is cut off: read to the end, refused.
    let mut token_then_truncated = multipart(&[("csrf_token", None, alice.csrf.as_bytes())]);
    token_then_truncated.truncate(token_then_truncated.len() - format!("--{BOUNDARY}--\r\n").len());
    token_then_truncated.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nabc").as_bytes(),
    );
    for body in [
        unterminated.into_bytes(),
        no_headers_end.into_bytes(),
        token_then_truncated,
        b"this is not multipart at all".to_vec(),
    ] {
        let reply = fetch(
            &app,
            form_request("/echo/bytes", Some(&alice), &multipart_type(), body.clone()),
        )
        .await;
        reply.assert_form_error(StatusCode::BAD_REQUEST, "form_unreadable");
        assert_eq!(reply.refusal, None, "not a session refusal");
    }
    assert_eq!(hits.count(), 0, "the handler never ran");
}

/// A request body that arrives in `chunks`, then fails if `fail` (a connection reset).
fn streamed(chunks: &[&[u8]], fail: bool) -> Body {
    let mut items: Vec<Result<Bytes, std::io::Error>> = chunks
        .iter()
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    if fail {
        items.push(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )));
    }
    Body::from_stream(futures_util::stream::iter(items))
}

#[tokio::test]
async fn a_form_body_that_arrives_in_chunks_is_read_whole() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let body = urlencoded(&[("title", "chunked"), ("csrf_token", &alice.csrf)]);
    // Split in the middle of the token.
    let (a, b) = body.as_bytes().split_at(body.len() - 10);
    let reply = fetch(
        &app,
        form_request(
            "/echo/bytes",
            Some(&alice),
            URLENCODED,
            streamed(&[a, b], false),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
}

#[tokio::test]
async fn a_form_body_that_fails_while_read_is_400_form_unreadable() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let body = urlencoded(&[("csrf_token", &alice.csrf), ("title", "cut")]);
    let reply = fetch(
        &app,
        form_request(
            "/echo/bytes",
            Some(&alice),
            URLENCODED,
            streamed(&[body.as_bytes()], true),
        ),
    )
    .await;
    reply.assert_form_error(StatusCode::BAD_REQUEST, "form_unreadable");
    assert_eq!(hits.count(), 0, "the handler never ran");
}

#[tokio::test]
async fn the_csrf_header_still_works_and_wins_over_the_form_field() {
    const LIMIT: usize = 128;
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = limited_app(&kit, &hits, LIMIT);
    let alice = login(&kit, "alice");
    let mallory = login(&kit, "mallory");
    let with_header = |body: String, token: &str| {
        post_to("/echo/bytes", Some(&alice), URLENCODED)
            .header(CSRF_HEADER, token)
            .body(Body::from(body))
            .unwrap()
    };

    // The header alone.
    let reply = fetch(&app, with_header("title=x".into(), &alice.csrf)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers["x-csrf-header-sent"], "true");

    // A right header and a wrong field: the header decides.
    let body = urlencoded(&[("csrf_token", &mallory.csrf), ("title", "x")]);
    let reply = fetch(&app, with_header(body.clone(), &alice.csrf)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());

    // A wrong header and a right field: the header decides.
    let body = urlencoded(&[("csrf_token", &alice.csrf)]);
    let reply = fetch(&app, with_header(body, &mallory.csrf)).await;
    reply.assert_refused(Refusal::CsrfMismatch);

    // An empty header and a right field: the header (empty, so missing) decides.
    let body = urlencoded(&[("csrf_token", &alice.csrf)]);
    let reply = fetch(&app, with_header(body, "")).await;
    reply.assert_refused(Refusal::CsrfMissing);

    // With the header the body is not read at all: over the limit is no 413.
    let big = format!("title={}", "x".repeat(LIMIT * 4));
    let reply = fetch(&app, with_header(big.clone(), &alice.csrf)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, big.as_bytes());
    assert_eq!(hits.count(), 3);
}

#[tokio::test]
async fn bodies_that_are_not_forms_are_not_read_for_a_csrf_token() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let field = urlencoded(&[("csrf_token", &alice.csrf)]);
    let json_body = json!({ "csrf_token": alice.csrf }).to_string();

    for (content_type, body) in [
        // A JSON body, whatever it looks like, is a script's request: header only.
        ("application/json", json_body),
        ("application/json", field.clone()),
        // `enctype="text/plain"` forms are not read either (fail closed).
        ("text/plain", field.clone()),
        // A multipart type without its boundary cannot be parsed: not read (fail closed).
        ("multipart/form-data", field.clone()),
        (
            "application/x-www-form-urlencoded-but-not-really",
            field.clone(),
        ),
    ] {
        let reply = fetch(
            &app,
            form_request("/echo/bytes", Some(&alice), content_type, body),
        )
        .await;
        reply.assert_refused(Refusal::CsrfMissing);
    }
    // No content type at all.
    let req = Request::post("/echo/bytes")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, OWN_ORIGIN)
        .header(header::COOKIE, &alice.cookie)
        .body(Body::from(field))
        .unwrap();
    fetch(&app, req).await.assert_refused(Refusal::CsrfMissing);
    assert_eq!(hits.count(), 0);
}

#[tokio::test]
async fn requests_without_a_session_cookie_are_not_buffered() {
    const LIMIT: usize = 128;
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = limited_app(&kit, &hits, LIMIT);

    // A form over the read limit, but no session cookie: handed on untouched (no 413).
    let body = urlencoded(&[("comment", &"y".repeat(LIMIT * 8))]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", None, URLENCODED, body.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.body,
        body.as_bytes(),
        "the handler sees the body as sent"
    );
    assert_eq!(reply.headers["x-subject"], "");

    // A malformed multipart body is not parsed either: the handler gets it.
    let reply = fetch(
        &app,
        form_request("/echo/bytes", None, &multipart_type(), "not multipart"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, "not multipart".as_bytes());

    // A cookie of another name is no session cookie.
    let req = post_to("/echo/bytes", None, URLENCODED)
        .header(header::COOKIE, "theme=dark; lang=en")
        .body(Body::from(body.clone()))
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
    assert_eq!(hits.count(), 3);
}

#[tokio::test]
async fn safe_methods_are_not_read_for_a_csrf_token() {
    const LIMIT: usize = 64;
    let kit = TestKit::new();
    let session = kit.layer::<()>();
    let app = Router::new()
        .route(
            "/search",
            get(|_: Session, body: Bytes| async move { body }),
        )
        .layer(session.clone())
        .layer(session.form_csrf().limit(LIMIT));
    let alice = login(&kit, "alice");
    // A GET with a form body over the limit: not read (no 413), handed on as sent.
    let body = format!("q={}", "x".repeat(LIMIT * 2));
    let req = Request::get("/search")
        .header(header::COOKIE, &alice.cookie)
        .header(header::CONTENT_TYPE, URLENCODED)
        .body(Body::from(body.clone()))
        .unwrap();
    let reply = fetch(&app, req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
}

#[tokio::test]
async fn form_post_from_a_foreign_origin_is_refused_origin_rejected() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let alice = login(&kit, "alice");
    let body = urlencoded(&[("csrf_token", &alice.csrf), ("title", "x")]);

    // Even with the right token (say, leaked): the same-origin check is unchanged.
    let mut req = form_request("/echo/bytes", Some(&alice), URLENCODED, body.clone());
    req.headers_mut()
        .insert(header::ORIGIN, EVIL_ORIGIN.parse().unwrap());
    fetch(&app, req)
        .await
        .assert_refused(Refusal::OriginRejected);

    let req = post_to("/echo/bytes", Some(&alice), URLENCODED)
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(body.clone()))
        .unwrap();
    fetch(&app, req)
        .await
        .assert_refused(Refusal::OriginRejected);

    let mut req = form_request("/echo/bytes", Some(&alice), &multipart_type(), {
        multipart(&[("csrf_token", None, alice.csrf.as_bytes())])
    });
    req.headers_mut()
        .insert(header::ORIGIN, EVIL_ORIGIN.parse().unwrap());
    fetch(&app, req)
        .await
        .assert_refused(Refusal::OriginRejected);
    assert_eq!(hits.count(), 0);
}

#[tokio::test]
async fn a_login_form_without_a_session_is_still_refused_cross_origin() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = forms_app(&kit, &hits);
    let body = urlencoded(&[("user", "alice")]);

    let mut req = form_request("/login", None, URLENCODED, body.clone());
    req.headers_mut()
        .insert(header::ORIGIN, EVIL_ORIGIN.parse().unwrap());
    let reply = fetch(&app, req).await;
    reply.assert_refused(Refusal::OriginRejected);
    assert!(reply.all_cookies.is_empty(), "no session was started");
    assert_eq!(hits.count(), 0);

    // From the site's own page, the login form works.
    let reply = fetch(&app, form_request("/login", None, URLENCODED, body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "welcome");
    let name = kit.config().cookie().name();
    assert!(
        reply
            .all_cookies
            .iter()
            .any(|c| c.name == name && !c.is_removal()),
        "a session cookie was set"
    );
    assert_eq!(hits.count(), 1);
}

/// A login form's handler as the README tells apps to write it: no session (so no CSRF
/// token) yet, so it starts one only with positive proof that the form is the site's own
/// (`proves_same_origin`); without it, 403 and no cookie (login CSRF).
fn checked_login_app(kit: &TestKit, hits: &Hits) -> Router {
    let hits = hits.clone();
    Router::new()
        .route(
            "/login",
            post(
                move |ctx: SessionContext,
                      headers: HeaderMap,
                      uri: Uri,
                      Form(form): Form<LoginForm>| async move {
                    let authority = uri.authority().map(|a| a.as_str());
                    if !proves_same_origin(&headers, authority, ctx.config().origins()) {
                        return (StatusCode::FORBIDDEN, "sign in from this site").into_response();
                    }
                    hits.hit();
                    (Login::new(form.user, ()).unwrap(), "welcome").into_response()
                },
            ),
        )
        .layer(kit.layer::<()>().with_forms())
}

/// A login form post without a session, with `headers` as a browser (or an attacker's
/// page) sends them.
fn login_post(headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder =
        to_site(Method::POST, HOST, "/login", None).header(header::CONTENT_TYPE, URLENCODED);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(urlencoded(&[("user", "mallory")])))
        .unwrap()
}

#[tokio::test]
async fn a_login_handler_checking_proves_same_origin_starts_no_session_from_another_site() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = checked_login_app(&kit, &hits);

    // Marked cross-site: the layer refuses before the handler runs.
    for headers in [
        &[("origin", EVIL_ORIGIN)][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "cross-site"), ("origin", EVIL_ORIGIN)][..],
        &[("origin", "null")][..],
        // Another origin of the same site (a sibling subdomain) is not trusted.
        &[
            ("sec-fetch-site", "same-site"),
            ("origin", "https://blog.app.example"),
        ][..],
        // The right host over the wrong scheme (the kit's cookies are `Secure`: https).
        &[("origin", "http://app.example")][..],
    ] {
        let reply = fetch(&app, login_post(headers)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{headers:?}: {}",
            reply.text()
        );
        assert!(
            reply.all_cookies.is_empty(),
            "{headers:?}: no session was started"
        );
    }
    assert_eq!(hits.count(), 0);

    // Neither header (a page that suppressed them, an old browser, a script): the layer
    // lets it through as a non-browser client, and the handler's check refuses it.
    let reply = fetch(&app, login_post(&[])).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(reply.text(), "sign in from this site");
    assert!(reply.all_cookies.is_empty(), "no session without proof");
    assert_eq!(hits.count(), 0);

    // The site's own form: `Origin` of the site, or `Sec-Fetch-Site: same-origin`.
    let name = kit.config().cookie().name();
    for headers in [
        &[("origin", OWN_ORIGIN)][..],
        &[("sec-fetch-site", "same-origin")][..],
        &[("sec-fetch-site", "same-origin"), ("origin", OWN_ORIGIN)][..],
    ] {
        let reply = fetch(&app, login_post(headers)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{headers:?}: {}",
            reply.text()
        );
        assert_eq!(reply.text(), "welcome");
        assert!(
            reply
                .all_cookies
                .iter()
                .any(|c| c.name == name && !c.is_removal()),
            "{headers:?}: a session cookie was set"
        );
    }
    assert_eq!(hits.count(), 3);
}

#[test]
fn proves_same_origin_needs_positive_proof_of_the_sites_own_origin() {
    let kit = TestKit::configure(|b| b.trusted_origin("https://admin.app.example")).unwrap();
    let policy = kit.config().origins();
    let proves = |headers: &[(&str, &str)], authority: Option<&str>| {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        proves_same_origin(&map, authority, policy)
    };
    let host = ("host", HOST);

    // Proof: the site's own origin (default port normalised), a same-origin fetch, a
    // trusted origin.
    assert!(proves(&[host, ("origin", OWN_ORIGIN)], None));
    assert!(proves(
        &[("host", "app.example:443"), ("origin", OWN_ORIGIN)],
        None
    ));
    assert!(proves(&[host, ("sec-fetch-site", "same-origin")], None));
    assert!(proves(
        &[host, ("origin", "https://admin.app.example")],
        None
    ));
    // Over HTTP/2 there is no `Host`: the URI's authority stands in.
    assert!(proves(&[("origin", OWN_ORIGIN)], Some(HOST)));

    // No proof: nothing at all, or anything another site could send.
    assert!(!proves(&[host], None), "neither header proves nothing");
    assert!(!proves(&[host, ("origin", EVIL_ORIGIN)], None));
    assert!(!proves(&[host, ("origin", "null")], None));
    assert!(
        !proves(&[host, ("origin", "http://app.example")], None),
        "wrong scheme"
    );
    assert!(
        !proves(&[host, ("origin", "https://app.example:8443")], None),
        "wrong port"
    );
    assert!(!proves(&[host, ("sec-fetch-site", "cross-site")], None));
    assert!(!proves(&[host, ("sec-fetch-site", "same-site")], None));
    assert!(!proves(&[host, ("sec-fetch-site", "none")], None));
    // A same-origin claim contradicted by a foreign `Origin` proves nothing.
    assert!(!proves(
        &[
            host,
            ("sec-fetch-site", "same-origin"),
            ("origin", EVIL_ORIGIN)
        ],
        None
    ));
    // An `Origin` that names the host with no `Host` or authority to compare it with.
    assert!(!proves(&[("origin", OWN_ORIGIN)], None));
}

#[tokio::test]
async fn a_form_layer_inside_the_session_layer_fails_closed() {
    // The wrong order: the session layer checks CSRF before the form is read. Forms are
    // refused (never let through unchecked).
    let kit = TestKit::new();
    let hits = Hits::default();
    let session = kit.layer::<()>();
    let app = routes(&hits)
        .layer(session.form_csrf())
        .layer(session.clone());
    let alice = login(&kit, "alice");
    let body = urlencoded(&[("csrf_token", &alice.csrf)]);
    let reply = fetch(
        &app,
        form_request("/echo/bytes", Some(&alice), URLENCODED, body),
    )
    .await;
    reply.assert_refused(Refusal::CsrfMissing);
    assert_eq!(hits.count(), 0);
}

// ---------------------------------------------------------------------------------------
// TestClient
// ---------------------------------------------------------------------------------------

/// An app for the test client: a page, a JSON API, a form, a logout.
fn client_app(kit: &TestKit, hits: &Hits) -> Router {
    let h = hits.clone();
    Router::new()
        .route(
            "/me",
            get(|s: Session| async move { s.subject().to_owned() }),
        )
        .route(
            "/notes",
            post(move |s: Session, Json(note): Json<Value>| async move {
                h.hit();
                Json(json!({ "by": s.subject(), "note": note }))
            }),
        )
        .route("/logout", post(|_: Session| async { Logout }))
        .merge(routes(hits))
        .layer(kit.layer::<()>().with_forms())
}

#[tokio::test]
async fn test_client_logs_in_gets_and_posts_with_the_csrf_header_sent_for_it() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let mut browser = kit.client(client_app(&kit, &hits));
    assert_eq!(browser.token(), None);
    assert_eq!(browser.csrf(), None);

    let claims = browser.login_as("alice", ());
    assert_eq!(claims.sub, "alice");
    assert_eq!(browser.csrf().as_deref(), Some(claims.csrf.expose()));

    let res = browser.get("/me").send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "alice");
    assert_eq!(res.refusal, None);

    let res = browser
        .post("/notes")
        .json(&json!({ "text": "hi" }))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({ "by": "alice", "note": { "text": "hi" } })
    );

    // The header is what it sends on a plain POST.
    let res = browser.post("/echo/bytes").send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.headers["x-csrf-header-sent"], "true");
    assert_eq!(hits.count(), 2);
}

#[tokio::test]
async fn test_client_posts_a_form_with_the_csrf_field() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let mut browser = kit.client(client_app(&kit, &hits));
    let claims = browser.login_as("alice", ());

    let res = browser
        .post("/echo/form")
        .form(&[("title", "Hello & welcome"), ("tags", "a,b")])
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.json(),
        json!([
            ["title", "Hello & welcome"],
            ["tags", "a,b"],
            ["csrf_token", claims.csrf.expose()]
        ])
    );

    // In the field, not the header.
    let res = browser
        .post("/echo/bytes")
        .form(&[("title", "x")])
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.headers["x-csrf-header-sent"], "false");
    assert_eq!(
        res.text(),
        urlencoded(&[("title", "x"), ("csrf_token", claims.csrf.expose())])
    );
}

#[tokio::test]
async fn test_client_follows_a_reissue() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let app = client_app(&kit, &hits);
    let mut browser = kit.client(app.clone());
    browser.login_as("alice", ());
    let first = browser.token().unwrap().to_owned();

    // Before reissue_after (60 s): no new cookie.
    kit.advance(Duration::from_secs(30));
    let res = browser.get("/me").send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(!res.headers.contains_key(header::SET_COOKIE));
    assert_eq!(browser.token(), Some(first.as_str()));

    // Past it: the response reissues, and the client keeps the new token.
    kit.advance(Duration::from_secs(31));
    let res = browser.get("/me").send().await;
    assert_eq!(res.status, StatusCode::OK);
    let reissued = res
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    let second = browser.token().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(reissued.contains(&second), "{reissued}");

    // 30 min after the first token's last activity, only the new token is alive: the
    // client uses it (and its CSRF token, which a reissue keeps).
    kit.advance(Duration::from_secs(29 * 60 + 30));
    let old = Request::get("/me")
        .header(header::COOKIE, kit.cookie_header(&first))
        .body(Body::empty())
        .unwrap();
    let old = fetch(&app, old).await;
    assert_eq!(old.refusal, Some(Refusal::ExpiredIdle));
    let res = browser.get("/me").send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.text(), "alice");
    let res = browser
        .post("/notes")
        .json(&json!("after the reissue"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn test_client_logout_clears_its_cookie() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let mut browser = kit.client(client_app(&kit, &hits));
    browser.login_as("alice", ());
    let token = browser.token().unwrap().to_owned();

    let res = browser.post("/logout").send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(browser.token(), None, "the removal cookie cleared it");
    assert_eq!(browser.csrf(), None);

    let res = browser.get("/me").send().await;
    assert_eq!(res.refusal, Some(Refusal::Missing));
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // The old token is revoked, not just forgotten.
    let app = client_app(&kit, &hits);
    let old = Request::get("/me")
        .header(header::COOKIE, kit.cookie_header(&token))
        .body(Body::empty())
        .unwrap();
    assert_eq!(fetch(&app, old).await.refusal, Some(Refusal::Revoked));
}

#[tokio::test]
async fn test_client_without_csrf_is_refused() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let mut browser = kit.client(client_app(&kit, &hits));
    browser.login_as("alice", ());

    let res = browser
        .post("/notes")
        .json(&json!("x"))
        .without_csrf()
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.refusal, Some(Refusal::CsrfMissing));
    assert_eq!(res.json()["error"]["code"], "csrf_missing");

    let res = browser
        .post("/echo/form")
        .form(&[("title", "x")])
        .without_csrf()
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.refusal, Some(Refusal::CsrfMissing));
    assert_eq!(hits.count(), 0);

    // A refused request leaves the session alone.
    assert!(browser.token().is_some());
    assert_eq!(browser.get("/me").send().await.status, StatusCode::OK);
}

#[tokio::test]
async fn test_client_exposes_refusals_and_drops_a_dead_cookie() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let mut browser = kit.client(client_app(&kit, &hits));
    browser.login_as("alice", ());

    kit.advance(Duration::from_secs(31 * 60));
    let res = browser.get("/me").send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.refusal, Some(Refusal::ExpiredIdle));
    assert_eq!(browser.token(), None, "the removal cookie was followed");
    assert_eq!(
        browser.get("/me").send().await.refusal,
        Some(Refusal::Missing)
    );
}

#[tokio::test]
async fn test_client_sends_its_origin() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let mut browser = kit.client(client_app(&kit, &hits));
    browser.login_as("alice", ());
    browser.origin(EVIL_ORIGIN);
    let res = browser.post("/notes").json(&json!("x")).send().await;
    assert_eq!(res.refusal, Some(Refusal::OriginRejected));
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    // Its own origin (with the Host the request names) passes.
    browser.origin(OWN_ORIGIN);
    let res = browser
        .post("/notes")
        .header("host", HOST)
        .json(&json!("x"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn test_client_clear_cookies_forgets_the_session() {
    let kit = TestKit::new();
    let hits = Hits::default();
    let mut browser = kit.client(client_app(&kit, &hits));
    browser.login_as("alice", ());
    browser.clear_cookies();
    assert_eq!(browser.token(), None);
    let res = browser.get("/me").send().await;
    assert_eq!(res.refusal, Some(Refusal::Missing));

    // A login form through the client: the cookie the response sets is kept.
    let res = browser.post("/login").form(&[("user", "bob")]).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(browser.token().is_some());
    assert_eq!(browser.get("/me").send().await.text(), "bob");
}
