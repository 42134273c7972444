#!/usr/bin/python3
"""How far the Python reference itself moves from the UnCLIP cases when it
sums in another order: runs every case of tests/data/unclip/cases with live
diffusers 0.32.2 + torch 1.13 (float32, mindone numpy noise, the shared
reference loader) on this machine, once per thread count in THREADS, and
records, per stored array, the largest over those runs of max / p99 / mean
|live - stored| and of the count above the case's outlier_atol.

usage: PYTHONPATH=<diffusers>:<reference>/shim:<reference>/transformers_stub:<reference> \
       /usr/bin/python3 gen_spread.py TESTS_DATA OUT.json [THREADS]   (default 1,2,3,4,6)

The public golden cases were made with 1 thread on a CPU whose OpenBLAS used
AVX-512 kernels, the b_* cases with 1 thread on an AVX2 machine (see
../unclip/README.md); torch with several threads, or on another CPU, sums in
another order.  At t = 999 of the
decoder and super-res stages one element that lands inside the x0 clip window
inherits a 2e4-times amplified rounding difference and spreads through the
next super-res steps, so the reference can miss the golden outlier rule by
itself (tests/test_unclip_pipeline.c uses this file to say so)."""
import json, os, platform, sys
import numpy as np, torch
import load_pipelines as lp

data, out = sys.argv[1], sys.argv[2]
thread_counts = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "1,2,3,4,6").split(",")]
root = os.path.join(data, "unclip")
cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
res = {"what": "live reference on this CPU vs the stored case, per case and array: the largest of each statistic "
               "over runs with these thread counts", "cpu": cpu, "threads": thread_counts,
       "torch": torch.__version__, "cases": {}}
dumps = {}


def hook_arrays(pipe):
    """Records what the golden stores, with forward hooks and a wrapped scheduler step."""
    rec = {}

    def keep(name, t):
        rec.setdefault(name, []).append(t.detach().clone().numpy())

    def proj_hook(m, i, o):
        keep("decoder_encoder_hidden_states", o[0])
        keep("additive_clip_time_embeddings", o[1])  # returns None: the output stays as it is

    pipe.text_proj.register_forward_hook(proj_hook)
    for stage, sch in (("prior", pipe.prior_scheduler), ("decoder", pipe.decoder_scheduler),
                       ("super_res", pipe.super_res_scheduler)):
        orig = sch.step

        def step(*a, _orig=orig, _stage=stage, **kw):
            r = _orig(*a, **kw)
            keep(_stage + "_latents_steps", r.prev_sample)
            return r
        sch.step = step
    return rec


for threads in thread_counts:
    torch.set_num_threads(threads)
    for name in sorted(os.listdir(os.path.join(root, "cases"))):
        cdir = os.path.join(root, "cases", name)
        c = json.load(open(os.path.join(cdir, "case.json")))
        pipe = lp.load_unclip(os.path.join(root, c["call"]["pipeline"]))
        rec = hook_arrays(pipe)
        g = c["call"]["generator"]
        gens = ([np.random.Generator(np.random.PCG64(s)) for s in g["seeds"]] if g["list"]
                else np.random.Generator(np.random.PCG64(g["seeds"])))
        live = {"image": pipe(c["call"]["prompt"], generator=gens, **c["call"]["kwargs"]).images}
        for k, v in rec.items():
            live[k] = np.stack(v) if k.endswith("_steps") else v[0]
        # the decoder's output and its upscale, as the pipeline computes them from the last decoder latents
        small = torch.from_numpy(live["decoder_latents_steps"][-1]).clamp(-1, 1)
        live["decoder_output"] = small.numpy()
        H = pipe.super_res_first.config.sample_size
        live["image_upscaled"] = torch.nn.functional.interpolate(small, size=[H, H], mode="bicubic", align_corners=False,
                                                                 antialias=True).numpy()
        one = {}
        for k, a in c["arrays"].items():
            if k not in live or a["dtype"] != "float32":
                continue
            ref = np.fromfile(os.path.join(cdir, a["file"]), dtype=np.float32).reshape(a["shape"])
            d = np.abs(live[k].astype(np.float64).reshape(ref.shape) - ref)
            t = c["suggested_tolerance"].get(k, {})
            one[k] = {"max": float(d.max()), "p99": float(np.percentile(d, 99)), "mean": float(d.mean()),
                      "n_over_outlier_atol": int((d > t.get("outlier_atol", np.inf)).sum())}
        prev = res["cases"].setdefault(name, {})
        for k, v in one.items():
            p = prev.setdefault(k, v)
            for stat in v:
                p[stat] = max(p[stat], v[stat])
        print(threads, name, {k: "%.1e/%d" % (v["p99"], v["n_over_outlier_atol"]) for k, v in one.items()})
json.dump(res, open(out, "w"), indent=1, sort_keys=True)
