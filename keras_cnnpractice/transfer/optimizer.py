"""Per-group learning-rate multipliers for any Keras 3 optimizer.

Fine-tuning a pretrained network usually trains its layers at different
rates: the new classifier at about a tenth of the base rate, the pretrained
layers at about a hundredth, the earliest layers not at all (Yosinski et
al., "How transferable are features in deep neural networks?", NIPS 2014;
the CS231n "CNNs in practice" lecture).

`LRMultiplierOptimizer` wraps an optimizer (Adam, SGD, RMSprop, ...) and
keeps one copy of it per group of variables, each built from the wrapped
optimizer's config with learning rate `multiplier * base rate`. Scaling the
*learning rate* is what makes this correct for every optimizer: scaling the
*gradients* would do nothing to Adam, RMSprop or Adagrad, whose steps are
invariant to the gradient's scale. A group whose multiplier is 0 gets no
optimizer at all, so its variables are never touched.
"""

import math
import numbers
import types

import keras
import tensorflow as tf
from keras import ops

DEFAULT_MULTIPLIERS = {"frozen": 0.0, "pretrained": 0.01, "new": 0.1}


class _GroupRate:
    """The wrapper's current learning rate times a multiplier (a callable
    learning rate for one group's optimizer, so schedules, callbacks that
    set `learning_rate` and the step counter all live in one place)."""

    def __init__(self, wrapper, multiplier):
        self.wrapper, self.multiplier = wrapper, multiplier

    def __call__(self):
        return ops.multiply(self.wrapper.learning_rate, self.multiplier)


def _names(entry):
    """The names one group entry stands for: the string itself, a
    variable's path, or the paths of a (built) layer's variables."""
    if isinstance(entry, str) and entry.strip("/"):
        return [entry.strip("/")]
    if isinstance(entry, keras.Variable):
        return [entry.path]
    if isinstance(entry, keras.layers.Layer):
        return [v.path for v in entry.weights]
    raise ValueError("Group entries must be layer names or variable paths "
                     "(str), keras.Variable or keras.layers.Layer objects. "
                     f"Received: {entry!r} of type {type(entry).__name__}")


def _match_length(path, name):
    """How many path components `name` matches in `path` (0: none).

    `name` matches when its "/"-separated components occur as a run in the
    variable's path: "stage1" matches "stage1/conv0/kernel" and, in a
    Sequential model, "sequential/stage1/conv0/kernel".
    """
    parts, want = path.split("/"), name.split("/")
    k = len(want)
    if any(parts[i:i + k] == want for i in range(len(parts) - k + 1)):
        return k
    return 0


def check_multipliers(multipliers):
    """A copy of `multipliers` ({group: float >= 0}), validated.

    Raises:
        ValueError: not a non-empty dict of finite numbers >= 0.
    """
    if not isinstance(multipliers, dict) or not multipliers:
        raise ValueError("multipliers must be a non-empty dict {group: "
                         f"multiplier}}. Received: multipliers={multipliers!r}")
    checked = {}
    for group, value in multipliers.items():
        if (not isinstance(group, str) or isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or value < 0):
            raise ValueError("Each multiplier must be a finite number >= 0 "
                             "keyed by a group name. Received: "
                             f"multipliers={multipliers!r}")
        checked[group] = float(value)
    return checked


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class LRMultiplierOptimizer(keras.optimizers.Optimizer):
    """Trains each group of variables at `multiplier * learning_rate`.

    One copy of `optimizer` is made per group with a non-zero multiplier,
    from `optimizer.get_config()`, so momentum, Adam's moments, weight decay
    (scaled by the group's rate, as Keras applies `lr * weight_decay`),
    clipping, EMA and gradient accumulation behave per group exactly as
    they would in the wrapped optimizer. The base learning rate, float or
    `LearningRateSchedule`, lives in this wrapper: `learning_rate` and
    `iterations` read and set it as for any Keras optimizer, so callbacks
    such as `ReduceLROnPlateau` or `LearningRateScheduler` scale every
    group at once. `global_clipnorm` and `loss_scale_factor` act on all
    gradients together, before they are split into groups. All optimizer
    state (including every group's) is in `variables`, hence in
    `model.save_weights` checkpoints.

    A variable belongs to the group with an entry that matches its path. A
    string matches every variable whose path contains its "/"-separated
    components in a row (`"stage1"` matches `"stage1/conv0/kernel"`, also
    inside a Sequential model's `"sequential/stage1/conv0/kernel"`); a
    variable, or a built layer (its variables), matches by full path. The
    entry with the most path components wins (so `"stage1/conv0"` can go in
    another group than `"stage1"`); variables no entry matches go to
    `default_group`. The config stores the strings and paths, so a model
    saved as `.keras` reloads with the same groups. For zero work on frozen
    layers, also set their `trainable = False` (as `fine_tune` does); a 0
    multiplier alone already leaves them bit-for-bit unchanged.

    Reference: Yosinski et al., "How transferable are features in deep
    neural networks?", NIPS 2014 (fine-tuning transferred layers).

    Example:

    ```python
    optimizer = LRMultiplierOptimizer(
        keras.optimizers.Adam(1e-2),
        groups={"frozen": ["stage1"], "new": ["new_head"]},
        multipliers={"frozen": 0, "pretrained": 0.01, "new": 0.1})
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    ```

    Args:
        optimizer: the Keras optimizer to copy per group (unused itself;
            not a `LossScaleOptimizer`, which `compile` adds on top).
        groups: `{group: [entries]}`, entries being layers or layer names,
            variables or variable paths.
        multipliers: `{group: multiplier >= 0}`; default
            `{"frozen": 0, "pretrained": 0.01, "new": 0.1}`.
        default_group: the group of variables no entry matches.
        name: the optimizer's name.
    """

    def __init__(self, optimizer, groups, multipliers=None,
                 default_group="pretrained", name=None):
        if isinstance(optimizer, dict):
            optimizer = keras.optimizers.deserialize(optimizer)
        if (not isinstance(optimizer, keras.optimizers.Optimizer)
                or isinstance(optimizer, (LRMultiplierOptimizer,
                                          keras.optimizers.LossScaleOptimizer))):
            raise ValueError("optimizer must be a plain Keras optimizer "
                             "(Adam, SGD, ...). Received: "
                             f"optimizer={optimizer!r}")
        multipliers = check_multipliers(
            DEFAULT_MULTIPLIERS if multipliers is None else multipliers)
        if default_group not in multipliers:
            raise ValueError("default_group must be one of the multipliers' "
                             f"groups {sorted(multipliers)}. Received: "
                             f"default_group={default_group!r}")
        if not isinstance(groups, dict):
            raise ValueError("groups must be a dict {group: [entries]}. "
                             f"Received: groups={groups!r}")
        names, owner = {}, {}
        for group, entries in groups.items():
            if group not in multipliers:
                raise ValueError(f"Group {group!r} has no multiplier; "
                                 f"groups with one: {sorted(multipliers)}. "
                                 f"Received: groups={sorted(groups)}")
            if isinstance(entries, (str, keras.Variable, keras.layers.Layer)):
                entries = [entries]
            names[group] = [n for e in entries for n in _names(e)]
            for entry in names[group]:
                if owner.setdefault(entry, group) != group:
                    raise ValueError(f"{entry!r} is in two groups, "
                                     f"{owner[entry]!r} and {group!r}. "
                                     f"Received: groups={groups!r}")

        rate = optimizer._learning_rate
        if isinstance(rate, keras.Variable):
            rate = float(rate.numpy())
        super().__init__(learning_rate=rate, name=name)
        config = optimizer.get_config()
        self._base_serialized = keras.optimizers.serialize(optimizer)
        self.groups = names
        self.multipliers = multipliers
        self.default_group = default_group
        # Handled here, on all gradients together.
        self.loss_scale_factor = config.get("loss_scale_factor")
        self._global_clipnorm = config.get("global_clipnorm")
        self._accumulation = config.get("gradient_accumulation_steps")
        config.update(loss_scale_factor=None, global_clipnorm=None)
        inner = {}
        for group, multiplier in multipliers.items():
            if multiplier:
                inner[group] = optimizer.__class__.from_config(dict(
                    config, name=f"{self.name}_{group}",
                    learning_rate=_GroupRate(self, multiplier)))
        # A plain namespace, not a dict: Keras's saver would otherwise store
        # the groups' state a second time beside `variables`.
        self._groups = types.SimpleNamespace(inner=inner, variables={})

    @property
    def iterations(self):
        if self._accumulation:
            return ops.floor_divide(self._iterations, self._accumulation)
        return self._iterations

    def group_of(self, variable):
        """The group `variable` (or a variable path) belongs to."""
        path = variable if isinstance(variable, str) else variable.path
        best, found = 0, set()
        for group, names in self.groups.items():
            for name in names:
                length = _match_length(path, name)
                if length > best:
                    best, found = length, {group}
                elif length and length == best:
                    found.add(group)
        if len(found) > 1:
            raise ValueError(f"Variable {path!r} matches groups "
                             f"{sorted(found)} equally well. Received: "
                             f"groups={self.groups!r}")
        return found.pop() if found else self.default_group

    def build(self, variables):
        if self.built:
            return
        by_group = {group: [] for group in self.multipliers}
        for variable in variables:
            by_group[self.group_of(variable)].append(variable)
        for group, optimizer in self._groups.inner.items():
            optimizer.build(by_group[group])
        self._groups.variables = by_group
        self._group_by_key = {self._var_key(v): g
                              for g, vs in by_group.items() for v in vs}
        super().build(variables)

    @property
    def variables(self):
        own = self._variables[:]
        for optimizer in self._groups.inner.values():
            own += optimizer.variables
        return own

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, "
                                 "the optimizer must already be built. Call "
                                 "`optimizer.build(trainable_variables)` "
                                 "first.")
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        grads = list(grads)
        if len(grads) != len(trainable_variables):
            raise ValueError(f"Got {len(grads)} gradients for "
                             f"{len(trainable_variables)} variables.")
        if not grads:
            return
        if not self.built:
            self.build(trainable_variables)
        self._check_variables_are_known(trainable_variables)
        pairs = [(g, v) for g, v in zip(grads, trainable_variables)
                 if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable.")
        grads = [g for g, _ in pairs]
        if self.loss_scale_factor is not None:
            grads = [g / self.loss_scale_factor for g in grads]
        if self._global_clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, self._global_clipnorm)
        for group, optimizer in self._groups.inner.items():
            mine = [(g, v) for g, (_, v) in zip(grads, pairs)
                    if self._group_by_key[self._var_key(v)] == group]
            if mine:
                optimizer.apply(*zip(*mine))
        self._iterations.assign_add(1)

    def finalize_variable_values(self, var_list):
        for group, optimizer in self._groups.inner.items():
            optimizer.finalize_variable_values(self._groups.variables[group])

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        for optimizer in self._groups.inner.values():
            optimizer.exclude_from_weight_decay(var_list, var_names)

    def get_config(self):
        # The wrapped optimizer's config with the current base rate.
        base = dict(self._base_serialized)
        base["config"] = dict(base["config"], learning_rate=super().get_config()[
            "learning_rate"])
        return {"name": self.name, "optimizer": base,
                "groups": {g: list(p) for g, p in self.groups.items()},
                "multipliers": dict(self.multipliers),
                "default_group": self.default_group}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.optimizers.deserialize(config.pop("optimizer"),
                                                 custom_objects=custom_objects)
        return cls(optimizer, **config)
