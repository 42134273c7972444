"""Extra Stable Diffusion reference images for paths the golden cases do not
cover: guidance_rescale, clip_skip, DDIM with eta > 0, Euler with Karras
sigmas.  Made with the real diffusers 0.32.2 StableDiffusionPipeline on
torch 1.13 (CPU, float32) and mindone's numpy-Generator noise, on the golden
tiny-sd15-a pipeline.  Not run by the tests; regenerate with

  HF_HUB_OFFLINE=1 PYTHONPATH=<diffusers-0.32.2 and huggingface_hub parent>:<reference>/shim:\
<reference>/transformers_stub:<reference> /usr/bin/python3 gen.py

where <reference> is the shared Python reference folder (load_pipelines.py,
mindone_rng.py).  Writes <name>.npy (output_type="np" images) and manifest.json.
"""
import json
import os

import numpy as np

import load_pipelines as lp
from diffusers import DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler

HERE = os.path.dirname(os.path.abspath(__file__))
PIPE = os.path.join(HERE, "..", "sd", "pipelines", "tiny-sd15-a")
COMMON = dict(prompt=["a red fox in the snow", "an old lighthouse"], negative_prompt=["blurry", "dark"],
              seeds=[21, 22], num_inference_steps=6)
CASES = [
    ("rescale", "PNDMScheduler", {}, dict(guidance_rescale=0.7, guidance_scale=6.0)),
    ("clipskip", "PNDMScheduler", {}, dict(clip_skip=1)),
    ("eta_ddim", "DDIMScheduler", {}, dict(eta=0.8)),
    ("karras_euler", "EulerDiscreteScheduler", {"use_karras_sigmas": True}, {}),
]


def main():
    pipe = lp.load_sd(PIPE)
    base = PNDMScheduler.from_pretrained(os.path.join(PIPE, "scheduler")).config
    classes = {"PNDMScheduler": PNDMScheduler, "DDIMScheduler": DDIMScheduler,
               "EulerDiscreteScheduler": EulerDiscreteScheduler}
    manifest = {"pipeline": "sd/pipelines/tiny-sd15-a", "common": COMMON, "cases": []}
    for name, sched, overrides, kw in CASES:
        pipe.scheduler = classes[sched].from_config(base, **overrides)
        img = pipe(COMMON["prompt"], negative_prompt=COMMON["negative_prompt"],
                   generator=[np.random.Generator(np.random.PCG64(s)) for s in COMMON["seeds"]],
                   num_inference_steps=COMMON["num_inference_steps"], output_type="np", **kw).images
        np.save(os.path.join(HERE, name + ".npy"), img.astype(np.float32))
        manifest["cases"].append({"name": name, "scheduler": sched, "overrides": overrides, "kwargs": kw,
                                  "file": name + ".npy", "atol": 2e-4})
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
