// Types of jwt-session-client (hand-written: keep them in step with src/session-client.js).
// They use the DOM library's fetch, EventTarget and CustomEvent types ("lib": ["dom"]).

// ------------------------------------------------------------------ what the server says

/**
 * The `code` of a refusal body `{"error":{"code","message"}}` from the session layer.
 * 401 (the session is over): every `session_*` code except the two below.
 * 403 (the session stays valid): `csrf_missing`, `csrf_mismatch`, `origin_rejected`,
 * `session_reauth_required`. 503 (try again): `session_check_unavailable`.
 */
export type RefusalCode =
  | "session_missing"
  | "session_malformed"
  | "session_too_large"
  | "session_bad_signature"
  | "session_unknown_key"
  | "session_wrong_algorithm"
  | "session_wrong_type"
  | "session_wrong_issuer"
  | "session_wrong_audience"
  | "session_not_yet_valid"
  | "session_invalid_times"
  | "session_expired_idle"
  | "session_expired_absolute"
  | "session_revoked"
  | "session_check_unavailable"
  | "csrf_missing"
  | "csrf_mismatch"
  | "origin_rejected"
  | "session_reauth_required"
  | "session_data_invalid";

/**
 * Refusals of `POST /login` (and `POST /reauth`): `invalid_credentials` (401, wrong user
 * name or password; at `/reauth` the session stays valid), `session_login_retry` (503 with
 * `Retry-After`: the login could not be dated, try again in a second).
 */
export type LoginErrorCode = "invalid_credentials" | "session_login_retry";

/** Every error code the server sends in `{"error":{"code"}}`. */
export type ErrorCode = RefusalCode | LoginErrorCode;

/** A JSON error body. `max_age` (seconds) comes with `session_reauth_required`. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    max_age?: number;
  };
}

/** `GET /session` (and `POST /session/refresh`). Times are UNIX seconds. */
export interface SessionStatus {
  /** Session id. */
  sid: string;
  /** User id. */
  sub: string;
  /** Login time. */
  auth_time: number;
  /** Last activity. */
  lat: number;
  /** When the session ends without further activity. */
  idle_deadline: number;
  /** When the session ends however active. */
  absolute_deadline: number;
  /** Seconds until `idle_deadline`. */
  expires_in: number;
  /** The CSRF token (sent as `X-CSRF-Token` by `session.fetch`). */
  csrf: string;
}

/** `POST /login` on success. */
export interface LoginResponse {
  user: string;
  csrf: string;
}

/** One entry of `GET /session/list` (`{"sessions":[…]}`, newest first). Times are UNIX seconds. */
export interface SessionInfo {
  /** The id to pass to `revokeSession`. */
  id: string;
  /** Whether this is the session of this browser. */
  current: boolean;
  /** Login time. */
  created: number;
  /** Last activity the server saw. */
  last_active: number;
  /** The `User-Agent` of the login, if known. */
  user_agent: string | null;
  /** A "remember me" (persistent) session. */
  remember: boolean;
}

// ------------------------------------------------------------------ options

/** The client's own states: "unknown" until the first `status()`/`login()`. */
export type SessionState = "unknown" | "active" | "ended";

/** Why a session ended (`ended` event, `onSessionEnd`). */
export type SessionEndReason = "expired" | "unauthenticated" | "logout" | "logout-elsewhere";

/** `fetch`, as the client calls it: unbound, with a `RequestInit` that always has headers. */
export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** Timer functions and clock (each defaults to the global one). Called unbound. */
export interface SessionTimers {
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
  setInterval?: (callback: () => void, ms: number) => unknown;
  clearInterval?: (handle: any) => void;
  /** Milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
}

/** What the client needs of a `BroadcastChannel` (the DOM one fits). */
export interface BroadcastChannelLike {
  postMessage(message: any): void;
  close?(): void;
  onmessage: { bivarianceHack(event: { data: any }): void }["bivarianceHack"] | null;
}

/** A `BroadcastChannel` constructor (the DOM one fits). */
export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/** What the client needs of `location` (the DOM one fits). */
export interface LocationLike {
  readonly href: string;
  readonly origin: string;
  assign(url: string): void;
}

/** What the client needs of `document` (the DOM one fits). */
export interface DocumentLike {
  readonly visibilityState?: string;
  addEventListener(type: string, listener: (event: any) => void, options?: boolean | AddEventListenerOptions): void;
  removeEventListener?(type: string, listener: (event: any) => void, options?: boolean | EventListenerOptions): void;
}

export interface SessionClientOptions {
  /** Where `login()` posts `{"username","password","remember"}`. Default `"/login"`. */
  loginPath?: string;
  /** The session routes' prefix (`GET /session`, `POST /session/refresh`, …). Default `"/session"`. */
  sessionPath?: string;
  /** Where `reauth()` posts `{"password"}`. Default `"/reauth"`. */
  reauthPath?: string;
  /** Seconds before the deadline to fire `warning` (capped at half the session length seen). Default 60. */
  warnBefore?: number;
  /** Refresh by itself near the deadline when the user clicked or typed. Default `false`. */
  autoExtend?: boolean;
  /** Seconds between passive status checks while the page is visible; 0: never. Default 0. */
  pollInterval?: number;
  /** Where to send the browser when the session ends, if there is no `onSessionEnd`. */
  loginUrl?: string | null;
  /** Called once per session, after the `ended` event. */
  onSessionEnd?: ((reason: SessionEndReason, detail: SessionEndDetail) => void) | null;
  /** The BroadcastChannel (or localStorage key) name shared by the tabs. Default `"jwt-session"`. */
  channelName?: string;
  /** Other origins (e.g. `"https://api.example.com"`) that may receive the CSRF token. Default none. */
  csrfOrigins?: string[];

  // Dependencies (tests, non-browser hosts). Omitted: the global of that name, looked up
  // when used. `null`: none (no cross-tab sync, no page listeners, no redirect).

  fetch?: FetchLike;
  timers?: SessionTimers;
  BroadcastChannel?: BroadcastChannelConstructor | null;
  location?: LocationLike | null;
  document?: DocumentLike | null;
}

/** `login()` options. */
export interface LoginOptions {
  /** `true`: a persistent cookie and the longer "remembered" lifetimes. Sent only when given. */
  remember?: boolean;
}

/** `session.fetch()` init: a `RequestInit`, plus `passive`. */
export interface SessionFetchInit extends RequestInit {
  /** Send `X-Session-Passive: 1`: validated, but does not slide the session (polling). */
  passive?: boolean;
}

// ------------------------------------------------------------------ events

/** `login`: a session starts in this tab (`login()`, `status()` found one, another tab logged in). */
export interface LoginDetail {
  user: string;
}

/** `extended`: the deadline moved later. */
export interface ExtendedDetail {
  secondsLeft: number | null;
}

/** `warning`: `warnBefore` seconds before the deadline, once per deadline. */
export interface WarningDetail {
  secondsLeft: number | null;
  /** False at the absolute limit: refreshing cannot help. */
  extendable: boolean;
}

/** `reauth-required`: a route wants a recent login (403 `session_reauth_required`). Not an end. */
export interface ReauthRequiredDetail {
  /** How recent (seconds) a login the route wants, from the body's `max_age`. */
  maxAge: number | null;
  /** The server's message. */
  message: string | null;
}

interface EndDetailBase {
  /** The user of the session that ended. */
  user: string | null;
}

/** `expired`: the deadline passed (confirmed by one passive check), or a 401 `session_expired_*`. */
export interface ExpiredDetail extends EndDetailBase {
  reason: "expired";
  /** The 401's code; null when the client's own deadline ran out. */
  code: RefusalCode | null;
  status?: 401;
}

/** `unauthenticated`: a 401 for another reason (revoked, logged out elsewhere, bad token). */
export interface UnauthenticatedDetail extends EndDetailBase {
  reason: "unauthenticated";
  code: RefusalCode | null;
  status: 401;
}

/** `logout` (and `ended`) after `logout()` in this tab. */
export interface LogoutHereDetail extends EndDetailBase {
  reason: "logout";
  /** `logout({ everywhere: true })`: every session of the user. */
  everywhere: boolean;
  elsewhere: false;
  /** Whether the server confirmed the logout. */
  ok: boolean;
}

/** `logout` (and `ended`) after a logout in another tab. */
export interface LogoutElsewhereDetail extends EndDetailBase {
  reason: "logout-elsewhere";
  everywhere: boolean;
  elsewhere: true;
}

/** `logout`: `logout()` here, or in another tab. */
export type LogoutDetail = LogoutHereDetail | LogoutElsewhereDetail;

/** `ended` (and `onSessionEnd`): exactly once per session, after one of the above. */
export type SessionEndDetail = ExpiredDetail | UnauthenticatedDetail | LogoutHereDetail | LogoutElsewhereDetail;

/** Every event of `SessionClient` and its `detail`. */
export interface SessionClientEventMap {
  login: CustomEvent<LoginDetail>;
  extended: CustomEvent<ExtendedDetail>;
  warning: CustomEvent<WarningDetail>;
  "reauth-required": CustomEvent<ReauthRequiredDetail>;
  expired: CustomEvent<ExpiredDetail>;
  unauthenticated: CustomEvent<UnauthenticatedDetail>;
  logout: CustomEvent<LogoutDetail>;
  ended: CustomEvent<SessionEndDetail>;
}

export type SessionClientEventName = keyof SessionClientEventMap;

export type SessionClientListener<K extends SessionClientEventName> =
  | ((this: SessionClient, event: SessionClientEventMap[K]) => void)
  | { handleEvent(event: SessionClientEventMap[K]): void };

// ------------------------------------------------------------------ classes

/** Thrown by `session.fetch()` once the session has ended: log in again first. */
export class SessionEndedError extends Error {
  constructor(reason: string);
  readonly name: "SessionEndedError";
  readonly reason: string;
}

/**
 * Thrown by `login()`, `reauth()` and the inventory methods when the server refuses.
 * `message` equals `code`.
 */
export class SessionRequestError extends Error {
  constructor(status: number, error?: { code?: string; message?: string } | null);
  readonly name: "SessionRequestError";
  /**
   * The server's code, `"invalid_response"` for an unreadable answer, else `http_<status>`.
   * (An app's own routes may send codes of their own, hence the open end.)
   */
  readonly code: ErrorCode | "invalid_response" | `http_${number}` | (string & {});
  readonly status: number;
  /** The server's human message, if any. */
  readonly serverMessage: string | null;
}

/** The options after defaults. */
export type ResolvedSessionClientOptions = Required<
  Pick<
    SessionClientOptions,
    "loginPath" | "sessionPath" | "reauthPath" | "warnBefore" | "autoExtend" | "pollInterval" | "channelName" | "csrfOrigins"
  >
> &
  Pick<SessionClientOptions, "loginUrl" | "onSessionEnd" | "fetch" | "timers" | "BroadcastChannel" | "location" | "document">;

export class SessionClient extends EventTarget {
  constructor(options?: SessionClientOptions);

  readonly options: ResolvedSessionClientOptions;
  /** "unknown" until the first `status()`/`login()`, then "active" or "ended". */
  readonly state: SessionState;
  /** The user of the live session, or the last one. */
  readonly user: string | null;
  /** The CSRF token of the live session. */
  readonly csrf: string | null;
  /** When the session ends without activity: ms since the epoch, by this browser's clock. */
  readonly deadline: number | null;
  /** How many times the session ended (so: redirects to the login page). */
  readonly loginRedirects: number;
  /** The `autoExtend` option, settable. */
  autoExtend: boolean;

  /**
   * `fetch()` plus the CSRF header (unsafe methods, own origin and `csrfOrigins` only),
   * deadline tracking, one end on a 401, `reauth-required` on a 403
   * `session_reauth_required`. Rejects with `SessionEndedError` once the session has ended.
   */
  fetch(input: RequestInfo | URL, init?: SessionFetchInit): Promise<Response>;
  /** `POST /login`. Rejects with `SessionRequestError` (e.g. code `invalid_credentials`). */
  login(username: string, password: string, options?: LoginOptions): Promise<LoginResponse>;
  /** `POST /reauth {"password"}`: the session becomes fresh again. Rejects with `SessionRequestError`. */
  reauth(password: string): Promise<Record<string, unknown>>;
  /** `GET /session`: the status, or null without a session. Never redirects. */
  status(): Promise<SessionStatus | null>;
  /** A passive `GET /session` (does not slide the session). */
  check(): Promise<SessionStatus | null>;
  /** `POST /session/refresh` ("stay signed in"): the new status, or null. */
  refresh(): Promise<SessionStatus | null>;
  /** `POST /session/logout` (or `/session/logout-all` with `everywhere`); ends every tab. Resolves to whether the server confirmed. */
  logout(options?: { everywhere?: boolean }): Promise<boolean>;
  /** `GET /session/list`: the user's live sessions, newest first. Rejects with `SessionRequestError`. */
  listSessions(options?: { passive?: boolean }): Promise<SessionInfo[]>;
  /** `POST /session/revoke {"id"}`: true if ended, false if no such live session (404). */
  revokeSession(id: string): Promise<boolean>;
  /** `POST /session/logout-others`: ends every session of the user but this one. */
  logoutOthers(): Promise<void>;
  /** Marks the user active (clicks and key presses count by themselves). */
  touch(): void;
  /** Whole seconds until the deadline, or null without one. No network. */
  secondsLeft(): number | null;
  /** The effective warning lead time in seconds. */
  warnBefore(): number;
  /** Stops timers and polling, closes the tab channel, removes page listeners. */
  close(): void;

  addEventListener<K extends SessionClientEventName>(
    type: K,
    listener: SessionClientListener<K> | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends SessionClientEventName>(
    type: K,
    listener: SessionClientListener<K> | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
