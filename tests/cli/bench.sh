#!/usr/bin/env bash
# cdiffusers bench: every --what on the tiny models prints one well-formed
# JSON line per rep (work > 0, the input sizes asked for); bad options are
# usage errors.  Usage: bench.sh CLI TESTDATA
set -u
CLI="$1"; DATA="$2"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok()  { passes=$((passes+1)); echo "ok   $1"; }
bad() { fails=$((fails+1)); echo "FAIL $1"; sed 's/^/  | /' "$T/out" "$T/err"; }

# lines LABEL N KEY=VALUE...: the run's stdout has N JSON lines, each with the
# keys and a positive gflop / seconds
lines() {
  local label="$1" n="$2"; shift 2
  /usr/bin/env python3 - "$T/out" "$n" "$@" <<'PY' && ok "$label" || bad "$label"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = dict(kv.split("=", 1) for kv in sys.argv[3:])
assert len(rows) == int(sys.argv[2]), rows
for i, r in enumerate(rows):
    for k in ("what", "rep", "seconds", "gflop", "gflops", "peak_rss_mib", "threads", "batch", "height", "width", "kernel"):
        assert k in r, k
    assert r["rep"] == i and r["seconds"] > 0 and r["gflop"] > 0 and r["peak_rss_mib"] > 0, r
    for k, v in want.items():
        assert str(r[k]) == v, (k, r[k], v)
PY
}
run() { "$CLI" bench "$@" >"$T/out" 2>"$T/err"; }

SD="$DATA/sd/pipelines/tiny-sd15-a"
run "$DATA/ddpm/models/tiny_cifar" --what unet --reps 2 --threads 1 && lines "UNet2DModel, 2 reps" 2 what=unet batch=1 threads=1 || bad "UNet2DModel run"
run "$SD" --what unet --reps 1 --height 64 --width 32 && lines "SD UNet: batch 2, latents 8x4" 1 batch=2 height=8 width=4 || bad "SD UNet run"
run "$SD" --what vae --reps 1 --batch 2 && lines "VAE decode, batch 2" 1 what=vae batch=2 || bad "VAE run"
run "$SD" --what vae-encode --reps 1 --height 32 --width 48 && lines "VAE encode 32x48" 1 what=vae-encode height=32 width=48 || bad "VAE encode run"
run "$SD" --what text --reps 1 --batch 3 && lines "text encoder, batch 3" 1 what=text batch=3 || bad "text run"
run "$SD" --what pipeline --steps 2 --reps 1 --height 32 --width 48 && lines "SD pipeline 32x48" 1 what=pipeline height=32 width=48 || bad "SD pipeline run"
run "$DATA/unclip/pipelines/tiny-karlo-a" --what pipeline --steps 2 --reps 1 && lines "UnCLIP pipeline" 1 what=pipeline || bad "UnCLIP pipeline run"
# the work of a call is a property of the model and sizes, not of the threads
run "$SD" --what unet --reps 1 --threads 1 && cp "$T/out" "$T/one"
run "$SD" --what unet --reps 1 --threads 3
if [ "$(grep -o '"gflop": [0-9.]*' "$T/one")" = "$(grep -o '"gflop": [0-9.]*' "$T/out")" ]; then ok "gflop does not depend on threads"; else bad "gflop differs with threads"; fi

for args in "--what wobble" "--what unet --reps 0" "--what vae --height 60" ""; do
  # shellcheck disable=SC2086
  "$CLI" bench "$SD" $args >"$T/out" 2>"$T/err"; rc=$?
  if [ $rc = 2 ] && [ -s "$T/err" ] && [ ! -s "$T/out" ]; then ok "usage error: bench $args"; else bad "bench $args: exit $rc"; fi
done
"$CLI" bench "$T/nonexistent" --what unet >"$T/out" 2>"$T/err"; rc=$?
if [ $rc = 1 ] && grep -q nonexistent "$T/err"; then ok "missing folder: exit 1 naming it"; else bad "missing folder: exit $rc"; fi

echo "$passes passed, $fails failed"
[ $fails = 0 ]
