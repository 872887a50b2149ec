"""A random affine augmentation fused into one matrix and one resample."""

import math

import keras
import tensorflow as tf

from keras_cnnpractice.layers._augment import ImageAugmentation
from keras_cnnpractice.layers._augment import as_batch
from keras_cnnpractice.layers._augment import check_images
from keras_cnnpractice.layers._augment import restore
from keras_cnnpractice.layers._augment import symmetric_range

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


def _matrix(a0, a1, a2, b0, b1, b2):
    """Rows `[a0 a1 a2], [b0 b1 b2], [0 0 1]` stacked over the batch."""
    zero, one = tf.zeros_like(a0), tf.ones_like(a0)
    return tf.stack([tf.stack([a0, a1, a2], -1),
                     tf.stack([b0, b1, b2], -1),
                     tf.stack([zero, zero, one], -1)], -2)


def affine_matrices(height, width, rotation=0.0, shear=0.0, scale=0.0,
                    aspect=0.0, translation_x=0.0, translation_y=0.0,
                    flip=False):
    """The output-to-input matrices of `RandomAffine` for given parameters.

    Coordinates are pixel indices `(x, y)` = (column, row), pixel centres at
    integers, as `ImageProjectiveTransformV3` (and so Keras's own
    `affine_transform`) reads them: a matrix `M` makes output pixel `(x, y)`
    sample the input at `M @ [x, y, 1]`. With the centre
    `c = ((width - 1) / 2, (height - 1) / 2)` and, about `c`,

        F = diag(-1 if flip else 1, 1)        horizontal flip
        Z = diag((1 + scale) * exp(aspect / 2), (1 + scale) * exp(-aspect / 2))
        S = [[1, shear], [0, 1]]              horizontal shear
        R = [[cos t, -sin t], [sin t, cos t]], t = 2 * pi * rotation
        T = shift by -(translation_x * width, translation_y * height)

    the matrix is `M = C F Z S R T C^-1` (`C` moves the origin to `c`). In
    output-to-input form the image-space steps read left to right in the
    order they act on the image: flip, zoom, shear, rotate, then translate
    (so the shift is in output pixels, unaffected by the rotation). Each
    part follows its Keras layer: `R` is `keras.layers.RandomRotation`'s
    matrix for `factor=rotation`, `Z` is `keras.layers.RandomZoom`'s for
    `height_factor=width_factor=scale` (positive zooms out), `S` is
    `keras.layers.RandomShear`'s x shear but about the centre instead of
    the top-left corner, `T` is `keras.layers.RandomTranslation`'s (positive
    moves the content right/down).

    Args:
        height: image height in pixels (int or scalar tensor).
        width: image width in pixels.
        rotation: rotation as a fraction of a full turn, shape `()` or
            `(batch,)` like every parameter below; they broadcast together.
        shear: horizontal shear coefficient (`x_in += shear * y_out`).
        scale: zoom: sampling step `1 + scale`, positive zooms out.
        aspect: log of the ratio of the horizontal to the vertical sampling
            step; positive squeezes the content horizontally.
        translation_x: shift right as a fraction of the width.
        translation_y: shift down as a fraction of the height.
        flip: whether to flip horizontally (bool or 0/1).

    Returns:
        A float32 tensor of shape `broadcast_shape + (3, 3)`.
    """
    params = [tf.cast(p, tf.float32) for p in (
        rotation, shear, scale, aspect, translation_x, translation_y, flip)]
    zero = 0.0
    for p in params:
        zero = zero + p * 0.0  # zeros of the broadcast shape
    rotation, shear, scale, aspect, tx, ty, flip = [p + zero for p in params]
    one = zero + 1.0
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0 + zero
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0 + zero
    theta = 2.0 * math.pi * rotation
    cos, sin = tf.cos(theta), tf.sin(theta)
    zoom_x = (1.0 + scale) * tf.exp(aspect / 2.0)
    zoom_y = (1.0 + scale) * tf.exp(-aspect / 2.0)
    parts = [
        _matrix(one, zero, cx, zero, one, cy),                    # C
        _matrix(1.0 - 2.0 * flip, zero, zero, zero, one, zero),   # F
        _matrix(zoom_x, zero, zero, zero, zoom_y, zero),          # Z
        _matrix(one, shear, zero, zero, one, zero),               # S
        _matrix(cos, -sin, zero, sin, cos, zero),                 # R
        _matrix(one, zero, -tx * tf.cast(width, tf.float32),
                zero, one, -ty * tf.cast(height, tf.float32)),    # T
        _matrix(one, zero, -cx, zero, one, -cy),                  # C^-1
    ]
    matrices = parts[0]
    for part in parts[1:]:
        matrices = tf.linalg.matmul(matrices, part)
    return matrices


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class RandomAffine(ImageAugmentation):
    """Random rotation, shear, zoom, aspect, translation and flip, fused.

    Every geometric part is drawn per sample, composed into one 3x3 matrix
    (see `affine_matrices` for the exact convention) and applied with a
    single `ImageProjectiveTransformV3` resample, so the image is
    interpolated once instead of once per Keras layer (`RandomZoom`,
    `RandomShear`, `RandomRotation` and `RandomTranslation` chained
    resample four times, blurring more and filling more borders). Affine
    distortions as in Simard et al., "Best Practices for Convolutional
    Neural Networks Applied to Visual Document Analysis", 2003; flips and
    translations as in Krizhevsky et al., "ImageNet Classification with
    Deep Convolutional Neural Networks", 2012.

    Identity at inference (`training=False`: `predict`, `evaluate`, an
    exported model); as with Keras's own augmentation layers, `training`
    defaults to True, so a direct call (e.g. in a `tf.data` map) augments.
    The dtype of the images is kept.

    Each range argument takes a number `f >= 0`, meaning `[-f, f]`, or a
    `(lo, hi)` pair; values are drawn uniformly per sample.

    Args:
        rotation: rotation as a fraction of a full turn (0.1 = up to 36
            degrees), as `keras.layers.RandomRotation`'s `factor`.
        shear: horizontal shear coefficient, as `keras.layers.RandomShear`'s
            `x_factor` (the input x moves by `shear` pixels per row from the
            centre). Rotation + shear + scale + aspect (+ flip) reach every
            2x2 linear map, so there is no separate vertical shear.
        scale: zoom as `keras.layers.RandomZoom`'s factor: the sampling step
            is `1 + scale`; positive zooms out. Must stay above -1.
        aspect: log of the horizontal over the vertical sampling step,
            split evenly between the axes (area kept); positive squeezes
            the content horizontally.
        translation: shift as a fraction of the width (x) and height (y),
            drawn independently for the two axes, as
            `keras.layers.RandomTranslation`; within [-1, 1].
        flip: whether to also flip horizontally with probability 0.5.
        fill_mode: `"reflect"`, `"wrap"`, `"constant"` or `"nearest"`, how
            points outside the input are filled (as in Keras).
        interpolation: `"bilinear"` or `"nearest"`.
        fill_value: the value for `fill_mode="constant"`.
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(height, width, channels)` or `(batch, height, width, channels)`,
        float.

    Output shape:
        Same as the input, same dtype.
    """

    def __init__(self, rotation=0.0, shear=0.0, scale=0.0, aspect=0.0,
                 translation=0.0, flip=False, fill_mode="reflect",
                 interpolation="bilinear", fill_value=0.0, seed=None,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # keep the images' dtype
        super().__init__(**kwargs)
        self.rotation = symmetric_range(rotation, "rotation")
        self.shear = symmetric_range(shear, "shear")
        self.scale = symmetric_range(scale, "scale")
        if self.scale[0] <= -1.0:
            raise ValueError(
                "`scale` must stay above -1 (a zoom step of 1 + scale > 0). "
                f"Received: scale={scale!r}")
        self.aspect = symmetric_range(aspect, "aspect")
        self.translation = symmetric_range(translation, "translation")
        if self.translation[0] < -1.0 or self.translation[1] > 1.0:
            raise ValueError(
                "`translation` must lie within [-1, 1] (a fraction of the "
                f"image size). Received: translation={translation!r}")
        if not isinstance(flip, bool):
            raise ValueError(f"`flip` must be a bool. Received: flip={flip!r}")
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"`fill_mode` must be one of {_FILL_MODES}. "
                             f"Received: fill_mode={fill_mode!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {_INTERPOLATIONS}. "
                f"Received: interpolation={interpolation!r}")
        self.flip = flip
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = float(fill_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False  # ImageProjectiveTransformV3 has no XLA kernel

    def get_random_transformation(self, images, training=True):
        """Per-sample parameters and matrices for a batch of images.

        Args:
            images: `(batch, height, width, channels)` images.
            training: when false, identity matrices.

        Returns:
            A dict with the drawn parameters (each of shape `(batch,)`, as
            taken by `affine_matrices`) and `"matrices"`, `(batch, 3, 3)`.
        """
        shape = tf.shape(images)
        names = ("rotation", "shear", "scale", "aspect", "translation_x",
                 "translation_y")
        ranges = (self.rotation, self.shear, self.scale, self.aspect,
                  self.translation, self.translation)
        if training:
            u = keras.random.uniform((shape[0], 7), dtype="float32",
                                     seed=self.seed_generator)
            params = {name: lo + (hi - lo) * u[:, i]
                      for i, (name, (lo, hi)) in enumerate(zip(names, ranges))}
            params["flip"] = u[:, 6] < 0.5 if self.flip else u[:, 6] > 1.0
        else:
            zeros = tf.zeros(shape[:1])
            params = {name: zeros for name in names}
            params["flip"] = zeros > 0.0
        params["matrices"] = affine_matrices(shape[1], shape[2], **params)
        return params

    def transform_images(self, images, transformation):
        """Resamples `images` once with `transformation["matrices"]`.

        Args:
            images: one image or a batch, float.
            transformation: a dict with `"matrices"`, output-to-input
                `(batch, 3, 3)` or `(3, 3)` matrices (as from
                `affine_matrices`).

        Returns:
            The transformed images, same shape and dtype.
        """
        batch, single = as_batch(check_images(images, "RandomAffine"))
        matrices = tf.cast(transformation["matrices"], tf.float32)
        matrices = tf.reshape(matrices, [-1, 9])
        matrices = matrices[:, :8] / matrices[:, 8:]
        outputs = tf.raw_ops.ImageProjectiveTransformV3(
            images=batch, transforms=matrices,
            output_shape=tf.shape(batch)[1:3],
            fill_value=tf.constant(self.fill_value, tf.float32),
            interpolation=self.interpolation.upper(),
            fill_mode=self.fill_mode.upper())
        return restore(tf.ensure_shape(outputs, batch.shape), single)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "rotation": self.rotation, "shear": self.shear,
            "scale": self.scale, "aspect": self.aspect,
            "translation": self.translation, "flip": self.flip,
            "fill_mode": self.fill_mode, "interpolation": self.interpolation,
            "fill_value": self.fill_value, "seed": self.seed})
        return config
