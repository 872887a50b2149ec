"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with
Convolutions", 2015), and an Inception-v3-style network built from the
factorized modules."""

import keras

from keras_cnnpractice.layers import InceptionModule
from keras_cnnpractice.layers import LocalResponseNormalization
from keras_cnnpractice.models.registry import register_model

L = keras.layers

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_TABLE = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _aux_head(x, num_classes, name):
    """Auxiliary classifier: 5x5/3 average pool, 1x1 conv 128, FC 1024."""
    padding = "valid" if min(x.shape[1:3]) >= 5 else "same"
    x = L.AveragePooling2D(5, 3, padding=padding, name=f"{name}_pool")(x)
    x = L.Conv2D(128, 1, activation="relu", name=f"{name}_conv")(x)
    x = L.Flatten()(x)
    x = L.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = L.Dropout(0.7)(x)
    return L.Dense(num_classes, activation="softmax", name=f"{name}_out")(x)


@register_model("googlenet")
def googlenet(input_shape=(224, 224, 3), num_classes=1000, aux_heads=False,
              dropout=0.4):
    """GoogLeNet with the widths of table 1 (`GOOGLENET_TABLE`).

    With `aux_heads=True` the model has three outputs, `[main, aux1, aux2]`
    (the auxiliary classifiers on 4a and 4d, to be weighted 0.3 in the
    loss during training). 'same' padding throughout, so 32x32 inputs work.
    """
    inputs = keras.Input(input_shape, name="image")
    x = L.Conv2D(64, 7, strides=2, padding="same", activation="relu",
                 name="conv1")(inputs)
    x = L.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = LocalResponseNormalization(name="norm1")(x)
    x = L.Conv2D(64, 1, activation="relu", name="conv2_reduce")(x)
    x = L.Conv2D(192, 3, padding="same", activation="relu", name="conv2")(x)
    x = LocalResponseNormalization(name="norm2")(x)
    x = L.MaxPooling2D(3, 2, padding="same", name="pool2")(x)
    aux = []
    for stage in ("3a", "3b", "pool3", "4a", "4b", "4c", "4d", "4e", "pool4",
                  "5a", "5b"):
        if stage.startswith("pool"):
            x = L.MaxPooling2D(3, 2, padding="same", name=stage)(x)
            continue
        x = InceptionModule(*GOOGLENET_TABLE[stage], name=f"inception_{stage}")(x)
        if aux_heads and stage in ("4a", "4d"):
            aux.append(_aux_head(x, num_classes, f"aux_{stage}"))
    x = L.GlobalAveragePooling2D(name="avgpool")(x)
    x = L.Dropout(dropout)(x)
    outputs = L.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, [outputs, *aux] if aux else outputs,
                       name="googlenet")


@register_model("inception_v3_style")
def inception_v3_style(input_shape=(299, 299, 3), num_classes=1000,
                       dropout=0.2):
    """A network in the shape of Inception-v3 (Szegedy et al., 2016) built
    from this package's factorized modules, with batch normalization: a
    3x3-convolution stem, three modules with the 5x5 as two 3x3s (figure
    5), four with 7x7s as 1x7 + 7x1 pairs (figure 6), two with 3x3s as 1x3 +
    3x1 pairs, separated by stride-2 max pooling; global average pooling and
    the classifier. Not the exact published network (its grid-reduction
    and expanded-filter-bank modules are replaced by pooling and figure-6
    modules). 'same' padding, so 32x32 inputs work."""
    inputs = keras.Input(input_shape, name="image")

    def conv_bn(x, filters, size, strides=1, name=None):
        x = L.Conv2D(filters, size, strides=strides, padding="same",
                     use_bias=False, name=name)(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.Activation("relu", name=f"{name}_act")(x)

    x = conv_bn(inputs, 32, 3, strides=2, name="stem1")
    x = conv_bn(x, 32, 3, name="stem2")
    x = conv_bn(x, 64, 3, name="stem3")
    x = L.MaxPooling2D(3, 2, padding="same", name="stem_pool1")(x)
    x = conv_bn(x, 80, 1, name="stem4")
    x = conv_bn(x, 192, 3, name="stem5")
    x = L.MaxPooling2D(3, 2, padding="same", name="stem_pool2")(x)
    for i, proj in enumerate((32, 64, 64)):
        x = InceptionModule(64, 48, 64, 64, 96, proj, factorization="5x5",
                            batch_norm=True, name=f"mixed_5x5_{i}")(x)
    x = L.MaxPooling2D(3, 2, padding="same", name="reduce1")(x)
    for i, width in enumerate((128, 160, 160, 192)):
        x = InceptionModule(192, width, 192, width, 192, 192,
                            factorization="nxn", n=7, batch_norm=True,
                            name=f"mixed_7x7_{i}")(x)
    x = L.MaxPooling2D(3, 2, padding="same", name="reduce2")(x)
    for i in range(2):
        x = InceptionModule(320, 384, 384, 448, 384, 192, factorization="nxn",
                            n=3, batch_norm=True, name=f"mixed_3x3_{i}")(x)
    x = L.GlobalAveragePooling2D(name="avgpool")(x)
    x = L.Dropout(dropout)(x)
    outputs = L.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="inception_v3_style")
