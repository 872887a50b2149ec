"""Bottleneck: the 3.25C^2 sandwich and the ResNet residual block."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.layers import Bottleneck
from tests.layers.helpers import assert_round_trips


def test_sandwich_has_3_25_c_squared_weights():
    c = 16
    layer = Bottleneck(c, reduction=2, use_bias=False)
    layer.build((None, 8, 8, c))
    assert layer.count_params() == 3.25 * c * c
    assert layer(np.zeros((1, 8, 8, c), "float32")).shape == (1, 8, 8, c)


def _zero_main_branch(layer):
    for sub in layer.main:
        if isinstance(sub, keras.layers.Conv2D) and sub.name.startswith("expand"):
            sub.kernel.assign(np.zeros(sub.kernel.shape))
            if sub.use_bias:
                sub.bias.assign(np.zeros(sub.bias.shape))


def test_identity_shortcut_adds_the_input():
    # With the main branch's last conv zeroed the block is relu(x + 0).
    layer = Bottleneck(8, reduction=4, residual=True)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 8)).astype("float32")
    layer(x)
    assert layer.shortcut == []
    _zero_main_branch(layer)
    np.testing.assert_allclose(layer(x), np.maximum(x, 0), atol=1e-6)


def test_projection_shortcut_when_shape_changes():
    layer = Bottleneck(12, reduction=4, residual=True, strides=2)
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 4)).astype("float32")
    assert layer(x).shape == (2, 3, 3, 12)
    _zero_main_branch(layer)
    (proj,) = layer.shortcut
    w, b = proj.kernel.numpy()[0, 0], proj.bias.numpy()
    expected = np.maximum(x[:, ::2, ::2, :] @ w + b, 0)  # 1x1 conv, stride 2
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)


def test_batch_norm_layers_and_training_flag():
    layer = Bottleneck(8, reduction=2, residual=True, batch_norm=True)
    x = np.random.default_rng(2).normal(size=(4, 5, 5, 3)).astype("float32")
    layer(x, training=True)
    kinds = [type(s).__name__ for s in layer.main]
    assert kinds.count("BatchNormalization") == 3
    assert len(layer.shortcut) == 2  # conv + BN projection (3 -> 8 channels)


@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=10, reduction=4), "reduction must divide filters"),
    (dict(filters=8, strides=0), "strides=0"),
    (dict(filters=8, reduction=0), "reduction=0")])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Bottleneck(**kwargs)


def test_a_rank_3_input_is_refused_by_name():
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        Bottleneck(8)(keras.Input((8, 8)))


def test_round_trip(tmp_path):
    assert_round_trips(Bottleneck(8, reduction=4, residual=True, strides=2,
                                  batch_norm=True, name="block"),
                       (6, 6, 4), tmp_path)
