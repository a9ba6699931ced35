#!/usr/bin/env python3
"""Bounded soak of the example server: mixed traffic on loopback, then a verdict.

    python3 bench/soak.py [--minutes 5] [--workers 8] [--server target/release/examples/server]

Starts the example server itself (release build expected: `cargo build --release --example
server`) on 127.0.0.1:0 with short timeouts (idle 20 s, so revocations expire and the
sweeper reaches a steady state within the run), drives N workers for the given minutes
through logins, reads, CSRF-protected writes, refreshes, logouts, log-outs everywhere and
forged tokens, samples the server's RSS every 5 s, and stops the server.

Verdict (exit 1 if any fails): unexpected responses = 0, accepted forgeries = 0, revoked
tokens accepted = 0, and RSS flat once steady (last third's max within 10% + 2 MiB of the
middle third's max). Only loopback traffic; every loop is bounded by the deadline.
"""
import argparse, base64, http.client, json, os, random, re, signal, subprocess, sys, tempfile, threading, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.problems = []
    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n
    def problem(self, what):
        with self.lock:
            self.counts["unexpected"] = self.counts.get("unexpected", 0) + 1
            if len(self.problems) < 20:
                self.problems.append(what)

def request(port, method, path, cookie=None, csrf=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {}
    if cookie: headers["Cookie"] = cookie
    if csrf: headers["X-CSRF-Token"] = csrf
    data = None
    if body is not None:
        data = json.dumps(body); headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    res = conn.getresponse()
    payload = res.read()
    set_cookie = res.getheader("Set-Cookie")
    conn.close()
    return res.status, payload, set_cookie

def cookie_of(set_cookie):
    m = re.match(r"([^=;]+)=([^;]*)", set_cookie or "")
    return (m.group(1), m.group(2)) if m else (None, None)

def code(payload):
    try:
        return json.loads(payload)["error"]["code"]
    except Exception:
        return None

def forge(token, how):
    h, p, s = token.split(".")
    if how == "sig":
        raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
        raw[5] ^= 0x40
        return f"{h}.{p}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    if how == "payload":
        claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        claims["sub"] = "mallory"
        claims["exp"] += 10**6
        p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"{h}.{p2}.{s}"
    if how == "none":
        h2 = base64.urlsafe_b64encode(b'{"alg":"none","typ":"session+jwt","kid":"x"}').decode().rstrip("=")
        return f"{h2}.{p}."
    return token[: len(token) // 2]

LOGOUT_ALL = {}  # user -> time of the latest "log out everywhere" (another worker's)
LOGOUT_ALL_LOCK = threading.Lock()

def ended_elsewhere(user, since):
    with LOGOUT_ALL_LOCK:
        return LOGOUT_ALL.get(user, 0) >= since - 1

def worker(port, deadline, stats, rng):
    users = [("alice", "wonderland"), ("bob", "builder")]
    while time.time() < deadline:
        since = time.time()
        user, password = rng.choice(users)
        status, payload, sc = request(port, "POST", "/login", body={"username": user, "password": password})
        if status != 200:
            stats.problem(f"login {status} {payload[:80]!r}"); continue
        stats.add("login")
        name, token = cookie_of(sc)
        csrf = json.loads(payload)["csrf"]
        cookie = f"{name}={token}"
        for _ in range(rng.randint(3, 12)):
            if time.time() >= deadline: break
            action = rng.random()
            if action < 0.5:
                status, payload, sc = request(port, "GET", "/api/me", cookie=cookie)
                ok = status == 200 and json.loads(payload)["user"] == user
            elif action < 0.75:
                status, payload, sc = request(port, "POST", "/api/notes", cookie=cookie, csrf=csrf, body={"text": "soak"})
                ok = status == 201
            elif action < 0.85:
                status, payload, sc = request(port, "POST", "/api/notes", cookie=cookie, body={"text": "no csrf"})
                ok = status == 403 and code(payload) == "csrf_missing"
            elif action < 0.92:
                status, payload, sc = request(port, "POST", "/session/refresh", cookie=cookie, csrf=csrf)
                ok = status == 200
            else:
                how = rng.choice(["sig", "payload", "none", "truncate"])
                status, payload, _ = request(port, "GET", "/api/me", cookie=f"{name}={forge(token, how)}")
                stats.add("forgery_attempts")
                if status == 200:
                    stats.add("forgery_accepted"); stats.problem(f"forgery {how} accepted")
                ok = status == 401
            stats.add("requests")
            if not ok and status == 401 and code(payload) == "session_revoked" and ended_elsewhere(user, since):
                stats.add("ended_by_logout_all")  # another worker logged this user out everywhere
                cookie = None
                break
            if not ok:
                stats.problem(f"{status} {payload[:100]!r}")
            if sc:
                n, v = cookie_of(sc)
                if v:
                    token, cookie = v, f"{n}={v}"
        if cookie is None:
            continue
        old = cookie
        if rng.random() < 0.2:
            with LOGOUT_ALL_LOCK:
                LOGOUT_ALL[user] = time.time()
            status, payload, _ = request(port, "POST", "/session/logout-all", cookie=cookie, csrf=csrf)
        else:
            status, payload, _ = request(port, "POST", "/session/logout", cookie=cookie, csrf=csrf)
        if status == 401 and code(payload) == "session_revoked" and ended_elsewhere(user, since):
            stats.add("ended_by_logout_all"); continue
        if status != 200:
            stats.problem(f"logout {status} {payload[:80]!r}"); continue
        stats.add("logouts")
        status, payload, _ = request(port, "GET", "/api/me", cookie=old)
        if status == 200:
            stats.add("revoked_accepted"); stats.problem("revoked session accepted")
        elif code(payload) != "session_revoked":
            stats.problem(f"after logout: {status} {code(payload)}")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--server", default="target/release/examples/server")
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="jwt-session-soak-")
    env = dict(os.environ, JWT_SESSION_ADDR="127.0.0.1:0", JWT_SESSION_DATA=data,
               JWT_SESSION_IDLE="20s", JWT_SESSION_REISSUE_AFTER="2s", JWT_SESSION_LEEWAY="1s",
               RUST_LOG="warn")
    env.pop("JWT_SESSION_REDIS_URL", None)
    server = subprocess.Popen([args.server], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        stats, samples = Stats(), []
        deadline = time.time() + args.minutes * 60
        threads = [threading.Thread(target=worker, args=(port, deadline, stats, random.Random(i)), daemon=True)
                   for i in range(args.workers)]
        start = time.time()
        for t in threads: t.start()
        while time.time() < deadline:
            samples.append((round(time.time() - start), rss_kib(server.pid)))
            time.sleep(5)
        for t in threads: t.join(timeout=30)
        samples.append((round(time.time() - start), rss_kib(server.pid)))
    finally:
        server.send_signal(signal.SIGINT)
        try: server.wait(timeout=10)
        except subprocess.TimeoutExpired: server.kill()
    third = max(1, len(samples) // 3)
    middle = max(r for _, r in samples[third:2 * third] or samples)
    last = max(r for _, r in samples[2 * third:] or samples)
    flat = last <= middle * 1.10 + 2048
    c = stats.counts
    print(f"soak: {args.minutes} min, {args.workers} workers, {c.get('requests', 0)} requests, "
          f"{c.get('login', 0)} logins, {c.get('logouts', 0)} logouts, {c.get('forgery_attempts', 0)} forgeries tried")
    print(f"unexpected responses: {c.get('unexpected', 0)}")
    print(f"accepted forgeries: {c.get('forgery_accepted', 0)}; revoked sessions accepted: {c.get('revoked_accepted', 0)}")
    print(f"RSS KiB first/middle-max/last-max: {samples[0][1]} / {middle} / {last} -> {'flat' if flat else 'GROWING'}")
    print("RSS samples (s, KiB): " + " ".join(f"{t}:{r}" for t, r in samples))
    for p in stats.problems: print("problem:", p)
    ok = c.get("unexpected", 0) == 0 and c.get("forgery_accepted", 0) == 0 and c.get("revoked_accepted", 0) == 0 and flat
    print("verdict:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
