"""PyTorch/diffusers peer for bench/unclip/run.sh: one UnCLIPPipeline run, timed per stage.

usage: torch_unclip.py MODEL_DIR [--prompt P] [--seed S] [--prior-steps N] [--decoder-steps N]
                       [--super-res-steps N] [--threads T] [--dump DIR]

MODEL_DIR is the folder `cdiffusers make-synthetic models/karlo ...` writes; it is loaded with the
Python reference's `load_pipelines.load_unclip` (diffusers 0.32.2 UnCLIPPipeline, the transformers
stand-in text encoder, mindone's numpy noise patched into the pipeline and scheduler modules), so
both sides run the same safetensors files and the same noise.  One generation with
np.random.Generator(PCG64(S)), default guidance (4.0 / 8.0), output_type="np", under
torch.no_grad (the pipeline's own decorator), torch.set_num_threads(T).  No warm-up run (as
bench_unclip): loading is not timed.

Stage boundaries, the same as bench_unclip's (time.perf_counter):
  t0 = pipe(...) called;  i0 = the prior's initial noise drawn (first prepare_latents returns);
  e0, e1, e2 = the last step() of prior_scheduler, decoder_scheduler, super_res_scheduler returns;
  t_end = pipe(...) returned.
  text = i0 - t0, prior = e0 - i0, decoder = e1 - e0 (post_process_latents, text_proj, decoder loop),
  super_res = e2 - e1 (clamp, upscale, super-res loop), post = t_end - e2;
  per loop the first step (from its initial noise) and the mean of the other steps.
The wrappers only take timestamps; the arithmetic is the pipeline's own.  At the end of loading
and of each stage the process's RSS (VmRSS) and its peak so far (VmHWM) are recorded.

--dump DIR writes prompt_embeds.npy, image_embeddings.npy, image_upscaled.npy (channels 3:6 of the
first super-res UNet input) and image.npy, as bench_unclip does.
Prints one JSON line like bench_unclip's, with "impl": "torch" and "blas" (BLAS libraries mapped).
Needs torch, numpy, diffusers 0.32.2, huggingface_hub and the reference folder (load_pipelines,
mindone_rng, transformers_stub, shim) importable: see run.sh for PYTHONPATH.
"""
import argparse
import json
import os
import time

import numpy as np
import torch

try:  # diffusers 0.32 imports safetensors.torch lazily in places; load it first
    import safetensors.torch  # noqa: F401
except ImportError:
    pass


def read_rss():
    """(VmRSS, VmHWM) of this process in MiB: now, and the peak so far (what /usr/bin/time reports)."""
    now = peak = -1.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    now = float(line.split()[1]) / 1024.0
                elif line.startswith("VmHWM:"):
                    peak = float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return now, peak


def blas_libs():
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in os.path.basename(p).lower():
                libs.add(os.path.realpath(p))
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt", default="a big red frog on a green leaf")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prior-steps", type=int, default=25)
    ap.add_argument("--decoder-steps", type=int, default=25)
    ap.add_argument("--super-res-steps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dump")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    import load_pipelines as lp

    t = time.perf_counter()
    pipe = lp.load_unclip(a.model)
    load_s = time.perf_counter() - t
    rss = {"load": read_rss()}  # boundary -> (VmRSS, VmHWM) MiB

    ev = {}      # boundary name -> perf_counter time
    keep = {}    # arrays for --dump

    orig_prepare = pipe.prepare_latents
    calls = {"prepare": 0}

    def prepare_latents(*args, **kw):
        out = orig_prepare(*args, **kw)
        calls["prepare"] += 1
        ev["i%d" % (calls["prepare"] - 1)] = time.perf_counter()
        if calls["prepare"] == 1:
            rss["text"] = read_rss()
        return out

    pipe.prepare_latents = prepare_latents

    def wrap_step(sched, key, stage):
        orig = sched.step
        n = {"i": 0}

        def step(*args, **kw):
            out = orig(*args, **kw)
            n["i"] += 1
            if n["i"] == 1:
                ev[key + "_first"] = time.perf_counter()
            if n["i"] == len(sched.timesteps):
                ev[key] = time.perf_counter()
                rss[stage] = read_rss()
            return out

        sched.step = step

    wrap_step(pipe.prior_scheduler, "e0", "prior")
    wrap_step(pipe.decoder_scheduler, "e1", "decoder")
    wrap_step(pipe.super_res_scheduler, "e2", "super_res")

    if a.dump:
        prior_fwd, tp_fwd, sr_fwd = pipe.prior.forward, pipe.text_proj.forward, pipe.super_res_first.forward

        def prior_forward(*args, **kw):
            if "prompt_embeds" not in keep:
                keep["prompt_embeds"] = kw["proj_embedding"].detach().numpy().copy()
            return prior_fwd(*args, **kw)

        def text_proj_forward(*args, **kw):
            keep["image_embeddings"] = kw["image_embeddings"].detach().numpy().copy()
            return tp_fwd(*args, **kw)

        def sr_forward(*args, **kw):
            if "image_upscaled" not in keep:
                x = kw["sample"] if "sample" in kw else args[0]
                keep["image_upscaled"] = x[:, x.shape[1] // 2:].detach().numpy().copy()
            return sr_fwd(*args, **kw)

        pipe.prior.forward, pipe.text_proj.forward, pipe.super_res_first.forward = \
            prior_forward, text_proj_forward, sr_forward

    g = np.random.Generator(np.random.PCG64(a.seed))
    t0 = time.perf_counter()
    img = pipe(a.prompt, generator=g, prior_num_inference_steps=a.prior_steps,
               decoder_num_inference_steps=a.decoder_steps, super_res_num_inference_steps=a.super_res_steps,
               output_type="np").images
    t_end = time.perf_counter()
    rss["post"] = read_rss()

    names = ["text", "prior", "decoder", "super_res", "post"]
    stages = {"text": ev["i0"] - t0, "prior": ev["e0"] - ev["i0"], "decoder": ev["e1"] - ev["e0"],
              "super_res": ev["e2"] - ev["e1"], "post": t_end - ev["e2"]}
    if a.dump:
        keep["image"] = img
        os.makedirs(a.dump, exist_ok=True)
        for k, v in keep.items():
            np.save(os.path.join(a.dump, k + ".npy"), np.ascontiguousarray(v, dtype=np.float32))
    print(json.dumps(dict(
        impl="torch", case="unclip_%d_%d_%d" % (a.prior_steps, a.decoder_steps, a.super_res_steps),
        threads=torch.get_num_threads(), load_s=round(load_s, 3), load_rss_mib=round(rss["load"][0]),
        stages={k: round(v, 3) for k, v in stages.items()}, total=round(t_end - t0, 3),
        loops={k: dict(steps=n, first_step=round(ev[e + "_first"] - ev[i], 3),
                       rest_per_step=round((ev[e] - ev[e + "_first"]) / (n - 1), 3))
               for k, n, i, e in (("prior", a.prior_steps, "i0", "e0"), ("decoder", a.decoder_steps, "i1", "e1"),
                                  ("super_res", a.super_res_steps, "i2", "e2"))},
        rss_at_end_mib={k: round(rss[k][0]) for k in names},
        peak_rss_so_far_mib={k: round(rss[k][1]) for k in ["load"] + names},
        abs_sum=float(np.abs(img).sum()), blas=blas_libs())), flush=True)


if __name__ == "__main__":
    main()
