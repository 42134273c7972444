"""The scheduler classes cdiffusers runs, as configs: `X.from_config(config,
**kwargs)` computes X's config exactly as diffusers does (in the C library:
the conversion rules, defaults and checks of src/schedulers), and
`pipe.scheduler = X.from_config(pipe.scheduler.config)` makes the pipeline
run X.  The stepping itself happens inside the pipeline call; these objects
have no set_timesteps/step of their own."""
import ctypes
import json
import os

from . import _lib
from ._lib import lib


class FrozenDict(dict):
    """A read-only dict whose keys are also attributes, as diffusers' config."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError("config has no attribute %r" % name) from None

    def _frozen(self, *a, **k):
        raise TypeError("a scheduler config is frozen; make a new scheduler with from_config(config, key=value)")

    __setitem__ = __delitem__ = __setattr__ = _frozen
    pop = popitem = setdefault = update = clear = _frozen


def config_from(config, class_name=None, **kwargs):
    """The C library's cdf_scheduler_config_from: `config` (a dict with
    _class_name) converted to class_name with kwargs set, as a FrozenDict."""
    keys = [_lib.text(k, "scheduler option name") for k in kwargs]
    vals = [json.dumps(v).encode() for v in kwargs.values()]
    ka = (ctypes.c_char_p * max(1, len(keys)))(*keys)
    va = (ctypes.c_char_p * max(1, len(vals)))(*vals)
    out = ctypes.c_void_p()
    err = _lib.Error()
    st = lib.cdf_scheduler_config_from(json.dumps(config).encode(),
                                       class_name.encode() if class_name else None, ka, va, len(keys),
                                       ctypes.byref(out), ctypes.byref(err))
    _lib.check(st, err)
    try:
        text = ctypes.string_at(out.value).decode()
    finally:
        lib.cdf_free(out)
    return FrozenDict(json.loads(text))


class SchedulerMixin:
    """Base of the scheduler classes: a class name and a config."""
    _class_name = None

    def __init__(self, **kwargs):
        self._config = config_from({"_class_name": self._class_name}, self._class_name, **kwargs)

    @property
    def config(self):
        return self._config

    @classmethod
    def from_config(cls, config=None, **kwargs):
        """cls(**config) as diffusers' from_config makes it: keys of other
        classes are kept hidden, kwargs override (each must be a parameter of
        cls); config may also be a scheduler."""
        if isinstance(config, SchedulerMixin):
            config = config.config
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise TypeError("from_config: config must be a dict (a scheduler's .config), not %s"
                            % type(config).__name__)
        cfg = dict(config)
        cfg.setdefault("_class_name", cls._class_name)
        obj = cls.__new__(cls)
        obj._config = config_from(cfg, cls._class_name, **kwargs)
        return obj

    @classmethod
    def from_pretrained(cls, path, subfolder=None, **kwargs):
        """Reads <path>/<subfolder>/scheduler_config.json (a local folder)."""
        folder = os.path.join(path, subfolder) if subfolder else path
        file = os.path.join(folder, "scheduler_config.json")
        try:
            with open(file, "rb") as f:
                config = json.loads(f.read().decode("utf-8"))
        except OSError as e:
            raise _lib.FileError("%s: %s" % (file, e.strerror or e)) from None
        except ValueError as e:
            raise _lib.ArgumentError("%s: not valid JSON (%s)" % (file, e)) from None
        return cls.from_config(config, **kwargs)

    def __repr__(self):
        return "%s %s" % (type(self).__name__, json.dumps(self._config, indent=2, sort_keys=True))


_CLASSES = ("DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler",
            "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler", "HeunDiscreteScheduler",
            "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "UnCLIPScheduler")
SCHEDULERS = {n: type(n, (SchedulerMixin,), {"_class_name": n, "__module__": __name__,
                                            "__doc__": "diffusers' %s (config only; see the module)." % n})
              for n in _CLASSES}
globals().update(SCHEDULERS)
__all__ = ["SchedulerMixin", "FrozenDict"] + list(_CLASSES)


def scheduler_from_json(text):
    """The scheduler object of a config the library reports."""
    cfg = FrozenDict(json.loads(text))
    obj = SchedulerMixin.__new__(SCHEDULERS[cfg["_class_name"]])
    obj._config = cfg
    return obj
