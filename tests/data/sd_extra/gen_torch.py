"""Reference images with torch's own generator (no mindone patch): diffusers
0.32.2 StableDiffusionPipeline with torch.Generator("cpu").manual_seed(s),
Euler ancestral (per-step noise from the same generators).  Debian's torch
1.13 takes its AVX2 normal kernel on an AVX2 CPU, so the matching cdiffusers
kind is torch-cpu-avx2.  Same PYTHONPATH as gen.py; writes torch_*.npy and
manifest_torch.json."""
import json
import os

import numpy as np
import torch

from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
PIPE = os.path.join(HERE, "..", "sd", "pipelines", "tiny-sd15-a")


def main():
    j = lambda c: os.path.join(PIPE, c)  # noqa: E731
    te, unet, vae = CLIPTextModel.from_pretrained(j("text_encoder")), UNet2DConditionModel.from_pretrained(j("unet")), \
        AutoencoderKL.from_pretrained(j("vae"))
    for m in (te, unet, vae):
        m.eval()
    sched = EulerAncestralDiscreteScheduler.from_pretrained(j("scheduler"))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=CLIPTokenizer.from_pretrained(j("tokenizer")),
                                   unet=unet, scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    cases = []
    for name, seeds in (("torch_list", [5, 6]), ("torch_single", [77])):
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        img = pipe("a lighthouse at dusk", generator=gens if len(gens) > 1 else gens[0],
                   num_images_per_prompt=2, num_inference_steps=5, output_type="np").images
        np.save(os.path.join(HERE, name + ".npy"), img.astype(np.float32))
        cases.append({"name": name, "seeds": seeds, "file": name + ".npy", "atol": 2e-4})
    manifest = {"pipeline": "sd/pipelines/tiny-sd15-a", "scheduler": "EulerAncestralDiscreteScheduler",
                "rng": "torch-cpu-avx2", "prompt": "a lighthouse at dusk", "num_images_per_prompt": 2,
                "num_inference_steps": 5, "torch": torch.__version__, "cases": cases}
    with open(os.path.join(HERE, "manifest_torch.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
