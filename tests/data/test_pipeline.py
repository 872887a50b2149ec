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
    names = [layer.__class__.__name__ for layer in policy.layers]
    assert "RandomFlip" not in names
    np.testing.assert_array_equal(augmentation_policy("none")(x), x)


def test_unknown_policy():
    with pytest.raises(ValueError, match="valid names: digits, none"):
        augmentation_policy("natural-ish")
