"""The ways `FastConv2D` can compute a convolution, behind one call.

    native      tf.nn.conv2d, TensorFlow's own kernel (oneDNN / Eigen on the
                CPU, cuDNN on a GPU)
    im2col      `im2col_conv2d`: patches lowered to columns, one GEMM
    fft         `fft_conv2d`: pointwise products of 2-D real FFTs
    winograd    `winograd_conv2d(tile=2)`: F(2x2, 3x3), 16 multiplies per
                2x2 output tile instead of 36
    winograd4   `winograd_conv2d(tile=4)`: F(4x4, 3x3), 36 instead of 144,
                less accurate than F(2x2, 3x3)
    winograd6   `winograd_conv2d(tile=6)`: F(6x6, 3x3), 64 instead of 324,
                the least accurate of the three

(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015.)
The custom ops compute in float32: `conv2d` casts other float inputs to
float32 and the result back, so they follow a mixed-precision policy;
`native` computes in the inputs' own dtype.
"""

import tensorflow as tf

from keras_cnnpractice.custom_ops import fft_conv
from keras_cnnpractice.custom_ops import im2col
from keras_cnnpractice.custom_ops import winograd

ALGORITHMS = ("native", "im2col", "fft", "winograd", "winograd4",
              "winograd6")
# The output tile m of each Winograd algorithm, F(m x m, 3x3).
WINOGRAD_TILES = {"winograd": 2, "winograd4": 4, "winograd6": 6}


def _winograd(tile):
    return lambda x, w, strides, padding, dilations: winograd.winograd_conv2d(
        x, w, padding=padding, tile=tile, strides=strides,
        dilations=dilations)


_CUSTOM_OPS = {
    "im2col": lambda x, w, strides, padding, dilations: im2col.im2col_conv2d(
        x, w, strides=strides, padding=padding, dilations=dilations),
    "fft": lambda x, w, strides, padding, dilations: fft_conv.fft_conv2d(
        x, w, strides=strides, padding=padding, dilations=dilations),
    **{name: _winograd(tile) for name, tile in WINOGRAD_TILES.items()},
}


# Why a custom op cannot serve a dtype that is not floating point: float32
# rounds integer sums (FFT and Winograd results truncate to off-by-one).
_FLOAT_ONLY = "computes in float32 and serves floating-point dtypes only"


def unsupported_reason(algorithm, kernel_size, strides, dilations,
                       dtype="float32"):
    """Why `algorithm` cannot compute this convolution, or None if it can.

    Args:
        algorithm: one of `ALGORITHMS`.
        kernel_size, strides, dilations: (height, width) pairs.
        dtype: the compute dtype's name.
    """
    if algorithm not in ALGORITHMS:
        return f"is not one of {ALGORITHMS}"
    if algorithm != "native" and not tf.as_dtype(dtype).is_floating:
        return f"{_FLOAT_ONLY} ('native' computes {dtype})"
    if algorithm == "fft" and tuple(dilations) != (1, 1):
        return "has no dilation"
    if algorithm in WINOGRAD_TILES:
        if tuple(kernel_size) != (3, 3):
            return "computes 3x3 kernels only"
        if tuple(strides) != (1, 1):
            return "computes stride 1 only"
        if tuple(dilations) != (1, 1):
            return "has no dilation"
    return None


def conv2d(x, w, algorithm, strides=1, padding="SAME", dilations=1):
    """`tf.nn.conv2d(x, w, strides, padding, dilations=dilations)` computed
    by `algorithm`.

    Args:
        x: NHWC input.
        w: `[kh, kw, in_channels, out_channels]` kernel.
        algorithm: one of `ALGORITHMS`.
        strides, dilations: int or pair.
        padding: `"SAME"` or `"VALID"` (case-insensitive).

    Returns:
        What `tf.nn.conv2d` returns, in `x`'s dtype.

    Raises:
        ValueError: an unknown algorithm, or a custom op's algorithm for a
            dtype that is not floating point. The ops themselves refuse
            what else they do not support (strides, dilations, kernel
            sizes).
    """
    padding = str(padding).upper()
    if algorithm == "native":
        return tf.nn.conv2d(x, w, strides, padding, dilations=dilations)
    if algorithm not in _CUSTOM_OPS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}. Received: "
                         f"algorithm={algorithm!r}")
    x = tf.convert_to_tensor(x)
    dtype = x.dtype
    if not dtype.is_floating:
        raise ValueError(f"Algorithm {algorithm!r} {_FLOAT_ONLY}; 'native' "
                         f"computes {dtype.name}. Received: x.dtype="
                         f"{dtype.name}")
    if dtype != tf.float32:
        x, w = tf.cast(x, tf.float32), tf.cast(w, tf.float32)
    y = _CUSTOM_OPS[algorithm](x, w, strides, padding, dilations)
    return y if dtype == tf.float32 else tf.cast(y, dtype)
