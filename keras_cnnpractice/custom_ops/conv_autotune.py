"""Picks the fastest convolution algorithm for a layer on this machine.

`choose_algorithm` times every algorithm of `conv_algorithms` that can
compute the convolution, on random data of the given shape, keeps those
whose output is within `TOLERANCE` of a float64 numpy direct convolution,
and returns the one to use. It measures in context, as the layer runs:

- with the layer's epilogue (bias and activation) after the convolution,
  in a `tf.function`, so TensorFlow's own convolution is timed with the
  fusions its graph optimizer gives it (oneDNN's Conv2D + BiasAdd + ReLU)
  and a custom op pays for the separate passes it needs;
- at the batch the layer is called with; an unknown batch (None, as in
  `model.predict`'s trace) at each of `UNKNOWN_BATCHES`;
- and it keeps `native` unless another algorithm is at least `MARGIN`
  faster at every measured batch: a choice within timing noise, or one
  that wins at batch 1 and loses at batch 8, is not worth a custom op.

The measurement is made once per shape, epilogue and machine: its result is
cached in a JSON file, by default
`~/.cache/keras_cnnpractice/conv_algorithms.json`, or the path in the
`KCP_CONV_CACHE` environment variable. An entry is keyed by the input shape,
kernel shape, strides, padding, dilations, dtype and epilogue, and by the
machine: CPU model, visible GPUs, TensorFlow version and a digest of the op
library file, so a rebuilt library or another machine measures again. The
file is written through a temporary name and a rename; an unreadable one is
reported with a warning, measured again and rewritten.
"""

import functools
import hashlib
import json
import math
import os
import pathlib
import time

import numpy as np
import tensorflow as tf
from absl import logging

from keras_cnnpractice._files import write_text_atomic
from keras_cnnpractice._machine import cpu_model
from keras_cnnpractice.custom_ops import _loader
from keras_cnnpractice.custom_ops import conv_algorithms

CACHE_ENV = "KCP_CONV_CACHE"
# Largest accepted max|y - reference| / max|reference|, per compute dtype.
# float64 asks for float64 accuracy: the custom ops compute in float32
# (errors near 1e-7), so in float64 only `native` qualifies.
TOLERANCE = {"float64": 1e-10, "float32": 1e-4, "float16": 1e-2,
             "bfloat16": 5e-2}
REPEATS = 3  # timed calls per algorithm after the checked first call
# The batches an unknown batch size is measured at.
UNKNOWN_BATCHES = (1, 8)
# How much faster than `native` (at every measured batch) another algorithm
# must be to be chosen: 1.1 = 10 % less time.
MARGIN = 1.1
# An algorithm whose first timed call takes this many times the best so far
# is not timed further (FFT on a 3x3 kernel: seconds per call).
HOPELESS = 3.0


def tolerance(dtype):
    """`TOLERANCE[dtype]`; ValueError naming the dtypes served, for others.

    Args:
        dtype: the compute dtype's name.
    """
    if dtype not in TOLERANCE:
        raise ValueError(
            "Convolution algorithms are measured in floating point only: "
            f"dtype must be one of {sorted(TOLERANCE)} (or choose an "
            f"algorithm explicitly). Received: dtype={dtype!r}")
    return TOLERANCE[dtype]


def cache_path():
    """The cache file: $KCP_CONV_CACHE, else ~/.cache/keras_cnnpractice/."""
    path = os.environ.get(CACHE_ENV)
    if path:
        return pathlib.Path(path)
    return (pathlib.Path.home() / ".cache" / "keras_cnnpractice"
            / "conv_algorithms.json")


@functools.cache
def machine_key():
    """CPU model, GPUs, TensorFlow version and op library digest."""
    try:
        library = hashlib.sha256(
            _loader.library_path(_loader.chosen_level()).read_bytes()
        ).hexdigest()[:16]
    except OSError:
        library = "missing"
    gpus = [tf.config.experimental.get_device_details(gpu).get(
        "device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")]
    return (f"cpu={cpu_model()} gpus={gpus or 'none'} tf={tf.__version__} "
            f"op_library={library}")


def cache_key(input_shape, kernel_shape, strides, padding, dilations, dtype,
              epilogue_name="none"):
    """The cache entry's name for one convolution on this machine."""
    return (f"input={tuple(input_shape)} kernel={tuple(kernel_shape)} "
            f"strides={tuple(strides)} padding={padding.upper()} "
            f"dilations={tuple(dilations)} dtype={dtype} "
            f"epilogue={epilogue_name} | {machine_key()}")


def read_cache(path):
    """The cache's entries ({} when missing; warns and returns {} when the
    file cannot be read or parsed)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as err:
        logging.warning("Cannot read the convolution algorithm cache %s "
                        "(%s); measuring again.", path, err)
        return {}
    try:
        entries = json.loads(text)["entries"]
        if not isinstance(entries, dict):
            raise TypeError(f"'entries' is a {type(entries).__name__}")
    except (ValueError, KeyError, TypeError) as err:
        logging.warning("The convolution algorithm cache %s is corrupt "
                        "(%s: %s); measuring again and rewriting it.", path,
                        type(err).__name__, err)
        return {}
    return entries


def _store(key, record):
    path = cache_path()
    entries = read_cache(path)  # what other processes wrote meanwhile
    entries[key] = record
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(
            {"version": 1, "entries": entries}, indent=1, sort_keys=True)
            + "\n")
    except OSError as err:
        logging.warning("Cannot write the convolution algorithm cache %s "
                        "(%s); the choice is not remembered.", path, err)


def reference_conv2d(x, w, strides, padding, dilations):
    """float64 direct convolution in numpy, TensorFlow's SAME/VALID rules.

    Args:
        x: `[batch, height, width, in]`; w: `[kh, kw, in, out]`.
        strides, dilations: (height, width) pairs.
        padding: `"SAME"` or `"VALID"`.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    outs, pads = [], []
    for size, k, s, d in zip(x.shape[1:3], w.shape[:2], strides, dilations):
        span = (k - 1) * d + 1
        out = (-(-size // s) if padding.upper() == "SAME"
               else (size - span) // s + 1)
        total = max((out - 1) * s + span - size, 0)
        outs.append(out)
        pads.append((total // 2, total - total // 2))
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    y = np.zeros((x.shape[0], *outs, w.shape[3]))
    (sh, sw), (dh, dw) = strides, dilations
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            window = xp[:, i * dh:i * dh + (outs[0] - 1) * sh + 1:sh,
                        j * dw:j * dw + (outs[1] - 1) * sw + 1:sw]
            y += window @ w[i, j]
    return y


def _why(err):
    """The line of an error that says what went wrong: TensorFlow puts it
    last (after "in user code:" or "Graph execution error:" and a stack),
    before the `[[{{node ...}}]]` it ran in."""
    text = err.message if isinstance(err, tf.errors.OpError) else str(err)
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("[[")][-1]


def valid_algorithms(kernel_size, strides, dilations):
    """The algorithms of `conv_algorithms.ALGORITHMS` that can compute it."""
    return [a for a in conv_algorithms.ALGORITHMS
            if conv_algorithms.unsupported_reason(
                a, kernel_size, strides, dilations) is None]


def _timed(fn, repeats, hopeless_ms):
    """The fastest of `repeats` calls of `fn`, in ms; one call only when it
    takes more than `hopeless_ms`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()[:1, :1, :1, :1].numpy()  # waits for a GPU too
        times.append((time.perf_counter() - start) * 1e3)
        if times[0] > hopeless_ms:
            break
    return min(times)


def _pick(ms):
    """The algorithm to use, given {algorithm: [ms per batch]}: the one
    with the largest worst-case speedup over `native` if that is at least
    `MARGIN`, else `native`; without `native`, the fastest in total."""
    if "native" not in ms:
        return min(ms, key=lambda a: sum(ms[a]))
    worst = {a: min(n / max(t, 1e-9) for n, t in zip(ms["native"], ms[a]))
             for a in ms}
    best = max(worst, key=worst.get)
    return best if worst[best] >= MARGIN else "native"


def measure(input_shape, kernel_shape, strides, padding, dilations,
            dtype="float32", repeats=REPEATS, epilogue=None):
    """Checks and times every valid algorithm on random data.

    The batch of `input_shape` is measured; an unknown one (None) at each
    of `UNKNOWN_BATCHES`. Each algorithm's first call (which traces its
    `tf.function`) is compared with `reference_conv2d` on the first image;
    one whose relative error exceeds `tolerance(dtype)`, whose output has
    the wrong shape (TensorFlow's oneDNN Conv2D returns the input's shape
    for an empty batch), or whose op rejects the shape (ValueError,
    InvalidArgumentError or UnimplementedError) is not timed. The others
    are timed, followed by `epilogue`, in a `tf.function` over `repeats`
    calls; the fastest (minimum) counts. An empty convolution (a batch of
    0, no input channels) is measured like any other.

    Args:
        input_shape: NHWC input shape; the batch may be None.
        kernel_shape: `[kh, kw, in, out]`.
        strides, dilations: (height, width) pairs.
        padding: `"SAME"` or `"VALID"`.
        dtype: the compute dtype's name.
        repeats: timed calls per algorithm and batch.
        epilogue: what follows the convolution where it runs (a function
            of its output: the layer's bias and activation), or None.

    Returns:
        The cache record: {"algorithm": the one to use (see the module
        docstring), "ms": {algorithm: [milliseconds per batch]},
        "batches": [...], "relative_error": {...}, "rejected":
        {algorithm: reason}, "measured_input_shape": the first batch's
        shape, "tolerance": ..., "margin": `MARGIN`}.

    Raises:
        ValueError: a dtype with no tolerance (see `tolerance`).
        RuntimeError: no algorithm computes the convolution.
    """
    limit = tolerance(dtype)
    batches = (UNKNOWN_BATCHES if input_shape[0] is None
               else (input_shape[0],))
    rng = np.random.default_rng(0)
    fan_in = math.prod(kernel_shape[:3])
    w = tf.cast(rng.standard_normal(kernel_shape, dtype=np.float32)
                / math.sqrt(fan_in), dtype)
    epilogue = epilogue or (lambda y: y)
    ms, errors, rejected = {}, {}, {}
    for b, batch in enumerate(batches):
        shape = (batch, *input_shape[1:])
        x = tf.cast(rng.standard_normal(shape, dtype=np.float32), dtype)
        if b == 0:
            ref = reference_conv2d(tf.cast(x[:1], tf.float64).numpy(),
                                   tf.cast(w, tf.float64).numpy(), strides,
                                   padding, dilations)
            scale = max(float(np.abs(ref).max(initial=0)),
                        np.finfo(np.float64).tiny)
            candidates = valid_algorithms(kernel_shape[:2], strides,
                                          dilations)
        else:
            candidates = list(ms)
        for algorithm in candidates:
            conv = functools.partial(conv_algorithms.conv2d, x, w, algorithm,
                                     strides, padding, dilations)
            if b == 0:
                try:
                    y = tf.function(conv)()
                except (ValueError, tf.errors.InvalidArgumentError,
                        tf.errors.UnimplementedError) as err:
                    rejected[algorithm] = _why(err)
                    continue
                y = tf.cast(y[:1], tf.float64).numpy()
                if y.shape != ref.shape:  # TF's oneDNN Conv2D, empty batch
                    rejected[algorithm] = (f"output shape {y.shape[1:]}, "
                                           f"not {ref.shape[1:]}")
                    continue
                errors[algorithm] = float(np.abs(y - ref).max(initial=0)
                                          / scale)
                if not errors[algorithm] <= limit:
                    rejected[algorithm] = (
                        f"relative error {errors[algorithm]:.3g} > "
                        f"tolerance {limit:g}")
                    continue
            fn = tf.function(lambda conv=conv: epilogue(conv()))
            fn()  # traces
            best = min((t[b] for t in ms.values() if len(t) > b),
                       default=math.inf)
            ms.setdefault(algorithm, []).append(
                _timed(fn, repeats, HOPELESS * best))
        if not ms:
            raise RuntimeError(
                f"No convolution algorithm computes input "
                f"{tuple(input_shape)}, kernel {tuple(kernel_shape)} within "
                f"tolerance: {rejected}")
    return {"algorithm": _pick(ms), "ms": ms, "batches": list(batches),
            "relative_error": errors, "rejected": rejected,
            "measured_input_shape": [batches[0], *input_shape[1:]],
            "tolerance": limit, "margin": MARGIN}


def choose_algorithm(input_shape, kernel_shape, strides, padding, dilations,
                     dtype="float32", epilogue=None, epilogue_name="none"):
    """The algorithm to use for this convolution on this machine (see the
    module docstring), from the cache or measured now (then cached).

    Runs eagerly even when called while a `tf.function` traces.

    Args:
        input_shape: as in `measure`, and so are `kernel_shape`,
            `strides`, `padding`, `dilations`, `dtype` and `epilogue`.
        epilogue_name: names `epilogue` in the cache key (e.g.
            `"bias+relu"`): the same name must mean the same epilogue.

    Returns:
        A name from `conv_algorithms.ALGORITHMS`.

    Raises:
        ValueError: a dtype with no tolerance (see `tolerance`).
    """
    tolerance(dtype)  # refuses an integer dtype before reading the cache
    key = cache_key(input_shape, kernel_shape, strides, padding, dilations,
                    dtype, epilogue_name)
    path = cache_path()
    record = read_cache(path).get(key)
    valid = valid_algorithms(kernel_shape[:2], strides, dilations)
    if isinstance(record, dict) and record.get("algorithm") in valid:
        return record["algorithm"]
    if record is not None:
        logging.warning("Ignoring the unusable cache entry %r in %s.", key,
                        path)
    with tf.init_scope():
        record = measure(input_shape, kernel_shape, strides, padding,
                         dilations, dtype, epilogue=epilogue)
    _store(key, record)
    logging.info("Convolution %s: %s chosen (ms at batches %s: %s; "
                 "rejected: %s); cached in %s.", key.split(" |")[0],
                 record["algorithm"], record["batches"],
                 {a: [round(t, 3) for t in ts]
                  for a, ts in record["ms"].items()},
                 record["rejected"] or "none", path)
    return record["algorithm"]
