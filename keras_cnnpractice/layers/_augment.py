"""The base of this package's augmentation layers: an ordered list of
geometric and color steps (`augment_steps`) run as one resample and one
color transform per image (`_resample`), with the contract of Keras's image
preprocessing layers.

Keras's `BaseImagePreprocessingLayer` is not public API, so this base
implements its method names and signatures on the public
`keras.layers.Layer`: `get_random_transformation(data, training, seed)`,
`transform_images`, `transform_labels`, `transform_bounding_boxes` and
`transform_segmentation_masks`, each `(x, transformation, training=True)`;
`call` takes an image tensor or a dict with `"images"` and optionally
`"labels"`, `"bounding_boxes"` (`{"boxes", "labels"}`) and
`"segmentation_masks"`, and returns the same structure.
"""

import math

import keras
import tensorflow as tf

from keras_cnnpractice._validate import check_bool
from keras_cnnpractice._validate import is_number
from keras_cnnpractice.layers import _resample
from keras_cnnpractice.layers import augment_steps


IMPLEMENTATIONS = ("xla", "op")


def check_images(images, layer_name, channels=None):
    """`images` as a tensor of rank 3 (one HWC image) or 4 (NHWC), float or
    uint8.

    Raises:
        ValueError: another dtype or rank, or (with `channels`) another
            channel count, naming the layer.
    """
    images = tf.convert_to_tensor(images)
    if not (images.dtype.is_floating or images.dtype == tf.uint8):
        raise ValueError(
            f"{layer_name} needs float or uint8 images (cast other integer "
            f"pixels first, e.g. with tf.cast). Received: "
            f"dtype={images.dtype.name}")
    if images.shape.rank not in (3, 4):
        raise ValueError(
            f"{layer_name} needs images of rank 3 (height, width, channels) "
            f"or 4 (batch, height, width, channels). Received: "
            f"shape={images.shape}")
    if channels is not None and images.shape[-1] != channels:
        raise ValueError(
            f"{layer_name} has color steps, which need RGB images with "
            f"{channels} channels. Received: shape={images.shape}")
    return images


def as_batch(images):
    """`(batch, single)`: rank-4 images, and whether a batch axis was added
    (pass `single` to `restore` to remove it again)."""
    single = images.shape.rank == 3
    return (images[None] if single else images), single


def restore(images, single):
    """Undoes `as_batch`."""
    return images[0] if single else images


def _value_range(value_range):
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not all(is_number(v) and math.isfinite(v) for v in value_range)
            or not value_range[0] < value_range[1]):
        raise ValueError(
            "`value_range` must be a (low, high) pair of finite numbers with "
            f"low < high. Received: value_range={value_range!r}")
    return (float(value_range[0]), float(value_range[1]))


class FusedImageAugmentation(keras.layers.Layer):
    """Runs geometric steps as one resample and color steps as one affine
    color map per image, then one clip to `value_range` (when there are
    color steps and `clip`).

    Float images keep their dtype; uint8 images (pixels 0..255, so
    `value_range` must be `(0, 255)` when there are color steps) come out
    in the layer's compute dtype. The work is done in float32 (float64 for
    float64 images with `implementation="xla"`), by one of two
    implementations of the same pass (`_resample`):

    * `"xla"` (default): TensorFlow ops in one XLA computation; runs in a
      `tf.data` map and as the first layers of a model on any device, and
      compiles inside a model built with `jit_compile=True`
      (`supports_jit` is True).
    * `"op"`: the compiled CPU op `custom_ops.affine_resample`, one pass
      per image in cache; the fast path in a `tf.data` map on the CPU
      (`benchmarks/augment.py`). It has no XLA or GPU kernel, so
      `supports_jit` is False and Keras leaves XLA off for a model that
      holds such a layer.

    At inference (`training=False`: `predict`, `evaluate`, an exported
    model) each step takes its deterministic path: crops take their central
    box, everything else is the identity. As with Keras's own augmentation
    layers, `training` defaults to True, so a direct call (e.g. in a
    `tf.data` map) augments.

    Args:
        steps: geometric and color steps (`augment_steps`), in order.
        value_range: `(low, high)` of the pixel values: the scale of the
            brightness step and the range of the final clip.
        interpolation: `"bilinear"` or `"nearest"`.
        fill_mode: `"reflect"`, `"wrap"`, `"constant"` or `"nearest"`: how
            points outside the source image are read.
        fill_value: the value for `fill_mode="constant"`.
        clip: whether to clip to `value_range` after color steps.
        bounding_box_format: the format of `"bounding_boxes"` inputs, one
            of Keras's (`"xyxy"`, `"rel_xyxy"`, `"xywh"`, `"center_xywh"`,
            `"yxyx"`, `"rel_yxyx"`, ...; see
            `keras.utils.bounding_boxes.convert_format`).
        seed: integer seed for the layer's `keras.random.SeedGenerator`.
        implementation: `"xla"` or `"op"` (see above). Masks are always
            sampled by the `"xla"` path (any dtype, any channels).
        **kwargs: base layer arguments (`name`, `dtype`, ...).
    """

    def __init__(self, steps, value_range=(0.0, 255.0),
                 interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, clip=True, bounding_box_format=None,
                 seed=None, implementation="xla", **kwargs):
        kwargs.setdefault("autocast", False)  # keep the images' dtype
        super().__init__(**kwargs)
        self.steps = [augment_steps.get(step) for step in steps]
        self.value_range = _value_range(value_range)
        if interpolation not in _resample.INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {_resample.INTERPOLATIONS}. "
                f"Received: interpolation={interpolation!r}")
        if fill_mode not in _resample.FILL_MODES:
            raise ValueError(
                f"`fill_mode` must be one of {_resample.FILL_MODES}. "
                f"Received: fill_mode={fill_mode!r}")
        if not (is_number(fill_value) and math.isfinite(fill_value)):
            raise ValueError("`fill_value` must be a finite number. "
                             f"Received: fill_value={fill_value!r}")
        check_bool("clip", clip)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {IMPLEMENTATIONS}. "
                f"Received: implementation={implementation!r}")
        self.implementation = implementation
        self.supports_jit = implementation == "xla"
        self.interpolation = interpolation
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.clip = clip
        self.bounding_box_format = bounding_box_format
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._color_steps = [s for s in self.steps if s.kind == "color"]

    # ----------------------------------------------------------- checks

    def _check(self, images):
        name = type(self).__name__
        images = check_images(images, name,
                              channels=3 if self._color_steps else None)
        if (images.dtype == tf.uint8 and self._color_steps
                and self.value_range != (0.0, 255.0)):
            raise ValueError(
                f"{name} received uint8 images, whose pixels are 0..255, but "
                f"its value_range is {self.value_range}: pass float images "
                f"scaled to value_range, or value_range=(0, 255). Received: "
                f"dtype=uint8, value_range={self.value_range}")
        return images

    def _output_dtype(self, images):
        if images.dtype.is_floating:
            return images.dtype
        return tf.as_dtype(keras.backend.standardize_dtype(self.compute_dtype))

    def output_size(self, height, width):
        """The output `(height, width)` for an input of `height x width`
        (ints, or None where unknown)."""
        for step in self.steps:
            if step.kind == "geometric":
                height, width = step.output_size(height, width)
        return height, width

    # ------------------------------------------------ Keras's contract

    def get_random_transformation(self, data, training=True, seed=None):
        """Draws every step's parameters for a batch.

        Args:
            data: `(batch, height, width, channels)` images, or a dict with
                `"images"`.
            training: random parameters when true, else each step's
                deterministic path.
            seed: a `keras.random.SeedGenerator` to draw from instead of
                the layer's.

        Returns:
            A dict: `"matrices"`, the composed `(batch, 3, 3)`
            output-to-source matrices or None (no resample); `"color"`, the
            color steps' `(A, b, mean_weight)` in order; `"input_size"` and
            `"output_size"`, `(height, width)` as ints or scalar tensors;
            `"steps"`, each step's drawn parameters (a dict per step).
        """
        images = data["images"] if isinstance(data, dict) else data
        images, _ = as_batch(tf.convert_to_tensor(images))
        seed = self.seed_generator if seed is None else seed
        shape = tf.shape(images)
        batch_size = shape[0]

        def size(static, dynamic):
            return static if static is not None else dynamic

        height = size(images.shape[1], shape[1])
        width = size(images.shape[2], shape[2])
        input_size = (height, width)
        matrices, color, parameters = None, [], []
        for step in self.steps:
            if step.kind == "geometric":
                step_matrices, params = step.draw(batch_size, height, width,
                                                  seed, bool(training))
                height, width = step.output_size(height, width)
                if step_matrices is not None:
                    matrices = (step_matrices if matrices is None else
                                tf.matmul(matrices, step_matrices))
            else:
                step_color, params = step.draw(batch_size, seed,
                                               bool(training),
                                               self.value_range)
                if step_color is not None:
                    color.append(step_color)
            parameters.append(params)
        return {"matrices": matrices, "color": color,
                "input_size": input_size, "output_size": (height, width),
                "steps": parameters}

    def transform_images(self, images, transformation, training=True):
        """Resamples and recolors `images` (one or a batch) once, with a
        `transformation` from `get_random_transformation`."""
        batch, single = as_batch(self._check(images))
        out_dtype = self._output_dtype(batch)
        work = tf.float64 if out_dtype == tf.float64 else tf.float32
        matrices, color = transformation["matrices"], transformation["color"]
        if matrices is None and not color:
            return restore(tf.cast(batch, out_dtype), single)
        height, width = self._static_output_size(batch, transformation)
        clip = self.value_range if (color and self.clip) else None
        outputs = _resample.resample_and_color(
            batch, matrices, color, height, width, self.interpolation,
            self.fill_mode, self.fill_value, clip, work,
            self.implementation)
        outputs = tf.ensure_shape(tf.cast(outputs, out_dtype), (
            batch.shape[0], height, width, batch.shape[3]))
        return restore(outputs, single)

    def transform_labels(self, labels, transformation, training=True):
        """Labels are unchanged."""
        return labels

    def transform_segmentation_masks(self, segmentation_masks, transformation,
                                     training=True):
        """Moves masks (`(batch, h, w, k)` or `(h, w, k)`, any dtype) with
        the images: nearest sampling with the same matrices, 0 outside the
        source, dtype kept. Color steps do not apply."""
        masks = tf.convert_to_tensor(segmentation_masks)
        if masks.shape.rank not in (3, 4):
            raise ValueError(
                f"{type(self).__name__} needs segmentation masks of rank 3 "
                f"or 4 (channels last). Received: shape={masks.shape}")
        batch, single = as_batch(masks)
        if transformation["matrices"] is None:
            return segmentation_masks
        height, width = self._static_output_size(batch, transformation)
        outputs = _resample.resample(
            batch, transformation["matrices"], height, width, "nearest",
            "constant", 0.0, None)
        return restore(outputs, single)

    def transform_bounding_boxes(self, bounding_boxes, transformation,
                                 training=True):
        """Moves boxes with the images.

        Each box's corners are mapped through the inverse of the image's
        output-to-source matrix, the axis-aligned box around them is kept,
        and boxes are clipped to the output (boxes left with no area get
        label -1, as `keras.utils.bounding_boxes.clip_to_image_size` does).

        Args:
            bounding_boxes: `{"boxes": (batch, n, 4), "labels": (batch, n)}`
                (or without the batch axis) in `bounding_box_format`.
            transformation: from `get_random_transformation`.
            training: unused (the transformation says it all).

        Returns:
            The same structure, in the same format, for the output size.
        """
        if self.bounding_box_format is None:
            raise ValueError(
                f"{type(self).__name__} got bounding boxes but no "
                "bounding_box_format: pass bounding_box_format='xyxy' (or "
                "another Keras box format). Received: "
                "bounding_box_format=None")
        boxes_utils = keras.utils.bounding_boxes
        boxes = tf.convert_to_tensor(bounding_boxes["boxes"])
        labels = tf.convert_to_tensor(bounding_boxes["labels"])
        single = boxes.shape.rank == 2
        if single:
            boxes, labels = boxes[None], labels[None]
        in_h, in_w = transformation["input_size"]
        out_h, out_w = transformation["output_size"]
        boxes = tf.cast(boxes_utils.convert_format(
            boxes, self.bounding_box_format, "xyxy", height=in_h,
            width=in_w), tf.float32)
        matrices = transformation["matrices"]
        if matrices is not None:
            inverse = tf.linalg.inv(tf.cast(matrices, tf.float32))
            x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
            # Corners in pixel-centre coordinates (edges at -0.5).
            xs = tf.stack([x1, x2, x1, x2], -1) - 0.5
            ys = tf.stack([y1, y1, y2, y2], -1) - 0.5
            m = inverse[:, None, None]
            tx = m[..., 0, 0] * xs + m[..., 0, 1] * ys + m[..., 0, 2]
            ty = m[..., 1, 0] * xs + m[..., 1, 1] * ys + m[..., 1, 2]
            tw = m[..., 2, 0] * xs + m[..., 2, 1] * ys + m[..., 2, 2]
            tx, ty = tx / tw + 0.5, ty / tw + 0.5
            boxes = tf.stack([tf.reduce_min(tx, -1), tf.reduce_min(ty, -1),
                              tf.reduce_max(tx, -1), tf.reduce_max(ty, -1)],
                             -1)
        result = dict(bounding_boxes, boxes=boxes, labels=labels)
        result = boxes_utils.clip_to_image_size(
            result, height=out_h, width=out_w, bounding_box_format="xyxy")
        result["boxes"] = boxes_utils.convert_format(
            result["boxes"], "xyxy", self.bounding_box_format, height=out_h,
            width=out_w)
        if single:
            result = {k: v[0] for k, v in result.items()}
        return result

    def _static_output_size(self, batch, transformation):
        height, width = transformation["output_size"]
        if not isinstance(height, int):
            height, width = batch.shape[1], batch.shape[2]
        if not isinstance(height, int) or not isinstance(width, int):
            raise ValueError(
                f"{type(self).__name__} needs images of known height and "
                f"width here (XLA compiles for fixed sizes). Received: "
                f"shape={batch.shape}")
        return height, width

    # ------------------------------------------------------------ call

    def call(self, data, training=True):
        if isinstance(data, dict):
            if "images" not in data:
                raise ValueError(
                    f"{type(self).__name__} takes images or a dict with "
                    f"'images' (and optionally 'labels', 'bounding_boxes', "
                    f"'segmentation_masks'). Received: keys={sorted(data)}")
            images = self._check(data["images"])
        else:
            images = self._check(data)
        transformation = self.get_random_transformation(
            images, training=bool(training))
        if not isinstance(data, dict):
            return self.transform_images(data, transformation, training)
        result = dict(data)
        result["images"] = self.transform_images(images, transformation,
                                                 training)
        if "labels" in data:
            result["labels"] = self.transform_labels(data["labels"],
                                                     transformation, training)
        if "bounding_boxes" in data:
            result["bounding_boxes"] = self.transform_bounding_boxes(
                data["bounding_boxes"], transformation, training)
        if "segmentation_masks" in data:
            result["segmentation_masks"] = self.transform_segmentation_masks(
                data["segmentation_masks"], transformation, training)
        return result

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            shape = dict(input_shape)
            shape["images"] = self.compute_output_shape(input_shape["images"])
            return shape
        height, width = self.output_size(input_shape[-3], input_shape[-2])
        return (*tuple(input_shape)[:-3], height, width, input_shape[-1])

    def compute_output_spec(self, inputs, training=True):
        if isinstance(inputs, dict):
            return {key: (self.compute_output_spec(value) if key == "images"
                          else value) for key, value in inputs.items()}
        probe = tf.zeros((1,) * len(inputs.shape), inputs.dtype)
        if self._color_steps and inputs.shape[-1] is not None:
            probe = tf.zeros((1,) * (len(inputs.shape) - 1)
                             + (inputs.shape[-1],), inputs.dtype)
        self._check(probe)
        dtype = self._output_dtype(probe)
        return keras.KerasTensor(self.compute_output_shape(inputs.shape),
                                 dtype=dtype.name)

    def get_config(self):
        config = super().get_config()
        config.update({
            "value_range": self.value_range,
            "interpolation": self.interpolation,
            "fill_mode": self.fill_mode, "fill_value": self.fill_value,
            "clip": self.clip,
            "bounding_box_format": self.bounding_box_format,
            "seed": self.seed, "implementation": self.implementation})
        return config
