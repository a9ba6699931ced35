// session-client.js: the browser side of jwt-session's sliding cookie sessions.
// One file, no build step, no framework, no dependencies. Load it with
//
//   <script src="/session-client.js"></script>
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
//   const user = await session.status();               // null without a session
//   await session.login("alice", "wonderland");
//   const res = await session.fetch("/api/notes", { method: "POST", body: JSON.stringify({ text }) });
//
// What it does:
//
// * session.fetch() is fetch() plus: the X-CSRF-Token header on unsafe methods (same-origin
//   URLs only), credentials "same-origin", and JSON content type for string bodies.
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
// * Tabs share state over BroadcastChannel (localStorage events where that is missing):
//   logout in one tab ends the others, a login in one tab wakes the others up, and every
//   new deadline reaches every tab.
// * Polling and background checks send X-Session-Passive: 1, so they never keep an idle
//   session alive.
"use strict";

(function (global) {
  const EXPIRES_HEADER = "Session-Expires-In";
  const PASSIVE_HEADER = "X-Session-Passive";
  const CSRF_HEADER = "X-CSRF-Token";
  const SAFE_METHODS = ["GET", "HEAD", "OPTIONS", "TRACE"];
  const MAX_TIMER_MS = 30000; // re-evaluate at least this often (sleeping laptops, throttled tabs)

  /** Thrown by session.fetch() once the session has ended: log in again first. */
  class SessionEndedError extends Error {
    constructor(reason) {
      super(`the session has ended (${reason}); log in again`);
      this.name = "SessionEndedError";
      this.reason = reason;
    }
  }

  async function errorCode(res) {
    try {
      const body = await res.clone().json();
      return (body && body.error && body.error.code) || null;
    } catch (_) {
      return null;
    }
  }

  /** Is `url` on this page's origin or one of `extra` (origins the CSRF token may go to)? */
  function trustedUrl(url, extra) {
    try {
      const origin = new URL(url, global.location.href).origin;
      return origin === global.location.origin || extra.includes(origin);
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
     */
    async fetch(input, init = {}) {
      if (this.state === "ended") throw new SessionEndedError("ended");
      let res = await this._request(input, init);
      if (res.status === 403 && (await errorCode(res)) === "csrf_mismatch" && !(init.body instanceof ReadableStream)) {
        // The session was replaced by a new login of the same user (in another tab): take
        // its token and retry once. Never on behalf of someone else.
        const [csrfBefore, userBefore] = [this.csrf, this.user];
        await this.check();
        if (this.state === "active" && this.user === userBefore && this.csrf && this.csrf !== csrfBefore) {
          res = await this._request(input, init);
        }
      }
      if (res.status === 401) {
        await this._endFor401(res);
      } else if (this.state !== "ended") {
        this._track(res);
      }
      return res;
    }

    /** POST loginPath with {username, password}; resolves to the body ({user, csrf}) or throws Error(code). */
    async login(username, password) {
      const send = () =>
        this._request(this.options.loginPath, {
          method: "POST",
          body: JSON.stringify({ username, password }),
        });
      let res = await send();
      if (res.status === 403 && /^csrf_/.test((await errorCode(res)) || "")) {
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
        throw new Error((body.error && body.error.code) || `http_${res.status}`);
      }
      this._activate(body.user, body.csrf, res);
      this._broadcast({ type: "login", user: body.user });
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

    /** Mark the user active (clicks and key presses are seen by themselves). */
    touch() {
      this._lastActivity = Date.now();
      if (this.options.autoExtend && this.state === "active" && this._warned && this._extendable) {
        this._autoRefresh();
      }
    }

    /** Whole seconds until the deadline, or null without one. */
    secondsLeft() {
      return this.deadline === null ? null : Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
    }

    /** The effective warning lead time in seconds. */
    warnBefore() {
      const cap = this._longest > 0 ? Math.floor(this._longest / 2000) : Infinity;
      return Math.max(0, Math.min(this.options.warnBefore, cap));
    }

    // ---------------------------------------------------------------- internals

    async _request(input, init = {}, { passive = false } = {}) {
      const method = (init.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
      const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
      const url = input instanceof Request ? input.url : String(input);
      if (!SAFE_METHODS.includes(method) && this.csrf && trustedUrl(url, this.options.csrfOrigins)) {
        headers.set(CSRF_HEADER, this.csrf);
      }
      if (passive) headers.set(PASSIVE_HEADER, "1");
      if (typeof init.body === "string" && !headers.has("Content-Type")) {
        headers.set("Content-Type", "application/json");
      }
      return global.fetch(input, { credentials: "same-origin", ...init, method, headers });
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
            await this._endFor401(res);
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
        this._lastSlide = Date.now();
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
      this._setDeadline(Date.now() + seconds * 1000, true);
    }

    /**
     * The header counts whole seconds, so estimates of one deadline differ by up to a
     * second: only a move later by more than that is news. Never earlier: responses that
     * overtake each other must not pull the deadline back.
     */
    _setDeadline(deadline, share) {
      const now = Date.now();
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
    async _endFor401(res) {
      const code = await errorCode(res);
      const late = this.deadline !== null && Date.now() >= this.deadline - 1000;
      const expired = /^session_expired/.test(code || "") || late;
      this._end(expired ? "expired" : "unauthenticated", { code, status: 401 });
    }

    _schedule() {
      clearTimeout(this._timer);
      this._timer = null;
      if (this.state !== "active" || this.deadline === null) return;
      const left = this.deadline - Date.now();
      const warnMs = this.warnBefore() * 1000;
      if (left <= 0) {
        this._atDeadline();
        return;
      }
      if (!this._warned && left <= warnMs) {
        this._atWarning();
      }
      const next = !this._warned && left > warnMs ? left - warnMs : left;
      this._timer = setTimeout(() => this._schedule(), Math.min(Math.max(next, 0), MAX_TIMER_MS));
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
      if (this.deadline !== null && this.deadline - Date.now() > 1000) {
        this._schedule(); // extended elsewhere
        return;
      }
      this._end("expired", { code: null });
    }

    _end(reason, detail = {}) {
      if (this.state === "ended") return; // once per session: never a loop
      this.state = "ended";
      clearTimeout(this._timer);
      clearInterval(this._poller);
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
      if (typeof this.options.onSessionEnd === "function") {
        this.options.onSessionEnd(reason, info);
      } else if (this.options.loginUrl) {
        global.location.assign(this.options.loginUrl);
      }
    }

    _startPolling() {
      clearInterval(this._poller);
      this._poller = null;
      const every = Number(this.options.pollInterval);
      if (!(every > 0)) return;
      this._poller = setInterval(() => {
        if (this.state === "active" && global.document.visibilityState === "visible") this.check();
      }, every * 1000);
    }

    _listen() {
      const onActivity = () => this.touch();
      global.document.addEventListener("pointerdown", onActivity, { capture: true, passive: true });
      global.document.addEventListener("keydown", onActivity, { capture: true, passive: true });
      global.document.addEventListener("visibilitychange", () => {
        if (global.document.visibilityState === "visible" && this.state === "active") this.check();
      });
      if (typeof global.BroadcastChannel === "function") {
        this._channel = new global.BroadcastChannel(this.options.channelName);
        this._channel.onmessage = (m) => this._fromOtherTab(m.data);
      } else {
        const key = `${this.options.channelName}:message`;
        global.addEventListener("storage", (e) => {
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
        global.localStorage.setItem(key, JSON.stringify({ ...message, nonce: Math.random() }));
        global.localStorage.removeItem(key);
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

  global.SessionClient = SessionClient;
  global.SessionEndedError = SessionEndedError;
})(window);
