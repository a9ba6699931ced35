//! The `metrics` feature counts refusals, reissues, revocations, cold verifies and the
//! denylist size.
//! (Its own test binary: tracing's callsite cache and a scoped subscriber in another
//! test of the same process do not mix.)
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::body::Body;
use http::Request;
use jwt_session::testing::TestKit;
use tower::ServiceExt as _;

use support::harness::app;

#[test]
fn metrics_count_refusals_reissues_and_revocations() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let kit = TestKit::new();
            let app = app(&kit);
            let (token, claims) = kit.mint("alice", ()).unwrap();
            let cookie = kit.cookie_header(&token);
            kit.advance(Duration::from_secs(61));
            let get = || {
                Request::get("/me")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap()
            };
            app.clone().oneshot(get()).await.unwrap();
            app.clone()
                .oneshot(
                    Request::post("/session/logout")
                        .header("cookie", &cookie)
                        .header("x-csrf-token", claims.csrf.expose())
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            app.clone().oneshot(get()).await.unwrap();
        });
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str, label: Option<(&str, &str)>| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == name)
            .filter(|(key, ..)| {
                label
                    .is_none_or(|(k, v)| key.key().labels().any(|l| l.key() == k && l.value() == v))
            })
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    assert_eq!(counter("jwt_session_reissues_total", None), 1);
    // Three requests with one token: one cold verify (signature and JSON), then the
    // verified-token cache.
    assert_eq!(counter("jwt_session_cold_verifies_total", None), 1);
    assert_eq!(
        counter("jwt_session_revocations_total", Some(("kind", "session"))),
        1
    );
    assert_eq!(
        counter(
            "jwt_session_refusals_total",
            Some(("reason", "session_revoked"))
        ),
        1
    );
    assert!(
        snapshot
            .iter()
            .any(|(key, ..)| key.key().name() == "jwt_session_denylist_size")
    );
}
