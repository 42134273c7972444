#!/usr/bin/env bash
# Interrupted and failing runs: Ctrl-C during generation stops at a step
# boundary with a clean message and writes nothing; a killed or failing run
# never leaves a partial output nor touches a good file already there;
# hostile PNG parameters and PNG headers give one-line errors.
# Usage: hardening.sh CLI TESTDATA
set -u
CLI="$1"; DATA="$2"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
FAST="$DATA/ddpm/models/tiny_fourier_f16"
SLOW="$DATA/ddpm/models/tiny_cifar"   # DDPM, 1000 steps: tens of seconds
fails=0; passes=0
ok() { passes=$((passes+1)); echo "ok   $1"; }
bad() { fails=$((fails+1)); echo "FAIL $1"; shift; for l in "$@"; do echo "  | $l"; done; }

# Only the expected files are in $T/o (no temporaries such as out.png.123.abcd.tmp).
only() { local got; got="$(cd "$T/o" && ls -A | tr '\n' ' ' | sed 's/ $//')"; [ "$got" = "$*" ]; }

# Waits until process $1 has a SIGINT handler (SigCgt bit 2), i.e. generation started.
wait_handler() {
  local pid="$1" i
  for i in $(seq 1 600); do
    if [ -r "/proc/$pid/status" ]; then
      local cgt; cgt="$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status")"
      if [ -n "$cgt" ] && [ $(( 0x$cgt & 2 )) -ne 0 ]; then return 0; fi
    else
      sleep 2; return 0   # no /proc: give the load time
    fi
    sleep 0.05
  done
  return 1
}

mkdir -p "$T/o"
# a good image to protect
"$CLI" generate "$FAST" --steps 2 --seed 3 --quiet --out "$T/good.png" >/dev/null 2>&1 || bad "good run" "cannot make the reference PNG"

# 1. SIGINT during a long DDPM run: exit status 1, one "interrupted" line, no output file.
rm -rf "$T/o"; mkdir -p "$T/o"
"$CLI" generate "$SLOW" --pipeline ddpm --steps 1000 --seed 0 --threads 1 --out "$T/o/out.png" >"$T/stdout" 2>"$T/stderr" &
pid=$!
if wait_handler "$pid"; then sleep 0.3; kill -INT "$pid"; fi
wait "$pid"; rc=$?
if [ $rc -eq 1 ] && grep -q "interrupted" "$T/stderr" && [ "$(grep -c . "$T/stderr")" -eq 1 ] && only ""; then
  ok "SIGINT stops the run at a step boundary: exit 1, '$(cat "$T/stderr")'"
else
  bad "SIGINT" "exit status $rc" "$(cat "$T/stderr")" "files: $(ls -A "$T/o")"
fi

# 2. SIGINT with a good file at the destination: the file is untouched.
rm -rf "$T/o"; mkdir -p "$T/o"; cp "$T/good.png" "$T/o/out.png"
"$CLI" generate "$SLOW" --pipeline ddpm --steps 1000 --seed 0 --threads 1 --quiet --out "$T/o/out.png" >/dev/null 2>"$T/stderr" &
pid=$!
if wait_handler "$pid"; then sleep 0.3; kill -INT "$pid"; fi
wait "$pid"; rc=$?
if [ $rc -eq 1 ] && cmp -s "$T/good.png" "$T/o/out.png" && only "out.png"; then
  ok "SIGINT keeps the good file at the destination"
else
  bad "SIGINT over a good file" "exit status $rc" "$(cat "$T/stderr")" "files: $(ls -A "$T/o")"
fi

# 3. SIGKILL mid-run (no chance to clean up): the good file is untouched.
rm -rf "$T/o"; mkdir -p "$T/o"; cp "$T/good.png" "$T/o/out.png"
"$CLI" generate "$SLOW" --pipeline ddpm --steps 1000 --seed 0 --threads 1 --quiet --out "$T/o/out.png" >/dev/null 2>&1 &
pid=$!
wait_handler "$pid"; sleep 0.5; kill -KILL "$pid"; wait "$pid" 2>/dev/null; rc=$?
if [ $rc -eq 137 ] && cmp -s "$T/good.png" "$T/o/out.png" && only "out.png"; then
  ok "SIGKILL keeps the good file at the destination"
else
  bad "SIGKILL over a good file" "exit status $rc" "files: $(ls -A "$T/o")"
fi

# 4. The disk fills up while writing (file size limit, SIGXFSZ ignored so
#    write fails with EFBIG): exit 1, the error names the file, the good file
#    is untouched, no temporary file is left.  For .png and .npy.
for ext in png npy; do
  rm -rf "$T/o"; mkdir -p "$T/o"
  "$CLI" generate "$FAST" --steps 2 --seed 3 --quiet --out "$T/o/out.$ext" >/dev/null 2>&1
  cp "$T/o/out.$ext" "$T/ref.$ext"
  ( trap '' XFSZ; ulimit -f 1; exec "$CLI" generate "$FAST" --steps 2 --seed 4 --quiet --out "$T/o/out.$ext" ) \
    >/dev/null 2>"$T/stderr"; rc=$?
  if [ $rc -eq 1 ] && grep -q "out.$ext" "$T/stderr" && cmp -s "$T/ref.$ext" "$T/o/out.$ext" && only "out.$ext"; then
    ok "a full disk keeps the good .$ext: '$(cat "$T/stderr")'"
  else
    bad "full disk .$ext" "exit status $rc" "$(cat "$T/stderr")" "files: $(ls -A "$T/o")"
  fi
done

# 5. regenerate with hostile "parameters" JSON: a one-line error, exit 1, no output.
mkpng() { # mkpng FILE JSON [W H] [ZTXT_LEN]: a PNG with the given parameters text
  /usr/bin/env python3 - "$@" <<'PY'
import struct, sys, zlib
path, text = sys.argv[1], sys.argv[2].encode()
w = int(sys.argv[3]) if len(sys.argv) > 3 else 1
h = int(sys.argv[4]) if len(sys.argv) > 4 else 1
zlen = int(sys.argv[5]) if len(sys.argv) > 5 else None
def chunk(t, d, n=None):
    return struct.pack(">I", len(d) if n is None else n) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
if zlen is not None:
    out += chunk(b"zTXt", b"parameters\0\0" + zlib.compress(text), zlen)
else:
    out += chunk(b"tEXt", b"parameters\0" + text)
out += chunk(b"IDAT", zlib.compress(b"\0" + bytes(3 * w)))[: (None if w * h == 1 else 40)]
out += chunk(b"IEND", b"")
open(path, "wb").write(out)
PY
}
expect() { # expect NAME PATTERN -- cmd...
  local name="$1" pat="$2"; shift 3
  rm -rf "$T/o"; mkdir -p "$T/o"
  "$@" >"$T/stdout" 2>"$T/stderr"; local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qE "$pat" "$T/stderr" && [ "$(grep -c . "$T/stderr")" -le 2 ] && only ""; then
    ok "$name: $(head -1 "$T/stderr")"
  else
    bad "$name" "exit status $rc" "$(cat "$T/stderr")" "files: $(ls -A "$T/o")"
  fi
}
P='"model": "m", "pipeline": "DDIMPipeline", "seeds": ["0"]'
for spec in '"steps": 0' '"steps": 1e300' '"steps": -3' '"steps": 2.5' '"steps": 2, "batch_size": 0' \
            '"steps": 2, "batch_size": 1e20' '"steps": 2, "num_images_per_prompt": -1' '"steps": 2, "eta": -1' \
            '"steps": 2, "height": 1e9' '"steps": 2, "guidance_rescale": 7' '"steps": 2, "clip_skip": 1e10' \
            '"steps": 2, "gpu_sm_count": -1' '"steps": 2, "gpu_threads_per_sm": 1e30' '"steps": "2"'; do
  mkpng "$T/p.png" "{$P, $spec}"
  expect "regenerate with $spec" "parameter|range|steps" -- "$CLI" regenerate "$T/p.png" "$FAST" --out "$T/o/out.png"
done
for spec in '"grid": "0x2"' '"grid": "2x"' '"grid": 4' '"image_index": -1' '"image_index": 1.5' '"image_index": "1"' \
            '"image_index": 3'; do
  mkpng "$T/p.png" "{$P, \"steps\": 2, $spec}"
  expect "regenerate with $spec" "grid|image_index|number 3 of its batch" -- "$CLI" regenerate "$T/p.png" "$FAST" --out "$T/o/out.png"
done
mkpng "$T/p.png" '{"model": "m", "pipeline": "DDIMPipeline", "seeds": [], "steps": 2}'
expect "regenerate with no seeds" "seeds" -- "$CLI" regenerate "$T/p.png" "$FAST" --out "$T/o/out.png"
mkpng "$T/p.png" '[1, 2]'
expect "regenerate with parameters that are not an object" "JSON object" -- "$CLI" regenerate "$T/p.png" "$FAST" --out "$T/o/out.png"
mkpng "$T/p.png" "{$P, \"steps\": 2}" 1 1 2000000000
expect "regenerate a PNG whose text chunk claims 2 GB" "PNG|limit|large" -- "$CLI" regenerate "$T/p.png" "$FAST" --out "$T/o/out.png"
mkpng "$T/p.png" "{$P, \"steps\": 2}" 65536 65536
expect "grid of a PNG claiming 65536 x 65536 pixels" "pixels|limit|large" -- "$CLI" grid "$T/p.png" --rows 1 --cols 1 --out "$T/o/out.png"

# 6. hostile model folders: size limits and overflow checks on what files claim.
SD="$DATA/sd/pipelines/tiny-sd15-b-f16"
mkm() { rm -rf "$T/m"; cp -r "$1" "$T/m"; chmod -R u+w "$T/m"; }
pyedit() { /usr/bin/env python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $2; json.dump(c, open(p,'w'))" "$1"; }
mkm "$FAST"; pyedit "$T/m/unet/config.json" "c['sample_size']=65536"
expect "UNet sample_size 65536 (51 GB of latents)" "sample_size.*limit" -- "$CLI" generate "$T/m" --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$FAST"; pyedit "$T/m/unet/config.json" "c['block_out_channels']=[16, 2**40]"
expect "UNet block_out_channels 2^40" "block_out_channels" -- "$CLI" generate "$T/m" --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$FAST"; pyedit "$T/m/scheduler/scheduler_config.json" "c['num_train_timesteps']=10**9"
expect "num_train_timesteps 10^9" "num_train_timesteps" -- "$CLI" generate "$T/m" --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$FAST"; pyedit "$T/m/scheduler/scheduler_config.json" "c['trained_betas']=[0.1]*7"
expect "trained_betas of the wrong length" "trained_betas" -- "$CLI" generate "$T/m" --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$FAST"; /usr/bin/env python3 - "$T/m/unet/diffusion_pytorch_model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n])
k = sorted(x for x in h if x != '__metadata__')[0]; h[k]['shape'] = [2**53, 2**53, 2**53]
hb = json.dumps(h).encode(); open(p, 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8+n:])
PY
expect "safetensors shape whose byte count overflows 64 bits" "overflows" -- "$CLI" generate "$T/m" --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$FAST"; /usr/bin/env python3 -c "import sys; open(sys.argv[1],'w').write('[' * 100000)" "$T/m/model_index.json"
expect "model_index.json nested 100000 deep" "model_index.json.*JSON" -- "$CLI" generate "$T/m" --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$SD"; truncate -s 65M "$T/m/tokenizer/vocab.json"
expect "vocab.json of 65 MiB" "vocab.json.*limit" -- "$CLI" generate "$T/m" --prompt a --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$SD"; printf '#version: 0.2\ni n\nthree parts here\n' > "$T/m/tokenizer/merges.txt"
expect "merges.txt line with three symbols" "merges.txt.*line 3" -- "$CLI" generate "$T/m" --prompt a --steps 1 --seed 0 --out "$T/o/out.png"
mkm "$SD"; pyedit "$T/m/tokenizer/tokenizer_config.json" "c['model_max_length']=10**9"
expect "model_max_length 10^9" "model_max_length" -- "$CLI" generate "$T/m" --prompt a --steps 1 --seed 0 --out "$T/o/out.png"
expect "a 4096 x 4096 grid of 16 x 16 images (12.9 GB)" "grid.*limit" -- "$CLI" generate "$FAST" --steps 1 --seed 0 --batch-size 2 --grid 4096x4096 --out "$T/o/out.png"
mkm "$SD"
expect "SD at 65536 x 65536" "pixels|limit" -- "$CLI" generate "$T/m" --prompt a --steps 1 --seed 0 --height 65536 --width 65536 --out "$T/o/out.png"

# the recorded parameters of a good PNG still regenerate it byte for byte
rm -rf "$T/o"; mkdir -p "$T/o"
if "$CLI" regenerate "$T/good.png" "$FAST" --out "$T/o/again.png" --quiet >/dev/null 2>&1 && cmp -s "$T/good.png" "$T/o/again.png"; then
  ok "regenerate still reproduces a good PNG"
else
  bad "regenerate of a good PNG"
fi

echo "$passes passed, $fails failed"
[ $fails = 0 ]
