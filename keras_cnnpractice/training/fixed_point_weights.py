"""Weights stored in fixed point during training (Gupta et al., 2015).

`store_weights_in_fixed_point(model, optimizer, "fixed16:14", "stochastic")`
rounds every trainable weight onto the <16, 14> grid now and after every
optimizer update, through the compiled `stochastic_round` op (applied as the
variables' constraint, which Keras runs right after each update). With
`rounding="nearest"` an update smaller than half a grid step is lost; with
`rounding="stochastic"` it survives in expectation, which is what lets
Gupta et al. train with 16-bit fixed-point weights.

The random bits are keyed by (optimizer step, variable index), so every
replica of a `tf.distribute` strategy rounds its copy of a variable
identically and the copies stay in sync.
"""

import tensorflow as tf

from keras_cnnpractice.custom_ops.stochastic_round import check_rounding
from keras_cnnpractice.custom_ops.stochastic_round import stochastic_round
from keras_cnnpractice.training.config import parse_weights_format

class FixedPointRounding:
    """A variable constraint: the (optionally constrained) value rounded to
    fixed point, keyed by the optimizer's step and the variable's index."""

    def __init__(self, word_bits, frac_bits, rounding, step, index,
                 inner=None):
        self.word_bits, self.frac_bits = word_bits, frac_bits
        self.rounding, self.step, self.index = rounding, step, index
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        seed = tf.stack([tf.cast(tf.convert_to_tensor(self.step), tf.int64),
                         tf.constant(self.index, tf.int64)])
        return stochastic_round(w, self.word_bits, self.frac_bits,
                                self.rounding, seed=seed)


def store_weights_in_fixed_point(model, optimizer, weights_format, rounding):
    """Keeps `model`'s trainable weights in fixed point while it trains.

    Call it inside the strategy scope, after `model` is built and with the
    optimizer it will train with; a `weights_format` of `"float"` does
    nothing. Any constraint a variable already has (e.g. `WeightClip`) runs
    first.

    Args:
        model: a built Keras model with float32/float16/bfloat16 weights.
        optimizer: its Keras optimizer (its `iterations` keys the rounding).
        weights_format: `"float"` or `"fixed<word_bits>:<frac_bits>"`.
        rounding: `"stochastic"` or `"nearest"`.

    Returns:
        The number of variables now stored in fixed point.
    """
    bits = parse_weights_format(weights_format)
    check_rounding(rounding)
    if bits is None:
        return 0
    variables = model.trainable_variables
    for index, variable in enumerate(variables):
        if variable.dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(
                "Fixed-point weights need float32, float16 or bfloat16 "
                f"variables. Received: {variable.path} of dtype "
                f"{variable.dtype}")
        rounding_fn = FixedPointRounding(*bits, rounding, optimizer.iterations,
                                         index, inner=variable.constraint)
        variable.constraint = rounding_fn
        # The starting point goes onto the grid too (step -1: a key no
        # update uses).
        start = FixedPointRounding(*bits, rounding, -1, index)
        variable.assign(start(variable.value))
    return len(variables)
