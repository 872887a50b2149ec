"""KerasCnnPractice>AffineResample against independent references: the
sampling against `tf.raw_ops.ImageProjectiveTransformV3`, the color map and
clip against numpy in float64; bad arguments against InvalidArgument."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops.affine_resample import affine_resample

FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def random_images(shape, dtype="uint8", seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape).astype(dtype)


def rotations(batch, height, width, seed=0):
    """Output-to-source matrices: rotations with shear, zoom and shift
    about the image centre (general path), one per image."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batch):
        t = rng.uniform(-0.6, 0.6)
        s = rng.uniform(0.6, 1.5)
        a = np.array([[s * np.cos(t), -s * np.sin(t) + 0.2, 0.0],
                      [s * np.sin(t), s * np.cos(t), 0.0], [0, 0, 1]])
        centre = np.array([(width - 1) / 2, (height - 1) / 2])
        a[:2, 2] = centre - a[:2, :2] @ centre + rng.uniform(-4, 4, 2)
        out.append(a)
    return np.array(out, "float32")


def crops(batch, height, width, out_h, out_w, seed=0):
    """Scale-and-shift matrices with flips (the separable path)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batch):
        sx, sy = rng.uniform(0.3, 1.6, 2) * rng.choice([-1, 1], 2)
        tx = rng.uniform(-3, width + 3)
        ty = rng.uniform(-3, height + 3)
        out.append([[sx, 0, tx], [0, sy, ty], [0, 0, 1]])
    return np.array(out, "float32")


def stock(images, matrices, out_h, out_w, interpolation, fill_mode,
          fill_value):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32),
        transforms=matrices.reshape(-1, 9)[:, :8],
        output_shape=[out_h, out_w], fill_value=fill_value,
        interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper()).numpy()


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("make", [rotations, crops])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_sampling_matches_image_projective_transform_v3(
        fill_mode, interpolation, make, dtype):
    images = random_images((5, 13, 17, 3), dtype)
    out_h, out_w = 11, 19
    if make is crops:
        matrices = crops(5, 13, 17, out_h, out_w)
    else:
        matrices = rotations(5, 13, 17)
    ours = affine_resample(images, matrices, out_h, out_w, interpolation,
                           fill_mode, fill_value=7.0).numpy()
    theirs = stock(images, matrices, out_h, out_w, interpolation, fill_mode,
                   7.0)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    if interpolation == "nearest":  # ties may round either way
        assert np.mean(np.abs(ours - theirs) < 1e-3) > 0.98
    else:
        np.testing.assert_allclose(ours, theirs, atol=2e-3)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_rotation_that_stays_inside_the_image(interpolation):
    # Zoomed in 2x about the centre and rotated a little: every sample has
    # both neighbours inside, the path that skips the fill modes.
    images = random_images((3, 40, 50, 3))
    t = np.array([0.05, -0.1, 0.2])
    matrices = np.zeros((3, 3, 3), "float32")
    matrices[:, 0, 0], matrices[:, 0, 1] = 0.5 * np.cos(t), -0.5 * np.sin(t)
    matrices[:, 1, 0], matrices[:, 1, 1] = 0.5 * np.sin(t), 0.5 * np.cos(t)
    matrices[:, 0, 2], matrices[:, 1, 2], matrices[:, 2, 2] = 12.0, 10.0, 1.0
    ours = affine_resample(images, matrices, 40, 50, interpolation,
                           "constant", fill_value=-1.0).numpy()
    theirs = stock(images, matrices, 40, 50, interpolation, "constant",
                   -1.0)
    assert ours.min() >= 0  # nothing read outside
    if interpolation == "nearest":
        assert np.mean(np.abs(ours - theirs) < 1e-3) > 0.98
    else:
        np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_projective_matrices_and_other_channel_counts():
    images = random_images((2, 9, 10, 5), "float32")
    matrices = rotations(2, 9, 10, seed=3)
    matrices[:, 2, :2] = [[0.01, -0.02], [-0.015, 0.005]]  # perspective
    ours = affine_resample(images, matrices, 8, 12, "bilinear",
                           "reflect").numpy()
    theirs = stock(images, matrices, 8, 12, "bilinear", "reflect", 0.0)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)
    # One channel, separable matrices (crops), constant fill.
    gray = random_images((4, 9, 10, 1))
    matrices = crops(4, 9, 10, 8, 12, seed=2)
    ours = affine_resample(gray, matrices, 8, 12, "bilinear", "constant",
                           fill_value=50.0).numpy()
    theirs = stock(gray, matrices, 8, 12, "bilinear", "constant", 50.0)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_color_map_with_the_mean_and_clip_equals_numpy():
    images = random_images((4, 6, 7, 3))
    identity = np.tile(np.eye(3, dtype="float32"), (4, 1, 1))
    rng = np.random.default_rng(1)
    a = rng.normal(1.0, 0.3, (4, 3, 3)).astype("float32")
    c = rng.normal(0, 20, (4, 3)).astype("float32")
    w = rng.normal(0, 0.5, (4, 3, 3)).astype("float32")
    ours = affine_resample(images, identity, 6, 7, color=(a, c, w),
                           clip=(10.0, 240.0)).numpy()
    x = images.astype("float64")
    mean = x.mean(axis=(1, 2))
    want = (np.einsum("bij,bhwj->bhwi", a.astype("float64"), x)
            + (c + np.einsum("bij,bj->bi", w, mean))[:, None, None])
    np.testing.assert_allclose(ours, np.clip(want, 10, 240), atol=2e-3)
    # Without the mean term and without a clip, values leave the range.
    free = affine_resample(images, identity, 6, 7,
                           color=(a, c, np.zeros_like(w))).numpy()
    want = (np.einsum("bij,bhwj->bhwi", a.astype("float64"), x)
            + c[:, None, None])
    np.testing.assert_allclose(free, want, atol=2e-3)


def test_non_finite_and_huge_matrices_give_fill_not_a_crash():
    images = random_images((3, 8, 8, 3))
    matrices = np.array([np.full((3, 3), np.nan),
                         np.diag([1e30, 1e30, 1.0]),
                         [[0, 0, -np.inf], [0, 0, np.inf], [0, 0, 1]]],
                        "float32")
    for fill_mode in FILL_MODES:
        out = affine_resample(images, matrices, 5, 5, "bilinear", fill_mode,
                              fill_value=3.0).numpy()
        assert np.all(np.isfinite(out))
        assert out.min() >= 0 and out.max() <= 255
    out = affine_resample(images[1:], matrices[1:], 5, 5, "bilinear",
                          "constant", fill_value=3.0).numpy()
    # Pixel (0, 0) of the huge scale reads the image; the rest is outside.
    assert np.all(out[0, 1:] == 3.0) and np.all(out[0, :, 1:] == 3.0)
    assert np.all(out[1] == 3.0)


def test_empty_batch():
    out = affine_resample(np.zeros((0, 4, 4, 3), "uint8"),
                          np.zeros((0, 3, 3), "float32"), 2, 3)
    assert out.shape == (0, 2, 3, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"images": np.zeros((4, 4, 3), "uint8")}, "batch, height, width"),
    ({"matrices": np.zeros((2, 2, 3), "float32")}, "matrices must be"),
    ({"matrices": np.zeros((3, 3, 3), "float32")}, "batch=2"),
    ({"height": 0}, "height=0"),
    ({"width": -5}, "width=-5"),
    ({"interpolation": "bicubic"}, "bicubic"),
    ({"fill_mode": "mirror"}, "mirror"),
    ({"clip": (5.0, 1.0)}, "clip"),
    ({"images": np.zeros((2, 4, 4, 1), "uint8"),
      "color": (np.zeros((2, 3, 3)), np.zeros((2, 3)), np.zeros((2, 3, 3)))},
     "3 channels"),
    ({"color": (np.zeros((2, 3, 3)), np.zeros((2, 4)), np.zeros((2, 3, 3)))},
     "color_offset"),
    ({"images": np.zeros((2, 0, 4, 3), "uint8")}, "height and width"),
    ({"height": 2 ** 31, "width": 2 ** 31}, "."),
])
def test_bad_arguments_raise_invalid_argument(kwargs, match):
    args = {"images": np.zeros((2, 4, 4, 3), "uint8"),
            "matrices": np.tile(np.eye(3, dtype="float32"), (2, 1, 1)),
            "height": 3, "width": 3}
    args.update(kwargs)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError),
                       match=match):
        affine_resample(**args)
