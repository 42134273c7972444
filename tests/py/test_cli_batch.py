#!/usr/bin/python3
"""`cdiffusers batch` on the tiny golden Stable Diffusion pipeline: each job's
file has the bytes `generate` writes for the same options (PNG and .npy);
shares (--shard, Slurm array, Open MPI, PMI, Kubernetes variables, a real
mpirun -np 3) cover the manifest once and give the same files; an
interrupted run (SIGINT, SIGTERM) leaves no partial file and resumes with
skips; bad lines land in failures.jsonl while the good jobs are made; an
output holding other parameters is never overwritten; DDIM, SDXL and UnCLIP
jobs give generate's files too; examples/jobs.jsonl runs.
Usage: test_cli_batch.py CLI TESTDATA.  mpirun is required when
CDF_TEST_REQUIRE_MPIRUN=1 (CI installs openmpi-bin), else skipped if missing."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngparams import png_params  # noqa: E402

CLI, DATA = sys.argv[1], sys.argv[2]
MODEL = os.path.join(DATA, "sd", "pipelines", "tiny-sd15-a")
failures = []
N_JOBS = 12  # jobs of the main manifest: a changed manifest must change this count too


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(args, env=None, **kw):
    e = dict(os.environ)
    for k in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_COUNT",
              "SLURM_ARRAY_TASK_STEP", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE",
              "JOB_COMPLETION_INDEX"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([CLI] + args, capture_output=True, text=True, env=e, **kw)


def summary(p):
    """(done, skipped, failed) from the final stdout line."""
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    parts = last.replace(",", "").split()
    if len(parts) == 6 and parts[0] == "done" and parts[2] == "skipped" and parts[4] == "failed":
        return int(parts[1]), int(parts[3]), int(parts[5])
    return None


def write_png_gray(path, w, h, fn):
    """An 8-bit greyscale PNG whose pixel (x, y) is fn(x, y)."""
    raw = b"".join(b"\0" + bytes(fn(x, y) for x in range(w)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def job_args(job):
    """generate's arguments for a manifest job, written independently of the C conversion."""
    args = []
    for k, v in job.items():
        if k == "id":
            continue
        opt = "--" + k.replace("_", "-")
        if k == "karras":
            args.append("--karras" if v else "--no-karras")
        elif k in ("original_size", "target_size", "crops_coords_top_left") and isinstance(v, list):
            args += [opt, "%d,%d" % tuple(v)]
        elif isinstance(v, list):
            for x in v:
                args += [opt, str(x)]
        else:
            args += [opt, str(v)]
    return args


def files(d, ext=(".png", ".npy", ".json")):
    return {f: open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d)) if f.endswith(ext)}


tmp = tempfile.mkdtemp(prefix="cdf_batch_")
try:
    # input pictures for the image-to-image and inpainting jobs: a generated picture and a mask
    init = os.path.join(tmp, "init.png")
    p = run(["generate", MODEL, "--prompt", "a red house", "--seed", "11", "--steps", "3", "--quiet", "--out", init])
    check(p.returncode == 0, "the init picture is made (%s)" % p.stderr.strip()[-200:])
    mask = os.path.join(tmp, "mask.png")
    write_png_gray(mask, 64, 64, lambda x, y: 255 if 16 <= x < 48 and y >= 24 else 0)
    jobs = [
        {"id": "cat", "prompt": "a photo of a cat", "seed": 0, "steps": 4},
        {"prompt": ["a dog", "a bird"], "negative_prompt": ["blurry", "ugly"], "seed": [1, 2], "steps": 3},
        "# a comment line: counted for line numbers and shares, not a job",
        {"id": "grid", "prompt": "a cat", "seed": "12345678901234567890", "steps": 3, "num_images_per_prompt": 2,
         "grid": "1x2", "scheduler": "euler-a", "guidance_scale": 5.5},
        {"id": 7, "prompt": "a house", "seed": 7, "steps": 3, "scheduler": "DPMSolverMultistepScheduler",
         "karras": True, "height": 64, "width": 96},
        "",
        {"id": "rescale", "prompt": "a cat", "seed": 3, "steps": 3, "guidance_rescale": 0.7, "clip_skip": 1,
         "eta": 0.5, "scheduler": "ddim"},
        {"id": "torch", "prompt": "a photo of a cat", "seed": 5, "steps": 3, "rng": "torch-cpu"},
        {"id": "bf16", "prompt": "a cat", "seed": 6, "steps": 2, "precision": "bf16", "guidance_scale": 1.0},
        {"id": "i2i", "prompt": "a cat", "seed": 8, "steps": 4, "init_image": init, "strength": 0.5},
        {"id": "inpaint", "prompt": "a dog", "seed": 9, "steps": 3, "init_image": init, "mask_image": mask},
        {"id": "entropy", "prompt": "a photo of a cat", "seed": "[1,2,3]", "steps": 2, "scheduler": "euler", "karras": False},
        {"id": "nipp", "prompt": ["a cat", "a dog"], "seed": [4, 5, 6, 7], "num_images_per_prompt": 2, "steps": 2},
        {"id": "same-prompt", "prompt": "a photo of a cat", "seed": 1, "steps": 2, "negative_prompt": "blurry"},
    ]
    real = [j for j in jobs if isinstance(j, dict)]
    check(len(real) == N_JOBS, "the manifest has %d jobs" % N_JOBS)
    manifest = os.path.join(tmp, "jobs.jsonl")
    with open(manifest, "w") as f:
        for j in jobs:
            f.write((json.dumps(j) if isinstance(j, dict) else j) + "\n")
    ids = [str(j.get("id", jobs.index(j) + 1)) for j in real]

    # the reference: generate of each job, PNG and .npy
    ref = os.path.join(tmp, "ref")
    os.mkdir(ref)
    for j, i in zip(real, ids):
        for ext in ("png", "npy"):
            a = job_args(j)
            if ext == "npy" and "grid" in j:
                a = a[:a.index("--grid")] + a[a.index("--grid") + 2:]
            p = run(["generate", MODEL, "--quiet", "--threads", "2", "--out", os.path.join(ref, "%s.%s" % (i, ext))] + a)
            check(p.returncode == 0, "generate %s.%s (%s)" % (i, ext, p.stderr.strip()[-300:]))
    want_png = files(ref, (".png",))
    want_npy = files(ref, (".npy",))

    # one process: the same bytes as generate, parameters chunk included
    one = os.path.join(tmp, "one")
    p = run(["batch", MODEL, manifest, "--out-dir", one, "--threads", "1"])
    check(p.returncode == 0 and summary(p) == (N_JOBS, 0, 0), "one process: done %d (%s)" % (N_JOBS, p.stdout.strip()))
    check("share 0/1 (no --shard and no launcher variables" in p.stderr, "it says it takes the whole manifest")
    reuse = [ln for ln in p.stderr.splitlines() if "prompt encodings reused" in ln]
    check(len(reuse) == 1 and int(reuse[0].split("text encoder: ")[1].split()[0]) > 0,
          "repeated prompts reuse their text-encoder results: %s" % reuse)
    got = files(one, (".png",))
    check(sorted(got) == sorted(want_png), "one file per job id: %s" % sorted(got))
    for k in want_png:
        check(got.get(k) == want_png[k], "%s: the bytes generate writes (pixels and parameters)" % k)
    check(png_params(os.path.join(one, "grid.png")).get("grid") == "1x2", "a multi-image job is a grid with its layout")
    check(open(os.path.join(one, "failures.jsonl")).read() == "", "failures.jsonl is empty after a clean run")

    # --format npy: what --out ID.npy writes, the parameters beside it
    npy = os.path.join(tmp, "npy")
    p = run(["batch", MODEL, manifest, "--out-dir", npy, "--format", "npy", "--quiet"])
    got = files(npy, (".npy",))
    check(p.returncode == 0 and sorted(got) == sorted(want_npy), "--format npy: one .npy per job")
    for k in want_npy:
        check(got.get(k) == want_npy[k], "%s: the bytes generate --out ID.npy writes" % k)
    side = json.load(open(os.path.join(npy, "cat.json")))
    rec = png_params(os.path.join(one, "cat.png"))
    check(side == rec, "ID.json holds the parameters the PNG records")

    # resume: the same command again skips everything
    p = run(["batch", MODEL, manifest, "--out-dir", one, "--quiet"])
    check(p.returncode == 0 and summary(p) == (0, N_JOBS, 0), "a finished run again: all skipped (%s)" % p.stdout.strip())
    p = run(["batch", MODEL, manifest, "--out-dir", npy, "--format", "npy", "--quiet"])
    check(p.returncode == 0 and summary(p) == (0, N_JOBS, 0), "--format npy again: all skipped")

    # shares: each set of variables gives disjoint shares whose union is the one-process result
    def shares(name, envs, extra=None, parallel=False):
        dirs, outs = [], []
        procs = []
        for k, env in enumerate(envs):
            d = os.path.join(tmp, "%s%d" % (name, k))
            dirs.append(d)
            args = ["batch", MODEL, manifest, "--out-dir", d, "--threads", "1", "--quiet"] + (extra(k) if extra else [])
            if parallel:
                e = dict(os.environ, **env)
                procs.append(subprocess.Popen([CLI] + args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True))
            else:
                outs.append(run(args, env))
        for pr in procs:
            o, er = pr.communicate()
            outs.append(subprocess.CompletedProcess(pr.args, pr.returncode, o, er))
        seen = {}
        for k, (d, p) in enumerate(zip(dirs, outs)):
            check(p.returncode == 0, "%s share %d exits 0 (%s)" % (name, k, p.stderr.strip()[-200:]))
            check(("share %d/%d" % (k, len(envs))) in p.stderr, "%s share %d says share %d/%d: %s" %
                  (name, k, k, len(envs), p.stderr.strip().splitlines()[0] if p.stderr.strip() else ""))
            for f, b in files(d, (".png",)).items():
                check(f not in seen, "%s: %s made by one share only" % (name, f))
                seen[f] = b
        check(sorted(seen) == sorted(want_png), "%s: the shares cover every job" % name)
        check(all(seen.get(f) == want_png[f] for f in want_png), "%s: the same bytes as one process" % name)

    shares("shard", [{}] * 3, extra=lambda k: ["--shard", "%d/3" % k])
    shares("slurm", [{"SLURM_ARRAY_TASK_ID": str(10 + 2 * k), "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_MAX": "14",
                      "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "3"} for k in range(3)], parallel=True)
    shares("ompi", [{"OMPI_COMM_WORLD_RANK": str(k), "OMPI_COMM_WORLD_SIZE": "3"} for k in range(3)])
    shares("pmi", [{"PMI_RANK": str(k), "PMI_SIZE": "3"} for k in range(3)])
    shares("k8s", [{"JOB_COMPLETION_INDEX": str(k)} for k in range(3)], extra=lambda k: ["--shard-count", "3"])
    # an array task running several ranks: share index x size + rank
    p = run(["batch", MODEL, manifest, "--out-dir", os.path.join(tmp, "mix"), "--quiet"],
            {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "2",
             "PMI_RANK": "1", "PMI_SIZE": "2"})
    check(p.returncode == 0 and "share 3/4" in p.stderr, "Slurm task 1 of 2, PMI rank 1 of 2: share 3/4")
    check(sorted(files(os.path.join(tmp, "mix"), (".png",))) == sorted(ids[k] + ".png" for k in range(N_JOBS)
                                                                     if [i for i, j in enumerate(jobs)
                                                                         if isinstance(j, dict)][k] % 4 == 3),
          "share 3/4 makes the jobs of lines i with i mod 4 == 3")

    # a real launcher: mpirun -np 3 into one folder
    mpirun = shutil.which("mpirun")
    if mpirun:
        d = os.path.join(tmp, "mpi")
        args = [mpirun, "-np", "3"] + (["--allow-run-as-root"] if os.geteuid() == 0 else []) + ["--oversubscribe", CLI,
                                                                                              "batch", MODEL, manifest,
                                                                                              "--out-dir", d,
                                                                                              "--threads", "1", "--quiet"]
        p = subprocess.run(args, capture_output=True, text=True)
        check(p.returncode == 0, "mpirun -np 3 exits 0 (%s)" % p.stderr.strip()[-300:])
        for k in range(3):
            check(("share %d/3 (OMPI_COMM_WORLD_RANK=%d" % (k, k)) in p.stderr, "mpirun rank %d takes share %d/3" % (k, k))
        check(files(d, (".png",)) == want_png, "mpirun -np 3: the same files as one process")
    elif os.environ.get("CDF_TEST_REQUIRE_MPIRUN") == "1":
        check(False, "mpirun is required here (CDF_TEST_REQUIRE_MPIRUN=1) but not installed")
    else:
        print("SKIP mpirun -np 3: mpirun is not installed (Debian openmpi-bin)")

    # interrupted at a step boundary: no partial file, exit 128 + signal, the same command finishes
    slow = os.path.join(tmp, "slow.jsonl")
    with open(slow, "w") as f:
        for k in range(4):
            f.write(json.dumps({"id": "s%d" % k, "prompt": "a cat %d" % k, "seed": k, "steps": 60}) + "\n")
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        d = os.path.join(tmp, "slow%d" % sig)
        pr = subprocess.Popen([CLI, "batch", MODEL, slow, "--out-dir", d, "--threads", "1", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        t0 = time.time()
        while not os.path.exists(os.path.join(d, "s0.png")) and time.time() - t0 < 120 and pr.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)  # into the second job
        pr.send_signal(sig)
        o, er = pr.communicate()
        made = sorted(f for f in os.listdir(d) if f.endswith(".png"))
        check(pr.returncode == code, "%s: exit %d (got %s)" % (signal.Signals(sig).name, code, pr.returncode))
        s1 = summary(subprocess.CompletedProcess([], 0, o, ""))
        check("interrupted" in er and s1 is not None and s1[2] == 0 and
              open(os.path.join(d, "failures.jsonl")).read() == "",
              "%s: it says so, prints the summary and records no failure (%s)" % (signal.Signals(sig).name, s1))
        check(1 <= len(made) < 4, "%s: stopped after %d of 4 jobs" % (signal.Signals(sig).name, len(made)))
        check(sorted(os.listdir(d)) == sorted(made + ["failures.jsonl"]),
              "%s: no partial or temporary file: %s" % (signal.Signals(sig).name, sorted(os.listdir(d))))
        p = run(["batch", MODEL, slow, "--out-dir", d, "--quiet"])
        check(p.returncode == 0 and summary(p) == (4 - len(made), len(made), 0),
              "%s: the same command finishes: %s" % (signal.Signals(sig).name, p.stdout.strip()))

    # bad lines are recorded while the good jobs are made
    bad = os.path.join(tmp, "bad.jsonl")
    bad_lines = [
        json.dumps({"id": "good1", "prompt": "a cat", "seed": 1, "steps": 2}),
        "{not json",
        "[1, 2]",
        json.dumps({"id": "typo", "prompt": "a cat", "stepz": 2}),
        json.dumps({"id": "range", "prompt": "a cat", "steps": 0}),
        json.dumps({"id": "good1", "prompt": "a dog", "steps": 2}),
        json.dumps({"id": "../up", "prompt": "a cat"}),
        json.dumps({"id": "variant", "prompt": "a cat", "variant": "fp16"}),
        json.dumps({"id": "seeds", "prompt": "a cat", "seed": [1, 2, 3], "steps": 2}),
        json.dumps({"id": "bigseed", "prompt": "a cat", "seed": 2 ** 60 + 1}),
        json.dumps({"id": "noprompt", "seed": 1}),
        json.dumps({"id": "twice", "prompt": "a", "seed": 1, "steps": 2})[:-1] + ', "steps": 3}',
        json.dumps({"id": "good2", "prompt": "a dog", "seed": 2, "steps": 2}),
        json.dumps({"id": "nopic", "prompt": "a dog", "seed": 2, "steps": 2, "init_image": "missing.png"}),
    ]
    with open(bad, "w") as f:
        f.write("\n".join(bad_lines) + "\n")
    d = os.path.join(tmp, "bad")
    p = run(["batch", MODEL, bad, "--out-dir", d, "--quiet"])
    recs = [json.loads(x) for x in open(os.path.join(d, "failures.jsonl"))]
    check(p.returncode == 1 and summary(p) == (2, 0, 12), "bad lines: exit 1, done 2, failed 12 (%s)" % p.stdout.strip())
    check(sorted(f for f in os.listdir(d) if f.endswith(".png")) == ["good1.png", "good2.png"], "the good jobs are made")
    check([r["line"] for r in recs] == list(range(2, 13)) + [14] and all(set(r) == {"line", "id", "error"} for r in recs),
          "one {line, id, error} record per failed line, in order")
    by = {r["line"]: r for r in recs}
    expect = {2: (None, "JSON"), 3: (None, "not a JSON object"), 4: ("typo", 'unknown key "stepz"'),
              5: ("range", '"steps"'), 6: ("good1", "also line 1"), 7: (None, '"id" must be a file stem'),
              8: ("variant", "give --variant to batch"), 9: ("seeds", "3 seeds given for a batch of 1"),
              10: ("bigseed", "give it as a string"), 11: ("noprompt", "needs --prompt"), 12: ("twice", "twice"),
              14: ("nopic", "missing.png")}
    for line, (i, msg) in expect.items():
        r = by.get(line, {})
        check(r.get("id") == i and msg in r.get("error", ""), "line %d: id %r, error mentions %r (%s)" % (line, i, msg, r))
    check(13 not in by, "the good line 13 is not recorded")
    # a rerun of one share replaces that share's records and keeps the others'
    p = run(["batch", MODEL, bad, "--out-dir", d, "--quiet", "--shard", "0/2"])
    recs2 = [json.loads(x) for x in open(os.path.join(d, "failures.jsonl"))]
    check(sorted(r["line"] for r in recs2) == list(range(2, 13)) + [14] and summary(p) == (0, 2, 5),
          "a share's rerun rewrites its records once and keeps the other share's (%r)" % (summary(p),))

    # an output holding other parameters fails and is kept as it is
    changed = os.path.join(tmp, "changed.jsonl")
    with open(changed, "w") as f:
        f.write(json.dumps({"id": "cat", "prompt": "a photo of a cat", "seed": 0, "steps": 5}) + "\n")
    before = open(os.path.join(one, "cat.png"), "rb").read()
    p = run(["batch", MODEL, changed, "--out-dir", one, "--quiet"])
    rec = json.loads(open(os.path.join(one, "failures.jsonl")).read().splitlines()[0])
    check(p.returncode == 1 and summary(p) == (0, 0, 1), "other parameters: the job fails")
    check('"steps": 4 there, 5 here' in rec["error"], "the message names the key: %s" % rec["error"])
    check(open(os.path.join(one, "cat.png"), "rb").read() == before, "the existing file is not overwritten")
    for job, model, key in (({"id": "cat", "prompt": "a photo of a cat", "seed": 1, "steps": 4}, MODEL, '"seeds"'),
                            (real[0], os.path.join(DATA, "sd", "pipelines", "tiny-sd15-b-f16"), '"weights_hash"')):
        with open(changed, "w") as f:
            f.write(json.dumps(job) + "\n")
        p = run(["batch", model, changed, "--out-dir", one, "--quiet"])
        err = json.loads(open(os.path.join(one, "failures.jsonl")).readline())["error"]
        check(p.returncode == 1 and key in err and open(os.path.join(one, "cat.png"), "rb").read() == before,
              "another %s: the job fails naming it, the file is kept (%s)" % (key, err))
    # a job without a seed takes one from the OS and, on resume, accepts the one its file records
    noseed = os.path.join(tmp, "noseed.jsonl")
    with open(noseed, "w") as f:
        f.write(json.dumps({"id": "any", "prompt": "a cat", "steps": 2}) + "\n")
    d = os.path.join(tmp, "noseed")
    p1 = run(["batch", MODEL, noseed, "--out-dir", d, "--quiet"])
    p2 = run(["batch", MODEL, noseed, "--out-dir", d, "--quiet"])
    check(summary(p1) == (1, 0, 0) and summary(p2) == (0, 1, 0), "a job without a seed is skipped on resume")
    seed = png_params(os.path.join(d, "any.png")).get("seeds", ["?"])[0]
    g = os.path.join(tmp, "any.png")
    run(["generate", MODEL, "--prompt", "a cat", "--steps", "2", "--seed", seed, "--quiet", "--out", g])
    check(open(g, "rb").read() == open(os.path.join(d, "any.png"), "rb").read(),
          "its recorded seed makes the same file with generate")

    # errors before any job
    t0 = time.time()
    p = run(["batch", os.path.join(tmp, "no-model"), manifest, "--out-dir", os.path.join(tmp, "never")])
    check(p.returncode == 1 and "no-model" in p.stderr and not os.path.exists(os.path.join(tmp, "never")),
          "a missing MODEL_DIR fails at once, no folder made (%s)" % p.stderr.strip())
    p = run(["batch", MODEL, os.path.join(tmp, "none.jsonl"), "--out-dir", os.path.join(tmp, "never")])
    check(p.returncode == 1 and "none.jsonl" in p.stderr, "a missing manifest fails at once")
    for args, env, msg in (
            (["--shard", "3/3"], {}, "--shard must be K/N"),
            (["--shard", "1/2", "--shard-count", "2"], {}, "exclude each other"),
            ([], {"JOB_COMPLETION_INDEX": "1"}, "--shard-count"),
            (["--shard-count", "2"], {}, "JOB_COMPLETION_INDEX"),
            ([], {"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "3"}, "not below"),
            ([], {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "7",
                  "SLURM_ARRAY_TASK_COUNT": "3"}, "evenly spaced"),
            ([], {"PMI_RANK": "x", "PMI_SIZE": "2"}, "PMI_RANK"),
            (["--format", "gif"], {}, "--format"),
            (["--seed", "1"], {}, "unknown option --seed")):
        p = run(["batch", MODEL, manifest, "--out-dir", os.path.join(tmp, "never")] + args, env)
        check(p.returncode == 2 and msg in p.stderr and not os.path.exists(os.path.join(tmp, "never")),
              "usage error %s %s: exit 2, '%s'" % (args, env, msg))
    check(time.time() - t0 < 30, "the errors come before any job")
    # the other pipeline families: DDIM (a process-wide --pipeline), SDXL, UnCLIP; each file as generate's, resumed
    unclip = sorted(os.listdir(os.path.join(DATA, "unclip", "pipelines")))[0]
    for name, model, proc, job in (
            ("ddim", os.path.join(DATA, "ddpm", "models", "tiny_cifar"), ["--pipeline", "ddim"],
             {"id": "d", "seed": [3, 4], "steps": 4, "batch_size": 2, "eta": 0.5}),
            ("sdxl", os.path.join(DATA, "sdxl", "pipelines", "tiny-sdxl-a"), [],
             {"id": "x", "prompt": "a cat", "prompt_2": "a dog", "seed": 1, "steps": 3, "original_size": [128, 128],
              "crops_coords_top_left": "4,8"}),
            ("unclip", os.path.join(DATA, "unclip", "pipelines", unclip), [],
             {"id": "u", "prompt": "a cat", "seed": 1, "prior_steps": 2, "decoder_steps": 2, "super_res_steps": 2})):
        d = os.path.join(tmp, "fam-" + name)
        m = os.path.join(tmp, name + ".jsonl")
        with open(m, "w") as f:
            f.write(json.dumps(job) + "\n")
        g = os.path.join(tmp, name + ".png")
        pg = run(["generate", model, "--quiet", "--out", g] + proc + job_args(job))
        p1 = run(["batch", model, m, "--out-dir", d, "--quiet"] + proc)
        p2 = run(["batch", model, m, "--out-dir", d, "--quiet"] + proc)
        check(pg.returncode == 0 and p1.returncode == 0 and summary(p2) == (0, 1, 0) and
              open(g, "rb").read() == open(os.path.join(d, job["id"] + ".png"), "rb").read(),
              "%s: the file generate writes, skipped on resume (%s)" % (name, (pg.stderr + p1.stderr).strip()[-300:]))

    # the manifest docs/SCALE.md and examples/ point to runs, every key as written; only the steps and sizes
    # shrink (2 steps, sizes / 8) so that the tiny pipeline makes it in seconds
    ex = os.path.join(tmp, "example.jsonl")
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "jobs.jsonl")) as f, \
            open(ex, "w") as g:
        for line in f:
            if line.strip().startswith("{"):
                j = json.loads(line)
                j.update({k: 2 if k == "steps" else j[k] // 8 for k in ("steps", "height", "width") if k in j})
                line = json.dumps(j) + "\n"
            g.write(line)
    p = run(["batch", MODEL, ex, "--out-dir", os.path.join(tmp, "example"), "--quiet", "--threads", "1"])
    check(p.returncode == 0 and summary(p) == (8, 0, 0), "examples/jobs.jsonl: 8 jobs done (%s)" % p.stderr.strip()[-300:])
    p = run(["batch", "--help"])
    check(p.returncode == 0 and "--shard K/N" in p.stdout and "failures.jsonl" in p.stdout, "--help explains")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
