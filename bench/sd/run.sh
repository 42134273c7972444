#!/usr/bin/env bash
# Stable Diffusion 1.5 speed and memory benchmark (not a test).
#
#   bench/sd/run.sh [all|components|txt2img]     (default: all)
#
# 1. Makes the synthetic SD-1.5 model once (make-synthetic, seed 0, f16: 1.07 B parameters, 2.1 GB) and
#    caches it in $SD_MODEL (default ~/.cache/cdiffusers/sd15-f16-seed0).  Configs: $SD_CONFIG (default
#    models/stable-diffusion-v1-5, the same files as ../shared/models/sd15).
# 2. components: bench_sd (compiled here against build/libcdiffusers.a) times the text encoder (batch 2),
#    one UNet CFG forward (batch 2, 64x64 latents) and one VAE decode (64x64 -> 512x512), each stage in its
#    own process under /usr/bin/time -v: one warm-up call, then $REPS timed calls (median reported).
# 3. txt2img: `cdiffusers generate` 512x512, PNDM (the folder's scheduler), CFG 7.5, --steps 1 and
#    --steps $STEPS (default 20), $THREADS threads (default 2), under /usr/bin/time -v: wall and peak RSS.
#    per step = (wall(20 steps) - wall(1 step)) / 19.
# Every measurement records the CPU seconds other processes used meanwhile (foreign_cpu_s, from
# /proc/stat) and the load average: the timings are only as good as the machine was quiet.
# Results: one JSON line per measurement in bench/sd/results/$TAG.jsonl, the programs' output in $TAG.log.
# Before each measurement the script waits (at most $QUIET_MAX_S, default 900 s) for the machine to be quiet.
# Env: BUILD (default build), THREADS, REPS (default 3), STEPS, TAG (default date-host), QUIET_MAX_S.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WHAT=${1:-all}
: "${BUILD:=$ROOT/build}" "${THREADS:=2}" "${REPS:=3}" "${STEPS:=20}"
: "${SD_CONFIG:=$ROOT/models/stable-diffusion-v1-5}"
: "${SD_MODEL:=${XDG_CACHE_HOME:-$HOME/.cache}/cdiffusers/sd15-f16-seed0}"
: "${TAG:=$(date +%Y%m%d-%H%M)-$(hostname -s)}"
RES="$HERE/results"
OUT="$RES/$TAG.jsonl"
LOG="$RES/$TAG.log"
mkdir -p "$RES"
export OMP_WAIT_POLICY=PASSIVE

[ -x /usr/bin/time ] || { echo "installing GNU time" >&2; apt-get install -y time >/dev/null; }
[ -x "$BUILD/cdiffusers" ] && [ -f "$BUILD/libcdiffusers.a" ] || {
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$BUILD" -j2 >/dev/null; }

BENCH="$BUILD/bench_sd"
gcc -O2 -std=c11 -Wall -Wextra -Wshadow -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp \
    -I"$ROOT/include" -I"$ROOT/src" "$HERE/bench_sd.c" "$BUILD/libcdiffusers.a" \
    -lcjson -lpng -lunistring -lm -lpthread -o "$BENCH"

HZ=$(getconf CLK_TCK)
# machine-wide busy CPU seconds: user nice system irq softirq steal
busy() { awk -v hz="$HZ" '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8+$9) / hz; exit}' /proc/stat; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# wait_quiet: waits (at most $QUIET_MAX_S, default 900 s) until the machine is quiet: busy CPU over a 3 s
# window below 10 % of one core (other agents' builds and benchmarks share this box).  Prints the wait.
wait_quiet() {
    local t0 b0 b1; t0=$(date +%s)
    while [ $(( $(date +%s) - t0 )) -lt "${QUIET_MAX_S:-900}" ]; do
        b0=$(busy); sleep 3; b1=$(busy)
        if awk -v a="$b0" -v b="$b1" 'BEGIN{exit !((b - a) / 3 < 0.10)}'; then echo $(( $(date +%s) - t0 )); return; fi
    done
    echo -1
}

# meas LABEL CMD...: runs CMD under /usr/bin/time -v, appends a JSON line to $OUT.
meas() {
    local label=$1; shift
    local tmp; tmp=$(mktemp)
    local l0 b0 t0 rc=0 waited
    waited=$(wait_quiet)
    l0=$(load); b0=$(busy); t0=$(date +%s.%N)
    echo "### $label: $*" >>"$LOG"
    /usr/bin/time -v "$@" >"$tmp" 2>&1 || rc=$?
    local t1 b1 l1; t1=$(date +%s.%N); b1=$(busy); l1=$(load)
    cat "$tmp" >>"$LOG"
    local rss cpu wall
    rss=$(awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$tmp")
    cpu=$(awk -F': ' '/User time|System time/{s+=$2} END{printf "%.2f", s}' "$tmp")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')
    local foreign; foreign=$(awk -v a="$b0" -v b="$b1" -v c="$cpu" 'BEGIN{print b - a - c}')
    local stages; stages=$(grep '^{' "$tmp" | paste -sd, - || true)
    printf '{"label": "%s", "rc": %d, "wall_s": %.2f, "peak_rss_mib": %s, "own_cpu_s": %s, "foreign_cpu_s": %.1f, "waited_quiet_s": %s, "load_before": "%s", "load_after": "%s", "stages": [%s]}\n' \
        "$label" "$rc" "$wall" "${rss:-0}" "${cpu:-0}" "$foreign" "$waited" "$l0" "$l1" "$stages" | tee -a "$OUT"
    rm -f "$tmp"
}

{
    echo "### $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) nproc=$(nproc) $(free -m | awk '/Mem:/{print "mem_mib=" $2}')"
    echo "### commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') threads=$THREADS reps=$REPS steps=$STEPS"
} | tee -a "$LOG"

if [ ! -f "$SD_MODEL/.complete" ]; then
    rm -rf "$SD_MODEL"
    mkdir -p "$(dirname "$SD_MODEL")"
    meas make_synthetic "$BUILD/cdiffusers" make-synthetic "$SD_CONFIG" "$SD_MODEL" --seed 0 --dtype f16
    touch "$SD_MODEL/.complete"
fi
# page the weights into the OS cache so the first measurement does not pay the disk reads
cat "$SD_MODEL"/*/*.safetensors >/dev/null

if [ "$WHAT" = all ] || [ "$WHAT" = components ]; then
    meas text_encode "$BENCH" "$SD_MODEL" --threads "$THREADS" --reps 5 --stages text
    meas unet_cfg_step "$BENCH" "$SD_MODEL" --threads "$THREADS" --reps "$REPS" --stages unet
    meas vae_decode "$BENCH" "$SD_MODEL" --threads "$THREADS" --reps "$REPS" --stages vae
fi
if [ "$WHAT" = all ] || [ "$WHAT" = txt2img ]; then
    IMG=$(mktemp -d)   # the images are noise (random weights): not kept
    GEN=("$BUILD/cdiffusers" generate "$SD_MODEL" --prompt "a photograph of an astronaut riding a horse"
         --height 512 --width 512 --guidance-scale 7.5 --seed 0 --threads "$THREADS" --quiet)
    meas txt2img_1step "${GEN[@]}" --steps 1 --out "$IMG/1step.png"
    meas "txt2img_${STEPS}steps" "${GEN[@]}" --steps "$STEPS" --out "$IMG/${STEPS}steps.png"
fi
[ -n "${IMG:-}" ] && rm -rf "$IMG"
echo "results: $OUT" >&2
