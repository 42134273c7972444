#!/usr/bin/python3
"""Reference vectors for the AutoencoderKL tests (tests/test_vae.c).

The golden Stable Diffusion cases only check vae.decode through clamped
images; nothing checks the encoder.  This script runs the real diffusers
0.32.2 AutoencoderKL (torch CPU, float32, 1 thread) of the two tiny golden
pipelines on small deterministic images and writes:

  * <pipe>_<case>_x.bin        input images [B, 3, H, W] in [-1, 1]
  * <pipe>_<case>_moments.bin  vae.encode(x).latent_dist.parameters
                               (encoder + quant_conv: [B, 8, H//8, W//8], mean then logvar)
  * <pipe>_<case>_decoded.bin  vae.decode(latent_dist.mean).sample (raw, unclamped)
  * sd15_state_dict.json       names and shapes of the state_dict of
                               AutoencoderKL.from_config(sd15_vae_config.json)
                               (the real SD-1.5 VAE config, a copy of
                               shared/models/sd15/vae/config.json)

Each case also runs in float64 on the same inputs; manifest.json records the
float32-vs-float64 difference (noise floor) and a suggested atol =
max(10 * floor, 1e-5), the golden data's policy.  The tests only read the
files written here; this script is kept for regeneration and is not run by
the tests.

Run (Debian python3 with python3-torch, python3-numpy; diffusers 0.32.2
sources, huggingface_hub and the reference shim on the path):

    PYTHONPATH=<diffusers-0.32.2 src>:<huggingface_hub src>:<python reference shim folder> HF_HUB_OFFLINE=1 \\
        /usr/bin/python3 tests/data/vae_extra/gen.py

Output: raw little-endian float32 arrays in C order (shapes in manifest.json).
"""
import copy
import json
import os

import numpy as np
import torch

from diffusers import AutoencoderKL

OUT = os.path.dirname(os.path.abspath(__file__))
SD = os.path.join(OUT, "..", "sd", "pipelines")
torch.set_num_threads(1)


def save(name, arr):
    arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
    arr.tofile(os.path.join(OUT, name))
    return {"file": name, "dtype": "float32", "shape": list(arr.shape), "count": int(arr.size),
            "max_abs": float(np.abs(arr).max())}


def image(b, h, w):
    """Smooth deterministic image batch in [-1, 1] with some edges."""
    i = np.arange(h, dtype=np.float64)[:, None]
    j = np.arange(w, dtype=np.float64)[None, :]
    out = np.empty((b, 3, h, w), dtype=np.float64)
    for n in range(b):
        for c in range(3):
            v = 0.7 * np.sin(0.37 * i + 0.23 * (c + 1) * j + 1.1 * n + 0.5 * c)
            v += 0.25 * np.cos(0.11 * i * j / (1 + n) + c)
            v += 0.3 * ((i + 2 * j + 5 * c + 7 * n) % 11 < 3)
            out[n, c] = np.clip(v, -1.0, 1.0)
    return out.astype(np.float32)


def run(vae, x):
    with torch.no_grad():
        post = vae.encode(x).latent_dist
        mom = post.parameters
        dec = vae.decode(post.mean).sample
    return mom, dec


def main():
    manifest = {"reference": "diffusers 0.32.2 AutoencoderKL, torch %s CPU float32, 1 thread" % torch.__version__,
                "tolerance_policy": "atol = max(10 * |fp32 - fp64|, 1e-5)", "cases": []}
    cases = [("tiny-sd15-a", "b2_32x48", 2, 32, 48), ("tiny-sd15-a", "b1_27x21", 1, 27, 21),
             ("tiny-sd15-b-f16", "b2_32x48", 2, 32, 48)]
    for pipe, tag, b, h, w in cases:
        vae = AutoencoderKL.from_pretrained(os.path.join(SD, pipe, "vae")).float().eval()
        vae64 = copy.deepcopy(vae).double()
        x = image(b, h, w)
        mom, dec = run(vae, torch.from_numpy(x))
        mom64, dec64 = run(vae64, torch.from_numpy(x).double())
        fl_m = float((mom.double() - mom64).abs().max())
        fl_d = float((dec.double() - dec64).abs().max())
        pre = "%s_%s" % (pipe, tag)
        manifest["cases"].append({
            "name": pre, "pipeline": "sd/pipelines/%s/vae" % pipe, "batch": b, "height": h, "width": w,
            "x": save(pre + "_x.bin", x),
            "moments": save(pre + "_moments.bin", mom.numpy()),
            "decoded": save(pre + "_decoded.bin", dec.numpy()),
            "noise_floor": {"moments": fl_m, "decoded": fl_d},
            "atol": {"moments": max(10 * fl_m, 1e-5), "decoded": max(10 * fl_d, 1e-5)},
        })
    cfg = AutoencoderKL.load_config(os.path.join(OUT, "sd15_vae_config.json"))
    big = AutoencoderKL.from_config(cfg)
    sd = [[k, list(v.shape)] for k, v in big.state_dict().items()]
    with open(os.path.join(OUT, "sd15_state_dict.json"), "w") as f:
        f.write('{"config": "sd15_vae_config.json", "count": %d, "tensors": [\n' % len(sd))
        f.write(",\n".join(json.dumps(t) for t in sd))
        f.write("\n]}\n")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
