#!/usr/bin/python3
"""Reference vectors for the UnCLIPScheduler tests (tests/test_sched_unclip.c).

The golden UnCLIP pipeline cases (tests/data/unclip) store only the decoder's
first UNet output, so the other step paths are checked here against the real
diffusers 0.32.2 `UnCLIPScheduler` (torch 1.13 CPU, float32, 1 thread, numpy
1.24): its schedule tables, set_timesteps for many (T, n) including n > T,
single `step` calls on seeded random inputs for both variance types, both
prediction types, with and without clipping, skipped and consecutive
timesteps (prev == t - 1 takes betas[t]), repeated timesteps (n > T), the last
step (t = 0, prev None, no noise), the call without prev_timestep (what a
DDPM / SD pipeline does), and config parsing / from_config conversions.

The step noise is what `randn_tensor` returns inside step (patched in
scheduling_unclip), drawn only for t > 0 as diffusers does.

Run (Debian python3 with python3-torch, python3-numpy, python3-packaging,
python3-filelock; diffusers 0.32.2 sources and huggingface_hub on the path):

    PYTHONPATH=<diffusers-0.32.2 src>:<huggingface_hub src>:<python reference shim folder> HF_HUB_OFFLINE=1 \\
        /usr/bin/python3 tests/data/sched_extra/unclip/gen_unclip.py [output folder]

Output (default: next to this script): manifest.json, schedule.f32.bin (betas
and alphas_cumprod of the sections' configs) and steps.f32.bin (every step
array), raw little-endian float32 in C order; each array's offset and count
(in floats) and shape are in manifest.json.
"""
import json
import logging
import os
import sys

import numpy as np
import torch

import diffusers.schedulers.scheduling_unclip as unclip_mod
from diffusers import DDIMScheduler, DDPMScheduler, UnCLIPScheduler

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)
CLASSES = {"DDPMScheduler": DDPMScheduler, "DDIMScheduler": DDIMScheduler, "UnCLIPScheduler": UnCLIPScheduler}


class Packer:
    """Concatenates float32 arrays into one file; returns their manifest entries."""

    def __init__(self, name):
        self.name, self.parts, self.offset = name, [], 0

    def add(self, arr):
        arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
        self.parts.append(arr.reshape(-1))
        entry = {"offset": self.offset, "count": int(arr.size), "shape": list(arr.shape)}
        self.offset += int(arr.size)
        return entry

    def write(self):
        np.concatenate(self.parts).astype("<f4").tofile(os.path.join(OUT, self.name))
        return {"file": self.name, "count": self.offset}


def public_config(sched):
    return {k: v for k, v in dict(sched.config).items() if not k.startswith("_")}


KARLO = {
    "prior": {"_class_name": "UnCLIPScheduler", "_diffusers_version": "0.11.0.dev0", "clip_sample": True,
              "clip_sample_range": 5.0, "num_train_timesteps": 1000, "prediction_type": "sample",
              "variance_type": "fixed_small_log"},
    "decoder": {"_class_name": "UnCLIPScheduler", "_diffusers_version": "0.11.0.dev0", "clip_sample": True,
                "clip_sample_range": 1.0, "num_train_timesteps": 1000, "prediction_type": "epsilon",
                "variance_type": "learned_range"},
    "super_res": {"_class_name": "UnCLIPScheduler", "_diffusers_version": "0.11.0.dev0", "clip_sample": True,
                  "clip_sample_range": 1.0, "num_train_timesteps": 1000, "prediction_type": "epsilon",
                  "variance_type": "fixed_small_log"},
}

# ---- schedule tables ----------------------------------------------------------
sched_pack = Packer("schedule.f32.bin")
schedules = []
for T in (1000, 37, 1):
    s = UnCLIPScheduler(num_train_timesteps=T)
    schedules.append({"num_train_timesteps": T, "betas": sched_pack.add(s.betas.numpy()),
                      "alphas_cumprod": sched_pack.add(s.alphas_cumprod.numpy())})
schedule_file = sched_pack.write()

# ---- timesteps --------------------------------------------------------------------
timesteps = []
for T, ns in [(1000, [2, 3, 4, 5, 6, 7, 9, 13, 25, 50, 64, 100, 333, 600, 999, 1000, 1001, 1500]),
              (37, list(range(2, 40)) + [73, 74, 75]), (2, [2, 3, 4, 5]), (1, [2, 3])]:
    s = UnCLIPScheduler(num_train_timesteps=T)
    for n in ns:
        s.set_timesteps(n)
        timesteps.append({"num_train_timesteps": T, "n": n, "timesteps": [int(x) for x in s.timesteps.tolist()]})

# ---- steps ------------------------------------------------------------------------------
# name, config, num_inference_steps, step indices, options:
#   split: model_output has 2*C channels (learned_range); prev_none: step called without prev_timestep;
#   mscale: std of the model output (x0 for "sample" prediction); vlo/vhi: range of the variance values
STEP_CASES = [
    ("karlo_prior", KARLO["prior"], 5, [0, 1, 2, 3, 4], {"mscale": 3.0}),
    ("karlo_decoder", KARLO["decoder"], 5, [0, 1, 2, 3, 4], {"split": True}),
    ("karlo_super_res", KARLO["super_res"], 3, [0, 1, 2], {}),
    ("decoder_25", KARLO["decoder"], 25, [0, 12, 24], {"split": True}),
    ("learned_sample_noclip", {"variance_type": "learned_range", "prediction_type": "sample", "clip_sample": False},
     7, [0, 3, 5, 6], {"split": True, "mscale": 2.0, "vlo": -1.3, "vhi": 1.3}),
    ("learned_sample_clip05", {"variance_type": "learned_range", "prediction_type": "sample",
                               "clip_sample_range": 0.5}, 4, [0, 2, 3], {"split": True}),
    ("small_log_eps_noclip", {"prediction_type": "epsilon", "clip_sample": False}, 9, [0, 4, 7, 8], {}),
    ("small_log_sample_clip2", {"prediction_type": "sample", "clip_sample_range": 2.0}, 6, [0, 5], {"mscale": 2.5}),
    # n = 1000: every prev == t - 1 (betas[t], alphas[t]); n = 600 mixes gaps of 1 and 2
    ("consecutive_1000", KARLO["decoder"], 1000, [0, 500, 998, 999], {"split": True}),
    ("mixed_600_learned", KARLO["decoder"], 600, [0, 1, 2, 597, 598, 599], {"split": True}),
    ("mixed_600_small_log", KARLO["super_res"], 600, [0, 1, 2, 599], {}),
    # other num_train_timesteps
    ("t37_learned", {"num_train_timesteps": 37, "variance_type": "learned_range"}, 4, [0, 1, 2, 3], {"split": True}),
    ("t37_small_log", {"num_train_timesteps": 37, "prediction_type": "sample"}, 36, [0, 17, 35], {}),
    # n > T: repeated timesteps (prev == t: beta 0, log(0))
    ("repeat_t10_n15_small_log", {"num_train_timesteps": 10}, 15, [0, 1, 2, 3, 7, 12, 13, 14], {}),
    ("repeat_t10_n15_learned", {"num_train_timesteps": 10, "variance_type": "learned_range"}, 15,
     [0, 1, 2, 3, 7, 13, 14], {"split": True, "vlo": -1.3, "vhi": 1.3}),  # v < -1 at beta 0: NaN (unclamped log)
    # learned_range with only C channels: diffusers works at t = 0 (no variance needed)
    ("learned_no_split_last", KARLO["decoder"], 5, [4], {}),
    # step(model_output, t, sample) without prev_timestep, as DDPM / SD pipelines call it
    ("prev_none_small_log", KARLO["super_res"], 5, [0, 1, 3, 4], {"prev_none": True}),
    ("prev_none_learned", KARLO["decoder"], 7, [0, 2, 5, 6], {"split": True, "prev_none": True}),
]

B, C, H, W = 3, 3, 2, 2
rng = np.random.default_rng(20250123)
real_randn = unclip_mod.randn_tensor
step_pack = Packer("steps.f32.bin")
steps = []
for name, cfg, n, idxs, opt in STEP_CASES:
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    s = UnCLIPScheduler.from_config(cfg)
    s.set_timesteps(n)
    ts = s.timesteps
    mc = 2 * C if opt.get("split") else C
    entry = {"name": name, "config": public_config(s), "num_inference_steps": n, "batch": B, "channels": C,
             "spatial": H * W, "model_channels": mc, "prev_timestep_none": bool(opt.get("prev_none")), "steps": []}
    for i in idxs:
        scale = np.array([0.5, 1.5, 4.0], dtype=np.float32).reshape(B, 1, 1, 1)
        sample = (rng.standard_normal((B, C, H, W)) * scale).astype(np.float32)
        model = (rng.standard_normal((B, mc, H, W)) * opt.get("mscale", 1.0)).astype(np.float32)
        if opt.get("split"):
            model[:, C:] = rng.uniform(opt.get("vlo", -1.1), opt.get("vhi", 1.1), (B, C, H, W)).astype(np.float32)
        noise = rng.standard_normal((B, C, H, W)).astype(np.float32)
        t = ts[i]
        prev = None if opt.get("prev_none") or i + 1 == len(ts) else ts[i + 1]
        drawn = []

        def fake_randn(shape, **kw):
            assert tuple(shape) == (B, C, H, W), shape
            drawn.append(1)
            return torch.from_numpy(noise.copy())

        unclip_mod.randn_tensor = fake_randn
        out = s.step(torch.from_numpy(model.copy()), t, torch.from_numpy(sample.copy()), prev_timestep=prev).prev_sample
        unclip_mod.randn_tensor = real_randn
        needs = bool(t > 0)
        assert needs == bool(drawn)
        rec = {"index": i, "timestep": int(t), "prev_timestep": None if prev is None else int(prev),
               "needs_noise": needs, "sample": step_pack.add(sample), "model_output": step_pack.add(model),
               "prev_sample": step_pack.add(out.numpy())}
        if needs:
            rec["noise"] = step_pack.add(noise)
        entry["steps"].append(rec)
    steps.append(entry)
steps_file = step_pack.write()

# ---- configs: parsing, warnings, from_config conversions -------------------------
messages = []


class Grab(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())


logging.getLogger("diffusers.configuration_utils").addHandler(Grab())
logging.getLogger("diffusers.configuration_utils").setLevel(logging.WARNING)

CONFIGS = [
    (KARLO["prior"], "DDPMScheduler"),
    (KARLO["decoder"], "DDIMScheduler"),
    (dict(KARLO["super_res"], beta_schedule="squaredcos_cap_v2", beta_start=0.001, foo=[1, 2],
          timestep_spacing="leading", trained_betas=None), "DDPMScheduler"),
    ({"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2", "variance_type": "learned_range",
      "prediction_type": "sample", "clip_sample_range": 3.0, "thresholding": True, "beta_start": 0.002,
      "_use_default_values": ["thresholding"]}, "UnCLIPScheduler"),
    ({"_class_name": "DDIMScheduler", "set_alpha_to_one": False, "clip_sample": False}, "UnCLIPScheduler"),
    # diffusers raises in UnCLIPScheduler.__init__
    ({"_class_name": "DDPMScheduler", "beta_schedule": "linear", "variance_type": "fixed_small_log"},
     "UnCLIPScheduler"),
    # diffusers builds it and raises in step() at t > 0
    ({"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2", "variance_type": "fixed_small"},
     "UnCLIPScheduler"),
    ({"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"},
     "UnCLIPScheduler"),
]
configs = []
for cfg, to in CONFIGS:
    messages.clear()
    first = CLASSES[cfg["_class_name"]].from_config(cfg)
    warned = [m for m in messages if "not expected" in m]
    rec = {"input": cfg, "parsed": public_config(first), "warnings": len(warned), "converted_class": to}
    try:
        conv = CLASSES[to].from_config(first.config)
        conv.set_timesteps(3)
        try:
            if to == "UnCLIPScheduler":
                x = torch.zeros(1, 3, 2, 2)
                conv.step(torch.zeros(1, 6, 2, 2) if conv.config.variance_type == "learned_range" else x,
                          conv.timesteps[0], x)
            rec["converted"] = public_config(conv)
        except (ValueError, TypeError) as e:
            rec["error"] = "step: " + str(e)
    except ValueError as e:
        rec["error"] = "init: " + str(e)
    configs.append(rec)

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump({"generator": "tests/data/sched_extra/unclip/gen_unclip.py",
               "reference": f"diffusers 0.32.2, torch {torch.__version__} (CPU, float32, 1 thread), "
                            f"numpy {np.__version__}",
               "schedule_file": schedule_file, "steps_file": steps_file,
               "schedules": schedules, "timesteps": timesteps, "steps": steps, "configs": configs}, f,
              separators=(",", ":"))
print("wrote", OUT)
