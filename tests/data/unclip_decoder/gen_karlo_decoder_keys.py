"""Lists the state_dict (name and shape, one per line, diffusers' order) of
UNet2DConditionModel built from a config.json, without loading weights.

Usage: gen_karlo_decoder_keys.py CONFIG_JSON OUT_TXT
  (made from karlo-v1-alpha's decoder/config.json, copied here as
  karlo_decoder_config.json, with diffusers 0.32.2 + torch 1.13 CPU)
test_unet_karlo_decoder compares cdf_unet2d_cond_describe against it."""
import json
import sys

import torch
from diffusers import UNet2DConditionModel


def main():
    cfg_path, out_path = sys.argv[1], sys.argv[2]
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    # shapes only: parameters are created uninitialised on the CPU, one model at a time
    with torch.no_grad():
        model = UNet2DConditionModel.from_config(cfg)
    with open(out_path, "w") as f:
        for name, t in model.state_dict().items():
            f.write("%s %s\n" % (name, ",".join(str(d) for d in t.shape)))


if __name__ == "__main__":
    main()
