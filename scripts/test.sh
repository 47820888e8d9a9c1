#!/usr/bin/env bash
# Runs every test of the project on a fresh machine, installing what it needs.
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests need: Redis (the shared cache, shared rate limits and the event
# streams; the package brings redis-cli too) and promtool (Debian's prometheus package: it checks
# the /metrics output). Chromium is installed by tests/e2e/run.sh, podman and runc by
# scripts/container-test.sh, the deploy linters (from PyPI) by scripts/check-deploy.sh.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 ||
  ! command -v promtool >/dev/null 2>&1; then
  step "installing redis-server and prometheus (for promtool) with apt-get"
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server prometheus >/dev/null
fi

# Every tool the tests need is installed above: a test that finds one missing fails instead of
# skipping.
export MOSAIC_REQUIRE_TOOLS=1

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets -- -D warnings

step "unit and integration tests"
cargo test --workspace --all-targets

step "end-to-end: real clients, the graphql-http audit, the playground in Chromium"
tests/e2e/run.sh

if [ "${MOSAIC_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzzing: the config loader and the request path, ${MOSAIC_FUZZ_SECONDS:-60}s each"
  scripts/fuzz.sh "${MOSAIC_FUZZ_SECONDS:-60}"
fi

step "deployment artefacts: hadolint, compose config, kubernetes-validate, manifest policy"
scripts/check-deploy.sh

step "the container image, built and run with rootful podman"
scripts/container-test.sh

step "all tests passed"
