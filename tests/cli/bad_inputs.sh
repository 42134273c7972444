#!/usr/bin/env bash
# Bad input gives a one-line error naming what is wrong, a non-zero exit, no
# crash, and no output file.  Usage: bad_inputs.sh CLI TESTDATA
set -u
CLI="$1"; DATA="$2"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
MODEL="$DATA/ddpm/models/tiny_fourier_f16"
fails=0; passes=0

# expect NAME PATTERN -- command...: non-zero exit (not a signal), stderr matching PATTERN, no $T/out.*
expect() {
  local name="$1" pat="$2"; shift 3
  rm -f "$T"/out.*
  "$@" >"$T/stdout" 2>"$T/stderr"; local rc=$?
  local ok=1
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then ok=0; echo "  exit status $rc"; fi
  if ! grep -qE "$pat" "$T/stderr"; then ok=0; echo "  stderr does not match /$pat/"; fi
  if [ "$(grep -c . "$T/stderr")" -gt 2 ]; then ok=0; echo "  more than one error line"; fi
  if ls "$T"/out.* >/dev/null 2>&1 || ls "$T"/.out* >/dev/null 2>&1; then ok=0; echo "  output file left behind"; fi
  if [ $ok = 1 ]; then passes=$((passes+1)); echo "ok   $name"; else fails=$((fails+1)); echo "FAIL $name"; sed 's/^/  | /' "$T/stderr"; fi
}

# a model copy whose unet weights/config we can break
mkmodel() { rm -rf "$T/m"; cp -r "$MODEL" "$T/m"; chmod -R u+w "$T/m"; }
ST="$T/m/unet/diffusion_pytorch_model.safetensors"
# rewrite the safetensors header with a python edit: $1 = python code on dict h (and bytes data)
edit_header() {
  python3 - "$ST" "$1" <<'PY'
import json, struct, sys
path, code = sys.argv[1], sys.argv[2]
b = open(path, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8+n]); data = b[8+n:]
names = sorted(k for k in h if k != '__metadata__')
exec(code)
hb = json.dumps(h).encode()
open(path, 'wb').write(struct.pack('<Q', len(hb)) + hb + data)
PY
}

GEN=("$CLI" generate "$T/m" --steps 2 --seed 0 --quiet)

expect "missing model folder" "nonexistent.*not found" -- "$CLI" generate "$T/nonexistent" --out "$T/out.png"
mkmodel; rm "$T/m/unet/config.json"
expect "missing unet config" "unet/config.json" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; rm "$ST"
expect "missing weights file" "diffusion_pytorch_model" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; head -c 5 "$ST" > "$T/x" && mv "$T/x" "$ST"
expect "safetensors shorter than 8 bytes" "safetensors" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; python3 -c "
import struct,sys; p=sys.argv[1]; b=open(p,'rb').read(); open(p,'wb').write(b[:len(b)//2])" "$ST"
expect "truncated safetensors" "diffusion_pytorch_model.safetensors" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; python3 -c "
import struct,sys; p=sys.argv[1]; b=open(p,'rb').read(); open(p,'wb').write(struct.pack('<Q', len(b)*4)+b[8:])" "$ST"
expect "header length past the end" "header" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; edit_header "h[names[1]]['data_offsets'] = [h[names[0]]['data_offsets'][0], h[names[1]]['data_offsets'][1]]"
expect "overlapping offsets" "overlap|offsets" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; edit_header "e=h[names[-1]]['data_offsets']; h[names[-1]]['data_offsets']=[e[0], e[1]+4096]"
expect "offsets outside the data" "offsets|outside|past|size" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; edit_header "h[names[0]]['dtype']='Q9'"
expect "unknown dtype" "dtype" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; python3 - "$T/m/unet/config.json" <<'PY'
import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['block_out_channels']=[16,48]; json.dump(c,open(p,'w'))
PY
expect "shape not matching the config" "expected|shape" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; python3 - "$T/m/unet/config.json" <<'PY'
import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['down_block_types'][0]='FancyDownBlock2D'; json.dump(c,open(p,'w'))
PY
expect "unknown block type" "FancyDownBlock2D" -- "${GEN[@]}" --out "$T/out.png"
mkmodel; python3 - "$T/m/scheduler/scheduler_config.json" <<'PY'
import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['beta_schedule']='wiggly'; json.dump(c,open(p,'w'))
PY
expect "unknown scheduler config value" "beta_schedule" -- "${GEN[@]}" --out "$T/out.png"
mkmodel
expect "steps < 1" "steps" -- "$CLI" generate "$T/m" --steps 0 --seed 0 --out "$T/out.png"
expect "steps with trailing characters" "steps.*5x" -- "$CLI" generate "$T/m" --steps 5x --seed 0 --out "$T/out.png"
expect "unknown precision" "precision.*fp16" -- "$CLI" generate "$T/m" --steps 2 --precision fp16 --seed 0 --out "$T/out.png"
expect "bench: unknown precision" "precision.*int8" -- "$CLI" bench "$T/m" --what unet --precision int8
expect "batch size with trailing characters" "batch-size.*2 " -- "$CLI" generate "$T/m" --steps 2 --batch-size "2 " --seed 0 --out "$T/out.png"
expect "seed count not matching the batch" "seed" -- "$CLI" generate "$T/m" --steps 2 --batch-size 3 --seed 1 --seed 2 --out "$T/out.png"
expect "bad seed" "seed" -- "$CLI" generate "$T/m" --steps 2 --seed -5 --out "$T/out.png"
expect "bad shape string" "shape" -- "$CLI" randn --seed 0 --shape 2,x,3 --out "$T/out.npy"
expect "shape with zero" "shape" -- "$CLI" randn --seed 0 --shape 2,0,3 --out "$T/out.npy"
expect "randn seeds vs first dim" "seed" -- "$CLI" randn --seed 0 --seed 1 --shape 3,2 --out "$T/out.npy"
expect "unwritable output path" "$T/no/such/dir/out.png|out.png" -- "${GEN[@]}" --out "$T/no/such/dir/out.png"
expect "unknown output extension" "out" -- "${GEN[@]}" --out "$T/out.jpg"
expect "unknown option" "unknown option" -- "${GEN[@]}" --frobnicate
expect "bad pipeline name" "pipeline" -- "${GEN[@]}" --pipeline ddx --out "$T/out.png"
expect "grid of mismatched count" "rows|cols|cells" -- "$CLI" grid "$T/a.png" "$T/b.png" --rows 3 --cols 3 --out "$T/out.png"
expect "grid of a missing image" "a.png" -- "$CLI" grid "$T/a.png" --rows 1 --cols 1 --out "$T/out.png"

# a good run still works, and leaves exactly its output
mkmodel
if "${GEN[@]}" --out "$T/out.png" >/dev/null 2>&1 && [ -s "$T/out.png" ]; then passes=$((passes+1)); echo "ok   good run writes its PNG"; else fails=$((fails+1)); echo "FAIL good run"; fi
echo "$passes passed, $fails failed"
[ $fails = 0 ]
