"""Convolution as im2col + matrix multiply: `im2col_conv2d`.

The compiled `KerasCnnPractice>Im2colConv2D` op lowers the input patches of
a block of output pixels into the rows of a column matrix (one row of
`kh * kw * in_channels` values per pixel) and multiplies the block with the
filter seen as a `[kh * kw * in_channels, out_channels]` matrix (the
project's packed GEMM, `cc/kernels/packed_gemm.h`), block after block, in
parallel on the CPU device's threads. The whole column matrix, `kh * kw`
times the size of the input, is never held: each worker thread's column
buffer is bounded by `block_bytes` (default 4 MiB). Chellapilla et al.,
"High Performance Convolutional Neural Networks for Document Processing",
2006; the lecture's "im2col" lowering.

At stride 1 with `in_channels` a multiple of 64 (the GEMM's depth block)
the forward pass writes no column rows at all ("shifted windows", an
implicit im2col): 64 consecutive values of a column row are 64 channels of
one input pixel, and the same 64 values of the next pixel's row lie one
pixel further on, so the GEMM reads its rows straight from the input
zero-padded once, computing the output over the padded width and dropping
the `kw - 1` extra pixels of each row.

Both gradients are compiled ops too: the input gradient multiplies blocks
of the output gradient with the transposed filter and adds the resulting
column rows back onto the input positions they were read from (col2im,
where overlapping patches sum); the filter gradient sums, over blocks, the
transposed column rows times the output gradient.
`im2col_conv2d_reference` composes the same lowering from TensorFlow ops
(`tf.image.extract_patches` + matmul), to test the op and as an explicit
fallback.
"""

import tensorflow as tf

from keras_cnnpractice.custom_ops import _loader
from keras_cnnpractice.custom_ops._conv_args import conv_attrs
from keras_cnnpractice.custom_ops._conv_args import float32_operand

OP_NAME = "KerasCnnPractice>Im2colConv2D"
_ATTRS = ("strides", "padding", "dilations", "data_format", "block_bytes")


def im2col_conv2d(x, w, strides=1, padding="SAME", dilations=1, name=None,
                  block_bytes=None):
    """`tf.nn.conv2d(x, w, strides, padding, dilations=dilations)` by im2col.

    Args:
        x: `[batch, height, width, in_channels]` float32 input (NHWC).
        w: `[kh, kw, in_channels, out_channels]` float32 filter.
        strides, dilations: int or pair of ints >= 1.
        padding: `"SAME"` or `"VALID"` (case-insensitive).
        name: optional op name.
        block_bytes: bound of each worker thread's column buffer in bytes;
            `None` for the default (4 MiB). A block holds at least one
            output pixel's patch, whatever the bound. (The shifted-window
            forward pass has no column buffer and ignores it.)

    Returns:
        `[batch, out_height, out_width, out_channels]` float32, what
        `tf.nn.conv2d` returns. Differentiable with respect to `x` and `w`
        (twice, too).

    Raises:
        ValueError: non-float32 operands, malformed strides or dilations.
        tf.errors.InvalidArgumentError: ranks other than 4, channels that do
            not match, strides or dilations < 1, a VALID kernel larger than
            the input, a padding other than SAME/VALID.
    """
    x = float32_operand(x, "x", "im2col_conv2d")
    w = float32_operand(w, "w", "im2col_conv2d")
    lib = _loader.load_op_library()
    return lib.keras_cnn_practice_im2col_conv2d(
        x, w, block_bytes=block_bytes or 0, name=name,
        **conv_attrs(strides, padding, dilations))


def _attrs(op):
    return {attr: op.get_attr(attr) for attr in _ATTRS}


@tf.RegisterGradient(OP_NAME)
def _im2col_conv2d_grad(op, dy):
    x, w = op.inputs
    lib = _loader.load_op_library()
    return (lib.keras_cnn_practice_im2col_conv2d_backprop_input(
                tf.shape(x), w, dy, **_attrs(op)),
            lib.keras_cnn_practice_im2col_conv2d_backprop_filter(
                x, tf.shape(w), dy, **_attrs(op)))


@tf.RegisterGradient(OP_NAME + "BackpropInput")
def _im2col_backprop_input_grad(op, grad):
    _, w, dy = op.inputs
    lib = _loader.load_op_library()
    return (None,
            lib.keras_cnn_practice_im2col_conv2d_backprop_filter(
                grad, tf.shape(w), dy, **_attrs(op)),
            lib.keras_cnn_practice_im2col_conv2d(grad, w, **_attrs(op)))


@tf.RegisterGradient(OP_NAME + "BackpropFilter")
def _im2col_backprop_filter_grad(op, grad):
    x, _, dy = op.inputs
    lib = _loader.load_op_library()
    return (lib.keras_cnn_practice_im2col_conv2d_backprop_input(
                tf.shape(x), grad, dy, **_attrs(op)),
            None,
            lib.keras_cnn_practice_im2col_conv2d(x, grad, **_attrs(op)))


def im2col_conv2d_reference(x, w, strides=1, padding="SAME", dilations=1):
    """`im2col_conv2d` from TensorFlow ops: the whole column matrix from
    `tf.image.extract_patches`, times the filter matrix. Holds all patches
    at once; differentiable through TensorFlow's own gradients."""
    w = tf.convert_to_tensor(w)
    attrs = conv_attrs(strides, padding, dilations)
    patches = tf.image.extract_patches(
        x, sizes=[1, w.shape[0], w.shape[1], 1], strides=attrs["strides"],
        rates=attrs["dilations"], padding=attrs["padding"])
    return tf.tensordot(patches, tf.reshape(w, [-1, tf.shape(w)[-1]]), 1)
