"""Lazy loader of the compiled op library.

The CPU kernels are built once per instruction-set level (setup.py):
`_cnnpractice_ops.so` for any x86-64-v2 CPU ("generic"),
`_cnnpractice_ops_avx2.so` (x86-64-v3: AVX2, FMA) and
`_cnnpractice_ops_avx512.so` (x86-64-v4 plus VPOPCNTDQ). The loader picks
the best level the running CPU supports, from the flags the kernel reports
for it (`/proc/cpuinfo`, i.e. cpuid as the OS enables it), never from the
machine that built the library; `KCP_ISA=generic|avx2|avx512` forces a
level (one the CPU supports), for tests and comparisons.

The library is loaded on the first call of `load_op_library()`, never at
import time, and refused with instructions to rebuild when it is missing or
was compiled against another TensorFlow.
"""

import ctypes
import functools
import json
import os
import pathlib

import tensorflow as tf

ISA_ENV = "KCP_ISA"
# Levels, best first, with the CPU flags (as /proc/cpuinfo names them) each
# one's code may use.
_V2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
_V3 = _V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe",
             "xsave"}
ISA_LEVELS = {
    "avx512": _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq",
                     "avx512vl", "avx512_vpopcntdq"},
    "avx2": _V3,
    "generic": _V2,
}
GENERIC_PATH = pathlib.Path(__file__).with_name("_cnnpractice_ops.so")
REBUILD_HINT = (
    "Rebuild it against the installed TensorFlow: run `make install` in the "
    "keras_cnnpractice repository (or `pip install --no-build-isolation -e .` "
    "inside the environment that has TensorFlow).")


class OpLibraryError(ImportError):
    """The compiled op library is missing, unloadable or stale."""


def check_build_info(info, runtime_version=None):
    """Raises `OpLibraryError` unless `info` matches the running TensorFlow.

    Args:
        info: the dict the library reports (`tensorflow_version`, `cuda`).
        runtime_version: TensorFlow version to compare with; defaults to
            `tf.__version__`.
    """
    runtime_version = runtime_version or tf.__version__
    built = info.get("tensorflow_version")
    if built != runtime_version:
        raise OpLibraryError(
            f"The keras_cnnpractice op library was built against TensorFlow "
            f"{built}, but TensorFlow {runtime_version} is installed. "
            + REBUILD_HINT)


def library_path(level):
    """The library file of an instruction-set level."""
    if level == "generic":
        return GENERIC_PATH
    return GENERIC_PATH.with_name(f"{GENERIC_PATH.stem}_{level}.so")


@functools.cache
def cpu_flags():
    """The running CPU's feature flags (empty where /proc/cpuinfo is not
    readable: then only the generic level is chosen)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def supported_levels(flags=None):
    """The levels whose code the CPU can run, best first (generic always:
    the floor this package is built for)."""
    flags = cpu_flags() if flags is None else flags
    return [level for level, needs in ISA_LEVELS.items()
            if level == "generic" or needs <= flags]


def chosen_level(flags=None, forced=None):
    """The level to load: `$KCP_ISA` if set (it must be supported), else
    the best supported one that was built."""
    forced = os.environ.get(ISA_ENV) if forced is None else forced
    flags = cpu_flags() if flags is None else flags
    supported = supported_levels(flags)
    if forced:
        if forced not in ISA_LEVELS:
            raise OpLibraryError(f"{ISA_ENV} must be one of "
                                 f"{', '.join(ISA_LEVELS)}. Received: "
                                 f"{ISA_ENV}={forced!r}")
        if forced not in supported:
            missing = sorted(ISA_LEVELS[forced] - flags)
            raise OpLibraryError(f"{ISA_ENV}={forced} needs CPU flags this "
                                 f"CPU lacks: {', '.join(missing)}")
        return forced
    for level in supported:
        if library_path(level).is_file():
            return level
    return "generic"


def build_info(path=None):
    """What the library at `path` (default: the loaded one) was compiled
    against, as a dict."""
    if path is None:
        # Through TensorFlow first: a library dlopen-ed by ctypes alone would
        # register its ops before tf.load_op_library could collect them.
        load_op_library()
        path = library_path(chosen_level())
    fn = ctypes.CDLL(str(path)).KerasCnnPracticeBuildInfo
    fn.restype = ctypes.c_char_p
    return json.loads(fn().decode())


def load_from(path):
    """Loads the op library at `path`, checking it first (uncached)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise OpLibraryError(
            f"The keras_cnnpractice op library is missing (looked for "
            f"{path}). " + REBUILD_HINT)
    try:
        module = tf.load_op_library(str(path))
        info = build_info(path)
    except (tf.errors.NotFoundError, OSError, AttributeError) as err:
        raise OpLibraryError(
            f"The keras_cnnpractice op library at {path} could not be loaded "
            f"({err}); it was probably built against another TensorFlow. "
            + REBUILD_HINT) from err
    check_build_info(info)
    return module


@functools.cache
def load_op_library():
    """The loaded op library module (loaded once, on first use): the build
    of `chosen_level()`."""
    return load_from(library_path(chosen_level()))
