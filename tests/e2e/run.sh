#!/usr/bin/env bash
# Mosaic's end-to-end tests: the product as its users and their tools see it.
#
#   tests/e2e/run.sh            (from anywhere; the test script calls it from the repo root)
#
# Installs what it needs (Debian's chromium via apt-get when /usr/bin/chromium is missing; the npm
# packages of tests/e2e/package-lock.json via `npm ci` when node_modules is missing or stale),
# builds target/release/mosaic, starts `mosaic demo` on ephemeral ports, runs the tests (node's
# test runner) under a global timeout, always stops the demo, and prints a summary.
#
# Environment (all optional):
#   MOSAIC_E2E_BIN       a mosaic binary to use instead of building target/release/mosaic
#   MOSAIC_E2E_CHROMIUM  the Chromium to drive (default /usr/bin/chromium)
#   MOSAIC_E2E_TIMEOUT   seconds the tests may take in all (default 420)
set -euo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E/../.." && pwd)"
ART="$E2E/artifacts"
CHROMIUM="${MOSAIC_E2E_CHROMIUM:-/usr/bin/chromium}"
TEST_TIMEOUT="${MOSAIC_E2E_TIMEOUT:-420}"
START=$SECONDS
mkdir -p "$ART"

step() { printf '\n==> e2e: %s  [%ss]\n' "$*" "$((SECONDS - START))"; }
loud() {
  local bar='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
  printf '\n%s\n!! %s\n%s\n\n' "$bar" "$*" "$bar" >&2
}
die() {
  printf '\ne2e: FAILED: %s\n' "$*" >&2
  exit 1
}

# --- Node.js (the machine's; v20 or newer) -------------------------------------------------------
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed (Node.js 20 or newer)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is needed, found $(node --version)"

# --- Chromium (Debian's) -------------------------------------------------------------------------
if [ ! -x "$CHROMIUM" ]; then
  if [ "$CHROMIUM" = /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    step "installing Debian's chromium (apt-get)"
    if ! {
      timeout 300 apt-get update &&
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y chromium
    } >"$ART/apt-chromium.log" 2>&1; then
      tail -n 20 "$ART/apt-chromium.log" >&2 || true
      loud "could not install chromium (see $ART/apt-chromium.log): the playground browser test will be SKIPPED"
    fi
  else
    loud "no Chromium at $CHROMIUM, and this script installs only /usr/bin/chromium (with apt-get, as root): the playground browser test will be SKIPPED"
  fi
fi
if [ -x "$CHROMIUM" ]; then
  echo "e2e: browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
fi

# --- npm packages (tests/e2e/package-lock.json) ---------------------------------------------------
stamp_file="$E2E/node_modules/.mosaic-e2e-stamp"
want_stamp="$(cat "$E2E/package.json" "$E2E/package-lock.json" | sha256sum | cut -d' ' -f1) node-$node_major"
if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$want_stamp" ]; then
  step "npm ci (node_modules missing or stale)"
  (cd "$E2E" && timeout 300 npm ci --no-audit --no-fund) || die "npm ci failed in tests/e2e"
  printf '%s' "$want_stamp" >"$stamp_file"
fi

# --- the real-world OpenAPI documents of the import test -------------------------------------------
"$ROOT/scripts/openapi-corpus.sh" || die "could not install tests/openapi-corpus"

# --- the mosaic binary -----------------------------------------------------------------------------
if [ -n "${MOSAIC_E2E_BIN:-}" ]; then
  BIN="$(realpath "$MOSAIC_E2E_BIN")"
else
  step "cargo build --release -p mosaic"
  (cd "$ROOT" && timeout 1500 cargo build --release -p mosaic) || die "cargo build --release -p mosaic failed"
  BIN="$ROOT/target/release/mosaic"
fi
[ -x "$BIN" ] || die "no mosaic binary at $BIN"

# --- the demo, on ephemeral ports -------------------------------------------------------------------
DEMO_LOG="$ART/demo.log"
DEMO_PID=""
stop_demo() {
  local rc=$?
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -TERM "$DEMO_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$DEMO_PID" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$DEMO_PID" 2>/dev/null; then
      echo "e2e: the demo (pid $DEMO_PID) ignored SIGTERM for 10 s; killing it" >&2
      kill -KILL "$DEMO_PID" 2>/dev/null || true
    fi
    wait "$DEMO_PID" 2>/dev/null || true
  fi
  exit "$rc"
}
trap stop_demo EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting: $BIN demo --port 0 --backend-base-port 0"
rm -f "$ART/audit.json" "$ART/summary.txt" "$ART"/playground-*.png
# Emptied here, not by the background job's redirection: the wait below must not read the last run's.
: >"$DEMO_LOG"
(cd "$ROOT" && exec "$BIN" demo --port 0 --backend-base-port 0) >>"$DEMO_LOG" 2>&1 </dev/null &
DEMO_PID=$!
ready=""
for _ in $(seq 1 150); do # 30 s
  if ! kill -0 "$DEMO_PID" 2>/dev/null; then
    cat "$DEMO_LOG" >&2
    die "the demo exited before it was ready (output above)"
  fi
  # Ready once it printed the GraphQL URL and the last service's line.
  if grep -q '^  GraphQL ' "$DEMO_LOG" && grep -q '^  ledger ' "$DEMO_LOG"; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  cat "$DEMO_LOG" >&2
  die "the demo printed no GraphQL URL and service list within 30 s (output above)"
fi
grep -E '^  (playground|GraphQL|customers|accounts|transfers|external-bank|ledger) ' "$DEMO_LOG"

# --- the tests ----------------------------------------------------------------------------------------
step "node --test (global timeout ${TEST_TIMEOUT}s)"
export MOSAIC_E2E_BIN_PATH="$BIN" MOSAIC_E2E_DEMO_LOG="$DEMO_LOG" MOSAIC_E2E_ROOT="$ROOT" MOSAIC_E2E_ARTIFACTS="$ART" MOSAIC_E2E_CHROMIUM="$CHROMIUM"
set +e
(
  cd "$E2E" &&
    timeout -k 10 "$TEST_TIMEOUT" node --test \
      --test-concurrency=1 \
      --test-timeout=120000 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=./lib/summary-reporter.js --test-reporter-destination="$ART/summary.txt" \
      tests/*.test.js
)
rc=$?
set -e
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "e2e: the tests did not finish within ${TEST_TIMEOUT}s and were stopped" >&2
fi
if ! kill -0 "$DEMO_PID" 2>/dev/null; then
  echo "e2e: the demo died during the tests; its output:" >&2
  cat "$DEMO_LOG" >&2
  rc=1
fi

echo "e2e: screenshots and logs in ${ART#"$ROOT"/}/; took $((SECONDS - START))s"
if [ "$rc" -ne 0 ]; then
  echo "e2e: FAILED (node --test exit code $rc); the failures and what the clients saw are above" >&2
fi
# The summary ends with the closing line "e2e: N passed, N failed, N skipped".
cat "$ART/summary.txt" 2>/dev/null || echo "e2e: no summary (the test runner did not finish)"
exit "$rc"
