#!/usr/bin/python3
"""Reference vectors for the UnCLIP super-resolution UNets (tests/test_unet_superres.c).

UnCLIPPipeline's super_res_first / super_res_last are UNet2DModel with
ResnetDownsampleBlock2D / ResnetUpsampleBlock2D and no mid-block attention.
The golden UnCLIP cases only see them through whole pipeline runs.  This
script runs the real diffusers 0.32.2 UNet2DModel of tiny-karlo-a (torch CPU,
float32, 1 thread) on one seeded batch and writes:

  * superres_<model>_t<t>.bin  unet(sample, t).sample  [2, 3, H, W], for both
                               models and t = 999, 0
  * superres_state_dict_tiny.json   names and shapes of pipe.super_res_first.state_dict()
                                    (super_res_last has the same layout)
  * superres_state_dict_karlo.json  the same for UNet2DModel.from_config(models/karlo/super_res_first/config.json)
                                    (the real karlo-v1-alpha config; karlo_super_res_last_config.json
                                    differs only by sample_size null and gives the same state_dict;
                                    both are verbatim copies of karlo-v1-alpha's
                                    super_res_first/config.json and super_res_last/config.json)
  * superres_manifest.json          shapes, files, noise floors and tolerances

The sample is not stored: it is np.random.Generator(np.random.PCG64(SEED))
.standard_normal((2, 6, H, W)) cast to float32 (mindone's randn), which the
test regenerates with the library's numpy generator.  Each output is also
computed by a float64 copy of the model on the same input; the manifest
records max |fp32 - fp64| and atol = max(10 * floor, 1e-5) (the golden data's
policy).  The tests only read the files written here; this script is kept for
regeneration and is not run by the tests.

Run (Debian python3 with python3-torch, python3-numpy; diffusers 0.32.2
sources, huggingface_hub and the reference shim on the path):

    PYTHONPATH=<diffusers-0.32.2 src>:<huggingface_hub src>:<python reference shim folder> HF_HUB_OFFLINE=1 \\
        /usr/bin/python3 tests/data/unclip_extra/gen_superres.py [output folder]
"""
import copy
import json
import os
import sys

import numpy as np
import torch

from diffusers import UNet2DModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else HERE
PIPE = os.path.join(HERE, "..", "unclip", "pipelines", "tiny-karlo-a")
SEED, BATCH, H, W = 7, 2, 24, 16
torch.set_num_threads(1)


def write_state_dict(model, path, config):
    sd = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    with open(path, "w") as f:
        f.write('{"config": "%s", "count": %d, "tensors": [\n' % (config, len(sd)))
        f.write(",\n".join(json.dumps(t) for t in sd))
        f.write("\n]}\n")


def main():
    x = np.random.Generator(np.random.PCG64(SEED)).standard_normal((BATCH, 6, H, W)).astype(np.float32)
    manifest = {"reference": "diffusers 0.32.2 UNet2DModel, torch %s CPU float32, 1 thread" % torch.__version__,
                "tolerance_policy": "atol = max(10 * |fp32 - fp64|, 1e-5)",
                "sample": {"generator": "numpy PCG64", "seed": SEED, "shape": [BATCH, 6, H, W],
                           "first_values": [float(v) for v in x.reshape(-1)[:4]]},
                "outputs": []}
    for name in ("super_res_first", "super_res_last"):
        m = UNet2DModel.from_pretrained(os.path.join(PIPE, name)).float().eval()
        m64 = copy.deepcopy(m).double()
        for t in (999, 0):
            with torch.no_grad():
                y = m(torch.from_numpy(x), t).sample.numpy()
                y64 = m64(torch.from_numpy(x).double(), t).sample.numpy()
            floor = float(np.abs(y.astype(np.float64) - y64).max())
            fn = "superres_%s_t%d.bin" % (name, t)
            np.ascontiguousarray(y).tofile(os.path.join(OUT, fn))
            manifest["outputs"].append({"model": name, "t": t, "file": fn, "shape": list(y.shape),
                                        "max_abs": float(np.abs(y).max()), "noise_floor": floor,
                                        "atol": max(10 * floor, 1e-5)})
        if name == "super_res_first":
            write_state_dict(m, os.path.join(OUT, "superres_state_dict_tiny.json"),
                             "unclip/pipelines/tiny-karlo-a/super_res_first/config.json")
    big = UNet2DModel.from_config(UNet2DModel.load_config(os.path.join(HERE, "..", "..", "..", "models", "karlo", "super_res_first", "config.json")))
    write_state_dict(big, os.path.join(OUT, "superres_state_dict_karlo.json"), "karlo_super_res_first_config.json")
    with open(os.path.join(OUT, "superres_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
