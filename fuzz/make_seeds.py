#!/usr/bin/python3
"""Writes the seed corpora fuzz/corpus/<harness>/ from the golden files in
tests/data (and models/).  Run from anywhere: /usr/bin/python3 fuzz/make_seeds.py
Needs python3 (numpy for the .npy seeds).  Seeds are kept small: libFuzzer's
default -max_len follows the largest seed, and small inputs fuzz faster."""
import glob, hashlib, json, os, shutil, struct, sys, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "fuzz", "corpus")
SEP = b"\n####\n"


def put(harness, data, name=None):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st_file(tensors, meta=None):
    """safetensors bytes from [(name, dtype, shape, bytes)]."""
    h, data = {}, b""
    for name, dt, shape, raw in tensors:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta is not None:
        h["__metadata__"] = meta
    hb = json.dumps(h, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb)) + hb + data


def seeds_safetensors():
    # the golden tiny models' headers, each cut down to a few tensors of its own dtypes and shapes
    for path in sorted(glob.glob(os.path.join(DATA, "**", "*.safetensors"), recursive=True)):
        b = open(path, "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8:8 + n])
        body = b[8 + n:]
        names = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
        picked = []
        for k in names:
            e = h[k]
            raw = body[e["data_offsets"][0]:e["data_offsets"][1]]
            if len(raw) <= 256:
                picked.append((k, e["dtype"], e["shape"], raw))
            if len(picked) == 4:
                break
        put("fuzz_safetensors", st_file(picked, h.get("__metadata__")))
    put("fuzz_safetensors", st_file([]))
    put("fuzz_safetensors", st_file([], {"format": "pt"}))
    put("fuzz_safetensors", st_file([("a", "F32", [2, 2], bytes(16)), ("b", "BF16", [3], bytes(6)),
                                    ("c", "F16", [], bytes(2)), ("d", "U8", [0, 5], b""),
                                    ("e", "I64", [1], bytes(8)), ("f", "F64", [1, 1, 1, 1, 1, 1, 1, 1], bytes(8))],
                                   {"k": "v"}))


def seeds_config():
    files = glob.glob(os.path.join(DATA, "**", "*.json"), recursive=True)
    files += glob.glob(os.path.join(ROOT, "models", "**", "*.json"), recursive=True)
    for path in sorted(files):
        base = os.path.basename(path)
        if base in ("vocab.json",) or os.path.getsize(path) > 8192:
            continue
        if base in ("config.json", "model_index.json", "scheduler_config.json", "sd15_vae_config.json"):
            put("fuzz_config", open(path, "rb").read())
    # every scheduler config of the scheduler goldens
    for man in ("sched_extra/sd/manifest.json",):
        m = json.load(open(os.path.join(DATA, man)))
        for run in m.get("runs", []):
            if "config" in run:
                put("fuzz_config", json.dumps(run["config"]))
    put("fuzz_config", '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,'
                       ' "trained_betas": [0.1, 0.2, 0.3], "num_train_timesteps": 3}')


def seeds_tokenizer():
    tok = os.path.join(DATA, "tokenizer")
    vocab = json.load(open(os.path.join(tok, "vocab.json"), encoding="utf-8"))
    merges = open(os.path.join(tok, "merges.txt"), encoding="utf-8").read().split("\n")
    cfg = open(os.path.join(tok, "tokenizer_config.json"), "rb").read()
    stm = open(os.path.join(tok, "special_tokens_map.json"), "rb").read()
    for nv, nm in ((300, 40), (600, 200), (1000, 500)):
        items = sorted(vocab.items(), key=lambda kv: kv[1])[:nv]
        v = dict(items)
        v["<|startoftext|>"] = nv
        v["<|endoftext|>"] = nv + 1
        vb = json.dumps(v, ensure_ascii=False).encode()
        mb = "\n".join(merges[:nm + 1]).encode()
        put("fuzz_tokenizer_load", vb + SEP + mb)
        put("fuzz_tokenizer_load", vb + SEP + mb + SEP + cfg + SEP + stm)
    small = {"a": 0, "b": 1, "ab": 2, "a</w>": 3, "b</w>": 4, "ab</w>": 5, "<|startoftext|>": 6, "<|endoftext|>": 7}
    put("fuzz_tokenizer_load", json.dumps(small).encode() + SEP + b"#version: 0.2\na b\na b</w>\n" + SEP +
        b'{"model_max_length": 8, "additional_special_tokens": ["<x>"], "added_tokens_decoder":'
        b' {"8": {"content": "<x>"}}}' + SEP + b'{"pad_token": "<|endoftext|>"}')
    for line in open(os.path.join(tok, "tokenizer_golden.jsonl"), encoding="utf-8"):
        put("fuzz_tokenizer_encode", json.loads(line)["text"].encode("utf-8", "surrogatepass"))


def png_bytes(w, h, color, depth, rows, texts=(), interlace=0, extra=()):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    for t, d in extra:
        out += chunk(t, d)
    for k, v in texts:
        out += chunk(b"tEXt", k + b"\0" + v)
    raw = b"".join(b"\0" + r for r in rows)
    out += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return out


def seeds_png():
    params = json.dumps({"model": "m", "pipeline": "DDIMPipeline", "scheduler": "DDIMScheduler", "steps": 2,
                         "seeds": ["0"], "eta": 0.0, "height": 4, "width": 4}).encode()
    rgb = [bytes((x * 40 + y) & 255 for x in range(12)) for y in range(4)]
    put("fuzz_png", png_bytes(4, 4, 2, 8, rgb, [(b"parameters", params), (b"Software", b"cdiffusers")]))
    put("fuzz_png", png_bytes(4, 4, 6, 8, [bytes(16)] * 4, [(b"parameters", b"{}")]))
    put("fuzz_png", png_bytes(3, 2, 0, 8, [b"\x00\x80\xff"] * 2))
    put("fuzz_png", png_bytes(8, 1, 0, 1, [b"\xa5"]))
    put("fuzz_png", png_bytes(2, 2, 0, 16, [bytes(4)] * 2))
    put("fuzz_png", png_bytes(2, 2, 4, 8, [bytes(4)] * 2))
    put("fuzz_png", png_bytes(2, 2, 3, 8, [b"\x00\x01"] * 2, extra=[(b"PLTE", b"\xff\x00\x00\x00\xff\x00"),
                                                                     (b"tRNS", b"\x80")]))
    put("fuzz_png", png_bytes(5, 5, 2, 8, [bytes(15)] * 5, interlace=1))
    z = b"parameters\0\0" + zlib.compress(params)
    put("fuzz_png", png_bytes(1, 1, 2, 8, [bytes(3)], extra=[(b"zTXt", z)]))
    it = b"parameters\0\0\0\0\0" + '{"prompt": ["caf\u00e9"]}'.encode()
    put("fuzz_png", png_bytes(1, 1, 2, 8, [bytes(3)], extra=[(b"iTXt", it)]))


def seeds_npy():
    try:
        import numpy as np
    except ImportError:
        print("numpy missing: no .npy seeds", file=sys.stderr)
        return
    import io
    arrays = [np.zeros((2, 3), np.float32), np.arange(5, dtype=np.float64), np.ones((1, 2, 2, 1), np.float16),
              np.arange(4, dtype=np.int64).reshape(2, 2), np.arange(3, dtype=np.int32), np.arange(6, dtype=np.uint8),
              np.zeros((0, 4), np.float32), np.float32(1.5)]
    g = np.fromfile(os.path.join(DATA, "numpy_rng", "seed_0.normal4096_f64.bin"), dtype="<f8")[:12]
    arrays.append(g.reshape(3, 4))
    for a in arrays:
        for ver in ((1, 0), (2, 0), (3, 0)):
            buf = io.BytesIO()
            if ver == (1, 0):
                np.save(buf, a)
            else:
                np.lib.format.write_array(buf, np.asarray(a), version=ver)
            put("fuzz_npy", buf.getvalue())


def seeds_cli():
    argvs = [
        ["m", "--pipeline", "ddim", "--steps", "2", "--seed", "0", "--quiet", "--out", "x.png"],
        ["m", "--steps=50", "--eta", "0.5", "--batch-size", "4", "--grid", "2x2", "--out", "x.png"],
        ["m", "--prompt", "a cat", "--negative-prompt", "blurry", "--guidance-scale", "7.5", "--height", "64",
         "--width", "128", "--scheduler", "euler-a", "--karras", "--seed", "[1,2,3]", "--out", "x.npy"],
        ["m", "--rng", "torch-cuda", "--gpu", "132x2048", "--seed", "18446744073709551615", "--clip-skip", "1",
         "--num-images-per-prompt", "2", "--separate", "--out", "x.png", "--threads", "2", "--variant", "fp16"],
        ["m", "--frobnicate"], ["m", "--steps", "0"], ["m", "--out", "x.jpg"],
    ]
    for a in argvs:
        put("fuzz_cli", b"\x00" + b"\x00".join(s.encode() for s in a))
    params = {"model": "m", "pipeline": "StableDiffusionPipeline", "scheduler": "PNDMScheduler",
              "prompt": ["a cat"], "negative_prompt": [], "num_images_per_prompt": 1, "guidance_scale": 7.5,
              "guidance_rescale": 0, "clip_skip": 0, "steps": 2, "eta": 0, "height": 64, "width": 64,
              "generator": "numpy.random.Generator(PCG64)", "generator_mode": "one for the batch",
              "seeds": ["0"], "weights_hash": "0123456789abcdef", "cdiffusers": "0.1.0"}
    put("fuzz_cli", b"\x01" + json.dumps(params).encode())
    params.update({"pipeline": "DDIMPipeline", "batch_size": 2, "seeds": ["1", "[4,5]"], "generator": "torch-cuda",
                   "gpu_sm_count": 132, "gpu_threads_per_sm": 2048})
    put("fuzz_cli", b"\x01" + json.dumps(params).encode())
    for vals in (["12", "0.5", "2,3,32,32", "a1111", "0", "1"], ["1000000", "-1e308", "1", "132x2048", "[1,2]", "99"],
                 ["x", "nan", "2,,3", "h100-sxm", "123456789012345678901234567890", "-5"]):
        put("fuzz_cli", b"\x02" + b"\x00".join(v.encode() for v in vals))


if __name__ == "__main__":
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    seeds_safetensors()
    seeds_config()
    seeds_tokenizer()
    seeds_png()
    seeds_npy()
    seeds_cli()
    for h in sorted(os.listdir(OUT)):
        d = os.path.join(OUT, h)
        print(h, len(os.listdir(d)), "seeds,", sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)), "bytes")
