"""synthetic: deterministic, balanced, learnable."""

import numpy as np
import pytest

from keras_cnnpractice.data import synthetic


def test_same_seed_same_arrays_other_seed_other_arrays():
    x1, y1 = synthetic(50, (8, 12, 3), num_classes=5, seed=3)
    x2, y2 = synthetic(50, (8, 12, 3), num_classes=5, seed=3)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = synthetic(50, (8, 12, 3), num_classes=5, seed=4)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (50, 8, 12, 3) and x1.dtype == np.uint8
    assert y1.dtype == np.int32
    assert np.bincount(y1, minlength=5).tolist() == [10] * 5
    assert x1.min() < 60 and x1.max() > 195  # uses the range


def test_classes_are_learnable_by_nearest_class_mean():
    # Images are shifted at random, so compare shift-invariant features: the
    # magnitude of each channel's 2-D Fourier transform.
    x, y = synthetic(400, (16, 16, 3), num_classes=10, seed=0)
    x = np.abs(np.fft.fft2(x.astype(np.float64), axes=(1, 2)))
    x = x.reshape(len(x), -1)
    means = np.stack([x[:200][y[:200] == k].mean(0) for k in range(10)])
    distances = ((x[200:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = (distances.argmin(1) == y[200:]).mean()
    assert accuracy > 0.9, accuracy


@pytest.mark.parametrize("kwargs, match", [
    ({"n": -1}, "n=-1"),
    ({"n": 2, "shape": (8, 8)}, "shape="),
    ({"n": 2, "shape": (8, 0, 3)}, "shape="),
    ({"n": 2, "num_classes": 0}, "num_classes=0"),
    ({"n": 2, "noise": -1.0}, "noise=-1.0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic(**kwargs)


def test_zero_images():
    x, y = synthetic(0, (4, 4, 1))
    assert x.shape == (0, 4, 4, 1) and y.shape == (0,)
