"""Lazy loader of the compiled op library `_cnnpractice_ops.so`.

The library is loaded on the first call of `load_op_library()`, never at
import time, and refused with instructions to rebuild when it is missing or
was compiled against another TensorFlow.
"""

import ctypes
import functools
import json
import pathlib

import tensorflow as tf

LIBRARY_PATH = pathlib.Path(__file__).with_name("_cnnpractice_ops.so")
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


def build_info(path=LIBRARY_PATH):
    """What the library at `path` was compiled against, as a dict."""
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
    """The loaded op library module (loaded once, on first use)."""
    return load_from(LIBRARY_PATH)
