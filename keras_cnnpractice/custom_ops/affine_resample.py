"""`affine_resample`: the fused augmentation pass as one compiled CPU op.

`KerasCnnPractice>AffineResample` samples each image once through its
output-to-source matrix (bilinear or nearest, with the fill modes of
`ImageProjectiveTransformV3`), then applies one per-image color map and one
clip, image by image on the CPU's threads: the resampled image is still in
the core's cache when its color map (and the per-channel mean that contrast
needs) is applied. Crops, resizes and flips (matrices without rotation or
shear) take a separable path that computes each column's taps once.

Its reference is `keras_cnnpractice.layers._resample.resample_and_color`,
the same computation in TensorFlow ops, which XLA compiles (a custom op has
no XLA kernel): the fused augmentation layers use that path inside models
and this op where they run in a `tf.data` map (`implementation="op"`).
"""

import tensorflow as tf

from keras_cnnpractice.custom_ops import _loader

OP_NAME = "KerasCnnPractice>AffineResample"
tf.no_gradient(OP_NAME)


def affine_resample(images, matrices, height, width, interpolation="bilinear",
                    fill_mode="reflect", fill_value=0.0, color=None, clip=None,
                    name=None):
    """Resamples, recolors and clips a batch of images in one pass.

    Output pixel `(y, x)` of image `b` is `images[b]` sampled at
    `(v / w, u / w)`, `(u, v, w) = matrices[b] @ (x, y, 1)`; then, with
    `color = (A, c, W)`, each RGB pixel `p` becomes
    `A[b] @ p + c[b] + W[b] @ m`, `m` the image's per-channel mean after
    sampling (what contrast needs), and `clip = (low, high)` clamps.

    Args:
        images: uint8 or float32 `(batch, in_height, in_width, channels)`.
        matrices: float32 `(batch, 3, 3)` output-to-source matrices.
        height: output height (a Python int >= 1).
        width: output width (a Python int >= 1).
        interpolation: `"bilinear"` or `"nearest"`.
        fill_mode: `"reflect"`, `"wrap"`, `"nearest"` or `"constant"`.
        fill_value: the value of `"constant"`.
        color: None, or `(A, c, W)`: float32 `(batch, 3, 3)`, `(batch, 3)`
            and `(batch, 3, 3)` (3 channels only).
        clip: None or `(low, high)`.
        name: optional op name.

    Returns:
        float32 `(batch, height, width, channels)`.

    Raises:
        tf.errors.InvalidArgumentError: bad shapes, sizes or attributes.
    """
    lib = _loader.load_op_library()
    with tf.name_scope(name or "affine_resample"):
        images = tf.convert_to_tensor(images)
        matrices = tf.cast(matrices, tf.float32)
        if color is None:
            empty = tf.zeros([0], tf.float32)
            color_inputs = (empty, empty, empty)
        else:
            color_inputs = tuple(tf.cast(t, tf.float32) for t in color)
        return lib.keras_cnn_practice_affine_resample(
            images, matrices, *color_inputs, height=int(height),
            width=int(width), interpolation=interpolation,
            fill_mode=fill_mode, fill_value=float(fill_value),
            color=color is not None,
            clip=[] if clip is None else [float(clip[0]), float(clip[1])])
