#!/usr/bin/python3
"""Stable Diffusion XL through the CLI, as the held-back cases are checked:
every golden case of tests/data/sdxl (both tiny pipelines, every kwarg the
cases use: prompt_2, negative_prompt(_2) with force_zeros, size
micro-conditioning, guidance_rescale, schedulers, generator lists) written as
.npy by `generate` within the case tolerance; 1 and 2 threads the same bytes;
the PNG records the SDXL parameters and `regenerate` makes the same bytes;
bad folders and options give one clear line.
Usage: test_cli_sdxl.py CLI TESTDATA.  Exit 77 when numpy is missing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed")
    sys.exit(77)

CLI, DATA = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngparams import png_params  # noqa: E402
ROOT = os.path.join(DATA, "sdxl")
N_CASES = 16
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(args):
    return subprocess.run([CLI] + args, capture_output=True, text=True)


def strings(v):
    return [] if v is None else [v] if isinstance(v, str) else list(v)


def case_args(c):
    call, kw = c["call"], c["call"]["kwargs"]
    a = ["generate", os.path.join(ROOT, call["pipeline"]), "--threads", "2"]
    for opt, key in (("--prompt", None), ("--prompt-2", "prompt_2"), ("--negative-prompt", "negative_prompt"),
                     ("--negative-prompt-2", "negative_prompt_2")):
        for v in strings(call["prompt"] if key is None else kw.get(key)):
            a += [opt, v]
    for k, opt in (("num_inference_steps", "--steps"), ("guidance_scale", "--guidance-scale"),
                   ("guidance_rescale", "--guidance-rescale"), ("num_images_per_prompt", "--num-images-per-prompt"),
                   ("height", "--height"), ("width", "--width")):
        if k in kw:
            a += [opt, repr(kw[k])]
    for k, opt in (("original_size", "--original-size"), ("crops_coords_top_left", "--crops-coords-top-left"),
                   ("target_size", "--target-size")):
        if k in kw:
            a += [opt, "%d,%d" % tuple(kw[k])]
    sch = call["scheduler"]
    a += ["--scheduler", sch["class"]]
    if sch.get("from_config_overrides", {}).get("use_karras_sigmas"):
        a += ["--karras"]
    g = call["generator"]
    for s in (g["seeds"] if g["list"] else [g["seeds"]]):
        a += ["--seed", str(s)]
    return a


tmp = tempfile.mkdtemp()
try:
    ran = 0
    for name in sorted(os.listdir(os.path.join(ROOT, "cases"))):
        cdir = os.path.join(ROOT, "cases", name)
        c = json.load(open(os.path.join(cdir, "case.json")))
        out = os.path.join(tmp, name + ".npy")
        p = run(case_args(c) + ["--quiet", "--out", out])
        if p.returncode != 0:
            check(False, "%s: generate failed: %s" % (name, p.stderr.strip()[:200]))
            continue
        ran += 1
        a = c["arrays"]["image"]
        want = np.fromfile(os.path.join(cdir, a["file"]), np.float32).reshape(a["shape"])
        got = np.load(out)
        tol = c["suggested_tolerance"]["image"]["atol"]
        err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        check(err <= tol, "%s: image within %g (max error %.3g)" % (name, tol, err))
    check(ran == N_CASES, "ran the %d SDXL cases through the CLI (ran %d)" % (N_CASES, ran))

    # a batch slot equals the image made alone: image 2 of the guide's batch (generators 0..3), alone with seed 2
    c = json.load(open(os.path.join(ROOT, "cases", "seeddoc_gen_seeds0to3_nipp4", "case.json")))
    batch = os.path.join(tmp, "seeddoc_gen_seeds0to3_nipp4.npy")
    alone = os.path.join(tmp, "alone.npy")
    p = run(["generate", os.path.join(ROOT, c["call"]["pipeline"]), "--prompt", c["call"]["prompt"], "--seed", "2",
             "--quiet", "--out", alone])
    check(p.returncode == 0 and os.path.exists(batch) and np.load(alone)[0].tobytes() == np.load(batch)[2].tobytes(),
          "image 2 of a 4-generator batch equals the same image made alone: the same bytes")
    # threads, the PNG and regenerate, on the micro-conditioning case
    c = json.load(open(os.path.join(ROOT, "cases", "microcond_orig_crop_target", "case.json")))
    args = case_args(c)
    one, two = os.path.join(tmp, "one.npy"), os.path.join(tmp, "two.npy")
    run(args[:2] + ["--threads", "1"] + args[4:] + ["--quiet", "--out", one])
    run(args + ["--quiet", "--out", two])
    check(os.path.exists(one) and open(one, "rb").read() == open(two, "rb").read(), "1 and 2 threads: the same bytes")
    png, regen = os.path.join(tmp, "a.png"), os.path.join(tmp, "b.png")
    p = run(args + ["--prompt-2", "a second prompt", "--negative-prompt-2", "blurry", "--quiet", "--out", png])
    p2 = run(["regenerate", png, args[1], "--quiet", "--out", regen])
    check(p.returncode == 0 and p2.returncode == 0 and open(png, "rb").read() == open(regen, "rb").read(),
          "regenerate an SDXL PNG: the same bytes (%s)" % (p.stderr + p2.stderr).strip()[:120])
    params = png_params(png) if os.path.exists(png) else {}
    check(params.get("prompt_2") == ["a second prompt"] and params.get("original_size") == [4096, 3072] and
          params.get("pipeline") == "StableDiffusionXLPipeline", "the PNG records prompt_2 and original_size")

    # tokenize --tokenizer 2: tokenizer_2's golden ids ("!" is its pad token, id 0)
    lines = [json.loads(l) for l in open(os.path.join(ROOT, "tokenizer_2_golden.jsonl"))]
    bang = [x for x in lines if x["content_differs_from_tokenizer"]][:5] + lines[:3]
    model = os.path.join(ROOT, "pipelines", "tiny-sdxl-a")
    good = all(run(["tokenize", model, x["text"], "--tokenizer", "2"]).stdout.split() ==
               [str(i) for i in x["input_ids"]] for x in bang)
    check(good, "tokenize --tokenizer 2 gives tokenizer_2's golden ids (%d strings)" % len(bang))
    p = run(["tokenize", os.path.join(DATA, "sd", "pipelines", "tiny-sd15-a"), "hi", "--tokenizer", "2"])
    check(p.returncode == 1 and "tokenizer_2" in p.stderr, "tokenize --tokenizer 2 on an SD 1.5 folder: one line")
    # bad folders and options: one line each
    model = os.path.join(ROOT, "pipelines", "tiny-sdxl-a")
    broken = os.path.join(tmp, "broken")
    shutil.copytree(model, broken)
    shutil.rmtree(os.path.join(broken, "text_encoder_2"))
    p = run(["generate", broken, "--prompt", "a cat", "--steps", "2", "--seed", "0", "--quiet", "--out",
             os.path.join(tmp, "x.npy")])
    check(p.returncode == 1 and "text_encoder_2" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
          "a folder without text_encoder_2: %s" % p.stderr.strip()[:120])
    # another pipeline's text_encoder_2 (hidden 16, projection 10): the UNet's cross_attention_dim disagrees
    bad = os.path.join(tmp, "bad")
    shutil.copytree(model, bad)
    shutil.rmtree(os.path.join(bad, "text_encoder_2"))
    shutil.copytree(os.path.join(ROOT, "pipelines", "tiny-sdxl-b-f16", "text_encoder_2"),
                    os.path.join(bad, "text_encoder_2"))
    p = run(["generate", bad, "--prompt", "a cat", "--steps", "2", "--seed", "0", "--quiet", "--out",
             os.path.join(tmp, "y.npy")])
    check(p.returncode == 1 and ("cross_attention_dim" in p.stderr or "projection_class_embeddings_input_dim" in p.stderr)
          and "unet/config.json" in p.stderr and len(p.stderr.strip().splitlines()) == 1 and
          not os.path.exists(os.path.join(tmp, "y.npy")),
          "encoders that disagree with the UNet: %s" % p.stderr.strip()[:140])
    p = run(["generate", model, "--prompt", "a cat", "--steps", "2", "--seed", "0", "--height", "60", "--quiet",
             "--out", os.path.join(tmp, "z.npy")])
    check(p.returncode == 2 and "multiple of 8" in p.stderr, "a height not a multiple of 8: usage error")
    p = run(["generate", os.path.join(DATA, "sd", "pipelines", "tiny-sd15-a"), "--prompt", "a cat", "--prompt-2", "x",
             "--steps", "2", "--seed", "0", "--quiet", "--out", os.path.join(tmp, "w.npy")])
    check(p.returncode == 2 and "Stable Diffusion XL" in p.stderr, "--prompt-2 on an SD 1.5 folder: usage error")
finally:
    shutil.rmtree(tmp)

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
