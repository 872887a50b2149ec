"""The convolution ops treat numpy operands as they treat tensors: float32
runs, any other dtype is refused naming it (never cast behind the caller's
back); Python numbers become float32."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import fft_conv2d
from keras_cnnpractice.custom_ops import im2col_conv2d
from keras_cnnpractice.custom_ops import winograd_conv2d

OPS = [(winograd_conv2d, tf.errors.InvalidArgumentError),
       (im2col_conv2d, ValueError), (fft_conv2d, ValueError)]


@pytest.mark.parametrize("op, error", OPS)
@pytest.mark.parametrize("dtype", ["float16", "float64", "int32"])
def test_other_dtypes_are_refused_alike(op, error, dtype):
    x = np.ones((1, 5, 5, 2), dtype)
    w = np.ones((3, 3, 2, 2), dtype)
    for args in ((x, w), (tf.constant(x), tf.constant(w))):
        with pytest.raises(error, match=f"x.dtype={dtype}"):
            op(*args)


@pytest.mark.parametrize("op, error", OPS)
def test_float32_and_python_numbers_run(op, error):
    x = np.arange(50, dtype="float32").reshape(1, 5, 5, 2)
    w = np.ones((3, 3, 2, 1), "float32")
    want = tf.nn.conv2d(x, w, 1, "SAME").numpy()
    np.testing.assert_allclose(op(x, w), want, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(op(x.tolist(), w.tolist()), want, rtol=1e-4,
                               atol=1e-3)


def _bad_pixel(value):
    rng = np.random.default_rng(3)
    x = rng.random((2, 16, 16, 2)).astype("float32")
    x[0, 5, 6, 1] = value
    w = rng.random((3, 3, 2, 2)).astype("float32")
    return x, w, tf.nn.conv2d(x, w, 1, "SAME").numpy()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_inputs_spread_as_documented(value):
    # docs/convolutions.md, "Non-finite values".
    x, w, direct = _bad_pixel(value)
    touched = ~np.isfinite(direct)
    assert touched.sum() == 9 * 2  # a 3x3 neighbourhood, both filters
    # im2col: exactly where the direct convolution has them.
    got = im2col_conv2d(x, w).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(direct))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(direct))
    # FFT: every output of the image that holds it, no other image.
    got = fft_conv2d(x, w).numpy()
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
    # Winograd: the output tiles whose input tiles hold it (NaN or inf),
    # covering the direct convolution's and staying near the pixel.
    for tile in (2, 4):
        got = winograd_conv2d(x, w, tile=tile).numpy()
        bad = ~np.isfinite(got)
        assert np.all(bad[touched]) and np.isfinite(got[1]).all()
        rows, cols = np.nonzero(bad[0].any(-1))
        assert rows.min() >= 5 - tile - 1 and rows.max() <= 5 + tile + 1
        assert cols.min() >= 6 - tile - 1 and cols.max() <= 6 + tile + 1
