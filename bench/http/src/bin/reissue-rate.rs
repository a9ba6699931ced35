//! The reissue rate, deterministically: with reissue-after 60 s (the default) and one
//! request a second per user, what fraction of requests sign a new token?
//!
//! ```text
//! reissue-rate [USERS=100] [SECONDS=3600]
//! ```
//!
//! Uses jwt-session's test kit: a `ManualClock` (advanced one second between rounds, no
//! sleeping), a `SessionLayer` in front of `GET /protected`, and `tower::ServiceExt::oneshot`.
//! Each user logs in at t0 and then sends one request per simulated second with the cookie
//! it holds, replacing it whenever a response carries a `Set-Cookie` (as a browser does).
//! A response with a session `Set-Cookie` is a reissue, i.e. one signature.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use jwt_session::Session;
use jwt_session::testing::TestKit;
use tower::ServiceExt as _;

async fn protected(session: Session) -> &'static str {
    std::hint::black_box(session.subject());
    "hello"
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3600);

    let kit = TestKit::configure(|b| b.reissue_after(Duration::from_secs(60)))
        .expect("test kit with reissue-after 60 s");
    let app = Router::new()
        .route("/protected", get(protected))
        .layer(kit.layer::<()>());

    let mut cookies: Vec<String> = (0..users)
        .map(|u| kit.cookie(&format!("user-{u}")))
        .collect();
    let (mut requests, mut signed, mut most_set_cookies, mut refused) = (0u64, 0u64, 0usize, 0u64);
    for _ in 0..seconds {
        for cookie in &mut cookies {
            let req = Request::get("/protected")
                .header(header::COOKIE, cookie.as_str())
                .body(Body::empty())
                .expect("request");
            let res = app.clone().oneshot(req).await.expect("infallible router");
            requests += 1;
            if res.status() != StatusCode::OK {
                refused += 1;
                continue;
            }
            most_set_cookies =
                most_set_cookies.max(res.headers().get_all(header::SET_COOKIE).iter().count());
            if let Some(set) = kit.set_cookie(&res).filter(|c| !c.is_removal()) {
                signed += 1;
                *cookie = set.as_request_header();
            }
        }
        kit.advance(Duration::from_secs(1));
    }
    let fraction = signed as f64 / requests as f64;
    println!("users={users}");
    println!("simulated_seconds={seconds}");
    println!("reissue_after_s=60");
    println!("requests={requests}");
    println!("refused={refused}");
    println!("reissues={signed}");
    println!("max_set_cookie_per_response={most_set_cookies}");
    println!(
        "requests_per_reissue={:.1}",
        requests as f64 / signed.max(1) as f64
    );
    println!("reissue_fraction_pct={:.3}", fraction * 100.0);
    assert_eq!(refused, 0, "every simulated request is accepted");
}
