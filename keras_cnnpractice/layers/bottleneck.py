"""1x1 -> kxk -> 1x1 bottleneck, plain or as a ResNet residual block."""

import keras

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.layers import _sublayers as args
from keras_cnnpractice.layers.stochastic_depth import StochasticDepth


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class Bottleneck(keras.layers.Layer):
    """A 1x1 convolution down to `filters / reduction` channels, a kxk one at
    that width, and a 1x1 back up to `filters`.

    With C channels in and out and `reduction=2` it holds 3.25 C^2 weights
    where one 3x3 convolution holds 9 C^2 (Lin et al., "Network In Network",
    2014; Szegedy et al., "Going Deeper with Convolutions", 2015).

    With `residual=True` it is ResNet's bottleneck block (He et al., "Deep
    Residual Learning for Image Recognition", 2016): the last 1x1 is linear,
    the input is added back (through a 1x1 projection, with the same stride,
    when the channel count or the stride changes) and the activation follows
    the sum. `strides` applies to the first 1x1, as in `keras.applications`'
    ResNet50, whose blocks this reproduces exactly with `reduction=4,
    batch_norm=True`. `survival_probability` routes the residual sum
    through `StochasticDepth` (Huang et al., "Deep Networks with
    Stochastic Depth", 2016): in training the main branch is kept for each
    sample with that probability (and divided by it), at inference the
    block is the plain residual block.

    Args:
        filters: output channels.
        reduction: `filters / reduction` is the inner width; must divide
            `filters`.
        kernel_size: side of the middle convolution.
        residual: add the (projected) input back.
        strides: stride of the block (first 1x1 and projection).
        batch_norm: BatchNormalization after every convolution.
        activation: the nonlinearity.
        use_bias, kernel_initializer, kernel_regularizer: as in `Conv2D`.
        survival_probability: None, or (with `residual=True`) the
            probability in (0, 1] that the main branch survives a training
            step for a sample (stochastic depth).
        **kwargs: base `Layer` arguments.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, ceil(height / strides), ceil(width / strides), filters)`.
    """

    def __init__(self, filters, reduction=2, kernel_size=3, residual=False,
                 strides=1, batch_norm=False, activation="relu", use_bias=True,
                 kernel_initializer="he_normal", kernel_regularizer=None,
                 survival_probability=None, **kwargs):
        super().__init__(**kwargs)
        check_int("filters", filters, 1)
        check_int("reduction", reduction, 1)
        check_int("kernel_size", kernel_size, 1)
        check_int("strides", strides, 1)
        if filters % reduction:
            raise ValueError("reduction must divide filters. Received: "
                             f"filters={filters}, reduction={reduction}")
        if survival_probability is not None and not residual:
            raise ValueError(
                "survival_probability (stochastic depth) needs residual=True. "
                f"Received: survival_probability={survival_probability!r}, "
                f"residual={residual!r}")
        self.input_spec = keras.layers.InputSpec(ndim=4)
        self.filters = filters
        self.reduction = reduction
        self.kernel_size = kernel_size
        self.residual = residual
        self.strides = strides
        self.batch_norm = batch_norm
        args.set_common(self, activation, use_bias, kernel_initializer,
                        kernel_regularizer)
        inner = filters // reduction
        self.main = (
            args.conv_unit(self, inner, 1, "reduce", strides=strides)
            + args.conv_unit(self, inner, kernel_size, "conv")
            + args.conv_unit(self, filters, 1, "expand", activate=not residual))
        self.shortcut = []
        self.survival_probability = survival_probability
        self.stochastic_depth = (
            None if survival_probability is None else StochasticDepth(
                survival_probability, dtype=self.dtype_policy,
                name="stochastic_depth"))
        self.post = ([keras.layers.Activation(self.activation,
                                              dtype=self.dtype_policy,
                                              name="out_act")]
                     if residual else [])

    def build(self, input_shape):
        out_shape = args.build_chain(self.main, input_shape)
        if self.residual and (input_shape[-1] != self.filters
                              or self.strides != 1):
            self.shortcut = args.conv_unit(self, self.filters, 1, "projection",
                                           strides=self.strides,
                                           activate=False)
            args.build_chain(self.shortcut, input_shape)
        if self.stochastic_depth is not None:
            self.stochastic_depth.build([out_shape, out_shape])
        args.build_chain(self.post, out_shape)

    def call(self, inputs, training=None):
        x = args.call_chain(self.main, inputs, training)
        if self.stochastic_depth is not None:
            shortcut = args.call_chain(self.shortcut, inputs, training)
            x = self.stochastic_depth([shortcut, x], training=training)
        elif self.residual:
            x = x + args.call_chain(self.shortcut, inputs, training)
        return args.call_chain(self.post, x, training)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        size = (lambda n: None if n is None else -(-n // self.strides))
        return (batch, size(height), size(width), self.filters)

    def analysis_graph(self):
        """Structure for `keras_cnnpractice.analysis`."""
        if not self.residual:
            return {"branches": [self.main], "merge": None, "post": []}
        return {"branches": [self.main, self.shortcut], "merge": "add",
                "post": self.post}

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "reduction": self.reduction,
                       "kernel_size": self.kernel_size,
                       "residual": self.residual, "strides": self.strides,
                       "batch_norm": self.batch_norm,
                       "survival_probability": self.survival_probability,
                       **args.serialize_common(self)})
        return config
