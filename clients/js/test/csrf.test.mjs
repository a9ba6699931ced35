// The CSRF token goes only to this page's origin and the configured csrfOrigins, only on
// unsafe methods; CSRF refusals do not end the session.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { SessionClient } from "../src/session-client.js";
import { browser, json } from "./fakes.mjs";

let open = null;
const start = (options) => {
  open = browser(options);
  return open;
};
afterEach(() => open && open.close());

test("unsafe same-origin requests carry X-CSRF-Token; safe ones do not", async () => {
  const { client, server } = start();
  await client.login("alice", "wonderland");
  for (const method of ["POST", "PUT", "PATCH", "DELETE", "post"]) {
    await client.fetch("/api/notes", { method, body: "{}" });
    assert.equal(server.requests.at(-1).csrf, "csrf-1", method);
  }
  for (const method of ["GET", "HEAD", "OPTIONS"]) {
    await client.fetch("/api/me", { method });
    assert.equal(server.requests.at(-1).csrf, null, method);
  }
  await client.fetch("https://app.example/api/notes", { method: "POST", body: "{}" });
  assert.equal(server.requests.at(-1).csrf, "csrf-1", "an absolute URL of this origin");
  await client.fetch(new URL("https://app.example/api/notes"), { method: "POST", body: "{}" });
  assert.equal(server.requests.at(-1).csrf, "csrf-1", "a URL object");
});

test("the token goes to csrfOrigins and to no other origin", async () => {
  const { client, server } = start({ csrfOrigins: ["https://api.example.com"] });
  await client.login("alice", "wonderland");
  const cases = [
    ["https://api.example.com/v1/things", "csrf-1"],
    ["https://evil.example/steal", null],
    ["//evil.example/steal", null],
    ["http://app.example/api/notes", null], // another scheme is another origin
    ["https://app.example:8443/api/notes", null], // and another port
    ["https://api.example.com.evil.example/x", null],
    ["not a url at all", "csrf-1"], // relative: this origin
  ];
  for (const [url, expected] of cases) {
    await client.fetch(url, { method: "POST", body: "{}" });
    const req = server.requests.at(-1);
    assert.equal(req.csrf, expected, url);
  }
});

test("the caller's headers and options are kept; string bodies default to JSON", async () => {
  const { client, server } = start();
  await client.login("alice", "wonderland");
  await client.fetch("/api/notes", {
    method: "POST",
    body: "text=hi",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Extra": "1" },
    credentials: "include",
  });
  const req = server.requests.at(-1);
  assert.equal(req.headers.get("Content-Type"), "application/x-www-form-urlencoded");
  assert.equal(req.headers.get("X-Extra"), "1");
  assert.equal(req.credentials, "include");
  assert.equal(req.csrf, "csrf-1");
});

test("a Request object: its method and headers count", async () => {
  const { client, server } = start();
  await client.login("alice", "wonderland");
  const request = new Request("https://app.example/api/notes", { method: "POST", headers: { "X-From": "request" } });
  await client.fetch(request, { body: "{}" });
  const req = server.requests.at(-1);
  assert.equal(req.csrf, "csrf-1");
  assert.equal(req.headers.get("X-From"), "request");
  await client.fetch(new Request("https://evil.example/x", { method: "POST" }));
  assert.equal(server.requests.at(-1).csrf, null);
});

test("CSRF and origin refusals (403) do not end the session", async () => {
  const { client, server, ends } = start();
  await client.login("alice", "wonderland");
  for (const code of ["csrf_missing", "origin_rejected"]) {
    server.routes.set("/api/forbidden", () => json(403, { error: { code, message: code } }));
    const res = await client.fetch("/api/forbidden", { method: "POST", body: "{}" });
    assert.equal(res.status, 403);
  }
  assert.equal(client.state, "active");
  assert.equal(ends.length, 0);
  assert.equal((await client.fetch("/api/notes", { method: "POST", body: "{}" })).status, 201);
});

test("csrf_mismatch after a new login of the same user elsewhere: re-read the token, retry once", async () => {
  const { client, server, events } = start();
  await client.login("alice", "wonderland");
  server.startSession("alice"); // another tab logged in again: new cookie, new token
  const res = await client.fetch("/api/notes", { method: "POST", body: "{}" });
  assert.equal(res.status, 201);
  const posts = server.ownRequests("/api/notes");
  assert.deepEqual(posts.map((r) => r.csrf), ["csrf-1", "csrf-2"]);
  assert.equal(server.ownRequests("/session").at(-1).passive, true);
  assert.equal(client.csrf, "csrf-2");
  assert.equal(events.of("login").length, 1, "same user: no new login event");
});

test("csrf_mismatch never retries more than once, nor for another user", async () => {
  const { client, server } = start();
  await client.login("alice", "wonderland");
  server.routes.set("/api/always", () => json(403, { error: { code: "csrf_mismatch", message: "" } }));
  server.startSession("alice");
  const res = await client.fetch("/api/always", { method: "POST", body: "{}" });
  assert.equal(res.status, 403);
  assert.equal(server.ownRequests("/api/always").length, 2, "one retry");

  server.startSession("bob"); // bob logged in in another tab
  const again = await client.fetch("/api/notes", { method: "POST", body: "{}" });
  assert.equal(again.status, 403);
  assert.deepEqual(server.ownRequests("/api/notes").map((r) => r.csrf), ["csrf-2"], "not on bob's behalf");
});

test("login over a live session of another tab sends that session's token", async () => {
  const { client, server } = start();
  server.startSession("bob"); // the cookie of another tab's session; this client knows nothing
  const body = await client.login("alice", "wonderland");
  assert.equal(body.user, "alice");
  const logins = server.ownRequests("/login");
  assert.deepEqual(logins.map((r) => r.csrf), [null, "csrf-1"]);
  assert.equal(server.ownRequests("/session")[0].passive, true);
  assert.equal(client.csrf, "csrf-2");
});

test("without a location (Node): relative URLs are this origin, absolute ones are not", async () => {
  const seen = [];
  const client = new SessionClient({
    location: null,
    document: null,
    BroadcastChannel: null,
    fetch: async (url, init) => {
      seen.push([String(url), new Headers(init.headers).get("X-CSRF-Token")]);
      return json(200, { user: "alice", csrf: "t" });
    },
  });
  await client.login("alice", "wonderland");
  await client.fetch("/api/notes", { method: "POST" });
  await client.fetch("//evil.example/x", { method: "POST" });
  await client.fetch("https://evil.example/x", { method: "POST" });
  assert.deepEqual(seen.slice(1), [
    ["/api/notes", "t"],
    ["//evil.example/x", null],
    ["https://evil.example/x", null],
  ]);
  client.close();
});
