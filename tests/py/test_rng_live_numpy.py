#!/usr/bin/python3
"""Live comparison of cdiffusers' numpy-compatible generator with numpy itself.

Run by CTest as:  test_rng_live_numpy.py <path-to-cdiffusers-cli> <tests/data dir>
libcdiffusers.so is loaded with ctypes from the CLI's directory (the build
root).  Exit 77 (skip) when numpy is missing; non-zero when the shared library
(a build output, not a missing peer) is not there, or on any mismatch.  Set CDF_RNG_FUZZ_SEED to draw a different set of cases.
"""
import ctypes
import os
import random
import sys

SKIP = 77


def main():
    if len(sys.argv) < 2:
        print("usage: test_rng_live_numpy.py <cdiffusers-cli> [tests/data]")
        return 2
    try:
        import numpy as np
    except ImportError:
        print("SKIP: numpy is not installed")
        return SKIP
    libpath = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), "libcdiffusers.so")
    if not os.path.exists(libpath):
        print("FAIL: %s not found (build the cdiffusers_shared target)" % libpath)
        return 1
    lib = ctypes.CDLL(libpath)

    class Error(ctypes.Structure):
        _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 1024),
                    ("on_notice", ctypes.c_void_p), ("notice_user", ctypes.c_void_p)]

    CDF_F32, CDF_F16, CDF_F64 = 0, 1, 3
    CDF_ERR_ARG = 7
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    lib.cdf_generator_new_list.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), sz,
                                           ctypes.POINTER(vp), ctypes.POINTER(Error)]
    lib.cdf_generator_new_list.restype = ctypes.c_int
    lib.cdf_generator_free.argtypes = [vp]
    lib.cdf_generator_free.restype = None
    lib.cdf_randn_tensor.argtypes = [ctypes.POINTER(vp), sz, ctypes.POINTER(ctypes.c_int64), ctypes.c_int,
                                     ctypes.c_int, vp, ctypes.POINTER(Error)]
    lib.cdf_randn_tensor.restype = ctypes.c_int
    for name in ("cdf_generator_standard_normal_f32", "cdf_generator_random", "cdf_generator_standard_normal"):
        getattr(lib, name).argtypes = [vp, vp, sz]
        getattr(lib, name).restype = None
    lib.cdf_f64_to_f16.argtypes = [ctypes.c_double]
    lib.cdf_f64_to_f16.restype = ctypes.c_uint16

    def new_gen(seed):
        seeds = seed if isinstance(seed, list) else [seed]
        arr = (ctypes.c_char_p * len(seeds))(*[str(s).encode() for s in seeds])
        out = vp()
        err = Error()
        st = lib.cdf_generator_new_list(0, arr, len(seeds), ctypes.byref(out), ctypes.byref(err))
        if st != 0:
            raise RuntimeError("seed %r: status %d: %s" % (seed, st, err.msg.decode()))
        return out

    def np_gen(seed):
        return np.random.Generator(np.random.PCG64(seed))

    def randn(handles, shape, dtype_code, np_dtype):
        out = np.empty(shape, dtype=np_dtype)
        gens = (vp * len(handles))(*[h.value for h in handles])
        shp = (ctypes.c_int64 * len(shape))(*shape)
        err = Error()
        st = lib.cdf_randn_tensor(gens, len(handles), shp, len(shape), dtype_code, out.ctypes.data, ctypes.byref(err))
        if st != 0:
            raise RuntimeError("randn_tensor: status %d: %s" % (st, err.msg.decode()))
        return out

    fuzz = int(os.environ.get("CDF_RNG_FUZZ_SEED", "20240601"))
    rnd = random.Random(fuzz)
    seeds = [0, 1, 42, 2**32 - 1, 2**32, 2**64 - 1, 2**64, 2**128 - 1, 2**128, [0], [0, 0], [1, 2, 3],
             [0, 0, 0, 0, 0], [2**64 + 5, 0, 7]]
    while len(seeds) < 50:
        kind = rnd.randrange(4)
        if kind == 0:
            seeds.append(rnd.randrange(1000))
        elif kind == 1:
            seeds.append(rnd.randrange(2**64))
        elif kind == 2:
            seeds.append(rnd.randrange(2**129))
        else:
            seeds.append([rnd.choice([0, rnd.randrange(100), rnd.randrange(2**70)]) for _ in range(rnd.randrange(1, 6))])

    checks = 0
    failures = []

    def compare(what, got, want):
        nonlocal checks
        checks += 1
        g = np.ascontiguousarray(got)
        w = np.ascontiguousarray(want)
        if g.shape != w.shape or g.dtype != w.dtype:
            failures.append("%s: got %s %s, want %s %s" % (what, g.dtype, g.shape, w.dtype, w.shape))
        elif g.tobytes() != w.tobytes():
            gb = g.reshape(-1).view(np.uint8).reshape(g.size, -1)
            wb = w.reshape(-1).view(np.uint8).reshape(w.size, -1)
            diff = np.flatnonzero((gb != wb).any(axis=1))
            i = int(diff[0])
            failures.append("%s: %d of %d differ, first at %d: got %r want %r"
                            % (what, diff.size, g.size, i, g.reshape(-1)[i], w.reshape(-1)[i]))

    for seed in seeds:
        ndim = rnd.randrange(1, 5)
        shape = [rnd.randrange(1, 8) for _ in range(ndim)]
        if rnd.random() < 0.3:
            shape[-1] = rnd.randrange(500, 5000)  # long enough for ziggurat slow paths
        shape = tuple(shape)
        label = "seed %r shape %s" % (seed, shape)
        ref64 = np_gen(seed).standard_normal(shape)
        for code, dt, want in ((CDF_F64, np.float64, ref64), (CDF_F32, np.float32, ref64.astype(np.float32)),
                               (CDF_F16, np.float16, ref64.astype(np.float16))):
            h = new_gen(seed)
            compare("%s randn_tensor %s" % (label, np.dtype(dt).name), randn([h], shape, code, dt), want)
            lib.cdf_generator_free(h)
        n = int(np.prod(shape))
        h = new_gen(seed)
        out = np.empty(n, np.float32)
        lib.cdf_generator_standard_normal_f32(h, out.ctypes.data, n)
        compare("%s standard_normal(dtype=float32)" % label, out, np_gen(seed).standard_normal(n, dtype=np.float32))
        lib.cdf_generator_free(h)
        h = new_gen(seed)
        out = np.empty(n, np.float64)
        lib.cdf_generator_random(h, out.ctypes.data, n)
        compare("%s random" % label, out, np_gen(seed).random(n))
        # interleaved: f32 draws leave a buffered half that random() must not disturb
        h = new_gen(seed)
        g = np_gen(seed)
        a = np.empty(3, np.float32)
        b = np.empty(5, np.float64)
        c = np.empty(4, np.float32)
        lib.cdf_generator_standard_normal_f32(h, a.ctypes.data, 3)
        lib.cdf_generator_random(h, b.ctypes.data, 5)
        lib.cdf_generator_standard_normal_f32(h, c.ctypes.data, 4)
        compare("%s interleaved f32/random/f32" % label, np.concatenate([a.view(np.uint32), b.view(np.uint32), c.view(np.uint32)]),
                np.concatenate([g.standard_normal(3, dtype=np.float32).view(np.uint32), g.random(5).view(np.uint32),
                                g.standard_normal(4, dtype=np.float32).view(np.uint32)]))
        lib.cdf_generator_free(h)

    # generator lists (mindone randn_tensor: one (1, ...) slice per generator)
    for t in range(8):
        batch = rnd.randrange(2, 6)
        shape = (batch,) + tuple(rnd.randrange(1, 9) for _ in range(rnd.randrange(1, 4)))
        bseeds = [rnd.choice(seeds) for _ in range(batch)]
        handles = [new_gen(s) for s in bseeds]
        want = np.concatenate([np_gen(s).standard_normal((1,) + shape[1:]) for s in bseeds]).astype(np.float32)
        compare("list %r shape %s" % (bseeds, shape), randn(handles, shape, CDF_F32, np.float32), want)
        for h in handles:
            lib.cdf_generator_free(h)
        # [g] * batch: one stream consumed in turn
        s = rnd.choice(seeds)
        h = new_gen(s)
        g = np_gen(s)
        want = np.concatenate([g.standard_normal((1,) + shape[1:]) for _ in range(batch)])
        compare("[g]*%d seed %r shape %s" % (batch, s, shape), randn([h] * batch, shape, CDF_F64, np.float64), want)
        lib.cdf_generator_free(h)

    # float64 -> float16 rounding, one value at a time
    vals = np.concatenate([np_gen(7).standard_normal(20000) * 10.0 ** np_gen(8).integers(-9, 6, 20000),
                           np.array([65504.0, 65519.999, 65520.0, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 1 + 2.0**-11,
                                     1 + 2.0**-11 + 2.0**-30, -0.0, np.inf, -np.inf])])
    got = np.array([lib.cdf_f64_to_f16(float(v)) for v in vals], dtype=np.uint16)
    with np.errstate(over="ignore"):
        compare("float64 -> float16 (%d values)" % vals.size, got, vals.astype(np.float16).view(np.uint16))

    # bad seeds are rejected
    for bad in ("-1", "", "1.5", "abc"):
        arr = (ctypes.c_char_p * 1)(bad.encode())
        out = vp()
        err = Error()
        checks += 1
        st = lib.cdf_generator_new_list(0, arr, 1, ctypes.byref(out), ctypes.byref(err))
        if st != CDF_ERR_ARG:
            failures.append("seed %r: status %d, expected ERR_ARG" % (bad, st))

    # 6 comparisons per seed, 2 per generator list, the float16 rounding, 4 bad seeds
    want_checks = 6 * 50 + 2 * 8 + 1 + 4
    if checks != want_checks:
        failures.append("%d checks ran, %d expected" % (checks, want_checks))
    print("rng live numpy (%s, fuzz seed %d): %d seeds, %d checks, %d mismatches"
          % (np.__version__, fuzz, len(seeds), checks, len(failures)))
    for f in failures[:20]:
        print("  MISMATCH " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
