"""Fuzzes every op of the compiled library with random arguments.

Each case calls one op's generated wrapper (eager) with random tensors
(ranks 0-5, small or empty dimensions, allowed or wrong dtypes, NaN and
extreme values) and random attributes (negative, zero, huge or
overflowing ints; odd strings; NaN floats; lists of any length). An op may
refuse a case with any Python exception; it must never kill the process
(a signal: abort, segfault) or hang. The case is printed before it runs, so
the last line names the culprit when the process dies.

    python tests/custom_ops/fuzz_ops.py [--cases 2000] [--seed 0]

`tests/custom_ops/test_fuzz_ops.py` runs a short fuzz in a subprocess and
fails on a signal or a timeout.
"""

import argparse
import inspect
import sys
import tempfile
import typing

import numpy as np

INTS = [-(2 ** 62), -1, 0, 1, 2, 3, 4, 6, 2 ** 40, 2 ** 62]
FLOATS = [float("nan"), float("inf"), -1.0, 0.0, 0.5, 1.0, 255.0]
DIMS = [0, 1, 1, 2, 3, 5, 8]
WRONG_DTYPES = ["int8", "float64", "bool", "complex64"]


def _dtype_name(annotation_class):
    """The TensorFlow dtype name of a fuzzing annotation class (`Float32`,
    `UInt8`, `Half`, ...)."""
    name = getattr(annotation_class, "__name__", None)
    if name is None:  # a ForwardRef such as "_atypes.Int32"
        name = annotation_class.__forward_arg__.split(".")[-1]
    return name.lower()


def _tensor_param(annotation):
    """The allowed dtype names if `annotation` marks a tensor input."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    kind = typing.get_args(annotation)[1]
    if isinstance(kind, typing.TypeVar):
        return ([_dtype_name(c) for c in kind.__constraints__]
                or ["float32", "int32", "int64", "uint8"])
    return [_dtype_name(kind)]


def _random_tensor(rng, tf, allowed):
    name = (allowed[rng.integers(len(allowed))] if rng.random() < 0.9
            else WRONG_DTYPES[rng.integers(len(WRONG_DTYPES))])
    dtype = tf.as_dtype(name)
    shape = [DIMS[rng.integers(len(DIMS))] for _ in range(rng.integers(6))]
    if dtype.is_floating or dtype.is_complex:
        values = rng.normal(0, 100, shape)
        if values.size and rng.random() < 0.3:
            values.flat[rng.integers(values.size)] = FLOATS[
                rng.integers(2)]  # NaN or inf
    elif dtype.is_bool:
        values = rng.random(shape) < 0.5
    else:
        info = np.iinfo(dtype.as_numpy_dtype)
        values = rng.integers(info.min, info.max, shape, endpoint=True,
                              dtype=np.int64) if rng.random() < 0.5 else (
            rng.integers(-3, 10, shape))
    return tf.constant(np.asarray(values).astype(dtype.as_numpy_dtype))


def _random_attr(rng, annotation, strings):
    if annotation is bool:
        return bool(rng.integers(2))
    if annotation is int:
        return INTS[rng.integers(len(INTS))]
    if annotation is float:
        return FLOATS[rng.integers(len(FLOATS))]
    if annotation is str:
        return strings[rng.integers(len(strings))]
    kind = rng.integers(3)  # a list attribute, of any element type
    length = rng.integers(6)
    if kind == 0:
        return [INTS[rng.integers(len(INTS))] for _ in range(length)]
    if kind == 1:
        return [FLOATS[rng.integers(len(FLOATS))] for _ in range(length)]
    return [strings[rng.integers(len(strings))] for _ in range(length)]


def ops(lib):
    """`{name: wrapper}` of the library's generated op wrappers."""
    return {name: getattr(lib, name) for name in dir(lib)
            if name.startswith("keras_cnn_practice_")
            and not name.endswith("_eager_fallback")}


def fuzz(cases, seed):
    import tensorflow as tf

    from keras_cnnpractice.custom_ops import load_op_library

    wrappers = ops(load_op_library())
    rng = np.random.default_rng(seed)
    regular = tempfile.NamedTemporaryFile(prefix="fuzz-", suffix=".bin")
    regular.write(b"\0" * 64)
    regular.flush()
    strings = ["", "SAME", "VALID", "valid", "NHWC", "NCHW", "bilinear",
               "nearest", "reflect", "wrap", "constant", "stochastic",
               "x" * 300, "/nonexistent/shard.bin", regular.name]
    names = sorted(wrappers)
    refused = ran = 0
    for case in range(cases):
        name = names[rng.integers(len(names))]
        fn = wrappers[name]
        kwargs = {}
        for param in inspect.signature(fn).parameters.values():
            if param.name == "name":
                continue
            allowed = _tensor_param(param.annotation)
            if allowed is not None:
                kwargs[param.name] = _random_tensor(rng, tf, allowed)
            elif isinstance(param.annotation, typing.TypeVar):
                choices = ([_dtype_name(c) for c in
                            param.annotation.__constraints__]
                           or WRONG_DTYPES)
                kwargs[param.name] = tf.as_dtype(
                    choices[rng.integers(len(choices))])
            elif param.default is not inspect.Parameter.empty and (
                    rng.random() < 0.3):
                continue  # leave the default
            else:
                kwargs[param.name] = _random_attr(rng, param.annotation,
                                                  strings)
        summary = {k: (tuple(v.shape), v.dtype.name) if hasattr(v, "shape")
                   else v for k, v in kwargs.items()}
        print(f"case {case}: {name} {summary}", flush=True)
        try:
            fn(**kwargs)
            ran += 1
        except Exception:  # any refusal is clean; a signal is not
            refused += 1
    print(f"done: {cases} cases, {refused} refused, {ran} ran", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    fuzz(args.cases, args.seed)


if __name__ == "__main__":
    sys.exit(main())
