#!/usr/bin/python3
"""The CLI contract on golden cases: `generate` writes the .npy that
output_type="np" gives (within the case tolerance) and prints the guide's
abs_sum; identical bytes with --threads 1 and 2 and across runs; `randn`
writes the initial noise bit for bit; PNGs carry their parameters.
Usage: test_cli_golden.py CLI TESTDATA.  Exit 77 when numpy is missing."""
import json
import os
import subprocess
import sys
import tempfile
import zlib

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed")
    sys.exit(77)

CLI, DATA = sys.argv[1], sys.argv[2]
failures = []
passes = []
# What tests/data holds and this script runs: each loop counts its cases, so an
# emptied or truncated folder (or a filter that skips everything) fails.
N_DDPM_CASES, N_DDPM_SYNTHETIC = 11, 1  # the synthetic full-size case is left to the C golden test
N_REPEAT_CASES = 2  # ddim_batch4_gen_list, ddpm_10step: threads / PNG repeatability
N_SD_CASES, N_SD_PROMPTS = 3, 3
ran = {"ddpm": 0, "synthetic": 0, "repeat": 0, "randn": 0, "sd": 0, "tokenize": 0}


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    (passes if cond else failures).append(what)


def run(args):
    p = subprocess.run([CLI] + args, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stderr)
    return p


def png_text(path):
    b = open(path, "rb").read()
    i, out = 8, {}
    while i < len(b):
        n = int.from_bytes(b[i:i + 4], "big")
        typ = b[i + 4:i + 8]
        body = b[i + 8:i + 8 + n]
        if typ == b"tEXt":
            k, v = body.split(b"\0", 1)
            out[k.decode()] = v.decode("latin-1")
        elif typ == b"iTXt":
            k, rest = body.split(b"\0", 1)
            comp, rest = rest[0], rest[2:]
            _, rest = rest.split(b"\0", 1)
            _, v = rest.split(b"\0", 1)
            out[k.decode()] = (zlib.decompress(v) if comp else v).decode()
        i += 12 + n
    return out


cases = sorted(os.listdir(os.path.join(DATA, "ddpm", "cases")))
with tempfile.TemporaryDirectory() as tmp:
    for name in cases:
        cdir = os.path.join(DATA, "ddpm", "cases", name)
        case = json.load(open(os.path.join(cdir, "case.json")))
        model = case["model"].split("/")[-1]
        if "weight_seed" in case.get("weights", ""):
            ran["synthetic"] += 1
            continue  # synthetic full-size model: covered by the C golden test
        mdir = os.path.join(DATA, "ddpm", "models", model)
        call = case["call"]
        args = ["generate", mdir, "--quiet", "--pipeline", "ddim" if case["pipeline"] == "DDIMPipeline" else "ddpm"]
        if "num_inference_steps" in call:
            args += ["--steps", str(call["num_inference_steps"])]
        if "eta" in call:
            args += ["--eta", repr(call["eta"])]
        args += ["--batch-size", str(call.get("batch_size", 1))]
        for s in case["generator"]["seeds"]:
            args += ["--seed", s]
        out = os.path.join(tmp, name + ".npy")
        p = run(args + ["--out", out, "--threads", "2"])
        check(p.returncode == 0, name + ": generate exits 0")
        if p.returncode:
            continue
        ran["ddpm"] += 1
        img = np.load(out)
        ref = np.fromfile(os.path.join(cdir, "image.bin"), dtype=np.float32).reshape(case["files"]["image"]["shape"])
        check(img.dtype == np.float32 and img.shape == ref.shape, name + ": .npy is float32 %s" % (ref.shape,))
        err = float(np.abs(img.astype(np.float64) - ref).max())
        check(err <= case["tolerance"]["image_atol"], name + ": image max err %.2e <= %.0e" % (err, case["tolerance"]["image_atol"]))
        line = [l for l in p.stdout.splitlines() if l.startswith("abs_sum: ")]
        check(len(line) == 1 and np.float32(line[0].split()[1]) == np.abs(img).sum(),
              name + ": printed abs_sum equals np.abs(image).sum() of the .npy")
        exp = case["abs_sum_f64"]
        check(abs(float(line[0].split()[1]) - exp) / exp <= max(case["tolerance"]["abs_sum_rtol"], 2e-7),
              name + ": abs_sum %s vs reference %s" % (line[0].split()[1], case["abs_sum_np_float32_repr"]))
        if name in ("ddim_batch4_gen_list", "ddpm_10step"):
            ran["repeat"] += 1
            out1 = os.path.join(tmp, name + "_t1.npy")
            run(args + ["--out", out1, "--threads", "1"])
            check(open(out, "rb").read() == open(out1, "rb").read(), name + ": --threads 1 and 2 give identical bytes")
            png1, png2 = os.path.join(tmp, "a.png"), os.path.join(tmp, "b.png")
            run(args + ["--out", png1]), run(args + ["--out", png2])
            check(open(png1, "rb").read() == open(png2, "rb").read(), name + ": two runs give identical PNG bytes")
            meta = json.loads(png_text(png1).get("parameters", "{}"))
            check(meta.get("seeds") == case["generator"]["seeds"] and meta.get("pipeline") == case["pipeline"],
                  name + ": PNG parameters record seeds and pipeline")
        # randn reproduces the initial noise
        noise = np.fromfile(os.path.join(cdir, "noise.bin"), dtype=np.float32)
        shape = case["files"]["noise"]["shape"]
        rargs = ["randn", "--shape", ",".join(map(str, shape)), "--out", os.path.join(tmp, "n.npy")]
        for s in case["generator"]["seeds"]:
            rargs += ["--seed", s]
        run(rargs)
        got = np.load(os.path.join(tmp, "n.npy"))
        check(got.tobytes() == noise.tobytes(), name + ": randn gives the initial noise bit for bit")
        ran["randn"] += 1

    # Stable Diffusion through the CLI: image vs golden, threads 1 vs 2, tokenize ids
    for name in ("sched_EulerA", "seeddoc_gen_seeds0to3_nipp4", "negative_prompt_ddim_8steps"):
        cdir = os.path.join(DATA, "sd", "cases", name)
        text = open(os.path.join(cdir, "case.json")).read().replace("-Infinity", "null")
        case = json.loads(text)
        call = case["call"]
        kw = call["kwargs"]
        pipe = os.path.join(DATA, "sd", call["pipeline"])
        prompts = call["prompt"] if isinstance(call["prompt"], list) else [call["prompt"]]
        args = ["generate", pipe, "--quiet", "--scheduler", call["scheduler"]["class"]]
        for pr in prompts:
            args += ["--prompt", pr]
        if "negative_prompt" in kw:
            args += ["--negative-prompt", kw["negative_prompt"]]
        for k, flag in (("num_inference_steps", "--steps"), ("guidance_scale", "--guidance-scale"),
                        ("num_images_per_prompt", "--num-images-per-prompt"), ("height", "--height"), ("width", "--width")):
            if k in kw:
                args += [flag, str(kw[k])]
        seeds = call["generator"]["seeds"]
        for sd in (seeds if isinstance(seeds, list) else [seeds]):
            args += ["--seed", str(sd)]
        o2, o1 = os.path.join(tmp, name + "_2.npy"), os.path.join(tmp, name + "_1.npy")
        p2 = run(args + ["--out", o2, "--threads", "2"])
        p1 = run(args + ["--out", o1, "--threads", "1"])
        check(p2.returncode == 0 and p1.returncode == 0, name + ": SD generate exits 0")
        if p2.returncode or p1.returncode:
            continue
        ran["sd"] += 1
        img = np.load(o2)
        ref = np.fromfile(os.path.join(cdir, "image.f32.bin"), dtype=np.float32).reshape(case["arrays"]["image"]["shape"])
        err = float(np.abs(img.astype(np.float64) - ref).max())
        tol = case["suggested_tolerance"]["image"]["atol"]
        check(err <= tol, name + ": SD image max err %.2e <= %.1e" % (err, tol))
        check(open(o1, "rb").read() == open(o2, "rb").read(), name + ": SD --threads 1 and 2 give identical bytes")
        for i, pr in enumerate(prompts):
            t = run(["tokenize", pipe, pr])
            ids = [int(x) for x in t.stdout.split()]
            check(ids == case["token_ids"]["cond"][i], name + ": tokenize gives the pipeline's ids")
            ran["tokenize"] += 1

want = {"ddpm": N_DDPM_CASES - N_DDPM_SYNTHETIC, "synthetic": N_DDPM_SYNTHETIC, "repeat": N_REPEAT_CASES,
        "randn": N_DDPM_CASES - N_DDPM_SYNTHETIC, "sd": N_SD_CASES, "tokenize": N_SD_PROMPTS}
check(len(cases) == N_DDPM_CASES, "%d ddpm case folders, %d expected" % (len(cases), N_DDPM_CASES))
for k in want:
    check(ran[k] == want[k], "%s: %d ran, %d expected" % (k, ran[k], want[k]))

print("%d passed, %d failed" % (len(passes), len(failures)))
sys.exit(1 if failures else 0)
