// session-client.js: the browser side of jwt-session's sliding cookie sessions.
// One ES module, no dependencies, no build step. Two ways to load it:
//
//   npm install ./clients/js          then  import { SessionClient } from "jwt-session-client";
//   <script src="/session-client.js">       (a script-tag build of this file: window.SessionClient)
//
// and use it like this:
//
//   const session = new SessionClient({
//     warnBefore: 60,          // seconds before the idle deadline to emit "warning"
//     autoExtend: true,        // refresh by itself when the user was active near the deadline
//     pollInterval: 0,         // seconds between passive status checks (0: never)
//     csrfOrigins: [],         // other origins that may get the CSRF token (your API's)
//     onSessionEnd: (reason) => showLoginView(reason),   // or loginUrl: "/login.html"
//   });
//   session.addEventListener("warning", (e) => showWarning(e.detail.secondsLeft));
//   session.addEventListener("extended", () => hideWarning());
//   session.addEventListener("reauth-required", () => askForPassword());
//   const user = await session.status();               // null without a session
//   await session.login("alice", "wonderland", { remember: true });
//   const res = await session.fetch("/api/notes", { method: "POST", body: JSON.stringify({ text }) });
//
// What it does:
//
// * session.fetch() is fetch() plus: the X-CSRF-Token header on unsafe methods (same-origin
//   URLs and csrfOrigins only), credentials "same-origin", and JSON content type for string
//   bodies. `{ passive: true }` in its init sends X-Session-Passive: 1.
// * Every response carrying the Session-Expires-In header (seconds until the session ends
//   unless there is activity) moves the deadline. There is no polling for it.
// * "warning" fires warnBefore seconds before the deadline (capped at half the session
//   length seen), "expired" at the deadline, after one passive check confirms it.
// * autoExtend: when the user clicked or typed since the server last saw activity, the
//   client calls POST /session/refresh near the deadline instead of warning; while the
//   warning shows, a click or key press extends too.
// * On a 401 the session ends: "unauthenticated", then "ended", then onSessionEnd (or a
//   redirect to loginUrl) exactly once. After that session.fetch() throws SessionEndedError
//   without touching the network, so an app can never retry itself into a loop.
// * A 403 session_reauth_required (a sensitive route wants a recent login) is not an end:
//   it fires "reauth-required" ({maxAge}); session.reauth(password) answers it.
// * Tabs share state over BroadcastChannel (localStorage events where that is missing):
//   logout in one tab ends the others, a login in one tab wakes the others up, and every
//   new deadline reaches every tab.
// * Polling and background checks send X-Session-Passive: 1, so they never keep an idle
//   session alive.
// * fetch, timers, BroadcastChannel, location and document come from the options when
//   given (tests, non-browser hosts), else from the global scope at the time of use.
//   Without DOM globals (Node) it loads and runs; it simply listens to no page events.

const EXPIRES_HEADER = "Session-Expires-In";
const PASSIVE_HEADER = "X-Session-Passive";
const CSRF_HEADER = "X-CSRF-Token";
const SAFE_METHODS = ["GET", "HEAD", "OPTIONS", "TRACE"];
const MAX_TIMER_MS = 30000; // re-evaluate at least this often (sleeping laptops, throttled tabs)
// Without a `location` (Node, workers), relative URLs resolve against this made-up origin,
// which then counts as "this page's origin" for the CSRF header.
const NO_LOCATION_BASE = "http://session-client.invalid/";

/** Thrown by session.fetch() once the session has ended: log in again first. */
class SessionEndedError extends Error {
  constructor(reason) {
    super(`the session has ended (${reason}); log in again`);
    this.name = "SessionEndedError";
    this.reason = reason;
  }
}

/**
 * Thrown by login(), reauth() and the inventory methods when the server says no. `message`
 * and `code` are the server's error code (e.g. "invalid_credentials"), or `http_<status>`.
 */
class SessionRequestError extends Error {
  constructor(status, error) {
    const code = (error && typeof error.code === "string" && error.code) || `http_${status}`;
    super(code);
    this.name = "SessionRequestError";
    this.code = code;
    this.status = status;
    this.serverMessage = (error && typeof error.message === "string" && error.message) || null;
  }
}

/** The `error` object of a JSON error body ({"error":{"code","message",…}}), or null. */
async function errorOf(res) {
  try {
    const body = await res.clone().json();
    return body && typeof body.error === "object" && body.error !== null ? body.error : null;
  } catch (_) {
    return null;
  }
}

function codeOf(error) {
  return (error && typeof error.code === "string" && error.code) || null;
}

function isRequest(input) {
  return typeof Request === "function" && input instanceof Request;
}

/** Is `url` on this page's origin or one of `extra` (origins the CSRF token may go to)? */
function trustedUrl(url, extra, location) {
  try {
    const base = location ? location.href : NO_LOCATION_BASE;
    const own = location ? location.origin : new URL(NO_LOCATION_BASE).origin;
    const origin = new URL(url, base).origin;
    return origin === own || extra.includes(origin);
  } catch (_) {
    return false;
  }
}

class SessionClient extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = {
      loginPath: "/login",
      sessionPath: "/session",
      reauthPath: "/reauth",
      warnBefore: 60,
      autoExtend: false,
      pollInterval: 0,
      loginUrl: null,
      onSessionEnd: null,
      channelName: "jwt-session",
      csrfOrigins: [],
      ...options,
    };
    /** "unknown" until the first status()/login(), then "active" or "ended". */
    this.state = "unknown";
    this.user = null;
    this.csrf = null;
    /** When the session ends without activity: ms since the epoch, by this browser's clock. */
    this.deadline = null;
    /** How many times this client sent the user to the login page (at most once per session). */
    this.loginRedirects = 0;
    this._longest = 0; // the longest session length seen (ms): caps warnBefore
    this._lastSlide = 0; // when the deadline last moved later
    this._lastActivity = 0; // the user's last click or key press
    this._warned = false;
    this._extendable = true;
    this._refreshing = null;
    this._checking = null;
    this._timer = null;
    this._poller = null;
    this._confirming = false;
    this._channel = null;
    this._unlisten = [];
    this._listen();
  }

  get autoExtend() {
    return this.options.autoExtend;
  }

  set autoExtend(on) {
    this.options.autoExtend = Boolean(on);
  }

  // ---------------------------------------------------------------- public API

  /**
   * fetch() with the CSRF header on unsafe same-origin requests and deadline tracking.
   * A 401 ends the session (once). Throws SessionEndedError once the session has ended.
   * `init.passive`: send X-Session-Passive: 1 (validated, but does not slide the session).
   */
  async fetch(input, init = {}) {
    if (this.state === "ended") throw new SessionEndedError("ended");
    const { passive = false, ...rest } = init || {};
    const streaming = typeof ReadableStream === "function" && rest.body instanceof ReadableStream;
    let res = await this._request(input, rest, { passive });
    let error = res.status === 401 || res.status === 403 ? await errorOf(res) : null;
    if (res.status === 403 && codeOf(error) === "csrf_mismatch" && !streaming) {
      // The session was replaced by a new login of the same user (in another tab): take
      // its token and retry once. Never on behalf of someone else.
      const [csrfBefore, userBefore] = [this.csrf, this.user];
      await this.check();
      if (this.state === "active" && this.user === userBefore && this.csrf && this.csrf !== csrfBefore) {
        res = await this._request(input, rest, { passive });
        error = res.status === 401 || res.status === 403 ? await errorOf(res) : null;
      }
    }
    if (res.status === 401 && codeOf(error) !== "invalid_credentials") {
      // (invalid_credentials is a wrong password, say at POST /reauth: not a session refusal)
      this._endFor401(codeOf(error));
    } else if (this.state !== "ended") {
      this._track(res);
      if (res.status === 403 && codeOf(error) === "session_reauth_required") {
        const maxAge = Number(error.max_age);
        const detail = {
          maxAge: error.max_age === undefined || error.max_age === null || !Number.isFinite(maxAge) ? null : maxAge,
          message: typeof error.message === "string" ? error.message : null,
        };
        this.dispatchEvent(new CustomEvent("reauth-required", { detail }));
      }
    }
    return res;
  }

  /**
   * POST loginPath with {username, password} (and `remember` when given); resolves to the
   * body ({user, csrf}) or throws SessionRequestError (message and code: e.g.
   * "invalid_credentials").
   */
  async login(username, password, { remember } = {}) {
    const credentials = { username, password };
    if (remember !== undefined) credentials.remember = Boolean(remember);
    const send = () =>
      this._request(this.options.loginPath, {
        method: "POST",
        body: JSON.stringify(credentials),
      });
    let res = await send();
    if (res.status === 403 && /^csrf_/.test(codeOf(await errorOf(res)) || "")) {
      // A live session cookie (say from another tab) makes POST /login need its CSRF
      // token: read it (passively) and try once more.
      const peek = await this._request(this.options.sessionPath, {}, { passive: true }).catch(() => null);
      const current = peek && peek.ok ? await peek.json().catch(() => ({})) : {};
      if (current.csrf) {
        this.csrf = current.csrf;
        res = await send();
      }
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      throw new SessionRequestError(res.status, body && body.error);
    }
    this._activate(body.user, body.csrf, res);
    this._broadcast({ type: "login", user: body.user });
    return body;
  }

  /**
   * POST reauthPath with {password}: proves the user is still there, so routes that want a
   * recent login (403 session_reauth_required) work again. Resolves to the response body;
   * a wrong password throws SessionRequestError("invalid_credentials") and leaves the
   * session as it was.
   */
  async reauth(password) {
    const res = await this.fetch(this.options.reauthPath, {
      method: "POST",
      body: JSON.stringify({ password }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new SessionRequestError(res.status, body && body.error);
    return body;
  }

  /**
   * GET /session: the status ({sub, csrf, expires_in, …}) or null without a session.
   * Use it at start-up (it never redirects: show your login view when it is null) and
   * after a login made outside this client.
   */
  async status() {
    return this._status(false);
  }

  /** A passive GET /session: learns the deadline and CSRF token without sliding the session. */
  async check() {
    if (!this._checking) {
      this._checking = this._status(true).finally(() => {
        this._checking = null;
      });
    }
    return this._checking;
  }

  /** POST /session/refresh ("stay signed in"): the new status, or null. */
  async refresh() {
    if (this.state !== "active") return null;
    const res = await this.fetch(`${this.options.sessionPath}/refresh`, { method: "POST" });
    if (!res.ok) return null;
    const body = await res.json();
    if (body.csrf) this.csrf = body.csrf;
    return body;
  }

  /** POST /session/logout (or /session/logout-all with {everywhere: true}); ends every tab. */
  async logout({ everywhere = false } = {}) {
    const path = `${this.options.sessionPath}/${everywhere ? "logout-all" : "logout"}`;
    let ok = false;
    try {
      ok = (await this._request(path, { method: "POST" })).ok;
    } catch (_) {
      ok = false;
    }
    this._broadcast({ type: "logout", everywhere });
    this._end("logout", { everywhere, elsewhere: false, ok });
    return ok;
  }

  /**
   * GET /session/list: the user's live sessions, newest first
   * ([{id, current, created, last_active, user_agent, remember}]).
   */
  async listSessions({ passive = false } = {}) {
    const res = await this.fetch(`${this.options.sessionPath}/list`, { passive });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new SessionRequestError(res.status, body && body.error);
    if (!body || !Array.isArray(body.sessions)) {
      throw new SessionRequestError(res.status, { code: "invalid_response" });
    }
    return body.sessions;
  }

  /**
   * POST /session/revoke {id}: ends one session of this user (another device, say). True
   * when it was ended, false when it is not a live session of this user (404).
   */
  async revokeSession(id) {
    const res = await this.fetch(`${this.options.sessionPath}/revoke`, {
      method: "POST",
      body: JSON.stringify({ id }),
    });
    if (res.ok) return true;
    if (res.status === 404) return false;
    throw new SessionRequestError(res.status, await errorOf(res));
  }

  /** POST /session/logout-others: ends every session of this user but this one. */
  async logoutOthers() {
    const res = await this.fetch(`${this.options.sessionPath}/logout-others`, { method: "POST" });
    if (!res.ok) throw new SessionRequestError(res.status, await errorOf(res));
  }

  /** Mark the user active (clicks and key presses are seen by themselves). */
  touch() {
    this._lastActivity = this._now();
    if (this.options.autoExtend && this.state === "active" && this._warned && this._extendable) {
      this._autoRefresh();
    }
  }

  /** Whole seconds until the deadline, or null without one. */
  secondsLeft() {
    return this.deadline === null ? null : Math.max(0, Math.ceil((this.deadline - this._now()) / 1000));
  }

  /** The effective warning lead time in seconds. */
  warnBefore() {
    const cap = this._longest > 0 ? Math.floor(this._longest / 2000) : Infinity;
    return Math.max(0, Math.min(this.options.warnBefore, cap));
  }

  /**
   * Stops timers and polling, closes the tab channel and removes the page listeners (for
   * tests, hot reloading, framework unmounts). The session itself is not touched.
   */
  close() {
    this._clearTimeout(this._timer);
    this._clearInterval(this._poller);
    this._timer = null;
    this._poller = null;
    for (const undo of this._unlisten.splice(0)) undo();
    if (this._channel) {
      this._channel.onmessage = null;
      if (typeof this._channel.close === "function") this._channel.close();
      this._channel = null;
    }
  }

  // ---------------------------------------------------------------- dependencies

  _fetch(input, init) {
    const fetch = this.options.fetch || globalThis.fetch;
    return fetch(input, init);
  }

  _timerFn(name) {
    const timers = this.options.timers;
    return (timers && timers[name]) || globalThis[name];
  }

  _now() {
    const timers = this.options.timers;
    const now = (timers && timers.now) || Date.now;
    return now();
  }

  _setTimeout(callback, ms) {
    const setTimeout = this._timerFn("setTimeout");
    return setTimeout(callback, ms);
  }

  _clearTimeout(handle) {
    if (handle === null || handle === undefined) return;
    const clearTimeout = this._timerFn("clearTimeout");
    clearTimeout(handle);
  }

  _setInterval(callback, ms) {
    const setInterval = this._timerFn("setInterval");
    return setInterval(callback, ms);
  }

  _clearInterval(handle) {
    if (handle === null || handle === undefined) return;
    const clearInterval = this._timerFn("clearInterval");
    clearInterval(handle);
  }

  /** An injected dependency (`null` means "none"), else the global of that name. */
  _dep(name) {
    return this.options[name] !== undefined ? this.options[name] : globalThis[name];
  }

  // ---------------------------------------------------------------- internals

  async _request(input, init = {}, { passive = false } = {}) {
    const request = isRequest(input);
    const method = (init.method || (request ? input.method : "GET")).toUpperCase();
    const headers = new Headers(init.headers || (request ? input.headers : undefined));
    const url = request ? input.url : String(input);
    if (!SAFE_METHODS.includes(method) && this.csrf && trustedUrl(url, this.options.csrfOrigins, this._dep("location"))) {
      headers.set(CSRF_HEADER, this.csrf);
    }
    if (passive) headers.set(PASSIVE_HEADER, "1");
    if (typeof init.body === "string" && !headers.has("Content-Type")) {
      headers.set("Content-Type", "application/json");
    }
    return this._fetch(input, { credentials: "same-origin", ...init, method, headers });
  }

  async _status(passive) {
    let res;
    try {
      res = await this._request(this.options.sessionPath, {}, { passive });
    } catch (_) {
      return null; // offline: keep the current state
    }
    if (!res.ok) {
      if (res.status === 401) {
        if (this.state === "active") {
          this._endFor401(codeOf(await errorOf(res)));
        } else {
          this.state = "ended"; // no session at start-up: the app shows its login view
        }
      }
      return null;
    }
    const body = await res.json();
    this._activate(body.sub, body.csrf, res);
    return body;
  }

  /** A session starts (or is confirmed) with `res`, the response that said so. */
  _activate(user, csrf, res) {
    const fresh = !(this.state === "active" && this.user === user);
    this.state = "active";
    this.user = user;
    this.csrf = csrf;
    if (fresh) {
      this.deadline = null;
      this._warned = false;
      this._extendable = true;
      this._lastSlide = this._now();
      this._startPolling();
      this.dispatchEvent(new CustomEvent("login", { detail: { user } }));
    }
    this._track(res);
    this._schedule();
  }

  _track(res) {
    const text = res.headers.get(EXPIRES_HEADER);
    if (text === null || text.trim() === "") return;
    const seconds = Number(text);
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this._setDeadline(this._now() + seconds * 1000, true);
  }

  /**
   * The header counts whole seconds, so estimates of one deadline differ by up to a
   * second: only a move later by more than that is news. Never earlier: responses that
   * overtake each other must not pull the deadline back.
   */
  _setDeadline(deadline, share) {
    const now = this._now();
    this._longest = Math.max(this._longest, deadline - now);
    if (this.deadline !== null && deadline <= this.deadline + 1000) return;
    const first = this.deadline === null;
    this.deadline = deadline;
    if (share) this._broadcast({ type: "deadline", deadline });
    if (this.state !== "active") return;
    this._lastSlide = now;
    this._extendable = true;
    if (this._warned && deadline - now > this.warnBefore() * 1000) this._warned = false;
    if (!first) this.dispatchEvent(new CustomEvent("extended", { detail: { secondsLeft: this.secondsLeft() } }));
    this._schedule();
  }

  /** A 401 ends the session; at or after the deadline that is an expiry. */
  _endFor401(code) {
    const late = this.deadline !== null && this._now() >= this.deadline - 1000;
    const expired = /^session_expired/.test(code || "") || late;
    this._end(expired ? "expired" : "unauthenticated", { code, status: 401 });
  }

  _schedule() {
    this._clearTimeout(this._timer);
    this._timer = null;
    if (this.state !== "active" || this.deadline === null) return;
    const left = this.deadline - this._now();
    const warnMs = this.warnBefore() * 1000;
    if (left <= 0) {
      this._atDeadline();
      return;
    }
    if (!this._warned && left <= warnMs) {
      this._atWarning();
    }
    const next = !this._warned && left > warnMs ? left - warnMs : left;
    this._timer = this._setTimeout(() => this._schedule(), Math.min(Math.max(next, 0), MAX_TIMER_MS));
  }

  _atWarning() {
    if (this.options.autoExtend && this._extendable && this._lastActivity > this._lastSlide) {
      this._autoRefresh();
      return;
    }
    this._warn();
  }

  _warn() {
    if (this._warned) return;
    this._warned = true;
    this.dispatchEvent(
      new CustomEvent("warning", { detail: { secondsLeft: this.secondsLeft(), extendable: this._extendable } }),
    );
  }

  _autoRefresh() {
    if (this._refreshing) return;
    const before = this.deadline;
    this._refreshing = this.refresh()
      .catch(() => null)
      .then(() => {
        if (this.state === "active" && (this.deadline === null || this.deadline <= before + 1000)) {
          // The absolute limit (or an error): refreshing cannot help, so warn instead.
          this._extendable = false;
          this._warn();
        }
      })
      .finally(() => {
        this._refreshing = null;
      });
  }

  /** The deadline passed: one passive check (another tab may have extended), then "expired". */
  async _atDeadline() {
    if (this._confirming) return;
    this._confirming = true;
    try {
      await this.check();
    } finally {
      this._confirming = false;
    }
    if (this.state !== "active") return; // the check saw the 401 and ended the session
    if (this.deadline !== null && this.deadline - this._now() > 1000) {
      this._schedule(); // extended elsewhere
      return;
    }
    this._end("expired", { code: null });
  }

  _end(reason, detail = {}) {
    if (this.state === "ended") return; // once per session: never a loop
    this.state = "ended";
    this._clearTimeout(this._timer);
    this._clearInterval(this._poller);
    this._timer = null;
    this._poller = null;
    this.deadline = null;
    this.csrf = null;
    this._warned = false;
    const info = { reason, user: this.user, ...detail };
    if (reason === "expired") this.dispatchEvent(new CustomEvent("expired", { detail: info }));
    if (reason === "unauthenticated") this.dispatchEvent(new CustomEvent("unauthenticated", { detail: info }));
    if (reason === "logout" || reason === "logout-elsewhere") {
      this.dispatchEvent(new CustomEvent("logout", { detail: info }));
    }
    if (reason === "expired" || reason === "unauthenticated") this._broadcast({ type: "ended", reason });
    this.dispatchEvent(new CustomEvent("ended", { detail: info }));
    this.loginRedirects += 1;
    const location = this._dep("location");
    if (typeof this.options.onSessionEnd === "function") {
      this.options.onSessionEnd(reason, info);
    } else if (this.options.loginUrl && location) {
      location.assign(this.options.loginUrl);
    }
  }

  _startPolling() {
    this._clearInterval(this._poller);
    this._poller = null;
    const every = Number(this.options.pollInterval);
    if (!(every > 0)) return;
    this._poller = this._setInterval(() => {
      if (this.state === "active" && this._visible()) this.check();
    }, every * 1000);
  }

  /** Is the page visible? (Without a document: yes.) */
  _visible() {
    const document = this._dep("document");
    return !document || document.visibilityState === undefined || document.visibilityState === "visible";
  }

  _on(target, type, listener, options) {
    target.addEventListener(type, listener, options);
    this._unlisten.push(() => {
      if (typeof target.removeEventListener === "function") target.removeEventListener(type, listener, options);
    });
  }

  _listen() {
    const document = this._dep("document");
    if (document && typeof document.addEventListener === "function") {
      const onActivity = () => this.touch();
      this._on(document, "pointerdown", onActivity, { capture: true, passive: true });
      this._on(document, "keydown", onActivity, { capture: true, passive: true });
      this._on(document, "visibilitychange", () => {
        if (this._visible() && this.state === "active") this.check();
      });
    }
    const Channel = this._dep("BroadcastChannel");
    if (typeof Channel === "function") {
      this._channel = new Channel(this.options.channelName);
      this._channel.onmessage = (m) => this._fromOtherTab(m.data);
    } else if (typeof globalThis.addEventListener === "function") {
      const key = `${this.options.channelName}:message`;
      this._on(globalThis, "storage", (e) => {
        if (e.key === key && e.newValue) {
          try {
            this._fromOtherTab(JSON.parse(e.newValue));
          } catch (_) {
            /* not ours */
          }
        }
      });
    }
  }

  _broadcast(message) {
    if (this._channel) {
      this._channel.postMessage(message);
      return;
    }
    try {
      const key = `${this.options.channelName}:message`;
      globalThis.localStorage.setItem(key, JSON.stringify({ ...message, nonce: Math.random() }));
      globalThis.localStorage.removeItem(key);
    } catch (_) {
      /* storage unavailable: tabs find out on their next request */
    }
  }

  _fromOtherTab(message) {
    if (!message || typeof message !== "object") return;
    switch (message.type) {
      case "logout":
        if (this.state !== "ended") this._end("logout-elsewhere", { everywhere: Boolean(message.everywhere), elsewhere: true });
        break;
      case "login":
        // A new session replaced the cookie: pick up its CSRF token and deadline, passively.
        this.check();
        break;
      case "deadline":
        if (this.state === "active" && typeof message.deadline === "number") this._setDeadline(message.deadline, false);
        break;
      case "ended":
        if (this.state === "active") this.check(); // confirm with the server before ending here
        break;
      default:
    }
  }
}

export { SessionClient, SessionEndedError, SessionRequestError };
