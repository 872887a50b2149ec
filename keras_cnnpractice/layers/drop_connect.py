"""DropConnect: a random subset of a layer's weights dropped in training."""

import keras

from keras_cnnpractice._validate import check_number
from keras_cnnpractice._validate import check_seed


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class DropConnect(keras.layers.Wrapper):
    """Drops each weight of the wrapped layer's kernel with probability `rate`.

    DropConnect (Wan et al., "Regularization of Neural Networks using
    DropConnect", ICML 2013) generalizes dropout from activations to
    weights: in training the wrapped layer computes its output with the
    kernel `W * M / (1 - rate)`, where `M` is a Bernoulli(1 - rate) mask of
    the kernel's shape; the bias is never dropped. The `1 / (1 - rate)`
    scaling makes the masked kernel equal to `W` in expectation, so at
    inference (`training=False`: `predict`, `evaluate`, exports) the layer
    is exactly the wrapped layer with its plain kernel. (The paper's
    inference instead moment-matches a Gaussian over the pre-activations;
    the plain kernel is the "mean network" it compares against, and what
    the expectation of the training output equals for a linear layer.)

    One fresh mask is drawn per call and shared by every sample of the
    batch (the paper draws one mask per sample, which costs a kernel per
    sample; a shared mask has the same expectation and higher gradient
    variance). Under `tf.distribute` every replica draws from the same seed
    state, so the replicas of one step share their mask too.

    The masked kernel is substituted for the kernel variable only for the
    duration of the wrapped layer's call (through a `keras.StatelessScope`
    mapping), so the variable itself never changes, gradients reach it
    through the mask, and the wrapped layer's own `call` (activation, bias,
    strides, padding, groups, ...) is reused as is. It works with any layer
    whose `build` creates a `kernel` variable: `Dense`, `Conv1D/2D/3D`,
    their transposes, `EinsumDense`, and this package's quantized layers.

    Args:
        layer: the layer to wrap; it must have (or create in `build`) a
            `kernel` variable, else ValueError (when wrapping a built layer,
            or when the wrapper is built).
        rate: probability of dropping each weight, in [0, 1). 0 makes the
            wrapper the identity.
        seed: integer seed of the wrapper's `keras.random.SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name`; `dtype`
            defaults to the wrapped layer's dtype policy.

    Input shape:
        That of the wrapped layer.

    Output shape:
        That of the wrapped layer.
    """

    def __init__(self, layer, rate, seed=None, **kwargs):
        if isinstance(layer, keras.layers.Layer):
            # The wrapper casts the inputs: by default as the wrapped layer.
            kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        check_number("rate", rate, 0, 1, high_open=True)
        check_seed(seed)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        if layer.built:
            self._kernel_variable()

    def _kernel_variable(self):
        kernel = getattr(self.layer, "kernel", None)
        if not isinstance(kernel, keras.Variable):
            raise ValueError(
                "DropConnect wraps layers with a `kernel` variable (Dense, "
                f"Conv2D, ...). Received: layer={self.layer.name!r} of type "
                f"{type(self.layer).__name__}, whose kernel is {kernel!r}")
        return kernel

    def build(self, input_shape=None):
        super().build(input_shape)
        self._kernel_variable()

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return self.layer(inputs, training=training)
        kernel = self._kernel_variable()
        masked = keras.random.dropout(kernel.value, self.rate,
                                      seed=self.seed_generator)
        with keras.StatelessScope(state_mapping=[(kernel, masked)],
                                  collect_losses=True) as scope:
            outputs = self.layer(inputs, training=training)
        # The scope holds back what the call added: apply it here (an
        # activity regularizer's loss, updates of other variables).
        for loss in scope.losses:
            self.add_loss(loss)
        for variable in self.layer.variables:
            value = scope.get_current_value(variable)
            if variable is not kernel and value is not None:
                variable.assign(value)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def analysis_graph(self):
        """Structure for `keras_cnnpractice.analysis`: the wrapped layer."""
        return {"branches": [[self.layer]], "merge": None, "post": []}

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
