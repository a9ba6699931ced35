//! Overflow and merge cases found in review of the compact set: a merge keeps the later
//! revocation time (so an eviction's watermark covers what the entry refused), the
//! revocation being recorded is never the one evicted wherever it is held, records
//! replayed in random time order do not make every eviction rescan the store, what is
//! journaled after a merge is the merged entry, and concurrent checks of compact ids see
//! every revocation while tables grow, evict and sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use super::MemoryDenylist;
use super::table::encode_sid;
use crate::claims::Policy;
use crate::clock::{Clock as _, ManualClock};
use crate::denylist::journal::{FULL, Record};
use crate::denylist::{RevocationStore, TokenFacts};

fn facts(sid: &str, lat: i64, generation: u32) -> TokenFacts<'_> {
    TokenFacts {
        sid,
        sub: "nobody",
        auth_time: 0,
        lat,
        generation,
    }
}

fn id(n: u64) -> String {
    let mut b = [0_u8; 16];
    b[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    b[8..].copy_from_slice(&n.to_le_bytes());
    encode_sid(&b)
}

/// A record from elsewhere older than the held entry must not lower its revocation time:
/// evicting the entry raises the watermark to that time, which must still cover the
/// tokens the entry refused.
#[test]
fn a_merge_keeps_the_later_time_so_eviction_still_covers_the_refused_tokens() {
    let clock = ManualClock::default();
    let t = clock.now();
    let policy = Policy::new(1800, 8 * 3600, 60, 0).unwrap();
    let list = MemoryDenylist::builder().capacity(1).build(&clock).unwrap();
    let s = id(1);
    // An update retired generations below 3 at t; a generation-3 token with lat t lives.
    list.retire_generations(&s, 3, t - 100, &policy, &clock)
        .unwrap();
    assert!(!list.is_revoked(facts(&s, t, 3)).unwrap());
    // Another instance revoked the whole session at t - 50; learned now.
    list.apply(&Record::Session {
        sid: s.clone(),
        exp: t + 3600,
        at: t - 50,
        floor: FULL,
    })
    .unwrap();
    assert!(list.is_revoked(facts(&s, t, 3)).unwrap());
    // Overflow evicts it: the watermark must reach t, the latest it refused.
    clock.advance(Duration::from_secs(1));
    list.revoke_session(&id(2), t - 100, &policy, &clock)
        .unwrap();
    assert_eq!(list.evictions(), 1);
    assert_eq!(list.watermark(), Some(t));
    assert!(
        list.is_revoked(facts(&s, t, 3)).unwrap(),
        "re-admitted after eviction"
    );
}

/// The revocation being recorded is never evicted, also for one of the crate's own ids
/// held as text (its times have no compact stamp).
#[test]
fn the_recorded_revocation_is_kept_wherever_it_is_held() {
    let clock = ManualClock::default();
    let now = clock.now();
    let long = 150 * 365 * 24 * 3600;
    let policy = Policy::new(long, long, 60, 0).unwrap();
    for sid in ["text-id".to_owned(), encode_sid(&[0xAB; 16])] {
        let list = MemoryDenylist::builder().capacity(1).build(&clock).unwrap();
        list.revoke_session("other", now - 10, &policy, &clock)
            .unwrap();
        // From elsewhere, older than what is held, expiring past any compact stamp.
        list.apply(&Record::Session {
            sid: sid.clone(),
            exp: now + i64::try_from(long).unwrap(),
            at: now - 100,
            floor: FULL,
        })
        .unwrap();
        let held: Vec<String> = list.snapshot().into_iter().map(|e| e.id).collect();
        assert_eq!(
            held,
            std::slice::from_ref(&sid),
            "{sid}: the applied record stays"
        );
        assert!(list.is_revoked(facts(&sid, now, 0)).unwrap());
        assert!(
            list.is_revoked(facts("other", now - 10, 0)).unwrap(),
            "by the watermark"
        );
    }
}

/// Records replayed at capacity in random time order (as a full resync delivers them)
/// evict as many entries, and scan the store about as often, as the same records in
/// time order: an older record joins the eviction batch instead of discarding it.
#[test]
fn records_in_random_time_order_do_not_rescan_on_every_eviction() {
    const CAPACITY: usize = 4_000;
    const MORE: usize = 4_000;
    let run = |shuffled: bool| {
        let clock = ManualClock::default();
        let t = clock.now();
        let list = MemoryDenylist::builder()
            .capacity(CAPACITY)
            .build(&clock)
            .unwrap();
        let mut ats: Vec<i64> = (0..(CAPACITY + MORE) as i64)
            .map(|i| t - 100_000 + i * 10)
            .collect();
        if shuffled {
            let mut x = 12_345_u64;
            for i in (1..ats.len()).rev() {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ats.swap(i, usize::try_from(x >> 33).unwrap() % (i + 1));
            }
        }
        for (i, at) in ats.iter().enumerate() {
            list.apply(&Record::Session {
                sid: id(i as u64),
                exp: t + 3600,
                at: *at,
                floor: FULL,
            })
            .unwrap();
        }
        // Whatever the order, the survivors are refused; the evicted are covered by the
        // watermark up to the newest time evicted.
        for (i, at) in ats.iter().enumerate() {
            assert!(
                list.is_revoked(facts(&id(i as u64), *at, 0)).unwrap(),
                "{i}"
            );
        }
        (list.evictions(), list.eviction_scans())
    };
    let (sorted_evictions, sorted_scans) = run(false);
    let (shuffled_evictions, shuffled_scans) = run(true);
    assert_eq!(sorted_evictions, MORE as u64);
    assert_eq!(shuffled_evictions, MORE as u64);
    assert!(
        shuffled_scans <= 2 * sorted_scans + 2,
        "{shuffled_scans} scans shuffled against {sorted_scans} in order"
    );
}

/// A weaker record from elsewhere merged into a stronger entry is journaled as the
/// merged entry: after a restart the session is still revoked outright.
#[test]
fn a_merged_entry_is_journaled_as_merged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let clock = ManualClock::default();
    let t = clock.now();
    let policy = Policy::new(1800, 8 * 3600, 60, 0).unwrap();
    let s = id(7);
    {
        let list = MemoryDenylist::builder()
            .journal(&path)
            .build(&clock)
            .unwrap();
        list.revoke_session(&s, t - 100, &policy, &clock).unwrap();
        // From elsewhere: only generations below 3 retired, but a later expiry.
        list.apply(&Record::Session {
            sid: s.clone(),
            exp: t + 10 * 3600,
            at: t + 1,
            floor: 3,
        })
        .unwrap();
        assert!(list.is_revoked(facts(&s, t, 5)).unwrap());
    }
    let list = MemoryDenylist::builder()
        .journal(&path)
        .build(&clock)
        .unwrap();
    assert!(
        list.is_revoked(facts(&s, t, 5)).unwrap(),
        "a revoked session came back after a restart"
    );
}

/// Checks of compact ids revoked earlier, racing a writer that grows the tables and
/// evicts at capacity and a sweeper: no check lets a revoked session through.
#[test]
fn compact_checks_racing_growth_eviction_and_sweeps() {
    const N: usize = 30_000;
    let clock = Arc::new(ManualClock::default());
    let t0 = clock.now();
    let policy = Policy::new(1800, 8 * 3600, 60, 0).unwrap();
    let list = MemoryDenylist::builder()
        .capacity(10_000)
        .build(&*clock)
        .unwrap();
    let sids: Arc<Vec<String>> = Arc::new((0..N as u64).map(id).collect());
    let lats: Arc<Vec<AtomicI64>> = Arc::new((0..N).map(|_| AtomicI64::new(i64::MIN)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let slipped = Arc::new(AtomicUsize::new(0));
    let checkers: Vec<_> = (0..2_u64)
        .map(|c| {
            let (list, sids, lats, done, stop, slipped) = (
                list.clone(),
                sids.clone(),
                lats.clone(),
                done.clone(),
                stop.clone(),
                slipped.clone(),
            );
            std::thread::spawn(move || {
                let mut x = c + 1;
                while !stop.load(Ordering::SeqCst) {
                    let upto = done.load(Ordering::SeqCst);
                    if upto == 0 {
                        std::thread::yield_now();
                        continue;
                    }
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let k = usize::try_from(x >> 33).unwrap() % upto;
                    let lat = lats[k].load(Ordering::SeqCst);
                    if !list.is_revoked(facts(&sids[k], lat, 0)).unwrap() {
                        slipped.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let sweeper = {
        let (list, clock, stop) = (list.clone(), clock.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // Expires nothing revoked here (every TTL is at least 1800 s).
                list.sweep(clock.now());
            }
        })
    };
    for k in 0..N {
        if k % 50 == 0 {
            clock.advance(Duration::from_secs(1));
        }
        lats[k].store(clock.now(), Ordering::SeqCst);
        list.revoke_session(&sids[k], t0, &policy, &*clock).unwrap();
        done.store(k + 1, Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    for c in checkers {
        c.join().unwrap();
    }
    sweeper.join().unwrap();
    assert!(list.evictions() > 0);
    assert_eq!(slipped.load(Ordering::SeqCst), 0);
    for k in 0..N {
        let lat = lats[k].load(Ordering::SeqCst);
        assert!(list.is_revoked(facts(&sids[k], lat, 0)).unwrap(), "{k}");
    }
}
