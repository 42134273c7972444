"""Compares the arrays bench_unclip --dump and torch_unclip.py --dump wrote for the same run.

usage: compare.py C_DIR TORCH_DIR

Prints one JSON line: for each of prompt_embeds, image_embeddings, image_upscaled (the decoder
output after the bicubic upscale) and image: shape, max |c - torch|, 99th percentile, mean,
max |torch| and how many elements differ by more than 1e-3 and 1e-2, in pipeline order, so the growth of the difference from stage to stage is visible
(the t = 999 first step of the decoder and of the super-res loop amplifies any float32 rounding
difference by about 2e4 before the clip to [-1, 1]; see docs/UNCLIP.md).  Needs numpy only.
"""
import json
import os
import sys

import numpy as np

NAMES = ["prompt_embeds", "image_embeddings", "image_upscaled", "image"]


def main(c_dir, t_dir):
    out = {"check": "unclip_same_run"}
    for name in NAMES:
        pc, pt = os.path.join(c_dir, name + ".npy"), os.path.join(t_dir, name + ".npy")
        if not (os.path.exists(pc) and os.path.exists(pt)):
            out[name] = "missing"
            continue
        c, t = np.load(pc).astype(np.float64), np.load(pt).astype(np.float64)
        if c.shape != t.shape:
            out[name] = "shape %s vs %s" % (list(c.shape), list(t.shape))
            continue
        d = np.abs(c - t)
        out[name] = dict(shape=list(c.shape), max_abs_diff=float(d.max()), p99_abs_diff=float(np.percentile(d, 99)),
                         mean_abs_diff=float(d.mean()), max_abs_ref=float(np.abs(t).max()),
                         n_over_1e3=int((d > 1e-3).sum()), n_over_1e2=int((d > 1e-2).sum()))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
