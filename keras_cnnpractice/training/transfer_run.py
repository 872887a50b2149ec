"""What `train.py --init_from=PATH --transfer=...` does besides plain fitting.

`finetune` and `multistage` compile the pretrained model with a learning
rate per layer group (`keras_cnnpractice.transfer`) and then train as any
run does (checkpoints, resume, export); `features` trains only a linear
classifier on cached features of the frozen network.
"""

import keras

from keras_cnnpractice import transfer



def pretrained_model(init_from, num_classes, new_head_classes=None):
    """The pretrained network with a fresh classifier when one is needed.

    The head is replaced when `new_head_classes` is given or the network's
    class count differs from the data's `num_classes`.

    Returns:
        `(model, new_layers)`: the names of the layers that start from
        scratch (the new head; empty when the old head is kept).

    Raises:
        ValueError: `new_head_classes` that disagrees with the data.
    """
    if new_head_classes and new_head_classes != num_classes:
        raise ValueError(f"--new_head_classes={new_head_classes}, but the "
                         f"training data has {num_classes} classes")
    model = transfer.load_pretrained(init_from)
    if new_head_classes or model.output.shape[-1] != num_classes:
        model = transfer.replace_head(model, num_classes)
        return model, [model.layers[-1].name]
    return model, []


def compile_groups(model, new_layers, optimizer, stage1=False):
    """Compiles with the default per-group rates (pretrained 0.01, new 0.1
    of the base rate), or for a multi-stage run's first stage (new only)."""
    multipliers = dict(transfer.DEFAULT_MULTIPLIERS)
    if stage1:
        multipliers["pretrained"] = 0.0
    return transfer.compile_with_groups(model, {"new": new_layers},
                                        optimizer=optimizer,
                                        multipliers=multipliers)


def train_new_head(model, new_layers, optimizer, train_ds, steps_per_epoch,
                   max_epochs=20, patience=2):
    """Stage 1 of `multistage`: only the new head trains, until its training
    loss stops falling (or `max_epochs`)."""
    if not new_layers:
        raise ValueError("--transfer=multistage trains a new head first; "
                         "give --new_head_classes or data with another "
                         "number of classes")
    compile_groups(model, new_layers, optimizer, stage1=True)
    history = model.fit(train_ds, epochs=max_epochs, shuffle=False,
                        steps_per_epoch=steps_per_epoch, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(
                            monitor="loss", min_delta=1e-3,
                            patience=patience)])
    return len(history.history["loss"])


def fit_on_features(model, feature_layer, train_plain_ds, num_classes,
                    cache_dir, epochs, learning_rate, l2):
    """A linear classifier on the cached features of `feature_layer`.

    Args:
        model: the pretrained network (frozen here).
        feature_layer: a layer name; None for the layer before the last.
        train_plain_ds: the training images, unaugmented and unshuffled.
        cache_dir: where `cache_features` stores them (resumable).

    Returns:
        A model from images to class scores: the frozen trunk up to
        `feature_layer`, then the classifier.
    """
    layer = model.get_layer(feature_layer or model.layers[-2].name)
    extractor = transfer.FeatureExtractor(model, [layer.name])
    features, labels = transfer.cache_features(extractor, train_plain_ds,
                                               cache_dir)
    classifier = transfer.train_linear_classifier(
        features[layer.name], labels, num_classes, epochs=epochs,
        learning_rate=learning_rate, l2=l2)
    model.trainable = False
    outputs = classifier(keras.layers.Flatten()(layer.output))
    return keras.Model(model.inputs, outputs, name=f"{model.name}_linear")
