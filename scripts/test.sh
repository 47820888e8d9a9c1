#!/usr/bin/env bash
# Runs every test of the project on a fresh machine, installing what it needs.
# Usage: ./scripts/test.sh
#
# The code is built twice in all: once for the tests (the dev profile: the unit and integration
# tests, and the `mosaic` and `mock-bank` binaries that the end-to-end and container tests then
# run as they are), once instrumented for the fuzzers. The release profile (fat LTO, what ships)
# is built by the benches and the Dockerfile, not here.
#
# Environment (all optional): MOSAIC_SKIP_FUZZ=1, MOSAIC_FUZZ_SECONDS (60 per target).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s  [%ss]\n' "$*" "$SECONDS"; }

# Every Debian package any step needs, in one apt-get: Redis (the shared cache, shared rate
# limits, event streams; it brings redis-cli), promtool (Debian's prometheus: checks /metrics),
# Chromium (the playground's browser test), podman, runc, a static busybox, curl, nsenter
# (util-linux) and python3 (the container test). Each script still installs what it lacks when it
# runs alone.
pkgs=()
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-server)
command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
command -v podman >/dev/null 2>&1 || pkgs+=(podman)
command -v runc >/dev/null 2>&1 || pkgs+=(runc)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || pkgs+=(busybox-static)
command -v curl >/dev/null 2>&1 || pkgs+=(curl)
command -v nsenter >/dev/null 2>&1 || pkgs+=(util-linux)
command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
if [ ${#pkgs[@]} -gt 0 ]; then
  step "installing ${pkgs[*]} with apt-get"
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# Every tool the tests need is installed above: a test that finds one missing fails instead of
# skipping.
export MOSAIC_REQUIRE_TOOLS=1

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets -- -D warnings

# The real-world OpenAPI documents of the import tests (npm packages from a committed lockfile).
scripts/openapi-corpus.sh

step "unit and integration tests"
cargo test --workspace --all-targets

# The binaries the test build made (target/debug): the end-to-end and container tests run them.
export MOSAIC_E2E_BIN="$PWD/target/debug/mosaic"

step "end-to-end: real clients, the graphql-http audit, the playground in Chromium"
tests/e2e/run.sh

if [ "${MOSAIC_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzzing: the config loader and the request path, ${MOSAIC_FUZZ_SECONDS:-60}s each"
  FUZZ_BUILD=dev scripts/fuzz.sh "${MOSAIC_FUZZ_SECONDS:-60}"
fi

step "deployment artefacts: hadolint, compose config, kubernetes-validate, manifest policy"
scripts/check-deploy.sh

step "the container image, run with rootful podman (the test build's binaries)"
MOSAIC_CONTAINER_TEST_BIN_DIR=target/debug scripts/container-test.sh

step "all tests passed"
