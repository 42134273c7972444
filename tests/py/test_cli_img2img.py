#!/usr/bin/python3
"""Image-to-image and inpainting through the CLI: `generate MODEL --init-image FILE.png
[--strength S] ...` on three img2img golden cases (tests/data/sd_img2img: a
generator list with num_images_per_prompt, a sigma scheduler at low strength,
a non-square picture with DDIM eta; inpainting with a regular UNet's blend
and with the 9-channel UNet; test_sd_img2img runs all of them through the C
API) writes the .npy that output_type="np" gives, within the case
tolerance; the PNG it
writes records the picture, its SHA-256 and the strength, and `regenerate`
makes the same bytes again, finds a moved picture beside the PNG, refuses a
changed one, and turns a text-to-image PNG into image-to-image with
--init-image; 16-bit pictures and misplaced options are refused.  Usage: test_cli_img2img.py CLI TESTDATA.
Exit 77 when numpy is missing."""
import hashlib
import json
import os
import shutil
import struct
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngparams import png_params  # noqa: E402
ROOT = os.path.join(DATA, "sd_img2img")
CLI_CASES = ("i2i_ddim_eta0.5_h64w96", "i2i_euler_s0.3", "i2i_gen4_seeds0to3_nipp4", "inpaint4_blend_pndm_s0.75_rect",
             "inpaint9_s0.6_soft_negative_gen2")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(args):
    return subprocess.run([CLI] + args, capture_output=True, text=True)


def write_png16(path, w, h):
    """A 16-bit RGB PNG, written by hand (no PIL)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\0" + b"\x80\x00" * 3 * w for _ in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def case_args(cdir, c):
    call = c["call"]
    kw = call["kwargs"]
    model = os.path.normpath(os.path.join(ROOT, call["pipeline"]))
    a = ["generate", model, "--init-image", os.path.join(cdir, call["init_image"]), "--threads", "2"]
    if call["mask_image"]:
        a += ["--mask-image", os.path.join(cdir, call["mask_image"])]
    prompts = call["prompt"] if isinstance(call["prompt"], list) else [call["prompt"]]
    for p in prompts:
        a += ["--prompt", p]
    neg = kw.get("negative_prompt")
    for n in ([neg] if isinstance(neg, str) else neg or []):
        a += ["--negative-prompt", n]
    for k, opt in (("strength", "--strength"), ("num_inference_steps", "--steps"), ("guidance_scale", "--guidance-scale"),
                   ("num_images_per_prompt", "--num-images-per-prompt"), ("eta", "--eta")):
        if k in kw:
            a += [opt, repr(kw[k])]
    sch = call["scheduler"]
    a += ["--scheduler", sch["class"]]
    if sch["from_config_overrides"].get("use_karras_sigmas"):
        a += ["--karras"]
    g = call["generator"]
    for s in (g["seeds"] if g["list"] else [g["seeds"]]):
        a += ["--seed", str(s)]
    return a


tmp = tempfile.mkdtemp()
try:
    ran = 0
    for name in CLI_CASES:
        cdir = os.path.join(ROOT, "cases", name)
        c = json.load(open(os.path.join(cdir, "case.json")))
        out = os.path.join(tmp, name + ".npy")
        p = run(case_args(cdir, c) + ["--quiet", "--out", out])
        if p.returncode != 0:
            check(False, "%s: generate failed: %s" % (name, p.stderr.strip()))
            continue
        ran += 1
        a = c["arrays"]["image"]
        want = np.fromfile(os.path.join(cdir, a["file"]), np.float32).reshape(a["shape"])
        got = np.load(out)
        tol = c["suggested_tolerance"]["image"]["atol"]
        err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        check(err <= tol, "%s: generate --init-image: image within %g (max error %.3g)" % (name, tol, err))
    check(ran == len(CLI_CASES), "ran %d img2img cases through the CLI (ran %d)" % (len(CLI_CASES), ran))

    # the PNG records the picture and its SHA-256; regenerate gives the same bytes, finds a moved picture
    # beside the PNG, and refuses a changed one
    name = "i2i_euler_s0.3"
    cdir = os.path.join(ROOT, "cases", name)
    c = json.load(open(os.path.join(cdir, "case.json")))
    model = os.path.normpath(os.path.join(ROOT, c["call"]["pipeline"]))
    pic = os.path.join(tmp, "init.png")
    shutil.copy(os.path.join(cdir, "init.png"), pic)
    args = case_args(cdir, c)
    args[args.index("--init-image") + 1] = pic
    png = os.path.join(tmp, "a.png")
    p = run(args + ["--quiet", "--out", png])
    check(p.returncode == 0, "generate --init-image --out a.png")
    params = png_params(png)
    check(params.get("init_image") == pic and params.get("strength") == 0.3 and
          params.get("init_image_sha256") == hashlib.sha256(open(pic, "rb").read()).hexdigest(),
          "the PNG records init_image, its SHA-256 and the strength")
    regen = os.path.join(tmp, "b.png")
    p = run(["regenerate", png, model, "--quiet", "--out", regen])
    check(p.returncode == 0 and open(regen, "rb").read() == open(png, "rb").read(), "regenerate: the same bytes")
    moved = os.path.join(tmp, "moved")
    os.mkdir(moved)
    shutil.move(png, os.path.join(moved, "a.png"))
    shutil.move(pic, os.path.join(moved, "init.png"))
    ref_npy, regen_npy = os.path.join(tmp, "ref.npy"), os.path.join(tmp, "regen.npy")
    run(case_args(cdir, c) + ["--quiet", "--out", ref_npy])
    p = run(["regenerate", os.path.join(moved, "a.png"), model, "--quiet", "--out", regen_npy])
    check(p.returncode == 0 and np.array_equal(np.load(regen_npy), np.load(ref_npy)),
          "regenerate finds a moved picture beside the PNG: the same image (%s)" % p.stderr.strip()[:100])
    other = os.path.join(ROOT, "cases", "i2i_picked_seeddoc0_4prompts_gen0x4", "init.png")
    shutil.copy(other, os.path.join(moved, "init.png"))
    p = run(["regenerate", os.path.join(moved, "a.png"), model, "--quiet", "--out", regen])
    check(p.returncode in (1, 2) and "not the one the image was made with" in p.stderr,
          "regenerate refuses a changed picture (%s)" % p.stderr.strip()[:120])
    # the guide's workflow in one line: a text-to-image PNG regenerated from a picked picture
    t2i = os.path.join(tmp, "t2i.png")
    p = run(["generate", model, "--prompt", "a dog", "--steps", "4", "--seed", "3", "--quiet", "--out", t2i])
    p2 = run(["regenerate", t2i, model, "--init-image", other, "--strength", "0.5", "--quiet", "--out", regen])
    rp = png_params(regen) if p2.returncode == 0 else {}
    check(p.returncode == 0 and p2.returncode == 0 and rp.get("init_image") == other and rp.get("strength") == 0.5
          and rp.get("seeds") == ["3"], "regenerate t2i.png --init-image picked.png --strength 0.5 (%s)"
          % p2.stderr.strip()[:120])
    # a 16-bit PNG is refused
    deep = os.path.join(tmp, "deep.png")
    write_png16(deep, 64, 64)
    p = run(["generate", model, "--prompt", "a cat", "--steps", "2", "--seed", "0", "--init-image", deep, "--quiet",
             "--out", os.path.join(tmp, "z.npy")])
    check(p.returncode in (1, 2) and "16-bit" in p.stderr and not os.path.exists(os.path.join(tmp, "z.npy")),
          "a 16-bit picture: an error, one line, no output (%s)" % p.stderr.strip()[:100])
    # a file that is not a PNG, and a truncated one: one line, no output
    notpng, trunc = os.path.join(tmp, "not.png"), os.path.join(tmp, "trunc.png")
    open(notpng, "w").write("not a picture\n")
    open(trunc, "wb").write(open(os.path.join(cdir, "init.png"), "rb").read()[:300])
    for bad in (notpng, trunc):
        out = os.path.join(tmp, "bad.npy")
        p = run(["generate", model, "--prompt", "a cat", "--steps", "2", "--seed", "0", "--init-image", bad, "--quiet",
                 "--out", out])
        check(p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 and bad in p.stderr and
              not os.path.exists(out), "%s: exit 1, one line naming it (%s)" % (os.path.basename(bad),
                                                                              p.stderr.strip()[:100]))
    # usage errors
    model = os.path.join(DATA, "sd", "pipelines", "tiny-sd15-a")
    for extra, needle in ((["--strength", "0.5"], "--strength needs --init-image"),
                          (["--init-image", os.path.join(cdir, "init.png"), "--height", "64"], "come from the --init-image"),
                          (["--init-image", os.path.join(cdir, "init.png"), "--strength", "0"], "--strength must be in"),
                          (["--init-image", os.path.join(tmp, "missing.png")], "missing.png")):
        p = run(["generate", model, "--prompt", "a cat", "--steps", "2", "--seed", "0", "--quiet",
                 "--out", os.path.join(tmp, "x.npy")] + extra)
        check(p.returncode != 0 and needle in p.stderr, "%s: exit %d, %r" % (" ".join(extra[-2:]), p.returncode,
                                                                          p.stderr.strip()[:100]))
    p = run(["generate", os.path.join(DATA, "ddpm", "models", "tiny_cifar"), "--init-image",
             os.path.join(cdir, "init.png"), "--steps", "2", "--seed", "0", "--quiet", "--out", os.path.join(tmp, "y.npy")])
    check(p.returncode == 2 and "Stable Diffusion" in p.stderr, "--init-image on a DDPM folder: usage error")
finally:
    shutil.rmtree(tmp)

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
