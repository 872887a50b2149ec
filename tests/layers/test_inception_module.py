"""InceptionModule: naive, reduced and factorized forms."""

import numpy as np
import pytest

from keras_cnnpractice.layers import InceptionModule
from tests.layers.helpers import assert_round_trips

TABLE_3A = (64, 96, 128, 16, 32, 32)


def _maxpool3x3_same(x):
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    windows = [padded[:, i:i + x.shape[1], j:j + x.shape[2]]
               for i in range(3) for j in range(3)]
    return np.max(windows, axis=0)


def test_reduced_module_3a_widths_and_weights():
    layer = InceptionModule(*TABLE_3A, use_bias=False)
    y = layer(np.zeros((1, 28, 28, 192), "float32"))
    assert y.shape == (1, 28, 28, 256)
    c = 192  # weights from the table: 1x1, reduces, 3x3, 5x5, projection
    expected = (c * 64 + c * 96 + 96 * 128 * 9 + c * 16 + 16 * 32 * 25 + c * 32)
    assert layer.count_params() == expected


def test_naive_module_passes_the_pooled_input_through():
    x = np.random.default_rng(0).normal(size=(2, 7, 7, 5)).astype("float32")
    layer = InceptionModule(4, None, 6, None, 3, None, naive=True)
    y = layer(x).numpy()
    assert y.shape == (2, 7, 7, 4 + 6 + 3 + 5)
    np.testing.assert_allclose(y[..., -5:], _maxpool3x3_same(x), atol=1e-6)


@pytest.mark.parametrize("factorization, n, kernels", [
    ("5x5", 7, [(1, 1), (1, 1), (3, 3), (1, 1), (3, 3), (3, 3), (1, 1)]),
    ("nxn", 3, [(1, 1), (1, 1), (1, 3), (3, 1), (1, 1), (1, 3), (3, 1),
                (1, 3), (3, 1), (1, 1)]),
])
def test_factorized_modules(factorization, n, kernels):
    layer = InceptionModule(*TABLE_3A, factorization=factorization, n=n)
    assert layer(np.zeros((1, 9, 9, 16), "float32")).shape == (1, 9, 9, 256)
    convs = [s for branch in layer.branches for s in branch
             if hasattr(s, "kernel_size") and not hasattr(s, "pool_size")]
    assert [tuple(c.kernel_size) for c in convs] == kernels


@pytest.mark.parametrize("kwargs, message", [
    (dict(naive=True), "naive module has no reductions"),
    (dict(factorization="3x3"), "factorization must be one of"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InceptionModule(*TABLE_3A, **kwargs)


def test_round_trip(tmp_path):
    assert_round_trips(InceptionModule(4, 3, 5, 2, 3, 2, factorization="nxn",
                                       n=3, batch_norm=True, name="mixed"),
                       (8, 8, 6), tmp_path)
