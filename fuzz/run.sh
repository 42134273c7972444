#!/usr/bin/env bash
# Runs the libFuzzer harnesses, each for SECONDS, JOBS at a time (default 2),
# and prints one summary line per harness (executions, exec/s, coverage,
# findings).  Usage: fuzz/run.sh SECONDS [HARNESS...]   (names: fuzz_config
# or config).  Builds build-fuzz/ with clang first.  Seeds come from
# fuzz/corpus/<harness>/ (read-only); the growing corpus, logs and any crash
# or leak artifacts go to build-fuzz/fuzz-out/<harness>/.  The inputs in
# fuzz/regressions/<harness>-* (crashes found and fixed) are replayed first.
# Exit status 1 when any harness found something.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:?usage: fuzz/run.sh SECONDS [HARNESS...]}"; shift
JOBS="${JOBS:-2}"
B=build-fuzz
if [ ! -f "$B/CMakeCache.txt" ]; then
  CC=clang cmake -S . -B "$B" -DCDF_FUZZ=ON -DCDF_BUILD_TESTS=OFF -DCDF_BUILD_TOOLS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$B" -j2 >/dev/null
ALL=(fuzz_safetensors fuzz_config fuzz_tokenizer_load fuzz_tokenizer_encode fuzz_png fuzz_npy fuzz_cli)
if [ $# -gt 0 ]; then H=(); for n in "$@"; do H+=("fuzz_${n#fuzz_}"); done; else H=("${ALL[@]}"); fi

# Per-harness options: the CLI prints usage errors (close its stdout/stderr);
# the tokenizer folder inputs hold whole vocabularies.
opts() {
  case "$1" in
    fuzz_cli) echo "-close_fd_mask=3 -max_len=4096" ;;
    fuzz_tokenizer_load) echo "-max_len=65536" ;;
    fuzz_config) echo "-max_len=16384 -dict=fuzz/json.dict" ;;
    fuzz_safetensors) echo "-max_len=8192 -dict=fuzz/json.dict" ;;
    *) echo "-max_len=8192" ;;
  esac
}

run_one() {
  local h="$1" o="$B/fuzz-out/$1"
  mkdir -p "$o/corpus" "$o/artifacts"
  rm -f "$o/artifacts"/*
  local tmp="${CDF_FUZZ_TMP_BASE:-/dev/shm}/cdfz-$h"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # the crashes found before (fixed since) must still pass: replay them first
  local regs=(fuzz/regressions/"$h"-*)
  if [ -e "${regs[0]}" ] && ! CDF_FUZZ_TMP="$tmp" "$B/fuzz/$h" -rss_limit_mb=2048 -timeout=10 "${regs[@]}" \
      >"$o/regressions.log" 2>&1; then
    cp "$o/regressions.log" "$o/artifacts/regression-failed.log"
  fi
  # shellcheck disable=SC2046
  CDF_FUZZ_TMP="$tmp" ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$B/fuzz/$h" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$o/artifacts/" $(opts "$h") "$o/corpus" "fuzz/corpus/$h" >"$o/log" 2>&1 || true
  rm -rf "$tmp"
}

pids=()
for h in "${H[@]}"; do
  run_one "$h" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
done
wait

found=0
printf '%-22s %12s %9s %7s %7s %8s %s\n' harness execs exec/s cov ft corpus findings
for h in "${H[@]}"; do
  o="$B/fuzz-out/$h"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$o/log" | grep -o '[0-9]*$' || echo 0)
  eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$o/log" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -E '^#[0-9]+.*(cov|DONE)' "$o/log" | tail -1 || true)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo '?')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo '?')
  corp=$(echo "$last" | grep -o 'corp: [0-9]*' | grep -o '[0-9]*' || echo '?')
  nf=$(find "$o/artifacts" -type f | wc -l)
  [ "$nf" -gt 0 ] && found=1
  printf '%-22s %12s %9s %7s %7s %8s %s\n' "$h" "$execs" "$eps" "$cov" "$ft" "$corp" \
    "$([ "$nf" -gt 0 ] && ls "$o/artifacts" | tr '\n' ' ' || echo none)"
done
exit $found
