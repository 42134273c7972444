#!/usr/bin/python3
"""UnCLIP golden cases made in this repository (see README.md, "Cases made in this repository").

Builds a second tiny Karlo-layout pipeline with other dimensions, `pipelines/tiny-karlo-b` (F32 safetensors),
and `pipelines/tiny-karlo-b-f16` (the same weights stored as float16; the reference upcasts them to float32),
then runs cases on them with the live reference and writes them in the format of the public cases
(`cases/<name>/case.json` + raw little-endian arrays): every stage boundary of a float32 run, captured with a
wrapped `_encode_prompt`, forward hooks on text_proj / the decoder, a wrapped `scheduler.step` per stage, the
wrapped `prior.post_process_latents` and `F.interpolate` of the pipeline module, and the noise from the patched
randn (mindone_rng's log); then a float64 rerun with the identical float32-rounded noise (propagated floor) and
a float64 rerun whose stages are fed the float32 run's inputs (isolated floor), and `suggested_tolerance` as
README.md defines it: atol / p99_atol / mean_atol = 8x max / p99 / mean of |fp32 - fp64|, rounded to two
significant digits; outlier_atol = p99_atol; max_outliers = max(4x the float64 run's count above outlier_atol,
0.1% of the elements); noise arrays exact.

Reference: diffusers 0.32.2 UnCLIPPipeline, torch CPU, 1 thread, mindone numpy-Generator noise, assembled by the
shared reference loader (`load_pipelines.load_unclip`).

usage (from anywhere; UNCLIP = this folder, tests/data/unclip):
    PYTHONPATH=<diffusers>:<reference>/shim:<reference>/transformers_stub:<reference> HF_HUB_OFFLINE=1 \\
    /usr/bin/python3 gen_cases.py UNCLIP [--pipelines] [--cases] [--verify] [--only NAME ...]

  --pipelines  (re)write pipelines/tiny-karlo-b and pipelines/tiny-karlo-b-f16 (the tokenizer and the three
               scheduler configs are copied from pipelines/tiny-karlo-a: Karlo's, verbatim)
  --cases      (re)write the cases of CASES below and their entries in manifest.json
  --verify     rerun the float32 reference on the stored cases and report max |live - stored| per array
               (0 on the machine that made them) and regenerate every stored noise array from the seeds
  default: --pipelines --cases --verify
"""
import argparse
import functools
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch

import load_pipelines as lp
import mindone_rng

torch.set_num_threads(1)
try:
    import diffusers.utils.logging as _dlog
    _dlog.set_verbosity_error()  # "accelerate not found" notices, the truncation warning
except ImportError:
    pass

# ----------------------------------------------------------------------------------------------- pipelines

B_TEXT = dict(hidden_size=16, intermediate_size=44, num_attention_heads=4, num_hidden_layers=2, projection_dim=16)
B_PRIOR = dict(embedding_dim=16, num_attention_heads=4, attention_head_dim=6, num_layers=3, num_embeddings=77,
               additional_embeddings=4)
B_TEXT_PROJ = dict(clip_embeddings_dim=16, clip_extra_context_tokens=4, time_embed_dim=32, cross_attention_dim=32)
B_DECODER = dict(sample_size=24, in_channels=3, out_channels=6, block_out_channels=[8, 16, 24], layers_per_block=2,
                 down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                                   "SimpleCrossAttnDownBlock2D"],
                 up_block_types=["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
                 mid_block_type="UNetMidBlock2DSimpleCrossAttn", attention_head_dim=8, norm_num_groups=4,
                 cross_attention_dim=32, class_embed_type="identity", resnet_time_scale_shift="scale_shift")
B_SUPER_RES = dict(sample_size=64, in_channels=6, out_channels=3, block_out_channels=[8, 12, 16], layers_per_block=1,
                   down_block_types=["ResnetDownsampleBlock2D"] * 3, up_block_types=["ResnetUpsampleBlock2D"] * 3,
                   add_attention=False, norm_num_groups=4)
SEEDS = {"text_encoder": 1101, "prior": 1102, "text_proj": 1103, "decoder": 1104, "super_res_first": 1105,
         "super_res_last": 1106, "probe": 1199}
SCHEDULERS = ("prior_scheduler", "decoder_scheduler", "super_res_scheduler")
WEIGHTS = {"text_encoder": "model.safetensors"}
COMPONENTS = ("text_encoder", "prior", "text_proj", "decoder", "super_res_first", "super_res_last")


def randomize(model, seed):
    """Every parameter random, none left at 0 or 1 (tiny-karlo-a's recipe): matrices and convolutions
    N(0, 1/fan_in); norm scales in [0.75, 1.25] (not within 0.004 of 1); biases N(0, 0.1^2); token / position embeddings, the prior's
    prd_embedding and positional_embedding N(0, 0.5^2); clip_mean N(0, 0.3^2); clip_std U(0.4, 1.2);
    learned_classifier_free_guidance_embeddings N(0, 1).  Drawn from one numpy PCG64 stream in sorted name order."""
    g = np.random.Generator(np.random.PCG64(seed))
    sd = model.state_dict()
    for name in sorted(sd):
        t = sd[name]
        if not t.is_floating_point():
            continue
        n, shape = t.numel(), tuple(t.shape)
        leaf = name.rsplit(".", 1)[-1]
        if name.endswith(("token_embedding.weight", "position_embedding.weight")) or \
                name in ("prd_embedding", "positional_embedding"):
            v = 0.5 * g.standard_normal(n)
        elif name == "clip_mean":
            v = 0.3 * g.standard_normal(n)
        elif name == "clip_std":
            v = g.uniform(0.4, 1.2, n)
        elif name == "learned_classifier_free_guidance_embeddings":
            v = g.standard_normal(n)
        elif t.ndim >= 2:
            v = g.standard_normal(n) / math.sqrt(n / shape[0])
        elif leaf == "weight":  # norm scales, kept 0.004 away from 1 (float16 would round those to 1)
            u = g.uniform(-1.0, 1.0, n)
            v = 1.0 + np.sign(u) * (0.004 + 0.246 * np.abs(u))
        elif leaf == "bias":
            v = 0.1 * g.standard_normal(n)
        else:
            raise ValueError("no rule for " + name)
        with torch.no_grad():
            t.copy_(torch.from_numpy(v.reshape(shape)).to(t.dtype))
    model.load_state_dict(sd)


def scale_rows(weight, bias, rows, factor):
    with torch.no_grad():
        weight[rows] *= factor
        bias[rows] *= factor


def probe_texts(te, tok):
    prompts = ["a photo of a dog", "two birds on a wire, at dawn", "", "abstract shapes in blue and gold"]
    enc = tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = te(enc.input_ids)
    return out.text_embeds, out.last_hidden_state, enc.attention_mask.bool()


def build_b(root, tiny_a):
    """pipelines/tiny-karlo-b: F32 weights, output layers scaled on a fixed probe (prior x0 std 1.5, decoder
    eps std 1 and variance channels 0.5, super-res eps 1)."""
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer
    from transformers import CLIPTextConfig
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.unclip.text_proj import UnCLIPTextProjModel
    from safetensors.torch import save_file

    out = os.path.join(root, "pipelines", "tiny-karlo-b")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    shutil.copy(os.path.join(tiny_a, "model_index.json"), out)
    shutil.copytree(os.path.join(tiny_a, "tokenizer"), os.path.join(out, "tokenizer"))
    for s in SCHEDULERS:
        shutil.copytree(os.path.join(tiny_a, s), os.path.join(out, s))
    tok = CLIPTokenizer.from_pretrained(os.path.join(out, "tokenizer"))
    pg = np.random.Generator(np.random.PCG64(SEEDS["probe"]))
    probe = lambda *shape: torch.from_numpy(pg.standard_normal(shape).astype(np.float32))  # noqa: E731

    # text encoder (transformers layout)
    tcfg = json.load(open(os.path.join(tiny_a, "text_encoder", "config.json")))
    tcfg.update(B_TEXT)
    te = CLIPTextModelWithProjection(CLIPTextConfig(**{k: v for k, v in tcfg.items() if k not in (
        "architectures", "model_type", "torch_dtype", "transformers_version")}))
    randomize(te, SEEDS["text_encoder"])
    te.eval()
    os.makedirs(os.path.join(out, "text_encoder"))
    sd = {k: v.contiguous() for k, v in te.state_dict().items() if k != "text_model.embeddings.position_ids"}
    save_file(sd, os.path.join(out, "text_encoder", WEIGHTS["text_encoder"]), metadata={"format": "pt"})
    with open(os.path.join(out, "text_encoder", "config.json"), "w") as f:
        json.dump(dict(sorted(tcfg.items())), f, indent=2)
        f.write("\n")
    pe, hid, mask = probe_texts(te, tok)

    # prior
    pcfg = json.load(open(os.path.join(tiny_a, "prior", "config.json")))
    pcfg.update(B_PRIOR)
    prior = PriorTransformer.from_config(pcfg)
    randomize(prior, SEEDS["prior"])
    prior.eval()
    with torch.no_grad():
        x0 = torch.cat([prior(probe(4, 16), timestep=t, proj_embedding=pe, encoder_hidden_states=hid,
                              attention_mask=mask).predicted_image_embedding for t in (999, 500, 100)])
    scale_rows(prior.proj_to_clip_embeddings.weight, prior.proj_to_clip_embeddings.bias, slice(None),
               1.5 / float(x0.std()))
    prior.save_pretrained(os.path.join(out, "prior"), safe_serialization=True)

    # text_proj
    tpcfg = json.load(open(os.path.join(tiny_a, "text_proj", "config.json")))
    tpcfg.update(B_TEXT_PROJ)
    tp = UnCLIPTextProjModel.from_config(tpcfg)
    randomize(tp, SEEDS["text_proj"])
    tp.eval()
    tp.save_pretrained(os.path.join(out, "text_proj"), safe_serialization=True)
    with torch.no_grad():
        img = prior.post_process_latents(probe(4, 16))
        ehs, add = tp(image_embeddings=img, prompt_embeds=pe, text_encoder_hidden_states=hid,
                      do_classifier_free_guidance=False)

    # decoder
    dcfg = json.load(open(os.path.join(tiny_a, "decoder", "config.json")))
    dcfg.update(B_DECODER)
    dec = UNet2DConditionModel.from_config(dcfg)
    randomize(dec, SEEDS["decoder"])
    dec.eval()
    dmask = torch.nn.functional.pad(mask, (4, 0), value=True)
    with torch.no_grad():
        o = torch.cat([dec(probe(4, 3, 24, 24), t, encoder_hidden_states=ehs, class_labels=add,
                           attention_mask=dmask).sample for t in (999, 500, 100)])
    scale_rows(dec.conv_out.weight, dec.conv_out.bias, slice(0, 3), 1.0 / float(o[:, :3].std()))
    scale_rows(dec.conv_out.weight, dec.conv_out.bias, slice(3, 6), 0.5 / float(o[:, 3:].std()))
    dec.save_pretrained(os.path.join(out, "decoder"), safe_serialization=True)

    # super-res (two differently seeded nets)
    scfg = json.load(open(os.path.join(tiny_a, "super_res_first", "config.json")))
    scfg.update(B_SUPER_RES)
    for name in ("super_res_first", "super_res_last"):
        sr = UNet2DModel.from_config(scfg)
        randomize(sr, SEEDS[name])
        sr.eval()
        x = torch.cat([probe(4, 3, 64, 64), probe(4, 3, 64, 64).clamp(-1, 1)], dim=1)
        with torch.no_grad():
            o = torch.cat([sr(x, t).sample for t in (999, 500, 0)])
        scale_rows(sr.conv_out.weight, sr.conv_out.bias, slice(None), 1.0 / float(o.std()))
        sr.save_pretrained(os.path.join(out, name), safe_serialization=True)
    return out


def build_f16(src):
    """pipelines/tiny-karlo-b-f16: tiny-karlo-b's weights rounded to float16 (configs identical except the
    text encoder's torch_dtype)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = src + "-f16"
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(src, out)
    for comp in COMPONENTS:
        path = os.path.join(out, comp, WEIGHTS.get(comp, "diffusion_pytorch_model.safetensors"))
        with safe_open(path, "pt") as f:
            sd = {k: f.get_tensor(k).to(torch.float16) for k in f.keys()}
        save_file(sd, path, metadata={"format": "pt"})
    cfgp = os.path.join(out, "text_encoder", "config.json")
    cfg = json.load(open(cfgp))
    cfg["torch_dtype"] = "float16"
    with open(cfgp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return out


def describe_weights(pdir):
    from safetensors import safe_open
    rep = {}
    for comp in COMPONENTS:
        path = os.path.join(pdir, comp, WEIGHTS.get(comp, "diffusion_pytorch_model.safetensors"))
        with safe_open(path, "pt") as f:
            ts = {k: f.get_tensor(k) for k in f.keys()}
        n = sum(t.numel() for t in ts.values())
        zeros = sum(int((t == 0).sum()) for t in ts.values())
        ones = sum(int((t == 1).sum()) for t in ts.values())
        rep[comp] = "%d tensors, %d parameters, %s, %d exact zeros, %d exact ones, %d bytes" % (
            len(ts), n, sorted({str(t.dtype) for t in ts.values()}), zeros, ones, os.path.getsize(path))
    return rep


# --------------------------------------------------------------------------------------------------- cases

# name -> pipeline, prompt, generator seeds (list -> one generator per image), kwargs as passed
CASES = {
    "b_batch3_list3gen": dict(
        pipeline="pipelines/tiny-karlo-b",
        prompt=["a red bicycle, leaning on a wall!", "Hello world!! (said the robot)",
                "an oil painting of a lighthouse at dusk; waves & spray."],
        generator=dict(list=True, seeds=[101, 2024, 987654321]),
        kwargs=dict(prior_num_inference_steps=3, decoder_num_inference_steps=4, super_res_num_inference_steps=2,
                    prior_guidance_scale=3.0, decoder_guidance_scale=5.5)),
    "b_nipp2_list2gen": dict(
        pipeline="pipelines/tiny-karlo-b",
        prompt="a cat's 3 kittens: sleeping, curled up in a basket",
        generator=dict(list=True, seeds=[77, 78]),
        kwargs=dict(num_images_per_prompt=2, prior_num_inference_steps=2, decoder_num_inference_steps=3,
                    super_res_num_inference_steps=2)),
    "b_prior_gs1_decoder_gs6": dict(
        pipeline="pipelines/tiny-karlo-b",
        prompt="a green teapot on a wooden table",
        generator=dict(list=False, seeds=31337),
        kwargs=dict(prior_guidance_scale=1.0, decoder_guidance_scale=6.0, prior_num_inference_steps=4,
                    decoder_num_inference_steps=5, super_res_num_inference_steps=2)),
    "b_no_guidance_truncated": dict(
        pipeline="pipelines/tiny-karlo-b",
        prompt=("a very long description of a small village by the sea with red roofs, white walls, narrow "
                "streets, fishing boats in the harbour, gulls over the water, a church tower, a market square "
                "full of people, flowers on every balcony, mountains behind it and clouds above them in the "
                "late afternoon light, painted in the style of an old postcard, with a faded border, a "
                "handwritten greeting in the corner and a stamp showing a sailing ship"),
        generator=dict(list=False, seeds=9),
        kwargs=dict(prior_guidance_scale=1.0, decoder_guidance_scale=1.0, prior_num_inference_steps=7,
                    decoder_num_inference_steps=3, super_res_num_inference_steps=2)),
    "b_f16_one_gen": dict(
        pipeline="pipelines/tiny-karlo-b-f16",
        prompt="a snowy mountain cabin, smoke from the chimney",
        generator=dict(list=False, seeds=424242),
        kwargs=dict(prior_num_inference_steps=4, decoder_num_inference_steps=3, super_res_num_inference_steps=3,
                    prior_guidance_scale=5.0, decoder_guidance_scale=3.0)),
}

DEFAULTS = dict(num_images_per_prompt=1, prior_num_inference_steps=25, decoder_num_inference_steps=25,
                super_res_num_inference_steps=7, prior_guidance_scale=4.0, decoder_guidance_scale=8.0)
ARRAYS = [  # name, stage
    ("text_mask", "text"), ("prompt_embeds", "text"), ("text_enc_hid_states", "text"),
    ("prior_latents_init", "prior"), ("prior_noise_steps", "prior"), ("prior_latents_steps", "prior"),
    ("prior_latents_final", "prior"), ("image_embeddings", "prior"),
    ("decoder_encoder_hidden_states", "decoder"), ("additive_clip_time_embeddings", "decoder"),
    ("decoder_latents_init", "decoder"), ("decoder_noise_steps", "decoder"), ("decoder_unet0_output", "decoder"),
    ("decoder_latents_steps", "decoder"), ("decoder_output", "decoder"),
    ("image_upscaled", "super_res"), ("super_res_latents_init", "super_res"), ("super_res_latents_steps", "super_res"),
    ("image", "super_res")]
NOISE = ("prior_latents_init", "prior_noise_steps", "decoder_latents_init", "decoder_noise_steps",
         "super_res_latents_init")
FLOOR_KEYS = [a for a, _ in ARRAYS if a != "text_mask" and a not in NOISE]


def generators(g):
    if g["list"]:
        return [np.random.Generator(np.random.PCG64(s)) for s in g["seeds"]]
    return np.random.Generator(np.random.PCG64(g["seeds"]))


def run(pipe, spec, feed=None):
    """One pipeline call with every stage boundary recorded (numpy, the run's dtype).  feed (float32 arrays of
    an earlier run) replaces the text-encoder outputs, image_embeddings and decoder_output with those values
    (cast to the run's dtype): the isolated-floor run."""
    import diffusers.pipelines.unclip.pipeline_unclip as pu
    rec, undo = {}, []

    def keep(name, t):
        rec.setdefault(name, []).append(t.detach().clone().numpy())

    def fed(name, like):
        return torch.from_numpy(feed[name]).to(like.dtype)

    enc_orig = pipe._encode_prompt

    def encode(*a, **kw):
        pe, hid, mask = enc_orig(*a, **kw)
        if feed is not None:
            pe, hid = fed("prompt_embeds", pe), fed("text_enc_hid_states", hid)
            assert np.array_equal(mask.numpy().astype(np.int64), feed["text_mask"])
        keep("prompt_embeds", pe)
        keep("text_enc_hid_states", hid)
        keep("text_mask", mask.to(torch.int64))
        return pe, hid, mask
    pipe._encode_prompt = encode
    undo.append(lambda: delattr(pipe, "_encode_prompt"))

    ppl_orig = pipe.prior.post_process_latents

    def post(latents):
        r = ppl_orig(latents)
        keep("image_embeddings", r)  # what this run's prior made (isolated: fed the float32 text outputs)
        return r if feed is None else fed("image_embeddings", r)
    pipe.prior.post_process_latents = post
    undo.append(lambda: delattr(pipe.prior, "post_process_latents"))

    def proj_hook(m, i, o):
        keep("decoder_encoder_hidden_states", o[0])
        keep("additive_clip_time_embeddings", o[1])

    def dec_hook(m, i, o):
        keep("decoder_unet_output", o.sample)
    hooks = [pipe.text_proj.register_forward_hook(proj_hook), pipe.decoder.register_forward_hook(dec_hook)]
    undo += [h.remove for h in hooks]

    for stage in ("prior", "decoder", "super_res"):
        sch = getattr(pipe, stage + "_scheduler")
        orig = sch.step

        def step(*a, _orig=orig, _stage=stage, **kw):
            r = _orig(*a, **kw)
            keep(_stage + "_latents_steps", r.prev_sample)
            return r
        sch.step = step
        undo.append(lambda s=sch: delattr(s, "step"))

    F = pu.F
    interp_orig = F.interpolate

    @functools.wraps(interp_orig)  # keeps the signature: the pipeline passes antialias only if it sees it
    def interpolate(x, *a, **kw):
        assert kw.get("antialias") is True and kw.get("mode") == "bicubic", kw
        keep("decoder_output", x)  # what this run's decoder made (isolated: fed the float32 image_embeddings)
        if feed is not None:
            x = fed("decoder_output", x)
        y = interp_orig(x, *a, **kw)
        keep("image_upscaled", y)
        return y

    class _F:
        def __getattr__(self, k):
            return interpolate if k == "interpolate" else getattr(F, k)
    pu.F = _F()
    undo.append(lambda: setattr(pu, "F", F))

    mindone_rng.STATE["log"] = []
    try:
        t0 = time.time()
        image = pipe(spec["prompt"], generator=generators(spec["generator"]), output_type="np",
                     **spec["kwargs"]).images
        secs = time.time() - t0
    finally:
        noise = mindone_rng.STATE["log"]
        mindone_rng.STATE["log"] = None
        for u in reversed(undo):
            u()
    out = {k: v[0] for k, v in rec.items() if not k.endswith("_steps") and k != "decoder_unet_output"}
    for k in ("prior_latents_steps", "decoder_latents_steps", "super_res_latents_steps"):
        out[k] = np.stack(rec[k])
    out["prior_latents_final"] = out["prior_latents_steps"][-1]
    out["decoder_unet0_output"] = rec["decoder_unet_output"][0]
    out["image"] = image
    for k in ("text_mask", "prompt_embeds", "text_enc_hid_states", "image_embeddings", "decoder_output",
              "image_upscaled", "decoder_encoder_hidden_states", "additive_clip_time_embeddings"):
        assert len(rec[k]) == 1, (k, len(rec[k]))
    n = [len(out[k]) for k in ("prior_latents_steps", "decoder_latents_steps", "super_res_latents_steps")]
    noise = [x.numpy() for x in noise]
    assert len(noise) == sum(n), (len(noise), n)
    i = 0
    for stage, cnt in zip(("prior", "decoder", "super_res"), n):
        out[stage + "_latents_init"] = noise[i]
        out[stage + "_noise_steps"] = np.stack(noise[i + 1:i + cnt]) if cnt > 1 else None
        i += cnt
    out["super_res_noise_steps"] = None  # not stored (size): regenerated from the seeds
    return out, len(noise), secs


def sig2(x):
    return float("%.2g" % x)


def stats(d):
    d = d.ravel()
    p99 = float(np.percentile(d, 99))
    st = {"max": float(d.max()), "p999": float(np.percentile(d, 99.9)), "p99": p99, "mean": float(d.mean()),
          "n": int(d.size), "n_over_8xp99": int((d > 8 * p99).sum())}
    return st


def tolerance(d):
    d = d.ravel()
    p99 = float(np.percentile(d, 99))
    oat = sig2(8 * p99)
    return {"atol": sig2(8 * float(d.max())), "p99_atol": oat, "mean_atol": sig2(8 * float(d.mean())),
            "outlier_atol": oat, "max_outliers": max(4 * int((d > oat).sum()), int(0.001 * d.size))}


class JSONOut:
    """indent-1 JSON like the public case.json files: a list of scalars on one line."""

    @staticmethod
    def dump(o, ind=0):
        sp = " " * (ind + 1)
        if isinstance(o, dict):
            if not o:
                return "{}"
            return "{\n" + ",\n".join(sp + json.dumps(k) + ": " + JSONOut.dump(v, ind + 1) for k, v in o.items()) + \
                "\n" + " " * ind + "}"
        if isinstance(o, list):
            if all(not isinstance(v, (dict, list)) for v in o):
                return "[" + ", ".join(json.dumps(v) for v in o) + "]"
            return "[\n" + ",\n".join(sp + JSONOut.dump(v, ind + 1) for v in o) + "\n" + " " * ind + "]"
        return json.dumps(o)


def token_ids(tok, prompts):
    enc = tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    return enc.input_ids.tolist()


def make_case(root, name, spec):
    pdir = os.path.join(root, spec["pipeline"])
    kw = spec["kwargs"]
    res = dict(DEFAULTS)
    res.update({k: kw[k] for k in DEFAULTS if k in kw})
    nprompts = len(spec["prompt"]) if isinstance(spec["prompt"], list) else 1
    res["prior_guidance_scale"] = float(res["prior_guidance_scale"])
    res["decoder_guidance_scale"] = float(res["decoder_guidance_scale"])
    res["do_classifier_free_guidance"] = res["prior_guidance_scale"] > 1.0 or res["decoder_guidance_scale"] > 1.0
    res["batch_size"] = nprompts * res["num_images_per_prompt"]
    if spec["generator"]["list"]:
        assert len(spec["generator"]["seeds"]) == res["batch_size"]

    mindone_rng.STATE["via_f32"] = False
    p32 = lp.load_unclip(pdir, torch.float32)
    a32, ndraw, secs = run(p32, spec)
    mindone_rng.STATE["via_f32"] = True
    p64 = lp.load_unclip(pdir, torch.float64)
    a64, _, _ = run(p64, spec)
    i64, _, _ = run(p64, spec, feed={k: a32[k] for k in ("text_mask", "prompt_embeds", "text_enc_hid_states",
                                                           "image_embeddings", "decoder_output")})
    mindone_rng.STATE["via_f32"] = False
    for k in NOISE:  # the float64 runs saw the float32 run's noise exactly
        if a32[k] is not None:
            assert np.array_equal(a32[k], a64[k].astype(np.float32)) and np.array_equal(a32[k], i64[k].astype(np.float32))

    cdir = os.path.join(root, "cases", name)
    if os.path.exists(cdir):
        shutil.rmtree(cdir)
    os.makedirs(cdir)
    arrays, prop, iso, pstats, tol = {}, {}, {}, {}, {}
    for k, stage in ARRAYS:
        x = a32[k]
        if x is None:
            continue
        is_i64 = k == "text_mask"
        fn = k + (".i64.bin" if is_i64 else ".f32.bin")
        x = np.ascontiguousarray(x, dtype=np.int64 if is_i64 else np.float32)
        x.astype("<i8" if is_i64 else "<f4").tofile(os.path.join(cdir, fn))
        arrays[k] = {"file": fn, "shape": list(x.shape), "dtype": "int64" if is_i64 else "float32",
                     "byte_order": "little", "stage": stage}
        if not is_i64:
            arrays[k]["max_abs"] = float(np.abs(x).max())
    for k in FLOOR_KEYS:
        d = np.abs(a32[k].astype(np.float64) - a64[k].astype(np.float64))
        prop[k] = float(d.max())
        iso[k] = float(np.abs(a32[k].astype(np.float64) - i64[k].astype(np.float64)).max())
        pstats[k] = stats(d)
    for k, _ in ARRAYS:
        if k == "text_mask" or a32[k] is None:
            continue
        if k in NOISE:
            tol[k] = {"atol": 0.0, "note": "exact: float64 PCG64 draw rounded to float32"}
        else:
            tol[k] = tolerance(np.abs(a32[k].astype(np.float64) - a64[k].astype(np.float64)))
            if tol[k]["atol"] == 0.0:
                raise SystemExit("%s/%s: float64 floor 0 (the test would read atol 0 as exact)" % (name, k))

    tok = p32.tokenizer
    prompts = spec["prompt"] if isinstance(spec["prompt"], list) else [spec["prompt"]]
    sched = {s: json.load(open(os.path.join(pdir, s, "scheduler_config.json"))) for s in SCHEDULERS}
    img = a32["image"]
    case = {
        "name": name,
        "call": {"pipeline": spec["pipeline"], "pipeline_class": "UnCLIPPipeline", "prompt": spec["prompt"],
                 "generator": {"type": "numpy.random.Generator(PCG64(seed))", "list": spec["generator"]["list"],
                               "seeds": spec["generator"]["seeds"]},
                 "kwargs": dict(kw, output_type="np"), "resolved": res},
        "scheduler_configs": sched,
        "timesteps": {"prior": p32.prior_scheduler.timesteps.tolist(),
                      "decoder": p32.decoder_scheduler.timesteps.tolist(),
                      "super_res": p32.super_res_scheduler.timesteps.tolist()},
        "n_noise_draws": ndraw,
        "image_saturated_fraction": float(((img == 0) | (img == 1)).mean()),
        "arrays": arrays,
        "noise_floor_propagated_max_abs": prop,
        "noise_floor_isolated_max_abs": iso,
        "noise_floor_propagated_stats": pstats,
        "suggested_tolerance": tol,
        "seconds_fp32": round(secs, 2),
        "token_ids": {"cond": token_ids(tok, prompts),
                      "uncond": token_ids(tok, [""] * len(prompts)) if res["do_classifier_free_guidance"] else None},
    }
    with open(os.path.join(cdir, "case.json"), "w") as f:
        f.write(JSONOut.dump(case) + "\n")
    man = {"dir": "cases/" + name, "pipeline": spec["pipeline"], "image_shape": list(img.shape),
           "steps": [res["prior_num_inference_steps"], res["decoder_num_inference_steps"],
                     res["super_res_num_inference_steps"]],
           "guidance": [res["prior_guidance_scale"], res["decoder_guidance_scale"]],
           "floor_propagated": {k: prop[k] for k in ("prompt_embeds", "image_embeddings", "decoder_output", "image")},
           "floor_isolated": {k: iso[k] for k in ("image_embeddings", "decoder_output", "image")},
           "tolerance_image_atol": tol["image"]["atol"]}
    sat = float((np.abs(a32["decoder_output"]) == 1).mean())
    print("%s: %d draws, %.2fs, decoder_output at +-1: %.0f%%, image floor max %.1e p99 %.1e" % (
        name, ndraw, secs, 100 * sat, pstats["image"]["max"], pstats["image"]["p99"]))
    return man


def update_manifest(root, entries):
    path = os.path.join(root, "manifest.json")
    m = json.load(open(path))
    m["cases"].update(entries)
    with open(path, "w") as f:
        f.write(json.dumps(m, indent=1) + "\n")


def verify(root, names):
    """The stored float32 data against a fresh float32 run here, and the noise against the seeds."""
    worst = 0.0
    for name in names:
        cdir = os.path.join(root, "cases", name)
        c = json.load(open(os.path.join(cdir, "case.json")))
        spec = {"pipeline": c["call"]["pipeline"], "prompt": c["call"]["prompt"], "generator": c["call"]["generator"],
                "kwargs": {k: v for k, v in c["call"]["kwargs"].items() if k != "output_type"}}
        live, _, _ = run(lp.load_unclip(os.path.join(root, spec["pipeline"])), spec)
        rows = []
        for k, a in c["arrays"].items():
            dt = np.int64 if a["dtype"] == "int64" else np.float32
            ref = np.fromfile(os.path.join(cdir, a["file"]), dtype=dt).reshape(a["shape"])
            d = float(np.abs(live[k].astype(np.float64) - ref.astype(np.float64)).max())
            worst = max(worst, d)
            rows.append("%s %.1e" % (k, d) if d else k + " =")
        # noise from the seeds alone: init + (n - 1) step draws per stage, stage after stage
        g, r = c["call"]["generator"], c["call"]["resolved"]
        gens = generators(g)
        bsz = r["batch_size"]
        draws = []
        shapes = [(c["arrays"]["prior_latents_init"]["shape"], r["prior_num_inference_steps"]),
                  (c["arrays"]["decoder_latents_init"]["shape"], r["decoder_num_inference_steps"]),
                  (c["arrays"]["super_res_latents_init"]["shape"], r["super_res_num_inference_steps"])]
        for shape, n in shapes:
            for _ in range(n):
                if isinstance(gens, list):
                    draws.append(np.concatenate([gg.standard_normal([1] + shape[1:]) for gg in gens]).astype(np.float32))
                else:
                    draws.append(gens.standard_normal(shape).astype(np.float32))
        assert draws[0].shape[0] == bsz
        i = 0
        ok = True
        for stage, (shape, n) in zip(("prior", "decoder", "super_res"), shapes):
            ref = np.fromfile(os.path.join(cdir, c["arrays"][stage + "_latents_init"]["file"]), dtype=np.float32)
            ok &= np.array_equal(ref, draws[i].ravel())
            key = stage + "_noise_steps"
            if key in c["arrays"]:
                ref = np.fromfile(os.path.join(cdir, c["arrays"][key]["file"]), dtype=np.float32)
                ok &= np.array_equal(ref, np.stack(draws[i + 1:i + n]).ravel())
            i += n
        print("verify %s: live fp32 vs stored: %s; noise from seeds: %s" % (name, ", ".join(rows),
                                                                             "exact" if ok else "DIFFERS"))
        worst = max(worst, 0.0 if ok else float("inf"))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("unclip", help="tests/data/unclip")
    ap.add_argument("--pipelines", action="store_true")
    ap.add_argument("--cases", action="store_true")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--only", nargs="*", default=None, help="case names (default: all)")
    a = ap.parse_args()
    if not (a.pipelines or a.cases or a.verify):
        a.pipelines = a.cases = a.verify = True
    root = os.path.abspath(a.unclip)
    names = a.only or list(CASES)
    if a.pipelines:
        b = build_b(root, os.path.join(root, "pipelines", "tiny-karlo-a"))
        f16 = build_f16(b)
        for p in (b, f16):
            for k, v in describe_weights(p).items():
                print("%s/%s: %s" % (os.path.basename(p), k, v))
    if a.cases:
        update_manifest(root, {n: make_case(root, n, CASES[n]) for n in names})
    if a.verify:
        worst = verify(root, names)
        print("verify: worst |live - stored| = %g" % worst)
        if worst != 0.0:
            sys.exit(1)


if __name__ == "__main__":
    main()
