"""Feature extraction, the resumable on-disk cache, the linear classifier."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.transfer import FeatureExtractor
from keras_cnnpractice.transfer import cache_features
from keras_cnnpractice.transfer import load_cached_features
from keras_cnnpractice.transfer import train_linear_classifier


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(5, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs)


def _arrays(n=13):
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 1, size=(n, 6, 6, 1)).astype("float32"),
            rng.integers(0, 2, size=n).astype("int32"))


def _dataset(n=13, batch=4):
    return tf.data.Dataset.from_tensor_slices(_arrays(n)).batch(batch)


def _failing_after(dataset, batches):
    """`dataset`, but raising once it reaches batch number `batches`."""
    def check(i, element):
        with tf.control_dependencies([tf.debugging.assert_less(
                i, tf.constant(batches, tf.int64), message="interrupted")]):
            return tuple(tf.identity(t) for t in element)
    return dataset.enumerate().map(check)


def test_cached_features_equal_a_fresh_forward_pass(tmp_path):
    model = _model()
    images, labels = _arrays()
    features, cached_labels = cache_features(
        FeatureExtractor(model, ["conv", "fc"]), _dataset(), tmp_path)
    assert isinstance(features["fc"], np.memmap)
    # Independently: the conv maps from a model cut at that layer, the
    # dense features in numpy from the flattened maps (dropout is off).
    conv = keras.Model(model.input, model.get_layer("conv").output)(
        images).numpy()
    kernel, bias = (w.numpy() for w in model.get_layer("fc").weights)
    fc = np.maximum(conv.reshape(len(images), -1) @ kernel + bias, 0)
    np.testing.assert_allclose(features["conv"], conv.reshape(13, -1),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(features["fc"], fc, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cached_labels, labels)
    unflat = FeatureExtractor(model, "conv", flatten=False)(images[:2])
    assert unflat["conv"].shape == (2, 4, 4, 3)


def test_resume_after_an_interruption_writes_the_same_files(tmp_path):
    extractor = FeatureExtractor(_model(), ["conv", "fc"])
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    cache_features(extractor, _dataset(), whole)

    with pytest.raises(tf.errors.InvalidArgumentError, match="interrupted"):
        cache_features(extractor, _failing_after(_dataset(), 2), resumed)
    index = json.loads((resumed / "index.json").read_text())
    assert (index["complete"], index["batches"], index["count"]) == (
        False, 2, 8)
    with pytest.raises(ValueError, match="incomplete"):
        load_cached_features(resumed)
    # A kill in the middle of the next batch's write leaves extra bytes.
    with open(resumed / index["features"]["fc"]["file"], "ab") as f:
        f.write(b"\x01" * 7)

    calls = []
    forward = extractor._forward
    extractor._forward = lambda x: calls.append(len(x)) or forward(x)
    cache_features(extractor, _dataset(), resumed)
    assert calls == [4, 1]  # only the two batches that were missing
    names = sorted(p.name for p in whole.iterdir())
    assert names == sorted(p.name for p in resumed.iterdir())
    for name in names:
        assert (whole / name).read_bytes() == (resumed / name).read_bytes()

    calls.clear()
    cache_features(extractor, _dataset(), resumed)  # complete: reused
    assert calls == []


def test_a_cache_made_differently_is_rejected_or_rebuilt(tmp_path):
    model = _model()
    cache_features(FeatureExtractor(model, "fc"), _dataset(), tmp_path)
    with pytest.raises(ValueError, match="dataset size"):
        cache_features(FeatureExtractor(model, "fc"), _dataset(n=9), tmp_path)
    with pytest.raises(ValueError, match="first batch differs"):
        cache_features(FeatureExtractor(model, "fc"),
                       _dataset().shuffle(13, seed=1), tmp_path)
    with pytest.raises(ValueError, match="different layers. Pass"):
        cache_features(FeatureExtractor(model, "conv"), _dataset(), tmp_path)
    changed = model.get_layer("fc")
    changed.kernel.assign(changed.kernel + 1.0)
    extractor = FeatureExtractor(model, "fc")
    with pytest.raises(ValueError, match="different model weights. Pass"):
        cache_features(extractor, _dataset(), tmp_path)
    features, _ = cache_features(extractor, _dataset(), tmp_path,
                                 overwrite=True)
    np.testing.assert_allclose(features["fc"],
                               extractor(_arrays()[0])["fc"], rtol=1e-6)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No feature cache"):
        load_cached_features(tmp_path)
    cache_features(FeatureExtractor(_model(), "fc"), _dataset(), tmp_path)
    with open(tmp_path / "features-0.f32", "r+b") as f:
        f.truncate(12)
    with pytest.raises(ValueError, match="damaged"):
        load_cached_features(tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        load_cached_features(tmp_path)
    features, _ = cache_features(FeatureExtractor(_model(), "fc"),
                                 _dataset(), tmp_path, overwrite=True)
    assert features["fc"].shape == (13, 5)


def test_bad_extractor_and_cache_arguments(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="no layer 'nope'"):
        FeatureExtractor(model, ["fc", "nope"])
    with pytest.raises(ValueError, match="twice"):
        FeatureExtractor(model, ["fc", "fc"])
    with pytest.raises(ValueError, match="keras.Model"):
        FeatureExtractor("model", "fc")
    with pytest.raises(ValueError, match="layers of"):
        FeatureExtractor(model, keras.layers.Dense(2))
    extractor = FeatureExtractor(model, "fc")
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        cache_features(extractor, _arrays(), tmp_path)
    with pytest.raises(ValueError, match="infinite"):
        cache_features(extractor, _dataset().repeat(), tmp_path)
    with pytest.raises(ValueError, match="empty"):
        cache_features(extractor, _dataset().take(0), tmp_path)
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        cache_features(extractor, _dataset().map(lambda x, y: x), tmp_path)


def test_linear_classifier_separates_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(3, 8))
    labels = rng.integers(0, 3, size=300)
    features = (centres[labels] + rng.normal(size=(300, 8))).astype("float32")
    keras.utils.set_random_seed(0)
    classifier = train_linear_classifier(features[:200], labels[:200], 3,
                                         epochs=10)
    predicted = classifier.predict(features[200:], verbose=0).argmax(-1)
    assert np.mean(predicted == labels[200:]) > 0.95
    assert classifier.output_shape == (None, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 1}, "num_classes"),
    ({"labels": np.array([0, 1, 5, 0])}, "labels must be integers"),
    ({"labels": np.array([0, 1, 0])}, "same n"),
    ({"epochs": 0}, "epochs"),
    ({"features": {"fc": np.zeros((4, 3))}}, "one array"),
])
def test_linear_classifier_bad_arguments(kwargs, match):
    arguments = dict(features=np.zeros((4, 3), "float32"),
                     labels=np.array([0, 1, 1, 0]), num_classes=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_linear_classifier(**arguments)
