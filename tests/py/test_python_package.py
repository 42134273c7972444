#!/usr/bin/python3
"""The Python package (build/python/cdiffusers) against the golden cases and
live numpy / torch generators: the guide's snippets with only the import
changed, generator states after each call equal to the states mindone's
randn_tensor leaves, every argument of from_pretrained and __call__, the
scheduler swap, utils, errors, interrupts and thread invariance.

Usage: test_python_package.py CLI TESTDATA (the package is the CLI's
build folder's python/).  Exit 77 when numpy is missing."""
import contextlib
import io
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed")
    sys.exit(77)

CLI, DATA = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(CLI)), "python"))
import cdiffusers  # noqa: E402
from cdiffusers import (DDIMPipeline, DDPMPipeline, DiffusionPipeline, StableDiffusionPipeline,  # noqa: E402
                        UnCLIPPipeline)

try:
    import PIL.Image  # noqa: F401
    HAVE_PIL = True
except ImportError:
    HAVE_PIL = False
try:
    import torch
except ImportError:
    torch = None

failures, passes = [], []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    (passes if cond else failures).append(what)


def raises(exc, fn, what, needle=None):
    try:
        fn()
    except exc as e:
        ok = needle is None or needle in str(e)
        check(ok, "%s raises %s%s" % (what, exc.__name__, "" if ok else " with %r (got %r)" % (needle, str(e))))
        return e
    except Exception as e:  # noqa: BLE001 - reported as the failure it is
        check(False, "%s raises %s (got %s: %s)" % (what, exc.__name__, type(e).__name__, e))
        return None
    check(False, "%s raises %s (nothing raised)" % (what, exc.__name__))
    return None


def load(case_dir, entry):
    return np.fromfile(os.path.join(case_dir, entry["file"]), dtype=entry["dtype"]).reshape(entry["shape"])


def pcg(seed):
    return np.random.Generator(np.random.PCG64(seed))


def state(g):
    return json.dumps(g.bit_generator.state, sort_keys=True)


def replay(seeds, is_list, n_calls, shape):
    """The generators after mindone's randn_tensor is called n_calls times with shape."""
    gens = [pcg(int(s)) for s in seeds] if is_list else [pcg(int(seeds[0]))]
    for _ in range(n_calls):
        if is_list:
            for g in gens:
                g.standard_normal((1,) + tuple(shape[1:]))
        else:
            gens[0].standard_normal(shape)
    return [state(g) for g in gens]


quiet = {"disable": True}


# ---------------------------------------------------------------- DDPM / DDIM golden cases

def ddpm_cases():
    root = os.path.join(DATA, "ddpm")
    n = 0
    for name in sorted(os.listdir(os.path.join(root, "cases"))):
        c = json.load(open(os.path.join(root, "cases", name, "case.json")))
        model = os.path.join(root, "models", c["model"].split("/")[-1])
        if not os.path.isdir(model):
            continue  # the full-size synthetic case is the C golden test's
        n += 1
        cls = {"DDPMPipeline": DDPMPipeline, "DDIMPipeline": DDIMPipeline}[c["pipeline"]]
        pipe = cls.from_pretrained(model, use_safetensors=True)
        pipe.set_progress_bar_config(**quiet)
        g = c["generator"]
        seeds = g["seeds"]
        gens = [pcg(int(s)) for s in seeds]
        generator = gens if g["kind"] == "list" else gens[0]
        kwargs = dict(c["call"])
        out = pipe(generator=generator, **kwargs)
        img = out.images
        want = load(os.path.join(root, "cases", name), c["files"]["image"])
        tol = c["tolerance"]["image_atol"]
        err = float(np.abs(img - want).max())
        check(img.shape == want.shape and err <= tol, "%s: image within %g (max error %.3g)" % (name, tol, err))
        rs = float(np.abs(img).sum())
        check(abs(rs - c["abs_sum_np_float32"]) <= c["tolerance"]["abs_sum_rtol"] * abs(c["abs_sum_np_float32"]),
              "%s: np.abs(image).sum() %r, golden %s" % (name, rs, c["abs_sum_np_float32_repr"]))
        noise_shape = c["files"]["noise"]["shape"]
        want_states = replay(seeds, g["kind"] == "list", c["num_randn_tensor_calls"], noise_shape)
        check([state(x) for x in gens] == want_states,
              "%s: generator states after the call equal %d randn_tensor draws" % (name, c["num_randn_tensor_calls"]))
        pipe.close()
    check(n == 10, "ran the 10 tiny DDPM/DDIM cases (ran %d)" % n)


def guide_ddim_snippet():
    model = os.path.join(DATA, "ddpm", "models", "tiny_cifar")
    case = json.load(open(os.path.join(DATA, "ddpm", "cases", "ddim_2step_seed0", "case.json")))
    # the guide's snippet, with only the import (and the folder) changed
    ddim = DDIMPipeline.from_pretrained(model, use_safetensors=True)
    generator = np.random.Generator(np.random.PCG64(0))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        image = ddim(num_inference_steps=2, output_type="np", generator=generator)[0]
    printed = str(np.abs(image).sum())
    check(printed == case["abs_sum_np_float32_repr"], "guide DDIM snippet prints %s (golden %s)"
          % (printed, case["abs_sum_np_float32_repr"]))
    check("2/2" in err.getvalue(), "a progress bar goes to stderr by default")
    # the next draw in Python is the one after the pipeline's
    ref = pcg(0)
    ref.standard_normal((1, 3, 32, 32))
    check(np.array_equal(generator.standard_normal(5), ref.standard_normal(5)),
          "the generator's next Python draw follows the pipeline's")
    # outputs: indexable, .images, ["images"], return_dict=False, pil
    ddim.set_progress_bar_config(disable=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        out = ddim(num_inference_steps=2, output_type="np", generator=pcg(0))
    check(err.getvalue() == "", "set_progress_bar_config(disable=True) silences the bar")
    check(np.array_equal(out.images, image) and np.array_equal(out["images"], out[0]),
          "output: [0], .images and ['images'] are the same images; same bytes on a second run")
    tup = ddim(num_inference_steps=2, output_type="np", generator=pcg(0), return_dict=False)
    check(isinstance(tup, tuple) and len(tup) == 1 and np.array_equal(tup[0], out.images), "return_dict=False: (images,)")
    if HAVE_PIL:
        pil = ddim(num_inference_steps=2, generator=pcg(0)).images  # output_type defaults to "pil"
        want = (out.images[0] * 255).round().astype(np.uint8)
        check(isinstance(pil, list) and pil[0].size == (32, 32) and np.array_equal(np.asarray(pil[0]), want),
              "output_type pil (the default): PIL images as numpy_to_pil rounds")
    # eta and use_clipped_model_output reach the scheduler: eta > 0 draws per step
    g = pcg(3)
    a = ddim(num_inference_steps=3, eta=1.0, use_clipped_model_output=True, output_type="np", generator=g).images
    check(state(g) == replay(["3"], False, 4, (1, 3, 32, 32))[0], "DDIM eta 1: one draw per step after the noise")
    b = ddim(num_inference_steps=3, eta=1.0, use_clipped_model_output=False, output_type="np", generator=pcg(3)).images
    check(not np.array_equal(a, b), "use_clipped_model_output changes the result")
    # batch_size with one generator: one (batch, ...) draw
    g = pcg(9)
    ddim(batch_size=2, num_inference_steps=2, output_type="np", generator=g)
    check(state(g) == replay(["9"], False, 1, (2, 3, 32, 32))[0], "batch_size 2, one generator: one (2, ...) draw")
    # [g] * 2: one stream consumed image after image
    g = pcg(11)
    both = ddim(batch_size=2, num_inference_steps=2, output_type="np", generator=[g] * 2).images
    ref = pcg(11)
    ref.standard_normal((1, 3, 32, 32))
    ref.standard_normal((1, 3, 32, 32))
    check(state(g) == state(ref), "[g] * 2: the same generator drawn twice in turn")
    g1, g2 = pcg(11), pcg(11)
    g2.standard_normal((1, 3, 32, 32))
    one = ddim(batch_size=1, num_inference_steps=2, output_type="np", generator=g2).images
    check(np.array_equal(both[1], one[0]), "[g] * 2: image 2 is the image of the stream's second draw")
    # threads: same bytes
    cdiffusers.set_num_threads(1)
    t1 = ddim(batch_size=2, num_inference_steps=3, output_type="np", generator=pcg(5)).images
    cdiffusers.set_num_threads(2)
    t2 = ddim(batch_size=2, num_inference_steps=3, output_type="np", generator=pcg(5)).images
    check(cdiffusers.get_num_threads() == 2 and t1.tobytes() == t2.tobytes(), "1 and 2 threads: identical bytes")
    raises(ValueError, lambda: cdiffusers.set_num_threads(0), "set_num_threads(0)")
    ddim.close()
    raises(ValueError, lambda: ddim(num_inference_steps=2), "a call on a closed pipeline")


# ---------------------------------------------------------------- Stable Diffusion

def sd_cases():
    root = os.path.join(DATA, "sd")
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(root, "pipelines", "tiny-sd15-a"))
    pipe.set_progress_bar_config(disable=True)
    folder_scheduler = pipe.scheduler
    for name in ("seeddoc_gen_seeds0to3_nipp4", "seeddoc_4prompts_gen_seed0x4", "single_generator_batch2",
                 "negative_prompt_ddim_8steps", "sched_Euler", "sched_DPMpp2MKarras"):
        d = os.path.join(root, "cases", name)
        c = json.load(open(os.path.join(d, "case.json")))
        call = c["call"]
        g = call["generator"]
        seeds = g["seeds"] if g["list"] else [g["seeds"]]
        gens = [pcg(s) for s in seeds]
        sch = call["scheduler"]
        cls = getattr(cdiffusers, sch["class"])
        pipe.scheduler = (folder_scheduler if sch["class"] == "PNDMScheduler" and not sch["from_config_overrides"]
                          else cls.from_config(folder_scheduler.config, **sch["from_config_overrides"]))
        check(pipe.scheduler.config["_class_name"] == sch["class"] and
              all(pipe.scheduler.config[k] == v for k, v in sch["config"].items() if not k.startswith("_")),
              "%s: %s.from_config gives the case's config" % (name, sch["class"]))
        out = pipe(call["prompt"], generator=gens if g["list"] else gens[0], **call["kwargs"])
        a = c["arrays"]["image"]
        want = np.fromfile(os.path.join(d, a["file"]), np.float32).reshape(a["shape"])
        tol = c["suggested_tolerance"]["image"]["atol"]
        err = float(np.abs(out.images - want).max())
        check(out.images.shape == want.shape and err <= tol, "%s: image within %g (max error %.3g)" % (name, tol, err))
        check(out.nsfw_content_detected is None and out[0] is out.images, "%s: output fields" % name)
        B = want.shape[0]
        shape = (B, 4, want.shape[1] // 8, want.shape[2] // 8)
        # a list of generators: each object drawn once per image it serves (seeds [0]*4 are four objects)
        check([state(x) for x in gens] == replay(seeds, g["list"], c["n_noise_draws"], shape),
              "%s: generator states after the call equal mindone's" % name)
        if name == "seeddoc_gen_seeds0to3_nipp4" and HAVE_PIL:
            grid = cdiffusers.make_image_grid(cdiffusers.utils.numpy_to_pil(out.images), rows=1, cols=4)
            tile = np.asarray(grid)[:, 64:128]
            check(grid.size == (256, 64) and np.array_equal(tile, (out.images[1] * 255).round().astype(np.uint8)),
                  "make_image_grid: 1 x 4 grid of the batch, image 2 in the second tile")
    pipe.scheduler = folder_scheduler
    return pipe


def sd_arguments(pipe):
    def run(**kw):
        kw.setdefault("num_inference_steps", 2)
        kw.setdefault("output_type", "np")
        kw.setdefault("generator", pcg(1))
        return pipe("a cat", **kw)

    base = run().images
    check(base.shape == (1, 64, 64, 3), "SD default size: the UNet sample size times 8")
    check(run(height=32, width=48).images.shape == (1, 32, 48, 3), "height / width")
    check(not np.array_equal(run(guidance_scale=1.0).images, base), "guidance_scale reaches the run")
    check(not np.array_equal(run(guidance_rescale=0.7).images, base), "guidance_rescale reaches the run")
    check(not np.array_equal(run(negative_prompt="blurry").images, base), "negative_prompt reaches the run")
    check(not np.array_equal(run(clip_skip=1).images, base), "clip_skip reaches the run")
    check(run(num_images_per_prompt=2, generator=[pcg(1), pcg(2)]).images.shape[0] == 2, "num_images_per_prompt")
    lat = run(output_type="latent").images
    check(lat.shape == (1, 4, 8, 8), "output_type latent: the final latents")
    pipe.scheduler = cdiffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    e0 = run(eta=0.0).images
    g = pcg(1)
    e1 = run(eta=1.0, generator=g).images
    check(not np.array_equal(e0, e1) and state(g) == replay(["1"], False, 3, (1, 4, 8, 8))[0],
          "eta with DDIMScheduler: one draw per step")
    pipe.scheduler = cdiffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True,
                                                                   timestep_spacing="trailing")
    check(pipe.scheduler.config.use_karras_sigmas is True and pipe.scheduler.config.timestep_spacing == "trailing",
          "from_config kwargs land in the config (attribute access)")
    check("set_alpha_to_one" in pipe.scheduler.config, "from_config keeps other classes' keys, as diffusers does")
    k = run(num_inference_steps=3).images  # (with 2 steps karras sigmas are the spacing's own two)
    pipe.scheduler = cdiffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=False)
    check(not np.array_equal(k, run(num_inference_steps=3).images), "use_karras_sigmas reaches the run")
    raises(TypeError, lambda: pipe.scheduler.config.__setitem__("x", 1), "a frozen config")
    raises(ValueError, lambda: cdiffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config, eta=1),
           "from_config with a key that is not the class's", "not a parameter")
    raises(ValueError, lambda: cdiffusers.DDIMScheduler.from_config(pipe.scheduler.config, beta_schedule="cubic"),
           "from_config with a bad value", "beta_schedule")
    s = cdiffusers.UniPCMultistepScheduler.from_pretrained(
        os.path.join(DATA, "sd", "pipelines", "tiny-sd15-a"), subfolder="scheduler")
    check(s.config["_class_name"] == "UniPCMultistepScheduler" and s.config["beta_schedule"] == "scaled_linear",
          "Scheduler.from_pretrained(folder, subfolder='scheduler')")
    pipe.scheduler = pipe._folder_scheduler
    # errors in the call
    raises(TypeError, lambda: run(bogus=1), "an unknown call argument", "bogus")
    raises(ValueError, lambda: run(latents=np.zeros((1, 4, 8, 8))), "latents= (diffusers' but not supported)")
    raises(ValueError, lambda: run(generator=[pcg(1), pcg(2)]), "2 generators for 1 image", "list of generators")
    raises(ValueError, lambda: run(output_type="pt"), "output_type pt")
    raises(ValueError, lambda: run(height=30), "height not a multiple of 8", "8")
    raises(ValueError, lambda: run(negative_prompt=["a", "b"]), "two negative prompts for one prompt")
    raises(TypeError, lambda: pipe(None if False else 3, num_inference_steps=2), "a prompt that is not a str")
    raises(ValueError, lambda: pipe(num_inference_steps=2), "no prompt")
    raises(TypeError, lambda: run(num_inference_steps=2.5), "num_inference_steps 2.5")
    raises(TypeError, lambda: run(generator=np.random.Generator(np.random.MT19937(0))), "a Generator(MT19937)",
           "PCG64")
    for bg in (np.random.Philox, np.random.SFC64, np.random.PCG64DXSM):
        raises(TypeError, lambda bg=bg: run(generator=np.random.Generator(bg(0))), "a Generator(%s)" % bg.__name__,
               "not supported")
    raises(TypeError, lambda: run(generator=42), "generator=42", "not supported")
    pipe.scheduler = cdiffusers.UnCLIPScheduler.from_config({})  # SD steps it with prev_timestep None, as diffusers
    check(run().images.shape == (1, 64, 64, 3), "an UnCLIPScheduler swapped into SD runs")
    pipe.scheduler = "euler"
    raises(TypeError, run, "pipe.scheduler a str")
    pipe.scheduler = pipe._folder_scheduler


def replay_streams(seeds, streams):
    """numpy generators after the draws a case's generator_streams list
    ("site [1, 4, 8, 8]" or "... x8"): the states mindone leaves."""
    out = []
    for seed, stream in zip(seeds, streams):
        g = pcg(seed)
        for entry in stream:
            shape_txt = entry[entry.index("[") + 1:entry.index("]")]
            tail = entry.rsplit("]", 1)[1].strip()
            count = int(tail[1:]) if tail.startswith("x") else 1
            for _ in range(count):
                g.standard_normal(tuple(int(v) for v in shape_txt.split(",")))
        out.append(state(g))
    return out


def img2img_cases():
    """StableDiffusionImg2ImgPipeline on golden cases: a generator list with num_images_per_prompt, one
    generator for a batch, Euler ancestral's step draws, a non-square picture."""
    if not HAVE_PIL:
        print("note: PIL is not installed; image-to-image from PIL pictures not checked")
        return
    import PIL.Image
    root = os.path.join(DATA, "sd_img2img")
    pipe = cdiffusers.StableDiffusionImg2ImgPipeline.from_pretrained(os.path.join(DATA, "sd", "pipelines",
                                                                                  "tiny-sd15-a"))
    pipe.set_progress_bar_config(disable=True)
    folder = pipe.scheduler
    for name in ("i2i_gen4_seeds0to3_nipp4", "i2i_single_gen_batch2", "i2i_eulera_default_strength",
                 "i2i_ddim_eta0.5_h64w96"):
        d = os.path.join(root, "cases", name)
        c = json.load(open(os.path.join(d, "case.json")))
        call = c["call"]
        sch = call["scheduler"]
        pipe.scheduler = getattr(cdiffusers, sch["class"]).from_config(folder.config, **sch["from_config_overrides"])
        g = call["generator"]
        seeds = g["seeds"] if g["list"] else [g["seeds"]]
        gens = [pcg(x) for x in seeds]
        image = PIL.Image.open(os.path.join(d, call["init_image"]))
        out = pipe(call["prompt"], image=image, generator=gens if g["list"] else gens[0], **call["kwargs"]).images
        a = c["arrays"]["image"]
        want = np.fromfile(os.path.join(d, a["file"]), np.float32).reshape(a["shape"])
        tol = c["suggested_tolerance"]["image"]["atol"]
        err = float(np.abs(out - want).max()) if out.shape == want.shape else float("inf")
        check(err <= tol, "img2img %s: image within %g (max error %.3g)" % (name, tol, err))
        check([state(x) for x in gens] == replay_streams(seeds, c["generator_streams"]),
              "img2img %s: generator states equal mindone's (encoder sample, noise, steps)" % name)
    pipe.scheduler = folder
    # inpainting: the 9-channel inpainting UNet and a regular UNet's blend, generators drawn as diffusers does
    for name in ("inpaint9_s0.6_soft_negative_gen2", "inpaint4_blend_pndm_s0.75_rect"):
        d = os.path.join(root, "cases", name)
        c = json.load(open(os.path.join(d, "case.json")))
        call = c["call"]
        ip = cdiffusers.StableDiffusionInpaintPipeline.from_pretrained(os.path.normpath(os.path.join(root,
                                                                                                     call["pipeline"])))
        ip.set_progress_bar_config(disable=True)
        sch = call["scheduler"]
        ip.scheduler = getattr(cdiffusers, sch["class"]).from_config(ip.scheduler.config, **sch["from_config_overrides"])
        g = call["generator"]
        seeds = g["seeds"] if g["list"] else [g["seeds"]]
        gens = [pcg(x) for x in seeds]
        out = ip(call["prompt"], image=PIL.Image.open(os.path.join(d, call["init_image"])),
                 mask_image=PIL.Image.open(os.path.join(d, call["mask_image"])),
                 generator=gens if g["list"] else gens[0], **dict(call["kwargs"], **call["reference_extra_kwargs"])).images
        a = c["arrays"]["image"]
        want = np.fromfile(os.path.join(d, a["file"]), np.float32).reshape(a["shape"])
        tol = c["suggested_tolerance"]["image"]["atol"]
        err = float(np.abs(out - want).max()) if out.shape == want.shape else float("inf")
        check(err <= tol, "inpaint %s: image within %g (max error %.3g)" % (name, tol, err))
        check([state(x) for x in gens] == replay_streams(seeds, c["generator_streams"]),
              "inpaint %s: generator states equal mindone's (encoder samples from generator 0)" % name)
        ip.close()
    arr = np.asarray(PIL.Image.open(os.path.join(root, "cases", "i2i_pndm_s0.75", "init.png")))
    ip = cdiffusers.StableDiffusionInpaintPipeline.from_pretrained(os.path.join(DATA, "sd", "pipelines", "tiny-sd15-a"))
    raises(ValueError, lambda: ip("a cat", image=arr, mask_image=np.zeros((32, 32), np.uint8), generator=pcg(1)),
           "inpaint: a mask of another size", "mask_image")
    raises(ValueError, lambda: ip("a cat", image=arr, generator=pcg(1)), "inpaint without a mask", "mask_image")
    raises(ValueError, lambda: ip("a cat", image=arr, mask_image=np.zeros((64, 64), np.uint8), padding_mask_crop=8),
           "inpaint padding_mask_crop", "not supported")
    ip.close()
    a = pipe("a cat", image=arr, strength=0.5, num_inference_steps=4, output_type="np", generator=pcg(1)).images
    b = pipe("a cat", image=PIL.Image.fromarray(arr), strength=0.5, num_inference_steps=4, output_type="np",
             generator=pcg(1)).images
    check(np.array_equal(a, b), "img2img: a uint8 array and the PIL picture give the same bytes")
    raises(ValueError, lambda: pipe("a cat", image=PIL.Image.fromarray(arr).convert("L"), generator=pcg(1)),
           "img2img: an L picture", "convert")
    raises(ValueError, lambda: pipe("a cat", generator=pcg(1)), "img2img without image", "image is required")
    raises(TypeError, lambda: pipe("a cat", image=arr.astype(np.float32), generator=pcg(1)), "img2img float image")
    raises(ValueError, lambda: pipe("a cat", image=arr, strength=1.5, generator=pcg(1)), "img2img strength 1.5",
           "strength")
    raises(TypeError, lambda: pipe("a cat", image=arr, height=64), "img2img height=", "height")


def generator_kinds(pipe):
    """RandomState and torch generators, through utils.randn_tensor and a pipeline call."""
    rs = np.random.RandomState(7)
    rs.standard_normal(3)  # leaves a cached gaussian
    ref = np.random.RandomState(7)
    ref.standard_normal(3)
    x = cdiffusers.randn_tensor((2, 3, 5), generator=rs)
    check(np.array_equal(x, ref.standard_normal((2, 3, 5)).astype(np.float32)) and x.dtype == np.float32,
          "randn_tensor with a RandomState (cached gaussian carried in)")
    check(np.array_equal(rs.standard_normal(4), ref.standard_normal(4)), "RandomState state written back")
    g = pcg(2**70 + 3)
    g.random()  # a pending... no: random() uses 64 bits; next_uint32 leaves the buffered half
    g.integers(0, 2**32, dtype=np.uint32)
    ref = pcg(2**70 + 3)
    ref.random()
    ref.integers(0, 2**32, dtype=np.uint32)
    for dt in (np.float32, np.float16, np.float64):
        y = cdiffusers.randn_tensor((3, 4), generator=g, dtype=dt)
        check(y.dtype == dt and np.array_equal(y, ref.standard_normal((3, 4)).astype(dt)),
              "randn_tensor %s with a PCG64 holding a buffered uint32" % np.dtype(dt).name)
    check(state(g) == state(ref), "PCG64 state (with has_uint32) written back")
    gl = [pcg(1), pcg(2)]
    y = cdiffusers.randn_tensor((2, 3), generator=gl)
    check(np.array_equal(y, np.concatenate([pcg(1).standard_normal((1, 3)), pcg(2).standard_normal((1, 3))])
                         .astype(np.float32)), "randn_tensor with a list: one (1, ...) slice per generator")
    raises(TypeError, lambda: cdiffusers.randn_tensor((2,), generator=pcg(0), bogus=1), "randn_tensor(bogus=)")
    raises(ValueError, lambda: cdiffusers.randn_tensor((2,), generator=pcg(0), dtype=np.int32), "randn_tensor int32")
    raises(ValueError, lambda: cdiffusers.randn_tensor((3, 2), generator=[pcg(0), pcg(1)]), "3 rows, 2 generators")
    check(cdiffusers.randn_tensor((4,)).shape == (4,), "randn_tensor without a generator")
    # a RandomState through a pipeline
    rs = np.random.RandomState(3)
    out = pipe("a cat", num_inference_steps=2, output_type="np", generator=rs).images
    ref = np.random.RandomState(3)
    ref.standard_normal((1, 4, 8, 8))
    check(out.shape == (1, 64, 64, 3) and np.array_equal(rs.standard_normal(2), ref.standard_normal(2)),
          "a RandomState through StableDiffusionPipeline: advanced by the latents draw")
    if torch is None:
        print("note: torch is not installed; torch generators not checked")
        return
    tg = torch.Generator("cpu").manual_seed(5)
    tref = torch.Generator("cpu").manual_seed(5)
    z = cdiffusers.randn_tensor((1, 4, 8, 8), generator=tg)
    check(np.array_equal(z, torch.randn((1, 4, 8, 8), generator=tref).numpy()), "randn_tensor with a torch generator")
    check(torch.equal(tg.get_state(), tref.get_state()), "torch generator state written back")
    small = cdiffusers.randn_tensor((3,), generator=tg)  # under 16 elements: torch's cached-normal path
    check(np.array_equal(small, torch.randn(3, generator=tref).numpy()) and torch.equal(tg.get_state(),
                                                                                       tref.get_state()),
          "torch generator, a small tensor (cached normal in the state)")
    tg = torch.Generator("cpu").manual_seed(8)
    tref = torch.Generator("cpu").manual_seed(8)
    pipe("a cat", num_inference_steps=2, output_type="np", generator=tg)
    torch.randn((1, 4, 8, 8), generator=tref)
    check(torch.equal(tg.get_state(), tref.get_state()), "a torch generator through StableDiffusionPipeline")


def interrupt_and_leaks():
    model = os.path.join(DATA, "ddpm", "models", "tiny_cifar")
    pipe = DDPMPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    g = pcg(0)
    # as at a terminal: a shell that starts this in the background (no job control) leaves SIGINT ignored, and
    # the package then leaves it so
    signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        pipe(num_inference_steps=1000, output_type="np", generator=g)
        check(False, "Ctrl-C during a 1000-step call raises KeyboardInterrupt")
    except KeyboardInterrupt:
        check(state(g) != state(pcg(0)), "Ctrl-C during a call: KeyboardInterrupt, draws so far kept")
    finally:
        timer.cancel()
    out = pipe(num_inference_steps=3, output_type="np", generator=pcg(0)).images
    check(out.shape == (1, 32, 32, 3), "the pipeline runs again after an interrupt")
    raises(ValueError, lambda: pipe(num_inference_steps=2, generator=[pcg(0), pcg(1)]),
           "DDPMPipeline, 2 generators for batch 1")
    raises(TypeError, lambda: pipe(num_inference_steps=2, eta=0.5), "DDPMPipeline takes no eta")
    pipe.scheduler = cdiffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    a = pipe(num_inference_steps=2, output_type="np", generator=pcg(0)).images
    d = DDIMPipeline.from_pretrained(model)
    d.set_progress_bar_config(disable=True)
    check(np.array_equal(a, d(num_inference_steps=2, output_type="np", generator=pcg(0)).images),
          "DDPMPipeline with a DDIMScheduler swapped in = DDIMPipeline with eta 0")
    d.scheduler = cdiffusers.EulerDiscreteScheduler.from_config(d.scheduler.config)
    raises(ValueError, lambda: d(num_inference_steps=2, generator=pcg(0)), "DDIMPipeline with Euler", "DDIMScheduler")
    # handles are freed with the objects: many loads stay flat in memory (not measurable under ASan, whose
    # quarantine keeps freed memory; CI job 2 runs this file with the ASan runtime preloaded)
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        print("note: ASan preloaded; the peak-RSS check is left to the plain run")
        return
    import resource
    for _ in range(3):
        DDIMPipeline.from_pretrained(model).close()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(40):
        p = DiffusionPipeline.from_pretrained(model)
        p.set_progress_bar_config(disable=True)
        p(num_inference_steps=1, output_type="np", generator=pcg(0))
        del p
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    check(grown < 20000, "40 load / call / drop cycles: peak RSS grew %d KiB (< 20 MiB)" % grown)


def loading():
    model = os.path.join(DATA, "ddpm", "models", "tiny_cifar")
    check(type(DiffusionPipeline.from_pretrained(model)) is DDPMPipeline, "DiffusionPipeline dispatches: DDPMPipeline")
    sd = DiffusionPipeline.from_pretrained(os.path.join(DATA, "sd", "pipelines", "tiny-sd15-b-f16"),
                                           torch_dtype="float16")
    check(type(sd) is StableDiffusionPipeline and sd.to("cpu") is sd, "DiffusionPipeline: StableDiffusionPipeline")
    pn = DiffusionPipeline.from_pretrained(os.path.join(DATA, "ddpm", "pndm", "tiny_pndm"))
    pn.set_progress_bar_config(disable=True)
    c = json.load(open(os.path.join(DATA, "ddpm", "pndm", "pndm_batch3_one_gen", "case.json")))
    out = pn(generator=pcg(9), output_type="np", **c["call"]).images
    want = np.fromfile(os.path.join(DATA, "ddpm", "pndm", "pndm_batch3_one_gen", "image.bin"), np.float32)
    err = float(np.abs(out.ravel() - want).max())
    check(type(pn) is cdiffusers.PNDMPipeline and err <= c["tolerance"]["image_atol"],
          "DiffusionPipeline: PNDMPipeline, golden image within %g (max error %.3g)" % (c["tolerance"]["image_atol"], err))
    pn.close()
    # SDXL: the guide's call with only the import changed, on the golden negative / negative_2 case
    xl = DiffusionPipeline.from_pretrained(os.path.join(DATA, "sdxl", "pipelines", "tiny-sdxl-a"))
    xl.set_progress_bar_config(disable=True)
    for name in ("negative_and_negative_2", "no_negative_zeroed", "explicit_empty_negative"):
        c = json.load(open(os.path.join(DATA, "sdxl", "cases", name, "case.json")))
        g = c["call"]["generator"]
        gens = [pcg(x) for x in (g["seeds"] if g["list"] else [g["seeds"]])]
        kw = {k: v for k, v in c["call"]["kwargs"].items()}
        out = xl(c["call"]["prompt"], generator=gens if g["list"] else gens[0], **kw).images
        a = c["arrays"]["image"]
        want = np.fromfile(os.path.join(DATA, "sdxl", "cases", name, a["file"]), np.float32).reshape(a["shape"])
        err = float(np.abs(out - want).max()) if out.shape == want.shape else float("inf")
        check(type(xl) is cdiffusers.StableDiffusionXLPipeline and err <= c["suggested_tolerance"]["image"]["atol"],
              "StableDiffusionXLPipeline %s: image within tolerance (max error %.3g)" % (name, err))
    raises(TypeError, lambda: xl("a cat", bogus=1), "SDXL unknown argument", "bogus")
    raises(ValueError, lambda: xl("a cat", generator=pcg(0), negative_prompt=["a", "b"], num_inference_steps=2),
           "SDXL two negative prompts for one prompt")
    xl.close()
    un = os.path.join(DATA, "unclip", "pipelines", "tiny-karlo-a")
    p = DiffusionPipeline.from_pretrained(un)
    check(type(p) is UnCLIPPipeline and p.decoder_scheduler.config["variance_type"] == "learned_range",
          "DiffusionPipeline: UnCLIPPipeline with its three schedulers")
    c = json.load(open(os.path.join(DATA, "unclip", "cases", "one_prompt_one_gen", "case.json")))
    p.set_progress_bar_config(disable=True)
    out = p(c["call"]["prompt"], generator=pcg(0), **c["call"]["kwargs"])
    want = np.fromfile(os.path.join(DATA, "unclip", "cases", "one_prompt_one_gen", "image.f32.bin"),
                       np.float32).reshape(out.images.shape)
    man = json.load(open(os.path.join(DATA, "unclip", "manifest.json")))["cases"]["one_prompt_one_gen"]
    err = float(np.abs(out.images - want).max())
    check(err <= man["tolerance_image_atol"], "UnCLIP one_prompt_one_gen: image within %g (max error %.3g)"
          % (man["tolerance_image_atol"], err))
    p.prior_scheduler = cdiffusers.UnCLIPScheduler.from_config(p.prior_scheduler.config)
    raises(ValueError, lambda: p("x", generator=pcg(0)), "UnCLIP scheduler swap", "cannot be swapped")
    raises(TypeError, lambda: p("x", bogus=2), "UnCLIP unknown argument", "bogus")
    raises(ValueError, lambda: p("x", prior_latents=1), "UnCLIP prior_latents=", "not supported")
    # dtype arguments: one warning line; the library's notices are log records
    rec = []
    h = logging.Handler()
    h.emit = rec.append
    log = logging.getLogger("cdiffusers")
    log.addHandler(h)
    log.setLevel(logging.INFO)
    DDIMPipeline.from_pretrained(model, mindspore_dtype="float16", variant=None).close()
    check(len(rec) == 1 and "float32" in rec[0].getMessage() and "\n" not in rec[0].getMessage(),
          "mindspore_dtype: a one-line warning")
    del rec[:]
    DDIMPipeline.from_pretrained(model, variant="fp16").close()
    check(len(rec) == 1 and "no 'fp16' variant" in rec[0].getMessage(),
          "variant without such files: the stored weights, with the library's notice")
    log.removeHandler(h)
    log.setLevel(logging.NOTSET)
    # errors
    raises(TypeError, lambda: DDIMPipeline.from_pretrained(model, bogus=1), "from_pretrained(bogus=)", "bogus")
    raises(ValueError, lambda: DDIMPipeline.from_pretrained(model, use_safetensors=False), "use_safetensors=False")
    raises(ValueError, lambda: DDIMPipeline.from_pretrained(model, safety_checker=object()), "a safety checker")
    raises(OSError, lambda: DDIMPipeline.from_pretrained(os.path.join(DATA, "no_such_model")), "a missing folder")
    raises(ValueError, lambda: DDIMPipeline.from_pretrained(model, variant="a/b"), "a bad variant", "variant")
    raises(ValueError, lambda: StableDiffusionPipeline.from_pretrained(model), "SD on a DDPM folder")
    tmp = tempfile.mkdtemp()
    try:
        bad = os.path.join(tmp, "bad")
        shutil.copytree(model, bad)
        cfg = json.load(open(os.path.join(bad, "unet", "config.json")))
        cfg["layers_per_block"] = -1
        json.dump(cfg, open(os.path.join(bad, "unet", "config.json"), "w"))
        e = raises(ValueError, lambda: DDIMPipeline.from_pretrained(bad), "a bad unet config", "layers_per_block")
        check(e is not None and getattr(e, "status", "") == "ERR_CONFIG" and isinstance(e, cdiffusers.CdiffusersError),
              "errors carry the library's status")
        with open(os.path.join(bad, "unet", "diffusion_pytorch_model.safetensors"), "wb") as f:
            f.write(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
        cfg["layers_per_block"] = 1
        json.dump(cfg, open(os.path.join(bad, "unet", "config.json"), "w"))
        raises(OSError, lambda: DDIMPipeline.from_pretrained(bad), "a broken safetensors file")
        # a Hub id resolves to the cache's snapshot (no download)
        snap = os.path.join(tmp, "hub", "models--google--ddpm-cifar10-32", "snapshots", "abc123")
        os.makedirs(os.path.dirname(snap))
        os.makedirs(os.path.join(tmp, "hub", "models--google--ddpm-cifar10-32", "refs"))
        os.symlink(os.path.abspath(model), snap)
        open(os.path.join(tmp, "hub", "models--google--ddpm-cifar10-32", "refs", "main"), "w").write("abc123")
        os.environ["HF_HUB_CACHE"] = os.path.join(tmp, "hub")
        ddim = DDIMPipeline.from_pretrained("google/ddpm-cifar10-32", use_safetensors=True)
        check(ddim.name_or_path == snap, "a Hub id resolves to the Hugging Face cache's snapshot")
        raises(OSError, lambda: DDIMPipeline.from_pretrained("google/not-cached"), "an uncached Hub id",
               "does not download")
    finally:
        shutil.rmtree(tmp)


def main():
    guide_ddim_snippet()
    ddpm_cases()
    pipe = sd_cases()
    sd_arguments(pipe)
    generator_kinds(pipe)
    img2img_cases()
    interrupt_and_leaks()
    loading()
    print("%d passed, %d failed" % (len(passes), len(failures)))
    for f in failures:
        print("FAILED: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
