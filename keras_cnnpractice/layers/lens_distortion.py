"""Random radial (barrel / pincushion) lens distortion."""

import keras
import tensorflow as tf

from keras_cnnpractice.layers import _resample
from keras_cnnpractice.layers._augment import as_batch
from keras_cnnpractice.layers._augment import check_images
from keras_cnnpractice.layers._augment import restore
from keras_cnnpractice.layers.augment_steps import random_uniform
from keras_cnnpractice.layers.augment_steps import range_pair


def distortion_coordinates(height, width, k1, k2):
    """Where each output pixel samples the input, per sample.

    With the centre `c = ((width - 1) / 2, (height - 1) / 2)` and the
    half-diagonal `d = |c|` (so the corner pixel centres are at radius 1;
    one scale for both axes, so circles stay circles), output pixel `p` at
    normalized radius `r = |p - c| / d` samples the input at
    `c + (p - c) * (1 + k1 r^2 + k2 r^4)`, i.e. at radius
    `r (1 + k1 r^2 + k2 r^4)` in the same direction (Brown-Conrady radial
    model). Negative `k1` pulls the corners in (barrel), positive pushes
    them out (pincushion, the corners then sample outside the image).

    Args:
        height: image height (int or scalar tensor).
        width: image width.
        k1: `(batch,)` quadratic coefficients.
        k2: `(batch,)` quartic coefficients.

    Returns:
        `(rows, cols)`, each `(batch, height, width)` float32.
    """
    k1 = tf.cast(k1, tf.float32)[:, None, None]
    k2 = tf.cast(k2, tf.float32)[:, None, None]
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    half_diagonal = tf.sqrt(cx * cx + cy * cy)
    y = tf.range(tf.cast(height, tf.float32))[:, None] - cy
    x = tf.range(tf.cast(width, tf.float32))[None, :] - cx
    r2 = tf.math.divide_no_nan(y * y + x * x, half_diagonal * half_diagonal)
    factor = 1.0 + k1 * r2 + k2 * r2 * r2
    return cy + y * factor, cx + x * factor


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class LensDistortion(keras.layers.Layer):
    """Random radial lens distortion with per-sample `k1`, `k2`.

    Output pixel at normalized radius `r` from the centre samples the input
    at radius `r (1 + k1 r^2 + k2 r^4)` (see `distortion_coordinates`;
    radius 1 is the corner), with the bilinear sampling by gathers that the
    other augmentation layers share (`_resample.sample`), vectorized over
    the batch. `k1 = k2 = 0` is exactly the identity.
    The radial term of Brown's distortion model (D. C. Brown,
    "Decentering Distortion of Lenses", 1966), used here as a geometric
    augmentation that mimics barrel and pincushion lenses.

    Identity at inference (`training=False`: `predict`, `evaluate`, an
    exported model); as with Keras's own augmentation layers, `training`
    defaults to True, so a direct call (e.g. in a `tf.data` map) augments.
    The dtype of the images is kept.

    Args:
        k1: range of the quadratic coefficient: a number `f >= 0` meaning
            `[-f, f]`, or a `(lo, hi)` pair; drawn uniformly per sample.
        k2: range of the quartic coefficient, likewise.
        fill_mode: `"reflect"`, `"wrap"`, `"constant"` or `"nearest"`, how
            points outside the input (pincushion corners) are filled.
        fill_value: the value for `fill_mode="constant"`.
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(height, width, channels)` or `(batch, height, width, channels)`,
        float.

    Output shape:
        Same as the input, same dtype.
    """

    def __init__(self, k1=(-0.2, 0.2), k2=(-0.05, 0.05), fill_mode="reflect",
                 fill_value=0.0, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)  # keep the images' dtype
        super().__init__(**kwargs)
        self.k1 = range_pair(k1, "k1")
        self.k2 = range_pair(k2, "k2")
        if fill_mode not in _resample.FILL_MODES:
            raise ValueError(f"`fill_mode` must be one of "
                             f"{_resample.FILL_MODES}. "
                             f"Received: fill_mode={fill_mode!r}")
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_random_transformation(self, data, training=True, seed=None):
        """Per-sample `{"k1": (batch,), "k2": (batch,)}` (zeros when not
        training), with the signature of Keras's image preprocessing layers.

        Args:
            data: a batch of images, or a dict with `"images"`.
            training: random coefficients when true, else zeros.
            seed: a `keras.random.SeedGenerator` to draw from instead of
                the layer's.
        """
        images = data["images"] if isinstance(data, dict) else data
        batch_size = tf.shape(images)[:1]
        if not training:
            return {"k1": tf.zeros(batch_size), "k2": tf.zeros(batch_size)}
        u = random_uniform(tf.concat([batch_size, [2]], 0),
                           self.seed_generator if seed is None else seed)
        (lo1, hi1), (lo2, hi2) = self.k1, self.k2
        return {"k1": lo1 + (hi1 - lo1) * u[:, 0],
                "k2": lo2 + (hi2 - lo2) * u[:, 1]}

    def transform_images(self, images, transformation, training=True):
        """Distorts `images` (one or a batch) with `transformation["k1"]`
        and `["k2"]` (shape `(batch,)`); `training` is unused (the
        transformation says it all)."""
        batch, single = as_batch(check_images(images, "LensDistortion"))
        shape = tf.shape(batch)
        rows, cols = distortion_coordinates(
            shape[1], shape[2], transformation["k1"], transformation["k2"])
        dtype = tf.float64 if batch.dtype == tf.float64 else tf.float32
        outputs = _resample.sample(batch, rows, cols, "bilinear",
                                   self.fill_mode, self.fill_value, dtype)
        outputs = tf.ensure_shape(tf.cast(outputs, batch.dtype), batch.shape)
        return restore(outputs, single)

    def call(self, inputs, training=True):
        images = check_images(inputs, "LensDistortion")
        if not images.dtype.is_floating:
            raise ValueError("LensDistortion needs float images. Received: "
                             f"dtype={images.dtype.name}")
        if not training:
            return images
        batch, single = as_batch(images)
        transformation = self.get_random_transformation(batch)
        return restore(self.transform_images(batch, transformation), single)

    def compute_output_spec(self, inputs, training=True):
        check_images(tf.zeros((1,) * len(inputs.shape), inputs.dtype),
                     "LensDistortion")
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"k1": self.k1, "k2": self.k2,
                       "fill_mode": self.fill_mode,
                       "fill_value": self.fill_value, "seed": self.seed})
        return config
