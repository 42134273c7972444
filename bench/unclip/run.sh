#!/usr/bin/env bash
# UnCLIP (Karlo) benchmark: cdiffusers and the PyTorch/diffusers reference on the same synthetic
# full-size kakaobrain/karlo-v1-alpha pipeline, seconds per stage and peak RSS, side by side.
#
# usage: bench/unclip/run.sh [--full | --steps P,D,S | --quick] [--rounds N] [--threads T] [--c-only]
#                            [--model DIR] [--build DIR] [--tag TAG]
#   --steps P,D,S prior, decoder and super-res steps (default 4,4,3: with the default 2 rounds
#                 30 min on a quiet 2-core machine; summarize.py adds each side's estimate for
#                 25,25,7 from the measured per-step times)
#   --full        --steps 25,25,7 and 1 round: the pipeline's defaults (the issue's workload),
#                 about 45 min on a quiet 2-core machine
#   --quick       --steps 2,2,2 and 1 round: a smoke run (about 12 min), not for figures
#   --rounds N    interleaved rounds (default 2); each round runs one process per side,
#                 alternating which goes first
#   --threads T   threads for both sides (default 2)
#   --c-only      skip the PyTorch peer
#   --model DIR   use this Karlo folder instead of making the synthetic one (it is then kept)
#   --build DIR   build folder (default <repo>/build-bench, configured with -DCDF_BUILD_BENCH=ON)
#   --tag TAG     results go to bench/unclip/results/TAG.jsonl and TAG.log (default date-host)
# Workload: one prompt, one image, guidance 4.0 (prior) / 8.0 (decoder), seed 0 (numpy
# Generator(PCG64(0)) on both sides), output_type np.  The synthetic folder is
# `cdiffusers make-synthetic models/karlo DIR --seed 0 --dtype f32` (13 GB, made in about 2 min in a
# temp dir removed at exit).  Round 1 also dumps prompt/image embeddings, the upscaled decoder
# output and the image on both sides and compare.py prints their max abs difference.
# env: PY (python with torch, default /usr/bin/python3); DIFFUSERS_SRC and HFHUB_SRC (folders
#   holding the diffusers v0.32.2 and huggingface_hub packages, required for the peer);
#   REFERENCE_DIR (the Python reference folder: load_pipelines.py, mindone_rng.py,
#   transformers_stub/, shim/; default: shared/reference beside the repository);
#   TORCH_SHIM (default REFERENCE_DIR/shim); QUIET_MAX_S (how long to wait for an idle machine
#   before each run, default 120).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$ROOT/build-bench
ROUNDS=2 THREADS=2 STEPS=4,4,3 QUICK=0 C_ONLY=0 MODEL= TAG=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --full) STEPS=25,25,7 ROUNDS=1; shift ;;
    --quick) QUICK=1; shift ;;
    --c-only) C_ONLY=1; shift ;;
    --model) MODEL=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$QUICK" = 1 ] && { ROUNDS=1; STEPS=2,2,2; }
IFS=, read -r P_STEPS D_STEPS S_STEPS <<<"$STEPS"
[ -n "$S_STEPS" ] || { echo "run.sh: --steps wants P,D,S (got '$STEPS')" >&2; exit 2; }
PY=${PY:-/usr/bin/python3}
DIFFUSERS_SRC=${DIFFUSERS_SRC:-}
HFHUB_SRC=${HFHUB_SRC:-}
REFERENCE_DIR=${REFERENCE_DIR:-$ROOT/../shared/reference}
TORCH_SHIM=${TORCH_SHIM:-$REFERENCE_DIR/shim}
QUIET_MAX_S=${QUIET_MAX_S:-120}
: "${TAG:=$(date +%Y%m%d-%H%M)-$(hostname -s)}"
RES=$HERE/results
mkdir -p "$RES"
OUT=$RES/$TAG.jsonl LOG=$RES/$TAG.log
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdf-bench-unclip.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE

# 1. build
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCDF_BUILD_BENCH=ON -DCDF_BUILD_TESTS=OFF >>"$LOG"
fi
cmake "$BUILD" -DCDF_BUILD_BENCH=ON >>"$LOG"
cmake --build "$BUILD" -j"$THREADS" --target cdiffusers_cli bench_unclip >>"$LOG" 2>&1 ||
  { echo "run.sh: build failed, see $LOG" >&2; exit 1; }
CLI=$BUILD/cdiffusers BENCH=$BUILD/bench/bench_unclip

[ -x /usr/bin/time ] || { echo "installing GNU time (apt-get install time)" >&2; apt-get install -y time >/dev/null; }

HZ=$(getconf CLK_TCK)
# machine-wide busy CPU seconds (user nice system irq softirq) and steal seconds (the hypervisor ran
# something else while this VM wanted the CPU)
busy() { awk -v hz="$HZ" '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8) / hz; exit}' /proc/stat; }
steal() { awk -v hz="$HZ" '/^cpu /{printf "%.2f", $9 / hz; exit}' /proc/stat; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Waits (at most QUIET_MAX_S) until the machine's busy CPU over 3 s is below 15 % of one core; prints the wait.
wait_quiet() {
  local t0 b0 b1; t0=$(date +%s)
  while [ $(( $(date +%s) - t0 )) -lt "$QUIET_MAX_S" ]; do
    b0=$(busy); sleep 3; b1=$(busy)
    if awk -v a="$b0" -v b="$b1" 'BEGIN{exit !((b - a) / 3 < 0.15)}'; then echo $(( $(date +%s) - t0 )); return; fi
  done
  echo -1
}

{
  echo "### $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) nproc=$(nproc) $(free -m | awk '/Mem:/{print "mem_mib=" $2}')"
  echo "### commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') threads=$THREADS steps=$STEPS rounds=$ROUNDS"
} | tee -a "$LOG"

# 2. the model: the real Karlo configs with seeded synthetic F32 weights
if [ -z "$MODEL" ]; then
  MODEL=$TMP/karlo-f32-seed0
  echo "making the synthetic Karlo folder (F32, 13 GB) in $MODEL" >&2
  "$CLI" make-synthetic "$ROOT/models/karlo" "$MODEL" --seed 0 --dtype f32 >>"$LOG"
fi

# 3. is the PyTorch peer there?
export PYTHONPATH=$DIFFUSERS_SRC:$HFHUB_SRC:$TORCH_SHIM:$REFERENCE_DIR/transformers_stub:$REFERENCE_DIR${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1
TORCH=0
if [ "$C_ONLY" = 0 ]; then
  if "$PY" -c "import torch, numpy, diffusers, load_pipelines" >>"$LOG" 2>&1; then TORCH=1; else
    echo "PyTorch peer not available ($PY cannot import torch, numpy, diffusers and load_pipelines; see $LOG):"
    echo "timing the cdiffusers side only."
  fi
fi

# meas LABEL ROUND CMD...: one process under /usr/bin/time -v after waiting for a quiet machine
# and reading the weights into the OS cache (untimed); appends a JSON line to $OUT with the
# program's own JSON line under "result", the process's wall, peak RSS, CPU, the CPU seconds
# other processes used meanwhile (foreign_cpu_s) and the steal seconds (steal_s), from /proc/stat.
meas() {
  local label=$1 round=$2; shift 2
  local waited l0 b0 s0 t0 rc=0
  waited=$(wait_quiet)
  cat "$MODEL"/*/*.safetensors >/dev/null
  l0=$(load); b0=$(busy); s0=$(steal); t0=$(date +%s.%N)
  echo "### $label round $round: $*" >>"$LOG"
  /usr/bin/time -v -o "$TMP/time.txt" "$@" >"$TMP/out.txt" 2>>"$LOG" || rc=$?
  local t1 b1 s1 l1; t1=$(date +%s.%N); b1=$(busy); s1=$(steal); l1=$(load)
  cat "$TMP/out.txt" "$TMP/time.txt" >>"$LOG"
  local rss cpu wall foreign st res
  rss=$(awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$TMP/time.txt")
  cpu=$(awk -F': ' '/User time|System time/{s+=$2} END{printf "%.2f", s}' "$TMP/time.txt")
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
  foreign=$(awk -v a="$b0" -v b="$b1" -v c="$cpu" 'BEGIN{f = b - a - c; printf "%.1f", f < 0 ? 0 : f}')
  st=$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.1f", b - a}')
  res=$(grep '^{' "$TMP/out.txt" | tail -1 || true)
  printf '{"label": "%s", "round": %d, "rc": %d, "wall_s": %s, "peak_rss_mib": %s, "own_cpu_s": %s, "foreign_cpu_s": %s, "steal_s": %s, "waited_quiet_s": %s, "load_before": "%s", "load_after": "%s", "result": %s}\n' \
    "$label" "$round" "$rc" "$wall" "${rss:-0}" "${cpu:-0}" "$foreign" "$st" "$waited" "$l0" "$l1" "${res:-null}" >>"$OUT"
  printf '  %-6s round %d: total %s s, wall %s s, peak RSS %s MiB, foreign CPU %s s, steal %s s%s\n' "$label" \
    "$round" "$(sed -n 's/.*"total": \([0-9.]*\).*/\1/p' <<<"$res")" "$wall" "${rss:-?}" "$foreign" "$st" \
    "$([ "$rc" = 0 ] || echo "  FAILED rc=$rc, see $LOG")"
}

ARGS=(--seed 0 --prior-steps "$P_STEPS" --decoder-steps "$D_STEPS" --super-res-steps "$S_STEPS" --threads "$THREADS")
run_c() { local d=(); [ -z "$2" ] || d=(--dump "$2"); meas c "$1" "$BENCH" "$MODEL" "${ARGS[@]}" "${d[@]}"; }
run_torch() {
  local d=(); [ -z "$2" ] || d=(--dump "$2")
  meas torch "$1" "$PY" "$HERE/torch_unclip.py" "$MODEL" "${ARGS[@]}" "${d[@]}"
}

echo "UnCLIP bench: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs, $THREADS threads," \
  "steps $STEPS, $ROUNDS round(s); results in $OUT"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS"
  # round 1 also dumps the arrays compared below (a few MB of copies on each side)
  dc= dt=
  [ "$r" = 1 ] && { dc=$TMP/dump_c; dt=$TMP/dump_torch; }
  if [ "$TORCH" = 0 ]; then run_c "$r" "$dc"
  elif [ $((r % 2)) = 1 ]; then run_c "$r" "$dc"; run_torch "$r" "$dt"
  else run_torch "$r" "$dt"; run_c "$r" "$dc"; fi
done
if [ "$TORCH" = 1 ]; then
  "$PY" "$HERE/compare.py" "$TMP/dump_c" "$TMP/dump_torch" | tee -a "$OUT" >>"$LOG"
fi
echo
"$PY" "$HERE/summarize.py" "$OUT"
echo "log: $LOG"
