"""What the augmentation layers share: input checks, ranges, batching and
the symbolic output spec."""

import math
import numbers

import keras
import tensorflow as tf


def check_images(images, layer_name):
    """`images` as a float tensor of rank 3 (one HWC image) or 4 (NHWC).

    Raises:
        ValueError: a non-float dtype or another rank, naming the layer.
    """
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(
            f"{layer_name} needs float images (cast integer pixels first, "
            f"e.g. with tf.cast or keras.layers.Rescaling). Received: "
            f"dtype={images.dtype.name}")
    if images.shape.rank not in (3, 4):
        raise ValueError(
            f"{layer_name} needs images of rank 3 (height, width, channels) "
            f"or 4 (batch, height, width, channels). Received: "
            f"shape={images.shape}")
    return images


def as_batch(images):
    """`(batch, single)`: rank-4 images, and whether a batch axis was added
    (pass `single` to `restore` to remove it again)."""
    single = images.shape.rank == 3
    return (images[None] if single else images), single


def restore(images, single):
    """Undoes `as_batch`."""
    return images[0] if single else images


def symmetric_range(value, name):
    """`value` as a `(lo, hi)` pair of floats: a number `f >= 0` means
    `(-f, f)`; a pair must have `lo <= hi`. Raises ValueError naming `name`."""
    def is_number(v):
        return (isinstance(v, numbers.Real) and not isinstance(v, bool)
                and math.isfinite(v))

    if is_number(value):
        if value < 0:
            raise ValueError(
                f"`{name}` must be a non-negative number f (meaning the range "
                f"[-f, f]) or a (lo, hi) pair. Received: {name}={value!r}")
        return (-float(value), float(value))
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(is_number(v) for v in value)):
        if value[0] > value[1]:
            raise ValueError(
                f"`{name}` as a (lo, hi) pair needs lo <= hi. "
                f"Received: {name}={value!r}")
        return (float(value[0]), float(value[1]))
    raise ValueError(
        f"`{name}` must be a finite number or a (lo, hi) pair of finite "
        f"numbers. Received: {name}={value!r}")


class ImageAugmentation(keras.layers.Layer):
    """Base of the geometric augmentation layers: `call` checks the images,
    draws a transformation per sample (`get_random_transformation`) and
    applies it (`transform_images`); symbolic inputs are checked with
    `check_images`' messages, and the output keeps the input dtype (Keras's
    default spec would say the compute dtype)."""

    def passes_through(self, images, training):
        """True where the images are returned unchanged (default: at
        inference)."""
        return not training

    def call(self, inputs, training=True):
        images = check_images(inputs, type(self).__name__)
        if self.passes_through(images, training):
            return images
        batch, single = as_batch(images)
        transformation = self.get_random_transformation(
            batch, training=bool(training))
        return restore(self.transform_images(batch, transformation), single)

    def compute_output_spec(self, inputs, training=True):
        check_images(tf.zeros((1,) * len(inputs.shape), inputs.dtype),
                     type(self).__name__)
        return keras.KerasTensor(self.compute_output_shape(inputs.shape),
                                 dtype=inputs.dtype)
