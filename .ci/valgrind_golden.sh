#!/usr/bin/env bash
# valgrind memcheck of two golden cases run through the CLI: DDIM
# (ddpm/cases/ddim_2step_seed0) and Stable Diffusion
# (sd/cases/f16w_pndm_default).  Each must have no memcheck error and no
# definite leak (OpenMP/OpenBLAS thread pools stay "possibly lost"/"still
# reachable" by design), and its image must match the golden one within the
# case's tolerance.  Usage: .ci/valgrind_golden.sh CLI [TESTDATA]
set -euo pipefail
CLI="$1"; DATA="${2:-$(dirname "$0")/../tests/data}"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
# (add --track-origins=yes to find where an uninitialised value comes from)
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite -q)
export OMP_WAIT_POLICY=PASSIVE

echo "valgrind: DDIM ddim_2step_seed0"
"${VG[@]}" "$CLI" generate "$DATA/ddpm/models/tiny_cifar" --pipeline ddim --steps 2 --seed 0 --threads 2 --quiet \
  --out "$T/ddim.npy"
echo "valgrind: Stable Diffusion f16w_pndm_default"
"${VG[@]}" "$CLI" generate "$DATA/sd/pipelines/tiny-sd15-b-f16" --prompt "Labrador in the style of Vermeer" \
  --seed 0 --steps 10 --threads 2 --quiet --out "$T/sd.npy"

/usr/bin/python3 - "$DATA" "$T" <<'PY'
import json, sys
import numpy as np
data, t = sys.argv[1], sys.argv[2]
c = json.load(open(f"{data}/ddpm/cases/ddim_2step_seed0/case.json"))
img = np.load(f"{t}/ddim.npy")
ref = np.fromfile(f"{data}/ddpm/cases/ddim_2step_seed0/image.bin", dtype="<f4").reshape(img.shape)
err = float(np.abs(img - ref).max())
assert err <= c["tolerance"]["image_atol"], f"DDIM image differs from the golden one by {err}"
print(f"DDIM image matches the golden one (max err {err:.2e} <= {c['tolerance']['image_atol']})")
c = json.load(open(f"{data}/sd/cases/f16w_pndm_default/case.json"))
img = np.load(f"{t}/sd.npy")
ref = np.fromfile(f"{data}/sd/cases/f16w_pndm_default/image.f32.bin", dtype="<f4").reshape(img.shape)
err, tol = float(np.abs(img - ref).max()), c["suggested_tolerance"]["image"]["atol"]
assert err <= tol, f"SD image differs from the golden one by {err}"
print(f"SD image matches the golden one (max err {err:.2e} <= {tol})")
PY
