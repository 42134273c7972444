#!/usr/bin/env bash
# valgrind memcheck of three golden cases run through the CLI: DDIM
# (ddpm/cases/ddim_2step_seed0), Stable Diffusion (sd/cases/f16w_pndm_default)
# and UnCLIP (unclip/cases/one_prompt_one_gen, with --dump-dir).  Each must have no memcheck error and no
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

echo "valgrind: UnCLIP one_prompt_one_gen"
"${VG[@]}" "$CLI" generate "$DATA/unclip/pipelines/tiny-karlo-a" \
  --prompt "a high-resolution photograph of a big red frog on a green leaf." --seed 0 --prior-steps 5 \
  --decoder-steps 5 --super-res-steps 3 --threads 2 --quiet --dump-dir "$T/dump" --out "$T/unclip.npy"

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
case = f"{data}/unclip/cases/one_prompt_one_gen"
c = json.load(open(f"{case}/case.json"))
for name in ("image_embeddings", "image"):
    a = c["arrays"][name]
    ref = np.fromfile(f"{case}/{a['file']}", dtype="<f4").reshape(a["shape"])
    got = np.load(f"{t}/dump/{name}.npy")
    d = np.abs(got.astype(np.float64) - ref)
    tol = c["suggested_tolerance"][name]
    assert np.percentile(d, 99) <= tol["p99_atol"] and d.mean() <= tol["mean_atol"], f"UnCLIP {name} differs"
    print(f"UnCLIP {name} matches the golden one (p99 {np.percentile(d, 99):.2e} <= {tol['p99_atol']})")
assert np.array_equal(np.load(f"{t}/unclip.npy"), np.load(f"{t}/dump/image.npy")), "--out and the image dump differ"
PY
