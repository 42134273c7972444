"""diffusers' pipeline classes over libcdiffusers: the same names, from_pretrained
and __call__ arguments, and outputs; the generators a call takes advance as
they do under mindone.diffusers (numpy) or diffusers (torch)."""
import ctypes
import json
import logging
import os
import sys
import time

from . import _lib
from ._generators import Generators
from ._lib import lib
from .schedulers import SchedulerMixin, scheduler_from_json, FrozenDict

logger = logging.getLogger("cdiffusers")

_settings = {"threads": None}  # cdiffusers.set_num_threads; None: every core this process may use


def num_threads():
    n = _settings["threads"]
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count() or 1
    return n


# ----------------------------------------------------------------- outputs

class BaseOutput(dict):
    """diffusers' BaseOutput: fields as attributes and keys; integer indexing
    counts the fields that are not None (output[0] is the images)."""
    _fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__()
        values = dict(zip(self._fields, args))
        values.update(kwargs)
        for f in self._fields:
            object.__setattr__(self, f, values.get(f))
            if values.get(f) is not None:
                dict.__setitem__(self, f, values[f])

    def __getitem__(self, k):
        if isinstance(k, (int, slice)):
            return self.to_tuple()[k]
        return dict.__getitem__(self, k)

    def to_tuple(self):
        return tuple(self[k] for k in self.keys())

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%s" % (f, type(getattr(self, f)).__name__)
                                                          for f in self._fields))


class ImagePipelineOutput(BaseOutput):
    """images: a list of PIL images or a float32 array [batch, height, width, channels]."""
    _fields = ("images",)


class StableDiffusionPipelineOutput(BaseOutput):
    """images, and nsfw_content_detected (None: cdiffusers runs no safety checker)."""
    _fields = ("images", "nsfw_content_detected")


# ------------------------------------------------------------ progress bar

class _Progress:
    """A text progress bar on stderr (tqdm's look, no dependency); one bar
    per denoising stage."""

    def __init__(self, config):
        self.disable = bool(config.get("disable", False))
        self.file = config.get("file") or sys.stderr
        self.desc = config.get("desc")
        self.leave = config.get("leave", True)
        self.t0 = time.monotonic()

    def __call__(self, info):
        if self.disable:
            return
        n = max(1, info.num_steps)
        done = info.step + 1
        if info.step < 0:
            self.t0 = time.monotonic()
        desc = self.desc or ""
        if info.num_stages > 1 and info.stage_name:
            desc = (desc + " " if desc else "") + info.stage_name.decode()
        el = time.monotonic() - self.t0
        width = 20
        fill = width * done // n
        rate = " %.2fs/it" % (el / done) if done else ""
        line = "\r%s%3d%%|%s%s| %d/%d [%.0fs%s]" % (desc + ": " if desc else "", 100 * done // n, "#" * fill,
                                                   " " * (width - fill), done, n, el, rate)
        end = ""
        if done == n:
            end = "\n" if self.leave else "\r" + " " * len(line) + "\r"
        try:
            self.file.write(line + end)
            self.file.flush()
        except (OSError, ValueError):
            self.disable = True


# -------------------------------------------------------------- pipelines

_FROM_PRETRAINED_KWARGS = ("use_safetensors", "variant", "torch_dtype", "mindspore_dtype", "safety_checker",
                           "requires_safety_checker", "feature_extractor", "local_files_only", "revision",
                           "cache_dir")


def _hub_caches(cache_dir):
    if cache_dir:
        yield cache_dir
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        yield env["HF_HUB_CACHE"]
    if env.get("HF_HOME"):
        yield os.path.join(env["HF_HOME"], "hub")
    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(xdg, "huggingface", "hub")


def resolve_model_path(name, cache_dir=None, revision=None):
    """A local folder as it is; a Hub id ("google/ddpm-cifar10-32") as the
    snapshot the Hugging Face cache holds (cdiffusers never downloads)."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError("pretrained_model_name_or_path must be a str or a path, not %s" % type(name).__name__)
    name = os.fspath(name)
    if os.path.isdir(name):
        return name
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and not os.path.exists(name):
        repo = "models--" + "--".join(parts)
        for cache in _hub_caches(cache_dir):
            snaps = os.path.join(cache, repo, "snapshots")
            ref = os.path.join(cache, repo, "refs", revision or "main")
            if os.path.isfile(ref):
                with open(ref) as f:
                    snap = os.path.join(snaps, f.read().strip())
                if os.path.isdir(snap):
                    return snap
            if revision and os.path.isdir(os.path.join(snaps, revision)):
                return os.path.join(snaps, revision)
            if not revision and os.path.isdir(snaps):
                found = sorted(os.listdir(snaps))
                if len(found) == 1:
                    return os.path.join(snaps, found[0])
        raise _lib.FileError("%s: no such folder, and the Hugging Face cache holds no snapshot of the Hub repository "
                             "'%s'; cdiffusers does not download: fetch it first (huggingface-cli download %s) or "
                             "pass a folder" % (name, name, name))
    raise _lib.FileError("%s: no such folder (a diffusers model folder with model_index.json)" % name)


class DiffusionPipeline:
    """A loaded model folder.  DiffusionPipeline.from_pretrained picks the
    class from model_index.json; each class's from_pretrained runs the folder
    as that class (DDIMPipeline on a DDPM folder converts its scheduler, as
    diffusers does)."""
    _kind = _lib.PIPELINE_AUTO

    def __init__(self, *args, **kwargs):
        raise TypeError("%s is made with %s.from_pretrained(folder)" % (type(self).__name__, type(self).__name__))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        for k in kwargs:
            if k not in _FROM_PRETRAINED_KWARGS:
                raise TypeError("%s.from_pretrained() got an unexpected keyword argument '%s'" % (cls.__name__, k))
        if kwargs.get("use_safetensors") is False:
            raise _lib.ArgumentError("use_safetensors=False: cdiffusers reads .safetensors weights only")
        for k in ("safety_checker", "feature_extractor"):
            if kwargs.get(k) is not None:
                raise _lib.ArgumentError("%s: cdiffusers runs no safety checker; pass %s=None or leave it out" % (k, k))
        for k in ("torch_dtype", "mindspore_dtype"):
            if kwargs.get(k) is not None:
                logger.warning("cdiffusers: %s=%s accepted: computation is float32, with the weights kept in memory "
                               "as the files store them", k, kwargs[k])
        variant = kwargs.get("variant")
        if variant is not None and not isinstance(variant, str):
            raise TypeError("variant must be a str such as 'fp16', not %s" % type(variant).__name__)
        path = resolve_model_path(pretrained_model_name_or_path, kwargs.get("cache_dir"), kwargs.get("revision"))
        opts = _lib.LoadOptions(cls._kind, variant.encode() if variant else None)
        handle = ctypes.c_void_p()
        err = _lib.Error()
        notices = []
        err.on_notice = _lib.NOTICE_FN(lambda level, msg, user: notices.append((level, msg)))
        st = lib.cdf_pipeline_load(path.encode(), ctypes.byref(opts), ctypes.byref(handle), ctypes.byref(err))
        for level, msg in notices:  # the library's notices (variant fallback, unknown config keys) as log records
            logger.log(logging.WARNING if level == _lib.NOTICE_WARN else logging.INFO, "%s", msg.decode("utf-8",
                                                                                                        "replace"))
        _lib.check(st, err)
        name = lib.cdf_pipeline_class_name(handle).decode()
        klass = cls if cls is not DiffusionPipeline else _PIPELINES.get(name, DiffusionPipeline)
        self = object.__new__(klass)
        self._handle = handle
        self.name_or_path = path
        self._class_name = name
        self._progress_config = {}
        try:
            with open(os.path.join(path, "model_index.json"), "rb") as f:
                self.config = FrozenDict(json.loads(f.read().decode("utf-8")))
        except (OSError, ValueError):
            self.config = FrozenDict({"_class_name": name})
        self._init_schedulers()
        return self

    def _init_schedulers(self):
        self._folder_scheduler = scheduler_from_json(lib.cdf_pipeline_scheduler_json(self._handle).decode())
        self.scheduler = self._folder_scheduler

    # -- handle lifetime
    def close(self):
        """Frees the C pipeline now (also done when the object is collected)."""
        h = getattr(self, "_handle", None)
        if h:
            lib.cdf_pipeline_free(h)
            self._handle = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def to(self, device=None, *args, **kwargs):
        """The CPU is the only device: to("cpu") returns the pipeline."""
        if device not in (None, "cpu") and str(device) != "cpu":
            raise _lib.ArgumentError("cdiffusers runs on the CPU only (to(%r))" % (device,))
        return self

    @property
    def device(self):
        return "cpu"

    def set_progress_bar_config(self, **kwargs):
        """disable=True turns the stderr progress bar off; desc, leave and file as tqdm takes them."""
        self._progress_config = dict(kwargs)

    def __repr__(self):
        return "%s(%s)" % (self._class_name, self.name_or_path)

    # -- the call
    def _scheduler_config(self):
        s = self.scheduler
        if s is self._folder_scheduler:
            return None
        if not isinstance(s, SchedulerMixin):
            raise TypeError("pipe.scheduler must be a cdiffusers scheduler (X.from_config(pipe.scheduler.config)), "
                            "not %s" % type(s).__name__)
        return json.dumps(s.config).encode()

    def _run(self, generator, output_type, return_dict, batch, output_cls, **fields):
        """One cdf_pipeline_generate call with the option fields given."""
        if not self._handle:
            raise _lib.ArgumentError("%s: the pipeline was closed" % self._class_name)
        opts = _lib.GenerateOptions()
        lib.cdf_generate_options_init(ctypes.byref(opts))
        keep = []
        for k, v in fields.items():
            if isinstance(v, list):
                arr = (ctypes.c_char_p * max(1, len(v)))(*v)
                keep.append(arr)
                setattr(opts, k, arr)
                setattr(opts, "num_" + k, len(v))
            else:
                setattr(opts, k, v)
        opts.threads = num_threads()
        sched = self._scheduler_config()
        if sched:
            opts.scheduler_config = sched
        kinds = {"np": _lib.OUTPUT_NP, "pil": _lib.OUTPUT_PIL, "latent": _lib.OUTPUT_SAMPLE}
        if output_type not in kinds or (output_type == "latent" and output_cls is not StableDiffusionPipelineOutput):
            raise _lib.ArgumentError("output_type %r: use \"np\" or \"pil\"%s" % (
                output_type, " or \"latent\"" if output_cls is StableDiffusionPipelineOutput else ""))
        if output_type == "pil":
            _pil()  # fail before the run when PIL is missing
        opts.output_type = kinds[output_type]
        if batch is None:
            batch = lib.cdf_pipeline_batch_size(self._handle, ctypes.byref(opts))
        progress = _Progress(self._progress_config)
        caught = []

        def on_step(info, user):
            if caught:
                return 1
            try:
                progress(info.contents)
                return 0
            except BaseException as e:  # stop at this step, raise after the call
                caught.append(e)
                return 1

        opts.on_step = _lib.STEP_FN(on_step)
        images = _lib.Tensor()
        with Generators(generator) as gens, _CtrlC(caught):
            if gens.is_list and gens.count != batch and (gens.count != 1 or self._kind_checks_list()):
                raise _lib.ArgumentError(
                    "You have passed a list of generators of length %d, but requested an effective batch size of %d. "
                    "Make sure the batch size matches the length of the generators." % (gens.count, batch))
            st = lib.cdf_pipeline_generate(self._handle, ctypes.byref(opts), gens.array if gens.count else None,
                                           gens.count, ctypes.byref(images), None)
            gens.write_back()
        if caught:
            lib.cdf_tensor_free(ctypes.byref(images))
            raise caught[0]
        if st != _lib.OK:
            raise _lib.error(st, lib.cdf_pipeline_last_error(self._handle).decode("utf-8", "replace"))
        out = _take_tensor(images)
        if output_type == "pil":
            out = _to_pil(out)
        if output_cls is StableDiffusionPipelineOutput:
            return StableDiffusionPipelineOutput(out, None) if return_dict else (out, None)
        return ImagePipelineOutput(out) if return_dict else (out,)

    def _kind_checks_list(self):
        """A list of one generator for a larger batch: DDPMPipeline draws the
        batch from it; the other pipelines reject it, as diffusers does."""
        return self._class_name not in ("DDPMPipeline", "PNDMPipeline")

    def __call__(self, *args, **kwargs):
        cls = _PIPELINES.get(self._class_name)
        if cls is None:
            raise _lib.ArgumentError("%s: this version of the Python package has no call for it" % self._class_name)
        return cls.__call__(self, *args, **kwargs)


class _CtrlC:
    """Ctrl-C during a call: Python's handler would raise KeyboardInterrupt
    wherever the next bytecode runs (inside a ctypes callback it cannot leave
    the C call); this one records it, the step callback stops the run at the
    next step boundary, and the call raises it.  Main thread only (where
    Python delivers signals)."""

    def __init__(self, caught):
        self.caught = caught
        self.old = None

    def _handler(self, signum, frame):
        if not self.caught:
            self.caught.append(KeyboardInterrupt())

    def __enter__(self):
        import signal
        import threading
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            import signal
            signal.signal(signal.SIGINT, self.old)
        return False


def _unsupported(kwargs, names, cls):
    for k, v in kwargs.items():
        if k in names:
            if v is not None:
                raise _lib.ArgumentError("%s: %s= is not supported by cdiffusers" % (cls, k))
        else:
            raise TypeError("%s.__call__() got an unexpected keyword argument '%s'" % (cls, k))


def _int(v, what, lo=None):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("%s must be an int, not %s" % (what, type(v).__name__))
    if lo is not None and v < lo:
        raise _lib.ArgumentError("%s must be at least %d (got %d)" % (what, lo, v))
    if v > 2**31 - 1:
        raise _lib.ArgumentError("%s is too large (%d)" % (what, v))
    return v


def _float(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError("%s must be a number, not %s" % (what, type(v).__name__))
    return float(v)


def _prompts(v, what, required):
    if v is None:
        if required:
            raise _lib.ArgumentError("%s is required (a str or a list of str)" % what)
        return []
    if isinstance(v, str):
        return [_lib.text(v, what)]
    if isinstance(v, (list, tuple)) and v:
        return [_lib.text(s, "%s[%d]" % (what, i)) for i, s in enumerate(v)]
    raise TypeError("%s must be a str or a non-empty list of str, not %r" % (what, type(v).__name__))


class DDPMPipeline(DiffusionPipeline):
    """diffusers' DDPMPipeline: the folder's scheduler as it is."""
    _kind = _lib.PIPELINE_DDPM

    def __call__(self, batch_size=1, generator=None, num_inference_steps=1000, output_type="pil", return_dict=True):
        return self._run(generator, output_type, return_dict, _int(batch_size, "batch_size", 1),
                         ImagePipelineOutput, batch_size=batch_size,
                         num_inference_steps=_int(num_inference_steps, "num_inference_steps", 1))


class DDIMPipeline(DiffusionPipeline):
    """diffusers' DDIMPipeline: DDIMScheduler.from_config(the folder's scheduler)."""
    _kind = _lib.PIPELINE_DDIM

    def __call__(self, batch_size=1, generator=None, eta=0.0, num_inference_steps=50, use_clipped_model_output=None,
                 output_type="pil", return_dict=True):
        clipped = -1 if use_clipped_model_output is None else int(bool(use_clipped_model_output))
        return self._run(generator, output_type, return_dict, _int(batch_size, "batch_size", 1),
                         ImagePipelineOutput, batch_size=batch_size, eta=_float(eta, "eta"),
                         num_inference_steps=_int(num_inference_steps, "num_inference_steps", 1),
                         use_clipped_model_output=clipped)


class PNDMPipeline(DiffusionPipeline):
    """diffusers' PNDMPipeline: PNDMScheduler.from_config(the folder's scheduler) on a UNet2DModel."""
    _kind = _lib.PIPELINE_PNDM

    def __call__(self, batch_size=1, num_inference_steps=50, generator=None, output_type="pil", return_dict=True,
                 **kwargs):
        for k in kwargs:
            raise TypeError("PNDMPipeline.__call__() got an unexpected keyword argument '%s'" % k)
        return self._run(generator, output_type, return_dict, _int(batch_size, "batch_size", 1),
                         ImagePipelineOutput, batch_size=batch_size,
                         num_inference_steps=_int(num_inference_steps, "num_inference_steps", 1))


_SD_UNSUPPORTED = ("timesteps", "sigmas", "latents", "prompt_embeds", "negative_prompt_embeds", "ip_adapter_image",
                   "ip_adapter_image_embeds", "cross_attention_kwargs", "callback_on_step_end",
                   "callback_on_step_end_tensor_inputs", "callback", "callback_steps")


class StableDiffusionPipeline(DiffusionPipeline):
    """diffusers' StableDiffusionPipeline (SD 1.x / 2.x text-to-image)."""
    _kind = _lib.PIPELINE_SD

    def __call__(self, prompt=None, height=None, width=None, num_inference_steps=50, guidance_scale=7.5,
                 negative_prompt=None, num_images_per_prompt=1, eta=0.0, generator=None, output_type="pil",
                 return_dict=True, guidance_rescale=0.0, clip_skip=None, **kwargs):
        _unsupported(kwargs, _SD_UNSUPPORTED, "StableDiffusionPipeline")
        prompts = _prompts(prompt, "prompt", True)
        negatives = _prompts(negative_prompt, "negative_prompt", False)
        nipp = _int(1 if num_images_per_prompt is None else num_images_per_prompt, "num_images_per_prompt", 1)
        return self._run(generator, output_type, return_dict, len(prompts) * nipp, StableDiffusionPipelineOutput,
                         prompts=prompts, negative_prompts=negatives, num_images_per_prompt=nipp,
                         height=0 if height is None else _int(height, "height", 1),
                         width=0 if width is None else _int(width, "width", 1),
                         num_inference_steps=_int(num_inference_steps, "num_inference_steps", 1),
                         guidance_scale=_float(guidance_scale, "guidance_scale"), eta=_float(eta, "eta"),
                         guidance_rescale=_float(guidance_rescale, "guidance_rescale"),
                         clip_skip=0 if clip_skip is None else _int(clip_skip, "clip_skip", 0))


def _picture(image):
    """An init picture as the C library takes it: uint8 [H, W, 3], from a PIL
    RGB image or such an array; the Tensor and the array it points into."""
    import numpy as np
    if image is None:
        raise _lib.ArgumentError("image is required (a PIL RGB picture or a uint8 [height, width, 3] array)")
    if hasattr(image, "mode") and hasattr(image, "size"):  # PIL
        if image.mode != "RGB":
            raise _lib.ArgumentError("image: a PIL picture of mode %s; convert it with image.convert('RGB')"
                                     % image.mode)
        arr = np.asarray(image, dtype=np.uint8)
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError("image: a numpy picture must be uint8 [height, width, 3] (got %s)" % image.dtype)
        arr = image
    else:
        raise TypeError("image must be a PIL RGB picture or a uint8 numpy array, not %s" % type(image).__name__)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise _lib.ArgumentError("image: shape %s, expected [height, width, 3]" % (arr.shape,))
    arr = np.ascontiguousarray(arr)
    t = _lib.Tensor(_lib.U8, 3, (ctypes.c_int64 * 8)(arr.shape[0], arr.shape[1], 3), arr.ctypes.data)
    return t, arr


class StableDiffusionImg2ImgPipeline(StableDiffusionPipeline):
    """diffusers' StableDiffusionImg2ImgPipeline: the picture encoded, noised to
    the strength's first timestep, then denoised; the output has its size."""

    def __call__(self, prompt=None, image=None, strength=0.8, num_inference_steps=50, guidance_scale=7.5,
                 negative_prompt=None, num_images_per_prompt=1, eta=0.0, generator=None, output_type="pil",
                 return_dict=True, clip_skip=None, **kwargs):
        _unsupported(kwargs, _SD_UNSUPPORTED, "StableDiffusionImg2ImgPipeline")
        prompts = _prompts(prompt, "prompt", True)
        negatives = _prompts(negative_prompt, "negative_prompt", False)
        nipp = _int(1 if num_images_per_prompt is None else num_images_per_prompt, "num_images_per_prompt", 1)
        pic, keep = _picture(image)
        try:
            return self._run(generator, output_type, return_dict, len(prompts) * nipp, StableDiffusionPipelineOutput,
                             prompts=prompts, negative_prompts=negatives, num_images_per_prompt=nipp,
                             init_image=ctypes.pointer(pic), strength=_float(strength, "strength"),
                             num_inference_steps=_int(num_inference_steps, "num_inference_steps", 1),
                             guidance_scale=_float(guidance_scale, "guidance_scale"), eta=_float(eta, "eta"),
                             clip_skip=0 if clip_skip is None else _int(clip_skip, "clip_skip", 0))
        finally:
            del keep


def _mask(mask_image):
    """A mask as the C library takes it: uint8 [H, W], PIL's mask.convert("L") of any PIL picture, or such
    an array."""
    import numpy as np
    if mask_image is None:
        raise _lib.ArgumentError("mask_image is required (a PIL picture or a uint8 [height, width] array)")
    if hasattr(mask_image, "mode") and hasattr(mask_image, "convert"):
        arr = np.asarray(mask_image.convert("L"), dtype=np.uint8)
    elif isinstance(mask_image, np.ndarray) and mask_image.dtype == np.uint8:
        arr = mask_image[..., 0] if mask_image.ndim == 3 and mask_image.shape[2] == 1 else mask_image
    else:
        raise TypeError("mask_image must be a PIL picture or a uint8 numpy array, not %s" % type(mask_image).__name__)
    if arr.ndim != 2:
        raise _lib.ArgumentError("mask_image: shape %s, expected [height, width]" % (arr.shape,))
    arr = np.ascontiguousarray(arr)
    return _lib.Tensor(_lib.U8, 2, (ctypes.c_int64 * 8)(arr.shape[0], arr.shape[1]), arr.ctypes.data), arr


class StableDiffusionInpaintPipeline(StableDiffusionPipeline):
    """diffusers' StableDiffusionInpaintPipeline: a 9-channel inpainting UNet, or a regular UNet that blends
    the kept region back after every step.  height and width, when given, must be the picture's size (the
    picture is not resized)."""

    def __call__(self, prompt=None, image=None, mask_image=None, height=None, width=None, strength=1.0,
                 num_inference_steps=50, guidance_scale=7.5, negative_prompt=None, num_images_per_prompt=1, eta=0.0,
                 generator=None, output_type="pil", return_dict=True, clip_skip=None, **kwargs):
        _unsupported(kwargs, _SD_UNSUPPORTED + ("masked_image_latents", "padding_mask_crop"),
                     "StableDiffusionInpaintPipeline")
        prompts = _prompts(prompt, "prompt", True)
        negatives = _prompts(negative_prompt, "negative_prompt", False)
        nipp = _int(1 if num_images_per_prompt is None else num_images_per_prompt, "num_images_per_prompt", 1)
        pic, keep = _picture(image)
        mask, keep_mask = _mask(mask_image)
        try:
            return self._run(generator, output_type, return_dict, len(prompts) * nipp, StableDiffusionPipelineOutput,
                             prompts=prompts, negative_prompts=negatives, num_images_per_prompt=nipp,
                             init_image=ctypes.pointer(pic), mask_image=ctypes.pointer(mask),
                             strength=_float(strength, "strength"),
                             height=0 if height is None else _int(height, "height", 1),
                             width=0 if width is None else _int(width, "width", 1),
                             num_inference_steps=_int(num_inference_steps, "num_inference_steps", 1),
                             guidance_scale=_float(guidance_scale, "guidance_scale"), eta=_float(eta, "eta"),
                             clip_skip=0 if clip_skip is None else _int(clip_skip, "clip_skip", 0))
        finally:
            del keep, keep_mask


def _pair(v, what, default=(0, 0)):
    """An (a, b) pair of non-negative ints as a ctypes int[2]; None: default."""
    if v is None:
        v = default
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise TypeError("%s must be a pair (a, b), not %r" % (what, v))
    return (ctypes.c_int * 2)(*[_int(x, what, 0) for x in v])


class StableDiffusionXLPipeline(StableDiffusionPipeline):
    """diffusers' StableDiffusionXLPipeline (text-to-image): two text encoders, the pooled embedding and the
    size micro-conditioning; guidance 5.0 by default."""

    def __call__(self, prompt=None, prompt_2=None, height=None, width=None, num_inference_steps=50,
                 guidance_scale=5.0, negative_prompt=None, negative_prompt_2=None, num_images_per_prompt=1, eta=0.0,
                 generator=None, output_type="pil", return_dict=True, guidance_rescale=0.0, original_size=None,
                 crops_coords_top_left=(0, 0), target_size=None, clip_skip=None, **kwargs):
        _unsupported(kwargs, _SD_UNSUPPORTED + ("denoising_end", "pooled_prompt_embeds", "negative_pooled_prompt_embeds",
                                                "negative_original_size", "negative_crops_coords_top_left",
                                                "negative_target_size"), "StableDiffusionXLPipeline")
        prompts = _prompts(prompt, "prompt", True)
        nipp = _int(1 if num_images_per_prompt is None else num_images_per_prompt, "num_images_per_prompt", 1)
        return self._run(generator, output_type, return_dict, len(prompts) * nipp, StableDiffusionPipelineOutput,
                         prompts=prompts, prompts_2=_prompts(prompt_2, "prompt_2", False),
                         negative_prompts=_prompts(negative_prompt, "negative_prompt", False),
                         negative_prompts_2=_prompts(negative_prompt_2, "negative_prompt_2", False),
                         num_images_per_prompt=nipp,
                         height=0 if height is None else _int(height, "height", 1),
                         width=0 if width is None else _int(width, "width", 1),
                         num_inference_steps=_int(num_inference_steps, "num_inference_steps", 1),
                         guidance_scale=_float(guidance_scale, "guidance_scale"), eta=_float(eta, "eta"),
                         guidance_rescale=_float(guidance_rescale, "guidance_rescale"),
                         original_size=_pair(original_size, "original_size"),
                         crops_coords_top_left=_pair(crops_coords_top_left, "crops_coords_top_left"),
                         target_size=_pair(target_size, "target_size"),
                         clip_skip=0 if clip_skip is None else _int(clip_skip, "clip_skip", 0))


class UnCLIPPipeline(DiffusionPipeline):
    """diffusers' UnCLIPPipeline (Karlo): prior, decoder, two super-resolution UNets."""
    _kind = _lib.PIPELINE_UNCLIP

    def _init_schedulers(self):
        cfgs = json.loads(lib.cdf_pipeline_scheduler_json(self._handle).decode())
        self._folder_schedulers = {}
        for k, v in cfgs.items():
            self._folder_schedulers[k] = scheduler_from_json(json.dumps(v))
            setattr(self, k, self._folder_schedulers[k])
        self._folder_scheduler = self.scheduler = None

    def _scheduler_config(self):
        for k, s in self._folder_schedulers.items():
            if getattr(self, k) is not s:
                raise _lib.ArgumentError("UnCLIPPipeline runs its folder's three UnCLIPSchedulers: %s cannot be "
                                         "swapped" % k)
        return None

    def __call__(self, prompt=None, num_images_per_prompt=1, prior_num_inference_steps=25,
                 decoder_num_inference_steps=25, super_res_num_inference_steps=7, generator=None,
                 prior_guidance_scale=4.0, decoder_guidance_scale=8.0, output_type="pil", return_dict=True,
                 **kwargs):
        _unsupported(kwargs, ("prior_latents", "decoder_latents", "super_res_latents", "text_model_output",
                              "text_attention_mask"), "UnCLIPPipeline")
        prompts = _prompts(prompt, "prompt", True)
        nipp = _int(num_images_per_prompt, "num_images_per_prompt", 1)
        return self._run(generator, output_type, return_dict, len(prompts) * nipp, ImagePipelineOutput,
                         prompts=prompts, num_images_per_prompt=nipp,
                         prior_num_inference_steps=_int(prior_num_inference_steps, "prior_num_inference_steps", 1),
                         decoder_num_inference_steps=_int(decoder_num_inference_steps, "decoder_num_inference_steps",
                                                          1),
                         super_res_num_inference_steps=_int(super_res_num_inference_steps,
                                                            "super_res_num_inference_steps", 1),
                         prior_guidance_scale=_float(prior_guidance_scale, "prior_guidance_scale"),
                         decoder_guidance_scale=_float(decoder_guidance_scale, "decoder_guidance_scale"))


_PIPELINES = {c.__name__: c for c in (DDPMPipeline, DDIMPipeline, PNDMPipeline, StableDiffusionPipeline,
                                      StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                                      StableDiffusionXLPipeline, UnCLIPPipeline)}


# ------------------------------------------------------------ conversions

def _take_tensor(t):
    """A library-allocated cdf_tensor as a numpy array (copied; t freed)."""
    import numpy as np
    try:
        dtype = {_lib.F32: np.float32, _lib.U8: np.uint8}[t.dtype]
        shape = tuple(t.shape[i] for i in range(t.ndim))
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        buf = (ctypes.c_char * n).from_address(t.data) if n else b""
        return np.frombuffer(buf, dtype=dtype).reshape(shape).copy()
    finally:
        lib.cdf_tensor_free(ctypes.byref(t))


def _pil():
    try:
        from PIL import Image
        return Image
    except ImportError:
        raise ImportError("output_type=\"pil\" and make_image_grid need PIL (Debian: python3-pil); "
                          "output_type=\"np\" needs only numpy") from None


def _to_pil(u8):
    """uint8 [batch, h, w, c] as numpy_to_pil makes it: a list of images, mode L for one channel."""
    Image = _pil()
    if u8.shape[-1] == 1:
        return [Image.fromarray(im.squeeze(-1), mode="L") for im in u8]
    return [Image.fromarray(im) for im in u8]
