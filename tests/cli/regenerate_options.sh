#!/usr/bin/env bash
# regenerate reproduces a run in which EVERY generation option has a
# non-default value, byte for byte (PNG file and .npy numbers), for each
# pipeline family; and each of those options, reverted on its own, changes the
# image, so an option the PNG parameters lose (not written by gp_to_json, or
# not read back by gp_from_json) cannot go unseen.
# Usage: regenerate_options.sh CLI TESTDATA
set -u
CLI="$1"; DATA="$2"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok()  { passes=$((passes+1)); echo "ok   $1"; }
bad() { fails=$((fails+1)); echo "FAIL $1"; [ -s "$T/stderr" ] && sed 's/^/  | /' "$T/stderr"; }

# mkvariant FILE NAME: FILE's twin FILE.NAME.safetensors whose last weight
# differs a little (byte n-2 xor 0x40: a mantissa bit of an f16 or f32 value)
mkvariant() {
  local dst="${1%.safetensors}.$2.safetensors" n b
  cp "$1" "$dst"; chmod u+w "$dst"
  n=$(wc -c < "$dst")
  b=$(od -An -tu1 -j $((n-2)) -N1 "$dst" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 64)))" | dd of="$dst" bs=1 seek=$((n-2)) conv=notrunc 2>/dev/null
}

# case_all NAME MODEL ARGS...: generate with ARGS (every option non-default)
# as PNG and .npy, regenerate both from the PNG and compare byte for byte.
# Sets CASE, MODEL and ALL for the variants that follow.  regenerate runs with
# the default --threads (all processors): the results must not depend on it.
case_all() {
  CASE="$1"; MODEL="$2"; shift 2; ALL=("$@")
  if ! "$CLI" generate "$MODEL" "${ALL[@]}" --quiet --out "$T/$CASE.png" >/dev/null 2>"$T/stderr" ||
     ! "$CLI" generate "$MODEL" "${ALL[@]}" --quiet --out "$T/$CASE.npy" >/dev/null 2>"$T/stderr"; then
    bad "$CASE: generate with every option set"; return
  fi
  if ! "$CLI" regenerate "$T/$CASE.png" "$MODEL" --quiet --out "$T/$CASE.regen.png" >/dev/null 2>"$T/stderr" ||
     ! "$CLI" regenerate "$T/$CASE.png" "$MODEL" --quiet --out "$T/$CASE.regen.npy" >/dev/null 2>"$T/stderr"; then
    bad "$CASE: regenerate"; return
  fi
  : >"$T/stderr"
  if cmp -s "$T/$CASE.npy" "$T/$CASE.regen.npy"; then ok "$CASE: regenerate gives the same numbers (.npy)"
  else bad "$CASE: regenerate gives other numbers (.npy)"; fi
  if cmp -s "$T/$CASE.png" "$T/$CASE.regen.png"; then ok "$CASE: regenerate gives the same PNG bytes"
  else bad "$CASE: regenerate gives other PNG bytes"; fi
}

# variant LABEL "OPTIONS" [ARGS...]: ALL without OPTIONS (every occurrence, with
# its value) plus ARGS must run and give other numbers than ALL.
variant() {
  local label="$1" drop=" $2 " args=() i=0 n=${#ALL[@]} a; shift 2
  while [ $i -lt $n ]; do
    a="${ALL[$i]}"; i=$((i+1))
    if [[ "$a" == --* && "$drop" == *" $a "* ]]; then
      # skip the value too (every option here but --karras/--no-karras takes one)
      if [ $i -lt $n ] && [[ "${ALL[$i]}" != --* ]]; then i=$((i+1)); fi
      continue
    fi
    args+=("$a")
  done
  rm -f "$T/v.npy"
  if ! "$CLI" generate "$MODEL" "${args[@]}" "$@" --quiet --out "$T/v.npy" >/dev/null 2>"$T/stderr" || [ ! -s "$T/v.npy" ]; then
    bad "$CASE: $label: the run failed"
  elif cmp -s "$T/v.npy" "$T/$CASE.npy"; then
    : >"$T/stderr"; bad "$CASE: $label makes no difference, so regenerate could lose it unseen"
  else
    ok "$CASE: $label changes the image"
  fi
}

# override LABEL ARGS...: regenerate from the case's PNG with ARGS replacing
# the recorded values must give what generate gives with ARGS in place of
# those options (the variant just run, in $T/v.npy).
override() {
  local label="$1"; shift
  rm -f "$T/o.npy"
  if ! "$CLI" regenerate "$T/$CASE.png" "$MODEL" "$@" --quiet --out "$T/o.npy" >/dev/null 2>"$T/stderr"; then
    bad "$CASE: regenerate $label: the run failed"
  elif cmp -s "$T/o.npy" "$T/v.npy"; then ok "$CASE: regenerate $label replaces the recorded value"
  else : >"$T/stderr"; bad "$CASE: regenerate $label does not give what generate $label gives"; fi
}

# same LABEL "ARGS_A" "ARGS_B": generate with ARGS_A and with ARGS_B (word-split) give the same numbers
same() {
  local label="$1" a b; read -r -a a <<<"$2"; read -r -a b <<<"$3"
  if ! "$CLI" generate "$MODEL" "${a[@]}" --quiet --out "$T/s1.npy" >/dev/null 2>"$T/stderr" ||
     ! "$CLI" generate "$MODEL" "${b[@]}" --quiet --out "$T/s2.npy" >/dev/null 2>"$T/stderr"; then
    bad "$label: the run failed"
  elif cmp -s "$T/s1.npy" "$T/s2.npy"; then ok "$label"
  else : >"$T/stderr"; bad "$label: different numbers"; fi
}

# --- model folders: each with a weights variant "v2" (or "fp16") that differs
U2D="$T/unet2d"; cp -r "$DATA/ddpm/models/tiny_fourier_f16" "$U2D"; chmod -R u+w "$U2D"
mkvariant "$U2D/unet/diffusion_pytorch_model.safetensors" v2
# the same UNet in a folder whose model_index says DDIMPipeline: --pipeline ddpm is then not the default
U2DI="$T/unet2d_ddim"; cp -r "$U2D" "$U2DI"
sed -i 's/"DDPMPipeline"/"DDIMPipeline"/' "$U2DI/model_index.json"
SD="$T/sd"; cp -r "$DATA/sd/pipelines/tiny-sd15-a" "$SD"; chmod -R u+w "$SD"
mkvariant "$SD/unet/diffusion_pytorch_model.safetensors" v2
# an Euler scheduler with use_karras_sigmas on: --no-karras is then not the default
SDK="$T/sd_karras"; cp -r "$SD" "$SDK"
sed -i 's/"PNDMScheduler"/"EulerDiscreteScheduler"/; s/^{/{"use_karras_sigmas": true,/' "$SDK/scheduler/scheduler_config.json"
sed -i 's/"PNDMScheduler"/"EulerDiscreteScheduler"/' "$SDK/model_index.json"
# tiny-karlo-b with tiny-karlo-b-f16's tensors as its fp16 variant, as on the Hub
UC="$T/unclip"; cp -r "$DATA/unclip/pipelines/tiny-karlo-b" "$UC"; chmod -R u+w "$UC"
for f in "$DATA"/unclip/pipelines/tiny-karlo-b-f16/*/*.safetensors; do
  c="$(basename "$(dirname "$f")")"; b="$(basename "$f" .safetensors)"
  cp "$f" "$UC/$c/$b.fp16.safetensors"
done

# Not in the variants, as they cannot change the image: --threads (results do
# not depend on it), --dump-dir (writes intermediates only), --pipeline for
# SD/UnCLIP folders (their only value is the folder's own class, i.e. auto),
# and the output options (--out, --quiet; --grid and --separate are checked
# as recorded layouts below).  Step counts
# are changed to another value rather than reverted: their defaults (50, 1000,
# 25/25/7) would take seconds each.

# --- DDIMPipeline (a DDPM folder converted with --pipeline ddim)
case_all ddim "$U2D" --pipeline ddim --steps 3 --eta 0.7 --batch-size 2 --seed 11 --seed 12 \
  --rng torch-cuda --gpu 1x256 --variant v2 --threads 1 --precision bf16
variant "--pipeline"          "--pipeline"
variant "--steps"             "--steps" --steps 4
override "--steps 4"          --steps 4
variant "--eta"               "--eta"
variant "--batch-size"        "--batch-size --seed" --seed 11
variant "one seed per image"  "--seed" --seed 11
variant "the second seed"     "--seed" --seed 11 --seed 13
override "--seed 11 --seed 13" --seed 11 --seed 13
same "option=value is option value" "--pipeline=ddim --steps=2 --seed=3" "--pipeline ddim --steps 2 --seed 3"
variant "--rng"               "--rng"
variant "--gpu"               "--gpu"
variant "--gpu SM count"      "--gpu" --gpu 2x256
variant "--gpu threads/SM"    "--gpu" --gpu 1x512
variant "--variant"           "--variant"
variant "--precision"         "--precision"
override "--precision fp32"   --precision fp32

# --- the output layout is recorded too: a grid keeps its shape, and a file
# written with --separate gives that one image of its batch again
layout() {
  local label="$1" file="$2" orig="$3"
  if ! "$CLI" regenerate "$file" "$U2D" --quiet --out "$T/layout.regen.png" >/dev/null 2>"$T/stderr"; then
    bad "layout: $label: regenerate"
  elif cmp -s "$T/layout.regen.png" "$orig"; then ok "layout: $label: regenerate gives the same PNG bytes"
  else : >"$T/stderr"; bad "layout: $label: regenerate gives another PNG"; fi
}
LAY=(--pipeline ddim --steps 2 --batch-size 3 --seed 4 --quiet)
if "$CLI" generate "$U2D" "${LAY[@]}" --grid 3x1 --out "$T/grid.png" >/dev/null 2>"$T/stderr" &&
   "$CLI" generate "$U2D" "${LAY[@]}" --separate --out "$T/sep.png" >/dev/null 2>"$T/stderr"; then
  layout "--grid 3x1" "$T/grid.png" "$T/grid.png"
  layout "--separate, image 1" "$T/sep-1.png" "$T/sep-1.png"
  layout "--separate, image 2" "$T/sep-2.png" "$T/sep-2.png"
  # and the regenerated file records its layout in turn
  layout "a regenerated --separate file" "$T/layout.regen.png" "$T/sep-2.png"
  if cmp -s "$T/sep-1.png" "$T/sep-2.png"; then bad "layout: the --separate files are the same image"; fi
else
  bad "layout: generate --grid / --separate"
fi

# --- DDPMPipeline (--pipeline ddpm on a DDIMPipeline folder).  --eta is set
# but not a variant: DDPMScheduler.step takes no eta.
case_all ddpm "$U2DI" --pipeline ddpm --steps 3 --eta 0.5 --batch-size 2 --seed 7 --rng numpy-legacy \
  --variant v2 --threads 1
variant "--pipeline"          "--pipeline"
variant "--steps"             "--steps" --steps 4
variant "--batch-size"        "--batch-size"
variant "--seed"              "--seed" --seed 8
variant "--rng"               "--rng"
variant "--variant"           "--variant"

# --- StableDiffusionPipeline with DDIMScheduler (so --eta counts)
case_all sd "$SD" --prompt "a red cat" --prompt "a dog" --negative-prompt blurry --negative-prompt "dark room" \
  --num-images-per-prompt 2 --guidance-scale 5 --guidance-rescale 0.6 --height 32 --width 24 --clip-skip 1 \
  --scheduler ddim --eta 0.8 --steps 2 --seed 5 --rng torch-cpu --variant v2 --threads 1 --precision bf16
variant "the second prompt"   "--prompt" --prompt "a red cat" --prompt "a cow"
override "--prompt"           --prompt "a red cat" --prompt "a cow"
variant "--precision"         "--precision"
override "--precision fp32"   --precision fp32
variant "--negative-prompt"   "--negative-prompt"
variant "--num-images-per-prompt" "--num-images-per-prompt"
variant "the second negative" "--negative-prompt" --negative-prompt blurry --negative-prompt "bright room"
override "--negative-prompt"  --negative-prompt blurry --negative-prompt "bright room"
variant "--guidance-scale"    "--guidance-scale" --guidance-scale 3
override "--guidance-scale 3" --guidance-scale 3
variant "--guidance-rescale"  "--guidance-rescale" --guidance-rescale 0.2
override "--guidance-rescale 0.2" --guidance-rescale 0.2
variant "--height"            "--height"
variant "--width"             "--width"
variant "--clip-skip"         "--clip-skip" --clip-skip 0
override "--clip-skip 0"      --clip-skip 0
variant "--scheduler"         "--scheduler"
variant "--eta"               "--eta" --eta 0.3
override "--eta 0.3"          --eta 0.3
variant "--steps"             "--steps" --steps 3
variant "--seed"              "--seed" --seed 6
override "--seed 6"           --seed 6
variant "--rng"               "--rng"
variant "--variant"           "--variant"

# --- Stable Diffusion with a swapped-in Karras scheduler, by class name.  A
# case of its own: only DDIMScheduler takes eta, and it has no Karras sigmas.
case_all sd_karras "$SD" --prompt "a cat" --scheduler EulerDiscreteScheduler --karras --steps 3 \
  --seed 1 --seed 2 --num-images-per-prompt 2 --rng torch-cpu-avx2
variant "--karras"            "--karras"
variant "--rng"               "--rng"
variant "one seed per image"  "--seed" --seed 1

# --- Stable Diffusion on a folder whose scheduler has use_karras_sigmas on;
# numpy's seed list form
case_all sd_no_karras "$SDK" --prompt "a cat" --no-karras --steps 3 --seed "[3,4]"
variant "--no-karras"         "--no-karras"
variant "the seed list"       "--seed" --seed "[3,5]"

# --- UnCLIPPipeline
case_all unclip "$UC" --prompt "a red cat" --prompt "a dog" --num-images-per-prompt 2 --prior-steps 2 \
  --decoder-steps 2 --super-res-steps 2 --prior-guidance-scale 2.5 --decoder-guidance-scale 3.5 \
  --seed 21 --seed 22 --seed 23 --seed 24 --rng torch-cpu --variant fp16 --threads 1 --dump-dir "$T/dump"
variant "the second prompt"   "--prompt" --prompt "a red cat" --prompt "a cow"
variant "--num-images-per-prompt" "--num-images-per-prompt --seed" --seed 21 --seed 22
variant "--prior-steps"       "--prior-steps" --prior-steps 3
variant "--decoder-steps"     "--decoder-steps" --decoder-steps 3
variant "--super-res-steps"   "--super-res-steps" --super-res-steps 3
variant "--prior-guidance-scale" "--prior-guidance-scale" --prior-guidance-scale 1.5
override "--prior-guidance-scale 1.5" --prior-guidance-scale 1.5
variant "--decoder-guidance-scale" "--decoder-guidance-scale" --decoder-guidance-scale 5
override "--decoder-guidance-scale 5" --decoder-guidance-scale 5
variant "the last seed"       "--seed" --seed 21 --seed 22 --seed 23 --seed 25
variant "--rng"               "--rng"
variant "--variant"           "--variant"

# --- the defaults are diffusers' (UnCLIPPipeline: prior 4.0, decoder 8.0; SD: 7.5):
# leaving an option out is the same run as giving its default
MODEL="$UC"
same "UnCLIP: default guidance scales are 4.0 and 8.0" \
  "--prompt cat --prior-steps 2 --decoder-steps 2 --super-res-steps 2 --seed 1" \
  "--prompt cat --prior-steps 2 --decoder-steps 2 --super-res-steps 2 --seed 1 --prior-guidance-scale 4 --decoder-guidance-scale 8"
MODEL="$SD"
same "SD: default guidance scale is 7.5" "--prompt cat --steps 2 --seed 1" "--prompt cat --steps 2 --seed 1 --guidance-scale 7.5"

echo "$passes passed, $fails failed"
[ $fails = 0 ]
