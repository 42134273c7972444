#!/usr/bin/env python3
"""Tabulates bench/sd/results/*.jsonl (from run.sh): one row per measurement.

usage: summarize.py RESULTS.jsonl [...]
Columns: the timed figure (bench_sd stages: median of the timed reps, and the untimed warm-up;
txt2img: wall), peak RSS, and contamination (CPU seconds other processes used meanwhile; for
bench_sd stages per rep).  txt2img per step = (wall(N steps) - wall(1 step)) / (N - 1).
"""
import json
import sys


def rows(path):
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                yield json.loads(line)


def main():
    for path in sys.argv[1:]:
        print("##", path)
        walls = {}
        for r in rows(path):
            timed = [s for s in r["stages"] if "reps" in s]
            if timed:
                for s in timed:
                    print("%-16s %-15s median %7.2f s  min %7.2f s  warm-up %7.2f s  reps %s  peak RSS %5d MiB "
                          "(anon %d, file %d)  foreign CPU s/rep %s  load %s" % (
                              r["label"], s["stage"], s["median"], s["min"], s["warmup_s"], s["reps"],
                              r["peak_rss_mib"], s["rss_anon_peak_mib"], s["rss_file_peak_mib"],
                              s["foreign_cpu_s"], r["load_before"]))
            else:
                walls[r["label"]] = r["wall_s"]
                print("%-32s wall %7.2f s  own CPU %7.2f s  peak RSS %5d MiB  foreign CPU %6.1f s  waited %s s  "
                      "load %s" % (r["label"], r["wall_s"], r["own_cpu_s"], r["peak_rss_mib"], r["foreign_cpu_s"],
                                   r["waited_quiet_s"], r["load_before"]))
        one = walls.get("txt2img_1step")
        for k, v in walls.items():
            if k.startswith("txt2img_") and k.endswith("steps") and one is not None:
                n = int(k[len("txt2img_"):-len("steps")])
                if n > 1:
                    print("per step (from %s and txt2img_1step): %.2f s" % (k, (v - one) / (n - 1)))


if __name__ == "__main__":
    main()
