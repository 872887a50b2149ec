"""A random affine augmentation fused into one matrix and one resample."""

import keras

from keras_cnnpractice.layers._augment import FusedImageAugmentation
from keras_cnnpractice.layers.augment_steps import Affine


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class RandomAffine(FusedImageAugmentation):
    """Random rotation, shear, zoom, aspect, translation and flip, fused.

    Every geometric part is drawn per sample, composed into one 3x3 matrix
    (see `augment_steps.affine_matrices` for the exact convention, which is
    `ImageProjectiveTransformV3`'s) and applied with a single resample, so
    the image is interpolated once instead of once per Keras layer
    (`RandomZoom`, `RandomShear`, `RandomRotation` and `RandomTranslation`
    chained resample four times, blurring more and filling more borders).
    The resample is gathers in one XLA computation, so the layer also
    compiles inside a `jit_compile=True` model. Affine distortions as in
    Simard et al., "Best Practices for Convolutional Neural Networks
    Applied to Visual Document Analysis", 2003; flips and translations as
    in Krizhevsky et al., "ImageNet Classification with Deep Convolutional
    Neural Networks", 2012.

    Identity at inference (`training=False`: `predict`, `evaluate`, an
    exported model); as with Keras's own augmentation layers, `training`
    defaults to True, so a direct call (e.g. in a `tf.data` map) augments.

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
        bounding_box_format: Keras's box format of `"bounding_boxes"`.
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(height, width, channels)` or `(batch, height, width, channels)`,
        float or uint8.

    Output shape:
        Same as the input; float images keep their dtype, uint8 ones become
        float32.
    """

    def __init__(self, rotation=0.0, shear=0.0, scale=0.0, aspect=0.0,
                 translation=0.0, flip=False, fill_mode="reflect",
                 interpolation="bilinear", fill_value=0.0,
                 bounding_box_format=None, seed=None, **kwargs):
        step = Affine(rotation=rotation, shear=shear, scale=scale,
                      aspect=aspect, translation=translation, flip=flip)
        super().__init__([step], interpolation=interpolation,
                         fill_mode=fill_mode, fill_value=fill_value,
                         bounding_box_format=bounding_box_format, seed=seed,
                         **kwargs)
        self.affine = step

    def get_config(self):
        config = super().get_config()
        for key in ("value_range", "clip"):
            del config[key]
        config.update(self.affine.get_config())
        return config
