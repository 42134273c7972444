"""diffusers.utils' helpers the reproducibility guide uses: randn_tensor (with
mindone's numpy semantics, live generators advanced as in Python) and
make_image_grid."""
import ctypes

from . import _lib
from ._generators import Generators
from ._lib import lib


def _np_dtype(dtype):
    import numpy as np
    try:
        d = np.dtype(dtype)
    except TypeError:  # a torch dtype: torch.float16 -> float16
        try:
            d = np.dtype(str(dtype).replace("torch.", ""))
        except TypeError:
            d = None
    codes = {np.dtype(np.float32): _lib.F32, np.dtype(np.float16): _lib.F16, np.dtype(np.float64): _lib.F64}
    if d not in codes:
        raise _lib.ArgumentError("randn_tensor: dtype %s is not supported (float16, float32, float64)" % (dtype,))
    return d, codes[d]


def randn_tensor(shape, generator=None, dtype=None, **kwargs):
    """Standard normal noise of `shape` as a numpy array, drawn as mindone's
    randn_tensor draws it: one generator draws the whole shape (float64
    standard_normal cast once to dtype); a list of generators draws one
    (1, ...) slice each, in order (the same object may repeat).  torch
    generators draw as torch.randn(shape, generator=g) on the CPU; a
    RandomState as standard_normal.  generator=None: a fresh OS seed.
    dtype: np.float32 (default), np.float16, np.float64 (or the torch dtypes
    of those).  device= and layout= are accepted for diffusers' signature
    (the CPU and strided are the only ones)."""
    import numpy as np
    for k, v in kwargs.items():
        if k not in ("device", "layout"):
            raise TypeError("randn_tensor() got an unexpected keyword argument '%s'" % k)
        if k == "device" and v is not None and str(v) != "cpu":
            raise _lib.ArgumentError("randn_tensor: device %s: cdiffusers draws on the CPU" % (v,))
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError("randn_tensor: shape must be a sequence of ints") from None
    if not shape or len(shape) > 8 or any(s < 0 for s in shape):
        raise _lib.ArgumentError("randn_tensor: shape %s must have 1 to 8 non-negative dims" % (shape,))
    d, code = _np_dtype(np.float32 if dtype is None else dtype)
    if generator is None:
        generator = np.random.default_rng()
    if isinstance(generator, (list, tuple)) and len(generator) == 1:
        generator = generator[0]
    out = np.empty(shape, dtype=d)
    dims = (ctypes.c_int64 * len(shape))(*shape)
    with Generators(generator) as gens:
        err = _lib.Error()
        st = lib.cdf_randn_tensor(gens.array, gens.count, dims, len(shape), code, out.ctypes.data,
                                  ctypes.byref(err))
        _lib.check(st, err)
        gens.write_back()
    return out


def numpy_to_pil(images):
    """float images in [0, 1], [h, w, c] or [batch, h, w, c], to PIL images as diffusers rounds them."""
    import numpy as np
    from .pipelines import _pil
    Image = _pil()
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    u8 = (images * 255).round().astype("uint8")
    if u8.shape[-1] == 1:
        return [Image.fromarray(im.squeeze(-1), mode="L") for im in u8]
    return [Image.fromarray(im) for im in u8]


def make_image_grid(images, rows, cols, resize=None):
    """diffusers' make_image_grid: rows x cols images (PIL images, or numpy
    images as output_type="np" gives them) pasted into one RGB image, row by
    row; resize: each image scaled to resize x resize first."""
    import numpy as np
    from .pipelines import _pil
    Image = _pil()
    if isinstance(images, np.ndarray):
        images = numpy_to_pil(images) if images.dtype != np.uint8 else [Image.fromarray(i) for i in images]
    images = [numpy_to_pil(i)[0] if isinstance(i, np.ndarray) else i for i in images]
    if len(images) != rows * cols:
        raise _lib.ArgumentError("make_image_grid: %d images for a %d x %d grid" % (len(images), rows, cols))
    if resize is not None:
        images = [img.resize((resize, resize)) for img in images]
    w, h = images[0].size
    grid = Image.new("RGB", size=(cols * w, rows * h))
    for i, img in enumerate(images):
        grid.paste(img, box=(i % cols * w, i // cols * h))
    return grid
