"""Live Python generators in and out of the C library.

A call takes the Python objects' states into C generators (numpy PCG64 state,
increment and buffered uint32; RandomState's MT19937 key, position and cached
gaussian; torch's CPU generator state bytes), the draws happen in C, and the
advanced states are written back, so the Python objects end in exactly the
state mindone's randn_tensor (numpy) or diffusers' (torch) would leave them."""
import ctypes

from . import _lib
from ._lib import lib

_SUPPORTED = ("np.random.Generator(np.random.PCG64(...)), np.random.RandomState, torch.Generator('cpu'), "
              "or a list of them")
_M128 = (1 << 128) - 1
_M64 = (1 << 64) - 1


def _new(kind):
    h = ctypes.c_void_p()
    err = _lib.Error()
    _lib.check(lib.cdf_generator_new(kind, b"0", ctypes.byref(h), ctypes.byref(err)), err)
    return h


def _numpy():
    try:
        import numpy
        return numpy
    except ImportError:  # pragma: no cover - numpy is the package's dependency
        return None


def _torch_module():
    import sys
    return sys.modules.get("torch")  # a torch.Generator exists only where torch was imported


_torch_kind = []  # cached: which torch CPU kernel this torch draws with


def torch_cpu_kind():
    """RNG_TORCH_CPU_AVX2 or RNG_TORCH_CPU: the one whose noise equals this
    torch's torch.randn (the capability torch picked at start), found by one
    draw of 64 normals from seed 0."""
    if _torch_kind:
        return _torch_kind[0]
    import numpy as np
    import torch
    want = torch.randn(64, generator=torch.Generator("cpu").manual_seed(0)).numpy()
    for kind in (_lib.RNG_TORCH_CPU_AVX2, _lib.RNG_TORCH_CPU):
        h = _new(kind)
        try:
            got = np.empty(64, np.float32)
            shape = (ctypes.c_int64 * 1)(64)
            err = _lib.Error()
            _lib.check(lib.cdf_randn_tensor((ctypes.c_void_p * 1)(h.value), 1, shape, 1, _lib.F32,
                                            got.ctypes.data, ctypes.byref(err)), err)
        finally:
            lib.cdf_generator_free(h)
        if np.array_equal(got, want):
            _torch_kind.append(kind)
            return kind
    raise RuntimeError("cdiffusers: this torch's randn matches neither of torch's CPU kernels the library "
                       "imitates (scalar, AVX2)")


class _Bridge:
    """One Python generator object and its C twin."""

    def __init__(self, obj):
        self.obj = obj
        np = _numpy()
        torch = _torch_module()
        if np is not None and isinstance(obj, np.random.Generator):
            bg = obj.bit_generator
            if type(bg) is not np.random.PCG64:
                raise TypeError("generator: np.random.Generator with a %s bit generator is not supported; use %s"
                                % (type(bg).__name__, _SUPPORTED))
            self.kind = "pcg64"
            self.handle = _new(_lib.RNG_NUMPY)
            st = bg.state
            s, inc = st["state"]["state"] & _M128, st["state"]["inc"] & _M128
            c = _lib.Pcg64State(s >> 64, s & _M64, inc >> 64, inc & _M64, int(st["has_uint32"]),
                                int(st["uinteger"]))
            self._set(lib.cdf_generator_set_pcg64_state, c)
        elif np is not None and isinstance(obj, np.random.RandomState):
            self.kind = "legacy"
            self.handle = _new(_lib.RNG_NUMPY_LEGACY)
            name, key, pos, has_gauss, gauss = obj.get_state(legacy=True)
            if name != "MT19937":
                raise TypeError("generator: RandomState with %s is not supported" % name)
            c = _lib.LegacyState()
            c.key[:] = [int(k) for k in key]
            c.pos, c.has_gauss, c.cached_gaussian = int(pos), int(has_gauss), float(gauss)
            self._set(lib.cdf_generator_set_legacy_state, c)
        elif torch is not None and isinstance(obj, torch.Generator):
            if obj.device.type != "cpu":
                raise TypeError("generator: torch.Generator on %s is not supported; use torch.Generator('cpu') "
                                "(or cdiffusers' CLI --rng torch-cuda for CUDA noise)" % obj.device)
            self.kind = "torch"
            self.handle = _new(torch_cpu_kind())
            b = bytes(obj.get_state().numpy().tobytes())
            err = _lib.Error()
            _lib.check(lib.cdf_generator_set_torch_state_bytes(self.handle, b, len(b), ctypes.byref(err)), err)
        else:
            raise TypeError("generator: %s is not supported; use %s" % (type(obj).__name__, _SUPPORTED))

    def _set(self, fn, c):
        err = _lib.Error()
        _lib.check(fn(self.handle, ctypes.byref(c), ctypes.byref(err)), err)

    def write_back(self):
        """The C generator's advanced state into the Python object."""
        err = _lib.Error()
        if self.kind == "pcg64":
            c = _lib.Pcg64State()
            _lib.check(lib.cdf_generator_get_pcg64_state(self.handle, ctypes.byref(c), ctypes.byref(err)), err)
            self.obj.bit_generator.state = {
                "bit_generator": "PCG64",
                "state": {"state": (c.state_hi << 64) | c.state_lo, "inc": (c.inc_hi << 64) | c.inc_lo},
                "has_uint32": c.has_uint32, "uinteger": c.uinteger}
        elif self.kind == "legacy":
            import numpy as np
            c = _lib.LegacyState()
            _lib.check(lib.cdf_generator_get_legacy_state(self.handle, ctypes.byref(c), ctypes.byref(err)), err)
            self.obj.set_state(("MT19937", np.array(c.key[:], dtype=np.uint32), c.pos, c.has_gauss,
                                c.cached_gaussian))
        else:
            import torch
            buf = ctypes.create_string_buffer(_lib.TORCH_CPU_STATE_BYTES)
            n = ctypes.c_size_t()
            _lib.check(lib.cdf_generator_get_torch_state_bytes(self.handle, buf, len(buf), ctypes.byref(n),
                                                               ctypes.byref(err)), err)
            self.obj.set_state(torch.tensor(bytearray(buf.raw[:n.value]), dtype=torch.uint8))

    def close(self):
        if self.handle:
            lib.cdf_generator_free(self.handle)
            self.handle = None


class Generators:
    """A call's `generator=` argument as C handles: None (the library seeds
    one from the OS), one generator, or a list of them (the same object may
    repeat: one stream used image after image, as [g] * 4 is in Python).

    with Generators(generator) as g: status = fn(..., g.array, g.count, ...)
    writes every object's state back when the call succeeded or was
    interrupted (the draws made are then kept, as in Python)."""

    def __init__(self, generator):
        self.is_list = isinstance(generator, (list, tuple))
        objs = list(generator) if self.is_list else ([] if generator is None else [generator])
        if self.is_list and not objs:
            raise ValueError("generator: an empty list")
        self._bridges = {}
        self._order = []
        try:
            for o in objs:
                b = self._bridges.get(id(o))
                if b is None:
                    b = self._bridges[id(o)] = _Bridge(o)
                self._order.append(b)
        except BaseException:
            self.close()
            raise
        self.count = len(self._order)
        self.array = (ctypes.c_void_p * max(1, self.count))(*[b.handle.value for b in self._order])

    def write_back(self):
        for b in self._bridges.values():
            b.write_back()

    def close(self):
        for b in self._bridges.values():
            b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
