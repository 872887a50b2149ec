"""FusedAugment and the fused machinery: the one resample against stock
resampling ops applied one after another, the one color matrix against the
color steps done one after another in numpy, the draws against their
distributions, boxes and masks moving with the image, XLA, bad input."""

import math

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from keras_cnnpractice.data import augmentation_policy
from keras_cnnpractice.layers import FusedAugment
from keras_cnnpractice.layers import LensDistortion
from keras_cnnpractice.layers import PCALighting
from keras_cnnpractice.layers import RandomAffine
from keras_cnnpractice.layers import RandomResizedCrop
from keras_cnnpractice.layers import ScaleAugment
from keras_cnnpractice.layers import augment_steps as steps
from keras_cnnpractice.layers._augment import IMPLEMENTATIONS
from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVALUES
from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVECTORS
from tests.layers.helpers import assert_round_trips

EIGENVALUES = [v * 255.0 for v in IMAGENET_EIGENVALUES]


def smooth_images(batch, height, width, channels=3):
    """Low-frequency images in [0, 255]: resampling them twice instead of
    once changes them by little, so sequential and fused results compare."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width),
                             indexing="ij")
    images = [[127.5 + 100 * np.sin(cols / 9.0 + k + c)
               * np.cos(rows / 11.0 - k * c) for c in range(channels)]
              for k in range(batch)]
    return np.moveaxis(np.array(images), 1, -1).astype("float32")


def random_rgb(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(
        "float32")


# ---------------------------------------------------------- geometry


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_one_resample_equals_stock_ops_applied_in_turn(implementation):
    # ScaleCrop (short side 40, 32 crop) -> horizontal flip -> rotation,
    # fused, against tf.image.resize + slicing, tf.image.flip_left_right
    # and keras.layers.RandomRotation, one after another.
    images = smooth_images(6, 30, 36)
    rotation = 0.03
    layer = FusedAugment([steps.ScaleCrop(40, 32), steps.Flip("horizontal"),
                          steps.Affine(rotation=(rotation, rotation))],
                         fill_mode="reflect", seed=4,
                         implementation=implementation)
    transformation = layer.get_random_transformation(images)
    fused = layer.transform_images(images, transformation).numpy()
    crop, flip, _ = transformation["steps"]
    assert 0 < np.mean(flip["flip_x"].numpy()) < 1  # both cases seen
    rotate = keras.layers.RandomRotation((rotation, rotation),
                                         fill_mode="reflect")
    for i in range(len(images)):
        resized = tf.image.resize(images[i], (40, 48), "bilinear")
        oy, ox = int(crop["offset_y"][i]), int(crop["offset_x"][i])
        want = resized[oy:oy + 32, ox:ox + 32]
        if flip["flip_x"][i]:
            want = tf.image.flip_left_right(want)
        want = rotate(want[None], training=True)[0].numpy()
        # Two resamples against one: interpolation error only (the image
        # spans 200 levels; bilinear of a smooth image errs by ~1).
        np.testing.assert_allclose(fused[i, 4:-4, 4:-4], want[4:-4, 4:-4],
                                   atol=3.0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_resized_crop_and_flip_equal_crop_and_resize_then_flip(
        implementation):
    # Flip folded into the crop box costs no resample: exact.
    images = random_rgb((8, 20, 24, 3))
    layer = FusedAugment([steps.ResizedCrop(10, 12), steps.Flip()], seed=1,
                         implementation=implementation)
    transformation = layer.get_random_transformation(images)
    fused = layer.transform_images(images, transformation).numpy()
    boxes = transformation["steps"][0]["boxes"].numpy()
    y0, x0, h, w = boxes.T
    normalized = np.stack([y0 / 19, x0 / 23, (y0 + h - 1) / 19,
                           (x0 + w - 1) / 23], 1)
    want = tf.image.crop_and_resize(images, normalized, np.arange(8),
                                    (10, 12)).numpy()
    flipped = transformation["steps"][1]["flip_x"].numpy()
    want[flipped] = want[flipped, :, ::-1]
    np.testing.assert_allclose(fused, want, atol=1e-3)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_affine_fill_modes_match_image_projective_transform_v3(
        implementation):
    images = random_rgb((3, 15, 17, 3))
    matrices = steps.affine_matrices(15, 17, rotation=[0.1, -0.2, 0.3],
                                     shear=0.2, scale=0.3,
                                     translation_x=0.2)
    flat = tf.reshape(matrices, [-1, 9])[:, :8]
    for fill_mode in ("reflect", "wrap", "constant", "nearest"):
        for interpolation in ("bilinear", "nearest"):
            layer = FusedAugment([steps.Affine()], fill_mode=fill_mode,
                                 fill_value=7.0, interpolation=interpolation,
                                 implementation=implementation)
            transformation = {"matrices": matrices, "color": [],
                              "input_size": (15, 17),
                              "output_size": (15, 17), "steps": [{}]}
            ours = layer.transform_images(images, transformation).numpy()
            theirs = tf.raw_ops.ImageProjectiveTransformV3(
                images=images, transforms=flat, output_shape=[15, 17],
                fill_value=7.0, interpolation=interpolation.upper(),
                fill_mode=fill_mode.upper()).numpy()
            if interpolation == "nearest":  # ties may round either way
                assert np.mean(np.abs(ours - theirs) < 1e-3) > 0.98
            else:
                np.testing.assert_allclose(ours, theirs, atol=1e-3)


# ------------------------------------------------------------- color


# RGB -> YIQ, the FCC NTSC coefficients.
YIQ = np.array([[0.299, 0.587, 0.114],
                [0.595716, -0.274453, -0.321263],
                [0.211456, -0.522591, 0.311135]])


def hue_rotate(image, turns):
    """Rotates the (I, Q) chroma of an RGB image by `turns` of a turn."""
    yiq = image @ YIQ.T
    t = 2 * math.pi * turns
    i, q = yiq[..., 1].copy(), yiq[..., 2].copy()
    yiq[..., 1] = math.cos(t) * i - math.sin(t) * q
    yiq[..., 2] = math.sin(t) * i + math.cos(t) * q
    return yiq @ np.linalg.inv(YIQ).T


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_one_color_matrix_equals_the_steps_in_numpy(implementation):
    images = random_rgb((10, 6, 7, 3)).astype("float64")
    layer = FusedAugment([
        steps.Brightness(0.2), steps.Contrast(0.3),
        steps.Saturation((0.3, 0.7)), steps.Hue(0.2),
        steps.Lighting(0.5, EIGENVALUES, IMAGENET_EIGENVECTORS)],
        value_range=(0, 255), seed=2, implementation=implementation)
    transformation = layer.get_random_transformation(images)
    fused = layer.transform_images(images, transformation).numpy()
    bright, contrast, sat, hue, light = transformation["steps"]
    eigvec = np.array(IMAGENET_EIGENVECTORS)
    for i, x in enumerate(images):
        x = x + float(bright["delta"][i])
        mean = x.mean(axis=(0, 1))
        x = (x - mean) * float(contrast["contrast"][i]) + mean
        gray = (x @ np.array([0.299, 0.587, 0.114]))[..., None]
        x = gray + float(sat["saturation"][i]) * (x - gray)
        x = hue_rotate(x, float(hue["hue_turns"][i]))
        x = x + eigvec @ (light["alpha"][i].numpy() * EIGENVALUES)
        np.testing.assert_allclose(fused[i], np.clip(x, 0, 255), atol=0.05)


def test_saturation_zero_is_tensorflow_grayscale():
    images = random_rgb((4, 5, 6, 3))
    gray = FusedAugment([steps.Saturation((0.0, 0.0))])(images).numpy()
    want = tf.image.rgb_to_grayscale(images).numpy()
    # TensorFlow rounds the BT.601 weights to 0.2989, 0.5870, 0.1140.
    np.testing.assert_allclose(gray, np.repeat(want, 3, -1), atol=0.05)


def test_hue_keeps_luma_and_a_half_turn_negates_chroma():
    images = random_rgb((64, 4, 4, 3))
    layer = FusedAugment([steps.Hue((1.0, 1.0))], clip=False, seed=0)
    out = layer(images).numpy()
    luma = np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(out @ luma, images @ luma, atol=1e-2)
    gray = (images @ luma)[..., None]
    np.testing.assert_allclose(out - gray, -(images - gray), atol=0.5)


# -------------------------------------------------------- distributions


def draws(step, n=4000, seed=0):
    layer = FusedAugment([step], seed=seed)
    return layer.get_random_transformation(
        np.zeros((n, 8, 8, 3), "float32"))["steps"][0]


def ks_uniform(values, lo, hi):
    return scipy.stats.kstest(values, scipy.stats.uniform(lo, hi - lo).cdf)


def test_drawn_parameters_follow_their_specification():
    p = 1e-3  # each check fails by chance once in a thousand runs
    affine = draws(steps.Affine(rotation=0.1, shear=(0.0, 0.3), scale=0.2,
                                translation=0.1, flip=True))
    assert ks_uniform(affine["rotation"], -0.1, 0.1).pvalue > p
    assert ks_uniform(affine["shear"], 0.0, 0.3).pvalue > p
    assert ks_uniform(affine["translation_x"], -0.1, 0.1).pvalue > p
    assert abs(np.mean(affine["flip"]) - 0.5) < 4 * 0.5 / math.sqrt(4000)
    flip = draws(steps.Flip("horizontal_and_vertical"))
    for key in ("flip_x", "flip_y"):
        assert abs(np.mean(flip[key]) - 0.5) < 4 * 0.5 / math.sqrt(4000)
    assert ks_uniform(draws(steps.Brightness(0.2))["delta"],
                      -51.0, 51.0).pvalue > p
    assert ks_uniform(draws(steps.Contrast((0.1, 0.3)))["contrast"],
                      0.9, 1.3).pvalue > p
    v = draws(steps.Saturation((0.2, 0.6)))["saturation"].numpy()
    assert ks_uniform(v / (1 + v), 0.2, 0.6).pvalue > p  # s = v / (1 - v)
    turns = draws(steps.Hue((0.1, 0.4)))["hue_turns"].numpy()
    assert abs(np.mean(turns > 0) - 0.5) < 4 * 0.5 / math.sqrt(4000)
    assert ks_uniform(np.abs(turns), 0.05, 0.2).pvalue > p
    alpha = draws(steps.Lighting(0.1, EIGENVALUES, IMAGENET_EIGENVECTORS))
    assert scipy.stats.kstest(np.ravel(alpha["alpha"]),
                              scipy.stats.norm(0, 0.1).cdf).pvalue > p


def test_resized_crop_area_and_log_aspect_are_uniform():
    layer = FusedAugment([steps.ResizedCrop(8, 8, scale=(0.1, 0.5))], seed=0)
    boxes = layer.get_random_transformation(
        np.zeros((3000, 200, 200, 3), "float32"))["steps"][0]["boxes"]
    _, _, h, w = np.asarray(boxes, float).T
    # Whole-pixel rounding moves each draw by well under 1% here.
    assert ks_uniform(h * w / 200 ** 2, 0.1, 0.5).statistic < 0.03
    assert ks_uniform(np.log(w / h), math.log(3 / 4),
                      math.log(4 / 3)).statistic < 0.05


# ---------------------------------------------------- boxes and masks


def square_scene(batch=6, size=48):
    images = np.zeros((batch, size, size, 3), "float32")
    masks = np.zeros((batch, size, size, 1), "int32")
    images[:, 14:30, 10:34] = 255.0
    masks[:, 14:30, 10:34] = 3
    boxes = np.tile(np.float32([[10, 14, 34, 30]]), (batch, 1, 1))  # xyxy
    return images, masks, {"boxes": boxes, "labels": np.ones((batch, 1))}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("layer_steps", [
    [steps.ResizedCrop(40, 40, scale=(0.5, 1.0)), steps.Flip()],
    [steps.Affine(rotation=0.1, scale=0.2, translation=0.1, flip=True)],
    [steps.ScaleCrop((48, 64), 40), steps.Flip("horizontal_and_vertical")],
])
def test_boxes_and_masks_move_with_the_image(layer_steps, implementation):
    images, masks, boxes = square_scene()
    layer = FusedAugment(layer_steps, bounding_box_format="xyxy",
                         interpolation="nearest", fill_mode="constant",
                         seed=5, implementation=implementation)
    out = layer({"images": images, "segmentation_masks": masks,
                 "bounding_boxes": boxes})
    # Masks are sampled like the image with nearest interpolation.
    np.testing.assert_array_equal(out["segmentation_masks"].numpy() == 3,
                                  out["images"].numpy()[..., :1] > 127)
    assert out["segmentation_masks"].dtype == tf.int32
    for image, box in zip(out["images"].numpy(),
                          out["bounding_boxes"]["boxes"].numpy()):
        ys, xs = np.nonzero(image[..., 0] > 127)
        if len(ys) == 0:
            continue
        x1, y1, x2, y2 = box[0]
        # The box bounds the square's pixels (edges at pixel borders) ...
        assert x1 <= xs.min() + 0.5 and xs.max() + 0.5 <= x2
        assert y1 <= ys.min() + 0.5 and ys.max() + 0.5 <= y2
        # ... and, for crops and flips, tightly.
        if not isinstance(layer_steps[0], steps.Affine):
            assert xs.min() - 1.5 <= x1 and x2 <= xs.max() + 2.5
            assert ys.min() - 1.5 <= y1 and y2 <= ys.max() + 2.5


def test_boxes_in_relative_format_and_single_images():
    images, _, boxes = square_scene(batch=1, size=48)
    layer = RandomResizedCrop(24, 24, scale=(1.0, 1.0), ratio=(1.0, 1.0),
                              bounding_box_format="rel_xyxy")
    rel = {"boxes": boxes["boxes"][0] / 48, "labels": boxes["labels"][0]}
    out = layer({"images": images[0], "bounding_boxes": rel},
                training=False)
    assert out["images"].shape == (24, 24, 3)
    np.testing.assert_allclose(out["bounding_boxes"]["boxes"],
                               rel["boxes"], atol=0.02)


# ---------------------------------------------------------------- XLA

ALL_LAYERS = {
    "natural": lambda: augmentation_policy("natural", seed=3,
                                           input_shape=(24, 24, 3)),
    "fused": lambda: FusedAugment([
        steps.ResizedCrop(24, 24), steps.Affine(0.1, flip=True),
        steps.Brightness(0.1), steps.Contrast(0.1), steps.Saturation(0.6),
        steps.Hue(0.1)], seed=3),
    "RandomResizedCrop": lambda: RandomResizedCrop(24, 24, seed=3),
    "ScaleAugment": lambda: ScaleAugment((24, 30), 24, seed=3),
    "RandomAffine": lambda: RandomAffine(0.1, 0.1, 0.1, flip=True, seed=3),
    "LensDistortion": lambda: LensDistortion(seed=3),
    "PCALighting": lambda: PCALighting(0.1, EIGENVALUES,
                                       IMAGENET_EIGENVECTORS, seed=3),
}


@pytest.mark.parametrize("name", ALL_LAYERS)
def test_every_augmentation_layer_compiles_with_xla(name):
    x = random_rgb((4, 24, 24, 3))
    eager = ALL_LAYERS[name]()
    assert eager.supports_jit
    jitted = ALL_LAYERS[name]()
    compiled = tf.function(lambda images: jitted(images, training=True),
                           jit_compile=True)
    np.testing.assert_allclose(compiled(x), eager(x, training=True),
                               atol=1e-3)
    inputs = keras.Input((24, 24, 3))
    features = keras.layers.GlobalAveragePooling2D()(
        ALL_LAYERS[name]()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(features))
    model.compile("sgd", "mse", jit_compile=True)
    history = model.fit(x, np.zeros((4, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_op_implementation_turns_keras_xla_off():
    # The compiled op has no XLA kernel: the layer says so, and Keras runs
    # a model holding it without XLA even when asked for it.
    layer = FusedAugment([steps.ResizedCrop(20, 20), steps.Brightness(0.1)],
                         implementation="op", seed=0)
    assert not layer.supports_jit
    inputs = keras.Input((24, 24, 3))
    features = keras.layers.GlobalAveragePooling2D()(layer(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(features))
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile("sgd", "mse", jit_compile=True)
    assert not model.jit_compile
    history = model.fit(random_rgb((4, 24, 24, 3)), np.zeros((4, 2)),
                        epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_uint8_in_tf_data_and_float_out(implementation):
    images = np.random.default_rng(0).integers(0, 256, (8, 40, 40, 3),
                                               dtype=np.uint8)
    policy = FusedAugment([steps.ResizedCrop(32, 32), steps.Flip(),
                           steps.Brightness(0.1)], seed=0,
                          implementation=implementation)
    ds = tf.data.Dataset.from_tensor_slices(images).batch(4).map(
        policy, num_parallel_calls=2)
    for batch in ds:
        assert batch.shape == (4, 32, 32, 3) and batch.dtype == tf.float32
        assert 0 <= float(tf.reduce_min(batch)) <= float(
            tf.reduce_max(batch)) <= 255
    # Geometric steps alone read uint8 exactly as their float values.
    crop = RandomResizedCrop(32, 32, seed=1, implementation=implementation)
    again = RandomResizedCrop(32, 32, seed=1,
                              implementation=implementation)
    np.testing.assert_allclose(crop(images), again(images.astype("float32")),
                               atol=1e-4)


def test_inference_takes_the_deterministic_path():
    x = random_rgb((2, 24, 30, 3))
    layer = FusedAugment([steps.Flip(), steps.Affine(0.2),
                          steps.Brightness(0.5)])
    np.testing.assert_array_equal(layer(x, training=False), x)
    crop = FusedAugment([steps.ResizedCrop(12, 12), steps.Hue(0.5)])
    centre = crop(x, training=False).numpy()
    want = tf.image.crop_and_resize(x, [[0, 3 / 29, 1, 26 / 29]] * 2, [0, 1],
                                    (12, 12)).numpy()
    np.testing.assert_allclose(centre, want, atol=1e-3)


# ------------------------------------------------------- bad input


@pytest.mark.parametrize("make, images, match", [
    (lambda: FusedAugment([steps.Flip()]), np.zeros((4, 4), "float32"),
     "rank"),
    (lambda: FusedAugment([steps.Brightness(0.1)]),
     np.zeros((2, 4, 4, 1), "float32"), "3 channels.*shape=\\(2, 4, 4, 1\\)"),
    (lambda: FusedAugment([steps.Brightness(0.1)], value_range=(0, 1)),
     np.zeros((2, 4, 4, 3), "uint8"), "uint8.*value_range=\\(0.0, 1.0\\)"),
    (lambda: FusedAugment([steps.Flip()]), np.zeros((2, 4, 4, 3), "int32"),
     "dtype=int32"),
    (lambda: FusedAugment([steps.Flip()]),
     {"pixels": np.zeros((2, 4, 4, 3), "float32")}, "keys=\\['pixels'\\]"),
    (lambda: FusedAugment([steps.Flip()]),
     {"images": np.zeros((1, 4, 4, 3), "float32"),
      "bounding_boxes": {"boxes": np.zeros((1, 1, 4)),
                         "labels": np.zeros((1, 1))}},
     "bounding_box_format=None"),
])
def test_bad_input_is_refused_with_the_received_value(make, images, match):
    with pytest.raises(ValueError, match=match):
        make()(images)


@pytest.mark.parametrize("make, match", [
    (lambda: FusedAugment([]), "steps=\\[\\]"),
    (lambda: FusedAugment(["flip"]), "Received: 'flip'"),
    (lambda: FusedAugment([steps.Flip()], value_range=(1, 0)),
     "value_range=\\(1, 0\\)"),
    (lambda: FusedAugment([steps.Flip()], fill_mode="mirror"), "mirror"),
    (lambda: steps.Flip("diagonal"), "mode='diagonal'"),
    (lambda: steps.Brightness(1.5), "factor=1.5"),
    (lambda: steps.Contrast(-0.1), "factor=-0.1"),
    (lambda: steps.Saturation((0.6, 0.2)), "factor=\\(0.6, 0.2\\)"),
    (lambda: steps.Hue(2.0), "factor="),
    (lambda: steps.Affine(scale=1.5), "scale=1.5"),
    (lambda: steps.Affine(translation=2.0), "translation="),
    (lambda: steps.ResizedCrop(0, 4), "height=0"),
    (lambda: steps.ScaleCrop((480, 256), 224), "short_side="),
    (lambda: steps.Lighting(-1.0, EIGENVALUES, IMAGENET_EIGENVECTORS),
     "alphastd=-1.0"),
    (lambda: steps.Lighting(0.1, [1, 2], IMAGENET_EIGENVECTORS),
     "eigenvalues="),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_empty_batch(implementation):
    layer = FusedAugment([steps.ResizedCrop(8, 8), steps.Flip(),
                          steps.Contrast(0.2)],
                         implementation=implementation)
    out = layer(np.zeros((0, 12, 12, 3), "uint8"))
    assert out.shape == (0, 8, 8, 3) and out.dtype == tf.float32


def test_round_trips(tmp_path):
    layer = FusedAugment([
        steps.ScaleCrop((20, 30), 16), steps.Flip("vertical"),
        steps.Affine(rotation=0.1, translation=(0.0, 0.2)),
        steps.Brightness(0.1), steps.Contrast((0.1, 0.2)),
        steps.Saturation((0.3, 0.6)), steps.Hue(0.1),
        steps.Lighting(0.1, EIGENVALUES, IMAGENET_EIGENVECTORS)],
        value_range=(-1, 1), fill_mode="wrap", seed=3, name="fused")
    assert_round_trips(layer, (18, 18, 3), tmp_path)


def test_natural_policy_crops_to_the_given_size():
    # ResNet's recipe on 40x40 images scaled down: short side in
    # [round(32 * 256 / 224), round(32 * 480 / 224)] = [37, 69], 32 crop.
    policy = augmentation_policy("natural", seed=0, input_shape=(40, 40, 3),
                                 crop=32)
    crop = policy.steps[0]
    assert (crop.short_side, crop.crop) == ((37, 69), 32)
    images = np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3),
                                               dtype=np.uint8)
    assert policy(images).shape == (4, 32, 32, 3)
    assert policy(images, training=False).shape == (4, 32, 32, 3)
