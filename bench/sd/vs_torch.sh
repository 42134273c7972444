#!/usr/bin/env bash
# cdiffusers beside PyTorch/diffusers on the full-size SD-1.5 architecture, alternated in one run, so
# that the figure is a ratio taken on one machine at one time (not a test).
#
#   bench/sd/vs_torch.sh [--rounds N] [--reps N] [--threads T] [--what "unet vae vae-encode"] [--precision P]
#
# Per round and stage, two processes one after the other (the side that goes first alternates):
#   `cdiffusers bench $SD_MODEL --what unet|vae|vae-encode` (one untimed warm-up, then --reps timed
#   calls), and the Python reference's peers/bench_torch.py unet_b2|vae_decode, or torch_vae_encode.py
#   here for vae-encode (the same: warm-up, then reps; fp32).
# unet: one classifier-free-guidance UNet forward, batch 2, 64x64 latents, 77-token context;
# vae: one decode 64x64 -> 512x512; vae-encode: one encode 512x512 -> the 64x64 latent moments.  Prints the CPU model, one JSON line per process, then per stage
# the median seconds of each side per round and their ratio (cdiffusers / PyTorch).
# Env: SD_MODEL (the synthetic model bench/sd/run.sh makes; made here if absent), BUILD (default build),
#   REFERENCE (the Python reference folder, default ../shared/reference beside the repository),
#   DIFFUSERS_SRC (a folder holding the diffusers package; with REFERENCE's shim and
#   transformers_stub on PYTHONPATH), PY (default /usr/bin/python3), LOG (stderr of every run).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=2 REPS=2 THREADS=2 WHAT="unet vae" PRECISION=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --what) WHAT=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vs_torch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
: "${BUILD:=$ROOT/build}" "${PY:=/usr/bin/python3}" "${REFERENCE:=$ROOT/../shared/reference}"
: "${SD_MODEL:=${XDG_CACHE_HOME:-$HOME/.cache}/cdiffusers/sd15-f16-seed0}"
: "${LOG:=$(mktemp "${TMPDIR:-/tmp}/cdf-vs-torch.XXXXXX")}"
CLI=$BUILD/cdiffusers
[ -x "$CLI" ] || { echo "vs_torch.sh: build first ($CLI missing)" >&2; exit 1; }
[ -f "$REFERENCE/peers/bench_torch.py" ] || { echo "vs_torch.sh: no $REFERENCE/peers/bench_torch.py (set REFERENCE)" >&2; exit 1; }
if [ ! -f "$SD_MODEL/model_index.json" ]; then
  echo "making the synthetic SD-1.5 model in $SD_MODEL" >&2
  "$CLI" make-synthetic "$ROOT/models/stable-diffusion-v1-5" "$SD_MODEL" --seed 0 --dtype f16 >>"$LOG"
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdf-vs-torch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/models/diffusers"
ln -s "$SD_MODEL/unet" "$TMP/models/diffusers/unet"
ln -s "$SD_MODEL/vae" "$TMP/models/diffusers/vae"
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1
export PYTHONPATH=${DIFFUSERS_SRC:+$DIFFUSERS_SRC:}$REFERENCE/shim:$REFERENCE/transformers_stub:$REFERENCE${PYTHONPATH:+:$PYTHONPATH}
OUT=$TMP/lines.jsonl
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), threads $THREADS" >&2

ours() { # stage round
  "$CLI" bench "$SD_MODEL" --what "$1" --reps "$REPS" --threads "$THREADS" ${PRECISION:+--precision $PRECISION} \
    2>>"$LOG" | "$PY" -c 'import json,sys,statistics as st
r=[json.loads(l) for l in sys.stdin if l.startswith("{")]
print(json.dumps({"side":"cdiffusers","stage":sys.argv[1],"round":int(sys.argv[2]),"median":st.median(x["seconds"] for x in r),
 "reps":[x["seconds"] for x in r],"peak_rss_mib":r[-1]["peak_rss_mib"],"kernel":r[-1]["kernel"]}))' "$1" "$2"
}
theirs() { # stage round
  local case=unet_b2; [ "$1" = vae ] && case=vae_decode
  local peer=("$REFERENCE/peers/bench_torch.py" "$TMP/models" "$case" "$REPS")
  [ "$1" = vae-encode ] && peer=("$HERE/torch_vae_encode.py" "$TMP/models" "$REPS")
  "$PY" "${peer[@]}" 2>>"$LOG" | tail -1 | "$PY" -c 'import json,sys
r=json.loads(sys.stdin.read()); print(json.dumps({"side":"torch","stage":sys.argv[1],"round":int(sys.argv[2]),
 "median":r["median"],"reps":r["reps"],"foreign_cpu_s":r.get("foreign_cpu_s")}))' "$1" "$2"
}
for r in $(seq 1 "$ROUNDS"); do
  for stage in $WHAT; do
    if [ $((r % 2)) = 1 ]; then ours "$stage" "$r" | tee -a "$OUT"; theirs "$stage" "$r" | tee -a "$OUT"
    else theirs "$stage" "$r" | tee -a "$OUT"; ours "$stage" "$r" | tee -a "$OUT"; fi
  done
done
"$PY" - "$OUT" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(dict)
for x in rows:
    by[(x["stage"], x["round"])][x["side"]] = x["median"]
for (stage, rnd), v in sorted(by.items()):
    if "cdiffusers" in v and "torch" in v:
        print(f"{stage:10s} round {rnd}: cdiffusers {v['cdiffusers']:.2f} s, PyTorch {v['torch']:.2f} s, "
              f"ratio {v['cdiffusers'] / v['torch']:.2f}")
PY
