// jwt-session browser client: no build step, no framework.
//
//   const session = new SessionClient({ loginPath: "/#login" });
//   session.addEventListener("warning", (e) => …e.detail.secondsLeft…);
//   session.addEventListener("expired", () => …);
//   const res = await session.fetch("/api/notes", { method: "POST", body: … });
//
// * Sends X-CSRF-Token on unsafe methods (the token comes from POST /login or GET /session).
// * Reads the Session-Expires-In header of every response and schedules a "warning"
//   event `warnBefore` seconds before the idle deadline and an "expired" event at it.
// * On a 401 it emits "unauthenticated" and goes to the login page once: never a retry loop.
// * Tabs share state over BroadcastChannel: a logout in one tab ends the others.
"use strict";

class SessionClient extends EventTarget {
  constructor(options = {}) {
    super();
    this.warnBefore = options.warnBefore ?? 60;
    this.onUnauthenticated = options.onUnauthenticated ?? null;
    this.csrf = null;
    this.deadline = null; // ms since epoch, by this browser's clock
    this.redirected = false;
    this._timers = [];
    this._channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("jwt-session") : null;
    if (this._channel) {
      this._channel.onmessage = (m) => this._fromOtherTab(m.data);
    }
  }

  /** fetch() with the CSRF header on unsafe methods and deadline tracking. */
  async fetch(input, init = {}) {
    const method = (init.method || "GET").toUpperCase();
    const headers = new Headers(init.headers || {});
    if (!["GET", "HEAD", "OPTIONS", "TRACE"].includes(method) && this.csrf) {
      headers.set("X-CSRF-Token", this.csrf);
    }
    if (init.body && typeof init.body === "string" && !headers.has("Content-Type")) {
      headers.set("Content-Type", "application/json");
    }
    const res = await fetch(input, { ...init, method, headers, credentials: "same-origin" });
    this._track(res);
    if (res.status === 401) {
      this._ended("unauthenticated", true);
    }
    return res;
  }

  /** POST /login; resolves to the JSON body ({user, csrf}) or throws with the error code. */
  async login(username, password) {
    const res = await fetch("/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
      credentials: "same-origin",
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      throw new Error((body.error && body.error.code) || `http_${res.status}`);
    }
    this.csrf = body.csrf;
    this.redirected = false;
    this._track(res);
    this._broadcast({ type: "login" });
    return body;
  }

  /** GET /session: the status, or null without a session (no redirect: used at start-up). */
  async status() {
    const res = await fetch("/session", { credentials: "same-origin" });
    if (!res.ok) return null;
    const body = await res.json();
    this.csrf = body.csrf;
    this._track(res);
    return body;
  }

  /** POST /session/refresh ("stay signed in"). */
  async refresh() {
    const res = await this.fetch("/session/refresh", { method: "POST" });
    return res.ok ? res.json() : null;
  }

  /** POST /session/logout (or logout-all with {everywhere: true}). */
  async logout({ everywhere = false } = {}) {
    const path = everywhere ? "/session/logout-all" : "/session/logout";
    const res = await fetch(path, {
      method: "POST",
      headers: this.csrf ? { "X-CSRF-Token": this.csrf } : {},
      credentials: "same-origin",
    });
    this._broadcast({ type: "logout" });
    this._ended("logout", false);
    return res.ok;
  }

  secondsLeft() {
    return this.deadline === null ? null : Math.max(0, Math.round((this.deadline - Date.now()) / 1000));
  }

  _track(res) {
    const left = res.headers.get("Session-Expires-In");
    if (left === null) return;
    const seconds = Number(left);
    if (!Number.isFinite(seconds)) return;
    this.deadline = Date.now() + seconds * 1000;
    this._schedule();
    this.dispatchEvent(new CustomEvent("activity", { detail: { secondsLeft: seconds } }));
  }

  _schedule() {
    this._timers.forEach(clearTimeout);
    this._timers = [];
    const left = this.deadline - Date.now();
    const warnAt = left - this.warnBefore * 1000;
    this._timers.push(setTimeout(() => {
      this.dispatchEvent(new CustomEvent("warning", { detail: { secondsLeft: this.secondsLeft() } }));
    }, Math.max(0, warnAt)));
    this._timers.push(setTimeout(() => this._ended("expired", true), Math.max(0, left)));
  }

  _ended(reason, redirect) {
    this._timers.forEach(clearTimeout);
    this._timers = [];
    this.deadline = null;
    this.csrf = null;
    this.dispatchEvent(new CustomEvent(reason === "logout" ? "logout" : "expired", { detail: { reason } }));
    if (redirect && !this.redirected) {
      this.redirected = true; // once: never a loop
      this.dispatchEvent(new CustomEvent("unauthenticated", { detail: { reason } }));
      if (this.onUnauthenticated) this.onUnauthenticated(reason);
    }
  }

  _broadcast(message) {
    if (this._channel) this._channel.postMessage(message);
  }

  _fromOtherTab(message) {
    if (message && message.type === "logout") this._ended("logout", true);
    if (message && message.type === "login") this.dispatchEvent(new CustomEvent("login-elsewhere"));
  }
}

window.SessionClient = SessionClient;
