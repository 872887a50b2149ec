"""fft_conv2d and its FFT gradients against float64 numpy and tf.nn.conv2d.

Operands are uniform in [-1, 1). An FFT result's rounding error is spread
over the whole transform rather than tied to one output's sum, so the
tolerance is relative to the size of the values: max |error| <= 4e-7 *
max |float64 result| * log2(Fh * Fw), for the output and both gradients,
about ten times the largest error measured on these cases (3.4e-8 *
max |result| * log2(Fh * Fw)). The gradients are also compared with
tf.nn.conv2d's.
"""

import re

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import fft_conv
from tests import numpy_reference as ref

CASES = [
    # batch, (in_h, in_w), in_c, out_c, (kh, kw), strides, padding
    (1, (7, 7), 1, 1, (3, 3), (1, 1), "SAME"),
    (2, (8, 6), 3, 5, (3, 3), (1, 1), "VALID"),
    (3, (9, 10), 4, 6, (3, 3), (2, 2), "SAME"),
    (2, (10, 9), 5, 7, (3, 3), (2, 2), "VALID"),
    (1, (12, 11), 16, 8, (5, 5), (1, 1), "SAME"),
    (4, (9, 8), 6, 3, (5, 5), (2, 1), "VALID"),
    (2, (8, 8), 64, 32, (1, 1), (1, 1), "SAME"),
    (5, (7, 6), 9, 17, (1, 1), (2, 2), "VALID"),
    (3, (9, 7), 7, 5, (1, 3), (1, 1), "SAME"),
    (2, (8, 9), 5, 64, (3, 1), (1, 2), "VALID"),
    (8, (6, 5), 2, 3, (3, 3), (1, 1), "SAME"),
    (2, (15, 14), 8, 8, (9, 9), (1, 1), "SAME"),
    (1, (16, 13), 4, 6, (11, 11), (1, 1), "VALID"),
    (2, (13, 12), 3, 5, (7, 9), (3, 2), "SAME"),
    (1, (4, 4), 3, 2, (5, 5), (1, 1), "SAME"),  # kernel > image
]


def operands(seed, batch, hw, in_c, out_c, kernel, strides, padding):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, *hw, in_c)).astype(np.float32)
    w = rng.uniform(-1, 1, (*kernel, in_c, out_c)).astype(np.float32)
    out = [ref.conv_output_size_and_pad(hw[i], kernel[i], strides[i], 1,
                                        padding)[0] for i in range(2)]
    dy = rng.uniform(-1, 1, (batch, *out, out_c)).astype(np.float32)
    return x, w, dy


def op_and_grads(x, w, dy, conv):
    x, w = tf.constant(x), tf.constant(w)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        y = conv(x, w)
    dx, dw = tape.gradient(y, [x, w], output_gradients=tf.constant(dy))
    return y.numpy(), dx.numpy(), dw.numpy()


def assert_close(got, want, fft_sizes):
    tol = 4e-7 * np.abs(want).max() * np.log2(np.prod(fft_sizes))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def fft_sizes(x, w, strides, padding):
    """The FFT size fft_conv2d uses per axis (TF's padded input size,
    rounded up to an 11-smooth number)."""
    sizes = []
    for i in range(2):
        size, taps, stride = x.shape[1 + i], w.shape[i], strides[i]
        out, _ = ref.conv_output_size_and_pad(size, taps, stride, 1, padding)
        padded = size if padding == "VALID" else max(
            size, (out - 1) * stride + taps)
        sizes.append(fft_conv.fast_fft_size(padded))
    return sizes


def test_fast_fft_size():
    assert [fft_conv.fast_fft_size(n)
            for n in (0, 1, 7, 13, 58, 62, 64, 66, 67)] \
        == [1, 1, 7, 14, 60, 63, 64, 66, 70]


@pytest.mark.parametrize("x_shape,w_shape,padding,y_shape", [
    ((0, 13, 6, 2), (2, 3, 2, 4), "VALID", (0, 12, 4, 4)),  # FFT 14 > 13
    ((2, 5, 6, 3), (3, 3, 3, 0), "SAME", (2, 5, 6, 0)),
    ((2, 0, 3, 2), (3, 3, 2, 4), "SAME", (2, 0, 3, 4)),
    ((2, 5, 4, 0), (3, 3, 0, 4), "VALID", (2, 3, 2, 4)),  # sums of nothing
])
def test_empty_tensors_forward_and_gradients(x_shape, w_shape, padding,
                                             y_shape):
    # rfft2d zero-pads only non-empty tensors up to fft_length: the op pads
    # them itself, so empty ones work too, forward and backward.
    x, w = tf.ones(x_shape), tf.ones(w_shape)
    for conv in (fft_conv.fft_conv2d, tf.function(fft_conv.fft_conv2d)):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = conv(x, w, padding=padding)
        dx, dw = tape.gradient(y, [x, w], output_gradients=tf.ones_like(y))
        np.testing.assert_array_equal(y.numpy(), np.zeros(y_shape))
        np.testing.assert_array_equal(dx.numpy(), np.zeros(x_shape))
        np.testing.assert_array_equal(dw.numpy(), np.zeros(w_shape))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_and_gradients_match_float64_and_tf(case):
    batch, hw, in_c, out_c, kernel, strides, padding = case
    x, w, dy = operands(len(str(case)), *case)
    sizes = fft_sizes(x, w, strides, padding)
    want = ref.conv2d(x, w, strides, (1, 1), padding)
    want_dx, want_dw = ref.conv2d_gradients(x, w, dy, strides, (1, 1),
                                            padding)
    y, dx, dw = op_and_grads(x, w, dy, lambda a, b: fft_conv.fft_conv2d(
        a, b, strides, padding.lower()))
    assert_close(y, want, sizes)
    assert_close(dx, want_dx, sizes)
    assert_close(dw, want_dw, sizes)
    _, tf_dx, tf_dw = op_and_grads(x, w, dy, lambda a, b: tf.nn.conv2d(
        a, b, strides, padding))
    assert_close(dx, tf_dx, sizes)
    assert_close(dw, tf_dw, sizes)


def test_in_graph_with_unknown_batch_and_a_variable_filter():
    x, w, dy = operands(5, 3, (12, 10), 4, 6, (5, 3), (1, 2), "SAME")
    kernel = tf.Variable(w)

    @tf.function(input_signature=[tf.TensorSpec([None, 12, 10, 4])])
    def step(images):
        with tf.GradientTape() as tape:
            y = fft_conv.fft_conv2d(images, kernel, (1, 2))
            loss = tf.reduce_sum(y * dy)
        return y, tape.gradient(loss, kernel)

    assert step.get_concrete_function().structured_outputs[0].shape.as_list() \
        == [None, 12, 5, 6]
    y, dw = step(x)
    sizes = fft_sizes(x, w, (1, 2), "SAME")
    assert_close(y.numpy(), ref.conv2d(x, w, (1, 2)), sizes)
    assert_close(dw.numpy(), ref.conv2d_gradients(x, w, dy, (1, 2))[1], sizes)


def test_bad_arguments_raise_value_error():
    x, w = tf.ones([1, 5, 5, 4]), tf.ones([3, 3, 4, 2])
    bad = [
        (lambda: fft_conv.fft_conv2d(x[0], w), "rank 4"),
        (lambda: fft_conv.fft_conv2d(x, tf.ones([3, 3, 3, 2])),
         "the input has 4 channels but the filter expects 3"),
        (lambda: fft_conv.fft_conv2d(x, w, strides=0), "strides=(0, 0)"),
        (lambda: fft_conv.fft_conv2d(x, w, strides=(1, 2, 1)),
         "strides=(1, 2, 1)"),
        (lambda: fft_conv.fft_conv2d(x, w, padding="full"),
         "padding='FULL'"),
        (lambda: fft_conv.fft_conv2d(x, w, dilations=(2, 1)),
         "supports dilations=1 only (the kernel's transform is that of its "
         "contiguous taps); use im2col_conv2d or tf.nn.conv2d for dilated "
         "convolutions. Received: dilations=(2, 1)"),
        (lambda: fft_conv.fft_conv2d(x, tf.ones([6, 3, 4, 2]),
                                     padding="VALID"),
         "kernel is larger than the input"),
        (lambda: fft_conv.fft_conv2d(x, tf.ones([0, 3, 4, 2])),
         "non-empty kernel"),
        (lambda: fft_conv.fft_conv2d(tf.cast(x, tf.float64), w),
         "x.dtype=float64"),
        (lambda: tf.function(fft_conv.fft_conv2d).get_concrete_function(
            tf.TensorSpec([1, None, 5, 4]), w), "static input height"),
    ]
    for call, message in bad:
        with pytest.raises(ValueError, match=re.escape(message)):
            call()
