//! CSRF and origin checks (section 9).

use http::{Method, StatusCode};
use jwt_session::Refusal;
use jwt_session::testing::TestKit;

use crate::support::harness::{Client, app, call, req};

fn csrf_kit() -> TestKit {
    TestKit::configure(|b| b.trusted_origin("https://spa.example")).unwrap()
}

#[tokio::test]
async fn unsafe_methods_need_the_csrf_token_and_a_same_site_origin() {
    let kit = csrf_kit();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let cookie = client.cookie();
    let good = client.csrf.as_str();

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let m = method.as_str();
        let send = |headers: Vec<(&'static str, String)>| {
            let mut all: Vec<(&str, &str)> = vec![("cookie", cookie.as_str())];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            call(&kit, &app, req(method.clone(), "/write", &all))
        };

        let reply = send(vec![]).await;
        reply.assert_refused(Refusal::CsrfMissing);
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{m}");
        reply.assert_no_cookie();

        let reply = send(vec![("x-csrf-token", "not-the-token".into())]).await;
        reply.assert_refused(Refusal::CsrfMismatch);
        reply.assert_no_cookie();

        // An empty header is no token: it never matches, even an empty claim.
        let reply = send(vec![("x-csrf-token", String::new())]).await;
        reply.assert_refused(Refusal::CsrfMissing);

        let reply = send(vec![("x-csrf-token", good.into())]).await;
        assert_eq!(reply.status, StatusCode::OK, "{m}: {}", reply.text());
        assert_eq!(reply.text(), "written by alice");

        let reply = send(vec![
            ("x-csrf-token", good.into()),
            ("origin", "https://evil.example".into()),
        ])
        .await;
        reply.assert_refused(Refusal::OriginRejected);
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{m}");
        reply.assert_no_cookie();

        // With the right token, the origin checks alone: `None` is let through.
        for (what, headers, refused) in [
            (
                "Origin: null",
                &[("origin", "null")][..],
                Some(Refusal::OriginRejected),
            ),
            (
                "cross-site by Sec-Fetch-Site",
                &[("sec-fetch-site", "cross-site")],
                Some(Refusal::OriginRejected),
            ),
            // Cross-site by Sec-Fetch-Site even when Origin looks like ours.
            (
                "cross-site with our Origin",
                &[
                    ("host", "app.example"),
                    ("origin", "https://app.example"),
                    ("sec-fetch-site", "cross-site"),
                ],
                Some(Refusal::OriginRejected),
            ),
            (
                "same origin",
                &[
                    ("host", "app.example"),
                    ("origin", "https://app.example"),
                    ("sec-fetch-site", "same-origin"),
                ],
                None,
            ),
            (
                "same origin with a port",
                &[
                    ("host", "app.example:8443"),
                    ("origin", "https://app.example:8443"),
                ],
                None,
            ),
            (
                "trusted origin",
                &[
                    ("host", "api.example"),
                    ("origin", "https://spa.example"),
                    ("sec-fetch-site", "same-site"),
                ],
                None,
            ),
            (
                "untrusted origin of the same site",
                &[
                    ("host", "api.example"),
                    ("origin", "https://other.example"),
                    ("sec-fetch-site", "same-site"),
                ],
                Some(Refusal::OriginRejected),
            ),
        ] {
            let mut all = vec![("x-csrf-token", good.to_owned())];
            all.extend(headers.iter().map(|(k, v)| (*k, (*v).to_owned())));
            let reply = send(all).await;
            match refused {
                Some(reason) => reply.assert_refused_for(reason, &format!("{m}: {what}")),
                None => assert_eq!(
                    reply.status,
                    StatusCode::OK,
                    "{m}: {what}: {}",
                    reply.text()
                ),
            }
        }

        // A trusted origin still needs the token.
        let reply = send(vec![
            ("host", "api.example".into()),
            ("origin", "https://spa.example".into()),
        ])
        .await;
        reply.assert_refused(Refusal::CsrfMissing);
    }

    // None of the refusals cleared or ended the session.
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn safe_methods_pass_without_the_csrf_header_even_cross_site() {
    let kit = csrf_kit();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let cookie = client.cookie();
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let reply = call(
            &kit,
            &app,
            req(method.clone(), "/write", &[("cookie", cookie.as_str())]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
        let reply = call(
            &kit,
            &app,
            req(
                method.clone(),
                "/write",
                &[
                    ("cookie", cookie.as_str()),
                    ("origin", "https://evil.example"),
                    ("sec-fetch-site", "cross-site"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{method} cross-site");
    }
}

#[tokio::test]
async fn a_cross_site_login_post_is_refused_before_any_session_is_made() {
    let kit = csrf_kit();
    let app = app(&kit);
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "/login/alice",
            &[("origin", "https://evil.example")],
        ),
    )
    .await;
    reply.assert_refused(Refusal::OriginRejected);
    reply.assert_no_cookie();
}

/// Over HTTP/2 there is no `Host` header: the authority is in the request URI (hyper puts
/// `:authority` there). A same-origin browser POST must still pass.
#[tokio::test]
async fn same_origin_is_recognised_from_the_uri_authority_without_a_host_header() {
    let kit = csrf_kit();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    let cookie = client.cookie();
    let reply = call(
        &kit,
        &app,
        req(
            Method::POST,
            "https://app.example/write",
            &[
                ("cookie", cookie.as_str()),
                ("x-csrf-token", client.csrf.as_str()),
                ("origin", "https://app.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "same-origin POST without Host (HTTP/2) refused: {}",
        reply.text()
    );
}
