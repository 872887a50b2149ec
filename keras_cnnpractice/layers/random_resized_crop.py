"""Inception-style random-resized crop ("RandomResizedCrop")."""

import math

import keras
import tensorflow as tf

from keras_cnnpractice.layers._augment import ImageAugmentation
from keras_cnnpractice.layers._augment import as_batch
from keras_cnnpractice.layers._augment import check_images
from keras_cnnpractice.layers._augment import restore

_INTERPOLATIONS = ("bilinear", "nearest")
_ATTEMPTS = 10


def _positive_pair(value, name, upper=None):
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) for v in value)
            or not 0 < value[0] <= value[1]
            or (upper is not None and value[1] > upper)):
        bound = f" and hi <= {upper}" if upper is not None else ""
        raise ValueError(
            f"`{name}` must be a (lo, hi) pair with 0 < lo <= hi{bound}. "
            f"Received: {name}={value!r}")
    return (float(value[0]), float(value[1]))


def crop_boxes_to_normalized(boxes, height, width):
    """`[y0, x0, h, w]` pixel boxes to `tf.image.crop_and_resize` boxes.

    The box's corner pixel centres map to the output's corner pixel centres
    (rows `y0 .. y0 + h - 1` spread evenly over the output rows), so the
    resampling never reads outside the box.

    Args:
        boxes: `(batch, 4)` int or float `[y0, x0, h, w]` in pixels.
        height: image height.
        width: image width.

    Returns:
        `(batch, 4)` float32 `[y1, x1, y2, x2]` normalized by `height - 1`
        and `width - 1`.
    """
    boxes = tf.cast(boxes, tf.float32)
    y0, x0, h, w = tf.unstack(boxes, axis=1)
    hm1 = tf.cast(height, tf.float32) - 1.0
    wm1 = tf.cast(width, tf.float32) - 1.0
    return tf.stack([tf.math.divide_no_nan(y0, hm1),
                     tf.math.divide_no_nan(x0, wm1),
                     tf.math.divide_no_nan(y0 + h - 1.0, hm1),
                     tf.math.divide_no_nan(x0 + w - 1.0, wm1)], axis=1)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class RandomResizedCrop(ImageAugmentation):
    """Random crop of random area and aspect ratio, resized to a fixed size.

    Training (`training=True`, as in `fit`): per sample, draw 10 candidate
    boxes with an area fraction uniform in `scale` and an aspect ratio
    (width / height) log-uniform in `ratio`, rounded to whole pixels
    (`w = round(sqrt(A r))`, `h = round(sqrt(A / r))`) with a uniform
    position; take the first candidate that fits inside the image, else
    the largest central box whose ratio is clipped into `ratio` (the
    torchvision algorithm), all vectorized over the batch. Then one
    `tf.image.crop_and_resize` resamples every box to `(height, width)`;
    the box's corner pixel centres land on the output's corner pixel
    centres, so it differs from crop-then-`tf.image.resize` by under half
    an output pixel at the borders and never reads outside the box.

    Otherwise (inference): the largest central box with the output's
    aspect ratio `width / height`, resized the same way: the output shape
    is always `(height, width)`. As with Keras's own augmentation layers,
    `training` defaults to True, so a direct call (e.g. in a `tf.data` map)
    augments, while `predict`, `evaluate` and an exported model run the
    inference path. The dtype of the images is kept.

    The augmentation of Szegedy et al., "Going Deeper with Convolutions",
    2015 (GoogLeNet, section 6), as used to train ResNet (He et al., 2016)
    and most ImageNet models since.

    Args:
        height: output height in pixels.
        width: output width in pixels.
        scale: `(lo, hi)` range of the crop's area as a fraction of the
            image, `0 < lo <= hi <= 1`.
        ratio: `(lo, hi)` range of the crop's aspect ratio width / height,
            `0 < lo <= hi`, sampled uniformly in log space.
        interpolation: `"bilinear"` or `"nearest"`.
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(in_height, in_width, channels)` or
        `(batch, in_height, in_width, channels)`, float.

    Output shape:
        `(height, width, channels)` or `(batch, height, width, channels)`,
        same dtype as the input.
    """

    def __init__(self, height, width, scale=(0.08, 1.0),
                 ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="bilinear",
                 seed=None, **kwargs):
        kwargs.setdefault("autocast", False)  # keep the images' dtype
        super().__init__(**kwargs)
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) \
                    or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. "
                                 f"Received: {name}={value!r}")
        self.height = height
        self.width = width
        self.scale = _positive_pair(scale, "scale", upper=1.0)
        self.ratio = _positive_pair(ratio, "ratio")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {_INTERPOLATIONS}. "
                f"Received: interpolation={interpolation!r}")
        self.interpolation = interpolation
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False  # CropAndResize has no XLA kernel

    def get_random_transformation(self, images, training=True):
        """Per-sample crop boxes for a batch of images.

        Args:
            images: `(batch, height, width, channels)` images.
            training: random boxes when true, else the central box with the
                output's aspect ratio.

        Returns:
            `{"boxes": (batch, 4) int32 [y0, x0, h, w]}` in input pixels.
        """
        shape = tf.shape(images)
        batch_size, height, width = shape[0], shape[1], shape[2]
        h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)

        def centred(h, w):
            h = tf.clip_by_value(h, 1, height)
            w = tf.clip_by_value(w, 1, width)
            return tf.stack([(height - h) // 2, (width - w) // 2, h, w], -1)

        def round_int(x):
            return tf.cast(tf.floor(x + 0.5), tf.int32)

        if not training:
            target = self.width / self.height
            wide = w_f / h_f > target
            h = tf.where(wide, height, round_int(w_f / target))
            w = tf.where(wide, round_int(h_f * target), width)
            box = centred(h, w)
            return {"boxes": tf.tile(box[None], [batch_size, 1])}

        u = keras.random.uniform((batch_size, 4, _ATTEMPTS), dtype="float32",
                                 seed=self.seed_generator)
        (s_lo, s_hi), (r_lo, r_hi) = self.scale, self.ratio
        area = h_f * w_f * (s_lo + (s_hi - s_lo) * u[:, 0])
        log_lo, log_hi = math.log(r_lo), math.log(r_hi)
        aspect = tf.exp(log_lo + (log_hi - log_lo) * u[:, 1])
        w = round_int(tf.sqrt(area * aspect))
        h = round_int(tf.sqrt(area / aspect))
        valid = (w >= 1) & (h >= 1) & (w <= width) & (h <= height)
        y0 = tf.cast(tf.floor(u[:, 2] * tf.cast(height - h + 1, tf.float32)),
                     tf.int32)
        x0 = tf.cast(tf.floor(u[:, 3] * tf.cast(width - w + 1, tf.float32)),
                     tf.int32)
        y0 = tf.minimum(y0, height - h)  # u < 1, but guard float rounding
        x0 = tf.minimum(x0, width - w)
        candidates = tf.stack([y0, x0, h, w], -1)  # (batch, attempts, 4)
        first = tf.argmax(tf.cast(valid, tf.int32), axis=1, output_type=tf.int32)
        chosen = tf.gather(candidates, first, batch_dims=1)

        in_ratio = w_f / h_f
        h = tf.where(in_ratio < r_lo, round_int(w_f / r_lo), height)
        w = tf.where(in_ratio > r_hi, round_int(h_f * r_hi), width)
        fallback = centred(h, w)
        boxes = tf.where(tf.reduce_any(valid, axis=1)[:, None], chosen,
                         fallback[None])
        return {"boxes": boxes}

    def transform_images(self, images, transformation):
        """Crops `transformation["boxes"]` (`(batch, 4)` `[y0, x0, h, w]`
        pixels) out of `images` (one or a batch) and resizes each to
        `(height, width)` with one `tf.image.crop_and_resize`."""
        batch, single = as_batch(check_images(images, "RandomResizedCrop"))
        shape = tf.shape(batch)
        boxes = crop_boxes_to_normalized(transformation["boxes"], shape[1],
                                         shape[2])
        outputs = tf.image.crop_and_resize(
            batch, boxes, tf.range(shape[0]), (self.height, self.width),
            method=self.interpolation)
        outputs = tf.ensure_shape(
            tf.cast(outputs, batch.dtype),
            (batch.shape[0], self.height, self.width, batch.shape[3]))
        return restore(outputs, single)

    def passes_through(self, images, training):
        return False  # inference crops the central box

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-3], self.height, self.width,
                input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"height": self.height, "width": self.width,
                       "scale": self.scale, "ratio": self.ratio,
                       "interpolation": self.interpolation,
                       "seed": self.seed})
        return config
