"""Deterministic generated images whose class can be learned, for benchmarks
and smoke tests that must not depend on files or the network."""

import numpy as np

from keras_cnnpractice._validate import check_int


def _templates(shape, num_classes):
    """One float32 pattern per class in [-1, 1]: a sinusoidal grating whose
    orientation and frequency depend on the class, tinted per channel."""
    height, width, channels = shape
    rows = np.arange(height, dtype=np.float64)[:, None] / max(height, 1)
    cols = np.arange(width, dtype=np.float64)[None, :] / max(width, 1)
    out = np.empty((num_classes, height, width, channels), np.float32)
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    for k in range(num_classes):
        angle = np.pi * k / num_classes
        freq = 2.0 + 3.0 * ((k * golden) % 1.0)
        wave = np.sin(2 * np.pi * freq * (rows * np.cos(angle)
                                          + cols * np.sin(angle)))
        for c in range(channels):
            tint = np.cos(2 * np.pi * (k / num_classes + c / max(channels, 1)))
            out[k, :, :, c] = 0.7 * wave + 0.3 * tint
    return out


def synthetic(n, shape=(32, 32, 3), num_classes=10, seed=0, noise=0.35):
    """Generated uint8 images and labels; the same arguments give the same
    arrays on every machine.

    Each image is its class's pattern (a grating whose orientation and
    frequency depend on the class, with a per-class color tint), scaled by
    a random contrast in [0.6, 1.4], rolled by up to an eighth of the image
    in each direction, plus Gaussian noise of standard deviation `noise`
    (in units of the pattern's amplitude), mapped to 0..255. Classes are
    balanced (`n // num_classes` or one more each) and shuffled.

    Args:
        n: number of images (>= 0).
        shape: `(height, width, channels)` of each image.
        num_classes: number of classes (>= 1).
        seed: seed of the draws (labels, contrast, shifts, noise); the
            class patterns do not depend on it.
        noise: standard deviation of the noise (>= 0).

    Returns:
        `(images, labels)`: uint8 array `(n, *shape)` and int32 array `(n,)`.

    Raises:
        ValueError: a negative `n`, a bad `shape`, `num_classes < 1` or a
            negative `noise`.
    """
    check_int("n", n, 0)
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive integers (height, "
                         f"width, channels). Received: shape={shape!r}")
    check_int("num_classes", num_classes, 1)
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0. Received: noise={noise!r}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int32)
    templates = _templates(shape, num_classes)
    height, width, _ = shape
    images = np.empty((n, *shape), np.uint8)
    chunk = max(1, (1 << 24) // (height * width * shape[2] * 4))
    for start in range(0, n, chunk):
        y = labels[start:start + chunk]
        m = len(y)
        contrast = rng.uniform(0.6, 1.4, (m, 1, 1, 1)).astype(np.float32)
        dy = rng.integers(-(height // 8), height // 8 + 1, m)
        dx = rng.integers(-(width // 8), width // 8 + 1, m)
        x = templates[y] * contrast
        rows = (np.arange(height)[None, :] - dy[:, None]) % height
        cols = (np.arange(width)[None, :] - dx[:, None]) % width
        x = x[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
        images[start:start + m] = np.clip(
            np.round(127.5 + 127.5 * x / 1.5), 0, 255).astype(np.uint8)
    return images, labels
