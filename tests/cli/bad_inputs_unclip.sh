#!/usr/bin/env bash
# UnCLIP (Karlo) bad input: a one-line error naming the file and field, a
# non-zero exit, no crash, no output file; then a good run: its PNG
# regenerates byte for byte and --dump-dir writes every stage.
# Usage: bad_inputs_unclip.sh CLI TESTDATA
set -u
CLI="$1"; DATA="$2"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
PIPE="$DATA/unclip/pipelines/tiny-karlo-a"
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
# A config folder (no weights) of the tiny pipeline with one field changed by
# a python-free sed, then seeded synthetic weights that fit it.
mkconf() {
  rm -rf "$T/c" "$T/p"; cp -r "$PIPE" "$T/c"; chmod -R u+w "$T/c"
  find "$T/c" -name '*.safetensors' -delete
  sed -i -E "$2" "$T/c/$1/config.json"
  "$CLI" make-synthetic "$T/c" "$T/p" --seed 0 >/dev/null 2>"$T/syn.err" || { echo "  make-synthetic failed:"; cat "$T/syn.err"; }
}
G=("$CLI" generate "$T/p" --prior-steps 2 --decoder-steps 2 --super-res-steps 2 --seed 0 --quiet --prompt "a red frog")

mkpipe; rm -r "$T/p/decoder"
expect "missing decoder folder" "decoder" -- "${G[@]}" --out "$T/out.png"
mkpipe; rm -r "$T/p/super_res_last"
expect "missing super_res_last folder" "super_res_last" -- "${G[@]}" --out "$T/out.png"
mkpipe; rm "$T/p/prior/diffusion_pytorch_model.safetensors"
expect "missing prior weights" "prior" -- "${G[@]}" --out "$T/out.png"
mkpipe; sed -i 's/"learned_range"/"fixed_small_log"/' "$T/p/decoder_scheduler/scheduler_config.json"
expect "decoder output channels vs variance type" "decoder/config.json.*out_channels" -- "${G[@]}" --out "$T/out.png"
mkpipe; sed -i 's/"squaredcos_cap_v2"/"linear"/' "$T/p/prior_scheduler/scheduler_config.json"
expect "UnCLIPScheduler beta_schedule" "prior_scheduler.*beta_schedule" -- "${G[@]}" --out "$T/out.png"
mkconf text_proj 's/"clip_embeddings_dim": *24/"clip_embeddings_dim": 16/'
expect "text_proj embedding size vs prior" "text_proj/config.json clip_embeddings_dim 16" -- "${G[@]}" --out "$T/out.png"
mkconf decoder 's/"cross_attention_dim": *40/"cross_attention_dim": 48/'
expect "decoder cross_attention_dim vs text_proj" "decoder/config.json cross_attention_dim 48" -- "${G[@]}" --out "$T/out.png"
mkconf super_res_first 's/"in_channels": *6/"in_channels": 4/'
expect "super-res UNet in_channels" "super_res_first/config.json: in_channels 4" -- "${G[@]}" --out "$T/out.png"
mkpipe
expect "zero prior steps" "prior-steps" -- "$CLI" generate "$T/p" --prior-steps 0 --seed 0 --quiet --prompt a --out "$T/out.png"
expect "one decoder step" "decoder-steps" -- "$CLI" generate "$T/p" --decoder-steps 1 --seed 0 --quiet --prompt a --out "$T/out.png"
expect "no prompt" "prompt" -- "$CLI" generate "$T/p" --seed 0 --quiet --out "$T/out.png"
expect "a Stable Diffusion option" "UnCLIP" -- "${G[@]}" --guidance-scale 3 --out "$T/out.png"
expect "negative guidance" "prior-guidance-scale" -- "${G[@]}" --prior-guidance-scale -1 --out "$T/out.png"
expect "generator count" "seed|generator" -- "$CLI" generate "$T/p" --quiet --prompt a --prompt b --seed 1 --seed 2 --seed 3 --out "$T/out.png"
expect "run as Stable Diffusion" "cannot run as" -- "$CLI" generate "$T/p" --pipeline sd --seed 0 --quiet --prompt a --out "$T/out.png"

# a good run writes its PNG, regenerate gives the same bytes, --dump-dir writes each stage
mkpipe
if "${G[@]}" --prior-guidance-scale 3 --out "$T/good.png" --dump-dir "$T/dump" >/dev/null 2>&1 &&
   "$CLI" regenerate "$T/good.png" "$T/p" --out "$T/again.png" --quiet >/dev/null 2>&1 && cmp -s "$T/good.png" "$T/again.png"; then
  passes=$((passes+1)); echo "ok   regenerate reproduces the PNG byte for byte"
else
  fails=$((fails+1)); echo "FAIL regenerate"
fi
missing=""
for a in text_mask prompt_embeds text_enc_hid_states prior_latents_init prior_latents_steps prior_noise_steps \
         image_embeddings decoder_encoder_hidden_states additive_clip_time_embeddings decoder_latents_init \
         decoder_unet0_output decoder_latents_steps decoder_output super_res_latents_init image_upscaled \
         super_res_latents_steps image; do
  [ -s "$T/dump/$a.npy" ] || missing="$missing $a"
done
if [ -z "$missing" ]; then passes=$((passes+1)); echo "ok   --dump-dir wrote every stage"
else fails=$((fails+1)); echo "FAIL --dump-dir lacks:$missing"; fi
if grep -aq '"prior_guidance_scale":3' "$T/good.png"; then passes=$((passes+1)); echo "ok   the PNG records the UnCLIP options"
else fails=$((fails+1)); echo "FAIL the PNG lacks prior_guidance_scale"; fi
echo "$passes passed, $fails failed"
[ $fails = 0 ]
