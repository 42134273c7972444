#!/usr/bin/python3
"""Reference vectors for the Stable Diffusion scheduler tests (tests/test_sched_sd_runs.c).

The golden SD pipeline cases store only the first UNet output, so the
multistep state (PNDM ets / Runge-Kutta warm-up, LMS derivatives, Heun's two
stages, DPM-Solver history, UniPC corrector) can only be checked beyond step 1
here: full runs of the real diffusers 0.32.2 schedulers (torch 1.13 CPU,
float32, numpy 1.24, scipy for LMS) for many config variants, each config made
from SD-1.5's PNDM scheduler_config.json exactly as a pipeline does
(`XScheduler.from_config(pipe.scheduler.config, **overrides)`, optionally
chained through other classes).

The "UNet" is a deterministic pseudo model that C can recompute bit for bit
from its own samples, so only the outputs are stored:
    hnoise(salt)[k]  = a 32-bit integer hash of (k, salt) mapped to a multiple of
                       1/16384 in [-2, 2) (exact in float32)
    x_0              = hnoise(0) * init_noise_sigma
    model_output_c   = 0.8f * scale_model_input(x_c, t_c) + 0.6f * hnoise(1000 + c)
    step noise_c     = hnoise(2000 + c)   (Euler ancestral, SDE DPM-Solver: randn_tensor patched)
float32 numpy arithmetic, one rounding per operation.  Shape (2, 4, 5, 5): the
UniPC history einsum then takes torch's BLAS path (K * numel >= 400) as with
real SD latents.

Also written: from_config conversion results for every pair of classes (and a
few chains with overrides), for the config tests.

CPU dependence: UniPC with solver_order >= 3 takes its rho coefficients from
torch.linalg.solve, i.e. OpenBLAS sgetrf_/sgetrs_, whose result depends on
the kernel family OpenBLAS picks for the CPU (the AVX-512 SkylakeX /
Cooperlake / SapphireRapids kernels fuse multiply-adds that the Haswell / Zen
kernels round twice; rhos differ by up to ~5 ulp).  The stored runs come
from the AVX-512 kernels, which the C library reproduces on every CPU, so the
default mode refuses to run on another kernel family (--any-cpu overrides).
`--avx2-variant` instead writes only those CPU-dependent runs, as torch
computes them with the Haswell / Zen kernels, to sd/avx2/ (the test compares
them with a tolerance).

Run (Debian python3 with python3-torch, python3-numpy, python3-scipy, python3-packaging,
python3-filelock; diffusers 0.32.2 sources and huggingface_hub on the path):

    PYTHONPATH=<diffusers-0.32.2 src>:<huggingface_hub src>:<python reference shim folder> HF_HUB_OFFLINE=1 \\
        /usr/bin/python3 tests/data/sched_extra/gen_sd.py [--any-cpu | --avx2-variant]

Output: tests/data/sched_extra/sd/manifest.json and run_*.bin (raw little-endian
float32, C order: [calls, 2, 4, 5, 5] samples after each scheduler.step).
"""
import ctypes
import json
import math
import os
import sys

import numpy as np
import torch

import diffusers.schedulers.scheduling_dpmsolver_multistep as dpm_mod
import diffusers.schedulers.scheduling_euler_ancestral_discrete as eulera_mod
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, LMSDiscreteScheduler, PNDMScheduler,
                       UniPCMultistepScheduler)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "sd")
SD_CONFIG = os.path.join(HERE, "..", "sd", "pipelines", "tiny-sd15-a", "scheduler", "scheduler_config.json")
torch.set_num_threads(1)
CLASSES = {c.__name__: c for c in [DDPMScheduler, DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler,
                                   EulerAncestralDiscreteScheduler, LMSDiscreteScheduler, HeunDiscreteScheduler,
                                   DPMSolverMultistepScheduler, UniPCMultistepScheduler]}
SHAPE = (2, 4, 5, 5)
M32 = np.uint64(0xFFFFFFFF)


def hnoise(salt, count=int(np.prod(SHAPE))):
    k = np.arange(count, dtype=np.uint64)
    h = (k * np.uint64(2654435761) + np.uint64(salt) * np.uint64(40503) + np.uint64(12345)) & M32
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & M32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(3266489917)) & M32
    h ^= h >> np.uint64(16)
    v = ((h >> np.uint64(8)) & np.uint64(0xFFFF)).astype(np.int64) - 32768
    return (v.astype(np.float32) / np.float32(16384.0)).reshape(SHAPE)


def jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "-Infinity" if v < 0 else ("Infinity" if v > 0 else "NaN")
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    return v


def public_config(s):
    d = {k: v for k, v in dict(s.config).items() if not k.startswith("_")}
    d["_class_name"] = type(s).__name__
    return jsonable(d)


def make(chain):
    """chain: [[class, overrides], ...] applied to SD-1.5's PNDM config."""
    with open(SD_CONFIG) as f:
        s = PNDMScheduler.from_config(json.load(f))
    for cls, ov in chain:
        s = CLASSES[cls].from_config(s.config, **ov)
    return s


def tvals(t):
    return [float(x) for x in t.tolist()]


class NoisePatch:
    def __init__(self):
        self.calls = 0
        self.salt = None

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        assert tuple(shape) == SHAPE, shape
        self.calls += 1
        return torch.from_numpy(hnoise(self.salt).copy()).to(dtype or torch.float32)


RUNS = [
    # PNDM
    ("pndm_sd", [["PNDMScheduler", {}]], 10),
    ("pndm_prk", [["PNDMScheduler", {"skip_prk_steps": False}]], 20),
    ("pndm_prk_vpred", [["PNDMScheduler", {"skip_prk_steps": False, "prediction_type": "v_prediction"}]], 15),
    ("pndm_linspace", [["PNDMScheduler", {"timestep_spacing": "linspace"}]], 7),
    ("pndm_trailing_alpha1", [["PNDMScheduler", {"timestep_spacing": "trailing", "set_alpha_to_one": True}]], 9),
    ("pndm_vpred", [["PNDMScheduler", {"prediction_type": "v_prediction"}]], 8),
    ("pndm_one_step", [["PNDMScheduler", {}]], 1),
    # Euler
    ("euler_sd", [["EulerDiscreteScheduler", {}]], 10),
    ("euler_karras", [["EulerDiscreteScheduler", {"use_karras_sigmas": True}]], 12),
    ("euler_exponential", [["EulerDiscreteScheduler", {"use_exponential_sigmas": True}]], 9),
    ("euler_leading", [["EulerDiscreteScheduler", {"timestep_spacing": "leading"}]], 10),
    ("euler_trailing", [["EulerDiscreteScheduler", {"timestep_spacing": "trailing"}]], 7),
    ("euler_vpred", [["EulerDiscreteScheduler", {"prediction_type": "v_prediction"}]], 8),
    ("euler_sample", [["EulerDiscreteScheduler", {"prediction_type": "sample"}]], 6),
    ("euler_log_linear", [["EulerDiscreteScheduler", {"interpolation_type": "log_linear"}]], 8),
    ("euler_final_sigma_min", [["EulerDiscreteScheduler", {"final_sigmas_type": "sigma_min"}]], 8),
    ("euler_continuous_vpred", [["EulerDiscreteScheduler", {"timestep_type": "continuous",
                                                            "prediction_type": "v_prediction"}]], 8),
    ("euler_zsnr_trailing_vpred", [["EulerDiscreteScheduler", {"rescale_betas_zero_snr": True,
                                                               "timestep_spacing": "trailing",
                                                               "prediction_type": "v_prediction"}]], 10),
    ("euler_karras_sigma_range", [["EulerDiscreteScheduler", {"use_karras_sigmas": True, "sigma_min": 0.1,
                                                              "sigma_max": 10.0}]], 8),
    ("euler_karras_log_linear", [["EulerDiscreteScheduler", {"use_karras_sigmas": True,
                                                             "interpolation_type": "log_linear"}]], 6),
    ("euler_one_step", [["EulerDiscreteScheduler", {}]], 1),
    # Euler ancestral
    ("eulera_sd", [["EulerAncestralDiscreteScheduler", {}]], 8),
    ("eulera_vpred", [["EulerAncestralDiscreteScheduler", {"prediction_type": "v_prediction"}]], 8),
    ("eulera_leading", [["EulerAncestralDiscreteScheduler", {"timestep_spacing": "leading"}]], 10),
    ("eulera_zsnr_trailing_vpred", [["EulerAncestralDiscreteScheduler", {"rescale_betas_zero_snr": True,
                                                                         "timestep_spacing": "trailing",
                                                                         "prediction_type": "v_prediction"}]], 9),
    # LMS
    ("lms_sd", [["LMSDiscreteScheduler", {}]], 10),
    ("lms_karras", [["LMSDiscreteScheduler", {"use_karras_sigmas": True}]], 10),
    ("lms_vpred", [["LMSDiscreteScheduler", {"prediction_type": "v_prediction"}]], 8),
    ("lms_sample", [["LMSDiscreteScheduler", {"prediction_type": "sample"}]], 6),
    ("lms_leading", [["LMSDiscreteScheduler", {"timestep_spacing": "leading"}]], 12),
    ("lms_exponential", [["LMSDiscreteScheduler", {"use_exponential_sigmas": True}]], 8),
    # Heun
    ("heun_sd", [["HeunDiscreteScheduler", {}]], 8),
    ("heun_karras", [["HeunDiscreteScheduler", {"use_karras_sigmas": True}]], 8),
    ("heun_vpred", [["HeunDiscreteScheduler", {"prediction_type": "v_prediction"}]], 6),
    ("heun_sample_clip", [["HeunDiscreteScheduler", {"prediction_type": "sample", "clip_sample": True,
                                                     "clip_sample_range": 1.5}]], 6),
    ("heun_leading", [["HeunDiscreteScheduler", {"timestep_spacing": "leading"}]], 7),
    ("heun_exp_schedule", [["HeunDiscreteScheduler", {"beta_schedule": "exp"}]], 6),
    ("heun_trailing_exponential", [["HeunDiscreteScheduler", {"timestep_spacing": "trailing",
                                                              "use_exponential_sigmas": True}]], 7),
    # DPM-Solver multistep
    ("dpm_sd_20", [["DPMSolverMultistepScheduler", {}]], 20),
    ("dpm_karras", [["DPMSolverMultistepScheduler", {"use_karras_sigmas": True}]], 8),
    ("dpm_karras_20", [["DPMSolverMultistepScheduler", {"use_karras_sigmas": True}]], 20),
    ("dpm_order3", [["DPMSolverMultistepScheduler", {"solver_order": 3}]], 12),
    ("dpm_order1", [["DPMSolverMultistepScheduler", {"solver_order": 1}]], 6),
    ("dpm_heun", [["DPMSolverMultistepScheduler", {"solver_type": "heun"}]], 10),
    ("dpm_dpmsolver_sigma_min", [["DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver",
                                                                  "final_sigmas_type": "sigma_min"}]], 10),
    ("dpm_dpmsolver_heun_o3", [["DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver",
                                                                "final_sigmas_type": "sigma_min",
                                                                "solver_order": 3}]], 12),
    ("dpm_dpmsolver_heun", [["DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver", "solver_type": "heun",
                                                             "final_sigmas_type": "sigma_min"}]], 10),
    ("dpm_sde_pp", [["DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}]], 10),
    ("dpm_sde_pp_heun_o3", [["DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++",
                                                             "solver_order": 3}]], 12),
    ("dpm_sde_pp_heun", [["DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++",
                                                          "solver_type": "heun"}]], 10),
    ("dpm_sde", [["DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver",
                                                  "final_sigmas_type": "sigma_min"}]], 10),
    ("dpm_sde_heun", [["DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver", "solver_type": "heun",
                                                       "final_sigmas_type": "sigma_min"}]], 10),
    ("dpm_vpred", [["DPMSolverMultistepScheduler", {"prediction_type": "v_prediction"}]], 10),
    ("dpm_sample_thresh", [["DPMSolverMultistepScheduler", {"prediction_type": "sample", "thresholding": True,
                                                            "sample_max_value": 1.5}]], 10),
    ("dpm_dpmsolver_thresh", [["DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver", "thresholding": True,
                                                               "final_sigmas_type": "sigma_min",
                                                               "dynamic_thresholding_ratio": 0.9,
                                                               "sample_max_value": 2.0}]], 8),
    ("dpm_euler_at_final_16", [["DPMSolverMultistepScheduler", {"euler_at_final": True, "lower_order_final": False,
                                                                "final_sigmas_type": "sigma_min"}]], 16),
    ("dpm_lu", [["DPMSolverMultistepScheduler", {"use_lu_lambdas": True}]], 10),
    ("dpm_exponential", [["DPMSolverMultistepScheduler", {"use_exponential_sigmas": True}]], 10),
    ("dpm_trailing", [["DPMSolverMultistepScheduler", {"timestep_spacing": "trailing"}]], 9),
    ("dpm_leading", [["DPMSolverMultistepScheduler", {"timestep_spacing": "leading"}]], 10),
    ("dpm_lambda_clipped_cos", [["DPMSolverMultistepScheduler", {"beta_schedule": "squaredcos_cap_v2",
                                                                 "lambda_min_clipped": -5.1}]], 10),
    ("dpm_zsnr_vpred_trailing", [["DPMSolverMultistepScheduler", {"rescale_betas_zero_snr": True,
                                                                  "prediction_type": "v_prediction",
                                                                  "timestep_spacing": "trailing",
                                                                  "final_sigmas_type": "zero"}]], 10),
    ("dpm_flow", [["DPMSolverMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction",
                                                   "flow_shift": 3.0}]], 10),
    # UniPC
    ("unipc_sd", [["UniPCMultistepScheduler", {}]], 10),
    ("unipc_bh1", [["UniPCMultistepScheduler", {"solver_type": "bh1"}]], 10),
    ("unipc_order3", [["UniPCMultistepScheduler", {"solver_order": 3}]], 12),
    ("unipc_order4", [["UniPCMultistepScheduler", {"solver_order": 4}]], 14),
    ("unipc_noise_pred", [["UniPCMultistepScheduler", {"predict_x0": False}]], 10),
    ("unipc_noise_pred_bh1_o3", [["UniPCMultistepScheduler", {"predict_x0": False, "solver_type": "bh1",
                                                              "solver_order": 3}]], 12),
    ("unipc_karras", [["UniPCMultistepScheduler", {"use_karras_sigmas": True}]], 10),
    ("unipc_karras_sigma_min", [["UniPCMultistepScheduler", {"use_karras_sigmas": True,
                                                             "final_sigmas_type": "sigma_min"}]], 10),
    ("unipc_vpred", [["UniPCMultistepScheduler", {"prediction_type": "v_prediction"}]], 10),
    ("unipc_disable_corrector", [["UniPCMultistepScheduler", {"disable_corrector": [0, 2]}]], 10),
    ("unipc_no_lower_final", [["UniPCMultistepScheduler", {"lower_order_final": False}]], 10),
    ("unipc_sample_thresh", [["UniPCMultistepScheduler", {"prediction_type": "sample", "thresholding": True,
                                                          "sample_max_value": 1.5}]], 10),
    ("unipc_final_sigma_min", [["UniPCMultistepScheduler", {"final_sigmas_type": "sigma_min"}]], 10),
    ("unipc_trailing", [["UniPCMultistepScheduler", {"timestep_spacing": "trailing"}]], 9),
    ("unipc_leading", [["UniPCMultistepScheduler", {"timestep_spacing": "leading"}]], 10),
    ("unipc_exponential_sigma_min", [["UniPCMultistepScheduler", {"use_exponential_sigmas": True,
                                                                  "final_sigmas_type": "sigma_min"}]], 10),
    ("unipc_flow", [["UniPCMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}]],
     10),
    # chains: hidden keys of other classes are used where diffusers reads them
    ("chain_euler_range_to_heun_karras", [["EulerDiscreteScheduler", {"sigma_min": 0.1, "sigma_max": 10.0}],
                                          ["HeunDiscreteScheduler", {"use_karras_sigmas": True}]], 6),
    ("chain_ddim_zsnr_to_pndm_to_euler", [["DDIMScheduler", {"rescale_betas_zero_snr": True,
                                                             "prediction_type": "v_prediction"}],
                                          ["PNDMScheduler", {}], ["EulerDiscreteScheduler", {}]], 8),
    ("chain_dpm_to_unipc", [["DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "solver_order": 3,
                                                             "solver_type": "heun"}],
                            ["UniPCMultistepScheduler", {}]], 10),
]


def run_one(name, chain, n, noise_patch, out=None):
    s = make(chain)
    s.set_timesteps(n)
    entry = {"name": name, "chain": jsonable(chain), "num_inference_steps": n, "config": public_config(s),
             "timesteps": tvals(s.timesteps), "timesteps_dtype": str(s.timesteps.dtype).replace("torch.", ""),
             "shape": list(SHAPE)}
    if hasattr(s, "sigmas") and isinstance(s.sigmas, torch.Tensor) and type(s).__name__ not in (
            "DDPMScheduler", "DDIMScheduler", "PNDMScheduler"):
        entry["sigmas"] = [float(x) for x in s.sigmas.tolist()]
    init = s.init_noise_sigma
    entry["init_noise_sigma"] = float(init)
    x = torch.from_numpy(hnoise(0).copy()) * init
    assert x.dtype == torch.float32
    outs, needs = [], []
    for c, t in enumerate(s.timesteps):
        xin = s.scale_model_input(x, t)
        m = torch.from_numpy(np.float32(0.8) * xin.numpy() + np.float32(0.6) * hnoise(1000 + c))
        noise_patch.salt = 2000 + c
        before = noise_patch.calls
        x = s.step(m, t, x).prev_sample
        needs.append(noise_patch.calls > before)
        outs.append(x.numpy().copy())
    arr = np.ascontiguousarray(np.stack(outs).astype(np.float32))
    fname = f"run_{name}.bin"
    arr.tofile(os.path.join(out or OUT, fname))
    entry.update({"file": fname, "calls": len(outs), "needs_noise": needs})
    return entry


AVX512_CORES = ("SkylakeX", "Cooperlake", "SapphireRapids")
AVX2_CORES = ("Haswell", "Zen")


def openblas_core():
    """Kernel family of the OpenBLAS that torch's LAPACK calls run on, or None."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def cpu_dependent(chain):
    """UniPC order >= 3: the rhos come from torch.linalg.solve (see the docstring)."""
    s = make(chain)
    return isinstance(s, UniPCMultistepScheduler) and s.config.solver_order >= 3


def avx2_variant(patch):
    core = openblas_core()
    if core not in AVX2_CORES:
        sys.exit(f"--avx2-variant needs OpenBLAS's Haswell / Zen kernels, this one runs {core}")
    out = os.path.join(OUT, "avx2")
    os.makedirs(out, exist_ok=True)
    runs = []
    for name, chain, n in RUNS:
        if cpu_dependent(chain):
            e = run_one(name, chain, n, patch, out)
            runs.append({"name": name, "file": e["file"], "calls": e["calls"]})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"openblas_core": core, "runs": runs}, f, indent=1)
    print(f"{len(runs)} CPU-dependent runs with OpenBLAS {core} kernels in {out}")


def main():
    os.makedirs(OUT, exist_ok=True)
    patch = NoisePatch()
    eulera_mod.randn_tensor = patch
    dpm_mod.randn_tensor = patch
    if "--avx2-variant" in sys.argv[1:]:
        avx2_variant(patch)
        return
    core = openblas_core()
    if core not in AVX512_CORES and "--any-cpu" not in sys.argv[1:]:
        sys.exit(f"OpenBLAS runs its {core} kernels here: the UniPC order >= 3 runs would not be the AVX-512 "
                 "results the C library reproduces (use an AVX-512 machine, or --any-cpu / --avx2-variant)")
    runs = [run_one(name, chain, n, patch) for name, chain, n in RUNS]
    conversions = []
    names = list(CLASSES)
    for a in names:
        for b in names:
            s = make([[a, {}], [b, {}]])
            conversions.append({"chain": [[a, {}], [b, {}]], "config": public_config(s)})
    for chain in [
        [["DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "solver_order": 3,
                                          "algorithm_type": "sde-dpmsolver++"}],
         ["EulerDiscreteScheduler", {}], ["UniPCMultistepScheduler", {}], ["DPMSolverMultistepScheduler", {}]],
        [["DPMSolverMultistepScheduler", {"algorithm_type": "deis", "final_sigmas_type": "sigma_min"}],
         ["DDPMScheduler", {}]],
        [["UniPCMultistepScheduler", {"solver_type": "midpoint", "disable_corrector": [1, 3]}],
         ["DPMSolverMultistepScheduler", {"solver_type": "bh1"}], ["HeunDiscreteScheduler", {}]],
        [["DDPMScheduler", {"variance_type": "fixed_large", "clip_sample": True}],
         ["DPMSolverMultistepScheduler", {}], ["DDPMScheduler", {}]],
        [["EulerDiscreteScheduler", {"sigma_min": 0.5, "timestep_type": "continuous"}],
         ["LMSDiscreteScheduler", {}], ["EulerAncestralDiscreteScheduler", {}], ["EulerDiscreteScheduler", {}]],
    ]:
        conversions.append({"chain": chain, "config": public_config(make(chain))})
    manifest = {"shape": list(SHAPE), "runs": runs, "conversions": conversions}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, allow_nan=False)
    total = sum(os.path.getsize(os.path.join(OUT, r["file"])) for r in runs)
    print(f"{len(runs)} runs ({total} bytes), {len(conversions)} conversions")


if __name__ == "__main__":
    main()
