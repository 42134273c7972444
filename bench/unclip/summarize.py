#!/usr/bin/env python3
"""Tabulates bench/unclip/results/*.jsonl (from run.sh) as markdown.

usage: summarize.py [--target P,D,S] RESULTS.jsonl [...]

Per stage: the median over rounds of each side's seconds (runs that exited 0) and the ratio
cdiffusers / PyTorch.  When the runs used fewer steps than the target (default 25,25,7, the
pipeline's defaults), an estimate for the target is added per loop stage:
    stage_s + (N_target - N_run) * rest_per_step
where rest_per_step is the mean time of a loop's steps after its first (each step of a loop runs
the same network on the same shapes; the first one also pays cdiffusers' page-ins of the mapped
weights, so it is kept once).  Then per side: the first and later step times, load time, the
whole process's peak RSS (/usr/bin/time -v), RSS at the end of each stage and where the peak was
reached, and per run the CPU seconds other processes used meanwhile (foreign CPU: a measurement is
only as good as the machine was quiet).  The same-run check (compare.py) follows.
"""
import json
import statistics
import sys

STAGES = [("text", "text encoder (tokenizer + CLIP text, uncond and cond rows)"),
          ("prior", "prior loop (PriorTransformer, CFG batch 2)"),
          ("decoder", "text_proj + decoder loop (UNet 64x64, CFG batch 2)"),
          ("super_res", "upscale + super-res loop (UNet 256x256, batch 1)"),
          ("post", "output to [0, 1] float32")]
LOOPS = ("prior", "decoder", "super_res")


def fmt(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v))


def ratio(a, b):
    """a / b, or "-" when either is missing or under 0.05 s (too short to compare)."""
    return "%.2f" % (a / b) if a is not None and b is not None and a >= 0.05 and b >= 0.05 else "-"


def summarize(path, target):
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
    first = (runs["c"] or runs["torch"])[0]["result"]
    steps = {k: first["loops"][k]["steps"] for k in LOOPS}
    tgt = dict(zip(LOOPS, target))
    extrap = steps != tgt
    print("case %s (steps prior/decoder/super-res); rounds: cdiffusers %d, PyTorch %d" % (
        first["case"], len(runs["c"]), len(runs["torch"])))
    print()

    def med(side, get):
        v = [get(r["result"]) for r in runs[side]]
        return statistics.median(v) if v else None

    def stage(side, key):
        return med(side, lambda x: x["stages"][key])

    def est(side, key):
        if key not in LOOPS:
            return stage(side, key)
        return med(side, lambda x: x["stages"][key] + (tgt[key] - steps[key]) * x["loops"][key]["rest_per_step"])

    head = "| stage | cdiffusers (s) | PyTorch (s) | cdiffusers / PyTorch |"
    sep = "|---|---|---|---|"
    if extrap:
        t = "%d/%d/%d" % target
        head += " est. %s cdiffusers (s) | est. %s PyTorch (s) | ratio |" % (t, t)
        sep += "---|---|---|"
    print(head)
    print(sep)
    tot = {"c": [0.0, 0.0], "torch": [0.0, 0.0]}
    for key, name in STAGES:
        c, t = stage("c", key), stage("torch", key)
        row = "| %s | %s | %s | %s |" % (name, fmt(c), fmt(t), ratio(c, t))
        if extrap:
            ec, et = est("c", key), est("torch", key)
            row += " %s | %s | %s |" % (fmt(ec, 1), fmt(et, 1), ratio(ec, et))
        for side, v, e in (("c", c, est("c", key)), ("torch", t, est("torch", key))):
            if v is not None:
                tot[side][0] += v
                tot[side][1] += e
        print(row)
    c, t = med("c", lambda x: x["total"]), med("torch", lambda x: x["total"])
    row = "| **total** | %s | %s | %s |" % (fmt(c), fmt(t), ratio(c, t))
    if extrap:
        ec = tot["c"][1] if runs["c"] else None
        et = tot["torch"][1] if runs["torch"] else None
        row += " %s | %s | %s |" % (fmt(ec, 1), fmt(et, 1), ratio(ec, et))
    print(row)
    print()
    print("| per step (median over rounds) | cdiffusers first / later (s) | PyTorch first / later (s) | "
          "ratio (later steps) |")
    print("|---|---|---|---|")
    for k in LOOPS:
        cells = []
        for side in ("c", "torch"):
            f1 = med(side, lambda x: x["loops"][k]["first_step"])
            r1 = med(side, lambda x: x["loops"][k]["rest_per_step"])
            cells.append((f1, r1))
        print("| %s (%d steps) | %s / %s | %s / %s | %s |" % (
            k, steps[k], fmt(cells[0][0]), fmt(cells[0][1]), fmt(cells[1][0]), fmt(cells[1][1]),
            ratio(cells[0][1], cells[1][1])))
    print()
    for side, name in (("c", "cdiffusers"), ("torch", "PyTorch")):
        if not runs[side]:
            continue
        r0 = max(runs[side], key=lambda r: r["peak_rss_mib"])
        res = r0["result"]
        peak = res["peak_rss_so_far_mib"]
        where = next(k for k in ["load", "text", "prior", "decoder", "super_res", "post"]
                     if peak[k] >= peak["post"])
        print("%s: peak RSS %d MiB (/usr/bin/time; reached by the end of: %s); RSS at the end of load %d, "
              "text %d, prior %d, decoder %d, super-res %d MiB; load %s s; abs_sum %s" % (
                  name, r0["peak_rss_mib"], where, res["load_rss_mib"], res["rss_at_end_mib"]["text"],
                  res["rss_at_end_mib"]["prior"], res["rss_at_end_mib"]["decoder"],
                  res["rss_at_end_mib"]["super_res"], fmt(med(side, lambda x: x["load_s"])), res.get("abs_sum")))
    for side in ("c", "torch"):
        for r in runs[side]:
            print("  run %-5s round %d: total %.1f s, wall %.1f s, own CPU %.1f s, foreign CPU %.1f s, steal %s s, "
                  "load average before %s, after %s" % (side, r["round"], r["result"]["total"], r["wall_s"],
                                                         r["own_cpu_s"], r["foreign_cpu_s"], r.get("steal_s", "-"),
                                                         r["load_before"], r["load_after"]))
    for ck in checks:
        print()
        print("same run on both sides, max |cdiffusers - PyTorch| (pipeline order):")
        for k, v in ck.items():
            if k == "check":
                continue
            if isinstance(v, dict):
                print("  %-17s %-16s max %.3g  p99 %.3g  mean %.3g  (max |torch| %.3g)%s" % (
                    k, str(v["shape"]), v["max_abs_diff"], v["p99_abs_diff"], v["mean_abs_diff"], v["max_abs_ref"],
                    "  elements > 1e-3: %d, > 1e-2: %d" % (v["n_over_1e3"], v["n_over_1e2"]) if "n_over_1e3" in v
                    else ""))
            else:
                print("  %-17s %s" % (k, v))


def main(argv):
    target = (25, 25, 7)
    if len(argv) > 2 and argv[1] == "--target":
        target = tuple(int(x) for x in argv[2].split(","))
        argv = argv[:1] + argv[3:]
    if len(argv) < 2:
        sys.exit(__doc__)
    for p in argv[1:]:
        summarize(p, target)


if __name__ == "__main__":
    main(sys.argv)
