"""VGG-11/13/16/19 (Simonyan & Zisserman, 2015, configurations A, B, D, E)."""

import functools

import keras

from keras_cnnpractice.models.registry import register_model

L = keras.layers

# Convolutions per stage; widths 64, 128, 256, 512, 512.
CONFIGS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2),
           "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}


def vgg(name, input_shape=(224, 224, 3), num_classes=1000, dropout=0.5):
    """Stacks of 3x3 convolutions (stride 1, pad 1) and 2x2 max pooling,
    then FC-4096, FC-4096 and the classifier; the same layers and parameter
    counts as `keras.applications`' VGG16/VGG19 with `include_top=True`
    (plus dropout, which has no weights). Input side: a multiple of 32."""
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for stage, (depth, width) in enumerate(
            zip(CONFIGS[name], (64, 128, 256, 512, 512)), start=1):
        for i in range(1, depth + 1):
            x = L.Conv2D(width, 3, padding="same", activation="relu",
                         name=f"block{stage}_conv{i}")(x)
        x = L.MaxPooling2D(2, name=f"block{stage}_pool")(x)
    x = L.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = L.Dense(4096, activation="relu", name=f"fc{i}")(x)
        x = L.Dropout(dropout)(x)
    outputs = L.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


for _name in CONFIGS:
    register_model(_name)(functools.partial(vgg, _name))
