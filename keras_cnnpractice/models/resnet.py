"""ResNets (He et al., "Deep Residual Learning for Image Recognition", 2016):
ImageNet ResNet-18/34 (basic blocks) and 50/101/152 (bottleneck blocks),
and the CIFAR ResNet-20/56 of section 4.2, optionally with stochastic depth
(Huang et al., "Deep Networks with Stochastic Depth", 2016)."""

import functools

import keras

from keras_cnnpractice.layers import Bottleneck
from keras_cnnpractice.layers import StochasticDepth
from keras_cnnpractice.layers.stochastic_depth import check_survival_probability
from keras_cnnpractice.models.registry import register_model

L = keras.layers

IMAGENET_DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3),
                   "resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3),
                   "resnet152": (3, 8, 36, 3)}


def survival_probabilities(num_blocks, final):
    """Stochastic depth's linear decay rule: block l of L (counted from 1 at
    the input) survives with probability p_l = 1 - l / L * (1 - p_L), where
    p_L = `final`; a list of L floats, or L Nones when `final` is None."""
    if final is None:
        return [None] * num_blocks
    check_survival_probability(final)
    return [1 - block / num_blocks * (1 - final)
            for block in range(1, num_blocks + 1)]


def basic_block(x, filters, strides, use_bias, name, survival_probability=None):
    """Two 3x3 conv + BN, the input added back (projected when the shape
    changes), ReLU after the sum. With a `survival_probability` the sum is
    a `StochasticDepth` layer (the same sum at inference)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = L.Conv2D(filters, 1, strides=strides, use_bias=use_bias,
                            name=f"{name}_proj")(x)
        shortcut = L.BatchNormalization(epsilon=1.001e-5,
                                        name=f"{name}_proj_bn")(shortcut)
    for i, s in enumerate((strides, 1), start=1):
        x = L.Conv2D(filters, 3, strides=s, padding="same", use_bias=use_bias,
                     name=f"{name}_conv{i}")(x)
        x = L.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn{i}")(x)
        if i == 1:
            x = L.Activation("relu", name=f"{name}_relu1")(x)
    if survival_probability is None:
        x = L.Add(name=f"{name}_add")([x, shortcut])
    else:
        x = StochasticDepth(survival_probability,
                            name=f"{name}_stochastic_depth")([shortcut, x])
    return L.Activation("relu", name=f"{name}_out")(x)


def imagenet_resnet(name, input_shape=(224, 224, 3), num_classes=1000,
                    use_bias=None, stochastic_depth=None):
    """ImageNet ResNet: 7x7/2 conv, 3x3/2 max pool, four stages (64, 128,
    256, 512 base widths, stride 2 from the second), global average pooling.

    `use_bias` defaults to True for the bottleneck nets, which then have
    exactly the layers and parameter counts of `keras.applications`'
    ResNet50/101/152, and False for ResNet-18/34 (no bias before batch norm,
    as in the paper: 11.7M and 21.8M parameters). 'same' padding in the
    blocks, so 32x32 inputs work.

    `stochastic_depth`: None for the plain network, or the survival
    probability p_L of the last residual block; block l of L then survives
    with `survival_probabilities(L, p_L)[l - 1]` (Huang et al. used 0.5).
    The inference graph and the parameter count do not change."""
    bottleneck = name not in ("resnet18", "resnet34")
    use_bias = bottleneck if use_bias is None else use_bias
    inputs = keras.Input(input_shape, name="image")
    x = L.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = L.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1")(x)
    x = L.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = L.Activation("relu", name="conv1_relu")(x)
    x = L.ZeroPadding2D(1, name="pool1_pad")(x)
    x = L.MaxPooling2D(3, 2, name="pool1")(x)
    survival = iter(survival_probabilities(sum(IMAGENET_DEPTHS[name]),
                                           stochastic_depth))
    for stage, (blocks, width) in enumerate(
            zip(IMAGENET_DEPTHS[name], (64, 128, 256, 512)), start=2):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 2 and block == 1 else 1
            block_name = f"conv{stage}_block{block}"
            if bottleneck:
                x = Bottleneck(4 * width, reduction=4, residual=True,
                               strides=strides, batch_norm=True,
                               use_bias=use_bias,
                               survival_probability=next(survival),
                               name=block_name)(x)
            else:
                x = basic_block(x, width, strides, use_bias, block_name,
                                next(survival))
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def cifar_resnet(name, blocks_per_stage, input_shape=(32, 32, 3),
                 num_classes=10, stochastic_depth=None):
    """CIFAR ResNet with 6n + 2 layers: a 3x3 conv with 16 filters, three
    stages of n basic blocks with 16, 32, 64 filters (stride 2 at the start
    of the second and third), global average pooling, the classifier.
    Shortcuts that change shape are 1x1 projections (the paper's option B),
    which adds a few thousand parameters to its 0.27M / 0.85M.
    `stochastic_depth` as in `imagenet_resnet`."""
    inputs = keras.Input(input_shape, name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = L.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = L.Activation("relu", name="conv1_relu")(x)
    survival = iter(survival_probabilities(3 * blocks_per_stage,
                                           stochastic_depth))
    for stage, width in enumerate((16, 32, 64), start=1):
        for block in range(1, blocks_per_stage + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = basic_block(x, width, strides, False,
                            f"stage{stage}_block{block}", next(survival))
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


for _name in IMAGENET_DEPTHS:
    register_model(_name)(functools.partial(imagenet_resnet, _name))
register_model("resnet20_cifar")(functools.partial(cifar_resnet, "resnet20_cifar", 3))
register_model("resnet56_cifar")(functools.partial(cifar_resnet, "resnet56_cifar", 9))
