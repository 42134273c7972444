#!/usr/bin/env bash
# cmake --install puts an importable Python package, with its own copy of the
# library, into the prefix's Python module folder: the installed copy (not the
# build's) runs the guide's DDIM snippet and prints the golden abs_sum.
# Usage: python_install.sh CLI TESTDATA.  Exit 77 when numpy is missing.
set -u
CLI="$1"; DATA="$(cd "$2" && pwd)"; BUILD="$(dirname "$CLI")"
/usr/bin/python3 -c "import numpy" 2>/dev/null || { echo "SKIP: numpy is not installed"; exit 77; }
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
if ! cmake --install "$BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1; then
  echo "FAIL cmake --install"; cat "$T/install.log"; exit 1
fi
init=$(find "$T/prefix" -path '*/cdiffusers/__init__.py' | head -1)
lib=$(dirname "$init")/libcdiffusers.so
if [ -z "$init" ] || [ ! -f "$lib" ]; then echo "FAIL no package with its library under the prefix"; exit 1; fi
echo "ok   installed: ${init#"$T/prefix/"} and its library"
# the build folder is out of reach: a copy elsewhere proves where the library comes from
mv "$(dirname "$(dirname "$init")")" "$T/moved"
out=$(cd "$T" && PYTHONPATH="$T/moved" /usr/bin/python3 -c '
import sys, numpy as np, cdiffusers
from cdiffusers import DDIMPipeline
assert cdiffusers._lib._find_library().startswith(sys.argv[2]), cdiffusers._lib._find_library()
ddim = DDIMPipeline.from_pretrained(sys.argv[1], use_safetensors=True)
ddim.set_progress_bar_config(disable=True)
generator = np.random.Generator(np.random.PCG64(0))
image = ddim(num_inference_steps=2, output_type="np", generator=generator)[0]
print(np.abs(image).sum())' "$DATA/ddpm/models/tiny_cifar" "$T/moved" 2>&1)
if [ "$out" = "1518.0798" ]; then echo "ok   the installed package runs the guide's DDIM snippet: $out"
else echo "FAIL the installed package: $out"; exit 1; fi
