"""Im2colConv2D and its gradients against float64 numpy and tf.nn.conv2d.

Operands are uniform in [-1, 1), so each result is a float32 sum of
`terms` products of magnitude < 1: kh * kw * in_channels for the output,
kh * kw * out_channels for the input gradient, batch * out_h * out_w for the
filter gradient. Tolerance against the float64 direct convolution of
tests/numpy_reference.py: max |error| <= 4e-7 * terms, about ten times the
largest error measured on these cases (3.7e-8 * terms). Gradients are also
compared with tf.nn.conv2d's where its CPU kernels support the case (TF has
no CPU gradient for dilation > 1).
"""

import re

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import im2col
from tests import numpy_reference as ref

CASES = [
    # batch, (in_h, in_w), in_c, out_c, (kh, kw), strides, dilations, padding
    (1, (7, 7), 1, 1, (3, 3), (1, 1), (1, 1), "SAME"),
    (2, (8, 6), 3, 5, (3, 3), (1, 1), (1, 1), "VALID"),
    (3, (9, 10), 4, 6, (3, 3), (2, 2), (1, 1), "SAME"),
    (2, (10, 9), 5, 7, (3, 3), (2, 2), (1, 1), "VALID"),
    (1, (12, 11), 16, 8, (5, 5), (1, 1), (1, 1), "SAME"),
    (4, (9, 8), 6, 3, (5, 5), (2, 1), (1, 1), "VALID"),
    (2, (8, 8), 64, 32, (1, 1), (1, 1), (1, 1), "SAME"),
    (5, (7, 6), 9, 17, (1, 1), (2, 2), (1, 1), "VALID"),
    (3, (9, 7), 7, 5, (1, 3), (1, 1), (1, 1), "SAME"),
    (2, (8, 9), 5, 64, (3, 1), (1, 2), (1, 1), "VALID"),
    (8, (6, 5), 2, 3, (3, 3), (1, 1), (1, 1), "SAME"),
    (2, (11, 10), 8, 4, (3, 3), (1, 1), (2, 2), "SAME"),
    (1, (12, 13), 3, 6, (3, 2), (1, 1), (2, 1), "VALID"),
    (2, (10, 10), 4, 4, (3, 3), (2, 2), (2, 2), "SAME"),
    (1, (4, 4), 3, 2, (5, 5), (1, 1), (1, 1), "SAME"),  # kernel > image
    # Stride 1, in_channels a multiple of 64 (the GEMM's depth block) and
    # few output channels for the width (im2col.h, ShiftWindows): the
    # forward pass reads the GEMM's rows from the padded input in place
    # ("shifted windows") and drops the rows of the padding's width.
    (3, (9, 10), 64, 70, (3, 3), (1, 1), (1, 1), "SAME"),  # units span images
    (1, (30, 29), 64, 16, (3, 3), (1, 1), (1, 1), "SAME"),  # several chunks
    (2, (12, 11), 128, 16, (5, 5), (1, 1), (1, 1), "VALID"),  # input in place
    (2, (11, 10), 64, 8, (3, 3), (1, 1), (2, 2), "SAME"),  # dilation
    (2, (10, 9), 64, 12, (3, 1), (1, 1), (1, 1), "SAME"),  # nothing dropped
    (1, (8, 9), 64, 5, (1, 4), (1, 1), (1, 1), "SAME"),  # uneven padding
    (1, (3, 3), 64, 4, (5, 5), (1, 1), (1, 1), "SAME"),  # kernel > image
]


def tolerances(x, w, dy):
    """Max |error| of the output, the input and the filter gradient."""
    kh, kw, _, out_c = w.shape
    batch, out_h, out_w, _ = dy.shape
    return (4e-7 * kh * kw * x.shape[3], 4e-7 * kh * kw * out_c,
            4e-7 * batch * out_h * out_w)


def operands(seed, batch, hw, in_c, out_c, kernel, strides, dilations,
             padding):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, *hw, in_c)).astype(np.float32)
    w = rng.uniform(-1, 1, (*kernel, in_c, out_c)).astype(np.float32)
    out_h, _ = ref.conv_output_size_and_pad(hw[0], kernel[0], strides[0],
                                            dilations[0], padding)
    out_w, _ = ref.conv_output_size_and_pad(hw[1], kernel[1], strides[1],
                                            dilations[1], padding)
    dy = rng.uniform(-1, 1, (batch, out_h, out_w, out_c)).astype(np.float32)
    return x, w, dy


def op_and_grads(x, w, dy, conv):
    x, w = tf.constant(x), tf.constant(w)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        y = conv(x, w)
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [x, w])
    return y.numpy(), dx.numpy(), dw.numpy()


def test_numpy_gradient_reference_by_hand():
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    w, dy = np.ones((2, 2, 1, 1)), np.ones((1, 2, 2, 1))
    dx, dw = ref.conv2d_gradients(x, w, dy, padding="VALID")
    # Each pixel gets one count per 2x2 window covering it.
    np.testing.assert_array_equal(dx[0, :, :, 0],
                                  [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    # Tap (i, j) meets the 2x2 block of x starting at (i, j).
    np.testing.assert_array_equal(dw[:, :, 0, 0], [[8, 12], [20, 24]])
    # SAME, stride 2 on 3x3: pads (0, 1); output (0, 0) reads rows/cols 0-1.
    dy = np.zeros((1, 2, 2, 1))
    dy[0, 0, 0, 0] = 1
    dx, dw = ref.conv2d_gradients(x, w, dy, (2, 2), padding="SAME")
    np.testing.assert_array_equal(dx[0, :, :, 0],
                                  [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(dw[:, :, 0, 0], [[0, 1], [3, 4]])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_and_gradients_match_float64(case):
    batch, hw, in_c, out_c, kernel, strides, dilations, padding = case
    x, w, dy = operands(len(str(case)), *case)
    want = ref.conv2d(x, w, strides, dilations, padding)
    want_dx, want_dw = ref.conv2d_gradients(x, w, dy, strides, dilations, padding)
    tol_y, tol_dx, tol_dw = tolerances(x, w, dy)
    y, dx, dw = op_and_grads(x, w, dy, lambda a, b: im2col.im2col_conv2d(
        a, b, strides, padding.lower(), dilations))
    np.testing.assert_allclose(y, want, rtol=0, atol=tol_y)
    np.testing.assert_allclose(dx, want_dx, rtol=0, atol=tol_dx)
    np.testing.assert_allclose(dw, want_dw, rtol=0, atol=tol_dw)
    y, _, _ = op_and_grads(x, w, dy, lambda a, b: (
        im2col.im2col_conv2d_reference(a, b, strides, padding, dilations)))
    np.testing.assert_allclose(y, want, rtol=0, atol=tol_y)
    if dilations == (1, 1):
        _, tf_dx, tf_dw = op_and_grads(x, w, dy, lambda a, b: tf.nn.conv2d(
            a, b, strides, padding))
        np.testing.assert_allclose(dx, tf_dx, rtol=0, atol=tol_dx)
        np.testing.assert_allclose(dw, tf_dw, rtol=0, atol=tol_dw)


@pytest.mark.parametrize("case", [
    (2, (40, 36), 24, 20, (3, 3), (1, 1), (1, 1), "SAME"),
    (3, (21, 19), 16, 12, (5, 5), (2, 2), (1, 1), "SAME"),
    (2, (17, 18), 24, 10, (1, 1), (1, 1), (1, 1), "VALID"),
], ids=str)
def test_tiny_block_budget_splits_into_many_blocks(case):
    # block_bytes=1 leaves one output pixel per block in the forward pass
    # and the filter gradient, and the fewest output rows that keep
    # alternate input-gradient blocks apart: hundreds of blocks, the same
    # results.
    batch, hw, in_c, out_c, kernel, strides, dilations, padding = case
    x, w, dy = operands(7, *case)
    want = ref.conv2d(x, w, strides, dilations, padding)
    want_dx, want_dw = ref.conv2d_gradients(x, w, dy, strides, dilations, padding)
    tol_y, tol_dx, tol_dw = tolerances(x, w, dy)
    default = op_and_grads(x, w, dy, lambda a, b: im2col.im2col_conv2d(
        a, b, strides, padding))
    tiny = op_and_grads(x, w, dy, lambda a, b: im2col.im2col_conv2d(
        a, b, strides, padding, block_bytes=1))
    for got in (default, tiny):
        np.testing.assert_allclose(got[0], want, rtol=0, atol=tol_y)
        np.testing.assert_allclose(got[1], want_dx, rtol=0, atol=tol_dx)
        np.testing.assert_allclose(got[2], want_dw, rtol=0, atol=tol_dw)
    # Each output's dot product runs in the same order whatever the
    # blocking, so the forward pass is bit-identical (the gradients' sums
    # over blocks run in another order).
    np.testing.assert_array_equal(tiny[0], default[0])


def test_second_order_gradients_match_tf():
    x, w, dy = operands(3, 2, (9, 8), 3, 4, (3, 3), (2, 1), (1, 1), "SAME")
    x, w = tf.constant(x), tf.constant(w)

    def grad_norms(conv):
        with tf.GradientTape() as outer:
            outer.watch([x, w])
            with tf.GradientTape() as inner:
                inner.watch([x, w])
                loss = tf.reduce_sum(conv(x, w) * dy)
            dx, dw = inner.gradient(loss, [x, w])
            penalty = tf.reduce_sum(dx ** 2) + tf.reduce_sum(dw ** 2)
        return outer.gradient(penalty, [x, w])

    got = grad_norms(lambda a, b: im2col.im2col_conv2d(a, b, (2, 1)))
    want = grad_norms(lambda a, b: tf.nn.conv2d(a, b, (2, 1), "SAME"))
    for g, t in zip(got, want):
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-5, atol=1e-4)


def test_graph_shape_inference_and_empty_tensors():
    w = tf.ones([3, 3, 4, 5])
    conv = tf.function(lambda a: im2col.im2col_conv2d(a, w, 2, "VALID"))
    traced = conv.get_concrete_function(tf.TensorSpec([None, 9, 8, 4]))
    assert traced.output_shapes.as_list() == [None, 4, 3, 5]
    assert im2col.im2col_conv2d(tf.ones([0, 5, 5, 4]), w).shape == (0, 5, 5, 5)
    # No input channels: every output is an empty sum.
    y = im2col.im2col_conv2d(tf.ones([2, 5, 5, 0]), tf.ones([3, 3, 0, 2]))
    np.testing.assert_array_equal(y.numpy(), np.zeros([2, 5, 5, 2]))


def test_bad_arguments_raise_invalid_argument():
    x, w = tf.ones([1, 5, 5, 4]), tf.ones([3, 3, 4, 2])
    lib_grad = im2col._loader.load_op_library()
    bad = [
        (lambda: im2col.im2col_conv2d(x[0], w), "rank 4"),
        (lambda: im2col.im2col_conv2d(x, w[0]), "rank 4"),
        (lambda: im2col.im2col_conv2d(x, tf.ones([3, 3, 3, 2])),
         "the input has 4 channels but the filter expects 3"),
        (lambda: im2col.im2col_conv2d(x, w, strides=0),
         "strides=[1, 0, 0, 1]"),
        (lambda: im2col.im2col_conv2d(x, w, dilations=(1, -2)),
         "dilations=[1, 1, -2, 1]"),
        (lambda: im2col.im2col_conv2d(x, tf.ones([6, 3, 4, 2]),
                                      padding="VALID"),
         "(extent 6) is larger than the input (5)"),
        (lambda: im2col.im2col_conv2d(x, w, dilations=3, padding="valid"),
         "(extent 7) is larger than the input (5)"),
        (lambda: im2col.im2col_conv2d(x, w, padding="FULL"), "FULL"),
        (lambda: im2col.im2col_conv2d(x, tf.ones([0, 3, 4, 2])),
         "non-empty kernel"),
        (lambda: im2col.im2col_conv2d(x, w, block_bytes=-1),
         "block_bytes=-1"),
        (lambda: lib_grad.keras_cnn_practice_im2col_conv2d(
            x, w, strides=[1, 1, 1, 1], padding="SAME", data_format="NCHW"),
         "data_format='NCHW'"),
        (lambda: lib_grad.keras_cnn_practice_im2col_conv2d(
            x, w, strides=[2, 1, 1, 1], padding="SAME"),
         "strides=[2, 1, 1, 1]"),
        (lambda: lib_grad.keras_cnn_practice_im2col_conv2d_backprop_input(
            [1, 5, 5], w, tf.ones([1, 5, 5, 2]), strides=[1, 1, 1, 1],
            padding="SAME"),
         "input_sizes must be a vector of 4 sizes. Received shape: [3]"),
        (lambda: lib_grad.keras_cnn_practice_im2col_conv2d_backprop_input(
            [1, 5, 5, 4], w, tf.ones([1, 4, 5, 2]), strides=[1, 1, 1, 1],
            padding="SAME"),
         "out_backprop must have the output shape [1,5,5,2]. Received: "
         "out_backprop shape [1,4,5,2]"),
        (lambda: lib_grad.keras_cnn_practice_im2col_conv2d_backprop_filter(
            x, [3, 3, 4, -2], tf.ones([1, 5, 5, 2]), strides=[1, 1, 1, 1],
            padding="SAME"),
         "-2"),
    ]
    for call, message in bad:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=re.escape(message)):
            call()
    with pytest.raises(ValueError, match=re.escape("x.dtype=float16")):
        im2col.im2col_conv2d(tf.cast(x, tf.float16), w)
    with pytest.raises(ValueError, match=re.escape("strides=(1, 2, 3)")):
        im2col.im2col_conv2d(x, w, strides=(1, 2, 3))
