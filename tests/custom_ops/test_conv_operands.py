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
