"""One resample and one color transform per image: the sampling and color
machinery every augmentation layer of this package shares.

Geometry. Coordinates are pixel centres at integers, `x` the column and `y`
the row, as `tf.raw_ops.ImageProjectiveTransformV3` reads them. A geometric
transformation is an output-to-source 3x3 matrix per image: output pixel
`(x, y)` reads the source at `M @ [x, y, 1]`. Steps compose by matrix
product (`M = M_1 @ M_2 @ ... @ M_k` for steps 1..k applied in that order to
the image), so any chain of crops, scalings, flips and affine maps is one
matrix and one resample.

Color. A color transformation is an affine map of RGB values per image,
`rgb -> A @ rgb + b` with `A` of shape `(3, 3)` and `b` of shape `(3,)`; steps
compose into one `(A, b)`, applied once, followed by one clip.

Two implementations of the same pass, chosen by the layer
(`implementation=`):

* `"xla"`: gathers and index arithmetic only (no
  `ImageProjectiveTransformV3` or `CropAndResize`, which have no XLA
  kernel) inside a `tf.function(jit_compile=True)`, so it runs in a
  `tf.data` map, in a model on an accelerator, and inlines into a model
  compiled with `jit_compile=True`. XLA's CPU backend writes the grid, the
  indices and the sampled image to memory between its fusions.
* `"op"`: `custom_ops.affine_resample`, one compiled CPU pass per image
  (no XLA kernel: for `tf.data` maps and models run without XLA).
"""

import functools

import tensorflow as tf

from keras_cnnpractice.custom_ops.affine_resample import affine_resample

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def broadcast(*values):
    """`values` as float32 tensors of their common broadcast shape."""
    values = [tf.cast(v, tf.float32) for v in values]
    zero = 0.0
    for v in values:
        zero = zero + v * 0.0
    return [v + zero for v in values]


def matrix(a0, a1, a2, b0, b1, b2):
    """Rows `[a0 a1 a2], [b0 b1 b2], [0 0 1]`, stacked over the broadcast
    shape of the arguments (float32)."""
    a0, a1, a2, b0, b1, b2 = broadcast(a0, a1, a2, b0, b1, b2)
    zero = a0 * 0.0
    return tf.stack([tf.stack([a0, a1, a2], -1),
                     tf.stack([b0, b1, b2], -1),
                     tf.stack([zero, zero, zero + 1.0], -1)], -2)


def scale_translate(scale_x, scale_y, shift_x, shift_y):
    """The output-to-source matrices `x_src = scale_x * x + shift_x`,
    `y_src = scale_y * y + shift_y` (crops, resizes and flips)."""
    zero = tf.zeros_like(tf.cast(scale_x, tf.float32))
    return matrix(scale_x, zero, shift_x, zero, scale_y, shift_y)


def fill_index(index, size, fill_mode):
    """Integer pixel indices mapped into `[0, size)` by `fill_mode`, and
    whether each was inside the image (used by `"constant"`)."""
    inside = (index >= 0) & (index < size)
    if fill_mode == "wrap":
        index = tf.math.floormod(index, size)
    elif fill_mode == "reflect":  # (d c b a | a b c d | d c b a)
        index = tf.math.floormod(index, 2 * size)
        index = tf.where(index >= size, 2 * size - 1 - index, index)
    else:  # "nearest" clamps; "constant" clamps, then masks with `inside`
        index = tf.clip_by_value(index, 0, size - 1)
    return index, inside


def wrap_coordinate(coords, size):
    """`ImageProjectiveTransformV3`'s `"wrap"` of continuous coordinates
    (and so Keras's): shifted by whole periods of `size` into
    `[0, size - 1]` and clamped there, so bilinear sampling never blends the
    last pixel with the first."""
    size = tf.cast(size, coords.dtype)
    span = tf.maximum(size - 1.0, 1.0)
    below = coords + size * (tf.floor(-coords / span) + 1.0)
    above = coords - size * tf.floor(coords / span)
    coords = tf.where(coords < 0, below, tf.where(coords > size - 1.0, above,
                                                  coords))
    return tf.clip_by_value(coords, 0.0, size - 1.0)


def sample(images, rows, cols, interpolation="bilinear", fill_mode="reflect",
           fill_value=0.0, dtype=tf.float32):
    """Samples `images` at fractional pixel positions, by gathers.

    As `ImageProjectiveTransformV3` (and so Keras's own layers): each of
    the (up to) four neighbours of a position is read through `fill_mode`
    on its own, so a position outside the image reads the reflected or edge
    pixels, or `fill_value`; `"wrap"` moves the position itself into the
    image first (`wrap_coordinate`).

    Args:
        images: `(batch, height, width, channels)` images, any real dtype.
        rows: `(batch, out_height, out_width)` row coordinates (pixel
            centres at integers).
        cols: column coordinates, same shape as `rows`.
        interpolation: `"bilinear"` or `"nearest"` (the nearest pixel
            centre; halves round up).
        fill_mode: `"reflect"` `(d c b a | a b c d | d c b a)`, `"wrap"`,
            `"nearest"` (edge pixel) or `"constant"` (`fill_value`).
        fill_value: the value for `"constant"`.
        dtype: the float dtype of the samples (`None`: the images' dtype,
            for nearest sampling of masks).

    Returns:
        `(batch, out_height, out_width, channels)` samples.
    """
    dtype = images.dtype if dtype is None else tf.as_dtype(dtype)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    flat = tf.reshape(images, [shape[0], height * width, shape[3]])
    work = tf.float64 if dtype == tf.float64 else tf.float32
    rows, cols = tf.cast(rows, work), tf.cast(cols, work)
    fill = tf.cast(fill_value, dtype)
    if fill_mode == "wrap":
        rows, cols = wrap_coordinate(rows, height), wrap_coordinate(cols, width)
        fill_mode = "nearest"

    def read(r, c):
        r, r_inside = fill_index(r, height, fill_mode)
        c, c_inside = fill_index(c, width, fill_mode)
        values = tf.cast(tf.gather(flat, r * width + c, batch_dims=1), dtype)
        if fill_mode == "constant":
            values = tf.where((r_inside & c_inside)[..., None], values, fill)
        return values

    if interpolation == "nearest":
        return read(tf.cast(tf.floor(rows + 0.5), tf.int32),
                    tf.cast(tf.floor(cols + 0.5), tf.int32))
    row0, col0 = tf.floor(rows), tf.floor(cols)
    frac_r = tf.cast(rows - row0, dtype)[..., None]
    frac_c = tf.cast(cols - col0, dtype)[..., None]
    row0, col0 = tf.cast(row0, tf.int32), tf.cast(col0, tf.int32)
    top = read(row0, col0) + frac_c * (read(row0, col0 + 1)
                                       - read(row0, col0))
    bottom = read(row0 + 1, col0) + frac_c * (read(row0 + 1, col0 + 1)
                                              - read(row0 + 1, col0))
    return top + frac_r * (bottom - top)


def affine_grid(matrices, height, width):
    """`(rows, cols)`, each `(batch, height, width)` float32: the source
    positions that output-to-source `matrices` (`(batch, 3, 3)`) give the
    pixels of a `height x width` output."""
    matrices = tf.cast(matrices, tf.float32)
    ys = tf.range(height, dtype=tf.float32)[None, :, None]
    xs = tf.range(width, dtype=tf.float32)[None, None, :]

    def row(i):
        m = matrices[:, i, :, None, None]
        return m[:, 0] * xs + m[:, 1] * ys + m[:, 2]

    cols, rows, w = row(0), row(1), row(2)
    return rows / w, cols / w


def apply_color(images, color_matrix, color_offset):
    """`A @ rgb + b` per pixel: `(batch, h, w, 3)` images, `(batch, 3, 3)`
    matrices and `(batch, 3)` offsets."""
    # Three broadcast multiply-adds rather than a (batch) matmul: XLA fuses
    # them into the resample's loop instead of emitting a dot per image.
    color_matrix = tf.cast(color_matrix, images.dtype)[:, None, None]
    outputs = tf.cast(color_offset, images.dtype)[:, None, None, :]
    for c in range(3):
        outputs = outputs + images[..., c:c + 1] * color_matrix[..., c]
    return outputs


def channel_means(images):
    """`(batch, channels)` mean of each image's channels."""
    return tf.reduce_mean(images, axis=[1, 2])


@functools.lru_cache(maxsize=None)
def _compiled(height, width, interpolation, fill_mode, fill_value, clip,
              dtype):
    """One XLA-compiled function per static configuration (so a layer's
    calls only retrace for a new input shape)."""

    def run(images, matrices, color_steps):
        if matrices is None:
            outputs = tf.cast(images, dtype)
        else:
            rows, cols = affine_grid(matrices, height, width)
            outputs = sample(images, rows, cols, interpolation, fill_mode,
                             fill_value, dtype)
        if color_steps:
            color_matrix, color_offset, mean_matrix = compose_color(
                color_steps)
            if mean_matrix is not None:
                color_offset = color_offset + tf.linalg.matvec(
                    mean_matrix, tf.cast(channel_means(outputs), tf.float32))
            outputs = apply_color(outputs, color_matrix, color_offset)
        if clip is not None:
            outputs = tf.clip_by_value(outputs, tf.cast(clip[0], outputs.dtype),
                                       tf.cast(clip[1], outputs.dtype))
        return outputs

    return tf.function(run, jit_compile=True)


def resample(images, matrices, height, width, interpolation, fill_mode,
             fill_value, dtype):
    """Resamples each image once with its output-to-source matrix.

    Args:
        images: `(batch, in_height, in_width, channels)` images.
        matrices: `(batch, 3, 3)` output-to-source matrices.
        height: output height (a Python int).
        width: output width (a Python int).
        interpolation: see `sample`.
        fill_mode: see `sample`.
        fill_value: see `sample`.
        dtype: output dtype (a `tf.DType`; `None` keeps the images' dtype,
            for nearest sampling of masks).

    Returns:
        `(batch, height, width, channels)` samples.
    """
    dtype = images.dtype if dtype is None else tf.as_dtype(dtype)
    return _compiled(height, width, interpolation, fill_mode,
                     float(fill_value), None, dtype)(images, matrices, [])


def resample_and_color(images, matrices, color_steps, height, width,
                       interpolation, fill_mode, fill_value, clip, dtype,
                       implementation="xla"):
    """`resample`, then the composed color map and one clip, in one pass.

    Args:
        images: `(batch, in_height, in_width, 3)` images.
        matrices: `(batch, 3, 3)` output-to-source matrices, or None for
            none (then `height` and `width` must be the input's).
        color_steps: a list of `(A, b, mean_weight)` per color step: `A`
            `(batch, 3, 3)`, `b` `(batch, 3)`, and `mean_weight` None or
            `(batch,)` (the step adds `mean_weight * mean` to `b`, where
            `mean` is the per-channel mean of the image entering the step,
            which is how contrast works).
        height: output height (a Python int).
        width: output width (a Python int).
        interpolation: see `sample`.
        fill_mode: see `sample`.
        fill_value: see `sample`.
        clip: `(low, high)` or None.
        dtype: the float dtype of the work and the output.
        implementation: `"xla"`: TensorFlow ops in one XLA computation
            (compiles inside models with `jit_compile=True`); `"op"`: the
            compiled `affine_resample` CPU op (float32 work; uint8 or
            float32 images, others are cast to float32 first).

    Returns:
        `(batch, height, width, 3)` images of `dtype` (float32 for `"op"`).
    """
    clip = None if clip is None else (float(clip[0]), float(clip[1]))
    if implementation == "op":
        if images.dtype not in (tf.uint8, tf.float32):
            images = tf.cast(images, tf.float32)
        if matrices is None:
            matrices = tf.eye(3, batch_shape=tf.shape(images)[:1])
        color = None
        if color_steps:
            color_matrix, color_offset, mean_matrix = compose_color(
                color_steps)
            if mean_matrix is None:
                mean_matrix = tf.zeros_like(color_matrix)
            color = (color_matrix, color_offset, mean_matrix)
        return affine_resample(images, matrices, height, width, interpolation,
                               fill_mode, fill_value, color, clip)
    return _compiled(height, width, interpolation, fill_mode,
                     float(fill_value), clip, tf.as_dtype(dtype))(
                         images, matrices, list(color_steps))


def compose_color(color_steps):
    """One affine color map for a list of `(A, b, mean_weight)` steps.

    A step with a `mean_weight` adds `mean_weight` times the channel means
    of the image entering it, which are affine in the means `m` of the image
    before the first step; so the whole list is `p -> A p + c + W m`.

    Args:
        color_steps: as in `resample_and_color`.

    Returns:
        `(A, c, W)`: `(batch, 3, 3)`, `(batch, 3)` and `(batch, 3, 3)`
        float32, `W` None when no step depends on the mean.
    """
    total_a, total_c, total_w = None, None, None
    for step_a, step_b, mean_weight in color_steps:
        step_a = tf.cast(step_a, tf.float32)
        step_b = tf.cast(step_b, tf.float32)
        if total_a is None:
            total_a = tf.eye(3, batch_shape=tf.shape(step_a)[:1])
            total_c = tf.zeros_like(step_b)
        new_w = None if total_w is None else tf.matmul(step_a, total_w)
        if mean_weight is not None:
            # The image entering this step has means (A + W) m + c.
            weight = tf.cast(mean_weight, tf.float32)[:, None]
            step_b = step_b + weight * total_c
            entering = total_a if total_w is None else total_a + total_w
            step_w = weight[..., None] * entering
            new_w = step_w if new_w is None else new_w + step_w
        total_a = tf.matmul(step_a, total_a)
        total_c = tf.linalg.matvec(step_a, total_c) + step_b
        total_w = new_w
    return total_a, total_c, total_w
