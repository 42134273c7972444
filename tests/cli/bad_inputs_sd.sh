#!/usr/bin/env bash
# Stable Diffusion bad input: a one-line error naming what is wrong, a
# non-zero exit, no crash, no output file.  Usage: bad_inputs_sd.sh CLI TESTDATA
set -u
CLI="$1"; DATA="$2"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
PIPE="$DATA/sd/pipelines/tiny-sd15-a"
fails=0; passes=0

expect() {
  local name="$1" pat="$2"; shift 3
  rm -f "$T"/out.*
  "$@" >"$T/stdout" 2>"$T/stderr"; local rc=$?
  local ok=1
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then ok=0; echo "  exit status $rc"; fi
  if ! grep -qE -- "$pat" "$T/stderr"; then ok=0; echo "  stderr does not match /$pat/"; fi
  if [ "$(grep -c . "$T/stderr")" -gt 2 ]; then ok=0; echo "  more than one error line"; fi
  if ls "$T"/out.* >/dev/null 2>&1; then ok=0; echo "  output file left behind"; fi
  if [ $ok = 1 ]; then passes=$((passes+1)); echo "ok   $name"; else fails=$((fails+1)); echo "FAIL $name"; sed 's/^/  | /' "$T/stderr"; fi
}

mkpipe() { rm -rf "$T/p"; cp -r "$PIPE" "$T/p"; chmod -R u+w "$T/p"; }
G=("$CLI" generate "$T/p" --steps 2 --seed 0 --quiet --prompt "a cat")

mkpipe; rm -r "$T/p/tokenizer"
expect "missing tokenizer folder" "tokenizer" -- "${G[@]}" --out "$T/out.png"
mkpipe; rm -r "$T/p/vae"
expect "missing vae folder" "vae" -- "${G[@]}" --out "$T/out.png"
mkpipe; rm "$T/p/text_encoder/model.safetensors"
expect "missing text encoder weights" "text_encoder" -- "${G[@]}" --out "$T/out.png"
mkpipe
expect "unknown scheduler name" "scheduler|wobbly" -- "${G[@]}" --scheduler wobbly --out "$T/out.png"
expect "height not a multiple of 8" "height" -- "${G[@]}" --height 60 --out "$T/out.png"
expect "width not a multiple of 8" "width" -- "${G[@]}" --width 61 --out "$T/out.png"
expect "guidance < 0" "guidance" -- "${G[@]}" --guidance-scale -1 --out "$T/out.png"
expect "prompt list vs generator count" "seed|generator" -- "$CLI" generate "$T/p" --steps 2 --quiet --prompt a --prompt b --prompt c --seed 1 --seed 2 --out "$T/out.png"
expect "empty prompt list" "prompt" -- "$CLI" generate "$T/p" --steps 2 --seed 0 --quiet --out "$T/out.png"
expect "negative prompt count" "negative" -- "$CLI" generate "$T/p" --steps 2 --seed 0 --quiet --prompt a --prompt b --negative-prompt x --out "$T/out.png"
expect "unknown rng kind" "rng" -- "${G[@]}" --rng mersenne --out "$T/out.png"
expect "legacy numpy seed out of range" "4294967296.*(range|2\^32|4294967295)|RandomState" -- "$CLI" generate "$T/p" --steps 2 --quiet --prompt "a cat" --rng numpy-legacy --seed 4294967296 --out "$T/out.png"
expect "tokenize without a tokenizer" "vocab|tokenizer" -- "$CLI" tokenize "$T/nonexistent" "a cat"

# a good run writes its PNG, and regenerate gives the same bytes
mkpipe
if "${G[@]}" --out "$T/good.png" >/dev/null 2>&1 && "$CLI" regenerate "$T/good.png" "$T/p" --out "$T/again.png" --quiet >/dev/null 2>&1 && cmp -s "$T/good.png" "$T/again.png"; then
  passes=$((passes+1)); echo "ok   regenerate reproduces the PNG byte for byte"
else
  fails=$((fails+1)); echo "FAIL regenerate"
fi
"$CLI" grid "$T/good.png" --rows 1 --cols 1 --out "$T/plain.png" >/dev/null 2>&1
expect "regenerate a PNG without parameters" "parameters" -- "$CLI" regenerate "$T/plain.png" "$T/p" --out "$T/out.png"
echo "$passes passed, $fails failed"
[ $fails = 0 ]
