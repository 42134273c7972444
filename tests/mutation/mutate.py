#!/usr/bin/env python3
"""Helper of tests/mutation/run.sh (python3 standard library only).

  mutate.py check   [--root DIR] [FILTER...]   each selected mutant: ok / stale / ambiguous (default root: the repo)
  mutate.py select  --root DIR [FILTER...]     the same as TSV (id, state, layer, detail), for run.sh
  mutate.py sync    SRC DST                    copy SRC's git files (tracked + untracked, not ignored) into DST
  mutate.py apply   --root DIR ID              plant mutant ID in the copy DIR (original bytes kept aside)
  mutate.py restore --root DIR                 put back the original bytes of a planted mutant, if any
  mutate.py compile --root DIR --build BLD [FILTER...]   compile each mutated file alone (-fsyntax-only):
                                               finds stillborn mutants in seconds, runs no test
  mutate.py report  SUMMARY.tsv                kill rate, survivors, stillborn, stale and equivalent mutants

FILTER: a mutant id, a layer (rng io text tensor models schedulers pipelines cli core), or a
shell glob on ids ('sched-*').  Equivalent mutants run only when named by their exact id.
The list format is described in tests/mutation/README.md.
"""
import fnmatch
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LIST = os.environ.get("MUT_LIST", os.path.join(HERE, "mutants.txt"))
KEYS = ("id", "file", "find", "repl", "why", "equivalent")
MULTI = ("find", "repl")  # repeated lines are joined with newlines
STATE_DIR = ".mutation-state"  # inside the scratch copy: the planted mutant's original bytes


def die(msg, code=2):
    sys.stderr.write("mutate.py: %s\n" % msg)
    sys.exit(code)


def parse(path=LIST):
    """The mutant list as a list of dicts, in file order."""
    muts, cur, seen = [], None, set()
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, val = line.partition(":")
        if not sep or key not in KEYS:
            die("%s:%d: expected 'key: value' with key in %s, got %r" % (path, no, "/".join(KEYS), line))
        val = val[1:] if val.startswith(" ") else val  # one space after the colon separates; the rest is text
        if key == "id":
            if cur:
                muts.append(cur)
            if val in seen:
                die("%s:%d: duplicate id %r" % (path, no, val))
            seen.add(val)
            cur = {"id": val, "line": no}
            continue
        if cur is None:
            die("%s:%d: '%s:' before the first 'id:'" % (path, no, key))
        if key in MULTI and key in cur:
            cur[key] += "\n" + val
        elif key in cur:
            die("%s:%d: '%s:' given twice for %s" % (path, no, key, cur["id"]))
        else:
            cur[key] = val
    if cur:
        muts.append(cur)
    for m in muts:
        for k in ("file", "find", "repl", "why"):
            if k not in m:
                die("%s:%d: mutant %s has no '%s:'" % (path, m["line"], m["id"], k))
        if m["find"] == m["repl"]:
            die("%s:%d: mutant %s replaces its text by itself" % (path, m["line"], m["id"]))
        if not m["find"]:
            die("%s:%d: mutant %s has an empty find text" % (path, m["line"], m["id"]))
    return muts


def layer(m):
    parts = m["file"].split("/")
    if parts[0] == "src" and len(parts) > 2:
        return parts[1]
    if parts[0] == "tools":
        return "cli"
    return parts[0]


def selected(muts, filters):
    """Mutants the filters name (all without filters); equivalent ones only by exact id."""
    out = []
    for m in muts:
        if not filters:
            hit = True
        else:
            hit = any(f == m["id"] or f == layer(m) or fnmatch.fnmatchcase(m["id"], f) for f in filters)
        if hit and "equivalent" in m and m["id"] not in filters:
            out.append((m, "equivalent"))
        elif hit:
            out.append((m, None))
    unknown = [f for f in filters if not any(f == m["id"] or f == layer(m) or fnmatch.fnmatchcase(m["id"], f)
                                             for m in muts)]
    if unknown:
        die("no mutant matches %s" % ", ".join(unknown))
    return out


def count(hay, needle):
    n, i = 0, hay.find(needle)
    while i >= 0:
        n += 1
        i = hay.find(needle, i + 1)
    return n


def state_of(m, root):
    """(state, detail): ok, stale (text or file gone) or ambiguous (text found more than once)."""
    path = os.path.join(root, m["file"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "stale", "cannot read %s: %s" % (m["file"], e.strerror)
    n = count(data, m["find"].encode("utf-8"))
    if n == 0:
        return "stale", "find text no longer in %s (list line %d)" % (m["file"], m["line"])
    if n > 1:
        return "ambiguous", "find text occurs %d times in %s (list line %d): make it longer" % (n, m["file"], m["line"])
    return "ok", ""


def safe_root(root):
    """The scratch copy: never the real working tree, never inside it."""
    r = os.path.realpath(root)
    repo = os.path.realpath(REPO)
    if r == repo or r.startswith(repo + os.sep) or os.path.exists(os.path.join(r, ".git")):
        die("refusing to touch %s: mutants go into the scratch copy only" % root)
    return r


def write_fresh(path, data):
    """Writes data with a new mtime (so an incremental build recompiles the file)."""
    tmp = path + ".mut-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    now = time.time()
    os.utime(path, (now, now))


def cmd_check(args):
    root = REPO
    if args[:1] == ["--root"]:
        root, args = args[1], args[2:]
    muts = parse()
    sel = selected(muts, args)
    bad = 0
    per_layer = {}
    for m, eq in sel:
        st, detail = ("equivalent", m["equivalent"]) if eq else state_of(m, root)
        per_layer[layer(m)] = per_layer.get(layer(m), 0) + 1
        if st in ("stale", "ambiguous"):
            bad += 1
        print("%-10s %-34s %s" % (st, m["id"], detail or m["file"]))
    print("%d mutants (%s); %d stale or ambiguous" %
          (len(sel), ", ".join("%s %d" % kv for kv in sorted(per_layer.items())), bad))
    return 1 if bad else 0


def cmd_select(args):
    if args[:1] != ["--root"] or len(args) < 2:
        die("select needs --root DIR")
    root, filters = args[1], args[2:]
    for m, eq in selected(parse(), filters):
        st, detail = ("equivalent", m["equivalent"]) if eq else state_of(m, root)
        print("\t".join([m["id"], st, layer(m), detail.replace("\t", " ")]))
    return 0


def cmd_sync(args):
    if len(args) != 2:
        die("sync needs SRC DST")
    src, dst = os.path.realpath(args[0]), args[1]
    os.makedirs(dst, exist_ok=True)
    dst = safe_root(dst)
    out = subprocess.run(["git", "-C", src, "ls-files", "-z", "-co", "--exclude-standard"], check=True,
                         stdout=subprocess.PIPE).stdout
    files = sorted(set(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p))
    manifest = os.path.join(dst, STATE_DIR, "manifest")
    old = set()
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8", errors="surrogateescape") as f:
            old = set(f.read().split("\0")) - {""}
    kept, copied = [], 0
    for rel in files:
        s = os.path.join(src, rel)
        if not os.path.isfile(s) or os.path.islink(s):  # deleted but still tracked, or a link
            continue
        kept.append(rel)
        d = os.path.join(dst, rel)
        with open(s, "rb") as f:
            data = f.read()
        try:
            with open(d, "rb") as f:
                same = f.read() == data
        except OSError:
            same = False
        if not same:
            os.makedirs(os.path.dirname(d), exist_ok=True)
            write_fresh(d, data)
            os.chmod(d, os.stat(s).st_mode & 0o777)
            copied += 1
    removed = 0
    for rel in old - set(kept):
        try:
            os.remove(os.path.join(dst, rel))
            removed += 1
        except OSError:
            pass
    os.makedirs(os.path.dirname(manifest), exist_ok=True)
    with open(manifest, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\0".join(kept))
    print("synced %d files into %s (%d changed, %d removed)" % (len(kept), dst, copied, removed))
    return 0


def backup_paths(root):
    d = os.path.join(root, STATE_DIR)
    return os.path.join(d, "planted"), os.path.join(d, "original")


def cmd_apply(args):
    if args[:1] != ["--root"] or len(args) != 3:
        die("apply needs --root DIR ID")
    root, mid = safe_root(args[1]), args[2]
    cmd_restore(["--root", root])
    m = next((x for x in parse() if x["id"] == mid), None)
    if not m:
        die("no mutant %s" % mid)
    st, detail = state_of(m, root)
    if st != "ok":
        print("%s: %s" % (st, detail))
        return 3 if st == "stale" else 4
    path = os.path.join(root, m["file"])
    with open(path, "rb") as f:
        data = f.read()
    planted, original = backup_paths(root)
    os.makedirs(os.path.dirname(planted), exist_ok=True)
    with open(original, "wb") as f:
        f.write(data)
    with open(planted, "w", encoding="utf-8") as f:
        f.write(m["file"] + "\n" + mid + "\n")
    write_fresh(path, data.replace(m["find"].encode("utf-8"), m["repl"].encode("utf-8"), 1))
    return 0


def cmd_restore(args):
    if args[:1] != ["--root"] or len(args) != 2:
        die("restore needs --root DIR")
    root = safe_root(args[1])
    planted, original = backup_paths(root)
    if not os.path.exists(planted):
        return 0
    with open(planted, encoding="utf-8") as f:
        rel = f.read().split("\n")[0]
    with open(original, "rb") as f:
        data = f.read()
    write_fresh(os.path.join(root, rel), data)  # new mtime: the next build recompiles the original
    os.remove(original)
    os.remove(planted)
    return 0


def cmd_compile(args):
    if args[:1] != ["--root"] or args[2:3] != ["--build"] or len(args) < 4:
        die("compile needs --root DIR --build BLD [FILTER...]")
    import json
    import shlex
    root, bld, filters = safe_root(args[1]), args[3], args[4:]
    with open(os.path.join(bld, "compile_commands.json"), encoding="utf-8") as f:
        cmds = {os.path.realpath(e["file"]): e for e in json.load(f)}
    bad = 0
    for m, eq in selected(parse(), filters):
        st, detail = ("equivalent", "") if eq else state_of(m, root)
        if st == "ok":
            e = cmds.get(os.path.realpath(os.path.join(root, m["file"])))
            if not e:
                st, detail = "no-command", "%s is not compiled by this build" % m["file"]
            else:
                cmd_apply(["--root", root, m["id"]])
                argv = e["arguments"] if "arguments" in e else shlex.split(e["command"])
                if "-o" in argv:  # the object file stays untouched
                    i = argv.index("-o")
                    argv = argv[:i] + argv[i + 2:]
                r = subprocess.run(argv + ["-fsyntax-only"], cwd=e["directory"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True)
                cmd_restore(["--root", root])
                if r.returncode:
                    st = "stillborn"
                    detail = next((ln for ln in r.stdout.split("\n") if "error" in ln), r.stdout[:200])
                else:
                    st, detail = "compiles", ""
        bad += st not in ("compiles", "equivalent")
        print("%-10s %-34s %s" % (st, m["id"], detail))
    print("%d mutants do not compile or do not apply" % bad)
    return 1 if bad else 0


def cmd_report(args):
    if len(args) != 1:
        die("report needs SUMMARY.tsv")
    rows = []
    with open(args[0], encoding="utf-8") as f:
        for line in f.read().split("\n")[1:]:
            if line:
                c = line.split("\t")
                rows.append(dict(zip(("id", "layer", "status", "detail", "build_s", "test_s"), c)))
    why = {m["id"]: m for m in parse()}
    by = {}
    for r in rows:
        by.setdefault(r["status"], []).append(r)
    k, s = len(by.get("killed", [])), len(by.get("survived", []))
    print("== mutation testing: %d mutants ==" % len(rows))
    print("  " + "   ".join("%s %d" % (st, len(by.get(st, []))) for st in
                            ("killed", "survived", "stillborn", "stale", "ambiguous", "equivalent")))
    if k + s:
        print("  kill rate: %d / %d = %.1f%% (killed / (killed + survived))" % (k, k + s, 100.0 * k / (k + s)))
    ran = [r for r in rows if r["status"] in ("killed", "survived")]
    if ran:
        b = sum(float(r["build_s"] or 0) for r in ran) / len(ran)
        t = sum(float(r["test_s"] or 0) for r in ran) / len(ran)
        print("  time per mutant: build %.0f s + tests %.0f s on average" % (b, t))
    layers = sorted(set(r["layer"] for r in ran))
    for ly in layers:
        lk = sum(1 for r in ran if r["layer"] == ly and r["status"] == "killed")
        ln = sum(1 for r in ran if r["layer"] == ly)
        print("    %-11s %d / %d killed" % (ly, lk, ln))
    sections = (("survived", "SURVIVORS (add a test that kills each, or mark it 'equivalent:' with the reason)"),
                ("stillborn", "STILLBORN (did not compile: fix the replacement)"),
                ("stale", "STALE (find text gone: refresh the list)"),
                ("ambiguous", "AMBIGUOUS (find text not unique: lengthen it)"),
                ("equivalent", "EQUIVALENT (not run, not counted)"))
    for st, title in sections:
        if by.get(st):
            print(title + ":")
            for r in by[st]:
                m = why.get(r["id"], {})
                print("  %-34s %s" % (r["id"], m.get("file", "")))
                print("      %s" % (m.get("equivalent") if st == "equivalent" else m.get("why", "")))
                if st in ("stale", "ambiguous", "stillborn") and r["detail"]:
                    print("      -> %s" % r["detail"])
    if by.get("killed"):
        print("killed by:")
        for r in by["killed"]:
            print("  %-34s %s" % (r["id"], r["detail"]))
    return 0


def main():
    cmds = {"check": cmd_check, "select": cmd_select, "sync": cmd_sync, "apply": cmd_apply,
            "restore": cmd_restore, "compile": cmd_compile, "report": cmd_report}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.stderr.write(__doc__)
        return 2
    return cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
