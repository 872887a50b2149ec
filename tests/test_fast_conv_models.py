"""with_fast_conv2d: every Conv2D becomes a FastConv2D computing the same
function (checked against the original Keras model, i.e. TensorFlow's own
convolutions), the rest is copied, the original is untouched."""

import keras
import numpy as np
import pytest

from keras_cnnpractice import fast_conv_models
from keras_cnnpractice.fast_conv_models import with_fast_conv2d
from keras_cnnpractice.layers import FastConv2D
from keras_cnnpractice.layers import QuantConv2D


@pytest.fixture(autouse=True)
def conv_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KCP_CONV_CACHE", str(tmp_path / "cache.json"))


def _model():
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 5, strides=2, padding="valid")(x)
    x = keras.layers.BatchNormalization()(x)
    skip = keras.layers.Conv2D(8, 1, use_bias=False)(x)
    x = keras.layers.Add()([x, skip])
    x = QuantConv2D(4, 3, padding="same")(x)  # a subclass: left alone
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


@pytest.mark.parametrize("algorithm", ["auto", "im2col", "fft"])
def test_same_outputs_and_weights_original_untouched(algorithm):
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    fast = with_fast_conv2d(model, algorithm=algorithm)
    kinds = [type(layer).__name__ for layer in fast.layers]
    assert kinds.count("FastConv2D") == 3
    assert "QuantConv2D" in kinds and "Conv2D" not in kinds
    assert all(layer.algorithm == algorithm and layer.portable
               for layer in fast.layers if isinstance(layer, FastConv2D))
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 3))
    want = np.asarray(model(x), np.float64)
    got = np.asarray(fast(x), np.float64)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    for old, new in zip(model.get_weights(), fast.get_weights()):
        np.testing.assert_array_equal(old, new)
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)
    assert not any(isinstance(layer, FastConv2D) for layer in model.layers)


def test_refuses_a_model_without_conv2d():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"with_fast_conv2d found no "
                       r"channels_last, ungrouped Conv2D layer to convert "
                       r"in model 'sequential"):
        with_fast_conv2d(model)


def test_settle_keeps_only_what_makes_the_whole_model_faster(monkeypatch):
    model = with_fast_conv2d(_model())
    fast = [layer for layer in model.layers if isinstance(layer, FastConv2D)]
    choices = dict(zip((layer.name for layer in fast),
                       ["winograd4", "im2col", "im2col"]))
    monkeypatch.setattr(FastConv2D, "_choose", lambda self, shape: setattr(
        self, "chosen_algorithm", choices[self.name]) or choices[self.name])
    # A stand-in for timing the model: the sum of its layers' costs, taken
    # when a configuration is traced. im2col costs the model time (it won
    # alone, loses together), Winograd saves some.
    cost = {"native": 10.0, "winograd4": 7.0, "im2col": 12.0}
    monkeypatch.setattr(fast_conv_models, "_traced", lambda m, x: (
        lambda total=sum(cost[layer.algorithm] for layer in fast): total))
    monkeypatch.setattr(fast_conv_models, "_interleaved_ms",
                        lambda fns, repeats: {n: f() for n, f in fns.items()})

    def settled():
        for layer in fast:
            layer.set_algorithm("auto")
        report = fast_conv_models.settle(model, np.zeros((2, 12, 12, 3)))
        assert report["algorithms"] == {
            layer.name: layer.algorithm for layer in fast}
        return report

    report = settled()
    assert report["ms"] == {"native": 30.0, "chosen": 31.0,
                            "only im2col": 34.0, "without im2col": 27.0,
                            "only winograd4": 27.0,
                            "without winograd4": 34.0}
    assert report["kept"] == "without im2col"
    assert [layer.algorithm for layer in fast] == [
        "winograd4", "native", "native"]
    # Faster than native, but not by conv_autotune.MARGIN: native.
    cost["winograd4"] = 9.5
    assert settled()["kept"] == "native"
    assert {layer.algorithm for layer in fast} == {"native"}
    # Where nothing beats native, every layer is native.
    cost["winograd4"] = 11.0
    assert settled()["kept"] == "native"


def test_sample_settles_and_the_choices_are_saved(tmp_path):
    model = _model()
    x = np.random.default_rng(1).normal(size=(2, 12, 12, 3))
    fast = with_fast_conv2d(model, sample=x, repeats=1)
    algorithms = [layer.algorithm for layer in fast.layers
                  if isinstance(layer, FastConv2D)]
    assert "auto" not in algorithms and len(algorithms) == 3
    want = np.asarray(model(x), np.float64)
    assert np.abs(np.asarray(fast(x)) - want).max() <= (
        1e-4 * np.abs(want).max())
    fast.save(tmp_path / "fast.keras")
    loaded = keras.saving.load_model(tmp_path / "fast.keras")
    assert [layer.algorithm for layer in loaded.layers
            if isinstance(layer, FastConv2D)] == algorithms
