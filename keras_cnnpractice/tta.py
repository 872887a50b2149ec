"""Test-time averaging: class scores averaged over several views of an image.

Views of a batch of NHWC images, as a tensor `(batch, views, h, w, C)`:

- `ten_crop(images, size)`: the four corner crops and the centre crop of
  `size x size`, then the horizontal mirror image of each (AlexNet,
  Krizhevsky et al. 2012, section 4.1).
- `multi_scale_ten_crop(images, scales, size)`: the image resized so that
  its short side is each scale, then ten crops of each (the multi-scale
  dense/multi-crop evaluation of VGG, Simonyan & Zisserman 2015, and the
  scales of ResNet, He et al. 2016, section 3.4).
- `tta_views(images, policy, ...)`: the views of a named policy.

`predict_tta(model, data, policy)` runs a model over the views of every
image and returns the average of its outputs per image, in bounded memory.
"""

import numbers

import numpy as np
import tensorflow as tf

from keras_cnnpractice._validate import check_int

POLICIES = ("none", "flip", "ten_crop", "multi_scale")
DEFAULT_SCALES = (224, 256, 384, 480, 640)
DEFAULT_SIZE = 224

# The crops of `ten_crop`, in order; views 5-9 are the mirror images of
# views 0-4 (view 5 is the mirrored top-left crop, ...).
TEN_CROP_ORDER = ("top_left", "top_right", "bottom_left", "bottom_right",
                  "center")


def _check_size(size, name="size"):
    return check_int(name, size, 1)


def _check_nhwc(images, caller):
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"{caller} needs images of rank 4 (batch, height, "
                         f"width, channels). Received: shape={images.shape}")
    return images


def _assert_at_least(images, size, what):
    """Raises (statically when the shape is known) if the height or width of
    `images` is below `size`."""
    height, width = images.shape[1], images.shape[2]
    if height is not None and width is not None:
        if height < size or width < size:
            raise ValueError(
                f"{what} of {size}x{size} needs images at least that large. "
                f"Received: height={height}, width={width}, size={size}")
        return []
    shape = tf.shape(images)
    return [tf.debugging.assert_greater_equal(
        shape[1:3], size, message=f"{what} of {size}x{size} needs images "
        "at least that large")]


def ten_crop(images, size):
    """The ten `size x size` crops of each image: four corners, centre, and
    the horizontal mirror image of each.

    Order along axis 1: top-left, top-right, bottom-left, bottom-right,
    centre (at offset `((H - size) // 2, (W - size) // 2)`), then the
    mirror images of those five in the same order (view `5 + k` is view `k`
    flipped left-right). torchvision's `TenCrop` holds the same ten views in
    another order (its flipped corners come from the flipped image).

    Args:
        images: `(batch, H, W, C)` tensor or array, any dtype, with
            `H, W >= size`.
        size: side of the square crops.

    Returns:
        A `(batch, 10, size, size, C)` tensor of the dtype of `images`.

    Raises:
        ValueError: images not of rank 4 or smaller than `size`, or a bad
            `size`. (Traced with an unknown height or width, e.g. in a
            `tf.data` map, too small images fail at run time with
            `tf.errors.InvalidArgumentError` instead.)
    """
    size = _check_size(size)
    images = _check_nhwc(images, "ten_crop")
    checks = _assert_at_least(images, size, "ten_crop")
    with tf.control_dependencies(checks):
        shape = tf.shape(images)
    bottom, right = shape[1] - size, shape[2] - size
    corners = [(0, 0), (0, right), (bottom, 0), (bottom, right),
               (bottom // 2, right // 2)]
    crops = [tf.slice(images, tf.stack([0, top, left, 0]),
                      [-1, size, size, -1]) for top, left in corners]
    crops += [tf.reverse(crop, axis=[2]) for crop in crops]
    return tf.stack(crops, axis=1)


def resize_short_side(images, scale, method="bilinear", antialias=True):
    """Resizes `images` so that their short side is `scale`, keeping the
    aspect ratio (the long side becomes `round(long * scale / short)`).

    Args:
        images: `(batch, H, W, C)` images.
        scale: the new short side.
        method: a `tf.image.resize` method.
        antialias: `tf.image.resize`'s `antialias` (filters when
            downsampling).

    Returns:
        The resized images, of the dtype of `images` if it is a float type,
        else float32.
    """
    scale = _check_size(scale, "scale")
    images = _check_nhwc(images, "resize_short_side")
    shape = tf.shape(images)
    height = tf.cast(shape[1], "float64")
    width = tf.cast(shape[2], "float64")
    short = tf.minimum(height, width)
    new_size = tf.cast(tf.round(tf.stack([height, width]) * scale / short),
                       "int32")
    new_size = tf.maximum(new_size, scale)  # exactly `scale` on the short side
    resized = tf.image.resize(images, new_size, method=method,
                              antialias=antialias)
    if images.dtype.is_floating:
        resized = tf.cast(resized, images.dtype)
    return resized


def _check_scales(scales, size):
    if isinstance(scales, numbers.Integral):
        scales = (scales,)
    scales = tuple(scales)
    if not scales:
        raise ValueError("scales must hold at least one scale. Received: "
                         "scales=()")
    for scale in scales:
        _check_size(scale, "scale")
        if scale < size:
            raise ValueError(
                f"Every scale must be at least the crop size {size}. "
                f"Received: scales={scales}, size={size}")
    return scales


def multi_scale_ten_crop(images, scales=DEFAULT_SCALES, size=DEFAULT_SIZE,
                         method="bilinear", antialias=True):
    """Ten crops of each image at each of several scales.

    For each scale `s`, the images are resized so that their short side is
    `s` (`resize_short_side`), and `ten_crop(resized, size)` is taken.
    This is the multi-crop evaluation of AlexNet and VGG (Simonyan &
    Zisserman 2015, section 3.2) at the scales {224, 256, 384, 480, 640} of
    ResNet (He et al., "Deep Residual Learning for Image Recognition",
    2016, section 3.4). ResNet itself ran the network fully convolutionally
    on each whole resized image and averaged the scores; this ten-crop-per-
    scale variant works with any fixed-input-size model.

    Args:
        images: `(batch, H, W, C)` images.
        scales: short sides, each `>= size`.
        size: side of the square crops.
        method: a `tf.image.resize` method.
        antialias: `tf.image.resize`'s `antialias`.

    Returns:
        `(batch, 10 * len(scales), size, size, C)`: the ten crops
        (`ten_crop` order) of the first scale, then of the second, ...

    Raises:
        ValueError: a scale smaller than `size`, no scales, or bad images.
    """
    size = _check_size(size)
    scales = _check_scales(scales, size)
    images = _check_nhwc(images, "multi_scale_ten_crop")
    return tf.concat([ten_crop(resize_short_side(images, s, method, antialias),
                               size) for s in scales], axis=1)


def _check_policy(policy):
    name = policy.lower() if isinstance(policy, str) else policy
    if name not in POLICIES:
        raise ValueError(f"Unknown test-time augmentation policy; valid ones "
                         f"are {', '.join(POLICIES)}. Received: "
                         f"policy={policy!r}")
    return name


def _view_groups(images, policy, size, scales, method, antialias):
    """Yields the views of `policy` as `(batch, v, h, w, C)` tensors (one
    per scale for "multi_scale"), so they need not all exist at once."""
    images = _check_nhwc(images, "tta_views")
    if policy == "none":
        yield images[:, None]
    elif policy == "flip":
        yield tf.stack([images, tf.reverse(images, axis=[2])], axis=1)
    elif policy == "ten_crop":
        yield ten_crop(images, size)
    else:
        for scale in scales:
            yield ten_crop(resize_short_side(images, scale, method, antialias),
                           size)


def _resolve(policy, size, scales, default_size=None):
    policy = _check_policy(policy)
    if policy in ("ten_crop", "multi_scale"):
        if size is None:
            size = default_size
        if size is None:
            if policy == "ten_crop":
                raise ValueError("The ten_crop policy needs a crop size. "
                                 "Received: size=None")
            size = DEFAULT_SIZE
        size = _check_size(size)
    if policy == "multi_scale":
        scales = _check_scales(scales, size)
    return policy, size, scales


def tta_views(images, policy, size=None, scales=DEFAULT_SCALES,
              method="bilinear", antialias=True):
    """The views that `predict_tta` averages over, for a batch of images.

    Args:
        images: `(batch, H, W, C)` images.
        policy: one of `POLICIES`: "none" (the image itself, 1 view),
            "flip" (the image and its left-right mirror image, 2 views),
            "ten_crop" (`ten_crop`, 10 views) or "multi_scale"
            (`multi_scale_ten_crop`, `10 * len(scales)` views).
        size: crop side for "ten_crop" (required) and "multi_scale"
            (default 224); ignored by "none" and "flip".
        scales: short sides for "multi_scale".
        method, antialias: resizing for "multi_scale" (`tf.image.resize`).

    Returns:
        `(batch, views, h, w, C)` tensor.

    Raises:
        ValueError: an unknown policy, or bad images, size or scales.
    """
    policy, size, scales = _resolve(policy, size, scales)
    return tf.concat(list(_view_groups(images, policy, size, scales, method,
                                       antialias)), axis=1)


def _model_size(model):
    """The model's square input side, if its input shape fixes one."""
    shape = getattr(model, "input_shape", None)
    if (isinstance(shape, tuple) and len(shape) == 4
            and shape[1] is not None and shape[1] == shape[2]):
        return int(shape[1])
    return None


def _image_batches(data, batch_size):
    """Yields the image batches of `data` (array, tensor or dataset)."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, (tuple, list)):
            data = data.map(lambda *element: element[0])
            spec = spec[0]
        if not isinstance(spec, tf.TensorSpec):
            raise ValueError(
                "predict_tta needs a dataset of image tensors or (images, "
                f"labels) tuples. Received: element_spec={data.element_spec}")
        if spec.shape.rank == 3:
            data = data.batch(batch_size)
        elif spec.shape.rank != 4:
            raise ValueError(
                "predict_tta needs a dataset of image batches (rank 4) or "
                f"images (rank 3). Received: element shape={spec.shape}")
        yield from data
        return
    images = data if tf.is_tensor(data) else np.asarray(data)
    if images.ndim != 4:
        raise ValueError("predict_tta needs images of rank 4 (batch, height, "
                         f"width, channels). Received: shape={images.shape}")
    for start in range(0, images.shape[0], batch_size):
        yield images[start:start + batch_size]


def predict_tta(model, data, policy="ten_crop", size=None,
                scales=DEFAULT_SCALES, batch_size=32, views_per_step=None,
                method="bilinear", antialias=True):
    """The model's outputs averaged over the test-time views of each image.

    `data` is read one batch of `batch_size` images at a time; the views of
    that batch (for "multi_scale", of one scale at a time) are flattened to
    `(batch * views, h, w, C)` and given to `model.predict` in
    chunks of `views_per_step`, and the outputs are summed per image. Memory
    therefore holds one batch's views of one scale, never all views of the
    dataset. The average is of whatever the model outputs: probabilities
    for a softmax head, logits otherwise.

    Args:
        model: a `keras.Model` taking `(n, h, w, C)` views.
        data: images `(n, H, W, C)` as a numpy array or tensor, or a
            `tf.data.Dataset` of image batches, `(images, labels, ...)`
            batches, or single images (batched here with `batch_size`).
        policy: "none", "flip", "ten_crop" or "multi_scale" (see
            `tta_views`).
        size: crop side for "ten_crop" and "multi_scale"; by default the
            model's input size when its input shape fixes a square one,
            else 224 for "multi_scale" (and an error for "ten_crop").
        scales: short sides for "multi_scale".
        batch_size: images read at a time from arrays and tensors (and
            from datasets of single images).
        views_per_step: views per model call (default `batch_size`).
        method, antialias: resizing for "multi_scale".

    Returns:
        A float32 numpy array `(n, *model_output_shape)`, e.g.
        `(n, num_classes)`.

    Raises:
        ValueError: an unknown policy, bad sizes, images or data, or no
            images.
    """
    policy, size, scales = _resolve(policy, size, scales, _model_size(model))
    for name, value in (("batch_size", batch_size),
                        ("views_per_step", views_per_step)):
        if value is not None:
            _check_size(value, name)
    views_per_step = views_per_step or batch_size
    averages = []
    for images in _image_batches(data, batch_size):
        total, count = 0.0, 0
        for group in _view_groups(images, policy, size, scales, method,
                                  antialias):
            num, per_image = group.shape[0], group.shape[1]
            flat = tf.reshape(group, (num * per_image, *group.shape[2:]))
            # model.predict, not predict_on_batch: under MirroredStrategy
            # Keras's predict_on_batch returns each replica's rows twice.
            outputs = np.asarray(model.predict(
                flat, batch_size=views_per_step, verbose=0), "float64")
            total = total + outputs.reshape(
                num, per_image, *outputs.shape[1:]).sum(axis=1)
            count += per_image
        averages.append((total / count).astype("float32"))
    if not averages:
        raise ValueError("predict_tta received no images. Received: an "
                         "empty data set")
    return np.concatenate(averages)
