"""Fixed-point quantization with stochastic rounding (Gupta et al., 2015).

`stochastic_round` runs the compiled `KerasCnnPractice>StochasticRound` op;
`stochastic_round_reference` is the same computation composed from TensorFlow
ops, kept to test the op and as an explicit fallback.
"""

import tensorflow as tf

from keras_cnnpractice.custom_ops import _loader

OP_NAME = "KerasCnnPractice>StochasticRound"
ROUNDING_MODES = ("stochastic", "nearest")


def fixed_point_range(word_bits, frac_bits):
    """Smallest and largest value of signed fixed point <word_bits, frac_bits>.

    Returns:
        `(lo, hi)` = `(-2^(word_bits-1), 2^(word_bits-1) - 1) * 2^-frac_bits`.
    """
    step = 2.0 ** -frac_bits
    return -(2.0 ** (word_bits - 1)) * step, (2.0 ** (word_bits - 1) - 1) * step


def check_rounding(rounding):
    """Raises ValueError unless `rounding` is one of `ROUNDING_MODES`."""
    if rounding not in ROUNDING_MODES:
        raise ValueError("rounding must be 'stochastic' or 'nearest'. "
                         f"Received: rounding={rounding!r}")


def _seed_tensor(seed):
    if seed is None:
        return tf.random.uniform([2], minval=tf.int64.min, maxval=tf.int64.max,
                                 dtype=tf.int64)
    if isinstance(seed, int):
        return tf.constant([seed, 0], dtype=tf.int64)
    return tf.cast(seed, tf.int64)


def stochastic_round(x, word_bits=16, frac_bits=14, rounding="stochastic",
                     seed=None, name=None):
    """Quantizes `x` to signed fixed point <word_bits, frac_bits>.

    Values are `q * 2^-frac_bits` with integer
    `q in [-2^(word_bits-1), 2^(word_bits-1) - 1]`; values outside that range
    (and +-inf) saturate, NaN stays NaN. With `rounding="stochastic"`, `x`
    rounds up with probability equal to its remainder below the next grid
    point, so `E[stochastic_round(x)] == x` inside the range (Gupta et al.,
    "Deep Learning with Limited Numerical Precision", ICML 2015);
    `rounding="nearest"` rounds half to even, like `numpy.round`.

    The arithmetic is float32; float16/bfloat16 results are cast back, which
    is exact while `word_bits` fits the type's significand (11 and 8 bits).
    The gradient is straight-through: `dy` where `lo <= x <= hi`, 0 where
    the value saturates.

    Args:
        x: float32, float16 or bfloat16 tensor.
        word_bits: total bits including sign, in [2, 24].
        frac_bits: fractional bits, in [0, 64].
        rounding: `"stochastic"` or `"nearest"`.
        seed: `None` for fresh random bits on each call (drawn with
            `tf.random.uniform`, so `tf.random.set_seed` makes runs
            repeatable); an int, or a shape-[2] int tensor such as
            `tf.random.Generator.make_seeds(1)[:, 0]`, for a deterministic
            result: the same seed and input always give the same output, on
            CPU and GPU alike (Philox4x32-10, element i uses counter i // 4).
        name: optional op name.

    Returns:
        A tensor of the same shape and dtype as `x`.

    Raises:
        tf.errors.InvalidArgumentError: bad `word_bits`, `frac_bits`,
            `rounding`, seed shape or dtype of `x`.
    """
    lib = _loader.load_op_library()
    with tf.name_scope(name or "stochastic_round"):
        return lib.keras_cnn_practice_stochastic_round(
            x, _seed_tensor(seed), word_bits=word_bits, frac_bits=frac_bits,
            rounding=rounding)


@tf.RegisterGradient(OP_NAME)
def _stochastic_round_grad(op, dy):
    lo, hi = fixed_point_range(op.get_attr("word_bits"),
                               op.get_attr("frac_bits"))
    x = op.inputs[0]
    inside = tf.logical_and(x >= tf.cast(lo, x.dtype), x <= tf.cast(hi, x.dtype))
    return [dy * tf.cast(inside, dy.dtype), None]


def stochastic_round_reference(x, word_bits=16, frac_bits=14,
                               rounding="stochastic", seed=None):
    """`stochastic_round` composed from TensorFlow ops (floor, uniform, where).

    Same contract as `stochastic_round` except the random stream: it draws
    from `tf.random.stateless_uniform` (when `seed` is given) or
    `tf.random.uniform`, so individual draws differ from the compiled op's.
    Differentiable with the same straight-through gradient.
    """
    check_rounding(rounding)
    x = tf.convert_to_tensor(x)
    lo, hi = fixed_point_range(word_bits, frac_bits)
    v = tf.cast(x, tf.float32) * (2.0 ** frac_bits)
    if rounding == "nearest":
        q = tf.math.round(v)  # half to even
    else:
        if seed is None:
            u = tf.random.uniform(tf.shape(v))
        else:
            u = tf.random.stateless_uniform(tf.shape(v), _seed_tensor(seed))
        f = tf.math.floor(v)
        q = tf.where(u < v - f, f + 1.0, f)
    q = tf.clip_by_value(q, lo * 2.0 ** frac_bits, hi * 2.0 ** frac_bits)
    y = tf.where(tf.math.is_nan(v), v, q * 2.0 ** -frac_bits)
    y = tf.cast(y, x.dtype)
    # Straight-through: the value of y, the gradient of x inside the range.
    passthrough = tf.where((x >= lo) & (x <= hi), x, tf.zeros_like(x))
    return passthrough + tf.stop_gradient(y - passthrough)
