//! Model-based invariant test (I1–I4): random interleavings of login (normal and
//! remembered, and over a live session), requests (successful, failing, passive and
//! sensitive), reissue when due, refresh, app-data updates (keeping or retiring older
//! tokens), re-authentication, contradictory response parts, clock moves (small, large and
//! exactly onto deadlines), logout, logout-all (through a session and by an operator), a
//! logout or a retirement racing an in-flight request, denylist overflow, sweep and
//! restart from the journal, run against a real axum router behind the real
//! `SessionLayer` (app data: a `u32` counter) and a small, journaled `MemoryDenylist` —
//! and checked against a simple reference model.
//!
//! After **every** step, for **every** token ever issued (up to [`MAX_TOKENS`]: logins,
//! reissues, refreshes, updates and re-authentications, retired ones included), the
//! layer's decision (accepted, or the exact refusal code; through HTTP and through
//! `SessionLayer::verify_token`, with its app data) must equal the model's. The store must
//! never hold more than its capacity (I4), must keep every revocation some live token
//! still needs or have raised its watermark over it (I1, I4), must date each entry it
//! holds with the model's I2 TTL, and right after a sweep or a restart must hold no entry
//! past its I2 TTL.
//!
//! The model, in one place ([`Model::decide`]): a session has the normal lifetimes
//! (`IDLE`, `ABSOLUTE`) or, remembered, the remembered ones; a token of it is refused
//!
//! * `expired_absolute` once `now >= auth_time + absolute + leeway`;
//! * else `expired_idle` once `now >= min(lat + idle, auth_time + absolute) + leeway`;
//! * else `revoked` if its session was logged out (by itself, or by a login over it), or
//!   if a logout-all of its user happened after the session started (even in the same
//!   second), or if an update retired the token's generation (`gen` below the session's
//!   floor), or if `lat <= watermark`;
//! * and is accepted otherwise. A sensitive route also wants `now - fresh <= FRESH`
//!   (else `reauth_required`, and the session stays valid).
//!
//! The watermark is the revocation time of the newest entry evicted by overflow, where
//! the store holds at most `capacity` revocations (session, subject, and retired
//! generations of a session — one entry per session id, the stronger wins) and evicts the
//! oldest first. A revocation made at `R` needs to live until `min(auth_time + absolute,
//! R + idle) + leeway` (session, or retired generations: the session's own lifetimes) or
//! `before + longest absolute + leeway` (user, with `before` its cut-off: `R`, or one
//! second past a previous cut-off of the same second); by then every token it refused has
//! expired, so sweeping it changes no decision — the model's decisions do not look at
//! sweeps at all.
//!
//! Shrunk counter-examples are kept below as named tests.
//!
//! A longer hunt: `PROPTEST_CASES=1000 MODEL_MAX_OPS=80 cargo test --release --test model`
//! (defaults 64 cases of at most 40 steps). `MODEL_TRACE=1` prints every step and the
//! model's decision for every token (with `--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use jwt_session::RevocationEntry;
use jwt_session::testing::{TestKit, refusal};
use jwt_session::{
    Login, Logout, LogoutAll, ManualClock, MemoryDenylist, ReauthRequired, Reauthenticated,
    Refresh, Refusal, RevocationStore, Session, SessionContext, SessionLayer, Update,
    session_routes,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use support::harness::send;

// ---------------------------------------------------------------------------------------
// Policy and sizes
// ---------------------------------------------------------------------------------------

const IDLE: i64 = 60;
const ABSOLUTE: i64 = 300;
/// The lifetimes of a remembered session: longer than the normal ones, still reached by
/// `Advance` and `ToDeadline`. The remembered idle timeout is longer than the normal
/// absolute one (as with the library's defaults, 7 days and 8 hours), so a logout-all
/// that only outlived the normal absolute timeout would let remembered tokens it ended
/// come back.
const REMEMBER_IDLE: i64 = 360;
const REMEMBER_ABSOLUTE: i64 = 900;
/// The absolute timeout a logout-all must outlive: the longest configured.
const LONGEST_ABSOLUTE: i64 = if ABSOLUTE > REMEMBER_ABSOLUTE {
    ABSOLUTE
} else {
    REMEMBER_ABSOLUTE
};
const REISSUE_AFTER: i64 = 10;
/// `GET /sensitive` wants a login or re-authentication at most this long ago.
const FRESH: i64 = 15;
/// A small denylist, so that overflow happens often.
const CAPACITY: usize = 3;
/// Tokens tracked (and probed after every step) per case.
const MAX_TOKENS: usize = 32;
const USERS: [&str; 3] = ["ann", "ben", "cat"];
/// How many kinds of contradictory response parts `POST /conflict/{kind}` answers.
const CONFLICTS: usize = 5;
/// The floor of a whole-session revocation: every generation is below it.
const FULL: u32 = u32::MAX;

/// The app data in sessions: a counter that `Update` sets (0 at login).
type Data = u32;

/// What varies between runs besides the operations.
#[derive(Debug, Clone, Copy)]
struct Setup {
    /// Leeway in seconds (0 or 2).
    leeway: i64,
    /// Whether the layer's verified-token cache is on.
    token_cache: bool,
}

const SETUP: Setup = Setup {
    leeway: 0,
    token_cache: true,
};

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// Which handler a request reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// 200: slides (reissues when due).
    Ok,
    /// 500 after extracting the session: never reissues.
    Fail,
    /// 200, marked passive: never reissues.
    Passive,
    /// `require_fresh(FRESH)`: 200 (and slides) when fresh enough, else 403
    /// `reauth_required` without touching the session.
    Sensitive,
}

/// A deadline of a token to move the clock onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// `lat + reissue_after`.
    Reissue,
    /// `min(lat + idle, auth_time + absolute) + leeway` (first refused second).
    Idle,
    /// `auth_time + absolute + leeway`.
    Absolute,
    /// `fresh + FRESH`: the last second the token is fresh enough for `/sensitive`.
    Fresh,
}

/// What a request racing a revocation revokes while its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Race {
    /// Its session (`RevocationStore::revoke_session`, the session's own policy).
    Session,
    /// Every session of its user (`SessionHandle::revoke_user`).
    All,
    /// Its session's tokens below the next generation, as a concurrent
    /// `Update::retire_older` would (`RevocationStore::retire_generations`).
    Retire,
}

impl Race {
    fn path(self) -> &'static str {
        match self {
            Race::Session => "session",
            Race::All => "all",
            Race::Retire => "retire",
        }
    }
}

/// One step. Revocation indices are taken modulo how many there are; token indices too,
/// below [`MAX_TOKENS`], while from there up they pick among the tokens the model
/// accepts now (if any), so that long sequences keep acting on live sessions. A step on
/// an empty list does nothing.
#[derive(Debug, Clone)]
enum Op {
    /// `POST /login/{user}/false`.
    Login(usize),
    /// `POST /login/{user}/true`: "remember me".
    LoginRemembered(usize),
    /// `POST /login/{user .1}/{remember .2}` carrying token `.0`'s cookie and CSRF token:
    /// over a live session, that session is revoked first.
    LoginOver(usize, usize, bool),
    /// `GET /me`, `/fail`, a passive `/me` or `/sensitive` with token `.0`.
    Request(usize, Handler),
    /// Move the clock to the token's reissue time (if ahead), then `GET /me`.
    ReissueWhenDue(usize),
    /// `POST /session/refresh`.
    Refresh(usize),
    /// `POST /update/{retire}/{data}` (`Update::new(data)`, `.retire_older()` if `.1`),
    /// with the next counter value as data.
    Update(usize, bool),
    /// `POST /reauth` (`Reauthenticated`).
    Reauth(usize),
    /// `POST /conflict/{kind}`: contradictory response parts; nothing may happen.
    Conflict(usize, usize),
    /// Move the clock forward.
    Advance(u64),
    /// Move the clock onto a deadline of a token, plus `delta` seconds (if ahead).
    ToDeadline(usize, Deadline, i64),
    /// Move the clock onto the I2 TTL of a revocation made so far, plus `delta` (if ahead).
    ToRevocationTtl(usize, i64),
    /// `POST /session/logout`.
    Logout(usize),
    /// `POST /session/logout-all`.
    LogoutAll(usize),
    /// An operator's "log this user out everywhere" (`SessionHandle::revoke_user`).
    AdminLogoutAll(usize),
    /// A request whose session is logged out (`all`: every session of the user) while the
    /// handler runs, as a concurrent logout would, and that takes `.2` seconds.
    RacingLogout(usize, bool, u64),
    /// A request whose older tokens are retired while the handler runs (as by a
    /// concurrent update), and that takes `.1` seconds: it must set no cookie.
    RacingRetire(usize, u64),
    /// Revocations of `n` unrelated sessions, to overflow the denylist.
    Flood(usize),
    /// `store.sweep(now)`.
    Sweep,
    /// Rebuild the denylist from its journal and the layer and router around it.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let idx = 0usize..2 * MAX_TOKENS;
    let user = 0..USERS.len();
    let handler = prop_oneof![
        3 => Just(Handler::Ok),
        1 => Just(Handler::Fail),
        1 => Just(Handler::Passive),
        2 => Just(Handler::Sensitive),
    ];
    let deadline = prop_oneof![
        Just(Deadline::Reissue),
        Just(Deadline::Idle),
        Just(Deadline::Absolute),
        Just(Deadline::Fresh),
    ];
    let advance = prop_oneof![0u64..=2, 3u64..=15, 16u64..=70, 71u64..=400];
    prop_oneof![
        3 => user.clone().prop_map(Op::Login),
        2 => user.clone().prop_map(Op::LoginRemembered),
        2 => (idx.clone(), user.clone(), any::<bool>())
            .prop_map(|(t, u, r)| Op::LoginOver(t, u, r)),
        4 => (idx.clone(), handler).prop_map(|(t, h)| Op::Request(t, h)),
        2 => idx.clone().prop_map(Op::ReissueWhenDue),
        1 => idx.clone().prop_map(Op::Refresh),
        2 => (idx.clone(), any::<bool>()).prop_map(|(t, r)| Op::Update(t, r)),
        1 => idx.clone().prop_map(Op::Reauth),
        1 => (idx.clone(), 0..CONFLICTS).prop_map(|(t, k)| Op::Conflict(t, k)),
        3 => advance.prop_map(Op::Advance),
        2 => (idx.clone(), deadline, -1i64..=1).prop_map(|(t, d, x)| Op::ToDeadline(t, d, x)),
        1 => (idx.clone(), -1i64..=1).prop_map(|(r, x)| Op::ToRevocationTtl(r, x)),
        2 => idx.clone().prop_map(Op::Logout),
        1 => idx.clone().prop_map(Op::LogoutAll),
        1 => user.prop_map(Op::AdminLogoutAll),
        1 => (idx.clone(), any::<bool>(), 0u64..=2).prop_map(|(t, a, d)| Op::RacingLogout(t, a, d)),
        1 => (idx, 0u64..=2).prop_map(|(t, d)| Op::RacingRetire(t, d)),
        1 => (1usize..=4).prop_map(Op::Flood),
        2 => Just(Op::Sweep),
        1 => Just(Op::Restart),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (prop_oneof![Just(0i64), Just(2i64)], any::<bool>()).prop_map(|(leeway, token_cache)| Setup {
        leeway,
        token_cache,
    })
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// One login.
#[derive(Debug, Clone)]
struct MSession {
    user: usize,
    sid: String,
    csrf: String,
    auth_time: i64,
    /// "Remember me": the remembered lifetimes.
    remembered: bool,
    /// When it was logged out (by itself, by a login over it or by a logout-all of its
    /// user), if it was.
    revoked_at: Option<i64>,
    /// Tokens of a generation below this are refused: raised by an update that retired
    /// older tokens (0: none retired).
    floor: u32,
}

impl MSession {
    fn idle(&self) -> i64 {
        if self.remembered { REMEMBER_IDLE } else { IDLE }
    }

    fn absolute(&self) -> i64 {
        if self.remembered {
            REMEMBER_ABSOLUTE
        } else {
            ABSOLUTE
        }
    }
}

/// One token ever issued.
#[derive(Debug, Clone)]
struct MToken {
    session: usize,
    token: String,
    lat: i64,
    /// `gen`: raised by an update that retires older tokens.
    generation: u32,
    /// When the user last proved their credentials (login or re-authentication).
    fresh: i64,
    data: Data,
}

impl MToken {
    /// What a token issued from this one keeps unless the step changes it.
    fn lineage(&self) -> Lineage {
        Lineage {
            session: self.session,
            generation: self.generation,
            fresh: self.fresh,
            data: self.data,
        }
    }
}

/// What a newly issued token must carry besides the times of its issue.
#[derive(Debug, Clone, Copy)]
struct Lineage {
    session: usize,
    generation: u32,
    fresh: i64,
    data: Data,
}

/// What a revocation is keyed on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// A session id (a real session's, or a flood's): the whole session, or its tokens
    /// below a generation.
    Session(String),
    /// Every session of this user with `auth_time <= before`.
    Subject(usize),
}

/// One revocation, as made.
#[derive(Debug, Clone)]
struct Revocation {
    key: Key,
    /// Revocation time.
    at: i64,
    /// For a subject: sessions with `auth_time <= before` are refused. `before` is `at`,
    /// or one second past the previous cut-off if that one is not in the past (a login in
    /// the same second as a logout-all is dated one second after its cut-off; a second
    /// logout-all in that second must still cover it). For a session: `at`.
    before: i64,
    /// For a session: tokens below this generation are refused ([`FULL`]: all of them,
    /// a logout; lower: an update retired older tokens). [`FULL`] for a subject.
    floor: u32,
    /// I2: when the last token it refuses has expired.
    ttl: i64,
}

#[derive(Debug)]
struct Model {
    leeway: i64,
    now: i64,
    sessions: Vec<MSession>,
    tokens: Vec<MToken>,
    /// What the store should hold, oldest first (the eviction order).
    held: Vec<Revocation>,
    /// Every revocation ever made.
    history: Vec<Revocation>,
    /// Raised to an evicted entry's revocation time on overflow.
    watermark: Option<i64>,
    /// After a restart the store may hold again entries the model evicted (they come
    /// back from the journal and are re-evicted as needed; all are older than the
    /// watermark), so its exact size, and dates derived from which revocations it holds,
    /// are no longer predicted; every other check still is.
    restarted: bool,
    /// The last app data an update set.
    counter: Data,
}

impl Model {
    fn new(setup: Setup, now: i64) -> Self {
        Self {
            leeway: setup.leeway,
            now,
            sessions: Vec::new(),
            tokens: Vec::new(),
            held: Vec::new(),
            history: Vec::new(),
            watermark: None,
            restarted: false,
            counter: 0,
        }
    }

    /// Would `token` be accepted now, and if not, why?
    fn decide(&self, token: &MToken) -> Result<(), Refusal> {
        let session = &self.sessions[token.session];
        let (now, leeway) = (self.now, self.leeway);
        let absolute = session.auth_time + session.absolute();
        if now >= absolute + leeway {
            return Err(Refusal::ExpiredAbsolute);
        }
        if now >= (token.lat + session.idle()).min(absolute) + leeway {
            return Err(Refusal::ExpiredIdle);
        }
        if session.revoked_at.is_some() || token.generation < session.floor {
            return Err(Refusal::Revoked);
        }
        if self.watermark.is_some_and(|w| token.lat <= w) {
            return Err(Refusal::Revoked);
        }
        Ok(())
    }

    /// As [`decide`](Self::decide), for a request to `handler`: a sensitive route also
    /// wants a proof of credentials at most [`FRESH`] seconds old (inclusive).
    fn decide_for(&self, token: &MToken, handler: Handler) -> Result<(), Refusal> {
        self.decide(token)?;
        if handler == Handler::Sensitive && self.now - token.fresh > FRESH {
            return Err(Refusal::ReauthRequired);
        }
        Ok(())
    }

    /// I2 for a session (or its older generations) revoked at `at`, under its own
    /// lifetimes.
    fn session_ttl(&self, auth_time: i64, at: i64, remembered: bool) -> i64 {
        let (idle, absolute) = if remembered {
            (REMEMBER_IDLE, REMEMBER_ABSOLUTE)
        } else {
            (IDLE, ABSOLUTE)
        };
        (auth_time + absolute).min(at + idle) + self.leeway
    }

    /// I2 for a logout-all: it does not know which kinds of session it ends, so it
    /// outlives the longest.
    fn subject_ttl(&self, before: i64) -> i64 {
        before + LONGEST_ABSOLUTE + self.leeway
    }

    /// Record a revocation in the store (a subject's replaces its previous one; a
    /// session's is merged with what the store holds for that id: the higher floor and
    /// the later TTL win). Past capacity, see [`overflow`](Self::overflow).
    fn record(&mut self, key: Key, before: i64, floor: u32, ttl: i64) {
        let (mut floor, mut ttl) = (floor, ttl);
        if matches!(key, Key::Session(_))
            && let Some(old) = self.held.iter().find(|r| r.key == key)
        {
            floor = floor.max(old.floor);
            ttl = ttl.max(old.ttl);
        }
        let revocation = Revocation {
            key: key.clone(),
            at: self.now,
            before,
            floor,
            ttl,
        };
        self.held.retain(|r| r.key != key);
        self.held.push(revocation.clone());
        self.history.push(revocation);
    }

    /// Past capacity the store evicts one of the oldest revocations and raises the
    /// watermark to its revocation time (I4). "Oldest" is by revocation time, in whole
    /// seconds: which of several revocations of the same second goes is the store's
    /// choice. The model follows that choice (`present` says what the store still
    /// holds) and insists it is one of the oldest.
    ///
    /// The revocation just recorded (the last one held) is never the one evicted: the
    /// store always answers for the revocation it has just acknowledged.
    fn overflow(&mut self, step: usize, present: impl Fn(&Revocation) -> bool) {
        if self.held.len() > CAPACITY {
            let newest = self.held.last().unwrap();
            assert!(
                present(newest),
                "step {step}: I4: overflow evicted the revocation just recorded: {newest:?}"
            );
        }
        while self.held.len() > CAPACITY {
            let candidates = self.held.len() - 1;
            let oldest = self.held[..candidates].iter().map(|r| r.at).min().unwrap();
            let gone = self.held[..candidates]
                .iter()
                .position(|r| r.at == oldest && !present(r));
            let evicted = match gone {
                Some(i) => self.held.remove(i),
                None => {
                    // After a restart the store may instead have evicted a revocation
                    // that came back from the journal (older than the watermark).
                    assert!(
                        self.restarted,
                        "step {step}: I4: overflow kept every one of the oldest revocations \
                         {:?}",
                        self.held
                    );
                    self.held.remove(0)
                }
            };
            self.watermark = Some(self.watermark.map_or(evicted.at, |w| w.max(evicted.at)));
        }
    }

    fn logout(&mut self, session: usize) {
        let now = self.now;
        let s = &mut self.sessions[session];
        s.revoked_at.get_or_insert(now);
        let (sid, auth_time, remembered) = (s.sid.clone(), s.auth_time, s.remembered);
        let ttl = self.session_ttl(auth_time, now, remembered);
        self.record(Key::Session(sid), now, FULL, ttl);
    }

    /// Tokens of `session` below generation `floor` are refused from now on (an update
    /// that retired older tokens, or one racing a request).
    fn retire(&mut self, session: usize, floor: u32) {
        let now = self.now;
        let s = &mut self.sessions[session];
        s.floor = s.floor.max(floor);
        let (sid, auth_time, remembered) = (s.sid.clone(), s.auth_time, s.remembered);
        let ttl = self.session_ttl(auth_time, now, remembered);
        self.record(Key::Session(sid), now, floor, ttl);
    }

    /// The cut-off of the logout-all of `user` the store holds, if any.
    fn subject_before(&self, user: usize) -> Option<i64> {
        self.held
            .iter()
            .find(|r| r.key == Key::Subject(user))
            .map(|r| r.before)
    }

    /// The cut-off a logout-all of `user` now records.
    fn next_cut_off(&self, user: usize) -> i64 {
        match self.subject_before(user) {
            Some(previous) if previous >= self.now => previous + 1,
            _ => self.now,
        }
    }

    /// Every session of `user` that exists now ends, including one started this second.
    /// `before` is the cut-off recorded (see [`Revocation::before`]).
    fn logout_all(&mut self, user: usize, before: i64) {
        let now = self.now;
        for s in self.sessions.iter_mut().filter(|s| s.user == user) {
            s.revoked_at.get_or_insert(now);
        }
        let ttl = self.subject_ttl(before);
        self.record(Key::Subject(user), before, FULL, ttl);
    }

    fn sweep(&mut self) {
        let now = self.now;
        self.held.retain(|r| r.ttl > now);
    }

    /// `auth_time` of a login now: a login in the second of a logout-all of its user is
    /// dated one second past the cut-off, so that the logout-all does not end it. A token's
    /// `auth_time` may lead its `iat` by one second only, so after a second logout-all in
    /// the same second (cut-off already `now + 1`) no login can be dated until the clock
    /// moves on: `None`, the layer answers 503 with `Retry-After`.
    fn login_time(&self, user: usize) -> Option<i64> {
        match self.subject_before(user) {
            Some(before) if before > self.now => None,
            Some(before) if before == self.now => Some(before + 1),
            _ => Some(self.now),
        }
    }

    /// A date the model predicts from which revocations the store holds. Until the
    /// first restart that is exact; after one, the store may hold again revocations
    /// that overflow had evicted (see [`Model::restarted`]), so a date derived from one
    /// may differ: take the layer's then.
    fn tolerate(&self, step: usize, what: &str, model: i64, layer: i64) -> i64 {
        assert!(
            model == layer || self.restarted,
            "step {step}: {what}: layer {layer}, model {model}"
        );
        layer
    }

    /// Token `i` of an operation (see [`Op`]).
    fn pick_token(&self, i: usize) -> Option<usize> {
        if self.tokens.is_empty() {
            return None;
        }
        if i >= MAX_TOKENS {
            let live: Vec<usize> = (0..self.tokens.len())
                .filter(|&k| self.decide(&self.tokens[k]).is_ok())
                .collect();
            if !live.is_empty() {
                return Some(live[(i - MAX_TOKENS) % live.len()]);
            }
        }
        Some(i % self.tokens.len())
    }

    fn track(&mut self, token: MToken) {
        if self.tokens.len() < MAX_TOKENS {
            self.tokens.push(token);
        }
    }

    /// The app data of the next update.
    fn next_data(&mut self) -> Data {
        self.counter += 1;
        self.counter
    }
}

// ---------------------------------------------------------------------------------------
// The system under test
// ---------------------------------------------------------------------------------------

/// `POST /login/{user}/{remember}`: a new session (app data 0); the body is
/// `{"user", "csrf"}`.
async fn login(Path((user, remember)): Path<(String, bool)>) -> (Login<Data>, Json<Value>) {
    let login = Login::<Data>::new(user.clone(), 0)
        .unwrap()
        .remember(remember);
    let csrf = login.csrf().to_owned();
    (login, Json(json!({ "user": user, "csrf": csrf })))
}

/// `GET /me`: `{"sub", "sid", "data"}` of the session.
async fn me(s: Session<Data>) -> Json<Value> {
    Json(json!({ "sub": s.subject(), "sid": s.id(), "data": s.data() }))
}

/// `GET /fail`: 500 after extracting the session.
async fn fail(_s: Session<Data>) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

/// `GET /sensitive`: the session's data, if the last proof of credentials is recent.
async fn sensitive(s: Session<Data>) -> Result<Json<Value>, ReauthRequired> {
    s.require_fresh(Duration::from_secs(FRESH as u64))?;
    Ok(Json(
        json!({ "sub": s.subject(), "sid": s.id(), "data": s.data() }),
    ))
}

/// `POST /update/{retire}/{data}`.
async fn update(_s: Session<Data>, Path((retire, data)): Path<(bool, Data)>) -> Update<Data> {
    let update = Update::new(data);
    if retire {
        update.retire_older()
    } else {
        update
    }
}

/// `POST /reauth`: the app checked the password again.
async fn reauth(_s: Session<Data>) -> Reauthenticated {
    Reauthenticated
}

/// `POST /conflict/{kind}`: response parts that both end (or replace) the session and
/// change it. The layer must refuse them all (500 `session_parts_conflict`) and do
/// nothing: no revocation, no login, no new token — it only clears a refused cookie.
async fn conflict(s: Option<Session<Data>>, Path(kind): Path<usize>) -> axum::response::Response {
    let user = s.as_ref().map_or("nobody", |s| s.subject());
    let login = || Login::<Data>::new(user, 0).unwrap();
    match kind % CONFLICTS {
        0 => (Logout, Refresh).into_response(),
        1 => (LogoutAll, Update::<Data>::new(7)).into_response(),
        2 => (login(), Reauthenticated).into_response(),
        3 => (Logout, Update::<Data>::new(7).retire_older()).into_response(),
        _ => (
            login().remember(true),
            Update::<Data>::new(7),
            Reauthenticated,
        )
            .into_response(),
    }
}

/// A handler during which the session is logged out or its older tokens retired (as by
/// a concurrent request) and the clock moves on by `takes` seconds; it then answers 200,
/// so the layer would reissue if the token is due — unless it re-checks revocation first
/// (I3).
async fn racing(
    clock: ManualClock,
    session: Session<Data>,
    ctx: SessionContext<Data>,
    race: String,
    takes: u64,
) -> StatusCode {
    let clock_now = ctx.config().clock();
    let result = match race.as_str() {
        "all" => ctx.handle().revoke_user(session.subject()).map(|_| ()),
        "retire" => ctx.store().retire_generations(
            session.id(),
            session.claims().generation + 1,
            session.auth_time(),
            session.policy(),
            clock_now,
        ),
        _ => ctx.store().revoke_session(
            session.id(),
            session.auth_time(),
            session.policy(),
            clock_now,
        ),
    };
    result.unwrap();
    clock.advance(Duration::from_secs(takes));
    StatusCode::OK
}

struct Sut {
    kit: TestKit,
    journal: PathBuf,
    layer: SessionLayer<Data>,
    app: Router,
    _dir: tempfile::TempDir,
}

impl Sut {
    fn new(setup: Setup) -> Self {
        let secs = |s: i64| Duration::from_secs(s as u64);
        let kit = TestKit::configure(|b| {
            b.idle_timeout(secs(IDLE))
                .absolute_timeout(secs(ABSOLUTE))
                .remember_me(secs(REMEMBER_IDLE), secs(REMEMBER_ABSOLUTE))
                .reissue_after(secs(REISSUE_AFTER))
                .leeway(secs(setup.leeway))
                .token_cache(if setup.token_cache { 64 } else { 0 })
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("revocations.jsonl");
        let store = Self::open_store(&kit, &journal);
        let kit = kit.with_store(store);
        let (layer, app) = Self::app(&kit);
        Self {
            kit,
            journal,
            layer,
            app,
            _dir: dir,
        }
    }

    fn open_store(kit: &TestKit, journal: &std::path::Path) -> Arc<MemoryDenylist> {
        MemoryDenylist::builder()
            .capacity(CAPACITY)
            .journal(journal)
            .build(kit.clock())
            .unwrap()
    }

    fn app(kit: &TestKit) -> (SessionLayer<Data>, Router) {
        let layer = kit.layer::<Data>();
        let clock = kit.clock().clone();
        let app = Router::new()
            .route("/login/{user}/{remember}", post(login))
            .route("/me", get(me))
            .route("/fail", get(fail))
            .route("/sensitive", get(sensitive))
            .route("/update/{retire}/{data}", post(update))
            .route("/reauth", post(reauth))
            .route("/conflict/{kind}", post(conflict))
            .route(
                "/race/{race}/{takes}",
                post(
                    move |s: Session<Data>,
                          ctx: SessionContext<Data>,
                          Path((race, takes)): Path<(String, u64)>| {
                        racing(clock.clone(), s, ctx, race, takes)
                    },
                ),
            )
            .merge(session_routes::<Data, ()>())
            .layer(layer.clone());
        (layer, app)
    }

    fn store(&self) -> &Arc<MemoryDenylist> {
        self.kit.store()
    }

    /// A process restart: everything in memory is gone (denylist, token cache); the
    /// journal, keys, configuration and clock remain.
    fn restart(&mut self) {
        // Let go of every handle on the old store (and its journal file) first.
        let old = Arc::downgrade(self.store());
        self.kit = self
            .kit
            .clone()
            .with_store(MemoryDenylist::with_capacity(1).unwrap());
        (self.layer, self.app) = Self::app(&self.kit);
        assert!(old.upgrade().is_none(), "the old store is still alive");
        let store = Self::open_store(&self.kit, &self.journal);
        self.kit = self.kit.clone().with_store(store);
        (self.layer, self.app) = Self::app(&self.kit);
    }

    async fn send(&self, req: Request<Body>) -> Response<Body> {
        send(&self.app, req).await
    }

    fn get(&self, path: &str, token: &str, passive: bool) -> Request<Body> {
        let mut req = Request::get(path).header("cookie", self.kit.cookie_header(token));
        if passive {
            req = req.header("x-session-passive", "1");
        }
        req.body(Body::empty()).unwrap()
    }

    fn post(&self, path: &str, token: &str, csrf: &str) -> Request<Body> {
        Request::post(path)
            .header("cookie", self.kit.cookie_header(token))
            .header("x-csrf-token", csrf)
            .body(Body::empty())
            .unwrap()
    }

    fn claims(&self, token: &str) -> jwt_session::Claims<Data> {
        self.kit
            .config()
            .codec()
            .decode::<Data>(token.as_bytes())
            .unwrap()
            .claims
    }
}

/// What a response did with the session cookie.
#[derive(Debug, PartialEq, Eq)]
enum CookieOut {
    None,
    Removed,
    Issued(String),
}

fn cookie_out(sut: &Sut, res: &Response<Body>) -> CookieOut {
    match sut.kit.set_cookie(res) {
        None => CookieOut::None,
        Some(c) if c.is_removal() => CookieOut::Removed,
        Some(c) => CookieOut::Issued(c.value),
    }
}

fn decision(res: &Response<Body>) -> Result<(), Refusal> {
    match refusal(res) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

async fn body_json(res: Response<Body>) -> Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("body is not JSON ({e}): {bytes:?}"))
        .unwrap()
}

/// The entry the store holds for exactly this revocation, if it does.
fn exact<'a>(snapshot: &'a [RevocationEntry], rev: &Revocation) -> Option<&'a RevocationEntry> {
    snapshot.iter().find(|e| match &rev.key {
        Key::Session(sid) => {
            e.id == *sid
                && !e.is_subject()
                && e.revoked_at == rev.at
                && e.retired_below.unwrap_or(FULL) == rev.floor
        }
        Key::Subject(u) => e.id == USERS[*u] && e.before == Some(rev.before),
    })
}

/// Whether the store refuses at least what this revocation refused (it, or a stronger
/// one of the same key).
fn covering(snapshot: &[RevocationEntry], store: &MemoryDenylist, rev: &Revocation) -> bool {
    match &rev.key {
        Key::Session(sid) => snapshot.iter().any(|e| {
            e.id == *sid && !e.is_subject() && e.retired_below.unwrap_or(FULL) >= rev.floor
        }),
        // A later logout-all of the same user replaces (and covers) this one.
        Key::Subject(u) => store.subject_revoked_at(USERS[*u]) >= Some(rev.before),
    }
}

// ---------------------------------------------------------------------------------------
// Running a sequence
// ---------------------------------------------------------------------------------------

struct Run {
    sut: Sut,
    model: Model,
    step: usize,
}

impl Run {
    fn new(setup: Setup) -> Self {
        let sut = Sut::new(setup);
        let model = Model::new(setup, sut.kit.now());
        Self {
            sut,
            model,
            step: 0,
        }
    }

    fn set_clock(&mut self, target: i64) {
        if target > self.model.now {
            self.model.now = target;
            self.sut.kit.clock().set(target);
        }
    }

    /// The model follows the store's evictions so far (mid-step, when what comes next
    /// depends on them).
    fn follow_overflow(&mut self) {
        let snapshot = self.sut.store().snapshot();
        self.model
            .overflow(self.step, |r| exact(&snapshot, r).is_some());
    }

    /// Check a token the layer issued against the model and track it.
    fn issued(&mut self, what: &str, from: Lineage, token: String) {
        let claims = self.sut.claims(&token);
        let s = &self.model.sessions[from.session];
        let now = self.model.now;
        let ctx = format!("step {}: {what}: {claims:?}", self.step);
        assert_eq!(claims.sid, s.sid, "{ctx}: sid");
        assert_eq!(claims.sub, USERS[s.user], "{ctx}: sub");
        assert_eq!(claims.csrf.expose(), s.csrf, "{ctx}: csrf");
        assert_eq!(claims.auth_time, s.auth_time, "{ctx}: auth_time");
        assert_eq!((claims.iat, claims.lat), (now, now), "{ctx}: iat, lat");
        assert_eq!(
            claims.exp,
            (now + s.idle()).min(s.auth_time + s.absolute()),
            "{ctx}: exp"
        );
        assert_eq!(claims.rem, s.remembered, "{ctx}: rem");
        assert_eq!(claims.generation, from.generation, "{ctx}: gen");
        assert_eq!(claims.fresh, Some(from.fresh), "{ctx}: fresh");
        assert_eq!(claims.data, from.data, "{ctx}: data");
        self.model.track(MToken {
            session: from.session,
            token,
            lat: now,
            generation: from.generation,
            fresh: from.fresh,
            data: from.data,
        });
    }

    async fn apply(&mut self, op: &Op) {
        self.step += 1;
        let step = self.step;
        match *op {
            Op::Login(user) => self.login(user, false, None).await,
            Op::LoginRemembered(user) => self.login(user, true, None).await,
            Op::LoginOver(t, user, remembered) => {
                let Some(i) = self.model.pick_token(t) else {
                    return;
                };
                self.login(user, remembered, Some(i)).await;
            }
            Op::Request(t, handler) => {
                if let Some(i) = self.model.pick_token(t) {
                    self.request(i, handler).await;
                }
            }
            Op::ReissueWhenDue(t) => {
                if let Some(i) = self.model.pick_token(t) {
                    self.set_clock(self.model.tokens[i].lat + REISSUE_AFTER);
                    self.request(i, Handler::Ok).await;
                }
            }
            Op::Refresh(t) | Op::Update(t, _) | Op::Reauth(t) => {
                let Some(i) = self.model.pick_token(t) else {
                    return;
                };
                let tok = self.model.tokens[i].clone();
                let expected = self.model.decide(&tok);
                let csrf = self.model.sessions[tok.session].csrf.clone();
                let mut from = tok.lineage();
                let (what, path) = match *op {
                    Op::Update(_, retire) => {
                        from.data = self.model.next_data();
                        from.generation += u32::from(retire);
                        ("update", format!("/update/{retire}/{}", from.data))
                    }
                    Op::Reauth(_) => {
                        // Never before the login (dated a second late after a logout-all
                        // of the same second).
                        let auth_time = self.model.sessions[tok.session].auth_time;
                        from.fresh = self.model.now.max(auth_time);
                        ("reauth", "/reauth".to_owned())
                    }
                    _ => ("refresh", "/session/refresh".to_owned()),
                };
                let res = self.sut.send(self.sut.post(&path, &tok.token, &csrf)).await;
                assert_eq!(decision(&res), expected, "step {step}: {what} token {i}");
                match (expected, cookie_out(&self.sut, &res)) {
                    (Ok(()), CookieOut::Issued(token)) => {
                        assert_eq!(res.status(), StatusCode::OK, "step {step}: {what}");
                        if from.generation > tok.generation {
                            // Recorded before the new token is minted.
                            self.model.retire(tok.session, from.generation);
                        }
                        self.issued(what, from, token);
                    }
                    (Err(_), CookieOut::Removed) => {}
                    (_, other) => panic!("step {step}: {what} of token {i}: cookie {other:?}"),
                }
            }
            Op::Conflict(t, kind) => {
                let Some(i) = self.model.pick_token(t) else {
                    return;
                };
                let tok = self.model.tokens[i].clone();
                let expected = self.model.decide(&tok);
                let csrf = self.model.sessions[tok.session].csrf.clone();
                let store = self.sut.store().clone();
                let before = (store.snapshot(), store.watermark());
                let path = format!("/conflict/{kind}");
                let res = self.sut.send(self.sut.post(&path, &tok.token, &csrf)).await;
                let ctx = format!("step {step}: {path} token {i} ({expected:?})");
                // The handler runs with or without a session: its own 500, no refusal.
                assert_eq!(decision(&res), Ok(()), "{ctx}");
                assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{ctx}");
                // No new cookie; a refused one is cleared as on any response.
                let expected_out = if expected.is_ok() {
                    CookieOut::None
                } else {
                    CookieOut::Removed
                };
                assert_eq!(cookie_out(&self.sut, &res), expected_out, "{ctx}: cookie");
                assert_eq!(
                    (store.snapshot(), store.watermark()),
                    before,
                    "{ctx}: contradictory parts changed the revocations"
                );
                let body = body_json(res).await;
                assert_eq!(body["error"]["code"], "session_parts_conflict", "{ctx}");
            }
            Op::Advance(secs) => self.set_clock(self.model.now + secs as i64),
            Op::ToDeadline(t, which, delta) => {
                if let Some(i) = self.model.pick_token(t) {
                    let tok = &self.model.tokens[i];
                    let s = &self.model.sessions[tok.session];
                    let absolute = s.auth_time + s.absolute();
                    let at = match which {
                        Deadline::Reissue => tok.lat + REISSUE_AFTER,
                        Deadline::Idle => (tok.lat + s.idle()).min(absolute) + self.model.leeway,
                        Deadline::Absolute => absolute + self.model.leeway,
                        Deadline::Fresh => tok.fresh + FRESH,
                    };
                    self.set_clock(at + delta);
                }
            }
            Op::ToRevocationTtl(r, delta) => {
                if !self.model.history.is_empty() {
                    let ttl = self.model.history[r % self.model.history.len()].ttl;
                    self.set_clock(ttl + delta);
                }
            }
            Op::Logout(t) | Op::LogoutAll(t) => {
                let all = matches!(op, Op::LogoutAll(_));
                let Some(i) = self.model.pick_token(t) else {
                    return;
                };
                let tok = self.model.tokens[i].clone();
                let expected = self.model.decide(&tok);
                let csrf = self.model.sessions[tok.session].csrf.clone();
                let path = if all {
                    "/session/logout-all"
                } else {
                    "/session/logout"
                };
                let res = self.sut.send(self.sut.post(path, &tok.token, &csrf)).await;
                assert_eq!(decision(&res), expected, "step {step}: {path} token {i}");
                assert_eq!(
                    cookie_out(&self.sut, &res),
                    CookieOut::Removed,
                    "step {step}: {path} must clear the cookie"
                );
                if expected.is_ok() {
                    assert_eq!(res.status(), StatusCode::OK, "step {step}: {path}");
                    if all {
                        self.logout_all(self.model.sessions[tok.session].user);
                    } else {
                        self.model.logout(tok.session);
                    }
                }
            }
            Op::AdminLogoutAll(user) => {
                let before = self.sut.layer.handle().revoke_user(USERS[user]).unwrap();
                assert_eq!(
                    Some(before),
                    self.sut.store().subject_revoked_at(USERS[user]),
                    "step {step}: logout-all cut-off"
                );
                self.logout_all(user);
            }
            Op::RacingLogout(t, all, takes) => {
                let race = if all { Race::All } else { Race::Session };
                self.race(t, race, takes).await;
            }
            Op::RacingRetire(t, takes) => self.race(t, Race::Retire, takes).await,
            Op::Flood(n) => {
                let config = self.sut.kit.config();
                for k in 0..n {
                    let sid = format!("flood-{step}-{k}");
                    self.sut
                        .store()
                        .revoke_session(&sid, self.model.now, config.policy(), config.clock())
                        .unwrap();
                    let now = self.model.now;
                    let ttl = self.model.session_ttl(now, now, false);
                    self.model.record(Key::Session(sid), now, FULL, ttl);
                }
            }
            Op::Sweep => {
                self.sut.store().sweep(self.model.now);
                self.model.sweep();
            }
            Op::Restart => {
                self.sut.restart();
                // Loading the journal drops what expired, as a sweep would.
                self.model.sweep();
                self.model.restarted = true;
            }
        }
        self.check(op).await;
    }

    /// A login of `user`; `over`: carrying that token's cookie and CSRF token (a login
    /// over a live session revokes it first).
    async fn login(&mut self, user: usize, remembered: bool, over: Option<usize>) {
        let step = self.step;
        let path = format!("/login/{}/{remembered}", USERS[user]);
        let (req, replaced) = match over {
            None => (Request::post(&path).body(Body::empty()).unwrap(), None),
            Some(i) => {
                let tok = &self.model.tokens[i];
                let live = self.model.decide(tok).is_ok();
                let csrf = &self.model.sessions[tok.session].csrf;
                let req = self.sut.post(&path, &tok.token, csrf);
                (req, live.then_some(tok.session))
            }
        };
        let res = self.sut.send(req).await;
        let ctx = format!("step {step}: login of {} over {over:?}", USERS[user]);
        assert_eq!(decision(&res), Ok(()), "{ctx}");
        if let Some(old) = replaced {
            // Revoked before the new session is dated: an eviction it causes may drop a
            // logout-all the dating would have looked at.
            self.model.logout(old);
            self.follow_overflow();
        }
        let predicted = self.model.login_time(user);
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                predicted.is_none() || self.model.restarted,
                "{ctx}: login refused, model dates it {predicted:?}"
            );
            assert_eq!(
                res.headers().get("retry-after").map(|v| v.as_bytes()),
                Some(&b"1"[..]),
                "{ctx}: login retry"
            );
            // The session it replaced has ended all the same: its cookie goes.
            let expected = if replaced.is_some() {
                CookieOut::Removed
            } else {
                CookieOut::None
            };
            assert_eq!(cookie_out(&self.sut, &res), expected, "{ctx}: retry cookie");
            return;
        }
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        let CookieOut::Issued(token) = cookie_out(&self.sut, &res) else {
            panic!("{ctx}: login set no session cookie");
        };
        let claims = self.sut.claims(&token);
        assert!(
            claims.auth_time <= claims.iat + 1,
            "{ctx}: auth_time leads iat by more than a second"
        );
        assert_ne!(
            replaced.map(|old| &self.model.sessions[old].sid),
            Some(&claims.sid),
            "{ctx}: a login always starts a new sid"
        );
        let auth_time = self.model.tolerate(
            step,
            "login auth_time",
            predicted.unwrap_or(i64::MIN),
            claims.auth_time,
        );
        let body = body_json(res).await;
        assert_eq!(
            body["csrf"],
            claims.csrf.expose(),
            "{ctx}: csrf in the body"
        );
        self.model.sessions.push(MSession {
            user,
            sid: claims.sid.clone(),
            csrf: claims.csrf.expose().to_owned(),
            auth_time,
            remembered,
            revoked_at: None,
            floor: 0,
        });
        let session = self.model.sessions.len() - 1;
        let from = Lineage {
            session,
            generation: 0,
            fresh: auth_time,
            data: 0,
        };
        self.issued("login", from, token);
    }

    /// The model's side of a logout-all of `user` the layer has just made.
    fn logout_all(&mut self, user: usize) {
        let held = self.sut.store().subject_revoked_at(USERS[user]);
        let recorded = held.expect("a logout-all just made is held");
        let before = self.model.tolerate(
            self.step,
            "logout-all cut-off",
            self.model.next_cut_off(user),
            recorded,
        );
        self.model.logout_all(user, before);
    }

    /// A request during which its session is revoked, or its older tokens retired
    /// (`race`), and the clock moves on by `takes` seconds.
    async fn race(&mut self, t: usize, race: Race, takes: u64) {
        let step = self.step;
        let Some(i) = self.model.pick_token(t) else {
            return;
        };
        let tok = self.model.tokens[i].clone();
        let expected = self.model.decide(&tok);
        let csrf = self.model.sessions[tok.session].csrf.clone();
        let path = format!("/race/{}/{takes}", race.path());
        let res = self.sut.send(self.sut.post(&path, &tok.token, &csrf)).await;
        assert_eq!(decision(&res), expected, "step {step}: {path} token {i}");
        let out = cookie_out(&self.sut, &res);
        let ctx = format!("step {step}: {path} token {i}");
        if expected.is_err() {
            assert_eq!(out, CookieOut::Removed, "{ctx}: refused cookie");
            return;
        }
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        match race {
            Race::All => self.logout_all(self.model.sessions[tok.session].user),
            Race::Session => self.model.logout(tok.session),
            Race::Retire => self.model.retire(tok.session, tok.generation + 1),
        }
        self.follow_overflow();
        self.model.now += takes as i64;
        assert!(
            !matches!(out, CookieOut::Issued(_)),
            "{ctx}: I3: a token was reissued for a session revoked or superseded during the \
             request: {out:?}"
        );
        if race == Race::Retire {
            // Only superseded (a newer token is elsewhere): no cookie at all — unless an
            // eviction the retirement caused raised the watermark over this token, which
            // ends the session here.
            let ended = self.model.watermark.is_some_and(|w| tok.lat <= w);
            let expected_out = if ended {
                CookieOut::Removed
            } else {
                CookieOut::None
            };
            assert_eq!(out, expected_out, "{ctx}: superseded during the request");
        }
    }

    /// A request with token `i` (an index into the model's tokens).
    async fn request(&mut self, i: usize, handler: Handler) {
        let step = self.step;
        let tok = self.model.tokens[i].clone();
        let expected = self.model.decide_for(&tok, handler);
        let (path, passive) = match handler {
            Handler::Ok => ("/me", false),
            Handler::Fail => ("/fail", false),
            Handler::Passive => ("/me", true),
            Handler::Sensitive => ("/sensitive", false),
        };
        let res = self.sut.send(self.sut.get(path, &tok.token, passive)).await;
        assert_eq!(
            decision(&res),
            expected,
            "step {step}: {handler:?} token {i}"
        );
        let out = cookie_out(&self.sut, &res);
        let ctx = format!("step {step}: {handler:?} token {i} (lat {})", tok.lat);
        match expected {
            Err(Refusal::ReauthRequired) => {
                assert_eq!(res.status(), StatusCode::FORBIDDEN, "{ctx}");
                assert_eq!(out, CookieOut::None, "{ctx}: not fresh, but still valid");
            }
            Err(_) => assert_eq!(out, CookieOut::Removed, "{ctx}: refused cookie"),
            Ok(()) => {
                let status = if handler == Handler::Fail {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                assert_eq!(res.status(), status, "{ctx}");
                let due = self.model.now - tok.lat >= REISSUE_AFTER;
                let slides = matches!(handler, Handler::Ok | Handler::Sensitive);
                if slides && due {
                    let CookieOut::Issued(token) = out else {
                        panic!("{ctx}: due, but not reissued: {out:?}");
                    };
                    self.issued("reissue", tok.lineage(), token);
                } else {
                    assert_eq!(out, CookieOut::None, "{ctx}: no reissue expected");
                }
                if handler != Handler::Fail {
                    let body = body_json(res).await;
                    assert_eq!(body["data"], json!(tok.data), "{ctx}: app data");
                }
            }
        }
    }

    /// The invariants, after every step.
    async fn check(&mut self, op: &Op) {
        let step = self.step;
        let now = self.model.now;
        assert_eq!(self.sut.kit.now(), now, "step {step}: clock");
        let store = self.sut.store().clone();
        let snapshot = store.snapshot();
        self.model.overflow(step, |r| exact(&snapshot, r).is_some());

        if std::env::var_os("MODEL_TRACE").is_some() {
            let decisions: Vec<_> = self
                .model
                .tokens
                .iter()
                .map(|t| self.model.decide(t).map_err(Refusal::code))
                .collect();
            eprintln!(
                "step {step} {op:?} now +{} watermark {:?} held {} evictions {}: {decisions:?}",
                now - self.model.tokens.first().map_or(now, |t| t.lat),
                self.model.watermark.map(|w| w - now),
                self.sut.store().len(),
                self.sut.store().evictions()
            );
        }

        // The decision for every token ever issued.
        for (i, tok) in self.model.tokens.iter().enumerate() {
            let expected = self.model.decide(tok);
            let res = self
                .sut
                .send(self.sut.get("/session", &tok.token, true))
                .await;
            let s = &self.model.sessions[tok.session];
            let ctx = format!(
                "step {step} after {op:?}: token {i} (user {}, session {}, remembered {}, \
                 auth_time {}, lat {}, gen {} (floor {}), revoked {:?}), now {now}, \
                 watermark {:?}",
                USERS[s.user],
                tok.session,
                s.remembered,
                s.auth_time,
                tok.lat,
                tok.generation,
                s.floor,
                s.revoked_at,
                self.model.watermark
            );
            assert_eq!(decision(&res), expected, "{ctx}: HTTP decision");
            let direct = self.sut.layer.verify_token(&tok.token);
            if let Ok(session) = &direct {
                assert_eq!(*session.data(), tok.data, "{ctx}: app data");
                assert_eq!(session.remembered(), s.remembered, "{ctx}: remembered");
                assert_eq!(session.fresh_at(), tok.fresh, "{ctx}: fresh");
            }
            assert_eq!(direct.map(|_| ()), expected, "{ctx}: verify_token decision");
            let out = cookie_out(&self.sut, &res);
            let expected_out = if expected.is_ok() {
                CookieOut::None
            } else {
                CookieOut::Removed
            };
            assert_eq!(out, expected_out, "{ctx}: passive probe cookie");
            if expected.is_ok() {
                let absolute = s.auth_time + s.absolute();
                let status = body_json(res).await;
                assert_eq!(status["absolute_deadline"], absolute, "{ctx}: status");
                assert_eq!(
                    status["idle_deadline"],
                    (tok.lat + s.idle()).min(absolute),
                    "{ctx}: status"
                );
            }
        }

        // I4: bounded, and the watermark is the newest evicted revocation time.
        assert!(
            store.len() <= CAPACITY,
            "step {step}: I4: {} revocations held, capacity {CAPACITY}",
            store.len()
        );
        if !self.model.restarted {
            assert_eq!(
                store.len(),
                self.model.held.len(),
                "step {step}: held revocations {:?}, store {snapshot:?}",
                self.model.held
            );
        }
        assert_eq!(
            store.watermark(),
            self.model.watermark,
            "step {step}: watermark"
        );

        // I2: what the store holds of the model's revocations lives exactly until the
        // model's TTL (the session's own lifetimes; the longest for a logout-all).
        for rev in &self.model.held {
            if let Some(entry) = exact(&snapshot, rev) {
                assert_eq!(
                    entry.expires_at, rev.ttl,
                    "step {step}: I2: TTL of {rev:?}: store {entry:?}"
                );
            }
        }

        // I1/I4: a revocation some live token may still need is held (or a stronger one
        // of the same key), or covered by the watermark. I2: right after a sweep (or a
        // journal load) nothing held is past its TTL.
        let swept = matches!(op, Op::Sweep | Op::Restart);
        let watermark = store.watermark().unwrap_or(i64::MIN);
        for rev in &self.model.history {
            if rev.ttl > now {
                assert!(
                    covering(&snapshot, &store, rev) || watermark >= rev.at,
                    "step {step}: I1/I4: revocation {rev:?} forgotten before its TTL \
                     (now {now}, watermark {watermark}, store {snapshot:?})"
                );
            }
            if swept && exact(&snapshot, rev).is_some() {
                assert!(
                    rev.ttl > now,
                    "step {step}: I2: {rev:?} still held after a sweep at {now}"
                );
            }
        }
    }
}

fn run(setup: Setup, ops: &[Op]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut run = Run::new(setup);
        run.check(&Op::Sweep).await;
        for op in ops {
            run.apply(op).await;
        }
    });
}

/// `PROPTEST_CASES` (default 64) for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// `MODEL_MAX_OPS` (default 40): the longest sequence generated.
fn max_ops() -> usize {
    std::env::var("MODEL_MAX_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The layer agrees with the model after every step of every sequence.
    #[test]
    fn layer_matches_model(setup in setup(), ops in proptest::collection::vec(op(), 1..=max_ops())) {
        run(setup, &ops);
    }
}
// ---------------------------------------------------------------------------------------
// Fixed sequences: sanity of the harness, and shrunk counter-examples
// ---------------------------------------------------------------------------------------

/// Every kind of step at least once, in an order where each has an effect.
#[test]
fn every_operation_once() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::Login(1),
            Op::Request(0, Handler::Ok),
            Op::ReissueWhenDue(0),
            Op::Request(0, Handler::Fail),
            Op::Request(1, Handler::Passive),
            Op::Refresh(1),
            Op::Advance(5),
            Op::ToDeadline(0, Deadline::Idle, -1),
            Op::Logout(2),
            Op::LogoutAll(3),
            Op::Login(2),
            Op::RacingLogout(5, false, 1),
            Op::AdminLogoutAll(2),
            Op::Flood(3),
            Op::ToRevocationTtl(0, 0),
            Op::Sweep,
            Op::Restart,
            Op::ToDeadline(0, Deadline::Absolute, 0),
        ],
    );
}

/// Shrunk counter-example (the model was wrong, not the layer): the model took the
/// cut-off of a logout-all to always be "now", but a second logout-all of a user in the
/// same second records one second past the first, so that it also ends a login dated one
/// second late by the first (auth_time bump).
#[test]
fn second_logout_all_in_one_second_moves_the_cut_off() {
    run(
        Setup {
            leeway: 0,
            token_cache: false,
        },
        &[Op::AdminLogoutAll(0), Op::AdminLogoutAll(0)],
    );
}

/// Logout-all, login, logout-all and login again, all in one second: the first login is
/// ended by the first logout-all, the second login (dated one second late) by the second
/// logout-all — through the very token that asked for it — and the third login survives.
#[test]
fn logins_and_logouts_everywhere_in_one_second() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::LogoutAll(0),
            Op::Login(0),
            Op::LogoutAll(1),
            Op::Login(0),
            Op::Request(2, Handler::Ok),
            Op::ToDeadline(2, Deadline::Absolute, -1),
            Op::AdminLogoutAll(0),
        ],
    );
}

/// Overflow in the second of a logout-all: the evicted logout-all raises the watermark
/// to this second, so a login in the same second is refused at once (its `lat` is not
/// after the watermark) — fail closed, as the model says — while a login a second later
/// is accepted. Then a restart brings the evicted revocation back from the journal.
#[test]
fn overflow_in_the_second_of_a_logout_all() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::AdminLogoutAll(0),
            Op::Flood(3),
            Op::Login(0),
            Op::Advance(1),
            Op::Login(0),
            Op::Restart,
            Op::Login(0),
            Op::Request(2, Handler::Ok),
            Op::ToRevocationTtl(1, 0),
            Op::Sweep,
            Op::Restart,
        ],
    );
}

/// Shrunk counter-example (the model was wrong, not the layer): the model evicted
/// strictly in the order revocations were made, but the store orders them by revocation
/// time in whole seconds, and a logout-all repeated in the same second keeps the place of
/// the first. So at overflow it evicted `ben`'s logout-all (made in the same second as
/// the logout the model evicted; the watermark covers both the same), and `ben`'s next
/// login was not dated past a cut-off the store no longer holds. Both are among the
/// oldest: the model now follows the store's choice among them.
#[test]
fn overflow_among_revocations_of_one_second() {
    run(
        Setup {
            leeway: 0,
            token_cache: false,
        },
        &[
            Op::Login(0),
            Op::ReissueWhenDue(0),
            Op::Login(0),
            Op::Login(0),
            Op::Advance(0),
            Op::Login(0),
            Op::Login(0),
            Op::Login(0),
            Op::Advance(0),
            Op::Login(2),
            Op::Login(0),
            Op::AdminLogoutAll(1),
            Op::Login(0),
            Op::Logout(0),
            Op::AdminLogoutAll(1),
            Op::Logout(2),
            Op::Flood(1),
            Op::Login(1),
        ],
    );
}

/// The same, by hand: a logout-all of `ben`, a logout, a second logout-all of `ben` and
/// two more revocations, all in one second; then logins of `ben` in that second (refused
/// by the watermark) and the next (accepted), followed to their deadlines.
#[test]
fn overflow_evicts_a_repeated_logout_all_of_the_same_second() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::AdminLogoutAll(1),
            Op::Logout(0),
            Op::AdminLogoutAll(1),
            Op::Flood(2),
            Op::Login(1),
            Op::Advance(1),
            Op::Login(1),
            Op::Request(2, Handler::Ok),
            Op::ToDeadline(2, Deadline::Idle, 0),
            Op::ToDeadline(1, Deadline::Absolute, 0),
            Op::Sweep,
        ],
    );
}

/// Issue 10, shrunk from a 1,000-case release run: logout-all of a user, again in the
/// same second, a flood of three revocations into the small denylist, and a third
/// logout-all. The flood evicted the first logout-all (one of the oldest, fine); the
/// third then left a stale queue item of its own second behind it, and the store took
/// that item for the new entry and evicted the revocation it had just acknowledged:
/// `revoke_subject` returned its cut-off and `subject_revoked_at` answered `None`.
#[test]
fn overflow_never_evicts_the_revocation_being_recorded() {
    run(
        SETUP,
        &[
            Op::Login(1),
            Op::AdminLogoutAll(1),
            Op::AdminLogoutAll(1),
            Op::Flood(3),
            Op::AdminLogoutAll(1),
            Op::Login(1),
            Op::Advance(1),
            Op::Login(1),
            Op::Request(1, Handler::Ok),
            Op::Sweep,
        ],
    );
}

/// A login after a logout-all of the same second is dated one second ahead; after a
/// second logout-all in that second it cannot be dated (an `auth_time` may lead `iat` by
/// one second only): 503 with `Retry-After: 1`, no cookie; the next second it works.
#[test]
fn login_after_two_logout_alls_in_one_second_retries() {
    run(
        SETUP,
        &[
            Op::AdminLogoutAll(1),
            Op::Login(1),
            Op::AdminLogoutAll(1),
            Op::Login(1),
            Op::Advance(1),
            Op::Login(1),
            Op::Request(1, Handler::Ok),
            Op::LogoutAll(1),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Fixed sequences: the session lifecycle (issue 11)
// ---------------------------------------------------------------------------------------

/// Every lifecycle step at least once, in an order where each has an effect.
#[test]
fn every_lifecycle_operation_once() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::LoginRemembered(1),
            Op::Advance(REISSUE_AFTER as u64),
            Op::Update(0, false),
            Op::Update(1, true),
            Op::Reauth(2),
            Op::Request(4, Handler::Sensitive),
            Op::ToDeadline(4, Deadline::Fresh, 1),
            Op::Request(4, Handler::Sensitive),
            Op::Conflict(3, 0),
            Op::LoginOver(4, 2, true),
            Op::RacingRetire(5, 1),
            Op::Sweep,
            Op::Restart,
        ],
    );
}

/// An update keeps older tokens valid (with the old data) until one retires them: then
/// every token of the session below the new generation is refused (`revoked`) while the
/// newest works; the retirement is an I2 entry of the session's own lifetimes, swept
/// once every token it refuses has expired.
#[test]
fn update_keeps_older_tokens_until_one_retires_them() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::Advance(3),
            Op::Update(0, false),
            Op::Request(0, Handler::Ok),
            Op::Request(1, Handler::Ok),
            Op::Advance(3),
            Op::Update(0, true),
            Op::Request(0, Handler::Ok),
            Op::Request(1, Handler::Ok),
            Op::ReissueWhenDue(2),
            Op::Update(3, true),
            Op::Refresh(4),
            Op::Restart,
            Op::Request(4, Handler::Ok),
            Op::ToRevocationTtl(0, 0),
            Op::Sweep,
            Op::ToRevocationTtl(1, -1),
            Op::Sweep,
            Op::ToRevocationTtl(1, 0),
            Op::Sweep,
        ],
    );
}

/// A retirement is an entry like any revocation: overflow evicts it (the oldest) and
/// raises the watermark to its date, which refuses the older tokens and, since it was
/// minted that very second, the newest one too (fail closed); a login a second later is
/// not affected. Its own retirement, a restart from the journal and another overflow
/// keep every decision.
#[test]
fn overflow_evicts_a_retirement_like_any_revocation() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::Advance(5),
            Op::Update(0, true),
            Op::Advance(1),
            Op::Login(1),
            Op::Flood(3),
            Op::Request(1, Handler::Ok),
            Op::Request(2, Handler::Ok),
            Op::Advance(REISSUE_AFTER as u64),
            Op::Update(2, true),
            Op::Restart,
            Op::Request(3, Handler::Ok),
            Op::Flood(3),
            Op::Request(3, Handler::Ok),
            Op::Sweep,
        ],
    );
}

/// Re-authentication marks the session fresh (`fresh = now`) without moving
/// `auth_time` or the absolute deadline; a sensitive route refuses a stale session with
/// 403 `reauth_required` and leaves it valid (no cookie either way); freshness is
/// inclusive of `FRESH` seconds, belongs to the tokens issued from then on, and survives
/// reissues, refreshes and updates.
#[test]
fn reauth_makes_a_session_fresh_for_sensitive_routes() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::ToDeadline(0, Deadline::Fresh, 0),
            Op::Request(0, Handler::Sensitive),
            Op::Advance(1),
            Op::Request(1, Handler::Sensitive),
            Op::Reauth(1),
            Op::Request(2, Handler::Sensitive),
            Op::Request(0, Handler::Sensitive),
            Op::Advance(REISSUE_AFTER as u64),
            Op::Request(2, Handler::Sensitive),
            Op::Update(3, true),
            Op::ToDeadline(4, Deadline::Fresh, 0),
            Op::Refresh(4),
            Op::Request(5, Handler::Sensitive),
            Op::Advance(1),
            Op::Request(5, Handler::Sensitive),
            Op::Reauth(5),
            Op::Request(6, Handler::Sensitive),
        ],
    );
}

/// A login dated one second late (in the second of a logout-all of its user), then
/// re-authenticated in that same second: `fresh` may not fall before `auth_time`, or the
/// new token would be refused as soon as it was issued. (The layer of b95ad0d did that;
/// fixed in b7ce248. This sequence fails against it at step 3.)
#[test]
fn reauth_in_the_second_of_a_login_dated_late() {
    run(
        SETUP,
        &[
            Op::AdminLogoutAll(0),
            Op::Login(0),
            Op::Reauth(0),
            Op::Request(1, Handler::Sensitive),
            Op::Advance(1),
            Op::Request(1, Handler::Ok),
        ],
    );
}

/// "Remember me": the remembered lifetimes (idle and absolute) apply to the session and
/// to its reissues; its logout is held for the remembered idle timeout; a logout-all
/// outlives the longest absolute timeout, so a remembered session it ended stays refused
/// after a sweep past the normal absolute timeout (the remembered idle timeout is longer).
#[test]
fn remembered_sessions_have_their_own_lifetimes() {
    run(
        Setup {
            leeway: 2,
            token_cache: true,
        },
        &[
            Op::Login(0),
            Op::LoginRemembered(0),
            Op::LoginRemembered(1),
            Op::ToDeadline(0, Deadline::Idle, 0),
            Op::Request(1, Handler::Ok),
            Op::Logout(2),
            Op::AdminLogoutAll(0),
            Op::Advance(ABSOLUTE as u64 + 2),
            Op::Sweep,
            Op::Request(3, Handler::Ok),
            Op::ToRevocationTtl(0, -1),
            Op::Sweep,
            Op::ToRevocationTtl(0, 0),
            Op::Sweep,
            Op::LoginRemembered(0),
            Op::Advance(ABSOLUTE as u64 + 2),
            Op::Request(4, Handler::Ok),
            Op::Advance(300),
            Op::Request(5, Handler::Ok),
            Op::ToDeadline(6, Deadline::Absolute, -1),
            Op::Request(6, Handler::Ok),
            Op::ToDeadline(7, Deadline::Absolute, 0),
            Op::ToRevocationTtl(1, -1),
            Op::Sweep,
            Op::ToRevocationTtl(1, 0),
            Op::Sweep,
        ],
    );
}

/// A login over a live session (its cookie and CSRF token on the request) revokes that
/// session first — with the session's own lifetimes for the TTL — and starts a new `sid`;
/// over a dead session it is a plain login.
#[test]
fn login_over_a_live_session_revokes_it() {
    run(
        SETUP,
        &[
            Op::LoginRemembered(0),
            Op::LoginOver(0, 1, false),
            Op::LoginOver(0, 2, true),
            Op::LoginOver(1, 1, false),
            Op::ToDeadline(3, Deadline::Idle, 0),
            Op::Sweep,
            Op::LoginOver(3, 0, false),
            Op::ToRevocationTtl(0, 0),
            Op::Sweep,
            Op::Restart,
        ],
    );
}

/// A login over a live session right after two logout-alls of the new user in one
/// second: the old session ends, the new one cannot be dated yet (503 with
/// `Retry-After`), and the dead cookie is cleared (b95ad0d left it; fixed in b7ce248).
#[test]
fn login_over_a_live_session_that_must_retry() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::AdminLogoutAll(1),
            Op::AdminLogoutAll(1),
            Op::LoginOver(0, 1, false),
            Op::Advance(1),
            Op::LoginOver(0, 1, false),
            Op::Login(0),
            Op::LoginOver(1, 1, true),
        ],
    );
}

/// A login over a live session whose revocation overflows the denylist: the eviction
/// (of a logout-all of the new user) changes how the new login is dated.
#[test]
fn login_over_a_live_session_at_capacity() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::AdminLogoutAll(1),
            Op::Flood(2),
            Op::LoginOver(0, 1, false),
            Op::Advance(1),
            Op::Login(1),
        ],
    );
}

/// Contradictory response parts (ending or replacing the session while changing it) are
/// a 500 `session_parts_conflict` and do nothing: no revocation, no login, no token —
/// even when a reissue is due; with a refused cookie they only clear it.
#[test]
fn contradictory_parts_do_nothing() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::Advance(REISSUE_AFTER as u64),
            Op::Conflict(0, 0),
            Op::Conflict(0, 1),
            Op::Conflict(0, 2),
            Op::Conflict(0, 3),
            Op::Conflict(0, 4),
            Op::Request(0, Handler::Ok),
            Op::Logout(1),
            Op::Conflict(1, 0),
            Op::Conflict(1, 2),
            Op::Conflict(1, 4),
        ],
    );
}

/// A request in flight while its older tokens are retired (a concurrent update) reissues
/// nothing, not even when due — the browser already holds the newer cookie — and its
/// token is refused from then on. When the retirement overflows the denylist and the
/// watermark covers the token, the cookie is cleared instead.
#[test]
fn retirement_racing_a_request_sets_no_cookie() {
    run(
        SETUP,
        &[
            Op::Login(0),
            Op::Login(1),
            Op::Advance(REISSUE_AFTER as u64),
            Op::RacingRetire(0, 1),
            Op::Request(0, Handler::Ok),
            Op::Flood(2),
            Op::RacingRetire(1, 0),
            Op::Request(1, Handler::Ok),
        ],
    );
}
