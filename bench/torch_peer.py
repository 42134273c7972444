"""PyTorch/diffusers peer for bench/run.sh: the same model folder, timed the same way.

usage:
  torch_peer.py unet  MODEL_DIR BATCH THREADS REPS [TIMESTEP]   one UNet2DModel forward
  torch_peer.py ddim  MODEL_DIR STEPS BATCH THREADS REPS [SEED] DDIMPipeline.__call__(output_type="np")
  torch_peer.py check MODEL_DIR BENCH_UNET THREADS [BATCH]       max |torch - cdiffusers| of one forward
  torch_peer.py flops MODEL_DIR BATCH                            conv/linear/attention FLOPs of one forward

MODEL_DIR is a diffusers folder (model_index.json, unet/, scheduler/) such as
`cdiffusers make-synthetic` writes; the UNet is loaded with
UNet2DModel.from_pretrained from its safetensors file, so both sides run the
same weights.  unet/ddim: one untimed warm-up call, then REPS timed calls
(time.perf_counter); prints one JSON line like bench_unet/bench_ddim:
{"impl": "torch", "case": ..., "reps": [...], "median": ..., "min": ..., ...}.
The DDIM noise is numpy Generator(PCG64(SEED)).standard_normal in float64 cast
to float32 (what cdiffusers draws), so abs_sum = np.abs(image).sum() can be
compared with bench_ddim's.  Needs torch, numpy, diffusers and
huggingface_hub importable (see bench/run.sh for PYTHONPATH).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

try:  # diffusers 0.32 imports safetensors.torch lazily in places; load it first
    import safetensors.torch  # noqa: F401
except ImportError:
    pass


def blas_libs():
    """Shared objects mapped into this process whose name mentions BLAS."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in os.path.basename(p).lower() or "openblas" in p:
                libs.add(os.path.realpath(p))
    return sorted(libs)


def load_unet(model_dir):
    from diffusers import UNet2DModel
    return UNet2DModel.from_pretrained(os.path.join(model_dir, "unet")).eval()


def sample_shape(m, batch):
    s = m.config.sample_size
    h, w = (s, s) if isinstance(s, int) else tuple(s)
    return (batch, m.config.in_channels, h, w)


def timed(fn, reps):
    out = fn()  # warm-up
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return out, ts


def report(case, ts, threads, load_s, **extra):
    d = dict(impl="torch", case=case, reps=[round(v, 4) for v in ts], median=round(statistics.median(ts), 4),
             min=round(min(ts), 4), threads=threads, load_s=round(load_s, 3))
    d.update(extra)
    print(json.dumps(d), flush=True)


def cmd_unet(model_dir, batch, threads, reps, timestep=500):
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    m = load_unet(model_dir)
    load_s = time.perf_counter() - t0
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(sample_shape(m, batch)).astype(np.float32))
    with torch.inference_mode():
        out, ts = timed(lambda: m(x, timestep).sample, reps)
    report("unet_b%d" % batch, ts, torch.get_num_threads(), load_s, finite=bool(torch.isfinite(out).all()),
           blas=blas_libs())


def cmd_ddim(model_dir, steps, batch, threads, reps, seed=0):
    torch.set_num_threads(threads)
    from diffusers import DDIMPipeline, DDPMScheduler
    import diffusers.pipelines.ddim.pipeline_ddim as pd

    def numpy_randn(shape, generator=None, device=None, dtype=None, layout=None):
        # float64 standard normal from the numpy Generator, one cast (as cdiffusers draws)
        return torch.from_numpy(generator.standard_normal(shape).astype(np.float32)).to(dtype)

    pd.randn_tensor = numpy_randn
    t0 = time.perf_counter()
    unet = load_unet(model_dir)
    sched = DDPMScheduler.from_pretrained(os.path.join(model_dir, "scheduler"))
    pipe = DDIMPipeline(unet=unet, scheduler=sched)  # DDIMScheduler.from_config inside, as upstream
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0

    def run():
        g = np.random.Generator(np.random.PCG64(seed))
        return pipe(batch_size=batch, generator=g, num_inference_steps=steps, output_type="np").images

    img, ts = timed(run, reps)
    report("ddim%d_b%d" % (steps, batch), ts, torch.get_num_threads(), load_s,
           abs_sum=float(np.abs(img).sum()), scheduler=type(pipe.scheduler).__name__)


def cmd_check(model_dir, bench_unet, threads, batch=2):
    """One forward on the same input through both; prints max abs diff."""
    torch.set_num_threads(threads)
    m = load_unet(model_dir)
    t = 500
    x = np.random.default_rng(1).standard_normal(sample_shape(m, batch)).astype(np.float32)
    with torch.inference_mode():
        ref = m(torch.from_numpy(x), t).sample.numpy()
    with tempfile.TemporaryDirectory() as d:
        xin, yout = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
        np.save(xin, x)
        subprocess.run([bench_unet, os.path.join(model_dir, "unet"), str(batch), str(threads), "1", str(t),
                        "--input", xin, "--output", yout], check=True, stdout=subprocess.DEVNULL)
        got = np.load(yout)
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    print(json.dumps(dict(check="unet_forward", batch=batch, timestep=t, shape=list(ref.shape),
                          max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
                          max_abs_ref=float(np.abs(ref).max()))), flush=True)


def cmd_flops(model_dir, batch):
    """Counts 2*MACs of every Conv2d, Linear and attention matmul in one forward."""
    from diffusers.models.attention_processor import Attention
    m = load_unet(model_dir)
    total = {"conv": 0, "linear": 0, "attn": 0}

    def conv_hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total["conv"] += 2 * out.numel() * k

    def lin_hook(mod, inp, out):
        total["linear"] += 2 * out.numel() * mod.in_features

    def attn_hook(mod, inp, out):
        x = inp[0]
        b, c = x.shape[0], x.shape[1]
        n = x.shape[2] * x.shape[3] if x.dim() == 4 else x.shape[1]
        inner = mod.to_q.out_features
        total["attn"] += 2 * 2 * b * n * n * inner  # q k^T and attn v

    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.register_forward_hook(conv_hook)
        elif isinstance(mod, torch.nn.Linear):
            mod.register_forward_hook(lin_hook)
        elif isinstance(mod, Attention):
            mod.register_forward_hook(attn_hook)
    with torch.inference_mode():
        m(torch.zeros(sample_shape(m, batch)), 500)
    print(json.dumps(dict(batch=batch, gflop=round(sum(total.values()) / 1e9, 2),
                          parts={k: round(v / 1e9, 2) for k, v in total.items()})), flush=True)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, model_dir, rest = argv[1], argv[2], [int(a) if a.isdigit() else a for a in argv[3:]]
    if cmd == "unet":
        cmd_unet(model_dir, *rest)
    elif cmd == "ddim":
        cmd_ddim(model_dir, *rest)
    elif cmd == "check":
        cmd_check(model_dir, *rest)
    elif cmd == "flops":
        cmd_flops(model_dir, *rest)
    else:
        sys.exit("unknown command %r\n%s" % (cmd, __doc__))


if __name__ == "__main__":
    main(sys.argv)
