#![allow(clippy::panic, clippy::unwrap_used)]

//! Several instances sharing revocations through one Redis deployment (a Sentinel-managed
//! master, a cluster): each a [`RedisDenylist`] behind its own layer, sessions minted by
//! one [`TestKit`], and a wait until every instance refuses what was revoked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{RedisDenylist, RedisDenylistOptions, Refusal, SessionLayer};

use super::harness::{get_with, post_with, routes, send};

/// How long instances get to agree (failovers included).
pub(crate) const CONVERGE: Duration = Duration::from_secs(20);

/// One "server": a Redis-backed store behind its own layer.
pub(crate) struct Instance {
    pub(crate) store: Arc<RedisDenylist>,
    pub(crate) app: Router,
}

pub(crate) async fn instance(kit: &TestKit, url: &str, ns: &str) -> Instance {
    let options = RedisDenylistOptions::default()
        .namespace(ns)
        .clock(kit.config().clock_handle())
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .health_check_interval(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500));
    let store = RedisDenylist::connect(url, options).unwrap();
    assert!(
        store.wait_ready(CONVERGE).await,
        "instance not ready: {:?}",
        store.status()
    );
    let app = routes().layer(SessionLayer::<()>::new(kit.config().clone(), store.clone()));
    Instance { store, app }
}

impl Instance {
    pub(crate) async fn me(&self, cookie: &str) -> Result<(), Refusal> {
        let res = send(&self.app, get_with("/me", cookie)).await;
        match res.status() {
            StatusCode::OK => Ok(()),
            status => Err(refusal(&res).unwrap_or_else(|| panic!("{status} without a refusal"))),
        }
    }

    pub(crate) async fn logout(&self, s: &Sess) {
        let res = send(&self.app, post_with("/session/logout", &s.cookie, &s.csrf)).await;
        assert_eq!(res.status(), StatusCode::OK, "logout");
    }
}

pub(crate) struct Sess {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

pub(crate) fn login(kit: &TestKit, sub: &str) -> Sess {
    let (token, claims) = kit.mint(sub, ()).unwrap();
    Sess {
        cookie: kit.cookie_header(&token),
        csrf: claims.csrf.expose().to_owned(),
    }
}

/// Every `revoked` session refused and every `live` one accepted, on every instance.
pub(crate) async fn converged(instances: &[&Instance], revoked: &[Sess], live: &[Sess]) -> bool {
    for i in instances {
        for s in revoked {
            if i.me(&s.cookie).await != Err(Refusal::Revoked) {
                return false;
            }
        }
        for s in live {
            if i.me(&s.cookie).await.is_err() {
                return false;
            }
        }
    }
    true
}

pub(crate) async fn until_converged(
    instances: &[&Instance],
    revoked: &[Sess],
    live: &[Sess],
    when: &str,
) {
    let deadline = Instant::now() + CONVERGE;
    while !converged(instances, revoked, live).await {
        let status: Vec<_> = instances.iter().map(|i| i.store.status()).collect();
        assert!(
            Instant::now() < deadline,
            "{when}: not every instance refuses the {} revoked sessions: {status:?}",
            revoked.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
