"""Makes tests/data/unclip_decoder/extra: a second tiny UnCLIP-style decoder
(UNet2DConditionModel) exercising what the Karlo golden cases leave at their
defaults -- only_cross_attention per block, resnet_skip_time_act,
resnet_out_scale_factor, mid_block_scale_factor, time_embedding_act_fn, a
per-block attention_head_dim list (SimpleCrossAttnUpBlock2D takes entry i,
not the reversed one), layers_per_block per block, F16 weights -- and its
float32 torch output for one batch of two.  No attention mask: diffusers
cannot apply one to only_cross_attention blocks (the golden cases cover it).

Usage: gen_extra.py OUT_DIR   (diffusers 0.32.2, torch 1.13 CPU)
Writes OUT_DIR/decoder/{config.json, diffusion_pytorch_model.safetensors}
(F16) and OUT_DIR/case.json with sample, ctx, class_labels, output (.f32.bin).
"""
import json
import os
import sys

import numpy as np
import torch
from diffusers import UNet2DConditionModel

CONFIG = dict(
    sample_size=8, in_channels=3, out_channels=6,
    down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"],
    up_block_types=["SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
    mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    block_out_channels=[4, 8], layers_per_block=[1, 2], attention_head_dim=[2, 4],
    only_cross_attention=[False, True], norm_num_groups=2, cross_attention_dim=6,
    class_embed_type="identity", resnet_time_scale_shift="scale_shift", resnet_skip_time_act=True,
    resnet_out_scale_factor=2.0, mid_block_scale_factor=1.5, time_embedding_act_fn="silu",
)
BATCH, SEQ, T = 2, 5, 999


def main():
    out = sys.argv[1]
    torch.manual_seed(1234)
    model = UNet2DConditionModel(**CONFIG).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.1)
            elif p.ndim == 1:  # norm scales
                p.copy_(torch.rand_like(p) * 0.5 + 0.75)
            p.copy_(p.half().float())  # the F16 file holds exactly these values
    model.half().save_pretrained(os.path.join(out, "decoder"), safe_serialization=True)
    model.float()
    g = torch.Generator().manual_seed(99)
    sample = torch.randn(BATCH, 3, 8, 8, generator=g)
    ctx = torch.randn(BATCH, SEQ, CONFIG["cross_attention_dim"], generator=g)
    temb = 4 * CONFIG["block_out_channels"][0]
    labels = torch.randn(BATCH, temb, generator=g) * 0.5
    with torch.no_grad():
        y = model(sample, T, encoder_hidden_states=ctx, class_labels=labels).sample
    arrays = {}
    for key, a in (("sample", sample), ("ctx", ctx), ("class_labels", labels), ("output", y)):
        a = a.numpy().astype("<f4")
        a.tofile(os.path.join(out, key + ".f32.bin"))
        arrays[key] = {"file": key + ".f32.bin", "shape": list(a.shape), "dtype": "float32",
                       "max_abs": float(np.abs(a).max())}
    case = {"timestep": T, "arrays": arrays, "config": CONFIG,
            "generator": "gen_extra.py (torch.manual_seed(1234) weights, Generator(99) inputs)"}
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(case, f, indent=1)


if __name__ == "__main__":
    main()
