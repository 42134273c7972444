#!/usr/bin/env python3
"""Tabulates bench/unclip/results/*.jsonl (from run.sh) as markdown.

usage: summarize.py RESULTS.jsonl [...]

Per stage: the median over rounds of each side's seconds (runs that exited 0), the ratio
cdiffusers / PyTorch, and each side's per-stage peak RSS (largest over rounds); then the whole
process's peak RSS (/usr/bin/time -v), load time, and per run the CPU seconds other processes
used meanwhile (foreign CPU: the measurement is only as good as the machine was quiet).  The
same-run check (compare.py) follows.
"""
import json
import statistics
import sys

STAGES = [("text", "text encoder (tokenize, CLIP text, cond + uncond)"),
          ("prior", "prior loop (PriorTransformer, CFG batch 2)"),
          ("decoder", "text_proj + decoder loop (UNet 64x64, CFG batch 2)"),
          ("super_res", "upscale + super-res loop (UNet 256x256, batch 1)"),
          ("post", "output to [0, 1] float32")]


def fmt(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v))


def summarize(path):
    runs, checks = {"c": [], "torch": []}, []
    with open(path) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "check" in r:
                checks.append(r)
            elif r.get("label") in runs and r.get("rc") == 0 and r.get("result"):
                runs[r["label"]].append(r)
    print("##", path)
    if not runs["c"] and not runs["torch"]:
        print("no successful runs")
        return
    case = (runs["c"] or runs["torch"])[0]["result"]["case"]
    print("case %s; rounds: cdiffusers %d, PyTorch %d" % (case, len(runs["c"]), len(runs["torch"])))
    print()

    def med(side, key, sub="stages"):
        v = [r["result"][sub][key] if sub else r["result"][key] for r in runs[side]]
        return statistics.median(v) if v else None

    def peak(side, key):
        v = [r["result"]["stage_peak_rss_mib"][key] for r in runs[side]]
        return max(v) if v else None

    print("| stage | cdiffusers (s) | PyTorch (s) | cdiffusers / PyTorch | peak RSS in stage, cdiffusers (MiB) "
          "| peak RSS in stage, PyTorch (MiB) |")
    print("|---|---|---|---|---|---|")
    for key, name in STAGES + [("total", "**total**")]:
        sub = None if key == "total" else "stages"
        c, t = med("c", key, sub), med("torch", key, sub)
        ratio = "%.2f" % (c / t) if c is not None and t else "-"
        pc = fmt(peak("c", key), 0) if key != "total" else "-"
        pt = fmt(peak("torch", key), 0) if key != "total" else "-"
        print("| %s | %s | %s | %s | %s | %s |" % (name, fmt(c), fmt(t), ratio, pc, pt))
    print()
    for side, name in (("c", "cdiffusers"), ("torch", "PyTorch")):
        if not runs[side]:
            continue
        ps = runs[side][0]["result"].get("per_step", {})
        print("%s: per step prior %s s, decoder %s s, super-res %s s; load %s s (peak RSS while loading %s MiB); "
              "process peak RSS %d MiB; abs_sum %s" % (
                  name, fmt(ps.get("prior"), 3), fmt(ps.get("decoder"), 3), fmt(ps.get("super_res"), 3),
                  fmt(med(side, "load_s", None)), fmt(max(r["result"]["load_peak_rss_mib"] for r in runs[side]), 0),
                  max(r["peak_rss_mib"] for r in runs[side]), runs[side][0]["result"].get("abs_sum")))
    for side in ("c", "torch"):
        for r in runs[side]:
            print("  run %-5s round %d: total %.1f s, wall %.1f s, own CPU %.1f s, foreign CPU %.1f s, load before %s"
                  % (side, r["round"], r["result"]["total"], r["wall_s"], r["own_cpu_s"], r["foreign_cpu_s"],
                     r["load_before"]))
    for ck in checks:
        print()
        print("same run on both sides (max |cdiffusers - PyTorch|):")
        for k, v in ck.items():
            if k == "check":
                continue
            if isinstance(v, dict):
                print("  %-17s %-16s max %.3g  p99 %.3g  mean %.3g  (max |torch| %.3g)" % (
                    k, str(v["shape"]), v["max_abs_diff"], v["p99_abs_diff"], v["mean_abs_diff"], v["max_abs_ref"]))
            else:
                print("  %-17s %s" % (k, v))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        summarize(p)


if __name__ == "__main__":
    main()
