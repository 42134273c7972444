#!/usr/bin/env bash
# The portable build (-DCDF_X86_KERNELS=OFF: plain C kernels only, as on a CPU
# without AVX2 or another architecture) gives the same bytes as the build with
# the x86 kernels: the golden DDIM, Stable Diffusion (fp32 and bf16 mode) and
# UnCLIP runs of .ci/valgrind_golden.sh through both CLIs, outputs compared byte
# for byte.  Usage: .ci/portable_same_bytes.sh CLI PORTABLE_CLI [TESTDATA]
# PORTABLE_CLI may be a wrapper running another architecture's build under
# qemu (.ci/aarch64.sh); SAME_BYTES_THREADS sets the thread count of the runs
# (default 2).
set -euo pipefail
CLI="$1"; PORT="$2"; DATA="${3:-$(dirname "$0")/../tests/data}"
TH="${SAME_BYTES_THREADS:-2}"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
export OMP_WAIT_POLICY=PASSIVE
run() { # NAME ARGS...: the same run through both CLIs, then cmp
  local name="$1"; shift
  "$CLI" "$@" --quiet --out "$T/$name.x86.npy"
  "$PORT" "$@" --quiet --out "$T/$name.portable.npy"
  cmp "$T/$name.x86.npy" "$T/$name.portable.npy"
  echo "portable build: $name, same bytes"
}
run ddim generate "$DATA/ddpm/models/tiny_cifar" --pipeline ddim --steps 2 --seed 0 --threads "$TH"
run sd generate "$DATA/sd/pipelines/tiny-sd15-b-f16" --prompt "Labrador in the style of Vermeer" --seed 0 --steps 10 \
  --threads "$TH"
run sd-bf16 generate "$DATA/sd/pipelines/tiny-sd15-b-f16" --prompt "Labrador in the style of Vermeer" --seed 0 \
  --steps 10 --threads "$TH" --precision bf16
run unclip generate "$DATA/unclip/pipelines/tiny-karlo-a" \
  --prompt "a high-resolution photograph of a big red frog on a green leaf." --seed 0 --prior-steps 5 \
  --decoder-steps 5 --super-res-steps 3 --threads "$TH"
