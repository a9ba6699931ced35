//! An overflow of the memory denylist is announced long before it evicts anything: a
//! `warn` when the fill passes 80 % and again at 95 % of the capacity (once per crossing,
//! not once per revocation), and the gauge `jwt_session_denylist_fill_ratio`.
//! (Its own test binary: a scoped subscriber and recorder.)
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jwt_session::{Clock as _, ManualClock, MemoryDenylist, Policy, RevocationStore};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

mod support;
use support::logs::Capture;

const FILLING: &str = "revocation denylist filling up";

#[test]
fn filling_up_warns_at_80_and_95_percent_and_sets_the_fill_gauge() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let fill = || {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find(|(key, ..)| key.key().name() == "jwt_session_denylist_fill_ratio")
            .map(|(.., value)| match value {
                DebugValue::Gauge(g) => g.into_inner(),
                other => panic!("not a gauge: {other:?}"),
            })
    };
    let warnings = || capture.text().matches(FILLING).count();
    let clock = ManualClock::default();
    let policy = Policy::new(1800, 8 * 3600, 60, 5).unwrap();
    let list = MemoryDenylist::builder()
        .capacity(100)
        .build(&clock)
        .unwrap();
    let revoke = |i: usize| {
        list.revoke_session(&format!("sid-{i}"), clock.now(), &policy, &clock)
            .unwrap();
    };
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            for i in 0..79 {
                revoke(i);
            }
            assert_eq!(fill(), Some(0.79));
            assert_eq!(warnings(), 0, "quiet below 80 %");
            revoke(79);
            assert_eq!(fill(), Some(0.8));
            assert_eq!(warnings(), 1, "80 % warns");
            for i in 80..94 {
                revoke(i);
            }
            assert_eq!(warnings(), 1, "once per crossing");
            revoke(94);
            assert_eq!(warnings(), 2, "95 % warns");
            for i in 95..100 {
                revoke(i);
            }
            assert_eq!(fill(), Some(1.0));
            assert_eq!(warnings(), 2);
            assert_eq!(list.evictions(), 0, "announced before any eviction");

            // Swept down below 75 %, then up again: it warns again.
            clock.advance(std::time::Duration::from_secs(9 * 3600));
            list.sweep(clock.now());
            assert_eq!(fill(), Some(0.0));
            for i in 100..180 {
                revoke(i);
            }
            assert_eq!(warnings(), 3, "a new crossing warns again");
        });
    });
}
