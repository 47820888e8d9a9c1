#!/usr/bin/env bash
# Fuzzes the config/SDL loader and the GraphQL-over-HTTP request path for a bounded time each.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# cargo-fuzz (libFuzzer) needs unstable compiler flags: RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them, so no nightly is installed. The committed corpora (fuzz/corpus/TARGET)
# are read, never written: new inputs go to target/fuzz-corpus/TARGET, a crash, hang or OOM to
# fuzz/artifacts/TARGET (printed, and the script fails). Sanitizer: none by default (the code is
# safe Rust; we look for panics, hangs and unbounded allocations); FUZZ_SANITIZER=address for ASan.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config_loader graphql_request)
sanitizer="${FUZZ_SANITIZER:-none}"
# FUZZ_BUILD=dev builds the targets without optimisation (with debug assertions): a few minutes
# less to build on a cold machine, fewer executions per second. scripts/test.sh uses it.
build_mode="${FUZZ_BUILD:-release}"

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

cd fuzz
echo "==> building the fuzz targets (sanitizer: $sanitizer, $build_mode build)"
# Built under the workspace's target/ (ignored by git), beside the main build.
opts=(--sanitizer "$sanitizer" --target-dir ../target/fuzz)
if [ "$build_mode" = dev ]; then opts+=(--dev); fi
for t in "${targets[@]}"; do cargo fuzz build "${opts[@]}" "$t"; done

for t in "${targets[@]}"; do
  scratch="../target/fuzz-corpus/$t"
  mkdir -p "$scratch" "artifacts/$t"
  echo "==> fuzzing $t for ${seconds}s (corpus: fuzz/corpus/$t)"
  # -timeout: one input running longer is a hang; -rss_limit_mb: growing past it is a finding;
  # -max_len: inputs up to 64 KiB (the request limits are tested at larger sizes in the suite).
  if ! cargo fuzz run "${opts[@]}" "$t" "$scratch" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 2>"../target/fuzz-$t.log"; then
    tail -n 60 "../target/fuzz-$t.log"
    echo "fuzzing $t found a problem: see fuzz/artifacts/$t (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $t <file>)" >&2
    exit 1
  fi
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)" "../target/fuzz-$t.log" || true
done
echo "==> fuzzing found nothing"
