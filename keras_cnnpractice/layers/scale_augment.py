"""ResNet / VGG scale augmentation: random short-side resize, then crop."""

import keras

from keras_cnnpractice.layers._augment import FusedImageAugmentation
from keras_cnnpractice.layers.augment_steps import ScaleCrop


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class ScaleAugment(FusedImageAugmentation):
    """Scale augmentation: short side resized to a random L, random crop.

    Training (`training=True`, as in `fit`): per sample, the short side is
    resized to an integer `L` drawn uniformly from `short_side` (both ends
    included; the long side keeps the aspect ratio, rounded), then a
    uniformly placed `crop x crop` window is cut out. Nothing is resized:
    the window is mapped back to the source image (output pixel `i` of a
    window at offset `o` of the resized image sits at source coordinate
    `(o + i + 0.5) * in / resized - 0.5`, the half-pixel convention of
    `tf.image.resize`) and sampled once (`augment_steps.ScaleCrop`), with
    the border pixel read where `tf.image.resize` would clamp: the result
    equals `tf.image.resize(image, resized_shape, "bilinear")` followed by
    slicing, up to float rounding (no antialiasing when downsampling, like
    `tf.image.resize`'s default), at the cost of the crop only.

    Otherwise (inference): images that are already `crop x crop` pass
    through unchanged (the layer sits in front of a model that takes that
    size); others get the standard single-crop evaluation, short side
    resized to `short_side[0]`, then the central `crop x crop` window.
    As with Keras's own augmentation layers, `training` defaults to True, so
    a direct call (e.g. in a `tf.data` map) augments, while `predict`,
    `evaluate` and an exported model run the inference path.

    From Simonyan & Zisserman, "Very Deep Convolutional Networks for
    Large-Scale Image Recognition", 2015 (scale jittering, S in
    [256, 512]) and He et al., "Deep Residual Learning for Image
    Recognition", 2016 (section 3.4: short side in [256, 480], 224 crop).

    Args:
        short_side: an int `L`, or an `(lo, hi)` pair of ints with
            `1 <= lo <= hi`: the range of the resized short side.
        crop: the side of the square crop, `1 <= crop <= short_side[0]`.
        bounding_box_format: Keras's box format of `"bounding_boxes"`.
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(height, width, channels)` or `(batch, height, width, channels)`,
        float or uint8, any size (all images of a batch share it).

    Output shape:
        `(crop, crop, channels)` or `(batch, crop, crop, channels)`; float
        images keep their dtype, uint8 ones become float32.
    """

    def __init__(self, short_side=(256, 480), crop=224,
                 bounding_box_format=None, seed=None, **kwargs):
        step = ScaleCrop(short_side, crop)
        super().__init__([step], fill_mode="nearest",
                         bounding_box_format=bounding_box_format, seed=seed,
                         **kwargs)
        self.short_side, self.crop = step.short_side, step.crop

    def get_config(self):
        config = super().get_config()
        for key in ("value_range", "interpolation", "fill_mode",
                    "fill_value", "clip"):
            del config[key]
        config.update({"short_side": self.short_side, "crop": self.crop})
        return config
