// Test doubles for the client: a clock with timers, a BroadcastChannel bus, location and
// document, and a fake jwt-session server behind a fake `fetch` that follows the HTTP
// contract of DESIGN.md (Session-Expires-In, CSRF, passive requests, 401 codes, reauth,
// inventory). Not a test file itself: it defines no tests.
import { SessionClient } from "../src/session-client.js";

export const ORIGIN = "https://app.example";

/** Lets every pending promise callback (and queued channel message) run. */
export async function flush(rounds = 5) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** Milliseconds and timers that move only when told to. */
export class FakeClock {
  constructor(start = Date.UTC(2030, 0, 1)) {
    this.time = start;
    this.timers = new Map();
    this.nextId = 1;
    // Bound, so they can be handed out like the globals.
    this.now = () => this.time;
    this.setTimeout = (callback, ms) => this._add(callback, ms, null);
    this.setInterval = (callback, ms) => this._add(callback, ms, Math.max(1, ms));
    this.clearTimeout = (id) => this.timers.delete(id);
    this.clearInterval = (id) => this.timers.delete(id);
  }

  _add(callback, ms, every) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, Number(ms) || 0), callback, every });
    return id;
  }

  /** The timer functions, as `options.timers`. */
  get api() {
    const { now, setTimeout, clearTimeout, setInterval, clearInterval } = this;
    return { now, setTimeout, clearTimeout, setInterval, clearInterval };
  }

  /** Moves time forward by `ms`, firing due timers in order (and settling promises after each). */
  async advance(ms) {
    const end = this.time + ms;
    await flush();
    for (;;) {
      let nextId = null;
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next.at)) {
          nextId = id;
          next = timer;
        }
      }
      if (next === null) break;
      this.time = Math.max(this.time, next.at);
      if (next.every === null) this.timers.delete(nextId);
      else next.at += next.every;
      next.callback();
      await flush();
    }
    this.time = end;
    await flush();
  }
}

/** A BroadcastChannel implementation shared by the "tabs" of one test. */
export function channelBus() {
  const open = new Set();
  return class FakeBroadcastChannel {
    constructor(name) {
      this.name = name;
      this.onmessage = null;
      this.sent = [];
      open.add(this);
    }

    postMessage(message) {
      this.sent.push(message);
      const data = JSON.parse(JSON.stringify(message)); // structured clone, roughly
      for (const other of open) {
        if (other !== this && other.name === this.name) {
          setImmediate(() => other.onmessage && other.onmessage({ data }));
        }
      }
    }

    close() {
      open.delete(this);
    }
  };
}

export function fakeLocation(origin = ORIGIN) {
  return {
    href: `${origin}/`,
    origin,
    assigned: [],
    assign(url) {
      this.assigned.push(url);
    },
  };
}

export class FakeDocument extends EventTarget {
  constructor() {
    super();
    this.visibilityState = "visible";
  }

  /** A click somewhere in the page. */
  click() {
    this.dispatchEvent(new Event("pointerdown"));
  }

  setVisible(visible) {
    this.visibilityState = visible ? "visible" : "hidden";
    this.dispatchEvent(new Event("visibilitychange"));
  }
}

const USERS = { alice: "wonderland", bob: "builder" };

/**
 * One browser (one cookie jar) talking to one jwt-session server. Times in seconds on the
 * server side, like the real one; the clock is the test's FakeClock.
 */
export class FakeServer {
  constructor(clock, { idle = 60, absolute = 3600, fresh = 300, rememberIdle = 7 * 86400 } = {}) {
    this.clock = clock;
    this.idle = idle;
    this.absolute = absolute;
    this.fresh = fresh;
    this.rememberIdle = rememberIdle;
    this.sessions = new Map(); // sid -> session
    this.cookie = null; // the browser's session cookie: a sid
    this.requests = []; // every request any tab made
    this.seq = 0;
    /** Extra routes: path -> (request) => Response. */
    this.routes = new Map();
    this.fetch = (input, init) => this._fetch(input, init);
  }

  now() {
    return Math.floor(this.clock.now() / 1000);
  }

  /**
   * Starts a session as if a login happened outside the client (the HTML form; with
   * `setCookie: false`, another device).
   */
  startSession(user, { remember = false, setCookie = true } = {}) {
    const now = this.now();
    this.seq += 1;
    const session = {
      sid: `sid-${this.seq}`,
      user,
      csrf: `csrf-${this.seq}`,
      authTime: now,
      freshAt: now,
      lat: now,
      remember,
      revoked: false,
      userAgent: `agent-${this.seq}`,
    };
    this.sessions.set(session.sid, session);
    if (setCookie) this.cookie = session.sid;
    return session;
  }

  current() {
    return this.cookie ? this.sessions.get(this.cookie) : undefined;
  }

  deadlineOf(session) {
    const idle = session.remember ? this.rememberIdle : this.idle;
    return Math.min(session.lat + idle, session.authTime + this.absolute);
  }

  /** Requests to the server's own origin, optionally only those to `path`. */
  ownRequests(path) {
    return this.requests.filter((r) => r.origin === ORIGIN && (path === undefined || r.path === path));
  }

  async _fetch(input, init = {}) {
    const url = new URL(typeof input === "string" || input instanceof URL ? String(input) : input.url, `${ORIGIN}/`);
    const headers = new Headers(init.headers);
    const request = {
      url: url.href,
      origin: url.origin,
      path: url.pathname,
      method: (init.method || "GET").toUpperCase(),
      headers,
      passive: headers.get("X-Session-Passive") === "1",
      csrf: headers.get("X-CSRF-Token"),
      credentials: init.credentials,
      body: parseBody(init.body),
    };
    this.requests.push(request);
    if (url.origin !== ORIGIN) return json(200, { other: url.origin });
    const custom = this.routes.get(request.path);
    if (custom) return custom(request);
    return this._handle(request);
  }

  _refuse(status, code, extra = {}) {
    return json(status, { error: { code, message: code, ...extra } });
  }

  /** The layer: the session of this request, or a refusal. */
  _session(request) {
    const session = this.current();
    if (!session) return { refusal: this._refuse(401, "session_missing") };
    const now = this.now();
    let code = null;
    if (session.revoked) code = "session_revoked";
    else if (now >= session.authTime + this.absolute) code = "session_expired_absolute";
    else if (now >= this.deadlineOf(session)) code = "session_expired_idle";
    if (code) {
      this.cookie = null; // the refused cookie is cleared
      return { refusal: this._refuse(401, code) };
    }
    if (!["GET", "HEAD", "OPTIONS", "TRACE"].includes(request.method)) {
      if (!request.csrf) return { refusal: this._refuse(403, "csrf_missing"), session };
      if (request.csrf !== session.csrf) return { refusal: this._refuse(403, "csrf_mismatch"), session };
    }
    return { session };
  }

  _respond(session, request, status, body) {
    if (status < 400 && !request.passive) session.lat = this.now(); // reissue: slides
    const left = Math.max(0, this.deadlineOf(session) - this.now());
    return json(status, body, { "Session-Expires-In": String(left) });
  }

  _status(session) {
    return {
      sid: session.sid,
      sub: session.user,
      auth_time: session.authTime,
      lat: session.lat,
      idle_deadline: this.deadlineOf(session),
      absolute_deadline: session.authTime + this.absolute,
      expires_in: Math.max(0, this.deadlineOf(session) - this.now()),
      csrf: session.csrf,
    };
  }

  _handle(request) {
    const { path, method, body } = request;
    if (path === "/login" && method === "POST") {
      const live = this.current();
      if (live && !live.revoked && this.now() < this.deadlineOf(live) && request.csrf !== live.csrf) {
        return this._refuse(403, request.csrf ? "csrf_mismatch" : "csrf_missing");
      }
      if (!body || USERS[body.username] !== body.password) return this._refuse(401, "invalid_credentials");
      if (live) live.revoked = true;
      const session = this.startSession(body.username, { remember: body.remember === true });
      return this._respond(session, request, 200, { user: session.user, csrf: session.csrf });
    }
    const { session, refusal } = this._session(request);
    if (refusal) return refusal;
    const me = session.user;
    switch (`${method} ${path}`) {
      case "GET /session":
      case "POST /session/refresh": {
        const response = this._respond(session, request, 200, null);
        return json(200, this._status(session), { "Session-Expires-In": response.headers.get("Session-Expires-In") });
      }
      case "POST /session/logout":
        session.revoked = true;
        this.cookie = null;
        return json(200, { logged_out: true });
      case "POST /session/logout-all":
        for (const s of this.sessions.values()) if (s.user === me) s.revoked = true;
        this.cookie = null;
        return json(200, { logged_out: true, all: true });
      case "GET /api/me":
        return this._respond(session, request, 200, { user: me });
      case "GET /api/notes":
        return this._respond(session, request, 200, { notes: [] });
      case "POST /api/notes":
      case "POST /api/profile":
        return this._respond(session, request, 201, { ok: true });
      case "POST /api/password":
        if (this.now() - session.freshAt > this.fresh) {
          return this._refuse(403, "session_reauth_required", { max_age: this.fresh });
        }
        return this._respond(session, request, 200, { changed: true });
      case "POST /reauth":
        if (!body || USERS[me] !== body.password) return this._refuse(401, "invalid_credentials");
        session.freshAt = this.now();
        return this._respond(session, request, 200, { reauthenticated: true });
      case "GET /session/list": {
        const sessions = [...this.sessions.values()]
          .filter((s) => s.user === me && !s.revoked)
          .reverse()
          .map((s) => ({
            id: s.sid,
            current: s === session,
            created: s.authTime,
            last_active: s.lat,
            user_agent: s.userAgent,
            remember: s.remember,
          }));
        return this._respond(session, request, 200, { sessions });
      }
      case "POST /session/revoke": {
        const target = this.sessions.get(body && body.id);
        if (!target || target.user !== me || target.revoked) return this._refuse(404, "not_found");
        target.revoked = true;
        return this._respond(session, request, 200, { revoked: true });
      }
      case "POST /session/logout-others":
        for (const s of this.sessions.values()) if (s.user === me && s !== session) s.revoked = true;
        return this._respond(session, request, 200, { logged_out_others: true });
      default:
        return this._refuse(404, "not_found");
    }
  }
}

function parseBody(body) {
  if (typeof body !== "string" || body === "") return null;
  try {
    return JSON.parse(body);
  } catch (_) {
    return body;
  }
}

export function json(status, body, headers = {}) {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/**
 * A browser with `tabs` tabs: one clock, one server (cookie jar), one channel bus, a client
 * per tab. Options go to every client.
 */
export function browser({ tabs = 1, server: serverOptions, ...options } = {}) {
  const clock = new FakeClock();
  const server = new FakeServer(clock, serverOptions);
  const Channel = channelBus();
  const pages = [];
  for (let i = 0; i < tabs; i += 1) {
    const location = fakeLocation();
    const document = new FakeDocument();
    const ends = [];
    const client = new SessionClient({
      fetch: server.fetch,
      timers: clock.api,
      BroadcastChannel: Channel,
      location,
      document,
      onSessionEnd: (reason, detail) => ends.push({ reason, detail }),
      ...options,
    });
    pages.push({ client, location, document, ends, events: record(client) });
  }
  const close = () => pages.forEach((p) => p.client.close());
  return { clock, server, pages, close, ...pages[0] };
}

const EVENTS = ["login", "extended", "warning", "reauth-required", "expired", "unauthenticated", "logout", "ended"];

/** Every event the client dispatches, in order: [{type, detail}]. */
export function record(client) {
  const events = [];
  for (const type of EVENTS) client.addEventListener(type, (e) => events.push({ type, detail: e.detail }));
  events.of = (type) => events.filter((e) => e.type === type);
  return events;
}
