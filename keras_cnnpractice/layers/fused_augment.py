"""A whole augmentation policy as one resample and one color transform."""

import keras

from keras_cnnpractice.layers import augment_steps
from keras_cnnpractice.layers._augment import FusedImageAugmentation


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class FusedAugment(FusedImageAugmentation):
    """An ordered list of geometric and color augmentation steps, fused.

    The geometric steps (`ResizedCrop`, `ScaleCrop`, `Flip`, `Affine` of
    `keras_cnnpractice.layers.augment_steps`) are all maps from output to
    source pixel coordinates: per image they compose into one 3x3 matrix and
    the image is sampled once (bilinear or nearest), so a crop, a flip and a
    rotation cost one resample and blur once. The color steps (`Brightness`,
    `Contrast`, `Saturation`, `Hue`, `Lighting`) are affine maps of RGB:
    they compose into one 3x3 matrix plus offset per image, applied once,
    followed by one clip to `value_range`. Both passes run as one XLA
    computation (`implementation="xla"`: in a `tf.data` map or as the first
    layers of a model on an accelerator, `jit_compile=True` included) or as
    one compiled CPU op (`implementation="op"`: the fast path in a
    `tf.data` map; no XLA kernel).

    The draws keep the meaning of the Keras layers they replace (see each
    step): `Brightness`, `Contrast` as `keras.layers.RandomBrightness`,
    `RandomContrast`; `Saturation` and `Hue` draw as `RandomSaturation` and
    `RandomHue` but act as a mix with grayscale and a rotation about the
    gray axis (YIQ), which are affine in RGB; `Lighting` as `PCALighting`.
    Geometric steps run first, then color steps, whatever their order in
    the list (color acts per pixel, so this only differs from running them
    interleaved at the borders, where fill values are read).

    Takes images, or a dict `{"images", "labels", "bounding_boxes",
    "segmentation_masks"}` as Keras's own preprocessing layers do: boxes and
    masks follow the geometric steps (see `transform_bounding_boxes`,
    `transform_segmentation_masks`).

    Example:

    ```python
    from keras_cnnpractice.layers import FusedAugment
    from keras_cnnpractice.layers import augment_steps as steps

    augment = FusedAugment([
        steps.ResizedCrop(224, 224), steps.Flip("horizontal"),
        steps.Brightness(0.2), steps.Contrast(0.2),
        steps.Saturation((0.8 / 1.8, 1.2 / 2.2)), steps.Hue(0.05),
    ], value_range=(0, 255), seed=0)
    images = augment(uint8_batch)  # (batch, 224, 224, 3) float32
    ```

    Args:
        steps: a list of steps (or their `keras.saving` serializations).
        value_range: `(low, high)` of the pixel values: the scale of
            `Brightness` and the range of the final clip (uint8 inputs need
            `(0, 255)`).
        interpolation: `"bilinear"` or `"nearest"`.
        fill_mode: `"reflect"`, `"wrap"`, `"constant"` or `"nearest"`.
        fill_value: the value for `fill_mode="constant"`.
        clip: whether to clip to `value_range` after the color steps.
        bounding_box_format: Keras's name of the box format of
            `"bounding_boxes"` inputs (e.g. `"xyxy"`).
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        implementation: `"xla"` (default) or `"op"`, as above.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(height, width, channels)` or `(batch, height, width, channels)`,
        float or uint8; 3 channels when there are color steps.

    Output shape:
        The last geometric step's size (the input's when none changes it),
        same channels; float images keep their dtype, uint8 images come out
        in the compute dtype (float32).
    """

    def __init__(self, steps, value_range=(0.0, 255.0),
                 interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, clip=True, bounding_box_format=None,
                 seed=None, **kwargs):
        if not isinstance(steps, (list, tuple)) or not steps:
            raise ValueError("`steps` must be a non-empty list of "
                             f"augmentation steps. Received: steps={steps!r}")
        super().__init__([augment_steps.get(s) for s in steps],
                         value_range=value_range, interpolation=interpolation,
                         fill_mode=fill_mode, fill_value=fill_value,
                         clip=clip, bounding_box_format=bounding_box_format,
                         seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["steps"] = [keras.saving.serialize_keras_object(step)
                           for step in self.steps]
        return config
