//! Security, round 2: hostile sibling cookies, full-origin checks, every time claim
//! bounded, the CSRF claim's shape, `nbf`, and what an overflow may evict. Each class has
//! a regression test through the public API (`oneshot`), and a property test checks the
//! layer against a small reference predicate over arbitrary signed claim sets.
//!
//! Raw claim sets are signed here with HMAC-SHA-256 (`hmac`), under a keyring holding
//! that HS256 key, so any JSON — even claims the crate would never mint — is validly
//! signed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::{HeaderValue, Request, Response, StatusCode, header};
use jwt_session::TokenFacts;
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{
    Clock, Key, Keyring, MAX_TIME, ManualClock, MemoryDenylist, Refusal, RevocationStore,
    SessionConfig, SessionConfigBuilder, SessionLayer,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;

use support::harness::{app, routes, send};

const SECRET: &[u8] = b"security-round-two-secret-32-bytes-long!";
const KID: &str = "hs-1";
const IDLE: i64 = 1800;
const ABSOLUTE: i64 = 8 * 3600;
const LEEWAY: i64 = 5;
const T0: i64 = 1_800_000_000;

// ---------------------------------------------------------------------------------------
// Harness: an HS256 keyring, a manual clock, raw signed claim sets
// ---------------------------------------------------------------------------------------

struct Harness {
    clock: ManualClock,
    layer: SessionLayer,
    app: Router,
}

fn harness(configure: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder) -> Harness {
    let clock = ManualClock::new(T0);
    let ring = Keyring::new(Key::hs256(KID, SECRET).unwrap()).unwrap();
    let builder = SessionConfig::builder(ring)
        .idle_timeout(Duration::from_secs(IDLE as u64))
        .absolute_timeout(Duration::from_secs(ABSOLUTE as u64))
        .leeway(Duration::from_secs(LEEWAY as u64))
        .clock(clock.clone());
    let config = configure(builder).build().unwrap();
    let store = MemoryDenylist::with_capacity(1000).unwrap();
    let layer = SessionLayer::<()>::new(config, store);
    let app = routes().layer(layer.clone());
    Harness { clock, layer, app }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token over exactly this claim set, validly signed with the harness key.
fn signed(claims: &Value) -> String {
    let header = json!({ "alg": "HS256", "kid": KID, "typ": "session+jwt" });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

const CSRF: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_";

/// The claims the crate mints for a login of `alice` at `now`.
fn claims_at(now: i64) -> Value {
    json!({
        "iss": "jwt-session", "aud": "jwt-session", "sub": "alice",
        "sid": "AAAAAAAAAAAAAAAAAAAAAA", "jti": "BBBBBBBBBBBBBBBBBBBBBB",
        "auth_time": now, "iat": now, "lat": now, "exp": now + IDLE,
        "csrf": CSRF, "dat": null,
    })
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn session_cookie(token: &str) -> String {
    format!("__Host-session={token}")
}

async fn body(res: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `GET /me` with these raw `Cookie` header values: the subject or the refusal.
async fn me_with_cookie_lines(app: &Router, lines: &[&[u8]]) -> Result<String, Refusal> {
    let mut req = Request::get("/me").body(Body::empty()).unwrap();
    for line in lines {
        req.headers_mut()
            .append(header::COOKIE, HeaderValue::from_bytes(line).unwrap());
    }
    let res = send(app, req).await;
    match refusal(&res) {
        Some(r) => Err(r),
        None => {
            let me: Value = serde_json::from_str(&body(res).await).unwrap();
            Ok(me["sub"].as_str().unwrap().to_owned())
        }
    }
}

async fn verdict(h: &Harness, claims: &Value) -> Result<(), Refusal> {
    let token = signed(claims);
    let line = session_cookie(&token);
    let http = me_with_cookie_lines(&h.app, &[line.as_bytes()]).await;
    let direct = h.layer.verify_token(&token).map(|_| ());
    assert_eq!(
        http.clone().map(|_| ()),
        direct,
        "HTTP and verify_token agree"
    );
    http.map(|_| ())
}

// ---------------------------------------------------------------------------------------
// 1. Hostile sibling cookies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn no_sibling_cookie_can_hide_the_session() {
    let h = harness(|b| b);
    let token = signed(&claims_at(T0));
    let session = session_cookie(&token);
    let long = format!("big={}", "x".repeat(3000));
    let hostile: Vec<Vec<u8>> = vec![
        b"evil=\xff\xfe\x80".to_vec(),      // not UTF-8
        b"\xc3\x28=bad-name".to_vec(),      // not UTF-8 in the name
        b"noequals".to_vec(),               // no `=`
        b"q=\"unterminated".to_vec(),       // a lone quote
        b"x=\"a\\\"b\"".to_vec(),           // escaped quotes
        b"=nameless".to_vec(),              // empty name
        b"__Host-session2=other".to_vec(),  // a longer name
        b"x__Host-session=other".to_vec(),  // a prefixed name
        b"__host-session=other".to_vec(),   // another case
        b"%5F_Host-session=other".to_vec(), // percent-encoded name
        b"sp=a b\tc".to_vec(),              // whitespace inside
        long.into_bytes(),
    ];
    for bad in &hostile {
        let name = String::from_utf8_lossy(bad);
        let before = [bad.as_slice(), b"; ", session.as_bytes()].concat();
        let after = [session.as_bytes(), b"; ", bad.as_slice(), b";"].concat();
        let around = [
            bad.as_slice(),
            b";",
            session.as_bytes(),
            b";",
            bad.as_slice(),
        ]
        .concat();
        for line in [&before, &after, &around] {
            assert_eq!(
                me_with_cookie_lines(&h.app, &[line]).await,
                Ok("alice".into()),
                "sibling {name:?} on the same line"
            );
        }
        // HTTP/2 style: the hostile cookie on a line of its own, before or after.
        for lines in [
            [bad.as_slice(), session.as_bytes()],
            [session.as_bytes(), bad],
        ] {
            assert_eq!(
                me_with_cookie_lines(&h.app, &lines).await,
                Ok("alice".into()),
                "sibling {name:?} on another line"
            );
        }
    }
}

#[tokio::test]
async fn the_first_session_cookie_decides_and_a_refused_one_is_never_skipped() {
    let h = harness(|b| b);
    let good = session_cookie(&signed(&claims_at(T0)));
    let forged = session_cookie(&format!("{}x", signed(&claims_at(T0))));
    let expired = session_cookie(&signed(&with(claims_at(T0 - IDLE - 100), json!({}))));
    for (first, refusal) in [
        (&forged, Refusal::BadSignature),
        (&expired, Refusal::ExpiredIdle),
        (&"__Host-session=garbage".to_owned(), Refusal::Malformed),
    ] {
        let line = format!("{first}; {good}");
        assert_eq!(
            me_with_cookie_lines(&h.app, &[line.as_bytes()]).await,
            Err(refusal)
        );
        assert_eq!(
            me_with_cookie_lines(&h.app, &[first.as_bytes(), good.as_bytes()]).await,
            Err(refusal),
            "across Cookie lines too"
        );
    }
    // An empty value is no cookie at all: the next one is the first session cookie.
    let line = format!("__Host-session=; {good}");
    assert_eq!(
        me_with_cookie_lines(&h.app, &[line.as_bytes()]).await,
        Ok("alice".into())
    );
    // A session cookie whose value is not UTF-8 is refused as malformed, not missing.
    let line = b"__Host-session=\xff\xfe; other=1";
    assert_eq!(
        me_with_cookie_lines(&h.app, &[line]).await,
        Err(Refusal::Malformed)
    );
}

// ---------------------------------------------------------------------------------------
// 2. Full-origin checks
// ---------------------------------------------------------------------------------------

async fn post_write(h: &Harness, headers: &[(&str, &str)]) -> Result<StatusCode, Refusal> {
    let token = signed(&claims_at(h.clock.now()));
    let mut req = Request::post("/write")
        .header(header::COOKIE, session_cookie(&token))
        .header("x-csrf-token", CSRF);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = send(&h.app, req.body(Body::empty()).unwrap()).await;
    match refusal(&res) {
        Some(r) => Err(r),
        None => Ok(res.status()),
    }
}

#[tokio::test]
async fn origin_is_compared_with_scheme_host_and_port() {
    // Secure cookies (the default): the site is https.
    let h = harness(|b| b.trusted_origin("https://spa.example:443/"));
    let host = ("host", "app.example");
    for (origin, ok) in [
        ("https://app.example", true),
        ("https://app.example:443", true),
        ("HTTPS://APP.EXAMPLE", true),
        ("http://app.example", false),
        ("http://app.example:443", false),
        ("https://app.example:8443", false),
        ("https://app.example.evil", false),
        ("https://spa.example", true),
        ("http://spa.example", false),
        ("https://app.example/path", false),
        ("https://user@app.example", false),
        ("null", false),
        ("", false),
    ] {
        let got = post_write(&h, &[host, ("origin", origin)]).await;
        let want = if ok {
            Ok(StatusCode::OK)
        } else {
            Err(Refusal::OriginRejected)
        };
        assert_eq!(got, want, "origin {origin:?} against https://app.example");
    }
    // A port in Host must be matched, default ports normalised.
    let got = post_write(
        &h,
        &[
            ("host", "app.example:443"),
            ("origin", "https://app.example"),
        ],
    )
    .await;
    assert_eq!(got, Ok(StatusCode::OK));
    let got = post_write(
        &h,
        &[("host", "[::1]:8443"), ("origin", "https://[::1]:8443")],
    )
    .await;
    assert_eq!(got, Ok(StatusCode::OK));

    // Development cookies (plain http): the site is http.
    let h = harness(|b| b.development_cookies());
    let session_line = |token: &str| format!("session={token}");
    let token = signed(&claims_at(T0));
    for (origin, ok) in [
        ("http://127.0.0.1:3000", true),
        ("https://127.0.0.1:3000", false),
    ] {
        let req = Request::post("/write")
            .header(header::COOKIE, session_line(&token))
            .header("x-csrf-token", CSRF)
            .header("host", "127.0.0.1:3000")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap();
        let res = send(&h.app, req).await;
        assert_eq!(
            refusal(&res).is_none(),
            ok,
            "origin {origin:?} against http://127.0.0.1:3000"
        );
    }
}

#[tokio::test]
async fn a_forwarded_proto_is_used_only_when_trusted() {
    // Not trusted: the header changes nothing.
    let h = harness(|b| b.site_scheme(jwt_session::Scheme::Http));
    let got = post_write(
        &h,
        &[
            ("host", "app.example"),
            ("origin", "https://app.example"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert_eq!(got, Err(Refusal::OriginRejected));

    let h = harness(|b| {
        b.site_scheme(jwt_session::Scheme::Http)
            .trust_forwarded_proto(true)
    });
    let host = ("host", "app.example");
    for (proto, origin, ok) in [
        (Some("https"), "https://app.example", true),
        (Some("https, http"), "https://app.example", true),
        (Some("HTTP"), "http://app.example", true),
        (Some("https"), "http://app.example", false),
        (Some("http"), "https://app.example", false),
        (Some("gopher"), "http://app.example", false),
        (None, "http://app.example", true),
        (None, "https://app.example", false),
    ] {
        let mut headers = vec![host, ("origin", origin)];
        if let Some(p) = proto {
            headers.push(("x-forwarded-proto", p));
        }
        let got = post_write(&h, &headers).await;
        assert_eq!(
            got.is_ok(),
            ok,
            "proto {proto:?}, origin {origin:?}: {got:?}"
        );
    }
}

#[test]
fn a_trusted_origin_must_be_an_origin() {
    let ring = || Keyring::new(Key::hs256(KID, SECRET).unwrap()).unwrap();
    for bad in [
        "spa.example",
        "ftp://spa.example",
        "https://",
        "https://a/b",
        "https://a:99999",
    ] {
        let err = SessionConfig::builder(ring())
            .trusted_origin(bad)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("trusted origin"), "{bad}: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// 3 and 5. Every time claim bounded; `nbf` honoured
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn auth_time_may_not_lead_iat_by_more_than_a_second() {
    let h = harness(|b| b);
    let now = T0;
    let base = claims_at(now);
    // The layer's own same-second dating: one second ahead is fine.
    assert_eq!(
        verdict(&h, &with(base.clone(), json!({"auth_time": now + 1}))).await,
        Ok(())
    );
    for ahead in [2, LEEWAY, 3600, ABSOLUTE * 10] {
        assert_eq!(
            verdict(&h, &with(base.clone(), json!({"auth_time": now + ahead}))).await,
            Err(Refusal::InvalidTimes),
            "auth_time {ahead}s after iat"
        );
    }
    // Ahead of lat (a reissued token keeps auth_time; lat only grows).
    let c = with(
        base.clone(),
        json!({"auth_time": now - 10, "iat": now, "lat": now - 20}),
    );
    assert_eq!(verdict(&h, &c).await, Err(Refusal::InvalidTimes));
}

#[tokio::test]
async fn a_future_auth_time_cannot_outlive_a_log_out_everywhere() {
    let h = harness(|b| b);
    // Minted (with the key) at T0 claiming a login an hour from now.
    let forged = with(claims_at(T0), json!({"auth_time": T0 + 3600}));
    assert_eq!(verdict(&h, &forged).await, Err(Refusal::InvalidTimes));
    // The legitimate one-second lead is caught by a log-out-everywhere a second later.
    let ahead = with(claims_at(T0), json!({"auth_time": T0 + 1}));
    assert_eq!(verdict(&h, &ahead).await, Ok(()));
    h.clock.advance(Duration::from_secs(1));
    let config = h.layer.config();
    h.layer
        .store()
        .revoke_subject("alice", config.policy(), config.clock())
        .unwrap();
    assert_eq!(verdict(&h, &ahead).await, Err(Refusal::Revoked));
}

#[tokio::test]
async fn time_claims_out_of_range_are_refused() {
    let h = harness(|b| b);
    let base = claims_at(T0);
    for (claim, value) in [
        ("auth_time", json!(-1)),
        ("iat", json!(-5)),
        ("lat", json!(i64::MIN)),
        ("exp", json!(MAX_TIME + 1)),
        ("exp", json!(i64::MAX)),
        ("nbf", json!(-1)),
        ("nbf", json!(MAX_TIME + 1)),
    ] {
        let c = with(base.clone(), json!({ claim: value }));
        assert_eq!(
            verdict(&h, &c).await,
            Err(Refusal::InvalidTimes),
            "{claim} = {value}"
        );
    }
    // Not an integer at all: malformed.
    for value in [json!(1.5e300), json!("soon"), json!(null)] {
        let c = with(base.clone(), json!({ "exp": value.clone() }));
        let got = verdict(&h, &c).await;
        assert_eq!(got, Err(Refusal::Malformed), "exp = {value}");
    }
}

#[tokio::test]
async fn nbf_in_the_future_is_not_yet_valid() {
    let h = harness(|b| b);
    let base = claims_at(T0);
    for (nbf, want) in [
        (T0 - 100, Ok(())),
        (T0, Ok(())),
        (T0 + LEEWAY, Ok(())),
        (T0 + LEEWAY + 1, Err(Refusal::NotYetValid)),
        (T0 + 3600, Err(Refusal::NotYetValid)),
    ] {
        let c = with(base.clone(), json!({ "nbf": nbf }));
        assert_eq!(verdict(&h, &c).await, want, "nbf {}", nbf - T0);
    }
    // Valid once the clock reaches it.
    let c = with(base, json!({ "nbf": T0 + 60 }));
    h.clock.advance(Duration::from_secs(60 - LEEWAY as u64));
    assert_eq!(verdict(&h, &c).await, Ok(()));
}

// ---------------------------------------------------------------------------------------
// 4. The CSRF claim's shape; an empty header never matches
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_csrf_claim_not_shaped_as_minted_is_malformed() {
    let h = harness(|b| b);
    let base = claims_at(T0);
    let too_long = format!("{CSRF}A");
    let with_padding = format!("{}=", &CSRF[..42]);
    let with_plus = format!("{}+", &CSRF[..42]);
    for bad in [
        json!(""),
        json!("short"),
        json!(&CSRF[..42]),
        json!(too_long),
        json!(with_padding),
        json!(with_plus),
        json!(42),
        json!(null),
    ] {
        let c = with(base.clone(), json!({ "csrf": bad.clone() }));
        let c = if bad.is_null() {
            let mut c = c;
            c["csrf"] = Value::Null;
            c
        } else {
            c
        };
        assert_eq!(verdict(&h, &c).await, Err(Refusal::Malformed), "csrf {bad}");
    }
    let mut missing = base;
    missing.as_object_mut().unwrap().remove("csrf");
    assert_eq!(verdict(&h, &missing).await, Err(Refusal::Malformed));
}

#[tokio::test]
async fn an_empty_csrf_header_is_missing_and_never_matches() {
    let h = harness(|b| b);
    let token = signed(&claims_at(T0));
    for (value, want) in [
        (Some(""), Refusal::CsrfMissing),
        (None, Refusal::CsrfMissing),
        (Some(" "), Refusal::CsrfMismatch),
        (Some(&CSRF[..42]), Refusal::CsrfMismatch),
    ] {
        let mut req = Request::post("/write").header(header::COOKIE, session_cookie(&token));
        if let Some(v) = value {
            req = req.header("x-csrf-token", v);
        }
        let res = send(&h.app, req.body(Body::empty()).unwrap()).await;
        assert_eq!(refusal(&res), Some(want), "header {value:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 6. Overflow never evicts the revocation being recorded
// ---------------------------------------------------------------------------------------

#[test]
fn overflow_never_evicts_the_revocation_being_recorded() {
    let kit = TestKit::new();
    let store = MemoryDenylist::with_capacity(3).unwrap();
    let (policy, clock) = (kit.config().policy(), kit.clock());
    let t0 = kit.now();
    let first = store.revoke_subject("ben", policy, clock).unwrap();
    let second = store.revoke_subject("ben", policy, clock).unwrap();
    assert_eq!(second, first + 1, "a second cut-off in one second moves on");
    // A second apart each, so "the oldest" is one entry (within one second, which of
    // the revocations of that second goes is not specified: the watermark covers all).
    for sid in ["s1", "s2", "s3"] {
        kit.advance(Duration::from_secs(1));
        store.revoke_session(sid, kit.now(), policy, clock).unwrap();
    }
    // The flood evicted ben's cut-off (the oldest): the watermark covers it.
    assert_eq!(store.subject_revoked_at("ben"), None);
    assert_eq!(store.watermark(), Some(t0));
    let third = store.revoke_subject("ben", policy, clock).unwrap();
    assert_eq!(
        store.subject_revoked_at("ben"),
        Some(third),
        "the store answers for the cut-off it just returned"
    );
    assert_eq!(store.len(), 3);
    let facts = |sid| TokenFacts {
        sid,
        sub: "nobody",
        auth_time: 0,
        lat: i64::MAX,
        generation: 0,
    };
    // One of the flood went instead, the oldest, and the watermark moved to its time.
    assert_eq!(store.watermark(), Some(t0 + 1));
    assert!(!store.is_revoked(facts("s1")).unwrap());
    assert!(store.is_revoked(facts("s2")).unwrap());
    assert!(store.is_revoked(facts("s3")).unwrap());
}

// ---------------------------------------------------------------------------------------
// An explicit refresh ignores `X-Session-Passive`
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_is_explicit_and_ignores_the_passive_header() {
    let h = harness(|b| b);
    let token = signed(&claims_at(T0));
    h.clock.advance(Duration::from_secs(10)); // not due for a reissue yet
    let req = Request::post("/session/refresh")
        .header(header::COOKIE, session_cookie(&token))
        .header("x-csrf-token", CSRF)
        .header("x-session-passive", "1")
        .body(Body::empty())
        .unwrap();
    let res = send(&h.app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .expect("a refresh reissues, passive or not")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-session=ey"), "{cookie}");
    assert_eq!(
        res.headers()["session-expires-in"],
        HeaderValue::from(IDLE as u64),
        "the deadline slid to now + idle"
    );
}

// ---------------------------------------------------------------------------------------
// The layer against a reference predicate over arbitrary signed claim sets
// ---------------------------------------------------------------------------------------

/// Interesting offsets (seconds from now) for each time claim: the boundaries of every
/// rule, either side.
fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(-1),
        Just(LEEWAY),
        Just(LEEWAY + 1),
        Just(-IDLE),
        Just(-IDLE - LEEWAY),
        Just(-IDLE - LEEWAY + 1),
        Just(-ABSOLUTE - LEEWAY),
        Just(-ABSOLUTE - LEEWAY + 1),
        Just(IDLE),
        Just(-T0 - 1),
        Just(MAX_TIME - T0 + 1),
        -2 * ABSOLUTE..2 * ABSOLUTE,
    ]
}

#[derive(Debug, Clone)]
struct Raw {
    iss_ok: bool,
    aud_ok: bool,
    sub: &'static str,
    sid: &'static str,
    csrf: &'static str,
    auth_time: i64,
    iat: i64,
    lat: i64,
    exp: i64,
    nbf: Option<i64>,
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        (
            prop::bool::weighted(0.95),
            prop::bool::weighted(0.95),
            prop_oneof![Just("alice"), Just("")],
            prop_oneof![Just("AAAAAAAAAAAAAAAAAAAAAA"), Just("x"), Just("")],
            prop_oneof![Just(CSRF), Just(""), Just("short")],
        ),
        (
            offset(),
            offset(),
            offset(),
            offset(),
            prop::option::of(offset()),
        ),
    )
        .prop_map(|((iss_ok, aud_ok, sub, sid, csrf), (a, i, l, e, n))| Raw {
            iss_ok,
            aud_ok,
            sub,
            sid,
            csrf,
            auth_time: T0 + a,
            iat: T0 + i,
            lat: T0 + l,
            exp: T0 + e,
            nbf: n.map(|n| T0 + n),
        })
}

impl Raw {
    fn json(&self) -> Value {
        let mut v = json!({
            "iss": if self.iss_ok { "jwt-session" } else { "someone-else" },
            "aud": if self.aud_ok { "jwt-session" } else { "another-app" },
            "sub": self.sub, "sid": self.sid, "jti": "j",
            "auth_time": self.auth_time, "iat": self.iat, "lat": self.lat, "exp": self.exp,
            "csrf": self.csrf, "dat": null,
        });
        if let Some(nbf) = self.nbf {
            v["nbf"] = json!(nbf);
        }
        v
    }
}

/// What DESIGN.md and the README's security model say about a validly signed token at
/// `now`, written independently of the crate's code.
fn reference(c: &Raw, now: i64) -> Result<(), Refusal> {
    let csrf_ok = c.csrf.len() == 43
        && c.csrf
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !csrf_ok {
        return Err(Refusal::Malformed);
    }
    if !c.iss_ok {
        return Err(Refusal::WrongIssuer);
    }
    if !c.aud_ok {
        return Err(Refusal::WrongAudience);
    }
    if c.sub.is_empty() || c.sid.is_empty() {
        return Err(Refusal::Malformed);
    }
    let times = [
        Some(c.auth_time),
        Some(c.iat),
        Some(c.lat),
        Some(c.exp),
        c.nbf,
    ];
    if times.iter().flatten().any(|t| *t < 0 || *t > MAX_TIME) {
        return Err(Refusal::InvalidTimes);
    }
    if c.iat > now + LEEWAY || c.lat > now + LEEWAY || c.nbf.is_some_and(|n| n > now + LEEWAY) {
        return Err(Refusal::NotYetValid);
    }
    if c.auth_time > c.iat + 1 || c.auth_time > c.lat + 1 {
        return Err(Refusal::InvalidTimes);
    }
    if now >= c.auth_time + ABSOLUTE + LEEWAY {
        return Err(Refusal::ExpiredAbsolute);
    }
    if now >= c.exp.min(c.lat + IDLE) + LEEWAY {
        return Err(Refusal::ExpiredIdle);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_layer_accepts_exactly_what_the_reference_predicate_accepts(c in raw()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let h = harness(|b| b);
        let got = rt.block_on(verdict(&h, &c.json()));
        prop_assert_eq!(got, reference(&c, T0), "{:?}", c);
    }
}

#[tokio::test]
async fn a_logout_then_a_login_in_the_same_second_is_dated_within_one_second() {
    // Through the test kit's layer and the ready-made routes: logout-all, then login.
    let kit = TestKit::new();
    let app = app(&kit);
    let config = kit.config();
    kit.store()
        .revoke_subject("alice", config.policy(), config.clock())
        .unwrap();
    let res = send(
        &app,
        Request::post("/login/alice").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = kit.set_cookie(&res).unwrap();
    let session = kit.layer::<()>().verify_token(&cookie.value).unwrap();
    assert_eq!(session.auth_time(), kit.now() + 1);
    // A second logout-all in the same second covers it; a login now must wait.
    kit.store()
        .revoke_subject("alice", config.policy(), config.clock())
        .unwrap();
    assert_eq!(
        kit.layer::<()>().verify_token(&cookie.value).map(|_| ()),
        Err(Refusal::Revoked)
    );
    let res = send(
        &app,
        Request::post("/login/alice").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(kit.set_cookie(&res).is_none());
    let text = body(res).await;
    assert!(text.contains("session_login_retry"), "{text}");
    kit.advance(Duration::from_secs(1));
    let res = send(
        &app,
        Request::post("/login/alice").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// The reference reading of RFC 6265 pairs the cookie search must agree with: split every
/// line on `;`, split each pair at its first `=`, compare the trimmed name exactly, take
/// the first non-empty (unquoted) value.
fn reference_find<'a>(lines: &[&'a [u8]], name: &[u8]) -> Option<&'a [u8]> {
    lines
        .iter()
        .flat_map(|line| line.split(|b| *b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|b| *b == b'=')?;
            (pair[..eq].trim_ascii() == name).then(|| {
                let v = pair[eq + 1..].trim_ascii();
                match v {
                    [b'"', inner @ .., b'"'] => inner,
                    _ => v,
                }
            })
        })
        .find(|v| !v.is_empty())
}

fn cookie_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"__Host-session".to_vec()),
        Just(b"session".to_vec()),
        Just(b"_".to_vec()),
        Just(b";".to_vec()),
        Just(b"=".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"tok.en".to_vec()),
        Just(vec![0xff]),
        Just(vec![0xc3]),
        prop::collection::vec(0x20u8..0x7f, 1..4),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_cookie_search_agrees_with_the_pairwise_reading(
        lines in prop::collection::vec(cookie_bytes(), 1..4)
    ) {
        let settings = jwt_session::CookieSettings::default();
        let mut headers = http::HeaderMap::new();
        for line in &lines {
            if let Ok(value) = HeaderValue::from_bytes(line) {
                headers.append(header::COOKIE, value);
            }
        }
        let stored: Vec<&[u8]> = headers.get_all(header::COOKIE).iter().map(|v| v.as_bytes()).collect();
        prop_assert_eq!(settings.find(&headers), reference_find(&stored, b"__Host-session"));
    }
}
