"""Ready augmentation policies, each one `FusedAugment` (one resample and
one color transform per image)."""

import keras

from keras_cnnpractice.data.options import AUGMENTATION_POLICIES
from keras_cnnpractice.layers import FusedAugment
from keras_cnnpractice.layers import augment_steps as steps
from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVALUES
from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVECTORS


def augmentation_policy(name, seed=None, input_shape=None,
                        value_range=(0.0, 255.0), crop=None,
                        implementation="xla"):
    """Returns the batch augmentation called `name` as a Keras layer.

    * `digits`: one affine resample (`Affine`) with small rotations (+-10
      degrees), translations (+-10%) and zooms (+-10%), filled with black;
      no flips (a flipped 2 is not a 2), no color changes.
    * `natural` (RGB photos): ResNet's scale augmentation (`ScaleCrop`:
      short side to a random L in [256, 480] / 224 times the crop, then a
      random crop, of the image size unless `crop` is given: `crop=224` on
      256x256 images is ResNet's recipe) and a horizontal flip, as
      one resample; then brightness and contrast +-0.2 (Keras's
      `RandomColorJitter` meaning), saturation x[0.8, 1.2] and AlexNet's
      PCA lighting with the published ImageNet components, as one color
      matrix, and one clip to `value_range`.
    * `none`: the identity.

    Args:
        name: policy name.
        seed: seed of the random layers.
        input_shape: `(height, width, channels)` of the images; `natural`
            needs it (its crop is the image size) and needs 3 channels.
        value_range: `(low, high)` of the pixel values (color jitter and
            the scale of the PCA lighting).
        crop: `natural` only: the side of its square output (default: the
            images' short side).
        implementation: `"xla"` (runs anywhere, compiles in models with
            `jit_compile=True`) or `"op"` (the compiled CPU op: the fast
            path in a `tf.data` map); see `FusedAugment`.

    Returns:
        A Keras layer that accepts NHWC float or uint8 batches (uint8 give
        float32); usable inside a `tf.data` map or as the first layers of a
        model, `jit_compile=True` included (identity at inference;
        `natural` keeps the image size).

    Raises:
        ValueError: an unknown name, or `natural` without RGB images.
    """
    if name == "none":
        return keras.layers.Identity(name="augment_none")
    if name == "digits":
        return FusedAugment(
            [steps.Affine(rotation=10 / 360, translation=0.1, scale=0.1)],
            value_range=value_range, fill_mode="constant", fill_value=0.0,
            seed=seed, implementation=implementation, name="augment_digits")
    if name == "natural":
        if input_shape is None or input_shape[-1] != 3:
            raise ValueError("The 'natural' augmentation policy needs RGB "
                             "images (3 channels). Received: input_shape="
                             f"{input_shape}")
        size = crop or min(input_shape[0], input_shape[1])
        low, high = value_range
        return FusedAugment([
            steps.ScaleCrop(short_side=(round(size * 256 / 224),
                                        round(size * 480 / 224)), crop=size),
            steps.Flip("horizontal"),
            steps.Brightness(0.2),
            steps.Contrast(0.2),
            # Keras's saturation factor v means a multiplier v / (1 - v)
            # (0.5: unchanged): these bounds are multipliers 0.8 and 1.2.
            steps.Saturation((0.8 / 1.8, 1.2 / 2.2)),
            # The ImageNet components are for pixels in [0, 1].
            steps.Lighting(0.1, [v * (high - low)
                                 for v in IMAGENET_EIGENVALUES],
                           IMAGENET_EIGENVECTORS),
        ], value_range=value_range, fill_mode="nearest", seed=seed,
            implementation=implementation, name="augment_natural")
    raise ValueError(f"Unknown augmentation policy {name!r}; valid names: "
                     f"{', '.join(AUGMENTATION_POLICIES)}. Received: {name!r}")
