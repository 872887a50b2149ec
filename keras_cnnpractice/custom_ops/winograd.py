"""Winograd convolution: `winograd_conv2d` and `winograd_filter_transform`.

Winograd's minimal filtering F(m x m, 3x3) (Lavin & Gray, "Fast Algorithms
for Convolutional Neural Networks", CVPR 2016) computes each m x m output
tile of a stride-1 3x3 convolution from an (m + 2) x (m + 2) input tile d as

    Y = A^T [ sum over input channels of (G g G^T) * (B^T d B) ] A

so F(2x2, 3x3) needs 16 multiplications per tile and channel pair instead of
36, F(4x4, 3x3) 36 instead of 144 and F(6x6, 3x3) 64 instead of 324 (5.06x
fewer). Summed over the input channels, the
products become (m + 2)^2 independent matrix products
[tiles x in_channels] x [in_channels x out_channels]. The larger tile saves
more multiplications but is less accurate: the transforms of F(4x4, 3x3)
have entries up to 8 and 1/24, those of F(6x6, 3x3) up to 32 and 1/90, so
rounding errors grow with the tile (the bounds are under `winograd_conv2d`).

`winograd_conv2d` runs the compiled CPU op (and CUDA kernel where the library
was built with CUDA); `winograd_conv2d_reference` composes the same
algorithm from TensorFlow ops, for the tests and as an explicit fallback.
"""

import numpy as np
import tensorflow as tf

from keras_cnnpractice.custom_ops import _loader
from keras_cnnpractice.custom_ops._conv_args import float32_operand

OP_NAME = "KerasCnnPractice>WinogradConv2D"
TRANSFORM_OP_NAME = "KerasCnnPractice>WinogradFilterTransform"

# (B^T, G, A^T) of F(m x m, 3x3) for m = 2 (interpolation points 0, 1, -1,
# infinity), m = 4 (0, 1, -1, 2, -2, infinity) and m = 6 (0, 1, -1, 1/2,
# -1/2, 2, -2, infinity), Lavin & Gray 2016.
MATRICES = {
    2: (np.array([[1, 0, -1, 0],
                  [0, 1, 1, 0],
                  [0, -1, 1, 0],
                  [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0],
                  [1 / 2, 1 / 2, 1 / 2],
                  [1 / 2, -1 / 2, 1 / 2],
                  [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0],
                  [0, 1, -1, -1]], np.float64)),
    4: (np.array([[4, 0, -5, 0, 1, 0],
                  [0, -4, -4, 1, 1, 0],
                  [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0],
                  [0, 2, -1, -2, 1, 0],
                  [0, 4, 0, -5, 0, 1]], np.float64),
        np.array([[1 / 4, 0, 0],
                  [-1 / 6, -1 / 6, -1 / 6],
                  [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6],
                  [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0],
                  [0, 1, -1, 2, -2, 0],
                  [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]], np.float64)),
    6: (np.array([[1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0],
                  [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
                  [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
                  [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
                  [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
                  [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
                  [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
                  [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1]], np.float64),
        np.array([[1, 0, 0],
                  [-2 / 9, -2 / 9, -2 / 9],
                  [-2 / 9, 2 / 9, -2 / 9],
                  [1 / 90, 1 / 45, 2 / 45],
                  [1 / 90, -1 / 45, 2 / 45],
                  [32 / 45, 16 / 45, 8 / 45],
                  [32 / 45, -16 / 45, 8 / 45],
                  [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 1, 1, 0],
                  [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
                  [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
                  [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0],
                  [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
                  [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1]], np.float64)),
}


def winograd_filter_transform(w, tile=2, name=None):
    """The Winograd transform of a 3x3 filter, to cache across calls.

    Args:
        w: float32 filter `[3, 3, in_channels, out_channels]`.
        tile: output tile size m: 2, 4 or 6 for F(m x m, 3x3).
        name: optional op name.

    Returns:
        float32 `[m + 2, m + 2, in_channels, out_channels]`: `G g G^T` for
        each `g = w[:, :, c, k]`. Pass it as `winograd_conv2d(...,
        transformed_filter=...)` while `w` does not change.

    Raises:
        tf.errors.InvalidArgumentError: a tile other than 2, 4 or 6, a
            filter that is not `[3, 3, in, out]`, a dtype other than float32.
    """
    w = float32_operand(w, "w", "winograd_filter_transform",
                        tf.errors.InvalidArgumentError)
    lib = _loader.load_op_library()
    return lib.keras_cnn_practice_winograd_filter_transform(w, tile=tile,
                                                            name=name)


def winograd_conv2d(x, w, padding="SAME", tile=2, name=None, *, strides=1,
                    dilations=1, transformed_filter=None):
    """`tf.nn.conv2d(x, w, 1, padding)` by Winograd's minimal filtering.

    Stride 1, no dilation, NHWC, any height and width: the edge tiles are
    zero padded and cropped. Differentiable: the input gradient is itself a
    Winograd convolution of the output gradient with the filter rotated by
    180 degrees (in and out channels swapped): SAME padding for SAME, the
    gradient padded by 2 and VALID for VALID. The filter gradient is
    TensorFlow's `Conv2DBackpropFilter`.

    Args:
        x: float32 `[batch, height, width, in_channels]`.
        w: float32 `[3, 3, in_channels, out_channels]`.
        padding: `"SAME"` or `"VALID"` (case-insensitive).
        tile: output tile size m: 2, 4 or 6 for F(m x m, 3x3) (the larger,
            the fewer multiplications and the larger the rounding errors).
        name: optional op name.
        strides, dilations: 1 (or (1, 1)), accepted for `tf.nn.conv2d`'s
            signature; any other value is refused.
        transformed_filter: optional `winograd_filter_transform(w, tile)`
            computed earlier; the op then reads it instead of transforming
            `w` (layers at inference can transform a fixed kernel once). It
            must be the transform of `w`: the op cannot tell, and gradients
            flow to `w`, never to `transformed_filter`. Without it the op
            computes the transform inside its products, which costs little
            (and beats reading a large cached transform where the tiles are
            few, e.g. 14x14 images with 512 channels at batch 1).

    Returns:
        float32 `[batch, out_height, out_width, out_channels]`, the height
        and width unchanged for SAME, 2 smaller for VALID.

    Accuracy:
        For the output and the input gradient, max|result - exact| <=
        2e-6 (tile 2), 3e-5 (tile 4) or 5e-5 (tile 6) times max|exact|
        (the tolerances of tests/custom_ops/test_winograd.py, 3 to 5 times
        the largest errors measured there: 4e-7, 9e-6 and 1.1e-5). The
        transforms of F(4x4, 3x3) (entries up to 8 and 1/24) and F(6x6,
        3x3) (up to 32 and 1/90) amplify rounding errors, so a small value
        among large ones can miss an elementwise tolerance (TensorFlow's
        DeepConv2D test's 1e-5) while within this bound. The filter
        gradient is TensorFlow's own.

    Raises:
        tf.errors.InvalidArgumentError: strides or dilations other than 1,
            a tile other than 2, 4 or 6, a padding other than SAME or VALID,
            a filter that is not 3x3, ranks or channel counts that do not
            agree, a VALID input smaller than 3x3, a transformed filter of
            the wrong shape, dtypes other than float32.
    """
    # Checked here: the op has no strides or dilations, and a padding it
    # does not support would meet TensorFlow's Conv2DBackpropFilter (in
    # the gradient of a tf.function) before the kernel's check.
    for attr, value in (("strides", strides), ("dilations", dilations)):
        if np.ravel(value).tolist() not in ([1], [1, 1]):
            raise tf.errors.InvalidArgumentError(
                None, None,
                f"winograd_conv2d supports {attr}=1 only (F(m x m, 3x3) "
                "computes stride-1, undilated 3x3 convolutions); use "
                "im2col_conv2d or fft_conv2d for other convolutions. "
                f"Received: {attr}={value!r}")
    padding = str(padding).upper()
    if padding not in ("SAME", "VALID"):
        raise tf.errors.InvalidArgumentError(
            None, None, "winograd_conv2d supports padding='SAME' or 'VALID' "
            "(pad the input with tf.pad for other paddings). Received: "
            f"padding={padding!r}")
    x = float32_operand(x, "x", "winograd_conv2d",
                        tf.errors.InvalidArgumentError)
    w = float32_operand(w, "w", "winograd_conv2d",
                        tf.errors.InvalidArgumentError)
    lib = _loader.load_op_library()
    if transformed_filter is None:
        transformed_filter = tf.zeros([0], tf.float32)
    return lib.keras_cnn_practice_winograd_conv2d(
        x, w, transformed_filter, tile=tile, padding=padding, name=name)


def rotate_filter(w):
    """`w` rotated by 180 degrees with in and out channels swapped: the
    filter whose convolution is the input gradient of `w`'s."""
    return tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2])


@tf.RegisterGradient(OP_NAME)
def _winograd_conv2d_grad(op, dy):
    x, w = op.inputs[0], op.inputs[1]
    tile = op.get_attr("tile")
    padding = op.get_attr("padding").decode()
    if padding == "VALID":
        dy_in = tf.pad(dy, [[0, 0], [2, 2], [2, 2], [0, 0]])
    else:
        dy_in = dy
    dx = winograd_conv2d(dy_in, rotate_filter(w), padding=padding, tile=tile)
    # After the forward op, whose checks say what it supports (a filter
    # that is not 3x3 would otherwise fail here first, in a tf.function).
    with tf.control_dependencies([op.outputs[0]]):
        dw = tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(w), out_backprop=dy,
            strides=[1, 1, 1, 1], padding=padding)
    return [dx, dw, None]


def _matrices(tile):
    if tile not in MATRICES:
        raise ValueError("tile must be 2, 4 or 6 (F(m x m, 3x3)). "
                         f"Received: tile={tile!r}")
    return [tf.constant(m, tf.float32) for m in MATRICES[tile]]


@tf.RegisterGradient(TRANSFORM_OP_NAME)
def _winograd_filter_transform_grad(op, du):
    _, g, _ = _matrices(op.get_attr("tile"))
    return tf.einsum("ia,ijck,jb->abck", g, du, g)


def winograd_conv2d_reference(x, w, padding="SAME", tile=2):
    """`winograd_conv2d` composed from TensorFlow ops (einsum over tiles).

    The same algorithm and transform matrices as the compiled op, for the
    tests and as an explicit fallback where the op library is missing.

    Raises:
        ValueError: a tile other than 2, 4 or 6, a padding other than SAME
            or VALID, a filter that is not 3x3.
    """
    b_t, g, a_t = _matrices(tile)
    padding = str(padding).upper()
    if padding not in ("SAME", "VALID"):
        raise ValueError("padding must be 'SAME' or 'VALID'. Received: "
                         f"padding={padding!r}")
    x = tf.convert_to_tensor(x, tf.float32)
    w = tf.convert_to_tensor(w, tf.float32)
    if tuple(w.shape[:2]) != (3, 3):
        raise ValueError("winograd_conv2d_reference needs a 3x3 filter. "
                         f"Received filter shape: {w.shape}")
    alpha = tile + 2
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    pad = 1 if padding == "SAME" else 0
    out_h, out_w = height + 2 * pad - 2, width + 2 * pad - 2
    tiles_h, tiles_w = -(-out_h // tile), -(-out_w // tile)
    # Zero padding: `pad` before, and after up to the last tile's end.
    xp = tf.pad(x, [[0, 0], [pad, tiles_h * tile + 2 - pad - height],
                    [pad, tiles_w * tile + 2 - pad - width], [0, 0]])
    patches = tf.image.extract_patches(
        xp, sizes=[1, alpha, alpha, 1], strides=[1, tile, tile, 1],
        rates=[1, 1, 1, 1], padding="VALID")
    d = tf.reshape(patches, tf.concat(
        [tf.shape(patches)[:3], [alpha, alpha, -1]], 0))
    v = tf.einsum("ia,nhwabc,jb->nhwijc", b_t, d, b_t)
    u = tf.einsum("ia,abck,jb->ijck", g, w, g)
    m = tf.einsum("nhwijc,ijck->nhwijk", v, u)
    y = tf.einsum("pi,nhwijk,qj->nhpwqk", a_t, m, a_t)
    shape = tf.shape(y)
    y = tf.reshape(y, [shape[0], tiles_h * tile, tiles_w * tile, shape[5]])
    return y[:, :out_h, :out_w]
