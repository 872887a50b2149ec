"""Every layer of this package honours Keras dtype policies."""

import numpy as np
import pytest

from keras_cnnpractice import layers as kcp

CASES = [
    (lambda **kw: kcp.StackedConv2D(4, 5, **kw), (8, 8, 3)),
    (lambda **kw: kcp.AsymmetricConv2D(4, 3, **kw), (8, 8, 3)),
    (lambda **kw: kcp.Bottleneck(8, 2, residual=True, batch_norm=True, **kw), (8, 8, 3)),
    (lambda **kw: kcp.InceptionModule(2, 2, 2, 2, 2, 2, factorization="nxn",
                                      n=3, batch_norm=True, **kw), (8, 8, 3)),
    (lambda **kw: kcp.LocalResponseNormalization(**kw), (4, 4, 6)),
    (lambda **kw: kcp.QuantConv2D(4, 3, input_quantizer="ste_sign",
                                  kernel_quantizer="ste_sign", **kw), (6, 6, 2)),
    (lambda **kw: kcp.BinaryDense(3, **kw), (5,)),
    (lambda **kw: kcp.PositionBias(**kw), (7,)),
]


@pytest.mark.parametrize("make, shape", CASES)
@pytest.mark.parametrize("policy, compute, variable", [
    ("mixed_bfloat16", "bfloat16", "float32"), ("float64", "float64", "float64")])
def test_compute_and_variable_dtypes(make, shape, policy, compute, variable):
    layer = make(dtype=policy)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    y = layer(x)
    assert y.dtype == compute
    assert all(w.dtype == variable for w in layer.weights)
    sublayers = [s for s in layer._flatten_layers(include_self=False)]
    assert all(s.compute_dtype == compute for s in sublayers)
