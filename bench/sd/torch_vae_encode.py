"""PyTorch/diffusers peer of `cdiffusers bench --what vae-encode`: AutoencoderKL.encode of one
seeded 1x3x512x512 picture (the latent distribution an image-to-image run samples), fp32.

usage: torch_vae_encode.py MODELS [REPS]   (MODELS/diffusers/vae: the synthetic SD-1.5 VAE)
One untimed warm-up call, then REPS (default 3) timed calls; prints one JSON line in the format
of the reference's peers/bench_torch.py: {case, reps, min, median, threads}."""
import json
import os
import statistics
import sys
import time

import torch
import safetensors.torch  # noqa: F401  (diffusers 0.32 expects the submodule already imported)
from diffusers import AutoencoderKL

models = sys.argv[1]
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
m = AutoencoderKL.from_pretrained(os.path.join(models, "diffusers", "vae"), torch_dtype=torch.float32).eval()
x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
ts = []
with torch.inference_mode():
    m.encode(x).latent_dist.mean  # warm-up
    for _ in range(reps):
        t = time.perf_counter()
        m.encode(x).latent_dist.mean
        ts.append(time.perf_counter() - t)
print(json.dumps(dict(case="vae_encode", reps=[round(v, 4) for v in ts], min=round(min(ts), 4),
                      median=round(statistics.median(ts), 4), threads=torch.get_num_threads())))
