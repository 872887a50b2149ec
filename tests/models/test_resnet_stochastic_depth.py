"""ResNets with stochastic depth: the linear decay rule, same inference graph."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.layers import Bottleneck
from keras_cnnpractice.layers import StochasticDepth
from keras_cnnpractice.models import create_model


def _linear_decay(num_blocks, final):
    # Huang et al. 2016, eq. 4: p_l = 1 - l / L * (1 - p_L), l = 1..L.
    return 1 - np.arange(1, num_blocks + 1) / num_blocks * (1 - final)


def test_cifar_resnet_survival_probabilities_decay_linearly():
    model = create_model("resnet20_cifar", (8, 8, 3), 10, stochastic_depth=0.5)
    layers = [layer for layer in model.layers
              if isinstance(layer, StochasticDepth)]
    assert [layer.name for layer in layers] == [
        f"stage{s}_block{b}_stochastic_depth" for s in (1, 2, 3)
        for b in (1, 2, 3)]
    np.testing.assert_allclose([layer.survival_probability for layer in layers],
                               _linear_decay(9, 0.5), rtol=1e-12)


def test_bottleneck_resnet_survival_probabilities_decay_linearly():
    model = create_model("resnet50", (32, 32, 3), 10, stochastic_depth=0.8)
    blocks = [layer for layer in model.layers if isinstance(layer, Bottleneck)]
    assert len(blocks) == 16
    np.testing.assert_allclose([b.survival_probability for b in blocks],
                               _linear_decay(16, 0.8), rtol=1e-12)
    assert model.count_params() == create_model("resnet50", (32, 32, 3),
                                                10).count_params()


def test_same_parameters_and_inference_outputs_as_the_plain_net(tmp_path):
    plain = create_model("resnet20_cifar", (8, 8, 3), 10)
    assert not any(isinstance(layer, StochasticDepth) for layer in plain.layers)
    dropped = create_model("resnet20_cifar", (8, 8, 3), 10,
                           stochastic_depth=0.5)
    assert dropped.count_params() == plain.count_params()
    for layer in plain.layers:
        if layer.weights:
            dropped.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype("float32")
    expected = plain.predict(x, verbose=0)
    np.testing.assert_allclose(dropped.predict(x, verbose=0), expected,
                               rtol=1e-5, atol=1e-6)
    path = tmp_path / "resnet20_sd.keras"
    dropped.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected,
                               rtol=1e-5, atol=1e-6)
    # Training mode draws: two calls differ (BN in training mode uses the
    # batch statistics in both, so only the dropped blocks differ).
    assert not np.allclose(dropped(x, training=True), dropped(x, training=True))


def test_imagenet_basic_block_net_takes_stochastic_depth():
    model = create_model("resnet18", (32, 32, 3), 10, stochastic_depth=0.5)
    layers = [layer for layer in model.layers
              if isinstance(layer, StochasticDepth)]
    np.testing.assert_allclose([layer.survival_probability for layer in layers],
                               _linear_decay(8, 0.5), rtol=1e-12)


@pytest.mark.parametrize("value", [0, 1.5, -1, "0.5"])
def test_invalid_stochastic_depth(value):
    with pytest.raises(ValueError, match="survival_probability"):
        create_model("resnet20_cifar", (8, 8, 3), 10, stochastic_depth=value)
