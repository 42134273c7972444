#!/usr/bin/env bash
# Images per minute of `cdiffusers batch` over a manifest of Stable Diffusion jobs: one
# process with T threads against T shards of one thread each, in alternating rounds on the
# same machine, and a check that both ways make the same bytes.
#
# usage: bench/batch/throughput.sh MODEL_DIR [--jobs N] [--steps S] [--size PX] [--threads T]
#                                  [--rounds R] [--cli PATH]
# defaults: 8 jobs, 4 steps, 512 px, T = 2, 2 rounds, build/cdiffusers.
# A synthetic SD-1.5 folder: build/cdiffusers make-synthetic <SD-1.5 configs> OUT --seed 0 --dtype f16
set -euo pipefail
MODEL=${1:?usage: throughput.sh MODEL_DIR [--jobs N] [--steps S] [--size PX] [--threads T] [--rounds R] [--cli PATH]}
shift
JOBS=8 STEPS=4 SIZE=512 T=2 ROUNDS=2 CLI=build/cdiffusers
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) JOBS=$2 ;; --steps) STEPS=$2 ;; --size) SIZE=$2 ;; --threads) T=$2 ;;
    --rounds) ROUNDS=$2 ;; --cli) CLI=$2 ;;
    *) echo "throughput.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
work=$(mktemp -d "${TMPDIR:-/tmp}/cdf-batch-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
for ((i = 0; i < JOBS; i++)); do
  printf '{"id": "j%d", "prompt": "a photo of an astronaut riding a horse, number %d", "seed": %d, "steps": %d, "height": %d, "width": %d}\n' \
    "$i" "$((i % 4))" "$i" "$STEPS" "$SIZE" "$SIZE"
done > "$work/jobs.jsonl"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) processors"
echo "manifest: $JOBS jobs, ${SIZE}x${SIZE}, $STEPS steps, guidance 7.5 (4 distinct prompts)"
now() { date +%s.%N; }
one() { # one process, T threads
  rm -rf "$work/one"
  "$CLI" batch "$MODEL" "$work/jobs.jsonl" --out-dir "$work/one" --threads "$T" --quiet >/dev/null 2>"$work/one.err"
}
shards() { # T processes, one thread each
  rm -rf "$work/sh"
  local pids=()
  for ((k = 0; k < T; k++)); do
    "$CLI" batch "$MODEL" "$work/jobs.jsonl" --out-dir "$work/sh" --shard "$k/$T" --threads 1 --quiet \
      >/dev/null 2>"$work/sh$k.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}
for ((r = 1; r <= ROUNDS; r++)); do
  t0=$(now); one; t1=$(now); shards; t2=$(now)
  awk -v r="$r" -v T="$T" -v n="$JOBS" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
    a = t1 - t0; b = t2 - t1
    printf "round %d: one process x %d threads %.1f s (%.2f images/min); %d shards x 1 thread %.1f s (%.2f images/min); shards/one time ratio %.3f\n", r, T, a, 60 * n / a, T, b, 60 * n / b, b / a }'
  same=1
  for f in "$work"/one/*.png; do cmp -s "$f" "$work/sh/$(basename "$f")" || same=0; done
  n=$(ls "$work"/one/*.png | wc -l)
  [ "$n" = "$JOBS" ] && [ "$same" = 1 ] && echo "round $r: the $n files are the same bytes both ways" || { echo "round $r: FILES DIFFER or missing ($n)"; exit 1; }
done
