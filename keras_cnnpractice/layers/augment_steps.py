"""The steps of a fused augmentation: geometric steps (crops, scalings,
flips, affine maps) that each give an output-to-source matrix per image, and
color steps (brightness, contrast, saturation, hue, PCA lighting) that each
give an affine map of RGB per image.

`FusedAugment` composes an ordered list of them into one resample and one
color transform (`_resample`); `RandomResizedCrop`, `ScaleAugment`,
`RandomAffine` and `PCALighting` are one-step configurations of the same
machinery. A step holds only its configuration; the random draws take a
`keras.random.SeedGenerator` (the layer's), so the layer's seed decides
them.

Geometric steps: `draw(batch_size, height, width, seed, training)` returns
`(matrices, parameters)`: `(batch, 3, 3)` output-to-source matrices for an
input of `height x width` (Python ints or scalar tensors), or None for the
identity, and a dict of the drawn parameters; `output_size(height, width)`
gives the output size. Color steps: `draw(batch_size, seed, training,
value_range)` returns `((A, b, mean_weight), parameters)` (see
`_resample.resample_and_color`), or `(None, {})` for the identity.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice._validate import check_bool
from keras_cnnpractice._validate import is_int
from keras_cnnpractice._validate import is_number
from keras_cnnpractice.layers._resample import broadcast
from keras_cnnpractice.layers._resample import matrix
from keras_cnnpractice.layers._resample import scale_translate

_REGISTER = keras.saving.register_keras_serializable(
    package="keras_cnnpractice")


def _is_number(value):
    return is_number(value) and math.isfinite(value)


def range_pair(value, name, lower=None, upper=None, symmetric=True):
    """`value` as a `(lo, hi)` pair of floats with `lo <= hi` within
    `[lower, upper]`; a number `f >= 0` means `(-f, f)` when `symmetric`."""
    received = value
    if _is_number(value) and symmetric:
        if value < 0:
            raise ValueError(
                f"`{name}` must be a non-negative number f (meaning the range "
                f"[-f, f]) or a (lo, hi) pair. Received: {name}={value!r}")
        value = (-float(value), float(value))
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(_is_number(v) for v in value) or value[0] > value[1]
            or (lower is not None and value[0] < lower)
            or (upper is not None and value[1] > upper)):
        bounds = "".join([f", lo >= {lower}" if lower is not None else "",
                          f", hi <= {upper}" if upper is not None else ""])
        raise ValueError(
            f"`{name}` must be a (lo, hi) pair of finite numbers with "
            f"lo <= hi{bounds}. Received: {name}={received!r}")
    return (float(value[0]), float(value[1]))


def _mix32(x):
    """The 32-bit finalizer of MurmurHash3 (uint32 in, uint32 out)."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x85EBCA6B, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 13))
    x = x * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def random_uniform(shape, seed):
    """Uniform [0, 1) float32 draws from a `keras.random.SeedGenerator`.

    Counter-based: draw `i` is a hash of `i` and the generator's next seed
    (MurmurHash3's finalizer, twice, on uint32), with 24 random bits. Not
    `keras.random.uniform`: TensorFlow's stateless kernels give other
    numbers under XLA than without it (measured on TF 2.21: the same
    Philox key and counter draw different values in a `jit_compile=True`
    function), so the same seed would augment differently in a compiled
    model than in eager or in `tf.data`. Integer hashing is bit-exact in
    both.
    """
    state = tf.cast(seed.next(), tf.uint32)
    key = _mix32(_mix32(state[0] + tf.constant(0x9E3779B9, tf.uint32))
                 + state[1] * tf.constant(0x27D4EB2F, tf.uint32))
    count = tf.reduce_prod(tf.cast(shape, tf.int32))
    index = tf.cast(tf.range(count), tf.uint32)
    bits = _mix32(tf.bitwise.bitwise_xor(
        _mix32(index * tf.constant(0x9E3779B9, tf.uint32) + key), key))
    values = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32)
    return tf.reshape(values * (1.0 / (1 << 24)), shape)


def random_normal(shape, stddev, seed):
    """Normal `N(0, stddev)` float32 draws (Box-Muller on two
    `random_uniform` draws)."""
    u = random_uniform(tf.concat([[2], tf.cast(shape, tf.int32)], 0), seed)
    radius = tf.sqrt(-2.0 * tf.math.log1p(-u[0]))  # 1 - u in (0, 1]
    return stddev * radius * tf.cos(2.0 * math.pi * u[1])


def _uniform(shape, lo, hi, seed):
    return lo + (hi - lo) * random_uniform(shape, seed)


def _round_int(x):
    return tf.cast(tf.floor(x + 0.5), tf.int32)


class _Step:
    """Serialization shared by the steps: `get_config` lists the
    constructor's arguments."""

    _ARGS = ()

    def get_config(self):
        return {name: getattr(self, name) for name in self._ARGS}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class GeometricStep(_Step):
    """Base of the geometric steps."""

    kind = "geometric"

    def output_size(self, height, width):
        return height, width


class ColorStep(_Step):
    """Base of the color steps."""

    kind = "color"


# --------------------------------------------------------------- geometry


def box_matrices(boxes, out_height, out_width):
    """Output-to-source matrices of boxes `[y0, x0, h, w]` resized to
    `out_height x out_width`, corner pixel centres to corner pixel centres
    (as `tf.image.crop_and_resize`; a 1-pixel side reads the box's
    centre)."""
    y0, x0, h, w = tf.unstack(tf.cast(boxes, tf.float32), axis=-1)

    def axis(start, size, out):
        if out == 1:
            return tf.zeros_like(size), start + (size - 1.0) / 2.0
        return (size - 1.0) / (out - 1.0), start

    sx, tx = axis(x0, w, out_width)
    sy, ty = axis(y0, h, out_height)
    return scale_translate(sx, sy, tx, ty)


@_REGISTER
class ResizedCrop(GeometricStep):
    """Inception-style random crop of random area and aspect, resized.

    Per image, 10 candidate boxes with an area fraction uniform in `scale`
    and an aspect ratio (width / height) log-uniform in `ratio`, rounded to
    whole pixels (`w = round(sqrt(A r))`, `h = round(sqrt(A / r))`), at a
    uniform position; the first that fits is taken, else the largest
    central box whose ratio is clipped into `ratio` (the torchvision
    algorithm). The box is mapped to the output corner pixel centre to
    corner pixel centre, so sampling never reads outside it. At inference:
    the largest central box with the output's aspect ratio.

    Szegedy et al., "Going Deeper with Convolutions", 2015 (section 6).

    Args:
        height: output height.
        width: output width.
        scale: `(lo, hi)` area fraction, `0 < lo <= hi <= 1`.
        ratio: `(lo, hi)` aspect ratio width / height, `0 < lo <= hi`.
    """

    _ARGS = ("height", "width", "scale", "ratio")
    _ATTEMPTS = 10

    def __init__(self, height, width, scale=(0.08, 1.0),
                 ratio=(3.0 / 4.0, 4.0 / 3.0)):
        for name, value in (("height", height), ("width", width)):
            if not is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. "
                                 f"Received: {name}={value!r}")
        self.height, self.width = int(height), int(width)
        self.scale = range_pair(scale, "scale", symmetric=False, upper=1.0)
        self.ratio = range_pair(ratio, "ratio", symmetric=False)
        for name, pair in (("scale", self.scale), ("ratio", self.ratio)):
            if pair[0] <= 0:
                raise ValueError(f"`{name}` must be a (lo, hi) pair with "
                                 f"0 < lo <= hi. Received: {name}={pair!r}")

    def output_size(self, height, width):
        return self.height, self.width

    def boxes(self, batch_size, height, width, seed, training):
        """`(batch, 4)` int32 `[y0, x0, h, w]` boxes in input pixels."""
        h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)

        def centred(h, w):
            h = tf.clip_by_value(h, 1, height)
            w = tf.clip_by_value(w, 1, width)
            return tf.stack([(height - h) // 2, (width - w) // 2, h, w], -1)

        if not training:
            target = self.width / self.height
            wide = w_f / h_f > target
            h = tf.where(wide, height, _round_int(w_f / target))
            w = tf.where(wide, _round_int(h_f * target), width)
            return tf.tile(centred(h, w)[None], [batch_size, 1])
        u = random_uniform((batch_size, 4, self._ATTEMPTS), seed)
        (s_lo, s_hi), (r_lo, r_hi) = self.scale, self.ratio
        area = h_f * w_f * (s_lo + (s_hi - s_lo) * u[:, 0])
        log_lo, log_hi = math.log(r_lo), math.log(r_hi)
        aspect = tf.exp(log_lo + (log_hi - log_lo) * u[:, 1])
        w = _round_int(tf.sqrt(area * aspect))
        h = _round_int(tf.sqrt(area / aspect))
        valid = (w >= 1) & (h >= 1) & (w <= width) & (h <= height)
        y0 = tf.cast(tf.floor(u[:, 2] * tf.cast(height - h + 1, tf.float32)),
                     tf.int32)
        x0 = tf.cast(tf.floor(u[:, 3] * tf.cast(width - w + 1, tf.float32)),
                     tf.int32)
        y0 = tf.minimum(y0, height - h)  # u < 1, but guard float rounding
        x0 = tf.minimum(x0, width - w)
        candidates = tf.stack([y0, x0, h, w], -1)  # (batch, attempts, 4)
        first = tf.argmax(tf.cast(valid, tf.int32), axis=1,
                          output_type=tf.int32)
        chosen = tf.gather(candidates, first, batch_dims=1)
        in_ratio = w_f / h_f
        h = tf.where(in_ratio < r_lo, _round_int(w_f / r_lo), height)
        w = tf.where(in_ratio > r_hi, _round_int(h_f * r_hi), width)
        return tf.where(tf.reduce_any(valid, axis=1)[:, None], chosen,
                        centred(h, w)[None])

    def draw(self, batch_size, height, width, seed, training):
        boxes = self.boxes(batch_size, height, width, seed, training)
        return box_matrices(boxes, self.height, self.width), {"boxes": boxes}


def resized_shape(height, width, short_side):
    """`(resized_height, resized_width)` int32 for a short side of
    `short_side` pixels: the long side is `round(long * short_side /
    short)` (halves round up), per sample when `short_side` is a vector."""
    short_side = tf.cast(short_side, tf.int32)
    h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    s_f = tf.cast(short_side, tf.float32)
    portrait = height > width
    long_side = _round_int(tf.where(portrait, h_f * s_f / w_f,
                                    w_f * s_f / h_f))
    return (tf.where(portrait, long_side, short_side),
            tf.where(portrait, short_side, long_side))


@_REGISTER
class ScaleCrop(GeometricStep):
    """ResNet / VGG scale augmentation: short side to a random `L`, crop.

    Per image, `L` is an integer uniform in `short_side` (both ends
    included); the long side keeps the aspect ratio (rounded); a uniformly
    placed `crop x crop` window of the resized image is taken. Nothing is
    resized: the window is mapped back to source coordinates (output pixel
    `i` of a window at offset `o` reads source `(o + i + 0.5) * in /
    resized - 0.5`, the half-pixel convention of `tf.image.resize`), so
    the step is one matrix. With edge-replicating fill (`"nearest"` or
    `"reflect"`) the result equals `tf.image.resize(image, resized,
    "bilinear")` then slicing (no antialiasing when downsampling). At
    inference: `L = short_side[0]` and the central window; images that are
    already `crop x crop` are left alone.

    Simonyan & Zisserman, 2015 (scale jittering); He et al., 2016 (section
    3.4: short side in [256, 480], 224 crop).

    Args:
        short_side: an int, or an `(lo, hi)` pair of ints, `1 <= lo <= hi`.
        crop: the square crop's side, `1 <= crop <= short_side[0]`.
    """

    _ARGS = ("short_side", "crop")

    def __init__(self, short_side=(256, 480), crop=224):
        if is_int(short_side):
            short_side = (short_side, short_side)
        if (not isinstance(short_side, (tuple, list)) or len(short_side) != 2
                or not all(is_int(v) for v in short_side)
                or not 1 <= short_side[0] <= short_side[1]):
            raise ValueError(
                "`short_side` must be a positive int or a (lo, hi) pair of "
                f"ints with 1 <= lo <= hi. Received: short_side={short_side!r}")
        if not is_int(crop) or crop < 1:
            raise ValueError(
                f"`crop` must be a positive int. Received: crop={crop!r}")
        if crop > short_side[0]:
            raise ValueError(
                "`crop` cannot be larger than the smallest resized short "
                f"side short_side[0]={short_side[0]}: the crop would not fit "
                f"in the resized image. Received: crop={crop}")
        self.short_side = (int(short_side[0]), int(short_side[1]))
        self.crop = int(crop)

    def output_size(self, height, width):
        return self.crop, self.crop

    def windows(self, batch_size, height, width, seed, training):
        """Per-image `(short_side, offset_y, offset_x)`, `(batch,)` int32:
        the resized short side and the window's corner in the resized
        image."""
        lo, hi = self.short_side
        if training:
            u = random_uniform((batch_size, 3), seed)
            short = tf.minimum(lo + tf.cast(tf.floor(
                u[:, 0] * (hi - lo + 1)), tf.int32), hi)
        else:
            short = tf.fill([batch_size], lo)
        resized_h, resized_w = resized_shape(height, width, short)
        room_y, room_x = resized_h - self.crop, resized_w - self.crop
        if not training:
            return short, room_y // 2, room_x // 2
        offset_y = tf.cast(tf.floor(u[:, 1] * tf.cast(room_y + 1, tf.float32)),
                           tf.int32)
        offset_x = tf.cast(tf.floor(u[:, 2] * tf.cast(room_x + 1, tf.float32)),
                           tf.int32)
        return (short, tf.minimum(offset_y, room_y),
                tf.minimum(offset_x, room_x))

    def window_matrices(self, height, width, short, offset_y, offset_x):
        """Output-to-source matrices of the windows of `windows`."""
        resized_h, resized_w = resized_shape(height, width, short)
        step_y = tf.cast(height, tf.float32) / tf.cast(resized_h, tf.float32)
        step_x = tf.cast(width, tf.float32) / tf.cast(resized_w, tf.float32)
        shift_y = (tf.cast(offset_y, tf.float32) + 0.5) * step_y - 0.5
        shift_x = (tf.cast(offset_x, tf.float32) + 0.5) * step_x - 0.5
        return scale_translate(step_x, step_y, shift_x, shift_y)

    def draw(self, batch_size, height, width, seed, training):
        if not training and isinstance(height, int) and (
                height, width) == (self.crop, self.crop):
            return None, {}  # already cropped: left alone at inference
        short, offset_y, offset_x = self.windows(batch_size, height, width,
                                                 seed, training)
        return (self.window_matrices(height, width, short, offset_y,
                                     offset_x),
                {"short_side": short, "offset_y": offset_y,
                 "offset_x": offset_x})


@_REGISTER
class Flip(GeometricStep):
    """Random flips, each with probability 0.5 (per image).

    Args:
        mode: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"`
            (independent draws), as `keras.layers.RandomFlip`.
    """

    _ARGS = ("mode",)
    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal"):
        if mode not in self._MODES:
            raise ValueError(f"`mode` must be one of {self._MODES}. "
                             f"Received: mode={mode!r}")
        self.mode = mode

    def draw(self, batch_size, height, width, seed, training):
        if not training:
            return None, {}
        u = random_uniform((batch_size, 2), seed)
        one = tf.ones([batch_size])
        fx = tf.where((u[:, 0] < 0.5) & (self.mode != "vertical"), -1.0, one)
        fy = tf.where((u[:, 1] < 0.5) & (self.mode != "horizontal"), -1.0, one)
        w = tf.cast(width, tf.float32) - 1.0
        h = tf.cast(height, tf.float32) - 1.0
        return (scale_translate(fx, fy, (1.0 - fx) / 2.0 * w,
                                (1.0 - fy) / 2.0 * h),
                {"flip_x": fx < 0, "flip_y": fy < 0})


def affine_matrices(height, width, rotation=0.0, shear=0.0, scale=0.0,
                    aspect=0.0, translation_x=0.0, translation_y=0.0,
                    flip=False):
    """Output-to-source matrices of rotation, shear, zoom, aspect,
    translation and flip about the image centre.

    With the centre `c = ((width - 1) / 2, (height - 1) / 2)` and, about
    `c`,

        F = diag(-1 if flip else 1, 1)        horizontal flip
        Z = diag((1 + scale) * exp(aspect / 2), (1 + scale) * exp(-aspect / 2))
        S = [[1, shear], [0, 1]]              horizontal shear
        R = [[cos t, -sin t], [sin t, cos t]], t = 2 * pi * rotation
        T = shift by -(translation_x * width, translation_y * height)

    the matrix is `M = C F Z S R T C^-1` (`C` moves the origin to `c`). In
    output-to-input form the image-space steps read left to right in the
    order they act on the image: flip, zoom, shear, rotate, then translate
    (so the shift is in output pixels, unaffected by the rotation). Each
    part follows its Keras layer: `R` is `keras.layers.RandomRotation`'s
    matrix for `factor=rotation`, `Z` is `keras.layers.RandomZoom`'s for
    `height_factor=width_factor=scale` (positive zooms out), `S` is
    `keras.layers.RandomShear`'s x shear but about the centre instead of
    the top-left corner, `T` is `keras.layers.RandomTranslation`'s (positive
    moves the content right/down).

    Args:
        height: image height in pixels (int or scalar tensor).
        width: image width in pixels.
        rotation: rotation as a fraction of a full turn, shape `()` or
            `(batch,)` like every parameter below; they broadcast together.
        shear: horizontal shear coefficient (`x_in += shear * y_out`).
        scale: zoom: sampling step `1 + scale`, positive zooms out.
        aspect: log of the ratio of the horizontal to the vertical sampling
            step; positive squeezes the content horizontally.
        translation_x: shift right as a fraction of the width.
        translation_y: shift down as a fraction of the height.
        flip: whether to flip horizontally (bool or 0/1).

    Returns:
        A float32 tensor of shape `broadcast_shape + (3, 3)`.
    """
    rotation, shear, scale, aspect, tx, ty, flip = broadcast(
        rotation, shear, scale, aspect, translation_x, translation_y, flip)
    zero = rotation * 0.0
    one = zero + 1.0
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0 + zero
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0 + zero
    theta = 2.0 * math.pi * rotation
    cos, sin = tf.cos(theta), tf.sin(theta)
    zoom_x = (1.0 + scale) * tf.exp(aspect / 2.0)
    zoom_y = (1.0 + scale) * tf.exp(-aspect / 2.0)
    parts = [
        matrix(one, zero, cx, zero, one, cy),                     # C
        matrix(1.0 - 2.0 * flip, zero, zero, zero, one, zero),    # F
        matrix(zoom_x, zero, zero, zero, zoom_y, zero),           # Z
        matrix(one, shear, zero, zero, one, zero),                # S
        matrix(cos, -sin, zero, sin, cos, zero),                  # R
        matrix(one, zero, -tx * tf.cast(width, tf.float32),
               zero, one, -ty * tf.cast(height, tf.float32)),     # T
        matrix(one, zero, -cx, zero, one, -cy),                   # C^-1
    ]
    matrices = parts[0]
    for part in parts[1:]:
        matrices = tf.linalg.matmul(matrices, part)
    return matrices


@_REGISTER
class Affine(GeometricStep):
    """Random rotation, shear, zoom, aspect, translation (and flip) about
    the image centre, per image (see `affine_matrices` for the exact maps).

    Each range takes a number `f >= 0`, meaning `[-f, f]`, or a `(lo, hi)`
    pair; values are drawn uniformly per image. Identity at inference.

    Args:
        rotation: fraction of a full turn (`keras.layers.RandomRotation`'s
            `factor`).
        shear: horizontal shear coefficient (`keras.layers.RandomShear`'s
            `x_factor`).
        scale: zoom (`keras.layers.RandomZoom`'s factor; sampling step
            `1 + scale`, positive zooms out); above -1.
        aspect: log of the horizontal over the vertical sampling step.
        translation: fraction of the size, x and y drawn independently, as
            `keras.layers.RandomTranslation`; within [-1, 1].
        flip: also flip horizontally with probability 0.5.
    """

    _ARGS = ("rotation", "shear", "scale", "aspect", "translation", "flip")
    NAMES = ("rotation", "shear", "scale", "aspect", "translation_x",
             "translation_y")

    def __init__(self, rotation=0.0, shear=0.0, scale=0.0, aspect=0.0,
                 translation=0.0, flip=False):
        self.rotation = range_pair(rotation, "rotation")
        self.shear = range_pair(shear, "shear")
        self.scale = range_pair(scale, "scale")
        if self.scale[0] <= -1.0:
            raise ValueError(
                "`scale` must stay above -1 (a zoom step of 1 + scale > 0). "
                f"Received: scale={scale!r}")
        self.aspect = range_pair(aspect, "aspect")
        self.translation = range_pair(translation, "translation", lower=-1.0,
                                 upper=1.0)
        self.flip = check_bool("flip", flip)

    def parameters(self, batch_size, seed, training):
        """The drawn parameters, `{name: (batch,)}` as `affine_matrices`
        takes them (zeros at inference)."""
        if not training:
            zeros = tf.zeros([batch_size])
            return {**{name: zeros for name in self.NAMES},
                    "flip": zeros > 0.0}
        ranges = (self.rotation, self.shear, self.scale, self.aspect,
                  self.translation, self.translation)
        u = random_uniform((batch_size, 7), seed)
        params = {name: lo + (hi - lo) * u[:, i]
                  for i, (name, (lo, hi)) in enumerate(zip(self.NAMES, ranges))}
        params["flip"] = (u[:, 6] < 0.5) & self.flip
        return params

    def draw(self, batch_size, height, width, seed, training):
        if not training:
            return None, {}
        params = self.parameters(batch_size, seed, training)
        return affine_matrices(height, width, **params), params


# ------------------------------------------------------------------ color

# ITU-R BT.601 luma, the grayscale of `tf.image.rgb_to_grayscale`.
LUMA = np.array([0.299, 0.587, 0.114])
# RGB -> YIQ (FCC NTSC); hue is a rotation of the (I, Q) plane.
_YIQ = np.array([[0.299, 0.587, 0.114],
                 [0.595716, -0.274453, -0.321263],
                 [0.211456, -0.522591, 0.311135]])
_YIQ_INV = np.linalg.inv(_YIQ)


def _batch_eye(batch_size):
    return tf.eye(3, batch_shape=[batch_size])


@_REGISTER
class Brightness(ColorStep):
    """Adds `delta * (high - low)` to every channel, `delta` uniform in
    `factor` per image: `keras.layers.RandomBrightness`'s meaning.

    Args:
        factor: `f` in [0, 1] for `[-f, f]`, or a `(lo, hi)` pair within
            [-1, 1].
    """

    _ARGS = ("factor",)

    def __init__(self, factor):
        self.factor = range_pair(factor, "factor", lower=-1.0, upper=1.0)

    def draw(self, batch_size, seed, training, value_range):
        if not training:
            return None, {}
        delta = _uniform((batch_size,), *self.factor, seed) * (
            value_range[1] - value_range[0])
        return ((_batch_eye(batch_size), tf.tile(delta[:, None], [1, 3]),
                 None), {"delta": delta})


@_REGISTER
class Contrast(ColorStep):
    """`(x - mean) * c + mean` with the per-channel mean of the image and
    `c` uniform in `[1 - lo, 1 + hi]` per image:
    `keras.layers.RandomContrast`'s meaning.

    Args:
        factor: `f` in [0, 1] for `c` in `[1 - f, 1 + f]`, or a `(lo, hi)`
            pair for `[1 - lo, 1 + hi]`.
    """

    _ARGS = ("factor",)

    def __init__(self, factor):
        pair = (factor, factor) if _is_number(factor) else factor
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                or not all(_is_number(v) and 0 <= v <= 1 for v in pair)):
            raise ValueError(
                "`factor` must be a number in [0, 1] or a (lo, hi) pair of "
                f"numbers in [0, 1]. Received: factor={factor!r}")
        self.factor = (float(pair[0]), float(pair[1]))

    def draw(self, batch_size, seed, training, value_range):
        if not training:
            return None, {}
        c = _uniform((batch_size,), 1.0 - self.factor[0],
                     1.0 + self.factor[1], seed)
        return ((c[:, None, None] * _batch_eye(batch_size),
                 tf.zeros([batch_size, 3]), 1.0 - c), {"contrast": c})


class _UnitFactorStep(ColorStep):
    """A color step whose `factor` is `f` in [0, 1], meaning `[0, f]`, or a
    `(lo, hi)` pair within [0, 1] (Keras's convention for saturation and
    hue)."""

    _ARGS = ("factor",)

    def __init__(self, factor):
        if _is_number(factor):
            factor = (0.0, factor)
        self.factor = range_pair(factor, "factor", symmetric=False, lower=0.0,
                            upper=1.0)


@_REGISTER
class Saturation(_UnitFactorStep):
    """Mixes each image with its grayscale: `gray + s * (x - gray)`, gray
    the BT.601 luma (`tf.image.rgb_to_grayscale`), `s = v / (1 - v)` with
    `v` uniform in `factor` per image (`keras.layers.RandomSaturation`'s
    draw: `v = 0.5` keeps the image, 0 makes it gray). Keras scales the S
    channel of HSV instead, which is not affine in RGB; the grayscale mix is
    torchvision's `adjust_saturation`.

    Args:
        factor: `f` in [0, 1] for `v` in `[0, f]`, or a `(lo, hi)` pair
            within [0, 1].
    """

    def draw(self, batch_size, seed, training, value_range):
        if not training:
            return None, {}
        v = _uniform((batch_size,), *self.factor, seed)
        s = v / (1.0 - v + keras.config.epsilon())
        gray = tf.constant(np.tile(LUMA, (3, 1)), tf.float32)  # rows = luma
        a = (1.0 - s)[:, None, None] * gray + s[:, None, None] * tf.eye(3)
        return (a, tf.zeros([batch_size, 3]), None), {"saturation": s}


@_REGISTER
class Hue(_UnitFactorStep):
    """Rotates the chroma plane by `+-u / 2` of a turn, `u` uniform in
    `factor` and the sign random per image (`keras.layers.RandomHue`'s
    draw). Keras shifts the H channel of HSV, which is not affine in RGB;
    here the rotation is of the (I, Q) plane of YIQ, which keeps the luma.

    Args:
        factor: `f` in [0, 1] for `u` in `[0, f]`, or a `(lo, hi)` pair
            within [0, 1].
    """

    def draw(self, batch_size, seed, training, value_range):
        if not training:
            return None, {}
        sign = tf.where(random_uniform((batch_size,), seed) > 0.5,
                        -1.0, 1.0)
        turns = sign * _uniform((batch_size,), *self.factor, seed) * 0.5
        theta = 2.0 * math.pi * turns
        cos, sin = tf.cos(theta), tf.sin(theta)
        zero, one = tf.zeros_like(cos), tf.ones_like(cos)
        rotation = tf.stack([tf.stack([one, zero, zero], -1),
                             tf.stack([zero, cos, -sin], -1),
                             tf.stack([zero, sin, cos], -1)], -2)
        a = tf.matmul(tf.constant(_YIQ_INV, tf.float32),
                      tf.matmul(rotation, tf.constant(_YIQ, tf.float32)))
        return (a, tf.zeros([batch_size, 3]), None), {"hue_turns": turns}


def lighting_offsets(alpha, eigenvalues, eigenvectors):
    """AlexNet's PCA lighting offsets, `(batch, 3)`: `V @ (alpha * lambda)`
    per image for `(batch, 3)` `alpha`."""
    dtype = alpha.dtype
    return tf.matmul(alpha * tf.cast(eigenvalues, dtype),
                     tf.cast(eigenvectors, dtype), transpose_b=True)


@_REGISTER
class Lighting(ColorStep):
    """AlexNet's PCA lighting: adds `V @ (alpha * lambda)` to every pixel,
    `alpha ~ N(0, alphastd)` per image and component (see `PCALighting`,
    which also learns the components with `adapt()`).

    Krizhevsky et al., 2012, section 4.1.

    Args:
        alphastd: standard deviation of `alpha`, >= 0.
        eigenvalues: the 3 eigenvalues of the RGB covariance, for pixels
            in the layer's `value_range` (e.g. `IMAGENET_EIGENVALUES` times
            255 for [0, 255]).
        eigenvectors: 3x3, column `i` the eigenvector of `eigenvalues[i]`.
    """

    _ARGS = ("alphastd", "eigenvalues", "eigenvectors")

    def __init__(self, alphastd, eigenvalues, eigenvectors):
        if not _is_number(alphastd) or alphastd < 0:
            raise ValueError("`alphastd` must be a non-negative number. "
                             f"Received: alphastd={alphastd!r}")
        values = np.asarray(eigenvalues, dtype="float64")
        vectors = np.asarray(eigenvectors, dtype="float64")
        if (values.shape != (3,) or not np.all(np.isfinite(values))
                or np.any(values < 0)):
            raise ValueError("`eigenvalues` must be 3 finite non-negative "
                             f"numbers. Received: eigenvalues={eigenvalues!r}")
        if vectors.shape != (3, 3) or not np.all(np.isfinite(vectors)):
            raise ValueError("`eigenvectors` must be a finite 3x3 matrix. "
                             f"Received: eigenvectors={eigenvectors!r}")
        self.alphastd = float(alphastd)
        self.eigenvalues = values.tolist()
        self.eigenvectors = vectors.tolist()

    def draw(self, batch_size, seed, training, value_range):
        if not training or self.alphastd == 0:
            return None, {}
        alpha = random_normal((batch_size, 3), self.alphastd, seed)
        offsets = lighting_offsets(alpha, self.eigenvalues, self.eigenvectors)
        return (_batch_eye(batch_size), offsets, None), {"alpha": alpha}


def get(step):
    """A step from a step object or its `keras.saving` serialization."""
    if isinstance(step, _Step):
        return step
    if isinstance(step, dict):
        step = keras.saving.deserialize_keras_object(step)
        if isinstance(step, _Step):
            return step
    raise ValueError(
        "Each step must be a geometric step (ResizedCrop, ScaleCrop, Flip, "
        "Affine) or a color step (Brightness, Contrast, Saturation, Hue, "
        f"Lighting) of keras_cnnpractice.layers.augment_steps. Received: "
        f"{step!r}")
