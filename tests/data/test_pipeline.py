"""make_dataset and augmentation_policy."""

import numpy as np
import pytest

from keras_cnnpractice.data import augmentation_policy
from keras_cnnpractice.data import make_dataset


def _digits():
    rng = np.random.default_rng(0)
    images = np.zeros((10, 28, 28, 1), np.uint8)
    images[:, 8:20, 12:16] = 255  # a vertical bar, off the rotation center
    return images, rng.integers(0, 10, 10).astype(np.uint8)


def test_eval_pipeline_is_plain_batches_in_order():
    images, labels = _digits()
    batches = list(make_dataset(images, labels, 4, training=False))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(x, images.astype(np.float32))
    np.testing.assert_array_equal(y, labels)


def test_training_pipeline_shuffles_and_augments_keeping_pairs():
    images, labels = _digits()
    images[:, 0, 0, 0] = np.arange(10)  # tag each image in a corner pixel
    ds = make_dataset(images, labels, 10, training=True, seed=1,
                      augment=augmentation_policy("none"))
    x, y = next(iter(ds))
    tags = x.numpy()[:, 0, 0, 0].astype(int)
    assert sorted(tags) == list(range(10))
    np.testing.assert_array_equal(y.numpy(), labels[tags])

    augmented = make_dataset(images, labels, 10, training=True, seed=1,
                             augment=augmentation_policy("digits", seed=3))
    xa, _ = next(iter(augmented))
    assert xa.shape == (10, 28, 28, 1)
    assert not np.allclose(xa.numpy()[:, 1:, 1:], images[:, 1:, 1:])
    assert 0 <= xa.numpy().min() and xa.numpy().max() <= 255.001


def test_digits_policy_is_identity_at_inference_and_never_flips():
    images, _ = _digits()
    policy = augmentation_policy("digits", seed=0)
    x = images.astype(np.float32)
    np.testing.assert_array_equal(policy(x, training=False), x)
    assert [type(step).__name__ for step in policy.steps] == ["Affine"]
    assert not policy.steps[0].flip
    np.testing.assert_array_equal(augmentation_policy("none")(x), x)


def test_natural_policy_keeps_size_in_both_placements(tmp_path):
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (6, 32, 32, 3)).astype(np.float32)
    policy = augmentation_policy("natural", seed=1, input_shape=(32, 32, 3))
    np.testing.assert_array_equal(policy(images, training=False), images)
    ds = tf.data.Dataset.from_tensor_slices(images).batch(3).map(policy)
    for batch in ds:
        assert batch.shape == (3, 32, 32, 3) and batch.dtype == tf.float32
        assert not np.allclose(batch.numpy(), images[:3])
    # As the first layers of a model: active in fit, inactive in the export.
    from keras_cnnpractice.training import export_saved_model
    inputs = keras.Input((32, 32, 3))
    x = augmentation_policy("natural", seed=1, input_shape=(32, 32, 3))(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    model.fit(images, np.zeros((6, 2)), epochs=1, verbose=0)
    export_saved_model(model, tmp_path / "served")
    reloaded = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(reloaded.serve(images),
                               model.predict(images, verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="needs RGB images"):
        augmentation_policy("natural", input_shape=(28, 28, 1))


def test_natural_policy_keeps_colors():
    # A flat orange image: scale, flip, contrast and brightness keep its
    # channel spread; saturation jitter scales it by 0.8..1.2, PCA lighting
    # moves it a little. (Keras's saturation factor 0.2 alone would grey
    # it out: its 0.5 is the identity.)
    images = np.broadcast_to(np.float32([200, 120, 40]), (16, 32, 32, 3))
    policy = augmentation_policy("natural", seed=2, input_shape=(32, 32, 3))
    out = policy(np.ascontiguousarray(images)).numpy()
    spread = out.max(axis=-1) - out.min(axis=-1)
    assert np.all((spread > 0.6 * 160) & (spread < 1.4 * 160))


def test_unknown_policy():
    with pytest.raises(ValueError, match="valid names: digits, natural, none"):
        augmentation_policy("natural-ish")
