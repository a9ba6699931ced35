// The session lifecycle beyond login (reauth-required, reauth, profile updates) and the
// session inventory (list, revoke one, log out the others).
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { SessionRequestError } from "../src/session-client.js";
import { browser, json } from "./fakes.mjs";

let open = null;
const start = (options) => {
  open = browser(options);
  return open;
};
afterEach(() => open && open.close());

const SLOW = { server: { idle: 3600, absolute: 86400, fresh: 300 } };

test("403 session_reauth_required fires reauth-required with maxAge and does not end the session", async () => {
  const { client, server, clock, events, ends } = start(SLOW);
  await client.login("alice", "wonderland");
  await clock.advance(301_000);
  const res = await client.fetch("/api/password", { method: "POST", body: JSON.stringify({ new_password: "x" }) });
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error.max_age, 300, "the body is still readable");
  assert.deepEqual(events.of("reauth-required").map((e) => e.detail), [
    { maxAge: 300, message: "session_reauth_required" },
  ]);
  assert.equal(client.state, "active");
  assert.equal(ends.length, 0);
  assert.equal(events.of("ended").length, 0);
  assert.equal((await client.fetch("/api/me")).status, 200, "the session goes on");
  assert.equal(server.ownRequests("/session").length, 0, "no status check needed");
});

test("reauth-required without max_age: maxAge null", async () => {
  const { client, server, events } = start();
  await client.login("alice", "wonderland");
  server.routes.set("/api/danger", () => json(403, { error: { code: "session_reauth_required", message: "log in again" } }));
  await client.fetch("/api/danger", { method: "POST" });
  assert.deepEqual(events.of("reauth-required")[0].detail, { maxAge: null, message: "log in again" });
});

test("reauth(password) posts {password} with the CSRF token; then the route works", async () => {
  const { client, server, clock } = start(SLOW);
  await client.login("alice", "wonderland");
  await clock.advance(301_000);
  assert.equal((await client.fetch("/api/password", { method: "POST", body: "{}" })).status, 403);
  const body = await client.reauth("wonderland");
  assert.deepEqual(body, { reauthenticated: true });
  const [req] = server.ownRequests("/reauth");
  assert.equal(req.method, "POST");
  assert.deepEqual(req.body, { password: "wonderland" });
  assert.equal(req.csrf, "csrf-1");
  assert.equal(req.headers.get("Content-Type"), "application/json");
  assert.equal((await client.fetch("/api/password", { method: "POST", body: "{}" })).status, 200);
});

test("a wrong password at reauth rejects with invalid_credentials and the session stays", async () => {
  const { client, events, ends } = start(SLOW);
  await client.login("alice", "wonderland");
  const err = await client.reauth("guess").catch((e) => e);
  assert.ok(err instanceof SessionRequestError);
  assert.equal(err.code, "invalid_credentials");
  assert.equal(err.status, 401);
  assert.equal(client.state, "active", "a 401 invalid_credentials is not a session refusal");
  assert.equal(ends.length, 0);
  assert.equal(events.of("unauthenticated").length, 0);
  assert.equal((await client.fetch("/api/me")).status, 200);
});

test("a profile update is just session.fetch: same session, same token, new deadline", async () => {
  const { client, server, clock, events } = start();
  await client.login("alice", "wonderland");
  await clock.advance(10_000);
  const res = await client.fetch("/api/profile", { method: "POST", body: JSON.stringify({ display_name: "Alice" }) });
  assert.equal(res.status, 201);
  assert.equal(server.requests.at(-1).csrf, "csrf-1");
  assert.equal(client.csrf, "csrf-1");
  assert.equal(events.of("extended").length, 1);
  assert.equal(events.of("login").length, 1);
});

test("listSessions: GET /session/list, newest first, fields as the server sends them", async () => {
  const { client, server, clock } = start();
  server.startSession("alice", { setCookie: false }); // a phone
  await clock.advance(5_000);
  await client.login("alice", "wonderland", { remember: true });
  server.startSession("bob", { setCookie: false });
  const sessions = await client.listSessions();
  const now = server.now();
  assert.deepEqual(sessions, [
    { id: "sid-2", current: true, created: now, last_active: now, user_agent: "agent-2", remember: true },
    { id: "sid-1", current: false, created: now - 5, last_active: now - 5, user_agent: "agent-1", remember: false },
  ]);
  const req = server.requests.at(-1);
  assert.equal(req.path, "/session/list");
  assert.equal(req.method, "GET");
  assert.equal(req.passive, false);
  await client.listSessions({ passive: true });
  assert.equal(server.requests.at(-1).passive, true);
});

test("revokeSession(id): POST /session/revoke {id} with CSRF; true, then false (404)", async () => {
  const { client, server, ends } = start();
  const phone = server.startSession("alice", { setCookie: false });
  await client.login("alice", "wonderland");
  assert.equal(await client.revokeSession(phone.sid), true);
  const req = server.requests.at(-1);
  assert.equal(req.path, "/session/revoke");
  assert.equal(req.method, "POST");
  assert.deepEqual(req.body, { id: phone.sid });
  assert.equal(req.csrf, "csrf-2");
  assert.equal(phone.revoked, true);
  assert.equal(await client.revokeSession(phone.sid), false, "not a live session any more");
  assert.equal(await client.revokeSession("someone-elses"), false);
  assert.equal(client.state, "active");
  assert.equal(ends.length, 0);
});

test("revokeSession: other refusals reject with their code", async () => {
  const { client, server } = start();
  await client.login("alice", "wonderland");
  server.routes.set("/session/revoke", () => json(503, { error: { code: "session_check_unavailable", message: "" } }));
  const err = await client.revokeSession("x").catch((e) => e);
  assert.ok(err instanceof SessionRequestError);
  assert.equal(err.code, "session_check_unavailable");
  assert.equal(err.status, 503);
  assert.equal(client.state, "active", "a 503 is no end");
});

test("logoutOthers: POST /session/logout-others with CSRF; only this session is left", async () => {
  const { client, server } = start();
  server.startSession("alice", { setCookie: false });
  server.startSession("alice", { setCookie: false });
  await client.login("alice", "wonderland");
  assert.equal(await client.logoutOthers(), undefined);
  const req = server.requests.at(-1);
  assert.equal(req.path, "/session/logout-others");
  assert.equal(req.method, "POST");
  assert.equal(req.csrf, "csrf-3");
  const left = await client.listSessions();
  assert.deepEqual(left.map((s) => [s.id, s.current]), [["sid-3", true]]);
  assert.equal(client.state, "active");
});

test("inventory calls on a dead session end it once and reject", async () => {
  const { client, server, ends } = start();
  await client.login("alice", "wonderland");
  server.current().revoked = true;
  const err = await client.listSessions().catch((e) => e);
  assert.ok(err instanceof SessionRequestError);
  assert.equal(err.code, "session_revoked");
  assert.deepEqual(ends.map((e) => e.reason), ["unauthenticated"]);
  await assert.rejects(client.logoutOthers(), { name: "SessionEndedError" });
  assert.equal(ends.length, 1);
});

test("listSessions rejects an answer without a sessions array", async () => {
  const { client, server } = start();
  await client.login("alice", "wonderland");
  server.routes.set("/session/list", () => json(200, { nope: [] }));
  await assert.rejects(client.listSessions(), { code: "invalid_response" });
});
