//! The whole store against a `HashMap` model: revocations of both kinds of id (compact and
//! text), retirements, logouts everywhere, records replayed from elsewhere (older ones
//! too), sweeps, and eviction at a small capacity — after every step the store holds
//! exactly what the model says, with the same dates, and the same watermark.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

use super::MemoryDenylist;
use super::table::encode_sid;
use crate::claims::Policy;
use crate::clock::{Clock as _, ManualClock};
use crate::denylist::journal::{FULL, Record};
use crate::denylist::{RevocationStore, TokenFacts, session_ttl, subject_ttl};

#[derive(Debug, Clone)]
enum Op {
    Revoke {
        id: usize,
        auth_back: i64,
    },
    Retire {
        id: usize,
        generation: u32,
    },
    Subject {
        user: usize,
    },
    Replay {
        id: usize,
        back: i64,
        ttl: i64,
        floor: u32,
    },
    Advance {
        secs: u64,
    },
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..IDS, 0..400i64).prop_map(|(id, auth_back)| Op::Revoke { id, auth_back }),
        2 => (0..IDS, 0..5u32).prop_map(|(id, generation)| Op::Retire { id, generation }),
        1 => (0..USERS).prop_map(|user| Op::Subject { user }),
        2 => (0..IDS, 0..30i64, 1..900i64, prop_oneof![Just(FULL), 0..5u32])
            .prop_map(|(id, back, ttl, floor)| Op::Replay { id, back, ttl, floor }),
        3 => prop_oneof![Just(0u64), Just(1), 1..200u64].prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Sweep),
    ]
}

const IDS: usize = 10;
const USERS: usize = 3;

/// Ids 0..6 are the crate's shape (held compact), the rest text.
fn sid(id: usize) -> String {
    if id < 6 {
        let mut bytes = [0x5A; 16];
        bytes[0] = u8::try_from(id).unwrap();
        encode_sid(&bytes)
    } else {
        format!("text-{id}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    at: i64,
    exp: i64,
    /// A session's floor, or a subject's cut-off.
    floor: u32,
    before: Option<i64>,
}

fn run(capacity: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::default();
    let policy = Policy::new(60, 300, 10, 2).unwrap();
    let list = MemoryDenylist::builder()
        .capacity(capacity)
        .build(&clock)
        .unwrap();
    let mut model: HashMap<String, Held> = HashMap::new();
    let mut watermark: Option<i64> = None;
    for (step, op) in ops.iter().enumerate() {
        let now = clock.now();
        // The key recorded by this step, if it records one.
        let recorded = match op {
            Op::Revoke { id, auth_back } => {
                let sid = sid(*id);
                list.revoke_session(&sid, now - auth_back, &policy, &clock)
                    .unwrap();
                let exp = session_ttl(now - auth_back, now, &policy);
                model.insert(
                    sid.clone(),
                    Held {
                        at: now,
                        exp,
                        floor: FULL,
                        before: None,
                    },
                );
                Some(sid)
            }
            Op::Retire { id, generation } => {
                let sid = sid(*id);
                list.retire_generations(&sid, *generation, now - 10, &policy, &clock)
                    .unwrap();
                let old = model.get(&sid).copied();
                let exp = session_ttl(now - 10, now, &policy).max(old.map_or(i64::MIN, |h| h.exp));
                let floor = (*generation).max(old.map_or(0, |h| h.floor));
                model.insert(
                    sid.clone(),
                    Held {
                        at: now,
                        exp,
                        floor,
                        before: None,
                    },
                );
                Some(sid)
            }
            Op::Subject { user } => {
                let sub = format!("user-{user}");
                let before = list.revoke_subject(&sub, &policy, &clock).unwrap();
                let key = format!("sub:{sub}");
                let expected = match model.get(&key).and_then(|h| h.before) {
                    Some(p) if p >= now => p + 1,
                    _ => now,
                };
                prop_assert_eq!(before, expected);
                let exp = subject_ttl(before, &policy);
                model.insert(
                    key.clone(),
                    Held {
                        at: now,
                        exp,
                        floor: FULL,
                        before: Some(before),
                    },
                );
                Some(key)
            }
            Op::Replay {
                id,
                back,
                ttl,
                floor,
            } => {
                let sid = sid(*id);
                let (at, exp) = (now - back, now - back + ttl);
                list.apply(&Record::Session {
                    sid: sid.clone(),
                    exp,
                    at,
                    floor: *floor,
                })
                .unwrap();
                match model.get(&sid).copied() {
                    Some(old) if old.exp >= exp && old.floor >= *floor => None,
                    old => {
                        let exp = exp.max(old.map_or(i64::MIN, |h| h.exp));
                        let floor = (*floor).max(old.map_or(0, |h| h.floor));
                        // The later revocation time: an eviction's watermark must cover
                        // what the merged entry refused.
                        let at = at.max(old.map_or(i64::MIN, |h| h.at));
                        model.insert(
                            sid.clone(),
                            Held {
                                at,
                                exp,
                                floor,
                                before: None,
                            },
                        );
                        Some(sid)
                    }
                }
            }
            Op::Advance { secs } => {
                clock.advance(Duration::from_secs(*secs));
                None
            }
            Op::Sweep => {
                let gone = list.sweep(now);
                let before = model.len();
                model.retain(|_, h| h.exp > now);
                prop_assert_eq!(gone, before - model.len(), "step {}: swept", step);
                None
            }
        };

        // What the store holds, keyed as the model keys it.
        let snapshot: HashMap<String, Held> = list
            .snapshot()
            .into_iter()
            .map(|e| {
                let key = if e.is_subject() {
                    format!("sub:{}", e.id)
                } else {
                    e.id.clone()
                };
                let held = Held {
                    at: e.revoked_at,
                    exp: e.expires_at,
                    floor: e.retired_below.unwrap_or(FULL),
                    before: e.before,
                };
                (key, held)
            })
            .collect();
        // Over capacity the store evicted, one at a time, one of the oldest other than
        // the revocation just recorded; the model follows its choice among equals.
        while model.len() > capacity {
            let oldest = model
                .iter()
                .filter(|(k, _)| Some(*k) != recorded.as_ref())
                .map(|(_, h)| h.at)
                .min()
                .unwrap();
            let gone = model
                .iter()
                .find(|(k, h)| {
                    h.at == oldest && Some(*k) != recorded.as_ref() && !snapshot.contains_key(*k)
                })
                .map(|(k, _)| k.clone());
            prop_assert!(
                gone.is_some(),
                "step {}: none of the oldest ({}) was evicted: {:?}",
                step,
                oldest,
                snapshot
            );
            model.remove(&gone.unwrap());
            watermark = Some(watermark.map_or(oldest, |w| w.max(oldest)));
        }
        prop_assert_eq!(&snapshot, &model, "step {}: {:?}", step, op);
        prop_assert_eq!(list.len(), model.len());
        prop_assert_eq!(list.watermark(), watermark, "step {}", step);
        // Lookups agree with what is held.
        for id in 0..IDS {
            let sid = sid(id);
            let facts = TokenFacts {
                sid: &sid,
                sub: "nobody",
                auth_time: now,
                lat: i64::MAX,
                generation: 2,
            };
            let expected = model.get(&sid).is_some_and(|h| 2 < h.floor);
            prop_assert_eq!(
                list.is_revoked(facts).unwrap(),
                expected,
                "step {}: {}",
                step,
                sid
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_store_agrees_with_a_hash_map_model(
        capacity in 1..6usize,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        run(capacity, &ops)?;
    }
}
