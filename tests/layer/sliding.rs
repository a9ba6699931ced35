//! Sliding, idle and absolute timeouts (section 2), and exactly when a reissue happens
//! (section 3).

use std::time::Duration;

use http::StatusCode;
use jwt_session::testing::TestKit;
use jwt_session::{EXPIRES_IN_HEADER, Refusal};

use crate::support::harness::{Client, app, login_as, secs};
use crate::{ABSOLUTE, IDLE, MIN, short_kit};

// ---------------------------------------------------------------------------------------
// 2. Sliding, idle and absolute timeouts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn activity_every_ten_minutes_slides_past_idle_until_the_absolute_cap() {
    let kit = short_kit();
    let app = app(&kit);
    let t0 = kit.now();
    let (mut client, _) = login_as(&kit, &app, "alice").await;
    let first = client.claims(&kit);

    for step in 1..=11 {
        kit.advance(secs(10 * MIN));
        let now = kit.now();
        let before = client.claims(&kit);
        let reply = client.get(&kit, &app, "/me").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "step {step}: {}",
            reply.text()
        );
        assert!(client.follow(&reply), "step {step}: reissued");
        let c = client.claims(&kit);
        assert_eq!(c.sid, first.sid, "step {step}");
        assert_eq!(
            c.auth_time, t0,
            "step {step}: a reissue never moves auth_time"
        );
        assert_eq!(c.csrf, first.csrf, "step {step}");
        assert_ne!(c.jti, before.jti, "step {step}");
        assert_eq!((c.iat, c.lat), (now, now), "step {step}");
        let exp = (now + IDLE).min(t0 + 2 * 3600);
        assert_eq!(c.exp, exp, "step {step}");
        let set = reply.cookie.as_ref().unwrap();
        assert_eq!(set.max_age, Some(exp - now), "step {step}");
        assert_eq!(
            reply.header(EXPIRES_IN_HEADER),
            Some((exp - now).to_string().as_str()),
            "step {step}"
        );
    }
    // 110 minutes in: long past the 30-minute idle timeout, kept alive by reissue.
    assert_eq!(kit.now() - t0, 110 * 60);

    // One second before the cap: still valid; the token cannot outlive the cap.
    kit.advance(secs(10 * MIN - 1));
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.follow(&reply));
    let c = client.claims(&kit);
    assert_eq!(c.exp, t0 + 2 * 3600);
    assert_eq!(reply.cookie.as_ref().unwrap().max_age, Some(1));
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1"));

    // At the cap: over, however active.
    kit.advance(secs(1));
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredAbsolute);
    reply.assert_cleared();
}

#[tokio::test]
async fn no_activity_ends_the_session_at_the_idle_timeout_exactly() {
    let kit = short_kit();
    let app = app(&kit);
    let (original, _) = login_as(&kit, &app, "alice").await;

    kit.advance(secs(30 * MIN - 1));
    let reply = original.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut slid = original.clone();
    assert!(slid.follow(&reply));

    kit.advance(secs(1));
    let reply = original.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredIdle);
    reply.assert_cleared();
    // The token reissued a second earlier is alive: activity slid the deadline.
    let reply = slid.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_idle_timeout_honours_the_default_leeway_exactly() {
    let kit = TestKit::new(); // leeway 5 s
    let app = app(&kit);
    let a = Client::minted(&kit, "alice");
    let b = Client::minted(&kit, "alice");
    kit.advance(secs(30 * MIN + 4));
    assert_eq!(a.get(&kit, &app, "/me").await.status, StatusCode::OK);
    kit.advance(secs(1));
    let reply = b.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredIdle);
    reply.assert_cleared();
}

#[tokio::test]
async fn the_default_absolute_cap_is_eight_hours() {
    let kit = TestKit::configure(|b| b.leeway(Duration::ZERO)).unwrap();
    let app = app(&kit);
    let t0 = kit.now();
    let (mut client, _) = login_as(&kit, &app, "alice").await;
    // Active every 20 minutes for 8 hours.
    while kit.now() + 20 * 60 < t0 + ABSOLUTE {
        kit.advance(secs(20 * MIN));
        let reply = client.get(&kit, &app, "/me").await;
        assert_eq!(reply.status, StatusCode::OK, "at {}", kit.now() - t0);
        assert!(client.follow(&reply));
        assert_eq!(client.claims(&kit).auth_time, t0);
    }
    kit.clock().set(t0 + ABSOLUTE);
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::ExpiredAbsolute);
    reply.assert_cleared();
}

// ---------------------------------------------------------------------------------------
// 3. When a reissue happens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reissue_waits_for_reissue_after_exactly() {
    let kit = TestKit::new(); // reissue after 60 s
    let app = app(&kit);
    let t0 = kit.now();
    let mut client = Client::minted(&kit, "alice");

    kit.advance(secs(59));
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.assert_no_cookie();
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1741"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    kit.advance(secs(1));
    let reply = client.get(&kit, &app, "/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.follow(&reply), "reissued at exactly reissue_after");
    assert_eq!(client.claims(&kit).lat, t0 + 60);
    assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1800"));

    // The fresh token is not reissued again in the same second, nor 59 s later.
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_no_cookie();
    kit.advance(secs(59));
    let reply = client.get(&kit, &app, "/me").await;
    reply.assert_no_cookie();
    kit.advance(secs(1));
    let reply = client.get(&kit, &app, "/me").await;
    assert!(client.follow(&reply));
}

#[tokio::test]
async fn reissue_only_on_success_responses() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61));

    for code in [400u16, 403, 404, 409, 500, 503] {
        let reply = client.get(&kit, &app, &format!("/status/{code}")).await;
        assert_eq!(reply.status.as_u16(), code);
        reply.assert_no_cookie();
        // Still told when the session ends (as of the token it carries).
        assert_eq!(reply.header(EXPIRES_IN_HEADER), Some("1739"), "{code}");
    }
    for code in [200u16, 201, 204] {
        let reply = client.get(&kit, &app, &format!("/status/{code}")).await;
        assert_eq!(reply.status.as_u16(), code);
        assert!(reply.new_token().is_some(), "{code} reissues");
    }
    let reply = client.get(&kit, &app, "/redirect").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.new_token().is_some(), "a 303 (< 400) reissues");
}

#[tokio::test]
async fn a_logout_response_carries_only_the_removal_cookie() {
    let kit = TestKit::new();
    let app = app(&kit);
    for route in ["/session/logout", "/session/logout-all"] {
        let client = Client::minted(&kit, "alice");
        kit.advance(secs(61)); // a reissue is due
        let reply = client.post(&kit, &app, route).await;
        assert_eq!(reply.status, StatusCode::OK, "{route}: {}", reply.text());
        assert_eq!(
            reply.all_cookies.len(),
            1,
            "{route}: {:?}",
            reply.all_cookies
        );
        reply.assert_cleared();
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        kit.advance(secs(1));
    }
}

#[tokio::test]
async fn a_session_revoked_during_the_request_with_reissue_due_gets_no_new_token() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61));
    let reply = client.get(&kit, &app, "/revoke-self").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "revoked");
    assert_eq!(reply.new_token(), None, "no token for a revoked session");
    reply.assert_cleared();
    client
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test]
async fn a_session_revoked_during_the_request_before_reissue_is_due_is_cleared_too() {
    let kit = TestKit::new();
    let app = app(&kit);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(10)); // reissue not due yet
    let reply = client.get(&kit, &app, "/revoke-self").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.new_token(), None, "no token for a revoked session");
    // The session is dead: the response must clear it like any other dead cookie.
    reply.assert_cleared();
    client
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}
