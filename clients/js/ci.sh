#!/usr/bin/env bash
# CI for the front-end package clients/js (jwt-session-client): `bash clients/js/ci.sh` from
# anywhere. Needs Node >= 20, or Debian bookworm's Node 18 (installed from Debian when
# missing; 18 runs with --experimental-global-customevent, the one global it lacks), and the
# npm registry (typescript, a devDependency); everything else is offline.
#
#   1. the script-tag build: examples/spa/session-client.js equals `node build.mjs` output
#   2. unit tests: node --test
#   3. npm pack --dry-run lists exactly the intended files; version = the crate's
#   4. TypeScript: a consumer of the packed package type-checks (bundler and nodenext
#      resolution), and one with a misspelled event name does NOT
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

step "node and npm"
if ! command -v node >/dev/null || [ "$(node_major)" -lt 18 ] || ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq nodejs npm
fi
node_flags=()
case "$(node_major)" in
  18) node_flags=(--experimental-global-customevent) ;; # Debian bookworm: CustomEvent is global from 19
  19) ;;
  *)
    if [ "$(node_major)" -lt 18 ]; then
      echo "node $(node --version 2>/dev/null || echo missing) is older than 18: install Node 20+" >&2
      exit 1
    fi ;;
esac
node --version
npm --version

step "dev dependencies (typescript)"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

step "script-tag build is up to date"
node "${node_flags[@]}" build.mjs --check

step "unit tests (node --test)"
node "${node_flags[@]}" --test --test-reporter=spec test/

step "npm pack file list"
node "${node_flags[@]}" scripts/check-pack.mjs

step "TypeScript: consumers of the packed package"
tsc="$PWD/node_modules/.bin/tsc"
"$tsc" --version
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm pack --ignore-scripts --silent --pack-destination "$work" >/dev/null
mkdir "$work/app"
cp test/types/*.ts test/types/tsconfig*.json "$work/app/"
(
  cd "$work/app"
  printf '{ "name": "consumer", "private": true, "type": "module" }\n' >package.json
  npm install --offline --no-audit --no-fund --ignore-scripts --loglevel=error ../jwt-session-client-*.tgz
  test -f node_modules/jwt-session-client/session-client.d.ts
  "$tsc" -p tsconfig.json
  echo "consumer.ts (moduleResolution bundler): ok"
  "$tsc" -p tsconfig.nodenext.json
  echo "consumer.ts (moduleResolution nodenext): ok"
  if out="$("$tsc" -p tsconfig.misspelled.json 2>&1)"; then
    echo "misspelled-event.ts type-checked, but it must not" >&2
    exit 1
  fi
  echo "$out"
  errors="$(grep -c 'error TS' <<<"$out" || true)"
  if [ "$errors" != 1 ] || ! grep -q "misspelled-event.ts(.*\"reauth_required\"" <<<"$out"; then
    echo "misspelled-event.ts failed, but not (only) for the misspelled event name" >&2
    exit 1
  fi
  echo "misspelled-event.ts: fails as it must"
)

step "clients/js: all checks passed"
