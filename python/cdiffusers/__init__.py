"""cdiffusers for Python: diffusers' pipelines over the C library, where the
reproducibility guide's code runs with only the import changed.

    from cdiffusers import DDIMPipeline
    import numpy as np
    ddim = DDIMPipeline.from_pretrained("path/to/ddpm-cifar10-32", use_safetensors=True)
    generator = np.random.Generator(np.random.PCG64(0))
    image = ddim(num_inference_steps=2, output_type="np", generator=generator)[0]

ctypes over libcdiffusers.so; numpy is the only dependency (PIL for
output_type="pil" and make_image_grid).  docs/PYTHON.md has the guide's
examples and what differs from diffusers."""
from . import schedulers, utils
from ._lib import ArgumentError, CdiffusersError, FileError, lib as _clib
from .pipelines import (BaseOutput, DDIMPipeline, DDPMPipeline, DiffusionPipeline, ImagePipelineOutput, PNDMPipeline,
                        StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                        StableDiffusionPipelineOutput, StableDiffusionXLPipeline, UnCLIPPipeline, _settings)
from .schedulers import *  # noqa: F401,F403 - the scheduler classes
from .utils import make_image_grid, randn_tensor

__version__ = "0.1.0"


def set_num_threads(n):
    """Threads of every later call (default: every core this process may
    use).  Results do not depend on it: each output element keeps one
    reduction order."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError("set_num_threads: n must be an int >= 1 (got %r)" % (n,))
    _settings["threads"] = n


def get_num_threads():
    from .pipelines import num_threads
    return num_threads()
