"""Model ensembles: averaging members, snapshot ensembles, Polyak averaging.

Three ways to average networks at test time:

- `Ensemble(models)`: one Keras model whose output is the mean of its
  members' class scores.
- `SnapshotEnsemble`: a callback that trains M members for the price of one
  (Huang et al., "Snapshot Ensembles: Train 1, get M for free", ICLR
  2017) with a cyclic cosine learning rate, saving a snapshot at the end of
  each cycle; `load_snapshot_ensemble` builds the `Ensemble` of them.
- Polyak averaging of the weights over the training steps, through Keras's
  own optimizer EMA (`use_ema=True, ema_momentum=...`): `KeepRawWeights`,
  `ema_weights` and `evaluate_with_and_without_ema` compare the averaged
  and the raw weights.
"""

import contextlib
import os
import pathlib
import re
import warnings

import keras
import numpy as np

from keras_cnnpractice._files import replacing
from keras_cnnpractice._validate import check_int
from keras_cnnpractice._validate import check_number

_SNAPSHOT = re.compile(r"^snapshot-(\d+)\.keras$")


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class Ensemble(keras.Model):
    """The mean of several models' outputs (class scores), as one model.

    Every member gets the same inputs; the output is the elementwise mean
    of the members' outputs, which must all have the same shape. For
    softmax classifiers this averages the predicted probabilities, as the
    ensembles of AlexNet, VGG and ResNet and the snapshot ensembles do.
    The members' own layers are tracked, so `save`/`load_model` (.keras),
    `compile`, `evaluate` and `predict` work as for any model. The members
    are called with the ensemble's `training` flag.

    Args:
        models: a non-empty list of Keras models (or layers), each with a
            single output tensor.
        **kwargs: `keras.Model` keyword arguments, such as `name`.

    Input shape:
        What every member accepts.

    Output shape:
        The members' common output shape.
    """

    def __init__(self, models, **kwargs):
        super().__init__(**kwargs)
        if (not isinstance(models, (list, tuple)) or not models
                or not all(isinstance(m, keras.layers.Layer) for m in models)):
            raise ValueError("Ensemble needs a non-empty list of Keras models. "
                             f"Received: models={models!r}")
        known = [(m.name, _known_output_shape(m)) for m in models]
        known = [(name, shape) for name, shape in known if shape is not None]
        if len({shape for _, shape in known}) > 1:
            raise ValueError("The ensemble's members must have the same output "
                             f"shape. Received: output shapes {known}")
        self.members = list(models)
        inputs = {_known_input(m) for m in models}
        if len(inputs) == 1 and None not in inputs:
            # Functional members of one input: build now (as a first call
            # would), so the ensemble can be saved before it is called.
            shape, dtype = inputs.pop()
            self(keras.Input(batch_shape=shape, dtype=dtype))

    def call(self, inputs, training=None):
        outputs = [m(inputs, training=training) for m in self.members]
        if any(isinstance(o, (list, tuple, dict)) for o in outputs):
            raise ValueError("Ensemble members must return a single tensor. "
                             f"Received: outputs={outputs!r}")
        shapes = [tuple(o.shape[1:]) for o in outputs]
        if len(set(shapes)) > 1:
            raise ValueError("The ensemble's members must have the same output "
                             f"shape. Received: output shapes {shapes}")
        total = outputs[0]
        for output in outputs[1:]:
            total = total + output
        return total / len(outputs)

    def get_config(self):
        config = super().get_config()
        config["models"] = [keras.saving.serialize_keras_object(m)
                            for m in self.members]
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        models = [keras.saving.deserialize_keras_object(
            m, custom_objects=custom_objects) for m in config.pop("models")]
        return cls(models, **config)


def _known_input(model):
    """(batch shape, dtype) of a functional model's single input, or None."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    return tuple(inputs[0].shape), inputs[0].dtype


def _known_output_shape(model):
    """The per-sample output shape of a functional model, else None."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs:
        return None
    if len(outputs) != 1:
        raise ValueError("Ensemble members must have a single output. "
                         f"Received: model {model.name!r} with "
                         f"{len(outputs)} outputs")
    return tuple(outputs[0].shape[1:])


def _learning_rate_variable(optimizer):
    """The optimizer's learning-rate variable; ValueError for a schedule."""
    rate = optimizer.learning_rate  # LossScaleOptimizer forwards this
    if not isinstance(rate, keras.Variable):
        raise ValueError(
            "SnapshotEnsemble sets the learning rate at every step, so the "
            "optimizer must be created with a float learning_rate, not a "
            "schedule or a callable. Received: learning_rate="
            f"{getattr(optimizer, '_learning_rate', rate)!r}")
    return rate


class SnapshotEnsemble(keras.callbacks.Callback):
    """Cyclic cosine learning rate and one saved model per cycle.

    Snapshot ensembles (Huang et al., "Snapshot Ensembles: Train 1, get M
    for free", ICLR 2017): training is split into `cycles` cycles of
    `epochs_per_cycle` epochs; within each, the learning rate follows
    `cosine_annealing`, starting at `max_lr` and annealed to `min_lr` at
    the cycle's last step, then restarted. At each annealed minimum (the
    end of cycle K) the model is saved as `snapshot-K.keras` in
    `directory`, written to a temporary name and renamed once complete.
    `load_snapshot_ensemble(directory)` averages the snapshots.

    The rate is assigned to the optimizer's learning-rate variable before
    every batch (step `epoch * steps_per_epoch + batch`, so resuming with
    `initial_epoch` continues the schedule), which needs an optimizer given
    a float `learning_rate`: a `LearningRateSchedule` raises ValueError.
    Cycles are whole epochs, so that snapshots fall on epoch ends (the
    paper's cycle is `ceil(T / M)` iterations). With `steps_per_execution
    > 1` the rate changes once per execution.

    Args:
        directory: where the snapshots go (created if missing).
        cycles: the number of cycles, hence of snapshots, M.
        max_lr: the learning rate at the start of each cycle (the paper's
            alpha_0: 0.1 or 0.2 with SGD).
        epochs_per_cycle: epochs per cycle; by default the `epochs` given
            to `fit` divided by `cycles`, which must then divide it.
            `fit` may not run more than `cycles * epochs_per_cycle`
            epochs.
        min_lr: the learning rate at the end of each cycle.
        steps_per_epoch: batches per epoch, only needed when `fit` cannot
            tell (a dataset of unknown length).
    """

    def __init__(self, directory, cycles, max_lr, epochs_per_cycle=None,
                 min_lr=0.0, steps_per_epoch=None):
        super().__init__()
        check_int("cycles", cycles, 1)
        check_int("epochs_per_cycle", epochs_per_cycle, 1, allow_none=True)
        check_int("steps_per_epoch", steps_per_epoch, 1, allow_none=True)
        for name, value in (("max_lr", max_lr), ("min_lr", min_lr)):
            check_number(name, value, 0)
        if min_lr > max_lr:
            raise ValueError("min_lr must not exceed max_lr. Received: "
                             f"min_lr={min_lr}, max_lr={max_lr}")
        self.directory = pathlib.Path(directory)
        self.cycles = cycles
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.epochs_per_cycle = epochs_per_cycle
        self.steps_per_epoch = steps_per_epoch
        self._epoch = 0
        self._cycle_epochs = None
        self._epoch_steps = None

    def on_train_begin(self, logs=None):
        self._rate = _learning_rate_variable(self.model.optimizer)
        epochs = self.params.get("epochs")
        self._cycle_epochs = self.epochs_per_cycle
        if self._cycle_epochs is None:
            if not epochs or epochs % self.cycles:
                raise ValueError(
                    "Without epochs_per_cycle, the epochs given to fit must "
                    "be a multiple of cycles. Received: epochs="
                    f"{epochs}, cycles={self.cycles}")
            self._cycle_epochs = epochs // self.cycles
        elif epochs and epochs > self.cycles * self._cycle_epochs:
            raise ValueError(
                f"fit runs {epochs} epochs, more than cycles * "
                f"epochs_per_cycle = {self.cycles * self._cycle_epochs}. "
                f"Received: epochs={epochs}, cycles={self.cycles}, "
                f"epochs_per_cycle={self._cycle_epochs}")
        self._epoch_steps = self.steps_per_epoch or self.params.get("steps")
        if not self._epoch_steps:
            raise ValueError(
                "SnapshotEnsemble needs the number of batches per epoch: "
                "pass steps_per_epoch (to the callback or to fit). Received: "
                "steps_per_epoch=None")
        self._schedule = keras.optimizers.schedules.CosineDecayRestarts(
            self.max_lr, self._cycle_epochs * self._epoch_steps, t_mul=1.0,
            m_mul=1.0, alpha=self.min_lr / self.max_lr if self.max_lr else 0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def learning_rate(self, step):
        """The learning rate at 0-based global `step` (after `on_train_begin`)."""
        return float(self._schedule(step))

    def on_train_batch_begin(self, batch, logs=None):
        self._rate.assign(self.learning_rate(
            self._epoch * self._epoch_steps + batch))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self._cycle_epochs:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        cycle = (epoch + 1) // self._cycle_epochs
        with replacing(self.directory / f"snapshot-{cycle}.keras") as tmp:
            self.model.save(tmp, overwrite=True)


def snapshot_paths(directory):
    """The complete `snapshot-K.keras` files in `directory`, by K."""
    directory = pathlib.Path(directory)
    found = sorted((int(m.group(1)), directory / m.group(0))
                   for m in map(_SNAPSHOT.match, os.listdir(directory)
                                if directory.is_dir() else []) if m)
    return [path for _, path in found]


def load_snapshot_ensemble(directory, last=None, custom_objects=None,
                           name="snapshot_ensemble"):
    """The `Ensemble` of the snapshots `SnapshotEnsemble` saved.

    Args:
        directory: the callback's directory.
        last: use only the newest `last` snapshots (the paper's ensembles
            of the last m of M); None for all.
        custom_objects: passed to `keras.models.load_model`.
        name: the ensemble's name.

    Returns:
        An uncompiled `Ensemble` of the snapshots, in cycle order.

    Raises:
        ValueError: no snapshot in `directory`, or a bad `last`.
    """
    check_int("last", last, 1, allow_none=True)
    paths = snapshot_paths(directory)
    if not paths:
        raise ValueError("No snapshot-K.keras files to ensemble. Received: "
                         f"directory={str(directory)!r}")
    if last is not None:
        paths = paths[-last:]
    members = [keras.models.load_model(p, custom_objects=custom_objects,
                                       compile=False) for p in paths]
    return Ensemble(members, name=name)


# Polyak averaging through the optimizer's EMA.
#
# With `use_ema=True` a Keras optimizer keeps, next to every trainable
# variable, `average = m * average + (1 - m) * variable` after each step
# (the first step copies the variable); `ema_overwrite_frequency=N` also
# copies the averages into the model every N steps. At the end of `fit()`
# Keras calls `optimizer.finalize_variable_values`, which OVERWRITES the
# model's weights with their averages: after fit the raw weights are gone
# and the model holds the averaged ones (the averages stay in the
# optimizer). `KeepRawWeights` puts the raw weights back after that, so the
# model holds raw weights and the optimizer the averages, and
# `ema_weights` / `evaluate_with_and_without_ema` can compare the two.


def ema_pairs(model):
    """`(variable, average)` for each of `model`'s variables averaged by its
    optimizer's EMA.

    Raises:
        ValueError: no optimizer with `use_ema=True`, or one that has not
            been built (trained, or `optimizer.build(...)`) yet.
    """
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if optimizer is None or not getattr(optimizer, "use_ema", False):
        raise ValueError(
            "Polyak averaging needs a model compiled with an optimizer "
            "created with use_ema=True. Received: optimizer="
            f"{optimizer!r}, use_ema={getattr(optimizer, 'use_ema', None)}")
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not optimizer.built or averages is None:
        raise ValueError("The optimizer holds no moving averages yet: train "
                         "the model first. Received: optimizer.built="
                         f"{optimizer.built}")
    return [(v, a) for v, a in zip(optimizer._trainable_variables, averages)
            if a is not None]


@contextlib.contextmanager
def ema_weights(model):
    """Within the block, `model` holds the EMA (Polyak-averaged) weights;
    its own weights are restored on exit, also after an exception.

    Warns when the weights already equal their averages, as they do after
    `fit()` unless `KeepRawWeights` was among its callbacks.
    """
    pairs = ema_pairs(model)
    raw = [keras.ops.convert_to_numpy(v) for v, _ in pairs]
    averages = [keras.ops.convert_to_numpy(a) for _, a in pairs]
    if all(np.array_equal(r, a) for r, a in zip(raw, averages)):
        warnings.warn(
            "The model's weights equal their moving averages, so both "
            "evaluations are of the averaged weights: fit() overwrites the "
            "weights with the averages at its end unless KeepRawWeights() "
            "is among its callbacks.", stacklevel=3)
    try:
        for (variable, _), value in zip(pairs, averages):
            variable.assign(value)
        yield model
    finally:
        for (variable, _), value in zip(pairs, raw):
            variable.assign(value)


def evaluate_with_and_without_ema(model, x=None, y=None, **kwargs):
    """Evaluates `model` with its raw and with its EMA-averaged weights.

    Args:
        model: a compiled model whose optimizer has `use_ema=True` and has
            been trained (fit with `KeepRawWeights()` to keep the raw weights
            apart from the averages).
        x, y, **kwargs: passed to `model.evaluate` (e.g. a dataset as `x`,
            `batch_size`, `steps`); `return_dict` is always True.

    Returns:
        `{"raw": metrics, "ema": metrics}`, two `evaluate` result dicts. The
        model holds its raw weights again afterwards.
    """
    kwargs.update(return_dict=True)
    raw = model.evaluate(x, y, **kwargs)
    with ema_weights(model):
        averaged = model.evaluate(x, y, **kwargs)
    return {"raw": raw, "ema": averaged}


class KeepRawWeights(keras.callbacks.Callback):
    """Keeps the raw (not averaged) weights in the model after `fit()`.

    With an EMA optimizer, `fit()` ends by overwriting the model's
    trainable weights with their moving averages. This callback records the
    raw weights at the end of every epoch (one host copy of the trainable
    weights per epoch) and, at `on_train_end`, which Keras calls after that
    overwrite, assigns them back. The averages stay in the optimizer, for
    `ema_weights` and `evaluate_with_and_without_ema`; save the averaged
    model inside `with ema_weights(model):`.
    """

    def __init__(self):
        super().__init__()
        self._raw = None

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not getattr(optimizer, "use_ema", False):
            raise ValueError("KeepRawWeights is for optimizers created with "
                             "use_ema=True. Received: use_ema="
                             f"{getattr(optimizer, 'use_ema', None)}")
        self._raw = None

    def on_epoch_end(self, epoch, logs=None):
        self._raw = [keras.ops.convert_to_numpy(v)
                     for v in self.model.trainable_variables]

    def on_train_end(self, logs=None):
        if self._raw is not None:
            for variable, value in zip(self.model.trainable_variables,
                                       self._raw):
                variable.assign(value)
