#!/usr/bin/env bash
# Mutation testing: plant each listed one-line bug in a scratch copy of the
# repository, rebuild, run the test suite, and report which bugs no test
# catches.  Never touches the working tree.  See tests/mutation/README.md.
#
#   tests/mutation/run.sh [ID | LAYER | 'GLOB'...]      (no argument: every mutant)
#
# Environment (all optional):
#   MUT_DIR            scratch folder (default ${TMPDIR:-/tmp}/cdf-mutation): src/ copy, build/, logs/, summary.tsv
#   MUT_JOBS           parallel build and ctest jobs (default 2)
#   MUT_TIMEOUT        per-test timeout in seconds (default 300); a timeout counts as killed
#   MUT_FULL=1         run the whole suite for every mutant instead of stopping at the first failure
#   MUT_SLOW           regex of slow tests run after the others, only when those pass (default _oom_; empty: one pass)
#   MUT_EXCLUDE        regex of tests never run (e.g. '^py_' on a machine without numpy/torch)
#   MUT_SKIP_BASELINE=1  skip the run of the unmutated suite (it must pass for the results to mean anything)
#   MUT_CTEST_ARGS     more ctest arguments, word-split
#   MUT_COMPILE_ONLY=1 only check that each mutant applies and its file compiles (seconds each, no tests)
#   MUT_LIST           another mutant list (default tests/mutation/mutants.txt)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MUT=(python3 "$HERE/mutate.py")
DIR=${MUT_DIR:-${TMPDIR:-/tmp}/cdf-mutation}
JOBS=${MUT_JOBS:-2}
TIMEOUT=${MUT_TIMEOUT:-300}
FULL=${MUT_FULL:-0}
SLOW=${MUT_SLOW-_oom_}
EXCLUDE=${MUT_EXCLUDE:-}
read -r -a EXTRA <<<"${MUT_CTEST_ARGS:-}"
SRC=$DIR/src
BLD=$DIR/build
LOG=$DIR/logs
TSV=$DIR/summary.tsv

say() { printf '%s\n' "$*" >&2; }

# Restore on Ctrl-C / kill: the scratch copy never keeps a planted bug.
CUR=""
on_signal() {
  trap - INT TERM
  say "mutation: interrupted${CUR:+ during $CUR}; restoring the planted file"
  "${MUT[@]}" restore --root "$SRC"
  [ -f "$TSV" ] && "${MUT[@]}" report "$TSV"
  exit 130
}
trap on_signal INT TERM

mkdir -p "$DIR" "$LOG" || exit 2
exec </dev/null # nothing below reads the terminal; the mutant loop reads fd 3

# 1. the copy: tracked + untracked-not-ignored files, changed ones rewritten (fresh mtime)
"${MUT[@]}" restore --root "$SRC" 2>/dev/null
"${MUT[@]}" sync "$REPO" "$SRC" >&2 || exit 2
"${MUT[@]}" select --root "$SRC" "$@" >"$DIR/selection.tsv" || exit 2

# 2. one Release build folder, configured once, then built incrementally
if [ ! -f "$BLD/compile_commands.json" ]; then
  say "mutation: configuring $BLD"
  cmake -S "$SRC" -B "$BLD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$LOG/configure.log" 2>&1 ||
    { say "mutation: configure failed, see $LOG/configure.log"; exit 2; }
fi
build() { cmake --build "$BLD" -j "$JOBS" >"$1" 2>&1; }
if [ "${MUT_COMPILE_ONLY:-0}" = 1 ]; then
  "${MUT[@]}" compile --root "$SRC" --build "$BLD" "$@"
  exit $?
fi

# The first failing test of a ctest log: "name (failed|timeout|crash|not run)".
first_failure() {
  awk '/Test +#[0-9]+: / && !/ Passed / && !/Skipped/ {
         name = $0; sub(/.*Test +#[0-9]+: /, "", name); sub(/ .*/, "", name)
         why = "failed"
         if ($0 ~ /Timeout/) why = "timeout"; else if ($0 ~ /Exception/) why = "crash"; else if ($0 ~ /Not Run/) why = "not run"
         print name " (" why ")"; exit }' "$1"
}

# run_suite LOG: 0 when every selected test passes; FIRST names the first failure.
run_suite() {
  local log=$1 rc stop=(--stop-on-failure) ex
  local base=(ctest --test-dir "$BLD" -j "$JOBS" --timeout "$TIMEOUT" "${EXTRA[@]}")
  [ "$FULL" = 1 ] && stop=()
  if [ -n "$SLOW" ] && [ "$FULL" != 1 ]; then
    ex=$SLOW
    [ -n "$EXCLUDE" ] && ex="($SLOW)|($EXCLUDE)"
    "${base[@]}" "${stop[@]}" -E "$ex" >"$log" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
      local slow=(-R "$SLOW")
      [ -n "$EXCLUDE" ] && slow+=(-E "$EXCLUDE")
      "${base[@]}" "${stop[@]}" "${slow[@]}" >>"$log" 2>&1
      rc=$?
    fi
  else
    local sel=()
    [ -n "$EXCLUDE" ] && sel=(-E "$EXCLUDE")
    "${base[@]}" "${stop[@]}" "${sel[@]}" >"$log" 2>&1
    rc=$?
  fi
  FIRST=$(first_failure "$log")
  if [ $rc != 0 ] && [ -z "$FIRST" ]; then FIRST="ctest exit $rc (see $log)"; fi
  if [ "$FULL" = 1 ] && [ $rc != 0 ]; then
    FIRST="$FIRST; $(grep -cE '\*\*\*|Exception' "$log") failing"
  fi
  return $rc
}

# 3. the unmutated tree must build and pass
say "mutation: building the unmutated copy"
build "$LOG/baseline.build.log" || { say "mutation: the unmutated copy does not build, see $LOG/baseline.build.log"; exit 2; }
if [ "${MUT_SKIP_BASELINE:-0}" != 1 ]; then
  say "mutation: running the unmutated suite"
  t0=$SECONDS
  if ! run_suite "$LOG/baseline.test.log"; then
    say "mutation: the unmutated suite fails ($FIRST; $LOG/baseline.test.log)."
    say "          Exclude a broken test with MUT_EXCLUDE='regex' or fix it first."
    exit 2
  fi
  say "mutation: baseline passes ($((SECONDS - t0)) s)"
fi

# 4. the mutants
printf 'id\tlayer\tstatus\tdetail\tbuild_s\ttest_s\n' >"$TSV"
total=$(wc -l <"$DIR/selection.tsv")
k=0
while IFS=$'\t' read -r -u 3 id state layer detail; do
  k=$((k + 1))
  if [ "$state" != ok ]; then
    printf '%s\t%s\t%s\t%s\t\t\n' "$id" "$layer" "$state" "$detail" >>"$TSV"
    say "[$k/$total] $id: $state"
    continue
  fi
  if ! "${MUT[@]}" apply --root "$SRC" "$id" >"$LOG/$id.apply.log" 2>&1; then
    printf '%s\t%s\t%s\t%s\t\t\n' "$id" "$layer" stale "$(head -c 300 "$LOG/$id.apply.log" | tr '\t\n' '  ')" >>"$TSV"
    say "[$k/$total] $id: not applied ($(head -n 1 "$LOG/$id.apply.log"))"
    continue
  fi
  CUR=$id
  say "[$k/$total] $id: building and testing"
  t0=$SECONDS
  if ! build "$LOG/$id.build.log"; then
    bs=$((SECONDS - t0))
    err=$(grep -m 1 -E 'error|Error' "$LOG/$id.build.log" | tr '\t' ' ' | cut -c1-200)
    "${MUT[@]}" restore --root "$SRC"
    printf '%s\t%s\tstillborn\t%s\t%s\t\n' "$id" "$layer" "$err" "$bs" >>"$TSV"
    say "[$k/$total] $id: STILLBORN ($err)"
    CUR=""
    continue
  fi
  bs=$((SECONDS - t0))
  t1=$SECONDS
  if run_suite "$LOG/$id.test.log"; then status=survived; FIRST=""; else status=killed; fi
  ts=$((SECONDS - t1))
  "${MUT[@]}" restore --root "$SRC"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$layer" "$status" "$FIRST" "$bs" "$ts" >>"$TSV"
  say "[$k/$total] $id: $status${FIRST:+ by $FIRST} (build ${bs} s, tests ${ts} s)"
  CUR=""
done 3<"$DIR/selection.tsv"

"${MUT[@]}" report "$TSV"
say "mutation: summary in $TSV, logs in $LOG"
