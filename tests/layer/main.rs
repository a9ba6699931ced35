//! The session layer proved end to end through the public API: a real axum `Router` driven
//! with `oneshot` and the test kit's manual clock (no sleeps, no sockets, no tolerance
//! windows). Login, sliding and the absolute cap, when a reissue happens, clearing refused
//! cookies, I1 under logout / logout-all / in-flight races, CSRF and origin checks, the
//! ready-made routes, cookie parsing, and refusal reasons in response extensions.
//!
//! One module per numbered section: `login` (1), `sliding` (2, 3), `refusals` (4, 12),
//! `revocation` (5), `csrf` (9), `routes` (10) and `cookies` (11); sections 6 to 8 are
//! `tests/denylist.rs`. The routes, requests, replies and clients are the shared harness
//! of `tests/support/harness.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod cookies;
mod csrf;
mod login;
mod refusals;
mod revocation;
mod routes;
mod sliding;

use std::time::Duration;

use jwt_session::testing::TestKit;

use crate::support::harness::secs;

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

const MIN: u64 = 60;
const IDLE: i64 = 30 * 60;
const ABSOLUTE: i64 = 8 * 3600;

/// idle 30 min, absolute 2 h, zero leeway: exact boundaries.
fn short_kit() -> TestKit {
    TestKit::configure(|b| {
        b.idle_timeout(secs(30 * MIN))
            .absolute_timeout(secs(120 * MIN))
            .leeway(Duration::ZERO)
    })
    .unwrap()
}

/// `token` with one character of its signature changed.
fn tamper_signature(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = token.rfind('.').unwrap() + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}
