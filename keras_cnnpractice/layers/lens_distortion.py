"""Random radial (barrel / pincushion) lens distortion."""

import keras
import tensorflow as tf

from keras_cnnpractice.layers._augment import ImageAugmentation
from keras_cnnpractice.layers._augment import as_batch
from keras_cnnpractice.layers._augment import check_images
from keras_cnnpractice.layers._augment import restore
from keras_cnnpractice.layers._augment import symmetric_range

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def _fill_index(index, size, fill_mode):
    """Integer pixel indices mapped into `[0, size)` by `fill_mode`, and
    whether each was inside the image (used by `"constant"`)."""
    inside = (index >= 0) & (index < size)
    if fill_mode == "wrap":
        index = tf.math.floormod(index, size)
    elif fill_mode == "reflect":  # (d c b a | a b c d | d c b a)
        index = tf.math.floormod(index, 2 * size)
        index = tf.where(index >= size, 2 * size - 1 - index, index)
    else:  # "nearest" clamps; "constant" clamps, then masks with `inside`
        index = tf.clip_by_value(index, 0, size - 1)
    return index, inside


def bilinear_sample(images, rows, cols, fill_mode="reflect", fill_value=0.0):
    """Samples `images` at fractional pixel positions, by gathers.

    Args:
        images: `(batch, height, width, channels)` float images.
        rows: `(batch, out_height, out_width)` row coordinates (pixel
            centres at integers).
        cols: column coordinates, same shape as `rows`.
        fill_mode: how neighbours outside the image are read: `"reflect"`
            `(d c b a | a b c d | d c b a)`, `"wrap"`, `"nearest"` (edge
            pixel) or `"constant"` (`fill_value`).
        fill_value: the value for `"constant"`.

    Returns:
        `(batch, out_height, out_width, channels)` samples in float32
        (float64 for float64 images).
    """
    dtype = tf.float64 if images.dtype == tf.float64 else tf.float32
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    flat = tf.cast(tf.reshape(images, [shape[0], height * width, shape[3]]),
                   dtype)
    rows, cols = tf.cast(rows, dtype), tf.cast(cols, dtype)
    row0, col0 = tf.floor(rows), tf.floor(cols)
    frac_r, frac_c = (rows - row0)[..., None], (cols - col0)[..., None]
    row0, col0 = tf.cast(row0, tf.int32), tf.cast(col0, tf.int32)
    outputs = 0.0
    for dr, weight_r in ((0, 1.0 - frac_r), (1, frac_r)):
        r, r_inside = _fill_index(row0 + dr, height, fill_mode)
        for dc, weight_c in ((0, 1.0 - frac_c), (1, frac_c)):
            c, c_inside = _fill_index(col0 + dc, width, fill_mode)
            values = tf.gather(flat, r * width + c, batch_dims=1)
            if fill_mode == "constant":
                values = tf.where((r_inside & c_inside)[..., None], values,
                                  tf.cast(fill_value, dtype))
            outputs = outputs + weight_r * weight_c * values
    return outputs


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
class LensDistortion(ImageAugmentation):
    """Random radial lens distortion with per-sample `k1`, `k2`.

    Output pixel at normalized radius `r` from the centre samples the input
    at radius `r (1 + k1 r^2 + k2 r^4)` (see `distortion_coordinates`;
    radius 1 is the corner), with bilinear interpolation done by gathers,
    vectorized over the batch. `k1 = k2 = 0` is exactly the identity.
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
        self.k1 = symmetric_range(k1, "k1")
        self.k2 = symmetric_range(k2, "k2")
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"`fill_mode` must be one of {_FILL_MODES}. "
                             f"Received: fill_mode={fill_mode!r}")
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_random_transformation(self, images, training=True):
        """Per-sample `{"k1": (batch,), "k2": (batch,)}` (zeros when not
        training) for a batch of images."""
        batch_size = tf.shape(images)[:1]
        if not training:
            return {"k1": tf.zeros(batch_size), "k2": tf.zeros(batch_size)}
        u = keras.random.uniform(tf.concat([batch_size, [2]], 0),
                                 dtype="float32", seed=self.seed_generator)
        (lo1, hi1), (lo2, hi2) = self.k1, self.k2
        return {"k1": lo1 + (hi1 - lo1) * u[:, 0],
                "k2": lo2 + (hi2 - lo2) * u[:, 1]}

    def transform_images(self, images, transformation):
        """Distorts `images` (one or a batch) with `transformation["k1"]`
        and `["k2"]` (shape `(batch,)`)."""
        batch, single = as_batch(check_images(images, "LensDistortion"))
        shape = tf.shape(batch)
        rows, cols = distortion_coordinates(
            shape[1], shape[2], transformation["k1"], transformation["k2"])
        outputs = bilinear_sample(batch, rows, cols, self.fill_mode,
                                  self.fill_value)
        outputs = tf.ensure_shape(tf.cast(outputs, batch.dtype), batch.shape)
        return restore(outputs, single)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"k1": self.k1, "k2": self.k2,
                       "fill_mode": self.fill_mode,
                       "fill_value": self.fill_value, "seed": self.seed})
        return config
