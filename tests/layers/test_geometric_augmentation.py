"""RandomResizedCrop, ScaleAugment, RandomAffine and LensDistortion against
numpy references, `tf.image.resize` and Keras's own augmentation layers."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.layers.lens_distortion import LensDistortion
from keras_cnnpractice.layers.random_affine import RandomAffine
from keras_cnnpractice.layers.augment_steps import affine_matrices
from keras_cnnpractice.layers.random_resized_crop import RandomResizedCrop
from keras_cnnpractice.layers.scale_augment import ScaleAugment
from tests.layers.helpers import assert_round_trips


def coordinate_image(height, width, batch=1):
    """Channel 0 holds each pixel's row, channel 1 its column: bilinear
    resampling of it returns the coordinates it sampled at."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width),
                             indexing="ij")
    image = np.stack([rows, cols], -1).astype("float32")
    return np.ascontiguousarray(np.broadcast_to(image, (batch, *image.shape)))


def smooth_image(height, width, batch=1):
    rows, cols = np.meshgrid(np.arange(height), np.arange(width),
                             indexing="ij")
    images = [np.sin(cols / 6.0 + k) + np.cos(rows / 7.0 - k)
              for k in range(batch)]
    return np.stack(images)[..., None].astype("float32")


def random_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


def resized_crop_grid(y0, x0, h, w, out_h, out_w):
    """The coordinates an align-corners resize of box [y0, x0, h, w] to
    (out_h, out_w) samples: what RandomResizedCrop documents."""
    rows = y0 + np.arange(out_h) * ((h - 1) / max(out_h - 1, 1))
    cols = x0 + np.arange(out_w) * ((w - 1) / max(out_w - 1, 1))
    if out_h == 1:
        rows = np.array([y0 + (h - 1) / 2])
    if out_w == 1:
        cols = np.array([x0 + (w - 1) / 2])
    r, c = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([r, c], -1)


# ---------------------------------------------------------------- crops


def recover_boxes(outputs):
    """[y0, x0, h, w] of each sample from a resized coordinate image."""
    y0, x0 = outputs[:, 0, 0, 0], outputs[:, 0, 0, 1]
    h = outputs[:, -1, 0, 0] - y0 + 1
    w = outputs[:, 0, -1, 1] - x0 + 1
    return np.stack([y0, x0, h, w], 1)


@pytest.mark.parametrize("scale, ratio", [
    ((0.1, 0.5), (3 / 4, 4 / 3)),   # every candidate fits: plain uniform
    ((0.5, 1.0), (1 / 3, 3.0)),     # many candidates do not fit: retries
])
def test_random_resized_crop_boxes(scale, ratio):
    size, out = 64, 9
    layer = RandomResizedCrop(out, out, scale=scale, ratio=ratio, seed=1)
    outputs = layer(coordinate_image(size, size, 400), training=True).numpy()
    boxes = recover_boxes(outputs)
    # Whole-pixel boxes, inside the image.
    np.testing.assert_allclose(boxes, np.round(boxes), atol=2e-3)
    boxes = np.round(boxes).astype(int)
    y0, x0, h, w = boxes.T
    assert (y0 >= 0).all() and (x0 >= 0).all() and (h >= 1).all()
    assert (y0 + h <= size).all() and (x0 + w <= size).all()
    # The content is the box, resized (corner pixel centres to corners).
    for output, box in zip(outputs[:50], boxes[:50]):
        np.testing.assert_allclose(output, resized_crop_grid(*box, out, out),
                                   atol=2e-3)
    assert len({tuple(b) for b in boxes}) > 300  # per-sample boxes
    area = h * w / size**2
    log_ratio = np.log(w / h)
    slack = 0.03  # rounding h and w to whole pixels
    assert area.min() >= scale[0] - slack and area.max() <= scale[1] + slack
    assert log_ratio.min() >= math.log(ratio[0]) - 2 * slack
    assert log_ratio.max() <= math.log(ratio[1]) + 2 * slack
    if scale == (0.1, 0.5):  # no rejection: both uniform on their ranges
        assert abs(area.mean() - 0.3) < 0.02
        assert abs(log_ratio.mean()) < 0.03
        counts = np.histogram(area, bins=4, range=scale)[0] / len(area)
        np.testing.assert_allclose(counts, 0.25, atol=0.08)
        counts = np.histogram(log_ratio, bins=4, range=np.log(ratio))[0]
        np.testing.assert_allclose(counts / len(area), 0.25, atol=0.08)


@pytest.mark.parametrize("shape, ratio, box", [
    ((16, 16), (2.0, 2.0), (4, 0, 8, 16)),     # too wide: ratio clipped
    ((10, 40), (0.5, 1.0), (0, 15, 10, 10)),   # too tall: ratio clipped
])
def test_random_resized_crop_falls_back_to_the_central_box(shape, ratio, box):
    # scale (1, 1) with a ratio the image does not have: no candidate fits.
    layer = RandomResizedCrop(5, 6, scale=(1.0, 1.0), ratio=ratio, seed=0)
    outputs = layer(coordinate_image(*shape, 3), training=True).numpy()
    for output in outputs:
        np.testing.assert_allclose(output, resized_crop_grid(*box, 5, 6),
                                   atol=1e-3)


def test_random_resized_crop_inference_is_the_central_box():
    layer = RandomResizedCrop(4, 8, seed=0)  # output ratio 2
    images = coordinate_image(16, 12, 2)
    want = resized_crop_grid(5, 0, 6, 12, 4, 8)  # 12 wide, 6 high, centred
    for outputs in (layer(images, training=False),
                    layer(images, training=None)):
        for output in outputs.numpy():
            np.testing.assert_allclose(output, want, atol=1e-3)
    tall = RandomResizedCrop(6, 3)  # ratio 1/2 on a 12 x 16 image
    np.testing.assert_allclose(tall(coordinate_image(12, 16),
                                    training=False)[0],
                               resized_crop_grid(0, 5, 12, 6, 6, 3), atol=1e-3)


def round_half_up(x):
    return int(math.floor(x + 0.5))


def resize_then_slice(image, short, offset_y, offset_x, crop):
    """The reference: tf.image.resize to short side `short`, then slice."""
    h, w = image.shape[:2]
    if h <= w:
        size = (short, round_half_up(w * short / h))
    else:
        size = (round_half_up(h * short / w), short)
    resized = tf.image.resize(image, size, "bilinear").numpy()
    assert offset_y + crop <= size[0] and offset_x + crop <= size[1]
    return resized[offset_y:offset_y + crop, offset_x:offset_x + crop], size


@pytest.mark.parametrize("shape, short_side, crop", [
    ((12, 16), (16, 24), 12),   # landscape, upsampled
    ((17, 11), (14, 20), 9),    # portrait, odd sizes
    ((30, 40), (10, 14), 8),    # downsampled
])
def test_scale_augment_equals_resize_then_slice(shape, short_side, crop):
    images = random_images((6, *shape, 2))
    layer = ScaleAugment(short_side, crop, seed=3)
    transformation = layer.get_random_transformation(images, training=True)
    outputs = layer.transform_images(images, transformation).numpy()
    params = transformation["steps"][0]
    for i in range(len(images)):
        want, _ = resize_then_slice(images[i], int(params["short_side"][i]),
                                    int(params["offset_y"][i]),
                                    int(params["offset_x"][i]), crop)
        np.testing.assert_allclose(outputs[i], want, atol=1e-4)
    # Inference: short side short_side[0], central window.
    outputs = layer(images, training=False).numpy()
    want, size = resize_then_slice(images[0], short_side[0], 0, 0, crop)
    oy, ox = (size[0] - crop) // 2, (size[1] - crop) // 2
    want, _ = resize_then_slice(images[0], short_side[0], oy, ox, crop)
    np.testing.assert_allclose(outputs[0], want, atol=1e-4)


def test_scale_augment_output_is_some_window_of_the_resized_image():
    # Black box: with L fixed, each output is one of the windows of
    # tf.image.resize's output.
    images = random_images((4, 12, 16, 1), seed=1)
    outputs = ScaleAugment(16, 12, seed=0)(images, training=True).numpy()
    resized = tf.image.resize(images, (16, 21), "bilinear").numpy()
    for output, image in zip(outputs, resized):
        errors = [np.abs(image[y:y + 12, x:x + 12] - output).max()
                  for y in range(5) for x in range(10)]
        assert min(errors) < 1e-4


def test_scale_augment_short_side_and_offsets_in_range():
    layer = ScaleAugment((16, 24), 12, seed=0)
    params = layer.get_random_transformation(np.zeros((500, 12, 16, 1),
                                                       "float32"))["steps"][0]
    short = params["short_side"].numpy()
    assert set(short) == set(range(16, 25))  # all values, inclusive
    assert abs(short.mean() - 20) < 0.4
    long_side = np.floor(16 * short / 12 + 0.5).astype(int)
    oy, ox = params["offset_y"].numpy(), params["offset_x"].numpy()
    assert (oy >= 0).all() and (oy <= short - 12).all()
    assert (ox >= 0).all() and (ox <= long_side - 12).all()
    assert (ox == long_side - 12).any() and (ox == 0).any()


# --------------------------------------------------------- RandomAffine


@pytest.mark.parametrize("factor, fill_mode", [
    (0.1, "reflect"), (-0.3, "constant"), (0.45, "wrap"), (0.2, "nearest")])
def test_rotation_equals_keras_random_rotation(factor, fill_mode):
    images = random_images((2, 15, 17, 3))
    ours = RandomAffine(rotation=(factor, factor), fill_mode=fill_mode,
                        seed=0)(images, training=True)
    theirs = keras.layers.RandomRotation(
        (factor, factor), fill_mode=fill_mode, seed=0)(images, training=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_shear_equals_keras_random_shear_moved_to_the_centre():
    # RandomShear shears about the top-left corner: x_in = x + s * y. Ours
    # shears about the centre: x_in = x + s * (y - cy), the same sample
    # points shifted by s * cy = 2 columns. RandomShear flips the sign at
    # random per sample, so each sample matches one of +-s.
    s, images = 0.25, random_images((6, 17, 20, 2))  # cy = 8
    theirs = keras.layers.RandomShear(x_factor=(s, s), y_factor=0.0,
                                      fill_mode="constant", seed=0)(
        images, training=True).numpy()
    plus = RandomAffine(shear=(s, s), fill_mode="constant")(
        images, training=True).numpy()
    minus = RandomAffine(shear=(-s, -s), fill_mode="constant")(
        images, training=True).numpy()
    for t, p, m in zip(theirs, plus, minus):
        if not np.allclose(p[:, 2:], t[:, :-2], atol=1e-4):
            np.testing.assert_allclose(m[:, :-2], t[:, 2:], atol=1e-4)
    assert not np.allclose(plus, minus)


def test_scale_and_aspect_equal_keras_random_zoom():
    images = random_images((2, 16, 19, 1))
    for z, a in ((0.2, 0.0), (-0.25, 0.0), (0.1, 0.3)):
        ours = RandomAffine(scale=(z, z), aspect=(a, a), fill_mode="constant")(
            images, training=True)
        zw, zh = (1 + z) * math.exp(a / 2) - 1, (1 + z) * math.exp(-a / 2) - 1
        theirs = keras.layers.RandomZoom((zh, zh), (zw, zw),
                                         fill_mode="constant")(
            images, training=True)
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("t", [0.25, -0.25])
def test_translation_is_an_exact_shift(t):
    images = random_images((2, 16, 20, 3))  # 0.25 -> 4 rows, 5 columns
    ours = RandomAffine(translation=(t, t))(images, training=True).numpy()
    if t > 0:
        np.testing.assert_array_equal(ours[:, 4:, 5:], images[:, :-4, :-5])
    else:
        np.testing.assert_array_equal(ours[:, :-4, :-5], images[:, 4:, 5:])
    theirs = keras.layers.RandomTranslation((t, t), (t, t))(images,
                                                            training=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def numpy_parts(height, width, rotation, shear, scale, aspect, tx, ty, flip):
    """The documented parts of the matrix, built by hand in float64."""
    cx, cy = (width - 1) / 2, (height - 1) / 2

    def m(a, b, c, d, e, f):
        return np.array([[a, b, c], [d, e, f], [0, 0, 1]], np.float64)

    t = 2 * math.pi * rotation
    z = 1 + scale
    return [m(1, 0, cx, 0, 1, cy),
            m(-1 if flip else 1, 0, 0, 0, 1, 0),
            m(z * math.exp(aspect / 2), 0, 0, 0, z * math.exp(-aspect / 2), 0),
            m(1, shear, 0, 0, 1, 0),
            m(math.cos(t), -math.sin(t), 0, math.sin(t), math.cos(t), 0),
            m(1, 0, -tx * width, 0, 1, -ty * height),
            m(1, 0, -cx, 0, 1, -cy)]


def test_fused_matrix_is_the_product_of_the_parts():
    rng = np.random.default_rng(0)
    height, width, n = 24, 30, 5
    params = dict(rotation=rng.uniform(-0.5, 0.5, n),
                  shear=rng.uniform(-0.3, 0.3, n),
                  scale=rng.uniform(-0.3, 0.3, n),
                  aspect=rng.uniform(-0.3, 0.3, n),
                  translation_x=rng.uniform(-0.2, 0.2, n),
                  translation_y=rng.uniform(-0.2, 0.2, n),
                  flip=rng.uniform(size=n) < 0.5)
    fused = affine_matrices(height, width, **params).numpy()
    assert fused.shape == (n, 3, 3)
    for i in range(n):
        parts = numpy_parts(height, width, *(p[i] for p in params.values()))
        np.testing.assert_allclose(fused[i], np.linalg.multi_dot(parts),
                                   atol=1e-4)
    # One part at a time (conjugated by the centre), multiplied in the
    # documented order, gives the fused matrix.
    product = np.eye(3)
    for name in ("flip", "scale", "aspect", "shear", "rotation",
                 "translation_x", "translation_y"):
        product = product @ affine_matrices(height, width,
                                            **{name: params[name]}).numpy()
    np.testing.assert_allclose(product, fused, atol=1e-4)
    # The identity, and a lone rotation, against hand-built matrices.
    np.testing.assert_allclose(affine_matrices(5, 7), np.eye(3), atol=1e-7)
    parts = numpy_parts(5, 7, 0.125, 0, 0, 0, 0, 0, False)
    np.testing.assert_allclose(affine_matrices(5, 7, rotation=0.125),
                               parts[0] @ parts[4] @ parts[6], atol=1e-6)


def test_one_resample_equals_keras_layers_in_sequence():
    # Zoom, then rotate, then translate, as three Keras layers (three
    # resamples) against one fused resample: equal up to interpolation
    # error in the interior, and far apart if the order were wrong.
    images = smooth_image(40, 40, 2)
    z, r, t = 0.15, 0.05, 0.1
    fused = RandomAffine(rotation=(r, r), scale=(z, z), translation=(t, t))(
        images, training=True).numpy()
    x = keras.layers.RandomZoom((z, z))(images, training=True)
    x = keras.layers.RandomRotation((r, r))(x, training=True)
    x = keras.layers.RandomTranslation((t, t), (t, t))(x, training=True)
    inner = (slice(None), slice(12, 28), slice(12, 28))
    np.testing.assert_allclose(fused[inner], x.numpy()[inner], atol=0.03)
    reordered = RandomAffine(rotation=(r, r))(
        RandomAffine(translation=(t, t))(
            RandomAffine(scale=(z, z))(images, training=True),
            training=True), training=True).numpy()
    assert np.abs(reordered[inner] - fused[inner]).max() > 0.1


def test_flip_is_a_horizontal_flip_half_the_time():
    images = random_images((64, 6, 7, 1))
    outputs = RandomAffine(flip=True, seed=0)(images, training=True).numpy()
    flipped = [np.array_equal(o, x[:, ::-1]) for o, x in zip(outputs, images)]
    kept = [np.array_equal(o, x) for o, x in zip(outputs, images)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 16 <= sum(flipped) <= 48


# -------------------------------------------------------- LensDistortion


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant",
                                       "nearest"])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_lens_distortion_with_zero_coefficients_is_the_identity(fill_mode,
                                                                dtype):
    images = random_images((2, 9, 12, 3)).astype(dtype)
    outputs = LensDistortion(0.0, 0.0, fill_mode=fill_mode)(images,
                                                           training=True)
    assert outputs.dtype == dtype
    np.testing.assert_array_equal(outputs, images)


def expected_radial_samples(height, width, k1, k2):
    cy, cx = (height - 1) / 2, (width - 1) / 2
    rows, cols = np.meshgrid(np.arange(height) - cy, np.arange(width) - cx,
                             indexing="ij")
    r2 = (rows**2 + cols**2) / (cx**2 + cy**2)
    factor = 1 + k1 * r2 + k2 * r2**2
    return cy + rows * factor, cx + cols * factor, np.sqrt(r2)


def test_lens_distortion_samples_at_the_distorted_radius():
    h, w = 21, 29
    images = coordinate_image(h, w)
    outputs = LensDistortion((-0.2, -0.2), 0.0)(images, training=True).numpy()
    rows, cols, r = expected_radial_samples(h, w, -0.2, 0.0)
    np.testing.assert_allclose(outputs[0, ..., 0], rows, atol=1e-3)
    np.testing.assert_allclose(outputs[0, ..., 1], cols, atol=1e-3)
    # In radius terms: r_in = r (1 + k1 r^2), corners at r = 1.
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r_in = np.hypot(outputs[0, ..., 0] - cy, outputs[0, ..., 1] - cx)
    r_in /= math.hypot(cx, cy)
    np.testing.assert_allclose(r_in, r * (1 - 0.2 * r**2), atol=1e-4)
    assert abs(r.max() - 1.0) < 1e-9
    # Pincushion with k2: pixels whose sample stays inside match too.
    outputs = LensDistortion((0.1, 0.1), (-0.05, -0.05))(
        images, training=True).numpy()
    rows, cols, _ = expected_radial_samples(h, w, 0.1, -0.05)
    inside = (rows >= 0) & (rows <= h - 1) & (cols >= 0) & (cols <= w - 1)
    assert 0.5 < inside.mean() < 1.0
    np.testing.assert_allclose(outputs[0, ..., 0][inside], rows[inside],
                               atol=1e-3)
    np.testing.assert_allclose(outputs[0, ..., 1][inside], cols[inside],
                               atol=1e-3)


def v3_wrap(coords, size):
    """The "wrap" rule of TensorFlow's ImageProjectiveTransformV3 kernel
    (image_ops.h, map_coordinate), which Keras's layers use: below 0, add
    `size * (trunc(-c / (size - 1)) + 1)`; above `size - 1`, subtract
    `size * trunc(c / (size - 1))`; then clamp to [0, size - 1]. (The
    rotation test above checks the same rule against Keras itself.)"""
    c = np.asarray(coords, dtype=float)
    span = size - 1.0
    c = np.where(c < 0, c + size * (np.trunc(-c / span) + 1),
                 np.where(c > span, c - size * np.trunc(c / span), c))
    return np.clip(c, 0.0, span)


@pytest.mark.parametrize("fill_mode, pad_mode", [
    ("reflect", "symmetric"), ("wrap", "edge"), ("nearest", "edge"),
    ("constant", "constant")])
def test_lens_distortion_fill_modes_against_numpy(fill_mode, pad_mode):
    h, w, k1, k2 = 10, 13, 0.4, 0.1  # corners sample up to 1.5x outside
    image = random_images((1, h, w, 2), seed=2)
    outputs = LensDistortion((k1, k1), (k2, k2), fill_mode=fill_mode,
                             fill_value=0.5)(image, training=True).numpy()
    rows, cols, _ = expected_radial_samples(h, w, k1, k2)
    if fill_mode == "wrap":
        rows, cols = v3_wrap(rows, h), v3_wrap(cols, w)
    pad = 8
    kwargs = {"constant_values": 0.5} if pad_mode == "constant" else {}
    padded = np.pad(image[0], [(pad, pad), (pad, pad), (0, 0)], pad_mode,
                    **kwargs)
    rows, cols = rows + pad, cols + pad
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    want = ((1 - fr) * (1 - fc) * padded[r0, c0]
            + (1 - fr) * fc * padded[r0, c0 + 1]
            + fr * (1 - fc) * padded[r0 + 1, c0]
            + fr * fc * padded[r0 + 1, c0 + 1])
    np.testing.assert_allclose(outputs[0], want, atol=1e-4)


# ------------------------------------------------------ all four layers

LAYERS = {
    "RandomResizedCrop": lambda seed=None: RandomResizedCrop(
        8, 10, seed=seed, name="rrc"),
    "ScaleAugment": lambda seed=None: ScaleAugment(
        (16, 20), 12, seed=seed, name="scale"),
    "RandomAffine": lambda seed=None: RandomAffine(
        0.1, 0.2, 0.2, 0.2, 0.1, True, seed=seed, name="affine"),
    "LensDistortion": lambda seed=None: LensDistortion(
        0.3, 0.1, seed=seed, name="lens"),
}
OUTPUT_HW = {"RandomResizedCrop": (8, 10), "ScaleAugment": (12, 12)}
SHAPE = (14, 18, 3)


def output_shape(name, shape):
    return (*shape[:-3], *OUTPUT_HW.get(name, shape[-3:-1]), shape[-1])


@pytest.mark.parametrize("name", LAYERS)
def test_inference_is_deterministic_and_identity_where_shape_allows(name):
    images = random_images((3, *SHAPE))
    layer = LAYERS[name](seed=0)
    inference = layer(images, training=False)
    np.testing.assert_array_equal(layer(images, training=False), inference)
    model = keras.Sequential([keras.Input(SHAPE), layer])
    np.testing.assert_array_equal(model.predict(images, verbose=0), inference)
    # Like Keras's augmentation layers, a direct call defaults to training.
    assert not np.array_equal(layer(images), inference)
    if name not in OUTPUT_HW:
        np.testing.assert_array_equal(inference, images)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("shape", [SHAPE, (4, *SHAPE)])
def test_dtype_and_shape_are_kept(name, dtype, shape):
    images = random_images(shape).astype(dtype)
    layer = LAYERS[name](seed=0)
    for training in (True, False):
        outputs = layer(images, training=training)
        assert outputs.dtype == dtype
        assert tuple(outputs.shape) == output_shape(name, shape)
        assert np.isfinite(outputs.numpy()).all()


@pytest.mark.parametrize("name", LAYERS)
def test_seeds_calls_and_samples(name):
    images = np.repeat(random_images((1, *SHAPE)), 4, axis=0)
    a, b = LAYERS[name](seed=7), LAYERS[name](seed=7)
    first = a(images, training=True).numpy()
    np.testing.assert_array_equal(first, b(images, training=True).numpy())
    assert not np.array_equal(first, a(images, training=True).numpy())
    # Same image four times: each sample draws its own parameters.
    assert len({o.tobytes() for o in first}) == 4


@pytest.mark.parametrize("name", LAYERS)
def test_in_a_tf_data_pipeline(name):
    images = np.repeat(random_images((1, *SHAPE)), 6, axis=0)
    layer = LAYERS[name](seed=0)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(3).map(
        lambda batch: layer(batch, training=True))
    epochs = [np.concatenate([b.numpy() for b in dataset]) for _ in range(2)]
    assert epochs[0].shape == (6, *output_shape(name, SHAPE))
    assert len({o.tobytes() for o in epochs[0]}) == 6
    assert not np.array_equal(*epochs)


@pytest.mark.parametrize("name", LAYERS)
def test_in_a_sequential_model(name):
    model = keras.Sequential([keras.Input(SHAPE), LAYERS[name](seed=0)])
    assert model.output_shape == output_shape(name, (None, *SHAPE))
    images = random_images((2, *SHAPE))
    inference = model.predict(images, verbose=0)
    np.testing.assert_array_equal(inference, model(images, training=False))
    training = model(images, training=True).numpy()
    assert training.shape == inference.shape
    assert not np.allclose(training, inference)


def test_all_four_train_in_one_model():
    model = keras.Sequential([
        keras.Input(SHAPE), LAYERS["RandomAffine"](seed=0),
        LAYERS["LensDistortion"](seed=0), LAYERS["ScaleAugment"](seed=0),
        LAYERS["RandomResizedCrop"](seed=0),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    history = model.fit(random_images((4, *SHAPE)), np.zeros((4, 2)),
                        batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(random_images((1, *SHAPE)), verbose=0).shape == (1, 2)


@pytest.mark.parametrize("name", LAYERS)
def test_bad_images_are_rejected(name):
    layer = LAYERS[name]()
    with pytest.raises(ValueError, match="float or uint8.*dtype=int32"):
        layer(np.zeros((2, *SHAPE), "int32"), training=True)
    with pytest.raises(ValueError, match="rank"):
        layer(np.zeros((14, 18), "float32"), training=True)
    with pytest.raises(ValueError, match="rank"):
        layer(keras.Input((14, 18, 3, 2)))


@pytest.mark.parametrize("make, match", [
    (lambda: RandomResizedCrop(0, 8), "height=0"),
    (lambda: RandomResizedCrop(8, 8.5), "width=8.5"),
    (lambda: RandomResizedCrop(8, 8, scale=(0.5, 0.2)), "scale="),
    (lambda: RandomResizedCrop(8, 8, scale=(0.0, 1.0)), "scale="),
    (lambda: RandomResizedCrop(8, 8, scale=(0.5, 1.5)), "scale="),
    (lambda: RandomResizedCrop(8, 8, ratio=(2.0, 1.0)), "ratio="),
    (lambda: RandomResizedCrop(8, 8, interpolation="cubic"), "interpolation"),
    (lambda: ScaleAugment((256, 480), 300), "crop=300"),
    (lambda: ScaleAugment((480, 256), 224), "short_side="),
    (lambda: ScaleAugment(256.0, 224), "short_side="),
    (lambda: ScaleAugment(256, 0), "crop=0"),
    (lambda: RandomAffine(rotation=-0.1), "rotation=-0.1"),
    (lambda: RandomAffine(shear=(0.2, -0.2)), "shear="),
    (lambda: RandomAffine(scale=1.0), "scale=1.0"),
    (lambda: RandomAffine(aspect="wide"), "aspect="),
    (lambda: RandomAffine(translation=(-0.5, 1.5)), "translation="),
    (lambda: RandomAffine(flip=1), "flip=1"),
    (lambda: RandomAffine(fill_mode="mirror"), "fill_mode="),
    (lambda: RandomAffine(interpolation="bicubic"), "interpolation="),
    (lambda: LensDistortion(k1=-0.2), "k1=-0.2"),
    (lambda: LensDistortion(k2=(0.1, 0.0)), "k2="),
    (lambda: LensDistortion(fill_mode="mirror"), "fill_mode="),
])
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", LAYERS)
def test_round_trips(name, tmp_path):
    assert_round_trips(LAYERS[name](seed=5), SHAPE, tmp_path / name)
