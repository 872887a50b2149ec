"""Quantizers with straight-through gradients, in larq's style.

Each quantizer is a small pure function wrapped in `tf.custom_gradient`,
plus a thin serializable class; `get()` resolves strings, dicts, instances
and callables, so layers can take `kernel_quantizer="ste_sign"`.

* `ste_sign`: sign (+1 for 0), gradient passed where |x| <= clip_value
  (Courbariaux, Hubara et al., "Binarized Neural Networks", 2016).
* `scaled_ste_sign`: `ste_sign` times the mean |x| per output channel
  (XNOR-Net's kernel scaling).
* `approx_sign`: sign, with the gradient of a piecewise quadratic
  approximation, 2 - 2|x| inside [-1, 1] (Liu et al., "Bi-Real Net", 2018).
* `fixed_point`: signed fixed point <word_bits, frac_bits> through the
  compiled `stochastic_round` op (Gupta et al., 2015).
* `dynamic_fixed_point`: fixed point whose binary point is chosen per tensor
  from its largest magnitude (Courbariaux et al., "Training deep neural
  networks with low precision multiplications", 2015).
"""

import keras
import tensorflow as tf

from keras_cnnpractice.custom_ops import stochastic_round
from keras_cnnpractice.custom_ops.stochastic_round import check_rounding


def _sign(x):
    return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x))


def ste_sign(x, clip_value=1.0):
    """+1 where x >= 0, else -1; gradient `dy * (|x| <= clip_value)`.

    `clip_value=None` passes every gradient through unchanged.
    """
    @tf.custom_gradient
    def forward(x):
        def grad(dy):
            if clip_value is None:
                return dy
            return dy * tf.cast(tf.abs(x) <= clip_value, dy.dtype)
        return _sign(x), grad
    # A tensor, not a variable: the gradient goes to whatever x was read from.
    return forward(tf.convert_to_tensor(x))


def scaled_ste_sign(x, clip_value=1.0):
    """XNOR-Net's binary kernel: `ste_sign(x) * alpha`, where `alpha` is the
    mean |x| over every axis but the last (one scale per output channel;
    Rastegari et al., "XNOR-Net", 2016). `alpha` is treated as a constant
    in the backward pass; the sign's gradient is straight-through."""
    x = tf.convert_to_tensor(x)
    alpha = tf.reduce_mean(tf.abs(x), axis=list(range(x.shape.rank - 1)),
                           keepdims=True)
    return ste_sign(x, clip_value) * tf.stop_gradient(alpha)


@tf.custom_gradient
def _approx_sign(x):
    def grad(dy):
        return dy * tf.maximum(tf.zeros_like(x), 2.0 - 2.0 * tf.abs(x))
    return _sign(x), grad


def approx_sign(x):
    """+1 where x >= 0, else -1; gradient `dy * max(0, 2 - 2|x|)`."""
    return _approx_sign(tf.convert_to_tensor(x))


def fixed_point(x, word_bits=16, frac_bits=14, rounding="stochastic",
                seed=None):
    """`stochastic_round(x, word_bits, frac_bits, rounding, seed)`: values
    `q * 2^-frac_bits`, saturating; straight-through inside the range."""
    return stochastic_round(x, word_bits=word_bits, frac_bits=frac_bits,
                            rounding=rounding, seed=seed)


def dynamic_fixed_point(x, word_bits=16, rounding="nearest", seed=None):
    """Fixed point with a shared exponent chosen from `max|x|`.

    The binary point is placed so the largest magnitude just fits: with
    `e = ceil(log2(max|x|))`, values are `q * 2^(e - word_bits + 1)` for
    integer `q` in `[-2^(word_bits-1), 2^(word_bits-1) - 1]`. An all-zero
    tensor stays zero. Straight-through gradient.
    """
    x = tf.convert_to_tensor(x)
    peak = tf.reduce_max(tf.abs(tf.cast(x, tf.float32)))
    exponent = tf.math.ceil(tf.math.log(tf.maximum(peak, 1e-30)) / tf.math.log(2.0))
    scale = tf.cast(tf.pow(2.0, exponent), x.dtype)
    inner = stochastic_round(x / tf.stop_gradient(scale), word_bits=word_bits,
                             frac_bits=word_bits - 1, rounding=rounding,
                             seed=seed)
    return inner * tf.stop_gradient(scale)


class Quantizer:
    """Base of the serializable quantizer classes (callable on tensors).

    `bits` is the width of the values it produces, read by
    `keras_cnnpractice.analysis.summarize` for the memory of quantized
    weights. `supports_jit` is False for quantizers that run a compiled op
    of this package, which XLA cannot compile.
    """

    bits = None
    supports_jit = True

    def __call__(self, x):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class SteSign(Quantizer):
    """`ste_sign` as an object; `clip_value=None` for no gradient clipping."""

    bits = 1

    def __init__(self, clip_value=1.0):
        if clip_value is not None and clip_value <= 0:
            raise ValueError("clip_value must be positive or None. Received: "
                             f"clip_value={clip_value!r}")
        self.clip_value = clip_value

    def __call__(self, x):
        return ste_sign(x, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class ScaledSteSign(SteSign):
    """`scaled_ste_sign` as an object."""

    def __call__(self, x):
        return scaled_ste_sign(x, self.clip_value)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class ApproxSign(Quantizer):
    """`approx_sign` as an object."""

    bits = 1

    def __call__(self, x):
        return approx_sign(x)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class FixedPoint(Quantizer):
    """`fixed_point` as an object (fresh random bits per call)."""

    supports_jit = False  # the compiled StochasticRound op

    def __init__(self, word_bits=16, frac_bits=14, rounding="stochastic"):
        check_rounding(rounding)
        self.word_bits, self.frac_bits, self.rounding = word_bits, frac_bits, rounding
        self.bits = word_bits

    def __call__(self, x):
        return fixed_point(x, self.word_bits, self.frac_bits, self.rounding)

    def get_config(self):
        return {"word_bits": self.word_bits, "frac_bits": self.frac_bits,
                "rounding": self.rounding}


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class DynamicFixedPoint(Quantizer):
    """`dynamic_fixed_point` as an object."""

    supports_jit = False  # the compiled StochasticRound op

    def __init__(self, word_bits=16, rounding="nearest"):
        check_rounding(rounding)
        self.word_bits, self.rounding = word_bits, rounding
        self.bits = word_bits

    def __call__(self, x):
        return dynamic_fixed_point(x, self.word_bits, self.rounding)

    def get_config(self):
        return {"word_bits": self.word_bits, "rounding": self.rounding}


_BY_NAME = {"ste_sign": SteSign, "scaled_ste_sign": ScaledSteSign,
            "approx_sign": ApproxSign,
            "fixed_point": FixedPoint, "dynamic_fixed_point": DynamicFixedPoint}


def serialize(quantizer):
    """Config dict of a quantizer (None stays None)."""
    return None if quantizer is None else keras.saving.serialize_keras_object(quantizer)


def get(identifier):
    """Resolves a quantizer.

    Args:
        identifier: None; a name (`"ste_sign"`, `"scaled_ste_sign"`, `"approx_sign"`,
            `"fixed_point"`, `"dynamic_fixed_point"`, with default
            arguments); a dict from `serialize()`; a `Quantizer`; or any
            callable on tensors.

    Raises:
        ValueError: an unknown name or something that is not a quantizer.
    """
    if identifier is None or isinstance(identifier, Quantizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown quantizer {identifier!r}; valid names: "
                             f"{', '.join(sorted(_BY_NAME))}.")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Cannot interpret {identifier!r} as a quantizer.")
