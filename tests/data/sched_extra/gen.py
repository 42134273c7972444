#!/usr/bin/python3
"""Reference vectors for the DDPM/DDIM scheduler tests (tests/test_sched_extra.c).

Covers what the golden pipeline cases do not: thresholding, scaled_linear,
squaredcos_cap_v2, sigmoid, rescale_betas_zero_snr, every DDPM variance_type,
v_prediction / sample in both classes, set_alpha_to_one false, eta with
use_clipped_model_output, trailing spacings that yield n+1 timesteps, torch's
float32 linspace, and from_config conversions of configs with unknown keys.

Everything comes from the real diffusers 0.32.2 scheduler classes on torch
(CPU, float32); the tests only read the files this script writes.  It is kept
for regeneration and is not run by the tests.

Run (Debian python3 with python3-torch, python3-numpy, python3-packaging,
python3-filelock; diffusers 0.32.2 sources and huggingface_hub on the path):

    PYTHONPATH=<diffusers-0.32.2 src>:<huggingface_hub src>:<python reference shim folder> HF_HUB_OFFLINE=1 \
        /usr/bin/python3 tests/data/sched_extra/gen.py

Output (next to this script): manifest.json and *.bin files, raw little-endian
float32 in C order (shapes in manifest.json).
"""
import json
import os

import numpy as np
import torch

import diffusers.schedulers.scheduling_ddpm as ddpm_mod
from diffusers import DDIMScheduler, DDPMScheduler

OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)
CLASSES = {"DDPMScheduler": DDPMScheduler, "DDIMScheduler": DDIMScheduler}


def save(name, arr):
    arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
    arr.tofile(os.path.join(OUT, name))
    return {"file": name, "dtype": "float32", "shape": list(arr.shape), "count": int(arr.size)}


def public_config(sched):
    return {k: v for k, v in dict(sched.config).items() if not k.startswith("_")}


# ---- torch.linspace float32 -------------------------------------------------
linspace = []
for start, end, steps in [(0.0001, 0.02, 1000), (0.00085 ** 0.5, 0.012 ** 0.5, 1000), (-6.0, 6.0, 1000),
                          (0.0001, 0.02, 37), (0.001, 0.5, 17), (0.1, 0.3, 3), (0.1, 0.3, 2), (0.1, 0.3, 1),
                          (0.0001, 0.02, 4000), (0.0003, 0.07, 33)]:
    t = torch.linspace(start, end, steps, dtype=torch.float32)
    linspace.append({"start": start, "end": end, "steps": steps,
                     **save(f"linspace_{len(linspace)}.bin", t.numpy())})

# ---- schedules ----------------------------------------------------------------
schedules = []
for cls, cfg in [
    ("DDPMScheduler", {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}),
    ("DDIMScheduler", {"beta_schedule": "squaredcos_cap_v2"}),
    ("DDPMScheduler", {"beta_schedule": "sigmoid", "beta_start": 0.0001, "beta_end": 0.02}),
    ("DDIMScheduler", {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                       "rescale_betas_zero_snr": True}),
    ("DDPMScheduler", {"num_train_timesteps": 37, "beta_start": 0.001, "beta_end": 0.2}),
    ("DDPMScheduler", {"num_train_timesteps": 5, "trained_betas": [0.01, 0.1, 0.2, 0.30000001, 0.5]}),
]:
    s = CLASSES[cls](**cfg)
    i = len(schedules)
    schedules.append({"class": cls, "config": cfg,
                      "betas": save(f"sched_{i}_betas.bin", s.betas.numpy()),
                      "alphas_cumprod": save(f"sched_{i}_alphas_cumprod.bin", s.alphas_cumprod.numpy())})

# ---- timesteps -------------------------------------------------------------------
timesteps = []
for cls in CLASSES:
    for T, ns in [(1000, [1, 2, 3, 7, 10, 13, 50, 300, 999, 1000]), (15, list(range(1, 16))),
                  (17, list(range(1, 18))), (1, [1]), (37, [5, 36])]:
        for spacing in ("leading", "trailing", "linspace"):
            for offset in ((0, 1) if spacing == "leading" else (0,)):
                s = CLASSES[cls](num_train_timesteps=T, timestep_spacing=spacing, steps_offset=offset)
                for n in ns:
                    if spacing == "leading" and offset and n == T:
                        continue  # the timestep T would be out of range (diffusers fails in step)
                    s.set_timesteps(n)
                    timesteps.append({"class": cls, "num_train_timesteps": T, "timestep_spacing": spacing,
                                      "steps_offset": offset, "n": n,
                                      "timesteps": [int(x) for x in s.timesteps.tolist()]})

# ---- steps ---------------------------------------------------------------------------
# Each case: a config, num_inference_steps, and step indices; for each index a
# random sample / model_output (and noise) and the prev_sample diffusers returns.
STEP_CASES = [
    ("ddpm_thresh_fixed_large", "DDPMScheduler",
     {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "variance_type": "fixed_large",
      "thresholding": True, "dynamic_thresholding_ratio": 0.9, "sample_max_value": 1.5, "steps_offset": 1},
     20, [0, 9, 19], {}),
    ("ddpm_vpred_small_log_cos", "DDPMScheduler",
     {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction", "variance_type": "fixed_small_log",
      "timestep_spacing": "trailing", "clip_sample": False},
     7, [0, 3, 6], {}),
    ("ddpm_learned_range_zsnr", "DDPMScheduler",
     {"variance_type": "learned_range", "rescale_betas_zero_snr": True, "timestep_spacing": "linspace",
      "clip_sample_range": 2.0},
     9, [0, 1, 4, 8], {"split": True}),
    ("ddpm_learned_sigmoid", "DDPMScheduler",
     {"variance_type": "learned", "beta_schedule": "sigmoid", "prediction_type": "sample"},
     5, [0, 2, 4], {"split": True, "positive_var": True}),
    ("ddpm_fixed_large_log", "DDPMScheduler",
     {"variance_type": "fixed_large_log"}, 4, [0, 3], {}),
    ("ddpm_trailing_extra", "DDPMScheduler",
     {"num_train_timesteps": 17, "timestep_spacing": "trailing", "beta_start": 0.001, "beta_end": 0.2},
     7, [0, 5, 6, 7], {}),
    ("ddpm_default_thresh_default_ratio", "DDPMScheduler",
     {"thresholding": True, "sample_max_value": 3.0}, 10, [0, 5, 9], {}),
    ("ddim_thresh_sample_clipped", "DDIMScheduler",
     {"prediction_type": "sample", "thresholding": True, "dynamic_thresholding_ratio": 0.995,
      "sample_max_value": 2.5, "set_alpha_to_one": False},
     10, [0, 4, 9], {"eta": 0.7, "use_clipped_model_output": True}),
    ("ddim_vpred_zsnr_trailing", "DDIMScheduler",
     {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "timestep_spacing": "trailing",
      "clip_sample": False, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
     6, [0, 3, 5], {"eta": 0.0}),
    ("ddim_epsilon_clipped_eta", "DDIMScheduler",
     {"clip_sample_range": 0.5, "timestep_spacing": "linspace", "set_alpha_to_one": False},
     8, [0, 7], {"eta": 1.0, "use_clipped_model_output": True}),
    ("ddim_trailing_extra", "DDIMScheduler",
     {"num_train_timesteps": 15, "timestep_spacing": "trailing", "beta_start": 0.001, "beta_end": 0.2},
     13, [0, 12, 13], {"eta": 0.3}),
]

B, C, H, W = 3, 2, 5, 7
rng = np.random.default_rng(20240601)
real_randn = ddpm_mod.randn_tensor
steps = []
for name, cls, cfg, n, idxs, opt in STEP_CASES:
    s = CLASSES[cls](**cfg)
    s.set_timesteps(n)
    entry = {"name": name, "class": cls, "config": public_config(s), "num_inference_steps": n,
             "timesteps": [int(x) for x in s.timesteps.tolist()], "batch": B, "channels": C, "spatial": H * W,
             "eta": opt.get("eta", 0.0), "use_clipped_model_output": opt.get("use_clipped_model_output", None),
             "steps": []}
    mc = 2 * C if opt.get("split") else C
    entry["model_channels"] = mc
    for i in idxs:
        scale = np.array([0.5, 2.0, 6.0], dtype=np.float32).reshape(B, 1, 1, 1)
        sample = (rng.standard_normal((B, C, H, W)) * scale).astype(np.float32)
        model = (rng.standard_normal((B, mc, H, W)) * scale).astype(np.float32)
        if opt.get("split"):
            pv = rng.uniform(0.05, 0.9, (B, C, H, W)) if opt.get("positive_var") else rng.uniform(-1, 1, (B, C, H, W))
            model[:, C:] = pv.astype(np.float32)
        noise = rng.standard_normal((B, C, H, W)).astype(np.float32)
        t = s.timesteps[i]
        ddpm_mod.randn_tensor = lambda *a, **k: torch.from_numpy(noise.copy())
        if cls == "DDPMScheduler":
            out = s.step(torch.from_numpy(model.copy()), t, torch.from_numpy(sample.copy())).prev_sample
            needs = bool(t > 0)
        else:
            eta = opt.get("eta", 0.0)
            out = s.step(torch.from_numpy(model.copy()), t, torch.from_numpy(sample.copy()), eta=eta,
                         use_clipped_model_output=opt.get("use_clipped_model_output", None),
                         variance_noise=torch.from_numpy(noise.copy()) if eta > 0 else None).prev_sample
            needs = eta > 0
        ddpm_mod.randn_tensor = real_randn
        pre = f"step_{name}_{i}"
        rec = {"index": i, "timestep": int(t), "needs_noise": needs,
               "sample": save(pre + "_sample.bin", sample), "model_output": save(pre + "_model.bin", model),
               "prev_sample": save(pre + "_prev.bin", out.numpy())}
        if needs:
            rec["noise"] = save(pre + "_noise.bin", noise)
        entry["steps"].append(rec)
    steps.append(entry)

# ---- _threshold_sample on its own ---------------------------------------------
# rows scaled so that s clamps to 1, lands between 1 and sample_max_value, or
# clamps to sample_max_value; duplicates, tiny rows and a NaN row included.
thresholds = []
for n, ratio, smv, kind in [(70, 0.995, 3.0, "normal"), (1, 0.9, 3.0, "normal"), (2, 0.5, 3.0, "normal"),
                            (3072, 0.995, 2.0, "normal"), (257, 0.7, 5.0, "dupes"), (50, 0.995, 3.0, "nan"),
                            (1000, 0.0, 3.0, "normal"), (1000, 1.0, 3.0, "normal"), (64, 0.9, 0.5, "normal"),
                            (37, 0.995, 1e30, "spread"), (11, 0.37, 1e30, "spread"), (70, 0.9, 1e30, "spread")]:
    rows = 300 if kind == "spread" else 3
    scale = np.array([0.3, 1.5, 10.0], dtype=np.float32).reshape(3, 1, 1)
    if kind == "spread":
        # widely spread magnitudes: the lerp's fused multiply-add and the
        # float32 rank make a difference on many rows
        x = (rng.standard_normal((rows, 1, n)) * np.exp(rng.standard_normal((rows, 1, n)) * 3) + 2.0).astype(np.float32)
    elif kind == "dupes":
        x = (rng.integers(-8, 9, (3, 1, n)) / 4.0 * scale).astype(np.float32)
    else:
        x = (rng.standard_normal((3, 1, n)) * scale).astype(np.float32)
    if kind == "nan":
        x[1, 0, 7] = np.nan
    s = DDPMScheduler(thresholding=True, dynamic_thresholding_ratio=ratio, sample_max_value=smv)
    out = s._threshold_sample(torch.from_numpy(x.copy()))
    i = len(thresholds)
    thresholds.append({"n": n, "ratio": ratio, "sample_max_value": smv, "rows": rows,
                       "input": save(f"thresh_{i}_in.bin", x), "output": save(f"thresh_{i}_out.bin", out.numpy())})

# ---- configs: from_pretrained-like parse and from_config conversion ------------
CONFIGS = [
    {"_class_name": "DDPMScheduler", "_diffusers_version": "0.1.1", "beta_end": 0.02, "beta_schedule": "linear",
     "beta_start": 0.0001, "clip_sample": True, "num_train_timesteps": 1000, "trained_betas": None,
     "variance_type": "fixed_small", "foo": 1, "use_karras_sigmas": True, "set_alpha_to_one": False},
    {"_class_name": "DDIMScheduler", "_diffusers_version": "0.20.0", "beta_schedule": "scaled_linear",
     "beta_start": 0.00085, "beta_end": 0.012, "clip_sample": False, "steps_offset": 1,
     "prediction_type": "v_prediction", "timestep_spacing": "trailing", "skip_prk_steps": True,
     "variance_type": "learned_range"},
    {"_class_name": "DDPMScheduler", "num_train_timesteps": 500, "thresholding": True,
     "dynamic_thresholding_ratio": 0.9, "sample_max_value": 2.0, "rescale_betas_zero_snr": True,
     "_use_default_values": ["thresholding", "clip_sample_range"], "clip_sample_range": 3.0,
     "variance_type": "fixed_large"},
    {"_class_name": "DDIMScheduler", "set_alpha_to_one": False, "unknown_key": [1, 2]},
]
configs = []
for cfg in CONFIGS:
    first = CLASSES[cfg["_class_name"]].from_config(cfg)
    other = DDIMScheduler if cfg["_class_name"] == "DDPMScheduler" else DDPMScheduler
    conv = other.from_config(first.config)
    configs.append({"input": cfg, "parsed": public_config(first), "converted_class": other.__name__,
                    "converted": public_config(conv)})

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump({"generator": "tests/data/sched_extra/gen.py",
               "reference": f"diffusers 0.32.2, torch {torch.__version__} (CPU, float32, 1 thread), "
                            f"numpy {np.__version__}",
               "linspace": linspace, "schedules": schedules, "thresholds": thresholds, "timesteps": timesteps, "steps": steps,
               "configs": configs}, f, separators=(",", ":"))
print("wrote", OUT)
