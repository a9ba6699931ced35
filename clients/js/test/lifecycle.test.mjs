// Login, deadline tracking from Session-Expires-In, warning, expiry confirmed by one passive
// check, exactly one end of session, and nothing after it.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { SessionEndedError, SessionRequestError } from "../src/session-client.js";
import { browser, json } from "./fakes.mjs";

let open = null;
const start = (options) => {
  open = browser(options);
  return open;
};
afterEach(() => open && open.close());

test("login posts the credentials, starts the session and learns the deadline", async () => {
  const { client, server, clock, events } = start({ warnBefore: 10 });
  assert.equal(client.state, "unknown");
  const body = await client.login("alice", "wonderland");
  assert.deepEqual(body, { user: "alice", csrf: "csrf-1" });
  const [req] = server.requests;
  assert.equal(req.path, "/login");
  assert.equal(req.method, "POST");
  assert.deepEqual(req.body, { username: "alice", password: "wonderland" }, "no remember unless asked");
  assert.equal(req.headers.get("Content-Type"), "application/json");
  assert.equal(req.credentials, "same-origin");
  assert.equal(client.state, "active");
  assert.equal(client.user, "alice");
  assert.equal(client.csrf, "csrf-1");
  assert.equal(client.deadline, clock.now() + 60_000);
  assert.equal(client.secondsLeft(), 60);
  assert.deepEqual(events.map((e) => e.type), ["login"]);
  assert.deepEqual(events[0].detail, { user: "alice" });
});

test("remember is sent only when given", async () => {
  const { client, server } = start();
  await client.login("alice", "wonderland", { remember: true });
  assert.deepEqual(server.requests.at(-1).body, { username: "alice", password: "wonderland", remember: true });
  assert.equal(server.current().remember, true);
  await client.login("alice", "wonderland", { remember: false });
  assert.deepEqual(server.requests.at(-1).body, { username: "alice", password: "wonderland", remember: false });
});

test("a wrong password rejects with the server's code and starts nothing", async () => {
  const { client, events } = start();
  const err = await client.login("alice", "nope").catch((e) => e);
  assert.ok(err instanceof SessionRequestError);
  assert.equal(err.message, "invalid_credentials", "message is the code (the example SPA compares it)");
  assert.equal(err.code, "invalid_credentials");
  assert.equal(err.status, 401);
  assert.equal(client.state, "unknown");
  assert.equal(events.length, 0);
});

test("every Session-Expires-In moves the deadline later, never earlier", async () => {
  const { client, server, clock, events } = start({ warnBefore: 10 });
  await client.login("alice", "wonderland");
  const first = client.deadline;

  await clock.advance(30_000);
  const res = await client.fetch("/api/me"); // the server slides: 60 s from now
  assert.equal(res.status, 200);
  assert.equal(client.deadline, first + 30_000);
  assert.deepEqual(events.of("extended").map((e) => e.detail), [{ secondsLeft: 60 }]);

  // A slower response that overtakes with an older, earlier deadline changes nothing.
  server.routes.set("/api/slow", () => json(200, {}, { "Session-Expires-In": "5" }));
  await client.fetch("/api/slow");
  assert.equal(client.deadline, first + 30_000);
  // Nor do a missing or garbled header.
  server.routes.set("/api/garbled", () => json(200, {}, { "Session-Expires-In": "soon" }));
  await client.fetch("/api/garbled");
  assert.equal(client.deadline, first + 30_000);
  assert.equal(events.of("extended").length, 1);
});

test("a passive request is marked and does not slide the session", async () => {
  const { client, server, clock } = start();
  await client.login("alice", "wonderland");
  const deadline = client.deadline;
  await clock.advance(20_000);
  await client.fetch("/api/me", { passive: true });
  const req = server.requests.at(-1);
  assert.equal(req.passive, true);
  assert.equal(server.current().lat * 1000, deadline - 60_000, "the server did not slide");
  assert.equal(client.deadline, deadline);
  await client.fetch("/api/me");
  assert.equal(server.requests.at(-1).passive, false);
  assert.equal(client.deadline, deadline + 20_000);
});

test("warning, then expiry confirmed by one passive check, one end, then silence", async () => {
  const { client, server, clock, events, ends, location } = start({ warnBefore: 10 });
  await client.login("alice", "wonderland");
  const requests = server.requests.length;

  await clock.advance(49_000);
  assert.equal(events.of("warning").length, 0, "not yet: 11 s left");
  await clock.advance(1_000);
  assert.deepEqual(events.of("warning").map((e) => e.detail), [{ secondsLeft: 10, extendable: true }]);
  assert.equal(server.requests.length, requests, "a warning costs no request");

  await clock.advance(10_000);
  const after = server.requests.slice(requests);
  assert.equal(after.length, 1, "exactly one request at the deadline");
  assert.equal(after[0].path, "/session");
  assert.equal(after[0].method, "GET");
  assert.equal(after[0].passive, true, "the confirming check is passive");
  assert.equal(client.state, "ended");
  assert.deepEqual(
    events.slice(1).map((e) => e.type),
    ["warning", "expired", "ended"],
  );
  assert.equal(events.of("ended")[0].detail.reason, "expired");
  assert.equal(events.of("expired")[0].detail.code, "session_expired_idle");
  assert.equal(ends.length, 1, "one end-of-session callback");
  assert.equal(ends[0].reason, "expired");
  assert.equal(client.loginRedirects, 1);
  assert.deepEqual(location.assigned, [], "onSessionEnd given: no redirect");

  // Nothing more, ever: no timers, no polling, no request, and fetch refuses locally.
  const total = server.requests.length;
  assert.equal(clock.timers.size, 0, "no timers left");
  await clock.advance(10 * 60_000);
  await assert.rejects(client.fetch("/api/me"), SessionEndedError);
  await assert.rejects(client.fetch("/api/notes", { method: "POST", body: "{}" }), (err) => {
    assert.equal(err.name, "SessionEndedError");
    return true;
  });
  assert.equal(server.requests.length, total, "no request after the end");
  assert.equal(ends.length, 1);
  assert.equal(events.of("ended").length, 1);
});

test("at the deadline a check that finds the session alive keeps it", async () => {
  const { client, server, clock, events, ends } = start({ warnBefore: 10 });
  await client.login("alice", "wonderland");
  // Activity the client did not see (another device window, a server-side slide):
  await clock.advance(30_000);
  server.current().lat = server.now();
  await clock.advance(30_000);
  const checks = server.ownRequests("/session");
  assert.equal(checks.length, 1);
  assert.equal(checks[0].passive, true);
  assert.equal(client.state, "active");
  assert.equal(client.secondsLeft(), 30);
  assert.equal(ends.length, 0);
  assert.equal(events.of("extended").length, 1);
});

test("with loginUrl and no onSessionEnd, the end redirects once", async () => {
  const { client, server, clock, location } = start({ onSessionEnd: null, loginUrl: "/login.html" });
  await client.login("alice", "wonderland");
  server.current().revoked = true;
  const results = await Promise.all([client.fetch("/api/me"), client.fetch("/api/notes")]);
  assert.deepEqual(results.map((r) => r.status), [401, 401]);
  await clock.advance(120_000);
  assert.deepEqual(location.assigned, ["/login.html"]);
  assert.equal(client.loginRedirects, 1);
});

test("a 401 for another reason is 'unauthenticated', once, even for concurrent requests", async () => {
  const { client, server, events, ends } = start();
  await client.login("alice", "wonderland");
  server.current().revoked = true; // "log out everywhere" on another device
  await Promise.all([client.fetch("/api/me"), client.fetch("/api/notes"), client.check()]);
  assert.deepEqual(ends.map((e) => e.reason), ["unauthenticated"]);
  const [ended] = events.of("ended");
  assert.deepEqual(ended.detail, { reason: "unauthenticated", user: "alice", code: "session_revoked", status: 401 });
  assert.equal(events.of("unauthenticated").length, 1);
});

test("status() at start-up without a session: null, no end-of-session call; login works after", async () => {
  const { client, server, ends, events } = start();
  assert.equal(await client.status(), null);
  assert.equal(client.state, "ended");
  assert.equal(ends.length, 0);
  assert.equal(events.length, 0);
  await client.login("bob", "builder");
  assert.equal(client.state, "active");
  const res = await client.fetch("/api/me");
  assert.deepEqual(await res.json(), { user: "bob" });
  server.startSession("bob");
  assert.equal((await client.status()).sub, "bob");
});

test("status() picks up a session and its CSRF token", async () => {
  const { client, server, events } = start();
  server.startSession("alice");
  const status = await client.status();
  assert.equal(status.sub, "alice");
  assert.equal(status.csrf, "csrf-1");
  assert.equal(client.csrf, "csrf-1");
  assert.equal(server.requests[0].passive, false, "status() is an ordinary request");
  assert.equal((await client.check()).sub, "alice");
  assert.equal(server.requests[1].passive, true, "check() is passive");
  assert.equal(events.of("login").length, 1, "the same user again is no new login");
});

test("polling is passive, only while visible, and does not keep an idle session alive", async () => {
  const { client, server, clock, document, ends } = start({ pollInterval: 5, warnBefore: 10 });
  await client.login("alice", "wonderland");
  await clock.advance(20_000);
  let polls = server.ownRequests("/session");
  assert.equal(polls.length, 4);
  assert.ok(polls.every((r) => r.passive && r.method === "GET"));

  document.setVisible(false);
  await clock.advance(20_000);
  assert.equal(server.ownRequests("/session").length, 4, "no polling while hidden");
  document.setVisible(true); // coming back: one passive check
  await clock.advance(0);
  polls = server.ownRequests("/session");
  assert.equal(polls.length, 5);
  assert.equal(polls[4].passive, true);

  await clock.advance(30_000);
  assert.equal(client.state, "ended", "polling did not slide the session");
  assert.equal(ends.length, 1);
  const total = server.requests.length;
  await clock.advance(60_000);
  assert.equal(server.requests.length, total, "polling stops at the end");
});

test("autoExtend refreshes near the deadline for a user who clicked, instead of warning", async () => {
  const { client, server, clock, document, events } = start({ warnBefore: 10, autoExtend: true });
  await client.login("alice", "wonderland");
  await clock.advance(20_000);
  document.click();
  await clock.advance(30_000);
  const refreshes = server.ownRequests("/session/refresh");
  assert.equal(refreshes.length, 1);
  assert.equal(refreshes[0].csrf, "csrf-1");
  assert.equal(events.of("warning").length, 0);
  assert.equal(events.of("extended").length, 1);
  assert.equal(client.secondsLeft(), 60);

  // No activity since: the next time it warns.
  await clock.advance(50_000);
  assert.equal(events.of("warning").length, 1);
  assert.equal(server.ownRequests("/session/refresh").length, 1);
  // A key press while the warning shows extends.
  document.dispatchEvent(new Event("keydown"));
  await clock.advance(0);
  assert.equal(server.ownRequests("/session/refresh").length, 2);
  assert.equal(client.secondsLeft(), 60);
});

test("autoExtend at the absolute limit warns as not extendable", async () => {
  const { client, server, clock, document, events } = start({
    warnBefore: 10,
    autoExtend: true,
    server: { idle: 60, absolute: 90 },
  });
  await client.login("alice", "wonderland");
  await clock.advance(45_000);
  await client.fetch("/api/me"); // slides up to the absolute cap: 45 s left
  assert.equal(client.secondsLeft(), 45);
  await clock.advance(1_000);
  document.click();
  await clock.advance(34_000);
  assert.equal(server.ownRequests("/session/refresh").length, 1, "it tried");
  const [warning] = events.of("warning");
  assert.deepEqual(warning.detail, { secondsLeft: 10, extendable: false });
});

test("warnBefore is capped at half the session length seen", async () => {
  const { client } = start({ warnBefore: 600, server: { idle: 20 } });
  assert.equal(client.warnBefore(), 600);
  await client.login("alice", "wonderland");
  assert.equal(client.warnBefore(), 10);
});

test("logout ends the session here: one end, reason logout, and no request after", async () => {
  const { client, server, clock, ends, events } = start();
  await client.login("alice", "wonderland");
  assert.equal(await client.logout(), true);
  assert.equal(server.requests.at(-1).path, "/session/logout");
  assert.equal(server.requests.at(-1).csrf, "csrf-1");
  assert.deepEqual(ends.map((e) => e.reason), ["logout"]);
  assert.deepEqual(events.of("logout")[0].detail, { reason: "logout", user: "alice", everywhere: false, elsewhere: false, ok: true });
  const total = server.requests.length;
  await clock.advance(120_000);
  assert.equal(server.requests.length, total);
  await assert.rejects(client.fetch("/api/me"), SessionEndedError);
  // And a new login starts over.
  await client.login("alice", "wonderland");
  assert.equal((await client.fetch("/api/me")).status, 200);
});

test("logout({everywhere: true}) posts logout-all", async () => {
  const { client, server, ends } = start();
  await client.login("alice", "wonderland");
  await client.logout({ everywhere: true });
  assert.equal(server.requests.at(-1).path, "/session/logout-all");
  assert.equal(ends[0].detail.everywhere, true);
});

test("a failing network at logout still ends the session locally", async () => {
  const { client, server, ends } = start();
  await client.login("alice", "wonderland");
  server.routes.set("/session/logout", () => Promise.reject(new TypeError("offline")));
  assert.equal(await client.logout(), false);
  assert.equal(client.state, "ended");
  assert.equal(ends[0].detail.ok, false);
});
