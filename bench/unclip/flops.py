"""FLOPs of one step of each UnCLIP loop, counted with PyTorch forward hooks.

usage: flops.py MODEL_DIR [--threads T]

Builds the prior, the decoder and super_res_first from MODEL_DIR's config.json files (weights
not read: every torch.nn.init call is made a zero fill, so construction is quick) and runs one
forward of each with the shapes of one step of the benchmark's workload (one image, guidance on):
prior batch 2 (77 text tokens), decoder batch 2 at its sample size with 4 + 77 context tokens,
super-res batch 1 at its sample size with 6 input channels.  Counts 2 x MACs of every Conv2d,
Linear and attention matmul (q k^T and p v; the decoder's SimpleCrossAttn attends over the
pixels plus the context tokens); group/layer norms, activations, softmax, adds and resampling are
not counted.  Prints one JSON line: {"prior": {"gflop": ..., "parts": {...}}, ...}.  Takes a few
minutes on 2 cores (the forwards are real).  Needs torch and diffusers (PYTHONPATH as in run.sh).
"""
import argparse
import json
import os

import torch

try:
    import safetensors.torch  # noqa: F401
except ImportError:
    pass


def zero_init():
    """Every torch.nn.init fill becomes a zero fill (construction without the random-init cost)."""
    def z(t, *a, **k):
        with torch.no_grad():
            return t.zero_()
    for name in ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
                 "trunc_normal_", "constant_", "ones_", "zeros_", "orthogonal_"):
        if hasattr(torch.nn.init, name):
            setattr(torch.nn.init, name, z)


def count(model, run):
    from diffusers.models.attention_processor import Attention
    total = {"conv": 0, "linear": 0, "attn": 0}

    def conv_hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total["conv"] += 2 * out.numel() * k

    def lin_hook(mod, inp, out):
        total["linear"] += 2 * out.numel() * mod.in_features

    state = {}  # "ctx": the encoder hidden states of the run (passed as a keyword, so hooks do not see it)

    def attn_post(mod, inp, out):
        x = inp[0]
        b = x.shape[0]
        nq = x.shape[2] * x.shape[3] if x.dim() == 4 else x.shape[1]
        ctx = state.get("ctx")
        if getattr(mod, "added_kv_proj_dim", None) is not None and ctx is not None:
            nkv = (0 if mod.only_cross_attention else nq) + ctx.shape[1]
        elif mod.is_cross_attention and ctx is not None:
            nkv = ctx.shape[1]
        else:
            nkv = nq
        total["attn"] += 2 * 2 * b * nq * nkv * mod.inner_dim

    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.register_forward_hook(conv_hook)
        elif isinstance(mod, torch.nn.Linear):
            mod.register_forward_hook(lin_hook)
        elif isinstance(mod, Attention):
            mod.register_forward_hook(attn_post)
    with torch.no_grad():
        run(state)
    return dict(gflop=round(sum(total.values()) / 1e9, 1), parts={k: round(v / 1e9, 1) for k, v in total.items()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    zero_init()
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel
    j = lambda c: os.path.join(a.model, c)  # noqa: E731
    out = {}

    prior = PriorTransformer.from_config(PriorTransformer.load_config(j("prior"))).eval()
    D, L = prior.config.embedding_dim, prior.config.num_embeddings
    mask = torch.ones(2, L, dtype=torch.bool)

    def run_prior(state):
        prior(torch.zeros(2, D), timestep=500, proj_embedding=torch.zeros(2, D),
              encoder_hidden_states=torch.zeros(2, L, D), attention_mask=mask)
    out["prior"] = count(prior, run_prior)
    del prior

    dec = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(j("decoder"))).eval()
    c, h = dec.config.in_channels, dec.config.sample_size
    with open(j("text_proj/config.json")) as f:
        tp = json.load(f)
    S = tp.get("clip_extra_context_tokens", 4) + L
    ctx = torch.zeros(2, S, dec.config.cross_attention_dim)

    def run_dec(state):
        state["ctx"] = ctx
        dec(torch.zeros(2, c, h, h), 500, encoder_hidden_states=ctx,
            class_labels=torch.zeros(2, tp.get("time_embed_dim", 1280)),
            attention_mask=torch.ones(2, S, dtype=torch.bool))
    out["decoder"] = count(dec, run_dec)
    del dec

    sr = UNet2DModel.from_config(UNet2DModel.load_config(j("super_res_first"))).eval()
    H, ci = sr.config.sample_size, sr.config.in_channels

    def run_sr(state):
        sr(torch.zeros(1, ci, H, H), 500)
    out["super_res"] = count(sr, run_sr)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
