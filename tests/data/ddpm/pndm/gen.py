"""PNDMPipeline golden cases (diffusers 0.32.2 with mindone's numpy noise, CPU float32, 1 thread).

The folder tiny_pndm/ is tiny_cifar's UNet2DModel with a PNDMScheduler config that keeps diffusers'
defaults (skip_prk_steps false: the Runge-Kutta warm-up runs).  For each case: image.bin (float32
[B, H, W, 3], output_type="np"), the generator states after the call, and case.json; the image's
noise floor is |fp32 - fp64| with the UNet in float64 on the same float32 noise, the tolerance
max(4 x floor, 1e-5) as the other golden folders set it.  Run from the
repository root with the Python reference (its load_pipelines / mindone_rng modules, diffusers and
torch) on PYTHONPATH:
  python3 tests/data/ddpm/pndm/gen.py
"""
import json
import os

import numpy as np
import torch

import diffusers.pipelines.deprecated.pndm.pipeline_pndm  # imported before mindone_rng patches randn_tensor
import mindone_rng
from diffusers import PNDMPipeline, PNDMScheduler, UNet2DModel

torch.set_num_threads(1)
mindone_rng.install()
# diffusers' PNDMPipeline passes no dtype (torch's default, float32); mindone's numpy draw is float64 until
# cast, so it is cast to the UNet's dtype here, as every other pipeline's draw is (dtype=unet.dtype)
_pp = diffusers.pipelines.deprecated.pndm.pipeline_pndm
_draw = _pp.randn_tensor
HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "tiny_pndm")
CASES = [
    ("pndm_prk_20step_seed0", dict(num_inference_steps=20), [0], False),
    ("pndm_batch2_gen_list", dict(num_inference_steps=6, batch_size=2), [3, 4], True),
    ("pndm_batch3_one_gen", dict(num_inference_steps=4, batch_size=3), [9], False),
]
unet = UNet2DModel.from_pretrained(os.path.join(MODEL, "unet")).eval()
sched = PNDMScheduler.from_pretrained(os.path.join(MODEL, "scheduler"))
pipe = PNDMPipeline(unet=unet, scheduler=sched)
pipe.set_progress_bar_config(disable=True)
unet64 = UNet2DModel.from_pretrained(os.path.join(MODEL, "unet")).eval().double()
pipe64 = PNDMPipeline(unet=unet64, scheduler=PNDMScheduler.from_pretrained(os.path.join(MODEL, "scheduler")))
pipe64.set_progress_bar_config(disable=True)


def run(p, dtype, seeds, is_list, kw):
    gens = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
    _pp.randn_tensor = lambda shape, generator=None, dtype_=None, **k: _draw(shape, generator=generator, dtype=dtype,
                                                                           **{a: b for a, b in k.items() if a != "dtype"})
    mindone_rng.STATE["via_f32"] = dtype == torch.float64  # the float32 noise, widened
    with torch.no_grad():
        img = p(generator=gens if is_list else gens[0], output_type="np", **kw).images
    return np.asarray(img), gens


for name, kw, seeds, is_list in CASES:
    img, gens = run(pipe, torch.float32, seeds, is_list, kw)
    img64, _ = run(pipe64, torch.float64, seeds, is_list, kw)
    floor = float(np.abs(img.astype(np.float64) - img64).max())
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    np.asarray(img, np.float32).tofile(os.path.join(d, "image.bin"))
    states = [g.bit_generator.state for g in gens]
    json.dump({"name": name, "pipeline": "PNDMPipeline", "model": "tiny_pndm", "call": kw,
               "generator": {"kind": "list" if is_list else "single", "seeds": [str(s) for s in seeds]},
               "image": {"file": "image.bin", "dtype": "float32", "shape": list(img.shape)},
               "abs_sum_np_float32": float(np.abs(img).sum()),
               "generator_states_after": [{"state": str(s["state"]["state"]), "inc": str(s["state"]["inc"]),
                                           "has_uint32": s["has_uint32"], "uinteger": s["uinteger"]}
                                          for s in states],
               "timesteps": [int(t) for t in pipe.scheduler.timesteps],
               "noise_floor_image_fp32_vs_fp64": floor,
               "tolerance": {"image_atol": max(4 * floor, 1e-5)}}, open(os.path.join(d, "case.json"), "w"), indent=1)
    print(name, img.shape, float(np.abs(img).sum()), "floor", floor)
