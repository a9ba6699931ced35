//! Memory of the revocation denylist: the RSS of this process before and after revoking
//! N sessions (default 1,000,000) in a `MemoryDenylist` of capacity `max(N, 1M)` (the
//! default, 1M, unless N is larger), read from `/proc/self/status` (`VmRSS`, `VmHWM`);
//! then the time of `is_revoked` lookups at that size.
//!
//! ```text
//! denylist-rss [N] [LOOKUPS]
//! ```
//!
//! Session ids have the shape of real ones (16 random bytes, base64url: 22 characters).
//! Lookups (default 2,000,000) ask about ids spread over the whole store, half of them
//! revoked (hits) and half never revoked (misses), in an order that defeats the caches as
//! real traffic would; `lookup_same_ns` asks about one id (a miss) again and again (the
//! criterion bench's method, everything in cache). Each is the fastest of 5 rounds. Prints `key=value` lines; the last is
//! `rss_after_mb=…`.

use std::time::Instant;

use jwt_session::TokenFacts;
use jwt_session::{MemoryDenylist, Policy, RevocationStore, SystemClock};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A session id of the real shape: 16 distinct bytes per counter value (`i` times an odd
/// constant mod 2^128, a bijection), base64url without padding: 22 characters.
fn sid(i: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = u128::from(i)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
        .to_be_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for k in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    out
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // Default settings: idle 30 min, absolute 8 h, reissue-after 60 s, leeway 5 s.
    let policy = Policy::new(30 * 60, 8 * 3600, 60, 5).expect("default policy");
    let clock = SystemClock;
    let lookups: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let capacity = usize::try_from(n).expect("N fits in usize").max(1_000_000);
    let store = MemoryDenylist::builder()
        .capacity(capacity)
        .build(&clock)
        .expect("denylist");
    let before = status_kib("VmRSS");
    println!("entries={n}");
    println!("capacity={}", store.capacity());
    println!("rss_before_kib={before}");
    let started = Instant::now();
    let now = jwt_session::Clock::now(&clock);
    let mut first = String::new();
    for i in 0..n {
        let id = sid(i);
        store
            .revoke_session(&id, now, &policy, &clock)
            .expect("revoke");
        if i == 0 {
            first = id;
        }
    }
    let fill = started.elapsed();
    assert_eq!(store.len() as u64, n, "every revocation is held");
    assert_eq!(store.evictions(), 0, "no eviction under capacity");
    let probe = TokenFacts {
        sid: &first,
        sub: "alice",
        auth_time: now,
        lat: now,
        generation: 0,
    };
    assert!(
        store.is_revoked(probe).expect("lookup"),
        "a revoked id is refused"
    );
    let after = status_kib("VmRSS");
    let peak = status_kib("VmHWM");
    let delta = after.saturating_sub(before);
    println!("fill_seconds={:.2}", fill.as_secs_f64());
    println!("rss_after_kib={after}");
    println!("rss_peak_kib={peak}");
    println!("rss_delta_kib={delta}");
    if n > 0 {
        println!("bytes_per_entry={:.0}", delta as f64 * 1024.0 / n as f64);
    }
    println!("rss_peak_mb={:.1}", peak as f64 * 1024.0 / 1e6);
    println!("rss_after_mib={:.1}", after as f64 / 1024.0);
    if n > 0 && lookups > 0 {
        // Ids prepared first, so that building them is not timed: even k a revoked id
        // (a hit), odd k one never revoked (a miss), both spread over the whole store.
        let ids: Vec<String> = (0..lookups)
            .map(|k| {
                let spread = k.wrapping_mul(0x2545_F491_4F6C_DD1D) % n;
                if k % 2 == 0 {
                    sid(spread)
                } else {
                    sid(n + spread)
                }
            })
            .collect();
        let facts = |id| TokenFacts {
            sid: id,
            sub: "alice",
            auth_time: now,
            lat: now,
            generation: 0,
        };
        // The fastest of ROUNDS rounds: on a shared machine the others measure the
        // neighbours too.
        const ROUNDS: usize = 5;
        let mut spread_ns = f64::INFINITY;
        let mut same_ns = f64::INFINITY;
        for _ in 0..ROUNDS {
            let mut refused = 0u64;
            let started = Instant::now();
            for id in &ids {
                refused += u64::from(
                    store
                        .is_revoked(std::hint::black_box(facts(id)))
                        .expect("lookup"),
                );
            }
            let ns = started.elapsed().as_nanos() as f64 / lookups as f64;
            spread_ns = spread_ns.min(ns);
            assert_eq!(
                refused,
                lookups.div_ceil(2),
                "hits refused, misses accepted"
            );
            let same = &ids[1];
            let started = Instant::now();
            for _ in 0..lookups {
                std::hint::black_box(
                    store
                        .is_revoked(std::hint::black_box(facts(same)))
                        .expect("lookup"),
                );
            }
            same_ns = same_ns.min(started.elapsed().as_nanos() as f64 / lookups as f64);
        }
        println!("lookups={lookups}");
        println!("lookup_spread_ns={spread_ns:.1}");
        println!("lookup_same_ns={same_ns:.1}");
    }
    println!("rss_after_mb={:.1}", after as f64 * 1024.0 / 1e6);
    drop(store);
}
