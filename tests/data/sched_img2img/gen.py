"""Reference values for tests/test_sched_img2img.c (the schedulers without public img2img goldens).

For each case: SD-1.5's PNDM scheduler_config.json (tests/data/sd/pipelines/tiny-sd15-a) converted with
diffusers 0.32.2's X.from_config(config, **overrides), set_timesteps(N), the img2img strength rule
(init_timestep = min(int(N * strength), N), t_start = max(N - init_timestep, 0), begin = t_start * order),
set_begin_index(begin), then as StableDiffusionImg2ImgPipeline / the 4-channel inpaint pipeline drive it:
  init    = add_noise(x0, noise, timesteps[:1])               (before any step)
  per call i: scaled[i] = scale_model_input(latents, t_i); latents = step(model[i], t_i, latents).prev_sample
  blend1  = add_noise(x0, noise, timesteps[1:2]) right after call 0 (step_index = begin + 1)
Inputs are seeded numpy float32 draws.  Writes manifest.json and <case>_*.f32.bin (little-endian float32, C order).

Run from the repository root with the Python reference on PYTHONPATH (diffusers 0.32.2 and torch,
as the golden data's reference README describes):
  python3 tests/data/sched_img2img/gen.py
"""
import json
import os

import numpy as np
import torch

import diffusers

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "sd", "pipelines", "tiny-sd15-a", "scheduler", "scheduler_config.json")
B, C, H, W = 2, 4, 4, 4

CASES = [
    ("lms_s0.7", "LMSDiscreteScheduler", {}, 10, 0.7),
    ("lms_karras_s0.45", "LMSDiscreteScheduler", {"use_karras_sigmas": True}, 10, 0.45),
    ("heun_s0.35", "HeunDiscreteScheduler", {}, 10, 0.35),
    ("heun_s0.75", "HeunDiscreteScheduler", {}, 10, 0.75),
    ("dpmpp2m_s0.7", "DPMSolverMultistepScheduler", {}, 10, 0.7),
    ("dpmpp2m_karras_s0.6", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, 10, 0.6),
    ("dpmpp2m_n20_s0.5", "DPMSolverMultistepScheduler", {}, 20, 0.5),
    ("unipc_s0.7", "UniPCMultistepScheduler", {}, 10, 0.7),
    ("unipc_s0.55", "UniPCMultistepScheduler", {}, 12, 0.55),
    ("euler_s0.5", "EulerDiscreteScheduler", {}, 10, 0.5),
]


def save(name, arr):
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    a.tofile(os.path.join(HERE, name))
    return {"file": name, "shape": list(a.shape)}


def main():
    with open(CONFIG) as f:
        base_cfg = json.load(f)
    base = diffusers.PNDMScheduler.from_config(base_cfg)
    manifest = {"reference": "diffusers %s, torch %s" % (diffusers.__version__, torch.__version__),
                "shape": [B, C, H, W], "cases": {}}
    for k, (name, cls, overrides, n, strength) in enumerate(CASES):
        sch = getattr(diffusers, cls).from_config(base.config, **overrides)
        sch.set_timesteps(n)
        full = [float(t) for t in sch.timesteps]
        init_timestep = min(int(n * strength), n)
        t_start = max(n - init_timestep, 0)
        begin = t_start * sch.order
        timesteps = sch.timesteps[begin:]
        sch.set_begin_index(begin)
        rng = np.random.default_rng(1000 + k)
        x0 = rng.standard_normal((B, C, H, W)).astype(np.float32) * np.float32(0.8)
        noise = rng.standard_normal((B, C, H, W)).astype(np.float32)
        T = len(timesteps)
        model = rng.standard_normal((T, B, C, H, W)).astype(np.float32)
        x0_t, noise_t = torch.from_numpy(x0), torch.from_numpy(noise)
        init = sch.add_noise(x0_t, noise_t, timesteps[:1].repeat(B))
        latents = init.clone()
        scaled, after = [], []
        blend1 = None
        for i, t in enumerate(timesteps):
            scaled.append(sch.scale_model_input(latents, t).numpy().copy())
            latents = sch.step(torch.from_numpy(model[i]), t, latents, return_dict=False)[0]
            after.append(latents.numpy().copy())
            if i == 0 and T > 1:
                blend1 = sch.add_noise(x0_t, noise_t, timesteps[1:2]).numpy().copy()
        entry = {
            "class": cls, "from_config_overrides": overrides, "num_inference_steps": n, "strength": strength,
            "init_timestep": init_timestep, "t_start": t_start, "order": sch.order, "begin": begin,
            "timesteps_full": full, "timesteps": [float(t) for t in timesteps],
            "x0": save(name + "_x0.f32.bin", x0), "noise": save(name + "_noise.f32.bin", noise),
            "model": save(name + "_model.f32.bin", model), "init": save(name + "_init.f32.bin", init.numpy()),
            "scaled": save(name + "_scaled.f32.bin", np.stack(scaled)),
            "latents": save(name + "_latents.f32.bin", np.stack(after)),
            "blend1": save(name + "_blend1.f32.bin", blend1),
        }
        manifest["cases"][name] = entry
        print(name, cls, "begin", begin, "calls", T)
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
