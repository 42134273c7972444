#!/usr/bin/env bash
# The aarch64 cross-build (cmake/aarch64-linux-gnu.cmake: Debian's
# gcc-aarch64-linux-gnu and the arm64 -dev packages) run under qemu-aarch64
# beside the native build, on the golden CLI runs:
#   - DDPM/DDIM and Stable Diffusion in bf16 mode: the same bytes;
#   - Stable Diffusion fp32 and UnCLIP: within 1e-4 of the x86 bytes (measured
#     2.8e-6 and 2.5e-5; their golden image tolerances are 2e-4 and 3.1e-4).  glibc's
#     erff, tanhf and log1pf (GELU and friends) are built with fused
#     multiply-adds on aarch64 and not on x86-64, so some of their results
#     differ by an ulp (README, "Reproducibility").
# Usage: .ci/aarch64.sh NATIVE_CLI [TESTDATA]; installs nothing (see .ci/run).
# Runs use one thread: libgomp's barriers under qemu-user take minutes each.
set -euo pipefail
cd "$(dirname "$0")/.."
CLI="$1"; DATA="${2:-tests/data}"
B=build-aarch64
# the generators' and schedulers' golden tests (bit-exact noise) run under qemu too
TESTS="test_rng test_rng_api test_rng_torch test_rng_legacy test_rng_philox test_rng_half test_sched_golden
  test_sched_sd_golden test_vmath"
cmake -S . -B "$B" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
  -DCDF_BUILD_TESTS=ON >/dev/null
# shellcheck disable=SC2086
cmake --build "$B" -j2 --target cdiffusers_cli $TESTS >/dev/null
for t in $TESTS; do
  OMP_WAIT_POLICY=PASSIVE qemu-aarch64 -L /usr/aarch64-linux-gnu "$B/tests/$t" >"$B/$t.log" 2>&1 ||
    { cat "$B/$t.log"; echo "aarch64: $t failed"; exit 1; }
  echo "aarch64: $t passed ($(grep -c '\[       OK' "$B/$t.log") tests)"
done
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
ARM="$T/arm-cli"
printf '#!/bin/sh\nexec qemu-aarch64 -L /usr/aarch64-linux-gnu %q "$@"\n' "$(pwd)/$B/cdiffusers" >"$ARM"
chmod +x "$ARM"
file -b "$B/cdiffusers" | grep -q aarch64 || { echo "aarch64: $B/cdiffusers is not an aarch64 program"; exit 1; }
export OMP_WAIT_POLICY=PASSIVE
fails=0
# compare NAME TOL ARGS...: the run through both CLIs; TOL 0 means the same bytes
compare() {
  local name="$1" tol="$2"; shift 2
  "$CLI" "$@" --threads 1 --quiet --out "$T/$name.x86.npy" >/dev/null
  "$ARM" "$@" --threads 1 --quiet --out "$T/$name.arm.npy" >/dev/null
  if /usr/bin/python3 - "$T/$name.x86.npy" "$T/$name.arm.npy" "$tol" "$name" <<'PY'; then :; else fails=$((fails + 1)); fi
import sys
import numpy as np
a, b, tol, name = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
same = a.tobytes() == b.tobytes()
err = float(np.abs(a.astype(np.float64) - b).max())
ok = same if tol == 0 else err <= tol
print("aarch64: %-8s %s (max difference %.3g, %d of %d values differ)%s" % (
    name, "same bytes" if same else "within %g" % tol if ok else "OVER %g" % tol, err, int((a != b).sum()), a.size,
    "" if ok else "  FAIL"))
sys.exit(0 if ok else 1)
PY
}
P="Labrador in the style of Vermeer"
compare ddim 0 generate "$DATA/ddpm/models/tiny_cifar" --pipeline ddim --steps 2 --seed 0
compare ddpm-bf16w 0 generate "$DATA/ddpm/models/tiny_odd_bf16" --steps 10 --seed 3
compare ddim-f16w 0 generate "$DATA/ddpm/models/tiny_heads_f16" --pipeline ddim --steps 5 --eta 0.5 --seed 42
compare sd-bf16 0 generate "$DATA/sd/pipelines/tiny-sd15-b-f16" --prompt "$P" --seed 0 --steps 10 --precision bf16
compare sd 1e-4 generate "$DATA/sd/pipelines/tiny-sd15-b-f16" --prompt "$P" --seed 0 --steps 10
compare unclip 1e-4 generate "$DATA/unclip/pipelines/tiny-karlo-a" \
  --prompt "a high-resolution photograph of a big red frog on a green leaf." --seed 0 --prior-steps 5 \
  --decoder-steps 5 --super-res-steps 3
[ "$fails" = 0 ] || { echo "aarch64: $fails comparison(s) failed"; exit 1; }
