// The package as a whole: loads in Node without DOM globals, takes its defaults from the
// globals at the time of use, the script-tag build is the same code, and the hand-written
// types describe what the module really has (and every code the server sends).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { build, SOURCE, TARGET } from "../build.mjs";
import * as module from "../src/session-client.js";

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, "..");
const types = readFileSync(join(packageDir, "session-client.d.ts"), "utf8");
const source = readFileSync(SOURCE, "utf8");

test("loads and runs in Node without DOM globals, with the global fetch looked up when used", () => {
  const script = `
    import assert from "node:assert/strict";
    for (const name of ["window", "document", "location", "localStorage"]) {
      assert.equal(typeof globalThis[name], "undefined", name);
    }
    const { SessionClient } = await import("jwt-session-client");
    const client = new SessionClient(); // every dependency from the globals (BroadcastChannel is Node's)
    assert.equal(typeof client._channel.postMessage, "function");
    const seen = [];
    globalThis.fetch = async (url, init) => {   // replaced after construction, like a test harness does
      seen.push([String(url), init.headers.get("X-Session-Passive")]);
      return new Response(JSON.stringify({ sub: "alice", csrf: "t" }), { headers: { "Session-Expires-In": "60" } });
    };
    const status = await client.check();
    assert.equal(status.sub, "alice");
    assert.deepEqual(seen, [["/session", "1"]]);
    assert.equal(client.secondsLeft(), 60);
    client.close(); // the channel and the timer are released: the process exits by itself
  `;
  // The same flags as this process (Node 18 needs --experimental-global-customevent).
  execFileSync(process.execPath, [...process.execArgv, "--input-type=module", "-e", script], {
    cwd: packageDir,
    timeout: 20_000,
    stdio: "pipe",
  });
});

test("the script-tag build is the build of the source, and puts the classes on window", () => {
  const built = build(source);
  assert.equal(readFileSync(TARGET, "utf8"), built, "run `node clients/js/build.mjs`");
  const window = {
    EventTarget,
    CustomEvent,
    Event,
    Headers,
    URL,
    Error,
    Promise,
    Date,
    Math,
    Number,
    JSON,
    String,
    Boolean,
    Array,
    Object,
    Symbol,
    Infinity,
  };
  window.window = window;
  const context = vm.createContext(window);
  vm.runInContext(built, context, { filename: "session-client.js" });
  for (const name of Object.keys(module)) {
    assert.equal(typeof window[name], "function", `window.${name}`);
  }
  const client = new window.SessionClient({ BroadcastChannel: null, document: null, location: null });
  assert.equal(client.state, "unknown");
  assert.ok(client instanceof window.EventTarget);
  assert.equal(new window.SessionEndedError("x").name, "SessionEndedError");
});

test("the build refuses imports and extra exports", () => {
  assert.throws(() => build(`import x from "y";\n${source}`), /import/);
  assert.throws(() => build(`${source}\nexport const extra = 1;\n`), /export/);
});

/** The body of `export interface <name> { … }` or `export class <name> … { … }` in the .d.ts. */
function block(kind, name) {
  const start = types.search(new RegExp(`export (?:declare )?${kind} ${name}\\b`));
  assert.ok(start >= 0, `${kind} ${name} in session-client.d.ts`);
  const open = types.indexOf("{", start);
  let depth = 0;
  for (let i = open; i < types.length; i += 1) {
    if (types[i] === "{") depth += 1;
    if (types[i] === "}") depth -= 1;
    if (depth === 0) return types.slice(open + 1, i);
  }
  throw new Error(`unbalanced ${name}`);
}

/** Top-level member names of a block (`name(`, `name?:`, `readonly name:`, `"a-b":`). */
function members(body) {
  const names = new Set();
  let depth = 0;
  for (const line of body.split("\n")) {
    if (depth === 0) {
      const m = /^\s*(?:readonly\s+)?(?:"([^"]+)"|([A-Za-z_$][\w$]*))\??\s*[(:<]/.exec(line);
      if (m) names.add(m[1] || m[2]);
    }
    for (const ch of line.replace(/\/\/.*$|\/\*.*?\*\//g, "")) {
      if ("({[".includes(ch)) depth += 1;
      if (")}]".includes(ch)) depth -= 1;
    }
  }
  return names;
}

test("the types declare every public method and property of SessionClient, and no more", () => {
  const declared = members(block("class", "SessionClient"));
  const { SessionClient } = module;
  const client = new SessionClient({ BroadcastChannel: null, document: null, location: null });
  const runtime = new Set([
    ...Object.getOwnPropertyNames(SessionClient.prototype),
    ...Object.keys(client),
  ].filter((name) => !name.startsWith("_") && name !== "constructor"));
  runtime.add("addEventListener");
  runtime.add("removeEventListener");
  declared.delete("constructor");
  assert.deepEqual([...declared].sort(), [...runtime].sort());
  client.close();
});

test("the types declare every event the client dispatches, and no more", () => {
  const declared = members(block("interface", "SessionClientEventMap"));
  const dispatched = new Set([...source.matchAll(/new CustomEvent\("([^"]+)"/g)].map((m) => m[1]));
  assert.deepEqual([...declared].sort(), [...dispatched].sort());
});

test("the types declare every option the client reads", () => {
  const declared = members(block("interface", "SessionClientOptions"));
  const read = new Set([...source.matchAll(/this\.options\.([A-Za-z]+)/g)].map((m) => m[1]));
  for (const name of source.matchAll(/_dep\("([A-Za-z]+)"\)/g)) read.add(name[1]);
  read.add("timers");
  read.add("fetch");
  assert.deepEqual([...declared].sort(), [...read].sort());
});

test("RefusalCode lists every code of the server's Refusal enum", (t) => {
  const union = types.match(/export type RefusalCode =([^;]+);/);
  assert.ok(union, "RefusalCode in session-client.d.ts");
  const declared = new Set([...union[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]));
  assert.equal(declared.size, 20);
  const errors = join(packageDir, "..", "..", "src", "error.rs");
  if (!existsSync(errors)) {
    t.skip("not in the jwt-session repository");
    return;
  }
  const rust = readFileSync(errors, "utf8");
  // Either `Refusal::Variant => "code"` match arms or `Variant => "code", …;` entries of
  // the `define_refusals!` table.
  const arm = /(?:Refusal::\w+|^\s*[A-Z]\w*)\s*=>\s*"([a-z_]+)"/gm;
  const server = [...rust.matchAll(arm)].map((m) => m[1]);
  assert.ok(server.length >= 17, `found the server's codes in src/error.rs (${server.length})`);
  const missing = server.filter((code) => !declared.has(code));
  assert.deepEqual(missing, [], "codes the server sends that RefusalCode lacks");
});
