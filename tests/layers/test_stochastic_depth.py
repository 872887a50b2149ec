"""StochasticDepth (and Bottleneck's survival_probability) against numpy."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.layers import Bottleneck
from keras_cnnpractice.layers import StochasticDepth
from tests.layers.helpers import assert_round_trips


def _pair(batch, seed=0):
    rng = np.random.default_rng(seed)
    shortcut = rng.normal(size=(batch, 3, 3, 2)).astype("float32")
    residual = rng.normal(size=(batch, 3, 3, 2)).astype("float32")
    return shortcut, residual


def test_inference_is_the_plain_sum():
    shortcut, residual = _pair(4)
    y = StochasticDepth(0.3)([shortcut, residual], training=False)
    np.testing.assert_allclose(y, shortcut.astype("float64") + residual,
                               rtol=1e-6)


def test_each_sample_keeps_its_whole_branch_with_probability_p():
    p, batch = 0.7, 4000
    shortcut = np.zeros((batch, 2, 2, 3), "float32")
    residual = np.ones_like(shortcut)
    y = StochasticDepth(p, seed=1)([shortcut, residual], training=True).numpy()
    per_sample = y.reshape(batch, -1)
    # Per sample: the whole branch, scaled by 1/p, or none of it.
    assert set(np.unique(per_sample.min(axis=1))) <= {0.0, np.float32(1 / p)}
    np.testing.assert_array_equal(per_sample.min(axis=1), per_sample.max(axis=1))
    kept = per_sample[:, 0] > 0
    # 4,000 Bernoulli(0.7) draws: standard deviation 0.0072.
    assert abs(kept.mean() - p) < 0.036


def test_training_outputs_average_to_the_inference_output():
    p, batch = 0.5, 20000
    shortcut, residual = _pair(1, seed=2)
    shortcut = np.repeat(shortcut, batch, axis=0)
    residual = np.repeat(residual, batch, axis=0)
    layer = StochasticDepth(p, seed=3)
    mean = layer([shortcut, residual], training=True).numpy().mean(axis=0)
    expected = shortcut[0].astype("float64") + residual[0]
    np.testing.assert_allclose(layer([shortcut, residual], training=False)[0],
                               expected, rtol=1e-6)
    # shortcut + residual * b / p, b ~ Bernoulli(p): variance
    # residual^2 (1 - p) / p; the mean of n samples is within five standard
    # errors.
    std_error = np.sqrt(residual[0].astype("float64")**2 * (1 - p) / p / batch)
    assert np.all(np.abs(mean - expected) <= 5 * std_error + 1e-6)


def test_seed_reproduces_and_survival_one_is_the_plain_sum():
    shortcut, residual = _pair(64, seed=4)

    def outputs(seed):
        layer = StochasticDepth(0.5, seed=seed)
        return [layer([shortcut, residual], training=True).numpy()
                for _ in range(2)]

    first, second = outputs(11)
    np.testing.assert_array_equal(first, outputs(11)[0])
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, outputs(12)[0])
    always = StochasticDepth(1.0)([shortcut, residual], training=True)
    np.testing.assert_allclose(always, shortcut + residual, rtol=1e-6)


@pytest.mark.parametrize("p", [0, 0.0, -0.5, 1.01, float("nan"), True, "0.5"])
def test_invalid_survival_probability(p):
    with pytest.raises(ValueError, match="survival_probability must be"):
        StochasticDepth(p)


def test_invalid_seed_and_inputs():
    with pytest.raises(ValueError, match="seed='1'"):
        StochasticDepth(0.5, seed="1")
    layer = StochasticDepth(0.5)
    with pytest.raises(ValueError, match="same shape"):
        layer([np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32")])
    with pytest.raises(ValueError, match=r"called on \[shortcut, residual\]"):
        StochasticDepth(0.5).build((None, 3))


def test_round_trips(tmp_path):
    layer = StochasticDepth(0.8, seed=2, name="sd")
    clone = StochasticDepth.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.survival_probability == 0.8 and clone.seed == 2
    a, b = keras.Input((3, 3, 2)), keras.Input((3, 3, 2))
    model = keras.Model([a, b], layer([a, b]))
    model.save(tmp_path / "sd.keras")
    loaded = keras.models.load_model(tmp_path / "sd.keras")
    assert isinstance(loaded.get_layer("sd"), StochasticDepth)
    shortcut, residual = _pair(2, seed=5)
    np.testing.assert_allclose(loaded([shortcut, residual], training=False),
                               shortcut + residual, rtol=1e-6)


def test_bottleneck_with_survival_probability():
    x = np.random.default_rng(6).normal(size=(64, 4, 4, 8)).astype("float32")
    plain = Bottleneck(8, reduction=4, residual=True)
    dropped = Bottleneck(8, reduction=4, residual=True,
                         survival_probability=0.5)
    plain(x)
    dropped(x)
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(dropped(x, training=False), plain(x),
                               rtol=1e-5, atol=1e-6)
    # Training: each sample is relu(x) (branch dropped) or
    # relu(x + branch / 0.5) (kept); both occur in 64 samples.
    branch = x
    for sub in dropped.main:
        branch = sub(branch)
    branch = branch.numpy()
    y = dropped(x, training=True).numpy()
    skipped = np.all(np.isclose(y, np.maximum(x, 0), atol=1e-6), axis=(1, 2, 3))
    assert 0 < skipped.sum() < 64
    np.testing.assert_allclose(y[~skipped],
                               np.maximum(x + 2 * branch, 0)[~skipped],
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs residual=True"):
        Bottleneck(8, survival_probability=0.5)
    with pytest.raises(ValueError, match="survival_probability=0"):
        Bottleneck(8, residual=True, survival_probability=0)


def test_bottleneck_round_trip(tmp_path):
    assert_round_trips(Bottleneck(8, reduction=4, residual=True, strides=2,
                                  batch_norm=True, survival_probability=0.7,
                                  name="block"), (6, 6, 4), tmp_path)
