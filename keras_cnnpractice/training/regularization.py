"""Weight decay for any model: an L2 penalty on every kernel."""

import keras

_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")


def add_l2(model, strength):
    """Puts `strength * sum(kernel ** 2)` on every kernel of a built model.

    The penalty is attached to the kernel variables themselves (Keras 3
    collects `variable.regularizer` into `model.losses`), so it works for
    any model of the zoo without rebuilding it. Biases, batch-norm and other
    non-kernel weights are left unpenalized, as is usual for weight decay.

    Args:
        model: a built Keras model.
        strength: the L2 coefficient (`--l2`); 0 removes the penalties this
            function put there.

    Returns:
        The number of kernels penalized.

    Raises:
        ValueError: a negative strength.
    """
    if strength < 0:
        raise ValueError(f"The L2 strength must be >= 0. Received: "
                         f"strength={strength}")
    regularizer = keras.regularizers.L2(strength) if strength else None
    kernels = [v for v in model.trainable_variables if v.name in _KERNELS]
    for variable in kernels:
        variable.regularizer = regularizer
    return len(kernels)
