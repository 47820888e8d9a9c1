#!/usr/bin/env bash
# Installs the real-world OpenAPI documents the import tests read (tests/tests/import_corpus.rs,
# tests/e2e/tests/import-prism.test.js): npm packages of tests/openapi-corpus/package-lock.json
# (APIs.guru's directory, GitHub's description), again only when the lockfile changes.
set -euo pipefail
corpus="$(cd "$(dirname "$0")/.." && pwd)/tests/openapi-corpus"
stamp="$(sha256sum "$corpus/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$corpus/node_modules/.mosaic-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "==> npm ci in tests/openapi-corpus (APIs.guru's directory, GitHub's description)"
  (cd "$corpus" && timeout 600 npm ci --ignore-scripts --no-audit --no-fund)
  echo "$stamp" >"$corpus/node_modules/.mosaic-stamp"
fi
