#!/usr/bin/python3
"""Reference vectors for the antialiased bicubic resize (tests/test_resize.c).

UnCLIPPipeline upscales the decoder image with

    F.interpolate(x, size=[H, W], mode="bicubic", align_corners=False, antialias=True)

The golden UnCLIP cases cover 16 -> 64 only.  This script runs the same call
(torch CPU, float32, 1 thread) on small seeded inputs for non-integer
upscales, downscales (long windows), non-square and mixed up/down sizes,
1-pixel edge cases, an unchanged size and special values (Inf, NaN, -0), and
writes:

  * resize_<case>_x.bin   input  [B, C, h, w]   (float32, little-endian, C order)
  * resize_<case>_y.bin   output [B, C, ho, wo]
  * resize_manifest.json  shapes, files and the torch build that made them

The tests expect the C port to match these bit for bit (NaN where torch has
NaN).  The tests only read the files written here; the script is kept for
regeneration and is not run by the tests.

Run (Debian python3 with python3-torch 1.13 and python3-numpy):

    /usr/bin/python3 tests/data/unclip_extra/gen_resize.py [output folder]
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)

# name, (B, C, h, w), (ho, wo), special values
CASES = [
    ("up_24_64", (1, 1, 24, 24), (64, 64), False),   # the held-back pipeline's 2.67x
    ("up_16_40", (2, 1, 16, 16), (40, 40), False),   # batch 2, 2.5x
    ("down_48_18", (1, 1, 48, 48), (18, 18), False),  # windows of 11 taps
    ("down_40x36_17x9", (1, 1, 40, 36), (17, 9), False),
    ("down_100x3_7x3", (1, 1, 100, 3), (7, 3), False),  # 30-tap windows, unchanged width
    ("mixed_24x40_64x33", (1, 1, 24, 40), (64, 33), False),
    ("same_13x13", (1, 2, 13, 13), (13, 13), False),
    ("px_1x1_5x7", (1, 2, 1, 1), (5, 7), False),
    ("px_5x7_1x1", (1, 2, 5, 7), (1, 1), False),
    ("px_7x1_3x9", (1, 1, 7, 1), (3, 9), False),
    ("px_1x9_4x1", (1, 1, 1, 9), (4, 1), False),
    ("px_1x1_1x1", (1, 3, 1, 1), (1, 1), False),
    ("special_6x7_6x11", (1, 1, 6, 7), (6, 11), True),
]


def main():
    rng = np.random.default_rng(20240601)
    manifest = {"reference": "torch %s CPU float32, 1 thread: F.interpolate(x, size=[ho, wo], mode='bicubic', "
                             "align_corners=False, antialias=True)" % torch.__version__,
                "cpu_capability": torch.__config__.show().split("CPU capability usage: ")[-1].split("\n")[0],
                "cases": []}
    for name, shape, (ho, wo), special in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        if special:
            x[0, 0, 1, 2] = np.inf
            x[0, 0, 4, 5] = -np.inf
            x[0, 0, 3, 0] = np.nan
            x[0, 0, 0, 6] = -0.0
        y = F.interpolate(torch.from_numpy(x), size=[ho, wo], mode="bicubic", align_corners=False,
                          antialias=True).numpy()
        fx, fy = "resize_%s_x.bin" % name, "resize_%s_y.bin" % name
        np.ascontiguousarray(x).tofile(os.path.join(OUT, fx))
        np.ascontiguousarray(y).tofile(os.path.join(OUT, fy))
        manifest["cases"].append({"name": name, "shape": list(shape), "out_size": [ho, wo], "x": fx, "y": fy,
                                  "nan_count": int(np.isnan(y).sum())})
    with open(os.path.join(OUT, "resize_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
