"""ctypes bindings of libcdiffusers (include/cdiffusers/*.h): the library,
the structs the calls take, and the status -> exception mapping.

The shared library is looked up, in order: $CDIFFUSERS_LIBRARY; a
libcdiffusers.so* beside this file (the build's build/python copy and the
installed package); the system loader (libcdiffusers.so.0)."""
import ctypes
import glob
import os

_here = os.path.dirname(os.path.abspath(__file__))


def _find_library():
    env = os.environ.get("CDIFFUSERS_LIBRARY")
    if env:
        return env
    beside = sorted(glob.glob(os.path.join(_here, "libcdiffusers.so*")), key=len)
    if beside:
        return beside[0]
    return "libcdiffusers.so.0"


def _load():
    path = _find_library()
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ImportError("cdiffusers: cannot load the C library %s (%s); build the project (cmake --build build) "
                          "and use build/python, or set CDIFFUSERS_LIBRARY" % (path, e)) from None


lib = _load()

c_int, c_int64, c_uint64, c_uint32, c_double, c_size_t = (ctypes.c_int, ctypes.c_int64, ctypes.c_uint64,
                                                           ctypes.c_uint32, ctypes.c_double, ctypes.c_size_t)
c_char_p, c_void_p, POINTER = ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER

# cdf_status values (CDF_STATUS_TABLE in include/cdiffusers/core.h)
OK, ERR_NOMEM, ERR_IO, ERR_FORMAT, ERR_CONFIG, ERR_SHAPE, ERR_MISSING, ERR_ARG, ERR_UNSUPPORTED, \
    ERR_INTERRUPTED, ERR_LIMIT, ERR_INTERNAL = range(12)
# cdf_dtype
F32, F16, BF16, F64, I64, I32, U8 = range(7)
# cdf_rng_kind
RNG_NUMPY, RNG_TORCH_CPU, RNG_TORCH_CPU_AVX2, RNG_TORCH_CUDA, RNG_NUMPY_LEGACY = range(5)
# cdf_pipeline_kind
PIPELINE_AUTO, PIPELINE_DDPM, PIPELINE_DDIM, PIPELINE_SD, PIPELINE_UNCLIP, PIPELINE_PNDM = range(6)
# cdf_output_type
OUTPUT_NP, OUTPUT_PIL, OUTPUT_SAMPLE = range(3)

NOTICE_INFO, NOTICE_WARN = 0, 1
NOTICE_FN = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class Error(ctypes.Structure):  # cdf_error
    _fields_ = [("status", c_int), ("msg", ctypes.c_char * 1024), ("on_notice", NOTICE_FN),
                ("notice_user", c_void_p)]


class Tensor(ctypes.Structure):  # cdf_tensor
    _fields_ = [("dtype", c_int), ("ndim", c_int), ("shape", c_int64 * 8), ("data", c_void_p)]


class LoadOptions(ctypes.Structure):  # cdf_load_options
    _fields_ = [("kind", c_int), ("variant", c_char_p)]


class StepInfo(ctypes.Structure):  # cdf_step_info
    _fields_ = [("step", c_int), ("num_steps", c_int), ("timestep", c_int64),
                ("latents", c_void_p), ("model_out", c_void_p), ("variance_noise", c_void_p),
                ("batch", c_int), ("channels", c_int), ("model_channels", c_int), ("height", c_int),
                ("width", c_int), ("stage", c_int), ("num_stages", c_int), ("stage_name", c_char_p)]


STEP_FN = ctypes.CFUNCTYPE(c_int, POINTER(StepInfo), c_void_p)
DUMP_FN = ctypes.CFUNCTYPE(c_int, c_char_p, POINTER(Tensor), c_void_p)


class GenerateOptions(ctypes.Structure):  # cdf_generate_options, field for field
    _fields_ = [("batch_size", c_int), ("num_inference_steps", c_int), ("eta", c_double),
                ("use_clipped_model_output", c_int), ("threads", c_int), ("precision", c_int),
                ("output_type", c_int), ("on_step", STEP_FN), ("on_step_user", c_void_p),
                ("prompts", POINTER(c_char_p)), ("num_prompts", c_size_t),
                ("negative_prompts", POINTER(c_char_p)), ("num_negative_prompts", c_size_t),
                ("num_images_per_prompt", c_int), ("guidance_scale", c_double), ("guidance_rescale", c_double),
                ("height", c_int), ("width", c_int), ("clip_skip", c_int), ("scheduler", c_char_p),
                ("use_karras_sigmas", c_int), ("scheduler_config", c_char_p),
                ("prior_num_inference_steps", c_int), ("decoder_num_inference_steps", c_int),
                ("super_res_num_inference_steps", c_int), ("prior_guidance_scale", c_double),
                ("decoder_guidance_scale", c_double), ("on_dump", DUMP_FN), ("on_dump_user", c_void_p),
                ("work_gflop", POINTER(c_double)), ("init_image", POINTER(Tensor)), ("strength", c_double),
                ("mask_image", POINTER(Tensor)), ("prompts_2", POINTER(c_char_p)), ("num_prompts_2", c_size_t),
                ("negative_prompts_2", POINTER(c_char_p)), ("num_negative_prompts_2", c_size_t),
                ("original_size", c_int * 2), ("crops_coords_top_left", c_int * 2), ("target_size", c_int * 2),
                ("text_cache", c_void_p)]


class Pcg64State(ctypes.Structure):  # cdf_pcg64_state
    _fields_ = [("state_hi", c_uint64), ("state_lo", c_uint64), ("inc_hi", c_uint64), ("inc_lo", c_uint64),
                ("has_uint32", c_int), ("uinteger", c_uint32)]


class LegacyState(ctypes.Structure):  # cdf_legacy_state
    _fields_ = [("key", c_uint32 * 624), ("pos", c_int), ("has_gauss", c_int), ("cached_gaussian", c_double)]


TORCH_CPU_STATE_BYTES = 5056


def _proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


_E = POINTER(Error)
_proto("cdf_status_name", c_char_p, c_int)
_proto("cdf_pipeline_load", c_int, c_char_p, POINTER(LoadOptions), POINTER(c_void_p), _E)
_proto("cdf_pipeline_free", None, c_void_p)
_proto("cdf_pipeline_last_error", c_char_p, c_void_p)
_proto("cdf_pipeline_get_kind", c_int, c_void_p)
_proto("cdf_pipeline_class_name", c_char_p, c_void_p)
_proto("cdf_pipeline_scheduler_name", c_char_p, c_void_p)
_proto("cdf_pipeline_scheduler_json", c_char_p, c_void_p)
_proto("cdf_pipeline_sample_size", None, c_void_p, POINTER(c_int), POINTER(c_int), POINTER(c_int))
_proto("cdf_generate_options_init", None, POINTER(GenerateOptions))
_proto("cdf_pipeline_batch_size", c_int, c_void_p, POINTER(GenerateOptions))
_proto("cdf_pipeline_generate", c_int, c_void_p, POINTER(GenerateOptions), POINTER(c_void_p), c_size_t,
       POINTER(Tensor), c_char_p)
_proto("cdf_tensor_free", None, POINTER(Tensor))
_proto("cdf_free", None, c_void_p)
_proto("cdf_scheduler_config_from", c_int, c_char_p, c_char_p, POINTER(c_char_p), POINTER(c_char_p), c_size_t,
       POINTER(c_void_p), _E)
_proto("cdf_generator_new", c_int, c_int, c_char_p, POINTER(c_void_p), _E)
_proto("cdf_generator_free", None, c_void_p)
_proto("cdf_generator_get_pcg64_state", c_int, c_void_p, POINTER(Pcg64State), _E)
_proto("cdf_generator_set_pcg64_state", c_int, c_void_p, POINTER(Pcg64State), _E)
_proto("cdf_generator_get_legacy_state", c_int, c_void_p, POINTER(LegacyState), _E)
_proto("cdf_generator_set_legacy_state", c_int, c_void_p, POINTER(LegacyState), _E)
_proto("cdf_generator_get_torch_state_bytes", c_int, c_void_p, c_void_p, c_size_t, POINTER(c_size_t), _E)
_proto("cdf_generator_set_torch_state_bytes", c_int, c_void_p, c_void_p, c_size_t, _E)
_proto("cdf_randn_tensor", c_int, POINTER(c_void_p), c_size_t, POINTER(c_int64), c_int, c_int, c_void_p, _E)


class CdiffusersError(Exception):
    """Mixin of every exception the library's status codes become; .status is
    the code's name ("ERR_CONFIG", ...)."""
    status = "ERR_INTERNAL"


def _exc_class(base):
    return type("Cdiffusers" + base.__name__, (CdiffusersError, base), {"__module__": "cdiffusers"})


FileError = _exc_class(OSError)            # missing or unreadable files (ERR_IO, ERR_MISSING, ERR_FORMAT)
ArgumentError = _exc_class(ValueError)     # bad configs and arguments
NoMemoryError = _exc_class(MemoryError)
InternalError = _exc_class(RuntimeError)

_EXC = {ERR_NOMEM: NoMemoryError, ERR_IO: FileError, ERR_FORMAT: FileError, ERR_MISSING: FileError,
        ERR_CONFIG: ArgumentError, ERR_SHAPE: ArgumentError, ERR_ARG: ArgumentError,
        ERR_UNSUPPORTED: ArgumentError, ERR_LIMIT: ArgumentError, ERR_INTERNAL: InternalError}


def error(status, message):
    """The exception for a failed call: the library's one-line message."""
    if status == ERR_INTERRUPTED:
        return KeyboardInterrupt(message)
    cls = _EXC.get(status, InternalError)
    e = cls(message)
    e.status = lib.cdf_status_name(status).decode()
    return e


def check(status, err):
    """Raises the exception of a failed call (err: the Error it filled)."""
    if status != OK:
        raise error(status, err.msg.decode("utf-8", "replace"))


def text(s, what):
    """str -> UTF-8 bytes for a char* argument; a clear TypeError otherwise."""
    if not isinstance(s, str):
        raise TypeError("%s must be a str, not %s" % (what, type(s).__name__))
    if "\0" in s:
        raise ValueError("%s contains a NUL character" % what)
    return s.encode("utf-8")
