//! The memory denylist proved through the layer and the public store API: overflow evicts
//! the oldest revocation and raises the idle watermark without ever re-admitting a revoked
//! session (I4, I1); the journal survives restarts, torn and corrupt lines, and compacts
//! expired entries (I1); sweeping keeps memory bounded by logout rate × (idle + leeway)
//! and keeps each entry exactly as long as a token of it could still be valid (I2). Time
//! is the kit's manual clock throughout: no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path as FsPath;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::StatusCode;
use jwt_session::TokenFacts;
use jwt_session::testing::TestKit;
use jwt_session::{Clock, ManualClock, MemoryDenylist, Refusal, RevocationError, RevocationStore};
use serde_json::{Value, json};

// `router`, not `app`: the tests rebuild the app of a restarted process as `app`.
use support::harness::{Client, app as router, login_as, secs};

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

/// A restart in one process: the kit lets go of its journaled store (and so of the
/// journal's lock) before the next one opens the journal.
fn release(kit: TestKit) -> TestKit {
    kit.with_store(MemoryDenylist::with_capacity(1).unwrap())
}

fn journaled(kit: &TestKit, path: &FsPath, capacity: usize) -> Arc<MemoryDenylist> {
    MemoryDenylist::builder()
        .capacity(capacity)
        .journal(path)
        .build(kit.clock())
        .unwrap()
}

/// Non-empty journal lines, each of which must be a JSON object.
fn journal(path: &FsPath) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| format!("bad line {l:?}: {e}"))
                .unwrap()
        })
        .collect()
}

fn kinds(lines: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = lines
        .iter()
        .map(|l| l["t"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

// ---------------------------------------------------------------------------------------
// 6. Overflow (I4)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn overflow_evicts_the_oldest_revocation_and_raises_the_watermark_never_resurrecting() {
    let kit = TestKit::new();
    let store = MemoryDenylist::builder()
        .capacity(3)
        .build(kit.clock())
        .unwrap();
    let kit = kit.with_store(store.clone());
    let app = router(&kit);
    let t0 = kit.now();

    let first: Vec<Client> = (0..10)
        .map(|i| Client::minted(&kit, &format!("user{i}")))
        .collect();
    let mut latest = first.clone();
    let mut keeper = Client::minted(&kit, "keeper");
    let idle = Client::minted(&kit, "idle");
    let mut revoked_at = Vec::new();

    for i in 0..10 {
        kit.advance(secs(120));
        // Everyone not yet logged out is active (and reissued) at this time.
        keeper.touch(&kit, &app, "keeper").await;
        for (j, client) in latest.iter_mut().enumerate().skip(i) {
            client
                .touch(&kit, &app, &format!("user{j} at step {i}"))
                .await;
        }
        latest[i].logout(&kit, &app).await;
        revoked_at.push(kit.now());

        assert!(store.len() <= 3, "step {i}: len {}", store.len());
        assert_eq!(store.len(), (i + 1).min(3), "step {i}");
        assert_eq!(
            store.evictions(),
            (i as u64 + 1).saturating_sub(3),
            "step {i}"
        );
        let watermark = i.checked_sub(3).map(|k| revoked_at[k]);
        assert_eq!(store.watermark(), watermark, "step {i}");

        // I4: no revoked session is accepted again, evicted or not, old token or new.
        for j in 0..=i {
            for (which, client) in [("first", &first[j]), ("latest", &latest[j])] {
                client
                    .get(&kit, &app, "/me")
                    .await
                    .assert_refused_and_cleared(
                        Refusal::Revoked,
                        &format!("step {i}: user{j} {which}"),
                    );
            }
        }
    }
    assert_eq!(store.evictions(), 7);
    assert_eq!(store.watermark(), Some(t0 + 7 * 120));
    assert_eq!(store.len(), 3);

    // A session active after the watermark still works; so does a new login.
    keeper.get(&kit, &app, "/me").await.assert_ok("keeper");
    let (fresh, _) = login_as(&kit, &app, "newcomer").await;
    fresh.get(&kit, &app, "/me").await.assert_ok("new login");
    // The documented price: a session idle since before the watermark must log in again.
    idle.get(&kit, &app, "/me")
        .await
        .assert_refused_and_cleared(Refusal::Revoked, "idle since before the watermark");

    // Sweeping never lowers the watermark nor re-admits anyone.
    kit.advance(secs(20 * 60));
    store.sweep(kit.now());
    assert_eq!(store.watermark(), Some(t0 + 7 * 120));
    for (j, client) in latest.iter().enumerate() {
        let reply = client.get(&kit, &app, "/me").await;
        assert_ne!(reply.status, StatusCode::OK, "user{j} after sweep");
    }
}

#[tokio::test]
async fn evicting_a_logout_all_keeps_every_session_of_that_subject_out() {
    let kit = TestKit::new();
    let store = MemoryDenylist::builder()
        .capacity(2)
        .build(kit.clock())
        .unwrap();
    let kit = kit.with_store(store.clone());
    let app = router(&kit);

    let mut phone = Client::minted(&kit, "alice");
    let mut laptop = Client::minted(&kit, "alice");
    let mut others: Vec<Client> = (0..2)
        .map(|i| Client::minted(&kit, &format!("user{i}")))
        .collect();
    kit.advance(secs(120));
    phone.touch(&kit, &app, "phone").await;
    laptop.touch(&kit, &app, "laptop").await;
    for c in &mut others {
        c.touch(&kit, &app, "other").await;
    }
    laptop.logout_all(&kit, &app).await;
    let subject_at = kit.now();
    assert_eq!(store.len(), 1);

    for c in &mut others {
        kit.advance(secs(120));
        c.touch(&kit, &app, "other").await;
        c.logout(&kit, &app).await;
    }
    // Capacity 2: the subject entry (the oldest) was evicted.
    assert_eq!(store.len(), 2);
    assert_eq!(store.evictions(), 1);
    assert_eq!(store.watermark(), Some(subject_at));
    for (what, c) in [("phone", &phone), ("laptop", &laptop)] {
        c.get(&kit, &app, "/me")
            .await
            .assert_refused_and_cleared(Refusal::Revoked, what);
    }
}

#[test]
fn a_zero_capacity_is_refused_at_build() {
    let clock = ManualClock::default();
    let err = MemoryDenylist::builder()
        .capacity(0)
        .build(&clock)
        .unwrap_err();
    assert!(matches!(err, RevocationError::Backend(_)), "{err}");
}

/// While one thread evicts, others check the entry being evicted: at every instant a
/// check must see either the entry or the raised watermark (I4 without a gap).
#[test]
fn a_check_racing_an_eviction_never_sees_neither_the_entry_nor_the_watermark() {
    const ROUNDS: usize = 20_000;
    const CHECKERS: usize = 3;
    let kit = TestKit::new();
    let clock = kit.clock().clone();
    let policy = *kit.config().policy();
    let store = MemoryDenylist::builder().capacity(1).build(&clock).unwrap();
    let sids: Arc<Vec<String>> = Arc::new((0..=ROUNDS).map(|k| format!("sid-{k}")).collect());
    let t0 = clock.now();
    // Round k revokes sid-k at t0 + k (evicting sid-(k-1), revoked at t0 + k - 1).
    store.revoke_session(&sids[0], t0, &policy, &clock).unwrap();
    let victim = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let slipped = Arc::new(AtomicUsize::new(0));

    let checkers: Vec<_> = (0..CHECKERS)
        .map(|_| {
            let (store, sids, victim, done, slipped) = (
                store.clone(),
                sids.clone(),
                victim.clone(),
                done.clone(),
                slipped.clone(),
            );
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let k = victim.load(Ordering::SeqCst);
                    // A token of sid-k last active when it was revoked (the latest any
                    // token of it can be, by I3).
                    let facts = TokenFacts {
                        sid: &sids[k],
                        sub: "someone",
                        auth_time: t0,
                        lat: t0 + i64::try_from(k).unwrap(),
                        generation: 0,
                    };
                    if !store.is_revoked(facts).unwrap() {
                        slipped.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();

    for k in 1..=ROUNDS {
        victim.store(k - 1, Ordering::SeqCst);
        clock.advance(secs(1));
        store.revoke_session(&sids[k], t0, &policy, &clock).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for c in checkers {
        c.join().unwrap();
    }
    assert_eq!(store.evictions(), ROUNDS as u64);
    assert_eq!(
        slipped.load(Ordering::SeqCst),
        0,
        "a revoked session was reported as not revoked while its entry was being evicted"
    );
}

/// Many threads revoking at capacity, with the clock moving: every revocation is still
/// in force afterwards, by entry or by watermark.
#[test]
fn concurrent_revocations_at_capacity_forget_none() {
    const THREADS: usize = 8;
    const EACH: usize = 500;
    let kit = TestKit::new();
    let clock = kit.clock().clone();
    let policy = *kit.config().policy();
    let store = MemoryDenylist::builder()
        .capacity(50)
        .build(&clock)
        .unwrap();
    let t0 = clock.now();
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (clock, stop) = (clock.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                clock.advance(secs(1));
                std::thread::yield_now();
            }
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, clock) = (store.clone(), clock.clone());
            std::thread::spawn(move || {
                let mut done = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let sid = format!("t{t}-{i}");
                    // Any token of it was last active no later than now (I3).
                    let lat = clock.now();
                    store.revoke_session(&sid, t0, &policy, &clock).unwrap();
                    // (No bound on `len()` here: read while other threads revoke, DashMap's
                    // shard-by-shard count is not a snapshot and a preempted reader can
                    // over-count. The exact bound is checked once all threads are done.)
                    done.push((sid, lat));
                }
                done
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    ticker.join().unwrap();

    assert!(store.len() <= 50, "len {}", store.len());
    assert_eq!(
        store.len() as u64 + store.evictions(),
        (THREADS * EACH) as u64
    );
    for (sid, lat) in &all {
        let facts = TokenFacts {
            sid,
            sub: "someone",
            auth_time: t0,
            lat: *lat,
            generation: 0,
        };
        assert!(
            store.is_revoked(facts).unwrap(),
            "{sid} (lat {lat}) forgotten"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 7. The journal: restarts, torn lines, compaction (I1)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn journaled_revocations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("revocations.jsonl");
    let kit = TestKit::new();
    let store = journaled(&kit, &path, 1000);
    let kit = kit.with_store(store);
    let app = router(&kit);

    let alice = Client::minted(&kit, "alice");
    let alice_other = Client::minted(&kit, "alice");
    let bob = Client::minted(&kit, "bob");
    let carol_a = Client::minted(&kit, "carol");
    let carol_b = Client::minted(&kit, "carol");
    kit.advance(secs(10));
    alice.logout(&kit, &app).await;
    bob.logout(&kit, &app).await;
    carol_a.logout_all(&kit, &app).await;
    assert_eq!(kinds(&journal(&path)), ["s", "s", "u"]);

    // Restart: a new store from the same journal, same config and clock. (The old
    // process is gone: its store, and the journal lock it held, go first.)
    drop(app);
    let kit = release(kit);
    let store = journaled(&kit, &path, 1000);
    assert_eq!(store.len(), 3);
    let kit = kit.with_store(store.clone());
    let app = router(&kit);
    for (what, c) in [
        ("alice", &alice),
        ("bob", &bob),
        ("carol a", &carol_a),
        ("carol b", &carol_b),
    ] {
        c.get(&kit, &app, "/me")
            .await
            .assert_refused_and_cleared(Refusal::Revoked, what);
    }
    alice_other
        .get(&kit, &app, "/me")
        .await
        .assert_ok("alice's other session");
    // The subject revocation time came back too: a login in the same second works.
    let (carol_new, _) = login_as(&kit, &app, "carol").await;
    carol_new
        .get(&kit, &app, "/me")
        .await
        .assert_ok("carol after restart");
    assert_eq!(store.subject_revoked_at("carol"), Some(kit.now()));
}

#[tokio::test]
async fn a_second_store_cannot_open_a_journal_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let kit = TestKit::new();
    let first = journaled(&kit, &path, 10);
    let second = MemoryDenylist::builder().journal(&path).build(kit.clock());
    let err = second.expect_err("a journal is one process's");
    assert!(err.to_string().contains("in use"), "{err}");
    drop(first);
    journaled(&kit, &path, 10);
}

#[tokio::test]
async fn a_torn_or_corrupt_journal_line_is_skipped_and_everything_else_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let kit = TestKit::new();
    let kit = kit.clone().with_store(journaled(&kit, &path, 1000));
    let app = router(&kit);

    let alice = Client::minted(&kit, "alice");
    let bob = Client::minted(&kit, "bob");
    let carol = Client::minted(&kit, "carol");
    let dave = Client::minted(&kit, "dave");
    kit.advance(secs(10));
    alice.logout(&kit, &app).await;
    bob.logout(&kit, &app).await;
    carol.logout(&kit, &app).await;
    drop(app);

    // A corrupt line in the middle, and a torn last write.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let damaged = format!(
        "{}\n{{\"t\":\"s\",\"sid\":\u{1}garbage\n{}\n{}\n{{\"t\":\"s\",\"sid\":\"torn-wri",
        lines[0], lines[1], lines[2]
    );
    std::fs::write(&path, damaged).unwrap();

    let kit = release(kit);
    let store = journaled(&kit, &path, 1000);
    assert_eq!(store.len(), 3, "every readable line kept");
    let lines = journal(&path); // and the rewritten file is clean
    assert_eq!(kinds(&lines), ["s", "s", "s"]);
    // The two unreadable lines were kept aside, not thrown away.
    let rejected = std::fs::read_to_string(dir.path().join("revocations.jsonl.rejected")).unwrap();
    assert_eq!(rejected.lines().count(), 2);
    assert!(rejected.contains("garbage") && rejected.contains("torn-wri"));
    let kit = kit.with_store(store);
    let app = router(&kit);
    for (what, c) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        c.get(&kit, &app, "/me")
            .await
            .assert_refused_and_cleared(Refusal::Revoked, what);
    }
    dave.get(&kit, &app, "/me").await.assert_ok("dave");

    // A revocation appended after the repair is not glued to a torn line: it survives
    // the next restart too.
    dave.logout(&kit, &app).await;
    assert_eq!(journal(&path).len(), 4);
    drop(app);
    let kit = release(kit);
    let kit = kit.clone().with_store(journaled(&kit, &path, 1000));
    let app = router(&kit);
    assert_eq!(kit.store().len(), 4);
    for (what, c) in [
        ("alice", &alice),
        ("bob", &bob),
        ("carol", &carol),
        ("dave", &dave),
    ] {
        c.get(&kit, &app, "/me")
            .await
            .assert_refused_and_cleared(Refusal::Revoked, what);
    }
}

#[tokio::test]
async fn expired_journal_entries_are_compacted_away_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let kit = TestKit::new(); // idle 30 min, absolute 8 h, leeway 5 s
    let t0 = kit.now();
    let kit = kit.clone().with_store(journaled(&kit, &path, 1000));
    let app = router(&kit);

    let alice = Client::minted(&kit, "alice");
    let carol = Client::minted(&kit, "carol");
    kit.advance(secs(10));
    alice.logout(&kit, &app).await; // lives until min(t0 + 8 h, t0 + 10 + 30 min) + 5 s
    carol.logout_all(&kit, &app).await; // lives until t0 + 10 + 8 h + 5 s
    kit.clock().set(t0 + 1814);
    let dave = Client::minted(&kit, "dave");
    dave.logout(&kit, &app).await; // lives until t0 + 1814 + 30 min + 5 s
    assert_eq!(journal(&path).len(), 3);
    drop(app);

    // One second before alice's entry expires: all kept.
    let kit = release(kit);
    let store = journaled(&kit, &path, 1000);
    assert_eq!(store.len(), 3);
    assert_eq!(journal(&path).len(), 3);
    drop(store);

    // At its expiry: compacted away at open.
    kit.advance(secs(1));
    let store = journaled(&kit, &path, 1000);
    assert_eq!(store.len(), 2);
    let lines = journal(&path);
    assert_eq!(kinds(&lines), ["s", "u"]);
    assert!(
        lines
            .iter()
            .all(|l| l["sid"] != json!(alice.claims(&kit).sid))
    );
    let kit2 = kit.clone().with_store(store);
    let app = router(&kit2);
    // Alice's token is dead by time now; dropping her entry re-admits nothing.
    alice
        .get(&kit2, &app, "/me")
        .await
        .assert_refused_and_cleared(Refusal::ExpiredIdle, "alice after compaction");
    dave.get(&kit2, &app, "/me")
        .await
        .assert_refused_and_cleared(Refusal::Revoked, "dave");
    drop(app);
    drop(kit2);

    // Past every TTL: the journal ends empty.
    kit.clock().set(t0 + 10 + 8 * 3600 + 5);
    let store = journaled(&kit, &path, 1000);
    assert_eq!(store.len(), 0);
    assert_eq!(journal(&path).len(), 0);
}

#[tokio::test]
async fn the_overflow_watermark_survives_restarts_even_with_a_smaller_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.jsonl");
    let kit = TestKit::new();
    let store = journaled(&kit, &path, 2);
    let kit = kit.with_store(store.clone());
    let app = router(&kit);

    let first: Vec<Client> = (0..4)
        .map(|i| Client::minted(&kit, &format!("user{i}")))
        .collect();
    let mut latest = first.clone();
    let mut revoked_at = Vec::new();
    for i in 0..4 {
        kit.advance(secs(120));
        for c in latest.iter_mut().skip(i) {
            c.touch(&kit, &app, "active").await;
        }
        latest[i].logout(&kit, &app).await;
        revoked_at.push(kit.now());
    }
    assert_eq!(store.evictions(), 2);
    assert_eq!(store.watermark(), Some(revoked_at[1]));
    drop(app);
    drop(store);

    let check = |kit: TestKit| {
        let (first, latest) = (first.clone(), latest.clone());
        async move {
            let app = router(&kit);
            for (j, (f, l)) in first.iter().zip(&latest).enumerate() {
                for (which, c) in [("first", f), ("latest", l)] {
                    c.get(&kit, &app, "/me")
                        .await
                        .assert_refused_and_cleared(Refusal::Revoked, &format!("user{j} {which}"));
                }
            }
        }
    };

    let kit = release(kit);
    let store = journaled(&kit, &path, 2);
    assert_eq!(store.watermark(), Some(revoked_at[1]));
    assert_eq!(store.len(), 2);
    assert_eq!(kinds(&journal(&path)), ["s", "s", "w"]);
    let kit = kit.with_store(store);
    check(kit.clone()).await;

    // Restart with room for one: the older of the two is evicted at load.
    let kit = release(kit);
    let store = journaled(&kit, &path, 1);
    assert_eq!(store.watermark(), Some(revoked_at[2]));
    assert_eq!(store.len(), 1);
    assert_eq!(kinds(&journal(&path)), ["s", "w"]);
    check(kit.with_store(store)).await;
}

// ---------------------------------------------------------------------------------------
// 8. Bounded memory (I2, I4)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn memory_stays_bounded_by_logout_rate_times_idle_plus_leeway() {
    const STEPS: i64 = 5_000;
    const SWEEP_EVERY: i64 = 60;
    const IDLE: i64 = 10 * 60;
    const LEEWAY: i64 = 5;
    // One logout per second, each right after its login (auth_time = revoked_at = R):
    // its entry lives until min(R + absolute, R + idle) + leeway = R + idle + leeway, so
    // a sweep at time s keeps exactly the revocations of (s - idle - leeway, s]:
    // idle + leeway of them. Between sweeps, up to SWEEP_EVERY more arrive.
    const HELD_AFTER_SWEEP: i64 = IDLE + LEEWAY; // 605
    const BOUND: i64 = HELD_AFTER_SWEEP + SWEEP_EVERY; // 665

    let kit = TestKit::configure(|b| {
        b.idle_timeout(secs(10 * 60))
            .absolute_timeout(secs(3600))
            .leeway(secs(5))
    })
    .unwrap();
    let store = kit.store().clone();
    let app = router(&kit);
    let t0 = kit.now();
    let mut tokens: Vec<Client> = Vec::with_capacity(STEPS as usize);
    let mut max_held = 0;

    for i in 1..=STEPS {
        kit.advance(secs(1));
        let (client, _) = login_as(&kit, &app, "alice").await;
        client.logout(&kit, &app).await;
        tokens.push(client);

        // Exactly: what survived the last sweep, plus this period's revocations.
        let k = (i - 1) / SWEEP_EVERY;
        let r = i - SWEEP_EVERY * k;
        let expected = (SWEEP_EVERY * k).min(HELD_AFTER_SWEEP) + r;
        let held = i64::try_from(store.len()).unwrap();
        assert_eq!(held, expected, "step {i}");
        assert!(held <= BOUND, "step {i}: {held} > {BOUND}");
        max_held = max_held.max(held);

        if i % SWEEP_EVERY == 0 {
            store.sweep(kit.now());
            let held = i64::try_from(store.len()).unwrap();
            assert_eq!(held, i.min(HELD_AFTER_SWEEP), "after sweep at step {i}");
            if i > HELD_AFTER_SWEEP {
                // I2 is tight and safe: the entry just dropped belongs to a token that
                // has just expired; the oldest one kept still refuses a live token.
                let dropped = &tokens[usize::try_from(i - HELD_AFTER_SWEEP - 1).unwrap()];
                dropped
                    .get(&kit, &app, "/me")
                    .await
                    .assert_refused_and_cleared(Refusal::ExpiredIdle, &format!("swept at {i}"));
                let kept = &tokens[usize::try_from(i - HELD_AFTER_SWEEP).unwrap()];
                kept.get(&kit, &app, "/me")
                    .await
                    .assert_refused_and_cleared(Refusal::Revoked, &format!("kept at {i}"));
            }
        }
    }
    assert_eq!(max_held, BOUND);
    assert_eq!(kit.now(), t0 + STEPS);

    // Past every TTL, a sweep empties it; one second earlier, only the last is left.
    kit.advance(secs(u64::try_from(HELD_AFTER_SWEEP - 1).unwrap()));
    store.sweep(kit.now());
    assert_eq!(store.len(), 1);
    kit.advance(secs(1));
    store.sweep(kit.now());
    assert_eq!(store.len(), 0);
    assert!(store.is_empty());
    assert_eq!(store.evictions(), 0);
    assert_eq!(store.watermark(), None);
}

#[tokio::test]
async fn each_revocation_is_kept_exactly_as_long_as_a_token_of_it_could_be_valid() {
    let kit = TestKit::configure(|b| {
        b.idle_timeout(secs(30 * 60))
            .absolute_timeout(secs(3600))
            .leeway(secs(5))
    })
    .unwrap();
    let store = kit.store().clone();
    let app = router(&kit);
    let t0 = kit.now();

    // Alice is active until 50 min in, then logs out: her absolute cap (t0 + 1 h) comes
    // before revoked_at + idle, so her entry lives until t0 + 1 h + leeway.
    let mut alice = Client::minted(&kit, "alice");
    kit.advance(secs(25 * 60));
    alice.touch(&kit, &app, "alice").await;
    kit.advance(secs(25 * 60));
    alice.touch(&kit, &app, "alice").await;
    alice.logout(&kit, &app).await;
    // Bob logs in and out at 50 min: revoked_at + idle comes first.
    let bob = Client::minted(&kit, "bob");
    bob.logout(&kit, &app).await;
    // Carol's "log out everywhere" at 50 min lives until then + absolute + leeway.
    let carol = Client::minted(&kit, "carol");
    carol.logout_all(&kit, &app).await;
    assert_eq!(store.len(), 3);

    let at = |t: i64| kit.clock().set(t0 + t);
    at(3604);
    assert_eq!(store.sweep(kit.now()), 0);
    alice
        .get(&kit, &app, "/me")
        .await
        .assert_refused_and_cleared(Refusal::Revoked, "alice before her TTL");
    at(3605);
    assert_eq!(store.sweep(kit.now()), 1);
    alice
        .get(&kit, &app, "/me")
        .await
        .assert_refused_and_cleared(Refusal::ExpiredAbsolute, "alice at her TTL");

    at(3000 + 1800 + 4);
    assert_eq!(store.sweep(kit.now()), 0);
    at(3000 + 1800 + 5);
    assert_eq!(store.sweep(kit.now()), 1);
    bob.get(&kit, &app, "/me")
        .await
        .assert_refused_and_cleared(Refusal::ExpiredIdle, "bob at his TTL");

    at(3000 + 3600 + 4);
    assert_eq!(store.sweep(kit.now()), 0);
    assert_eq!(store.subject_revoked_at("carol"), Some(t0 + 3000));
    at(3000 + 3600 + 5);
    assert_eq!(store.sweep(kit.now()), 1);
    assert_eq!(store.subject_revoked_at("carol"), None);
    assert!(store.is_empty());
}
