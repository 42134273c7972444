#!/usr/bin/python3
"""Reference vectors for the UnCLIP text-side model tests (tests/test_unclip_prior.c, tests/test_unclip_text.c).

The golden UnCLIP cases (../unclip) record the prior only through the whole denoising loop (scheduler included),
so this script runs the real diffusers 0.32.2 PriorTransformer (torch CPU, float32, 1 thread) in isolation and
writes:

  * prior_<case>_t<t>[_nomask].bin  pipe.prior(latents, t, proj_embedding=prompt_embeds,
        encoder_hidden_states=text_enc_hid_states, attention_mask=text_mask).predicted_image_embedding of the
        tiny-karlo-a prior, fed the golden arrays of ../unclip/cases/<case>: the latents are
        prior_latents_init (t = timesteps[0]) or prior_latents_steps[i-1] (t = timesteps[i]), doubled
        (cat([l, l])) when the case uses guidance, exactly as the pipeline's loop does; "_nomask" runs
        attention_mask=None (no mask at all, not even the causal one).
  * variant_a/, variant_b/: two tiny PriorTransformers with every option the Karlo one leaves at its
        default switched (variant_a: norm_in "layer", embedding_proj_norm "layer", time_embed_act_fn "gelu",
        time_embed_dim / embedding_proj_dim / clip_embed_dim of their own; variant_b: added_emb_type null with
        additional_embeddings 3, encoder_hid_proj_type null), every parameter random (seeded torch), saved with
        save_pretrained, plus inputs and outputs (variant_<x>_{latents,proj,enc,mask,t,out,post}.bin);
        variant_tp/: an UnCLIPTextProjModel with 3 extra tokens (the (B, cross, extra) permutation with
        extra != 4), inputs and outputs with and without guidance.
  * state_dicts.json: names and shapes (state_dict order) of PriorTransformer / UnCLIPTextProjModel built
        from_config of tiny-karlo-a's prior and text_proj, the variants, and the real Karlo text_proj config
        (models/karlo/text_proj/config.json of the repository; the Karlo prior, 1e9 parameters, is too large
        to build here: the test checks its parse and listing by count and a few shapes).

Each prior vector is also computed in float64 (the same module .double()); manifest.json records the
float32-vs-float64 difference (noise floor) and a suggested atol = max(10 * floor, 1e-5).  The tests only read
the files written here; this script is kept for regeneration and is not run by the tests.

Run from the repository root (Debian python3 with python3-torch, python3-numpy; diffusers 0.32.2 sources and
the reference helpers (load_pipelines, transformers stand-in) on PYTHONPATH, HF_HUB_OFFLINE=1):

    /usr/bin/python3 tests/data/unclip_models/gen.py

Output: raw little-endian float32 (int64 for masks) arrays in C order; shapes in manifest.json.
"""
import copy
import json
import os
import sys

import numpy as np
import torch

OUT = os.path.dirname(os.path.abspath(__file__))
UNCLIP = os.path.join(OUT, "..", "unclip")
PIPE = os.path.join(UNCLIP, "pipelines", "tiny-karlo-a")
torch.set_num_threads(1)


def save(name, arr, dtype=np.float32):
    arr = np.ascontiguousarray(np.asarray(arr, dtype=dtype))
    arr.tofile(os.path.join(OUT, name))
    return {"file": name, "dtype": np.dtype(dtype).name, "shape": list(arr.shape)}


def case_array(case, name):
    c = json.load(open(os.path.join(UNCLIP, "cases", case, "case.json")))
    a = c["arrays"][name]
    dt = np.int64 if a["dtype"] == "int64" else np.float32
    return np.fromfile(os.path.join(UNCLIP, "cases", case, a["file"]), dtype=dt).reshape(a["shape"]), c


def run_prior(prior, lat, t, proj, enc, mask):
    out = {}
    for dt in (torch.float32, torch.float64):
        p = copy.deepcopy(prior).to(dt)
        with torch.no_grad():
            r = p(torch.from_numpy(lat).to(dt), timestep=torch.tensor(t), proj_embedding=torch.from_numpy(proj).to(dt),
                  encoder_hidden_states=torch.from_numpy(enc).to(dt),
                  attention_mask=None if mask is None else torch.from_numpy(mask)).predicted_image_embedding
        out[dt] = r.numpy().astype(np.float64).reshape(lat.shape[0], -1)
    floor = float(np.abs(out[torch.float32] - out[torch.float64]).max())
    return out[torch.float32], floor


def entry(rec, floor):
    rec["floor"] = floor
    rec["atol"] = max(10 * floor, 1e-5)
    return rec


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ("norm" in n) and n.endswith("weight"):
                p.copy_(0.75 + 0.5 * torch.rand(p.shape, generator=g))
            elif n == "clip_std":
                p.copy_(0.4 + 0.8 * torch.rand(p.shape, generator=g))
            elif p.ndim == 2 and "." in n:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / p.shape[1]) ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def state_dict_list(model):
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def main():
    import load_pipelines as lp
    from diffusers import PriorTransformer
    from diffusers.pipelines.unclip.text_proj import UnCLIPTextProjModel

    pipe = lp.load_unclip(PIPE)
    manifest = {"prior_vectors": [], "variants": {}}

    # ---- tiny-karlo-a prior on golden inputs
    for case, steps in (("batch2_list2gen", (0, 2)), ("no_guidance_gs1", (0, 3))):
        pe, c = case_array(case, "prompt_embeds")
        hid, _ = case_array(case, "text_enc_hid_states")
        mask, _ = case_array(case, "text_mask")
        init, _ = case_array(case, "prior_latents_init")
        lsteps, _ = case_array(case, "prior_latents_steps")
        cfg = c["call"]["resolved"]["do_classifier_free_guidance"]
        ts = c["timesteps"]["prior"]
        for i in steps:
            lat = init if i == 0 else lsteps[i - 1]
            lin = np.concatenate([lat, lat]) if cfg else lat
            for use_mask in (True, False) if i == 0 else (True,):
                out, floor = run_prior(pipe.prior, lin, ts[i], pe, hid, mask if use_mask else None)
                name = "prior_%s_t%d%s.bin" % (case, ts[i], "" if use_mask else "_nomask")
                rec = save(name, out)
                rec.update({"case": case, "t": ts[i], "latents": "prior_latents_init" if i == 0 else
                            "prior_latents_steps[%d]" % (i - 1), "step_index": i, "cfg": cfg, "mask": use_mask})
                manifest["prior_vectors"].append(entry(rec, floor))

    # ---- variant priors (options Karlo leaves at their defaults)
    variants = {
        "a": dict(num_attention_heads=2, attention_head_dim=4, num_layers=2, embedding_dim=6, num_embeddings=5,
                  additional_embeddings=4, time_embed_act_fn="gelu", norm_in_type="layer",
                  embedding_proj_norm_type="layer", time_embed_dim=10, embedding_proj_dim=7, clip_embed_dim=9),
        "b": dict(num_attention_heads=2, attention_head_dim=4, num_layers=2, embedding_dim=8, num_embeddings=5,
                  additional_embeddings=3, added_emb_type=None, encoder_hid_proj_type=None),
    }
    g = np.random.Generator(np.random.PCG64(20240607))
    for key, kw in variants.items():
        m = PriorTransformer(**kw).eval()
        randomize(m, 7 + ord(key))
        d = os.path.join(OUT, "variant_" + key)
        m.save_pretrained(d, safe_serialization=True)
        cfg = m.config
        inner = cfg.num_attention_heads * cfg.attention_head_dim
        b, seq = 2, cfg.num_embeddings
        lat = g.standard_normal((b, cfg.embedding_dim)).astype(np.float32)
        proj = g.standard_normal((b, cfg.embedding_proj_dim or cfg.embedding_dim)).astype(np.float32)
        enc = g.standard_normal((b, seq, cfg.embedding_dim if cfg.encoder_hid_proj_type else inner)).astype(np.float32)
        mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 0]], dtype=np.int64)
        t = 321
        out, floor = run_prior(m, lat, t, proj, enc, mask)
        with torch.no_grad():
            post = m.post_process_latents(torch.from_numpy(out.astype(np.float32))).numpy()
        rec = {"config": "variant_" + key, "t": t, "latents": save("variant_%s_latents.bin" % key, lat),
               "proj": save("variant_%s_proj.bin" % key, proj), "enc": save("variant_%s_enc.bin" % key, enc),
               "mask": save("variant_%s_mask.bin" % key, mask, np.int64), "out": save("variant_%s_out.bin" % key, out),
               "post": save("variant_%s_post.bin" % key, post)}
        manifest["variants"][key] = entry(rec, floor)

    # ---- variant text_proj: 3 extra tokens
    tp = UnCLIPTextProjModel(clip_extra_context_tokens=3, clip_embeddings_dim=6, time_embed_dim=5,
                             cross_attention_dim=7).eval()
    randomize(tp, 99)
    tp.save_pretrained(os.path.join(OUT, "variant_tp"), safe_serialization=True)
    b, seq = 2, 4
    img = g.standard_normal((b, 6)).astype(np.float32)
    rec = {"config": "variant_tp", "image": save("variant_tp_image.bin", img)}
    for cfg in (True, False):
        rows = 2 * b if cfg else b
        pe = g.standard_normal((rows, 6)).astype(np.float32)
        th = g.standard_normal((rows, seq, 6)).astype(np.float32)
        with torch.no_grad():
            hs, te = tp(image_embeddings=torch.from_numpy(img), prompt_embeds=torch.from_numpy(pe),
                        text_encoder_hidden_states=torch.from_numpy(th), do_classifier_free_guidance=cfg)
        tag = "cfg" if cfg else "nocfg"
        rec[tag] = {"prompt": save("variant_tp_%s_prompt.bin" % tag, pe), "text": save("variant_tp_%s_text.bin" % tag, th),
                    "hidden": save("variant_tp_%s_hidden.bin" % tag, hs.numpy()),
                    "time": save("variant_tp_%s_time.bin" % tag, te.numpy())}
    manifest["variants"]["tp"] = rec

    # ---- state_dict names and shapes
    sds = {"tiny-karlo-a/prior": state_dict_list(PriorTransformer.from_config(PriorTransformer.load_config(
               os.path.join(PIPE, "prior")))),
           "tiny-karlo-a/text_proj": state_dict_list(UnCLIPTextProjModel.from_config(UnCLIPTextProjModel.load_config(
               os.path.join(PIPE, "text_proj")))),
           "variant_a": state_dict_list(PriorTransformer(**variants["a"])),
           "variant_b": state_dict_list(PriorTransformer(**variants["b"])),
           "variant_tp": state_dict_list(tp)}
    karlo = os.path.join(OUT, "..", "..", "..", "models", "karlo")  # the repository's real Karlo configs
    kc = UnCLIPTextProjModel.load_config(os.path.join(karlo, "text_proj"))
    sds["karlo/text_proj"] = state_dict_list(UnCLIPTextProjModel.from_config(kc))
    json.dump(sds, open(os.path.join(OUT, "state_dicts.json"), "w"), indent=0)
    json.dump(manifest, open(os.path.join(OUT, "manifest.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
