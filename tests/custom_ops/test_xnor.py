"""Bitpack / XnorMatmul / XnorConv2D CPU ops against numpy sign arithmetic.

The numpy references (tests/numpy_reference.py) are checked by hand first;
the compiled ops must then equal them exactly, on random shapes including
depths and channel counts that are not multiples of 32 or 64.
"""

import re

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import xnor
from tests import numpy_reference as ref


def test_pack_reference_by_hand():
    x = np.zeros((2, 33), np.float32)
    x[0, :6] = [-1, 2, np.nan, 0, -0.0, -3]  # bits 0, 2, 5 -> 1 + 4 + 32
    x[1, 32] = -1  # first bit of the second 32-bit word
    np.testing.assert_array_equal(ref.bitpack(x, 32), [[37, 0], [0, 1]])
    np.testing.assert_array_equal(ref.bitpack(x, 64), [[37], [2**32]])
    # depth - 2 * popcount(a ^ b) is the dot product of the signs.
    a, b = np.array([[1, -1, 1]]), np.array([[1, 1, -1]])
    mismatches = int(ref.bitpack(a, 32)[0, 0]
                     ^ ref.bitpack(b, 32)[0, 0]).bit_count()
    assert 3 - 2 * mismatches == (ref.signs(a) @ ref.signs(b).T)[0, 0] == -1


def test_conv_reference_by_hand():
    assert ref.conv_output_size_and_pad(5, 3, 2, 1, "SAME") == (3, 1)
    assert ref.conv_output_size_and_pad(7, 3, 1, 2, "SAME") == (7, 2)
    assert ref.conv_output_size_and_pad(7, 3, 2, 2, "VALID") == (2, 0)
    x = np.ones((1, 3, 3, 1))
    x[0, 1, 1, 0] = -1  # the centre pixel
    f = np.ones((1, 2, 2, 1))
    out, _, _ = ref.sign_conv2d(x, f, (1, 1), (1, 1), "VALID")
    np.testing.assert_array_equal(out[0, :, :, 0], [[2, 2], [2, 2]])
    # SAME, stride 2: out 2x2, pad_total 1 -> pad_top 0, one zero row and
    # column after the image. Windows: rows/cols {0,1} and {2, pad}.
    out, size, pads = ref.sign_conv2d(x, f, (2, 2), (1, 1), "SAME")
    assert size == (2, 2) and pads == (0, 0)
    np.testing.assert_array_equal(out[0, :, :, 0], [[2, 2], [2, 1]])
    # Dilation 2 with a 2x2 kernel reads the four corners: all +1.
    out, _, _ = ref.sign_conv2d(x, f, (1, 1), (2, 2), "VALID")
    np.testing.assert_array_equal(out[0, :, :, 0], [[4]])


@pytest.mark.parametrize("word_bits", [32, 64])
@pytest.mark.parametrize("depth", [1, 31, 33, 64, 100, 130, 3000])
def test_bitpack_matches_numpy(word_bits, depth):
    x = ref.values_with_zeros_and_nans(np.random.default_rng(depth), (2, 3, depth))
    got = xnor.bitpack(x, word_bits=word_bits).numpy()
    want = ref.bitpack(x.reshape(-1, depth), word_bits)
    assert got.dtype == np.dtype(f"int{word_bits}")
    np.testing.assert_array_equal(got.reshape(-1, got.shape[-1]).view(want.dtype),
                                  want)


def test_bitpack_half_bfloat16_and_other_axis():
    x = ref.values_with_zeros_and_nans(np.random.default_rng(1), (5, 70))
    for dtype in (tf.float16, tf.bfloat16, tf.float64):
        xd = tf.cast(x, dtype)
        want = ref.bitpack(tf.cast(xd, tf.float32).numpy(), 32)
        got = xnor.bitpack(xd).numpy().view(want.dtype)
        np.testing.assert_array_equal(got, want)
    got = xnor.bitpack(x, axis=0, word_bits=64).numpy()  # [70, 1]
    np.testing.assert_array_equal(got.view("<u8"), ref.bitpack(x.T, 64))


@pytest.mark.parametrize("word_bits", [32, 64])
@pytest.mark.parametrize("m,n,depth", [(1, 1, 1), (3, 5, 31), (13, 7, 33),
                                       (70, 65, 100), (37, 129, 130),
                                       (40, 31, 2085),
                                       # several column chunks, tiles of
                                       # 1 to 6 rows
                                       (1, 600, 512), (45, 516, 768),
                                       (5, 33, 64), (16, 140, 200)])
def test_xnor_matmul_equals_sign_arithmetic(word_bits, m, n, depth):
    rng = np.random.default_rng(m * n + depth)
    a, b = ref.values_with_zeros_and_nans(rng, (m, depth)), ref.values_with_zeros_and_nans(rng, (n, depth))
    pa = xnor.bitpack(a, word_bits=word_bits)
    pb = xnor.bitpack(b, word_bits=word_bits)
    want = ref.signs(a) @ ref.signs(b).T
    np.testing.assert_array_equal(xnor.xnor_matmul(pa, pb, depth).numpy(), want)
    np.testing.assert_array_equal(
        xnor.xnor_matmul_reference(pa, pb, depth).numpy(), want)


def test_pack_dense_kernel_matches_a_dense_layer():
    rng = np.random.default_rng(3)
    x, kernel = ref.values_with_zeros_and_nans(rng, (9, 45)), ref.values_with_zeros_and_nans(rng, (45, 20))
    got = xnor.xnor_matmul(xnor.bitpack(x), xnor.pack_dense_kernel(kernel), 45)
    np.testing.assert_array_equal(got.numpy(),
                                  ref.signs(x) @ ref.signs(kernel))


CONV_CASES = [
    # channels, word_bits, batch, (in_h, in_w), (kh, kw), strides,
    # dilations, padding, out_channels
    (1, 32, 2, (5, 6), (3, 3), (1, 1), (1, 1), "SAME", 3),
    (31, 32, 1, (6, 6), (1, 1), (2, 2), (1, 1), "VALID", 2),
    (33, 32, 2, (7, 5), (3, 2), (2, 2), (1, 1), "SAME", 5),
    (100, 64, 2, (9, 8), (3, 3), (1, 2), (2, 1), "VALID", 4),
    (130, 64, 2, (8, 9), (2, 3), (2, 1), (2, 2), "SAME", 70),
    (64, 64, 1, (4, 4), (5, 5), (1, 1), (1, 1), "SAME", 3),
    (100, 32, 2, (7, 7), (3, 3), (2, 2), (2, 2), "SAME", 33),
    (40, 64, 3, (13, 11), (3, 3), (1, 1), (1, 1), "SAME", 37),
    # Three column chunks of the product (128, 128, 44 channels; the last
    # panel of 32 holds 12), 49 pixels: blocks of 36 and 13 rows, so tiles
    # of 6 and of 1 row.
    (64, 64, 1, (7, 7), (3, 3), (1, 1), (1, 1), "SAME", 300),
    # 32-bit words: a 108-byte row, not a whole number of 64-bit words.
    (96, 32, 2, (5, 4), (3, 3), (1, 1), (1, 1), "SAME", 160),
    # 6 output pixels: as few rows as one tile, the filter read in place.
    (70, 64, 1, (2, 3), (3, 3), (1, 1), (1, 1), "SAME", 40),
    (70, 32, 1, (2, 2), (3, 3), (1, 1), (1, 1), "SAME", 3),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_xnor_conv2d_equals_sign_convolution(case):
    (channels, word_bits, batch, (in_h, in_w), (kh, kw), strides, dilations,
     padding, out_channels) = case
    rng = np.random.default_rng(channels * out_channels)
    x = ref.values_with_zeros_and_nans(rng, (batch, in_h, in_w, channels))
    f = ref.values_with_zeros_and_nans(rng, (out_channels, kh, kw, channels))
    want, _, _ = ref.sign_conv2d(x, f, strides, dilations, padding)
    px = xnor.bitpack(x, word_bits=word_bits)
    pf = xnor.bitpack(f, word_bits=word_bits)
    got = xnor.xnor_conv2d(px, pf, channels, strides, padding, dilations)
    np.testing.assert_array_equal(got.numpy(), want)
    got = xnor.xnor_conv2d_reference(px, pf, channels, strides, padding,
                                     dilations)
    np.testing.assert_array_equal(got.numpy(), want)


def test_pack_conv_kernel_and_graph_shape_inference():
    rng = np.random.default_rng(4)
    x, kernel = ref.values_with_zeros_and_nans(rng, (2, 9, 9, 70)), ref.values_with_zeros_and_nans(rng, (3, 3, 70, 6))
    px = xnor.bitpack(x, word_bits=64)
    pk = xnor.pack_conv_kernel(kernel, word_bits=64)
    conv = tf.function(lambda a, b: xnor.xnor_conv2d(a, b, 70, 2, "valid"))
    traced = conv.get_concrete_function(
        tf.TensorSpec([None, 9, 9, 2], tf.int64), pk)
    assert traced.output_shapes.as_list() == [None, 4, 4, 6]
    want = tf.nn.conv2d(ref.signs(x), ref.signs(kernel), 2, "VALID")
    np.testing.assert_array_equal(conv(px, pk).numpy(), want.numpy())


def test_ops_have_no_gradient():
    x = tf.constant(ref.values_with_zeros_and_nans(np.random.default_rng(5), (3, 40)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(xnor.xnor_matmul(xnor.bitpack(x), xnor.bitpack(x), 40))
    assert tape.gradient(y, x) is None


def test_bad_arguments_raise_invalid_argument():
    x = xnor.bitpack(tf.ones([1, 5, 5, 40]))  # 2 words of 32 bits
    f = xnor.bitpack(tf.ones([4, 3, 3, 40]))
    bad = [
        (lambda: xnor.xnor_conv2d(x, f, 70), "channels=70 packs into 3"),
        (lambda: xnor.xnor_conv2d(x[0], f, 40), "rank"),
        (lambda: xnor.xnor_conv2d(x, f, 40, data_format="NCHW"),
         "data_format='NCHW'"),
        (lambda: xnor.xnor_conv2d(x, f, 40, strides=0),
         "strides=[1, 0, 0, 1]"),
        (lambda: xnor.xnor_conv2d(x, f, 0), "channels >= 1"),
        (lambda: xnor.xnor_conv2d(x, xnor.bitpack(tf.ones([4, 7, 7, 40])),
                                  40, padding="VALID"),
         "larger than the input"),
        (lambda: xnor.xnor_conv2d(x, xnor.bitpack(tf.ones([4, 3, 3, 40]),
                                                  word_bits=64), 40),
         "int64"),
        (lambda: xnor.xnor_matmul(x[0, 0], x[0, 0], 100), "depth=100"),
        (lambda: xnor.xnor_matmul(x[0, 0], x[0, 0], 0), "depth >= 1"),
        (lambda: xnor.xnor_matmul(x, x, 40), "rank 2"),
        (lambda: xnor.bitpack(tf.constant(1.0)), "rank >= 1"),
    ]
    for call, message in bad:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=re.escape(message)):
            call()
    with pytest.raises(ValueError, match="word_bits must be 32 or 64"):
        xnor.bitpack(tf.ones([3]), word_bits=16)


@pytest.mark.parametrize("word_bits", [32, 64])
def test_bits_past_the_depth_are_ignored(word_bits):
    # Operands packed elsewhere may carry set bits past `depth` / `channels`
    # in their last word: the products count only the real ones.
    rng = np.random.default_rng(7)
    a = rng.choice([-1.0, 1.0], (5, 33)).astype("float32")
    b = rng.choice([-1.0, 1.0], (4, 33)).astype("float32")
    garbage = np.zeros(2, f"int{word_bits}") if word_bits == 32 else (
        np.zeros(1, "int64"))
    garbage[-1] = np.array(-1 << 33 % word_bits, f"int{word_bits}")
    pa = xnor.bitpack(a, word_bits=word_bits) | garbage
    pb = xnor.bitpack(b, word_bits=word_bits) | garbage
    np.testing.assert_array_equal(xnor.xnor_matmul(pa, pb, 33), a @ b.T)
    x = rng.choice([-1.0, 1.0], (2, 6, 7, 33)).astype("float32")
    f = rng.choice([-1.0, 1.0], (3, 3, 3, 33)).astype("float32")
    want, _, _ = ref.sign_conv2d(x, f, (1, 1), (1, 1), "SAME")
    px = xnor.bitpack(x, word_bits=word_bits) | garbage
    pf = xnor.bitpack(f, word_bits=word_bits) | garbage
    np.testing.assert_array_equal(xnor.xnor_conv2d(px, pf, 33), want)


def test_bitpack_refuses_an_axis_out_of_range():
    with pytest.raises(ValueError, match="axis=5"):
        xnor.bitpack(tf.ones([1, 2, 3, 4]), axis=5)
    with pytest.raises(ValueError, match="axis=-5"):
        xnor.bitpack(tf.ones([1, 2, 3, 4]), axis=-5)
