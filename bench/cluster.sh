#!/usr/bin/env bash
# A local multi-instance cluster: one redis-server on a free loopback port and N (default 3)
# example servers on their own loopback ports, sharing revocations through it.
#
#   bash bench/cluster.sh            # start, print the URLs, run until Ctrl-C
#   bash bench/cluster.sh --smoke    # start, log in on A, log out on A, check that B and C
#                                    # refuse the session, stop (exit 0 = pass)
#
# Env: INSTANCES (default 3), PROFILE (`debug` default, or `release`), plus any
# JWT_SESSION_* setting for the servers (e.g. JWT_SESSION_IDLE=30s).
# Needs: redis-server, curl. Logs and data go to a temporary folder, printed at start.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
INSTANCES="${INSTANCES:-3}"
PROFILE="${PROFILE:-debug}"

command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install -y redis-server)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 2; }

cargo_flags=(--example server --features redis --quiet)
[[ "$PROFILE" == "release" ]] && cargo_flags+=(--release)
cargo build "${cargo_flags[@]}"
BIN="target/$PROFILE/examples/server"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/jwt-session-cluster.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# A free loopback port: nothing answers on it.
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( (RANDOM % 30000) + 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port found" >&2; exit 2
}

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.05
done
export JWT_SESSION_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
echo "work dir: $WORK"
echo "redis:    $JWT_SESSION_REDIS_URL"

URLS=()
for i in $(seq 1 "$INSTANCES"); do
  out="$WORK/server$i.out"
  JWT_SESSION_ADDR=127.0.0.1:0 JWT_SESSION_DATA="$WORK/data$i" \
    "$BIN" >"$out" 2>"$WORK/server$i.log" &
  PIDS+=($!)
  url=""
  for _ in $(seq 1 200); do
    url="$(sed -n 's/^listening on //p' "$out" | head -n1)"
    [[ -n "$url" ]] && break
    sleep 0.05
  done
  [[ -n "$url" ]] || { echo "server $i did not start; see $WORK/server$i.log" >&2; exit 1; }
  URLS+=("$url")
  echo "server $i: $url  (/readyz: $(curl -s "$url/readyz"))"
done

if [[ "$SMOKE" == 0 ]]; then
  echo "running; Ctrl-C stops everything"
  wait
  exit 0
fi

A="${URLS[0]}"
JAR="$WORK/cookies"
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
body="$(curl -s -c "$JAR" -H 'content-type: application/json' \
  -d '{"username":"alice","password":"wonderland"}' "$A/login")"
csrf="$(printf '%s' "$body" | sed -n 's/.*"csrf":"\([^"]*\)".*/\1/p')"
[[ -n "$csrf" ]] || fail "login on A: $body"
for url in "${URLS[@]}"; do
  code="$(curl -s -o /dev/null -w '%{http_code}' -b "$JAR" "$url/api/me")"
  [[ "$code" == 200 ]] || fail "GET /api/me on $url before logout: $code"
done
# Keep a copy of the cookie: logout clears it from the jar, a thief's copy stays.
cp "$JAR" "$WORK/stolen"
code="$(curl -s -o /dev/null -w '%{http_code}' -b "$JAR" -c "$JAR" -X POST \
  -H "x-csrf-token: $csrf" "$A/session/logout")"
[[ "$code" == 200 ]] || fail "logout on A: $code"
start=$(date +%s%N)
for url in "${URLS[@]}"; do
  for _ in $(seq 1 200); do
    out="$(curl -s -b "$WORK/stolen" "$url/api/me")"
    [[ "$out" == *session_revoked* ]] && break
    sleep 0.01
  done
  [[ "$out" == *session_revoked* ]] || fail "the logged-out session is still accepted on $url: $out"
done
echo "SMOKE OK: logout on A refused on all $INSTANCES instances within $(( ($(date +%s%N) - start) / 1000000 )) ms"
