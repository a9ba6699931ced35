//! I1, never resurrect (section 5): logout and logout-all refuse every token of the
//! sessions they end, and requests in flight during a logout never set a live token.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use jwt_session::testing::{TestKit, set_cookies};
use jwt_session::{EXPIRES_IN_HEADER, MemoryDenylist, Refusal, RevocationStore, Session};
use serde_json::json;
use tokio::sync::Barrier;
use tower::ServiceExt as _;

use crate::MIN;
use crate::support::harness::{COOKIE_NAME, Client, app, call, get_with, login_as, routes, secs};

#[tokio::test]
async fn logout_refuses_the_older_the_current_and_the_newer_token_of_the_session() {
    let kit = TestKit::new();
    let app = app(&kit);
    let (older, _) = login_as(&kit, &app, "alice").await;
    let other = Client::minted(&kit, "alice");

    kit.advance(secs(61));
    let mut current = older.clone();
    assert!(current.follow(&older.get(&kit, &app, "/me").await));
    kit.advance(secs(61));
    let mut newer = current.clone();
    assert!(newer.follow(&current.get(&kit, &app, "/me").await));
    let sids: Vec<_> = [&older, &current, &newer]
        .iter()
        .map(|c| c.claims(&kit).sid)
        .collect();
    assert!(sids.iter().all(|s| *s == sids[0]));

    // Log out with the middle token.
    let reply = current.post(&kit, &app, "/session/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "logged_out": true }));
    reply.assert_cleared();

    for (what, client) in [("older", &older), ("current", &current), ("newer", &newer)] {
        let reply = client.get(&kit, &app, "/me").await;
        reply.assert_refused(Refusal::Revoked);
        reply.assert_cleared();
        let reply = client.post(&kit, &app, "/session/refresh").await;
        reply.assert_refused(Refusal::Revoked);
        assert_eq!(reply.new_token(), None, "{what}: no refresh after logout");
    }
    // Another session of the same user is untouched by a plain logout.
    assert_eq!(other.get(&kit, &app, "/me").await.status, StatusCode::OK);
    // Later, too (until they would have expired anyway).
    kit.advance(secs(29 * MIN));
    newer
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test]
async fn logout_all_refuses_every_session_of_the_subject_and_no_other() {
    let kit = TestKit::new();
    let app = app(&kit);
    let (phone, _) = login_as(&kit, &app, "alice").await;
    kit.advance(secs(10));
    let (laptop, _) = login_as(&kit, &app, "alice").await;
    let (bob, _) = login_as(&kit, &app, "bob").await;
    kit.advance(secs(61));
    // The phone's session slides (so a newer token of it exists) before logout-all.
    let mut phone_new = phone.clone();
    assert!(phone_new.follow(&phone.get(&kit, &app, "/me").await));

    let reply = laptop.post(&kit, &app, "/session/logout-all").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "logged_out": true, "all": true }));
    reply.assert_cleared();

    for client in [&phone, &phone_new, &laptop] {
        let reply = client.get(&kit, &app, "/me").await;
        reply.assert_refused(Refusal::Revoked);
        reply.assert_cleared();
    }
    assert_eq!(bob.get(&kit, &app, "/me").await.status, StatusCode::OK);

    // A login in the same second, right after logout-all, works and keeps working.
    let (fresh, reply) = login_as(&kit, &app, "alice").await;
    assert!(fresh.claims(&kit).auth_time >= kit.now());
    assert!(reply.header(EXPIRES_IN_HEADER).is_some());
    assert_eq!(fresh.get(&kit, &app, "/me").await.status, StatusCode::OK);
    kit.advance(secs(1));
    assert_eq!(fresh.get(&kit, &app, "/me").await.status, StatusCode::OK);
    kit.advance(secs(61));
    let mut fresh_new = fresh.clone();
    assert!(fresh_new.follow(&fresh.get(&kit, &app, "/me").await));
    assert_eq!(
        fresh_new.get(&kit, &app, "/me").await.status,
        StatusCode::OK
    );
    // The old sessions stay dead.
    phone_new
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test]
async fn a_second_logout_all_in_the_same_second_ends_the_session_that_logged_in_between() {
    let kit = TestKit::new();
    let app = app(&kit);
    let (first, _) = login_as(&kit, &app, "alice").await;
    kit.advance(secs(5));
    let reply = first.post(&kit, &app, "/session/logout-all").await;
    assert_eq!(reply.status, StatusCode::OK);
    // Same second: a new login (it must work)…
    let (second, _) = login_as(&kit, &app, "alice").await;
    assert_eq!(second.get(&kit, &app, "/me").await.status, StatusCode::OK);
    // …then "log out everywhere" again, from that new session, still the same second.
    let reply = second.post(&kit, &app, "/session/logout-all").await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.assert_cleared();
    // Every session that logged in before this logout-all must now be refused,
    // including the one that asked for it.
    let reply = second.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::Revoked);
    kit.advance(secs(1));
    let reply = second.get(&kit, &app, "/me").await;
    reply.assert_refused(Refusal::Revoked);
}

const IN_FLIGHT: usize = 200;

/// A router whose `/slow` handler holds each request until the test lets it go.
fn gated_app(kit: &TestKit, entered: Arc<Barrier>, release: Option<Arc<Barrier>>) -> Router {
    let turn = Arc::new(AtomicUsize::new(0));
    routes()
        .route(
            "/slow",
            get(move |s: Session| {
                let (entered, release, turn) = (entered.clone(), release.clone(), turn.clone());
                async move {
                    entered.wait().await;
                    match release {
                        Some(release) => {
                            release.wait().await;
                        }
                        None => {
                            // Finish in a scattered order, racing the logout.
                            for _ in 0..turn.fetch_add(1, Ordering::Relaxed) % 13 {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    s.id().to_owned()
                }
            }),
        )
        .layer(kit.layer::<()>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn requests_in_flight_during_logout_never_set_a_live_token() {
    let kit = TestKit::new();
    let entered = Arc::new(Barrier::new(IN_FLIGHT + 1));
    let release = Arc::new(Barrier::new(IN_FLIGHT + 1));
    let app = gated_app(&kit, entered.clone(), Some(release.clone()));
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61)); // every in-flight response would reissue

    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (app, req) = (app.clone(), get_with("/slow", &client.cookie()));
        tasks.push(tokio::spawn(async move {
            let res = app.oneshot(req).await.unwrap();
            (res.status(), set_cookies(&res))
        }));
    }
    entered.wait().await; // all 200 were verified and are inside the handler
    let reply = client.post(&kit, &app, "/session/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    release.wait().await;

    for task in tasks {
        let (status, cookies) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let session: Vec<_> = cookies.iter().filter(|c| c.name == COOKIE_NAME).collect();
        assert_eq!(session.len(), 1, "{session:?}");
        assert!(
            session[0].is_removal(),
            "a request in flight during logout set a token: {}",
            session[0].raw
        );
    }
    client
        .get(&kit, &app, "/me")
        .await
        .assert_refused(Refusal::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn reissues_racing_logout_and_a_moving_clock_never_resurrect_even_after_eviction() {
    let kit = TestKit::new();
    // Capacity 1: the logout's entry is evicted by the next revocation, so only the
    // watermark (and I3's "lat <= revocation time") keeps the session out afterwards.
    let store = MemoryDenylist::builder()
        .capacity(1)
        .build(kit.clock())
        .unwrap();
    let kit = kit.with_store(store.clone());
    let entered = Arc::new(Barrier::new(IN_FLIGHT + 1));
    let app = gated_app(&kit, entered.clone(), None);
    let client = Client::minted(&kit, "alice");
    kit.advance(secs(61));

    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (app, req) = (app.clone(), get_with("/slow", &client.cookie()));
        tasks.push(tokio::spawn(async move {
            let res = app.oneshot(req).await.unwrap();
            (res.status(), set_cookies(&res))
        }));
    }
    entered.wait().await;
    // The clock keeps moving while the reissues and the logout race.
    let ticker = {
        let clock = kit.clock().clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                clock.advance(secs(1));
                tokio::task::yield_now().await;
            }
        })
    };
    let reply = client.post(&kit, &app, "/session/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    ticker.await.unwrap();

    let mut tokens = vec![client.token.clone()];
    let mut removals = 0;
    for task in tasks {
        let (status, cookies) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let session: Vec<_> = cookies.iter().filter(|c| c.name == COOKIE_NAME).collect();
        assert_eq!(
            session.len(),
            1,
            "every response is due a reissue: {session:?}"
        );
        if session[0].is_removal() {
            removals += 1;
        } else {
            tokens.push(session[0].value.clone());
        }
    }
    eprintln!(
        "race: {} tokens set before the logout, {removals} removals after",
        tokens.len() - 1
    );

    let check_all = |label: &'static str| {
        let (kit, app, tokens) = (kit.clone(), app.clone(), tokens.clone());
        async move {
            for token in &tokens {
                let cookie = format!("{COOKIE_NAME}={token}");
                let reply = call(&kit, &app, get_with("/me", &cookie)).await;
                assert_eq!(
                    reply.refusal,
                    Some(Refusal::Revoked),
                    "{label}: a token set during the race was accepted: {}",
                    reply.text()
                );
                reply.assert_cleared();
            }
        }
    };
    check_all("after logout").await;

    // Evict the logout's entry by overflow: the watermark must still refuse them all.
    kit.advance(secs(1));
    store
        .revoke_session(
            "someone-else",
            kit.now(),
            kit.config().policy(),
            kit.clock(),
        )
        .unwrap();
    assert_eq!(store.evictions(), 1);
    assert_eq!(store.len(), 1);
    assert!(store.watermark().is_some());
    check_all("after eviction").await;
}
