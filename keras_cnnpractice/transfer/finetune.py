"""A new classifier on a pretrained trunk, and fine-tuning it by groups.

The CS231n "CNNs in practice" recipe for a new dataset: replace the last
layer with one for the new classes; freeze the earliest layers, train the
pretrained ones at about 1/100 and the new layer at about 1/10 of the base
learning rate; optionally train the new layer alone first, until its loss
stops falling, so that its random start does not wreck the pretrained
features (Yosinski et al., "How transferable are features in deep neural
networks?", NIPS 2014; Girshick et al., R-CNN, CVPR 2014).
"""

import keras

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.transfer.optimizer import LRMultiplierOptimizer
from keras_cnnpractice.transfer.optimizer import check_multipliers
from keras_cnnpractice.transfer.optimizer import DEFAULT_MULTIPLIERS


def replace_head(model, num_classes, head=None, name="new_head",
                 activation="softmax"):
    """A model sharing `model`'s trunk with a fresh classifier layer.

    The new model is built from `model.inputs` to a new
    `Dense(num_classes, activation)` applied to the head's input, so every
    trunk layer (and its weights) is shared with `model`: training one
    trains the other. The new layer keeps the old head's dtype policy
    (float32 under a mixed policy).

    Args:
        model: a built functional (or Sequential) Keras model whose single
            output is the head's output (true of the zoo's classifiers:
            `create_model("mnist_cnn")`, `"lenet5"`, `"alexnet"`, ...).
        num_classes: classes of the new task (>= 1).
        head: the layer to replace, by name or object; default: the last
            `Dense` layer.
        name: the new layer's name.
        activation: the new layer's activation.

    Returns:
        A new `keras.Model` (uncompiled).

    Raises:
        ValueError: a bad `num_classes`, no such head, or a head whose
            output is not the model's only output.
    """
    check_int("num_classes", num_classes, 1)
    if not isinstance(model, keras.Model) or not getattr(model, "inputs",
                                                          None):
        raise ValueError("replace_head needs a built functional or "
                         f"Sequential keras.Model. Received: model={model!r}")
    if head is None:
        dense = [x for x in model.layers if isinstance(x, keras.layers.Dense)]
        if not dense:
            raise ValueError(f"Model {model.name!r} has no Dense layer; name "
                             "the classifier layer with head=. Received: "
                             "head=None")
        head = dense[-1]
    elif isinstance(head, str):
        head = _layer(model, head, "head")
    elif not any(head is x for x in model.layers):
        raise ValueError(f"head must be a layer of {model.name!r}. "
                         f"Received: head={head!r}")
    if len(model.outputs) != 1 or model.outputs[0] is not head.output:
        raise ValueError(f"The output of {head.name!r} must be the model's "
                         f"only output; {model.name!r} outputs "
                         f"{[o.name for o in model.outputs]}. Received: "
                         f"head={head.name!r}")
    outputs = keras.layers.Dense(num_classes, activation=activation,
                                 dtype=head.dtype_policy, name=name)(head.input)
    inputs = model.input if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=model.name)


def _layer(model, entry, what):
    if isinstance(entry, str):
        try:
            return model.get_layer(entry)
        except ValueError:
            raise ValueError(f"Model {model.name!r} has no layer {entry!r}; "
                             f"its layers: {[x.name for x in model.layers]}. "
                             f"Received: {what}={entry!r}") from None
    if isinstance(entry, keras.layers.Layer) and any(
            entry is x for x in model.layers):
        return entry
    raise ValueError(f"{what} must name layers of {model.name!r} (by name or "
                     f"object). Received: {entry!r}")


def _assign_layers(model, groups, multipliers, default_group):
    """`{layer: group}` for every layer with weights."""
    if not isinstance(groups, dict):
        raise ValueError("groups must be a dict {group: [layers]}. Received: "
                         f"groups={groups!r}")
    owner = {}
    for group, entries in groups.items():
        if group not in multipliers:
            raise ValueError(f"Group {group!r} has no multiplier; groups with "
                             f"one: {sorted(multipliers)}. Received: "
                             f"groups={sorted(groups)}")
        if isinstance(entries, (str, keras.layers.Layer)):
            entries = [entries]
        for entry in entries:
            layer = _layer(model, entry, "groups")
            if owner.setdefault(id(layer), (layer, group))[1] != group:
                raise ValueError(f"Layer {layer.name!r} is in two groups, "
                                 f"{owner[id(layer)][1]!r} and {group!r}.")
    unlisted = [x for x in model.layers if x.weights and id(x) not in owner]
    if unlisted and default_group is None:
        raise ValueError("Layers with weights in no group: "
                         f"{[x.name for x in unlisted]}; list them or set "
                         "default_group. Received: default_group=None")
    for layer in unlisted:
        owner[id(layer)] = (layer, default_group)
    return list(owner.values())


def _base_optimizer(optimizer, base_lr):
    if isinstance(optimizer, str):
        rate = 1e-3 if base_lr is None else base_lr
        if not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f"base_lr must be > 0. Received: base_lr={rate!r}")
        try:
            made = keras.optimizers.get(optimizer)
        except ValueError:
            raise ValueError("optimizer must be a Keras optimizer name or "
                             f"instance. Received: optimizer={optimizer!r}") \
                from None
        return made.__class__.from_config(dict(made.get_config(),
                                               learning_rate=float(rate)))
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError("optimizer must be a Keras optimizer name or "
                         f"instance. Received: optimizer={optimizer!r}")
    if base_lr is not None:
        raise ValueError("Give the base learning rate either in the optimizer "
                         "instance or as base_lr, not both. Received: "
                         f"base_lr={base_lr!r} with optimizer={optimizer!r}")
    return optimizer


def _compile(model, assignment, multipliers, base, loss, metrics):
    """Freezes the groups with multiplier 0, compiles with the groups."""
    variables = {}
    for layer, group in assignment:
        layer.trainable = multipliers[group] > 0
        variables.setdefault(group, []).extend(layer.weights)
    # Every layer with weights is in a group; a variable outside all layers
    # (rare) trains at the lowest rate.
    idle = min(multipliers, key=multipliers.get)
    model.compile(optimizer=LRMultiplierOptimizer(base, variables, multipliers,
                                                  default_group=idle),
                  loss=loss, metrics=list(metrics))


def _setup(model, groups, base_lr, multipliers, optimizer, default_group):
    """Checks the arguments; `(multipliers, base optimizer, assignment)`."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model. Received: model={model!r}")
    multipliers = check_multipliers(
        DEFAULT_MULTIPLIERS if multipliers is None else multipliers)
    if default_group is not None and default_group not in multipliers:
        raise ValueError("default_group must be None or one of "
                         f"{sorted(multipliers)}. Received: "
                         f"default_group={default_group!r}")
    base = _base_optimizer(optimizer, base_lr)
    return (multipliers, base,
            _assign_layers(model, groups, multipliers, default_group))


def compile_with_groups(model, groups, base_lr=None, multipliers=None,
                        optimizer="adam", default_group="pretrained",
                        loss="sparse_categorical_crossentropy",
                        metrics=("accuracy",)):
    """Freezes and compiles `model` as `fine_tune` does, without fitting.

    For a training loop of one's own, or to resume: compile, then
    `training.restore_latest(model, checkpoint_dir)` (which restores every
    group's optimizer state), then `model.fit(..., initial_epoch=...)`.
    Arguments as for `fine_tune`.

    Returns:
        The `LRMultiplierOptimizer` the model was compiled with.
    """
    multipliers, base, assignment = _setup(model, groups, base_lr,
                                           multipliers, optimizer,
                                           default_group)
    _compile(model, assignment, multipliers, base, loss, metrics)
    return model.optimizer


def fine_tune(model, train_data, groups, base_lr=None, multipliers=None,
              epochs=10, validation_data=None, optimizer="adam",
              multi_stage=False, stage1_max_epochs=20, stage1_patience=2,
              stage1_min_delta=1e-3, stage1_multiplier=None,
              default_group="pretrained",
              loss="sparse_categorical_crossentropy", metrics=("accuracy",),
              callbacks=None, verbose=0, **fit_kwargs):
    """Fine-tunes `model` with a learning rate per group of layers.

    Each layer trains at `multipliers[group] * base rate`; layers of groups
    with multiplier 0 are set `trainable = False`, so no gradient is
    computed for them (batch-norm layers among them also stop updating
    their statistics), and they stay bit-for-bit unchanged. The model is
    (re)compiled with an `LRMultiplierOptimizer` and fitted; layers keep
    the `trainable` flags of the last stage afterwards.

    With `multi_stage=True`, stage 1 trains only the "new" group (all other
    layers frozen) at `stage1_multiplier * base rate` until its training
    loss plateaus (no fall of `stage1_min_delta` in `stage1_patience`
    epochs, as `keras.callbacks.EarlyStopping`) or for
    `stage1_max_epochs`; stage 2 then trains every group at its multiplier
    for `epochs`, with a fresh optimizer.

    Example:

    ```python
    model = replace_head(load_pretrained("runs/mnist_cnn"), num_classes=5)
    history = fine_tune(model, train_ds, groups={
        "frozen": ["stage1"], "new": ["new_head"]}, base_lr=1e-2, epochs=5)
    ```

    Args:
        model: a built Keras model (compiled or not).
        train_data: a `tf.data.Dataset` of `(images, labels)` batches (or
            anything `model.fit` takes as `x`).
        groups: `{group: [layer names or layers]}`; groups are keys of
            `multipliers` ("frozen", "pretrained", "new" by default).
        base_lr: the base learning rate when `optimizer` is a name
            (default 1e-3); must be None with an optimizer instance.
        multipliers: `{group: multiplier >= 0}`; default
            `{"frozen": 0, "pretrained": 0.01, "new": 0.1}`.
        epochs: epochs of (stage-2) fine-tuning.
        validation_data: passed to `model.fit`.
        optimizer: a Keras optimizer name ("adam", "sgd", ...) or an unused
            instance whose learning rate (float or schedule) is the base
            rate; it is copied per group, never used itself.
        multi_stage: train the "new" group alone first.
        stage1_max_epochs: the most epochs of stage 1.
        stage1_patience: stage 1's plateau patience, in epochs.
        stage1_min_delta: the least fall of the training loss that counts.
        stage1_multiplier: stage 1's rate for the "new" group; default
            `multipliers["new"]`, the rate it also gets in stage 2.
        default_group: the group of layers with weights that `groups` does
            not list ("pretrained"); None to require every such layer listed.
        loss: the loss to compile with.
        metrics: the metrics to compile with.
        callbacks: passed to every stage's `model.fit`.
        verbose: `model.fit`'s verbosity.
        **fit_kwargs: passed to every `model.fit` (e.g. `steps_per_epoch`).

    Returns:
        The `keras.callbacks.History` of the fit, or with `multi_stage=True`
        a tuple `(stage1_history, stage2_history)`.

    Raises:
        ValueError: unknown groups or layers, a layer in two groups,
            unlisted layers with `default_group=None`, bad multipliers or
            rates, or `multi_stage=True` without a "new" group.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1. Received: epochs={epochs}")
    multipliers, base, assignment = _setup(model, groups, base_lr,
                                           multipliers, optimizer,
                                           default_group)
    callbacks = list(callbacks or [])

    def fit(stage_multipliers, stage_epochs, extra_callbacks):
        _compile(model, assignment, stage_multipliers, base, loss, metrics)
        return model.fit(train_data, epochs=stage_epochs,
                         validation_data=validation_data,
                         callbacks=callbacks + extra_callbacks,
                         verbose=verbose, **fit_kwargs)

    if not multi_stage:
        return fit(multipliers, epochs, [])
    if not any(group == "new" for _, group in assignment):
        raise ValueError("multi_stage=True trains the 'new' group first, but "
                         f"no layer is in it. Received: groups={groups!r}")
    if stage1_max_epochs < 1 or stage1_patience < 0 or stage1_min_delta < 0:
        raise ValueError("stage1_max_epochs must be >= 1, stage1_patience and "
                         "stage1_min_delta >= 0. Received: "
                         f"stage1_max_epochs={stage1_max_epochs}, "
                         f"stage1_patience={stage1_patience}, "
                         f"stage1_min_delta={stage1_min_delta}")
    rate = multipliers["new"] if stage1_multiplier is None else stage1_multiplier
    stage1 = check_multipliers({**{g: 0.0 for g in multipliers}, "new": rate})
    if not stage1["new"]:
        raise ValueError("Stage 1 needs a non-zero rate for the 'new' group. "
                         f"Received: stage1_multiplier={stage1_multiplier!r}, "
                         f"multipliers={multipliers!r}")
    plateau = keras.callbacks.EarlyStopping(
        monitor="loss", min_delta=stage1_min_delta, patience=stage1_patience,
        mode="min")
    first = fit(stage1, stage1_max_epochs, [plateau])
    return first, fit(multipliers, epochs, [])
