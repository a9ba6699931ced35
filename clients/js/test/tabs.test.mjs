// Several tabs of one browser: one cookie, one session, kept in step over BroadcastChannel.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { SessionEndedError } from "../src/session-client.js";
import { browser, flush } from "./fakes.mjs";

let open = null;
const start = (options) => {
  open = browser({ tabs: 2, ...options });
  return open;
};
afterEach(() => open && open.close());

test("logout in one tab ends the other: one end each, and the other tab sends nothing", async () => {
  const { pages, server, clock } = start({ pollInterval: 5 });
  const [a, b] = pages;
  await a.client.login("alice", "wonderland");
  await flush();
  assert.equal(b.client.state, "active", "the login woke the other tab up");
  assert.equal(b.client.user, "alice");
  assert.equal(b.client.csrf, "csrf-1");

  await a.client.logout();
  await flush();
  assert.deepEqual(a.ends.map((e) => e.reason), ["logout"]);
  assert.deepEqual(b.ends.map((e) => e.reason), ["logout-elsewhere"]);
  assert.deepEqual(b.events.of("logout")[0].detail, {
    reason: "logout-elsewhere",
    user: "alice",
    everywhere: false,
    elsewhere: true,
  });
  const total = server.requests.length;
  await clock.advance(5 * 60_000);
  assert.equal(server.requests.length, total, "no tab sends anything after the end (no polling, no checks)");
  await assert.rejects(b.client.fetch("/api/me"), SessionEndedError);
  assert.equal(b.ends.length, 1);
  assert.equal(b.events.of("ended").length, 1);
  assert.equal(a.ends.length, 1, "the echo of its own message does not end a tab twice");
});

test("log out everywhere reaches the other tab as everywhere", async () => {
  const { pages } = start();
  const [a, b] = pages;
  await a.client.login("alice", "wonderland");
  await flush();
  await a.client.logout({ everywhere: true });
  await flush();
  assert.equal(b.ends[0].detail.everywhere, true);
});

test("a login in one tab brings an ended tab back, passively", async () => {
  const { pages, server } = start();
  const [a, b] = pages;
  await a.client.login("alice", "wonderland");
  await flush();
  await a.client.logout();
  await flush();
  const before = server.requests.length;
  await b.client.login("bob", "builder");
  await flush();
  const woke = server.requests.slice(before + 1);
  assert.equal(woke.length, 1);
  assert.equal(woke[0].path, "/session");
  assert.equal(woke[0].passive, true);
  assert.equal(a.client.state, "active");
  assert.equal(a.client.user, "bob");
  assert.deepEqual(a.events.of("login").map((e) => e.detail.user), ["alice", "bob"]);
  assert.equal((await a.client.fetch("/api/me")).status, 200);
});

test("every new deadline reaches every tab: the idle tab neither warns nor expires", async () => {
  const { pages, clock, server } = start({ warnBefore: 10 });
  const [a, b] = pages;
  await a.client.login("alice", "wonderland");
  await flush();
  for (let i = 0; i < 4; i += 1) {
    await clock.advance(30_000);
    await a.client.fetch("/api/me"); // the user works in tab A
  }
  await flush();
  assert.equal(b.client.deadline, a.client.deadline);
  assert.equal(b.events.of("warning").length, 0);
  assert.equal(b.client.state, "active");
  assert.equal(b.events.of("extended").length, 4);
  const passiveChecks = server.ownRequests("/session").filter((r) => r.passive);
  assert.equal(passiveChecks.length, 1, "only the wake-up check after the login");
});

test("an expiry in one tab makes the other confirm with the server before ending", async () => {
  const { pages, clock, server } = start({ warnBefore: 10 });
  const [a, b] = pages;
  await a.client.login("alice", "wonderland");
  await flush();
  const before = server.requests.length;
  await clock.advance(60_000);
  assert.equal(a.client.state, "ended");
  assert.equal(b.client.state, "ended");
  assert.deepEqual(a.ends.map((e) => e.reason), ["expired"]);
  assert.deepEqual(b.ends.map((e) => e.reason), ["expired"]);
  const checks = server.requests.slice(before);
  assert.ok(checks.length <= 2, `at most one check per tab: ${checks.length}`);
  assert.ok(checks.every((r) => r.path === "/session" && r.passive));
});

test("without a BroadcastChannel the tabs fall back to storage events, or to nothing", async () => {
  const { SessionClient } = await import("../src/session-client.js");
  const client = new SessionClient({ BroadcastChannel: null, document: null, location: null, fetch: async () => new Response("{}") });
  assert.equal(client._channel, null);
  client._broadcast({ type: "logout" }); // no localStorage in Node: silently nothing
  client.close();
});
