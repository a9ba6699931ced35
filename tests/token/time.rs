//! Time: exact boundaries, leeway, idle vs absolute, reissue, sliding.

use std::time::Duration;

use jwt_session::{Clock, DEFAULT_ISSUER, ManualClock, Policy, Refusal};

use crate::{ABSOLUTE, IDLE, T0, ed_codec, login, login_with, policy, sample_data};

#[test]
fn new_claims_start_the_session_at_now() {
    let c = login(T0);
    assert_eq!((c.auth_time, c.iat, c.lat), (T0, T0, T0));
    assert_eq!(c.exp, T0 + IDLE);
    assert_eq!(
        (c.iss.as_str(), c.aud.as_str()),
        (DEFAULT_ISSUER, DEFAULT_ISSUER)
    );
    assert_eq!(c.sub, "alice");
}

#[test]
fn zero_leeway_now_equal_to_exp_is_expired() {
    let p = policy(0);
    let c = login(T0);
    assert_eq!(c.check(c.exp - 1, &p), Ok(()));
    assert_eq!(c.check(c.exp, &p), Err(Refusal::ExpiredIdle));
    assert_eq!(c.check(c.exp + 1, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn seconds_left_counts_down_to_zero_at_exp() {
    let p = policy(0);
    let c = login(T0);
    assert_eq!(c.expires_at(&p), T0 + IDLE);
    assert_eq!(c.seconds_left(T0, &p), 1800);
    assert_eq!(c.seconds_left(c.exp - 1, &p), 1);
    assert_eq!(c.seconds_left(c.exp, &p), 0);
    assert_eq!(c.seconds_left(c.exp + 100, &p), 0);
}

#[test]
fn leeway_five_extends_expiry_by_exactly_five_seconds() {
    let p = policy(5);
    let c = login_with(T0, (), &p);
    assert_eq!(c.exp, T0 + IDLE);
    assert_eq!(c.check(c.exp + 4, &p), Ok(()));
    assert_eq!(c.check(c.exp + 5, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn zero_leeway_token_from_the_future_is_not_yet_valid() {
    let p = policy(0);
    let c = login(T0);
    assert_eq!(c.check(T0, &p), Ok(()));
    assert_eq!(c.check(T0 - 1, &p), Err(Refusal::NotYetValid));
}

#[test]
fn leeway_five_tolerates_exactly_five_seconds_of_future_iat() {
    let p = policy(5);
    let c = login_with(T0, (), &p);
    // Valid while iat <= now + leeway.
    assert_eq!(c.check(T0 - 5, &p), Ok(()));
    assert_eq!(c.check(T0 - 6, &p), Err(Refusal::NotYetValid));
}

#[test]
fn future_last_activity_is_not_yet_valid() {
    let p = policy(5);
    let mut c = login_with(T0, (), &p);
    c.lat = T0 + 100;
    c.exp = c.lat + IDLE;
    assert_eq!(c.check(T0 + 95, &p), Ok(()));
    assert_eq!(c.check(T0 + 94, &p), Err(Refusal::NotYetValid));
}

#[test]
fn leeway_is_applied_to_the_absolute_deadline_exactly() {
    for leeway in [0_i64, 5] {
        let p = Policy::new(1800, 3600, 60, leeway.unsigned_abs()).unwrap();
        // Slid shortly before the cap: exp is the absolute deadline.
        let c = login_with(T0, (), &p).slid(T0 + 3000, &p).unwrap();
        assert_eq!(c.exp, T0 + 3600);
        assert_eq!(
            c.check(T0 + 3600 + leeway - 1, &p),
            Ok(()),
            "leeway {leeway}"
        );
        assert_eq!(
            c.check(T0 + 3600 + leeway, &p),
            Err(Refusal::ExpiredAbsolute),
            "leeway {leeway}"
        );
    }
}

#[test]
fn idle_expiry_is_reported_as_idle() {
    let p = Policy::new(1800, 3600, 60, 0).unwrap();
    let c = login_with(T0, (), &p);
    assert_eq!(c.check(T0 + 1800, &p), Err(Refusal::ExpiredIdle));
    assert_eq!(c.check(T0 + 3599, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn absolute_expiry_is_reported_as_absolute() {
    let p = Policy::new(1800, 3600, 60, 0).unwrap();
    let c = login_with(T0, (), &p).slid(T0 + 3000, &p).unwrap();
    // The idle deadline (T0 + 4800) is far away; only the absolute one has passed.
    assert_eq!(c.idle_deadline(&p), T0 + 4800);
    assert_eq!(c.absolute_deadline(&p), T0 + 3600);
    assert_eq!(c.check(T0 + 3600, &p), Err(Refusal::ExpiredAbsolute));
}

#[test]
fn absolute_wins_when_both_deadlines_passed() {
    let p = Policy::new(1800, 3600, 60, 0).unwrap();
    let c = login_with(T0, (), &p);
    assert!(T0 + 4000 >= c.idle_deadline(&p) && T0 + 4000 >= c.absolute_deadline(&p));
    assert_eq!(c.check(T0 + 4000, &p), Err(Refusal::ExpiredAbsolute));
    assert_eq!(c.check(T0 + 3600, &p), Err(Refusal::ExpiredAbsolute));
}

#[test]
fn a_stricter_exp_in_the_token_is_kept() {
    // A token issued under a stricter policy keeps its own exp.
    let p = policy(0);
    let mut c = login(T0);
    c.exp = T0 + 600;
    assert_eq!(c.check(T0 + 599, &p), Ok(()));
    assert_eq!(c.check(T0 + 600, &p), Err(Refusal::ExpiredIdle));
}

#[test]
fn reissue_is_due_exactly_at_lat_plus_reissue_after() {
    let p = policy(5);
    let c = login_with(T0, (), &p);
    assert!(!c.reissue_due(T0, &p));
    assert!(!c.reissue_due(T0 + 59, &p));
    assert!(c.reissue_due(T0 + 60, &p));
    assert!(c.reissue_due(T0 + 61, &p));
}

#[test]
fn slid_keeps_the_session_and_renews_the_token() {
    let p = policy(0);
    let c = login_with(T0, sample_data(), &p);
    let now = T0 + 100;
    let next = c.slid(now, &p).unwrap();
    assert_eq!(next.sid, c.sid);
    assert_eq!(next.sub, c.sub);
    assert_eq!(next.auth_time, c.auth_time);
    assert_eq!(next.csrf, c.csrf);
    assert_eq!(next.data, c.data);
    assert_eq!(
        (next.iss.as_str(), next.aud.as_str()),
        (c.iss.as_str(), c.aud.as_str())
    );
    assert_ne!(next.jti, c.jti);
    assert_eq!((next.iat, next.lat), (now, now));
    assert_eq!(next.exp, (now + IDLE).min(c.auth_time + ABSOLUTE));
    assert_eq!(next.exp, now + IDLE);
}

#[test]
fn slid_never_passes_the_absolute_cap_nor_moves_auth_time() {
    let p = policy(0);
    let c = login(T0);
    let cap = T0 + ABSOLUTE;
    for now in [
        cap - IDLE - 1,
        cap - IDLE,
        cap - 10,
        cap - 1,
        cap,
        cap + 1000,
    ] {
        let next = c.slid(now, &p).unwrap();
        assert_eq!(next.auth_time, T0, "at {now}");
        assert!(next.exp <= cap, "at {now}: exp {} past the cap", next.exp);
        assert_eq!(next.exp, (now + IDLE).min(cap), "at {now}");
        assert_eq!(next.absolute_deadline(&p), cap);
    }
    assert_eq!(
        c.slid(cap, &p).unwrap().check(cap, &p),
        Err(Refusal::ExpiredAbsolute)
    );
}

#[test]
fn activity_keeps_a_session_past_idle_until_the_absolute_cap() {
    let p = policy(0);
    let codec = ed_codec();
    let clock = ManualClock::new(T0);
    let first = login_with(clock.now(), (), &p);
    let mut token = codec.encode(&first).unwrap();
    let step = Duration::from_secs(1000); // < idle
    let refused_at = loop {
        clock.advance(step);
        let now = clock.now();
        let claims = codec.decode::<()>(token.as_bytes()).unwrap().claims;
        match claims.check(now, &p) {
            Ok(()) => {
                assert!(claims.reissue_due(now, &p));
                token = codec.encode(&claims.slid(now, &p).unwrap()).unwrap();
            }
            Err(refusal) => break (now, refusal),
        }
    };
    // Alive long past the idle timeout thanks to activity, then ended by the cap,
    // at the first request at or after it.
    assert_eq!(refused_at.1, Refusal::ExpiredAbsolute);
    assert!(refused_at.0 >= T0 + ABSOLUTE && refused_at.0 < T0 + ABSOLUTE + 1000);
    // The first token alone died at the idle deadline.
    assert_eq!(first.check(T0 + IDLE, &p), Err(Refusal::ExpiredIdle));
}
