//! Cookie headers (section 11): the session cookie among other cookies and `Cookie`
//! headers.

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use jwt_session::testing::TestKit;

use crate::MIN;
use crate::support::harness::{COOKIE_NAME, Client, app, call, req, secs};

#[tokio::test]
async fn the_session_cookie_is_found_among_other_cookies_and_cookie_headers() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let token = client.token.as_str();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("alone", vec![format!("{COOKIE_NAME}={token}")]),
        (
            "between others",
            vec![format!("theme=dark; {COOKIE_NAME}={token}; lang=en")],
        ),
        (
            "no spaces",
            vec![format!("theme=dark;{COOKIE_NAME}={token};lang=en")],
        ),
        (
            "second Cookie header",
            vec![
                "theme=dark; lang=en".to_owned(),
                format!("a=1; {COOKIE_NAME}={token}"),
            ],
        ),
        (
            "lookalike names",
            vec![format!(
                "{COOKIE_NAME}x=garbage; x{COOKIE_NAME}=garbage; session=garbage; {COOKIE_NAME}={token}"
            )],
        ),
        (
            "empty value first",
            vec![
                format!("{COOKIE_NAME}=; theme=dark"),
                format!("{COOKIE_NAME}={token}"),
            ],
        ),
        ("quoted", vec![format!("{COOKIE_NAME}=\"{token}\"")]),
    ];
    for (what, headers) in cases {
        let mut builder = Request::builder().uri("/me");
        for h in &headers {
            builder = builder.header(header::COOKIE, h.as_str());
        }
        let reply = call(&kit, &app, builder.body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.text());
        assert_eq!(reply.json()["sub"], "alice", "{what}");
        reply.assert_no_cookie();
    }

    // Other cookies with a dead session: only the session cookie is cleared.
    kit.advance(secs(31 * MIN));
    let reply = call(
        &kit,
        &app,
        req(
            Method::GET,
            "/public",
            &[(
                "cookie",
                format!("theme=dark; {COOKIE_NAME}={token}").as_str(),
            )],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.all_cookies.len(), 1, "{:?}", reply.all_cookies);
    reply.assert_cleared();
}
