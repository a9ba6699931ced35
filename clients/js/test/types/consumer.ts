// A small consumer of the package, type-checked in CI (tsc --noEmit, strict): every option,
// method and event is used the way the README shows. Imports the package by its name.
import {
  SessionClient,
  SessionEndedError,
  SessionRequestError,
  type ErrorBody,
  type RefusalCode,
  type SessionEndDetail,
  type SessionInfo,
  type SessionStatus,
} from "jwt-session-client";

const session = new SessionClient({
  loginPath: "/login",
  sessionPath: "/session",
  reauthPath: "/reauth",
  warnBefore: 60,
  autoExtend: true,
  pollInterval: 30,
  loginUrl: null,
  onSessionEnd: (reason, detail) => {
    const r: "expired" | "unauthenticated" | "logout" | "logout-elsewhere" = reason;
    if (detail.reason === "logout" || detail.reason === "logout-elsewhere") {
      const everywhere: boolean = detail.everywhere;
      void everywhere;
    } else {
      const code: RefusalCode | null = detail.code;
      void code;
    }
    void r;
  },
  channelName: "jwt-session",
  csrfOrigins: ["https://api.example.com"],
  // The DOM's own objects fit the dependency options.
  fetch: window.fetch.bind(window),
  timers: { setTimeout, clearTimeout, setInterval, clearInterval, now: Date.now },
  BroadcastChannel,
  location,
  document,
});

// Fakes fit too.
new SessionClient({
  fetch: async () => new Response("{}"),
  timers: { setTimeout: (cb, ms) => ({ cb, ms }), clearTimeout: () => {}, now: () => 0 },
  BroadcastChannel: class {
    onmessage: ((event: { data: any }) => void) | null = null;
    constructor(readonly name: string) {}
    postMessage(_message: unknown) {}
  },
  location: { href: "https://app.example/", origin: "https://app.example", assign: (_url: string) => {} },
  document: null,
});

session.addEventListener("login", (e) => {
  const user: string = e.detail.user;
  void user;
});
session.addEventListener("extended", (e) => {
  const left: number | null = e.detail.secondsLeft;
  void left;
});
session.addEventListener("warning", (e) => {
  const left: number | null = e.detail.secondsLeft;
  const extendable: boolean = e.detail.extendable;
  void [left, extendable];
});
session.addEventListener("reauth-required", async (e) => {
  const maxAge: number | null = e.detail.maxAge;
  void maxAge;
  try {
    await session.reauth("wonderland");
  } catch (err) {
    if (err instanceof SessionRequestError && err.code === "invalid_credentials") return;
    throw err;
  }
});
session.addEventListener("expired", (e) => {
  const code: RefusalCode | null = e.detail.code;
  void code;
});
session.addEventListener("unauthenticated", (e) => {
  const status: 401 = e.detail.status;
  void status;
});
session.addEventListener("logout", (e) => {
  const flags: [boolean, boolean] = [e.detail.everywhere, e.detail.elsewhere];
  void flags;
});
const onEnded = (e: CustomEvent<SessionEndDetail>) => {
  const reason: string = e.detail.reason;
  void reason;
};
session.addEventListener("ended", onEnded);
session.removeEventListener("ended", onEnded);
session.addEventListener("ended", { handleEvent: (e) => void e.detail.user }, { once: true });

async function main(): Promise<void> {
  const status: SessionStatus | null = await session.status();
  if (status) {
    const fields: [string, string, number, number, number, number, number, string] = [
      status.sid, status.sub, status.auth_time, status.lat,
      status.idle_deadline, status.absolute_deadline, status.expires_in, status.csrf,
    ];
    void fields;
  }
  const login = await session.login("alice", "wonderland", { remember: true });
  const csrf: string = login.csrf;
  await session.login("alice", "wonderland");

  const res = await session.fetch("/api/notes", { method: "POST", body: JSON.stringify({ text: "hi" }) });
  if (res.status === 403) {
    const body = (await res.json()) as ErrorBody;
    const code: RefusalCode | "invalid_credentials" | "session_login_retry" = body.error.code;
    void code;
  }
  await session.fetch(new URL("https://app.example/api/poll"), { passive: true });
  await session.fetch("/api/profile", { method: "POST", body: JSON.stringify({ display_name: "Alice" }) });

  const sessions: SessionInfo[] = await session.listSessions();
  await session.listSessions({ passive: true });
  for (const s of sessions) {
    const row: [string, boolean, number, number, string | null, boolean] = [
      s.id, s.current, s.created, s.last_active, s.user_agent, s.remember,
    ];
    if (!s.current) {
      const ended: boolean = await session.revokeSession(s.id);
      void ended;
    }
    void row;
  }
  await session.logoutOthers();

  const refreshed: SessionStatus | null = await session.refresh();
  const checked: SessionStatus | null = await session.check();
  session.touch();
  session.autoExtend = false;
  const left: number | null = session.secondsLeft();
  const lead: number = session.warnBefore();
  const state: "unknown" | "active" | "ended" = session.state;
  const deadline: number | null = session.deadline;
  const redirects: number = session.loginRedirects;
  const ok: boolean = await session.logout({ everywhere: true });
  await session.logout();
  try {
    await session.fetch("/api/me");
  } catch (err) {
    if (err instanceof SessionEndedError) {
      const reason: string = err.reason;
      void reason;
    }
  }
  session.close();
  void [csrf, refreshed, checked, left, lead, state, deadline, redirects, ok, session.user, session.csrf];
}

void main();
