"""Inception-style random-resized crop ("RandomResizedCrop")."""

import keras

from keras_cnnpractice.layers._augment import FusedImageAugmentation
from keras_cnnpractice.layers.augment_steps import ResizedCrop


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class RandomResizedCrop(FusedImageAugmentation):
    """Random crop of random area and aspect ratio, resized to a fixed size.

    Training (`training=True`, as in `fit`): per sample, draw 10 candidate
    boxes with an area fraction uniform in `scale` and an aspect ratio
    (width / height) log-uniform in `ratio`, rounded to whole pixels
    (`w = round(sqrt(A r))`, `h = round(sqrt(A / r))`) with a uniform
    position; take the first candidate that fits inside the image, else
    the largest central box whose ratio is clipped into `ratio` (the
    torchvision algorithm), all vectorized over the batch. The box's
    corner pixel centres land on the output's corner pixel centres (as
    `tf.image.crop_and_resize`), so it differs from crop-then-
    `tf.image.resize` by under half an output pixel at the borders and
    never reads outside the box. The box is one matrix of the fused
    machinery (`augment_steps.ResizedCrop`), sampled once in XLA.

    Otherwise (inference): the largest central box with the output's
    aspect ratio `width / height`, resized the same way: the output shape
    is always `(height, width)`. As with Keras's own augmentation layers,
    `training` defaults to True, so a direct call (e.g. in a `tf.data` map)
    augments, while `predict`, `evaluate` and an exported model run the
    inference path. Takes `{"images", "bounding_boxes",
    "segmentation_masks"}` dicts too (pass `bounding_box_format`).

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
        bounding_box_format: Keras's box format of `"bounding_boxes"`.
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(in_height, in_width, channels)` or
        `(batch, in_height, in_width, channels)`, float or uint8.

    Output shape:
        `(height, width, channels)` or `(batch, height, width, channels)`;
        float images keep their dtype, uint8 ones become float32.
    """

    def __init__(self, height, width, scale=(0.08, 1.0),
                 ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="bilinear",
                 bounding_box_format=None, seed=None, **kwargs):
        step = ResizedCrop(height, width, scale=scale, ratio=ratio)
        super().__init__([step], interpolation=interpolation,
                         fill_mode="nearest",
                         bounding_box_format=bounding_box_format, seed=seed,
                         **kwargs)
        self.height, self.width = step.height, step.width
        self.scale, self.ratio = step.scale, step.ratio

    def get_config(self):
        config = super().get_config()
        for key in ("value_range", "fill_mode", "fill_value", "clip"):
            del config[key]
        config.update({"height": self.height, "width": self.width,
                       "scale": self.scale, "ratio": self.ratio})
        return config
