"""LocalResponseNormalization and PositionBias against numpy."""

import numpy as np
import pytest

from keras_cnnpractice.layers import LocalResponseNormalization
from keras_cnnpractice.layers import PositionBias
from tests.layers.helpers import assert_round_trips


def test_lrn_matches_the_alexnet_formula():
    x = np.random.default_rng(0).uniform(-3, 3, size=(2, 4, 4, 9))
    y = LocalResponseNormalization()(x.astype("float32")).numpy()
    want = np.empty_like(x)
    for c in range(9):  # b = a / (k + alpha * sum_{|d-c|<=2} a_d^2)^beta
        window = x[..., max(0, c - 2):c + 3]
        want[..., c] = x[..., c] / (2.0 + 1e-4 * (window**2).sum(-1)) ** 0.75
    np.testing.assert_allclose(y, want, rtol=1e-5)


def test_position_bias_adds_one_bias_per_position():
    layer = PositionBias()
    x = np.zeros((3, 5), "float32")
    layer(x)
    layer.bias.assign(np.arange(5, dtype="float32"))
    np.testing.assert_array_equal(layer(x + 1), np.tile(np.arange(5) + 1, (3, 1)))
    assert layer.count_params() == 5


def test_invalid_and_round_trips(tmp_path):
    with pytest.raises(ValueError, match="depth_radius=-1"):
        LocalResponseNormalization(depth_radius=-1)
    assert_round_trips(LocalResponseNormalization(3, 1.0, 1e-3, 0.5, name="lrn"),
                       (4, 4, 6), tmp_path)
    assert_round_trips(PositionBias(name="pb"), (7,), tmp_path)


def test_lrn_on_many_large_channels():
    # No cancellation: a small channel next to huge ones keeps its value.
    x = np.full((1, 1, 1, 256), 1e3, np.float32)
    x[..., 200] = 1e-3
    x[..., 198:203] = [0.0, 0.0, 1e-3, 0.0, 0.0]
    y = LocalResponseNormalization()(x).numpy()
    np.testing.assert_allclose(y[0, 0, 0, 200], 1e-3 / (2 + 1e-10) ** 0.75, rtol=1e-6)
