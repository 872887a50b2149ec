"""ResNet / VGG scale augmentation: random short-side resize, then crop."""

import keras
import tensorflow as tf

from keras_cnnpractice.layers._augment import ImageAugmentation
from keras_cnnpractice.layers._augment import as_batch
from keras_cnnpractice.layers._augment import check_images
from keras_cnnpractice.layers._augment import restore


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def resized_shape(height, width, short_side):
    """`(resized_height, resized_width)` int32 for a short side of
    `short_side` pixels: the long side is `round(long * short_side /
    short)` (halves round up), per sample when `short_side` is a vector."""
    short_side = tf.cast(short_side, tf.int32)
    h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    s_f = tf.cast(short_side, tf.float32)
    portrait = height > width
    long_side = tf.cast(tf.floor(
        tf.where(portrait, h_f * s_f / w_f, w_f * s_f / h_f) + 0.5), tf.int32)
    return (tf.where(portrait, long_side, short_side),
            tf.where(portrait, short_side, long_side))


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class ScaleAugment(ImageAugmentation):
    """Scale augmentation: short side resized to a random L, random crop.

    Training (`training=True`, as in `fit`): per sample, the short side is
    resized to an integer `L` drawn uniformly from `short_side` (both ends
    included; the long side keeps the aspect ratio, rounded), then a
    uniformly placed `crop x crop` window is cut out. Each image is not
    resized on its own: for every sample the crop window is mapped back to
    the source image (output pixel `i` of a window at offset `o` of the
    resized image sits at source coordinate `(o + i + 0.5) * in / resized
    - 0.5`, the half-pixel convention of `tf.image.resize`), and one
    `tf.image.crop_and_resize` samples all windows at once. The image is
    padded by one edge-replicated pixel first, so samples that
    `tf.image.resize` would clamp to the border (within half a pixel of it,
    when upsampling) read the border pixel instead of `crop_and_resize`'s
    extrapolation value: the result equals `tf.image.resize(image,
    resized_shape, "bilinear")` followed by slicing, up to float rounding
    (no antialiasing when downsampling, like `tf.image.resize`'s default).

    Otherwise (inference): images that are already `crop x crop` pass
    through unchanged (the layer sits in front of a model that takes that
    size); others get the standard single-crop evaluation, short side
    resized to `short_side[0]`, then the central `crop x crop` window.
    As with Keras's own augmentation layers, `training` defaults to True, so
    a direct call (e.g. in a `tf.data` map) augments, while `predict`,
    `evaluate` and an exported model run the inference path. The dtype of
    the images is kept.

    From Simonyan & Zisserman, "Very Deep Convolutional Networks for
    Large-Scale Image Recognition", 2015 (scale jittering, S in
    [256, 512]) and He et al., "Deep Residual Learning for Image
    Recognition", 2016 (section 3.4: short side in [256, 480], 224 crop).

    Args:
        short_side: an int `L`, or an `(lo, hi)` pair of ints with
            `1 <= lo <= hi`: the range of the resized short side.
        crop: the side of the square crop, `1 <= crop <= short_side[0]`.
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(height, width, channels)` or `(batch, height, width, channels)`,
        float, any size (all images of a batch share it).

    Output shape:
        `(crop, crop, channels)` or `(batch, crop, crop, channels)`, same
        dtype as the input.
    """

    def __init__(self, short_side=(256, 480), crop=224, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)  # keep the images' dtype
        super().__init__(**kwargs)
        if _is_int(short_side):
            short_side = (short_side, short_side)
        if (not isinstance(short_side, (tuple, list)) or len(short_side) != 2
                or not all(_is_int(v) for v in short_side)
                or not 1 <= short_side[0] <= short_side[1]):
            raise ValueError(
                "`short_side` must be a positive int or a (lo, hi) pair of "
                f"ints with 1 <= lo <= hi. Received: short_side={short_side!r}")
        if not _is_int(crop) or crop < 1:
            raise ValueError(
                f"`crop` must be a positive int. Received: crop={crop!r}")
        if crop > short_side[0]:
            raise ValueError(
                "`crop` cannot be larger than the smallest resized short "
                f"side short_side[0]={short_side[0]}: the crop would not fit "
                f"in the resized image. Received: crop={crop}")
        self.short_side = tuple(short_side)
        self.crop = crop
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False  # CropAndResize has no XLA kernel

    def get_random_transformation(self, images, training=True):
        """Per-sample short sides and crop offsets for a batch of images.

        Args:
            images: `(batch, height, width, channels)` images.
            training: random when true, else `short_side[0]` and the
                central window.

        Returns:
            A dict of `(batch,)` int32 tensors: `"short_side"` (L) and
            `"offset_y"`, `"offset_x"`, the window's top-left corner in the
            resized image.
        """
        shape = tf.shape(images)
        batch_size = shape[0]
        lo, hi = self.short_side
        if training:
            u = keras.random.uniform((batch_size, 3), dtype="float32",
                                     seed=self.seed_generator)
            short = tf.minimum(lo + tf.cast(tf.floor(
                u[:, 0] * (hi - lo + 1)), tf.int32), hi)
        else:
            short = tf.fill([batch_size], lo)
        resized_h, resized_w = resized_shape(shape[1], shape[2], short)
        room_y, room_x = resized_h - self.crop, resized_w - self.crop
        if training:
            offset_y = tf.cast(tf.floor(
                u[:, 1] * tf.cast(room_y + 1, tf.float32)), tf.int32)
            offset_x = tf.cast(tf.floor(
                u[:, 2] * tf.cast(room_x + 1, tf.float32)), tf.int32)
            offset_y = tf.minimum(offset_y, room_y)
            offset_x = tf.minimum(offset_x, room_x)
        else:
            offset_y, offset_x = room_y // 2, room_x // 2
        return {"short_side": short, "offset_y": offset_y,
                "offset_x": offset_x}

    def transform_images(self, images, transformation):
        """Resize-then-crop of `images` (one or a batch) with the per-sample
        `transformation` of `get_random_transformation`, as one
        `tf.image.crop_and_resize`."""
        batch, single = as_batch(check_images(images, "ScaleAugment"))
        shape = tf.shape(batch)
        height, width = shape[1], shape[2]
        resized_h, resized_w = resized_shape(
            height, width, transformation["short_side"])

        def span(offset, resized, size):
            # Source coordinates of the window's first and last pixel, +1
            # for the padding, normalized by the padded size - 1 (= size + 1).
            step = tf.cast(size, tf.float32) / tf.cast(resized, tf.float32)
            first = (tf.cast(offset, tf.float32) + 0.5) * step - 0.5 + 1.0
            last = first + (self.crop - 1) * step
            norm = tf.cast(size, tf.float32) + 1.0
            return first / norm, last / norm

        y1, y2 = span(transformation["offset_y"], resized_h, height)
        x1, x2 = span(transformation["offset_x"], resized_w, width)
        padded = tf.pad(batch, [[0, 0], [1, 1], [1, 1], [0, 0]],
                        mode="SYMMETRIC")
        outputs = tf.image.crop_and_resize(
            padded, tf.stack([y1, x1, y2, x2], axis=1), tf.range(shape[0]),
            (self.crop, self.crop), method="bilinear")
        outputs = tf.ensure_shape(
            tf.cast(outputs, batch.dtype),
            (batch.shape[0], self.crop, self.crop, batch.shape[3]))
        return restore(outputs, single)

    def passes_through(self, images, training):
        # At inference, images that already have the crop size.
        return not training and tuple(images.shape[-3:-1]) == (self.crop,
                                                               self.crop)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-3], self.crop, self.crop,
                input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"short_side": self.short_side, "crop": self.crop,
                       "seed": self.seed})
        return config
