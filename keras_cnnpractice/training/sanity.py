"""Sanity checks before a long training run ("babysitting the learning process").

Two checks from the CS231n notes (Karpathy, "Neural Networks Part 3:
Learning and Evaluation", section "Before learning: sanity checks"):

- `check_initial_loss`: a freshly initialized softmax classifier spreads
  its probability evenly, so its initial cross-entropy is close to
  `-ln(1/C) = ln(C)` for C classes (2.303 for 10). Regularization adds to
  that, and adding more should make the total rise.
- `overfit_tiny`: with regularization off, a working model, loss and
  optimizer drive the training accuracy on a handful of examples (20) to
  100%. When they do not, the loss curve says why: a loss that does not
  move means a learning rate that is too low or a bug; a NaN loss means a
  learning rate that is too high.

Both take a compiled Keras model whose outputs are class probabilities (all
models of the zoo end in a softmax; pass `from_logits=True` for raw scores)
and `data`: a `tf.data.Dataset` of `(images, labels)` batches, as
`keras_cnnpractice.data.make_dataset` builds, or an `(images, labels)` pair
of arrays. Labels are integer class ids (one-hot rows are accepted too).
"""

import dataclasses
import math
import re
from typing import List

import keras
import numpy as np
from absl import logging

_EPSILON = 1e-7  # Keras's clip of probabilities in cross-entropy.


def take_examples(data, n=None):
    """The first `n` examples of `data` as numpy arrays.

    Args:
        data: a `tf.data.Dataset` of `(images, labels)` batches, or an
            `(images, labels)` pair of arrays.
        n: how many examples (None: all; a dataset must then be finite).

    Returns:
        `(images, labels)`, labels as int64 class ids of shape `(k,)` with
        `k = min(n, len(data))`.

    Raises:
        ValueError: data of another form, mismatched lengths, no examples
            or `n < 1`.
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1. Received: n={n}")
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError("data must be (images, labels) or a dataset of "
                             f"such batches. Received: a {type(data).__name__}"
                             f" of {len(data)} items")
        images, labels = (np.asarray(a) for a in data)
        if len(images) != len(labels):
            raise ValueError(f"images and labels differ in length. Received: "
                             f"{len(images)} images, {len(labels)} labels")
        images, labels = images[:n], labels[:n]
    else:
        image_parts, label_parts, count = [], [], 0
        for batch in data:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError("data must be a dataset of (images, labels) "
                                 f"batches. Received: an element of type "
                                 f"{type(batch).__name__}")
            x, y = (np.asarray(t) for t in batch)
            image_parts.append(x)
            label_parts.append(y)
            count += len(x)
            if n is not None and count >= n:
                break
        if not image_parts:
            raise ValueError("data has no examples. Received: an empty "
                             "dataset")
        images = np.concatenate(image_parts)[:n]
        labels = np.concatenate(label_parts)[:n]
    if len(images) == 0:
        raise ValueError("data has no examples. Received: 0 examples")
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot
        labels = labels.argmax(axis=1)
    return images, labels.reshape(len(labels)).astype(np.int64)


def _num_classes(model, num_classes):
    if num_classes is None:
        num_classes = model.output_shape[-1]
    if num_classes is None or num_classes < 2:
        raise ValueError(f"num_classes must be >= 2. Received: "
                         f"num_classes={num_classes}")
    return int(num_classes)


def _check_labels(labels, num_classes):
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"Labels must lie in [0, {num_classes}). Received: "
                         f"labels from {labels.min()} to {labels.max()}")


def _cross_entropy(outputs, labels, from_logits):
    """Mean sparse cross-entropy in float64 numpy (Keras's probability clip)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if from_logits:
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1,
                                                         keepdims=True))
    else:
        probs = outputs / outputs.sum(axis=1, keepdims=True)
        log_probs = np.log(np.clip(probs, _EPSILON, 1.0 - _EPSILON))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


@dataclasses.dataclass(frozen=True)
class InitialLossResult:
    """What `check_initial_loss` measured.

    Attributes:
        expected: `ln(num_classes)`, the loss of evenly spread predictions.
        data_loss: the measured mean cross-entropy, no regularization.
        regularization_loss: the sum of the model's regularization losses
            (`model.losses`: weight penalties, and activity penalties on the
            first batch).
        total_loss: `data_loss + regularization_loss`, what training starts
            from.
        num_classes: C.
        num_examples: how many examples were measured.
        ok: `data_loss` is within `tolerance` (relative) of `expected`.
        message: one line for a person.
    """

    expected: float
    data_loss: float
    regularization_loss: float
    total_loss: float
    num_classes: int
    num_examples: int
    ok: bool
    message: str


def check_initial_loss(model, data, num_classes=None, tolerance=0.25,
                       max_examples=512, from_logits=False, batch_size=128):
    """Compares a fresh model's cross-entropy with `ln(num_classes)`.

    The data loss is measured as the first training step sees it, on the
    first `max_examples` examples of `data`: in training mode, so batch
    normalization uses batch statistics, but without dropout (on
    `unregularized_clone(model)`, so the model itself, moving statistics
    included, is not changed). The regularization loss is `model.losses`
    after an inference-mode call on the first batch; it is reported
    separately and in `total_loss`, which rises with the regularization
    strength.

    The default tolerance accepts the 2.38 to 2.65 a Glorot-initialized
    `mnist_cnn` starts from on the digits (seeds 0-3; ln 10 = 2.30) and
    flags one whose last layer starts with weights 3 times as large (3.0
    to 4.5 over the same seeds).

    Args:
        model: a Keras classifier (softmax outputs unless `from_logits`).
        data: a `tf.data.Dataset` of `(images, labels)` batches, or an
            `(images, labels)` pair of arrays.
        num_classes: C; default: the model's output width.
        tolerance: the largest accepted `|data_loss - ln C| / ln C`.
        max_examples: at most this many examples are measured.
        from_logits: the model outputs raw scores instead of probabilities.
        batch_size: examples per forward pass.

    Returns:
        An `InitialLossResult`. When it is not `ok`, a warning saying what
        is probably wrong is logged too.

    Raises:
        ValueError: `tolerance <= 0`, fewer than 2 classes, labels outside
            `[0, C)`, or `data` of another form.
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0. Received: "
                         f"tolerance={tolerance}")
    num_classes = _num_classes(model, num_classes)
    images, labels = take_examples(data, max_examples)
    _check_labels(labels, num_classes)
    # The loss the first training step sees: batch normalization on batch
    # statistics, but no dropout noise; on a copy, so that the model's
    # moving statistics stay as they are.
    probe = unregularized_clone(model)
    outputs = [np.asarray(probe(images[start:start + batch_size],
                                training=True))
               for start in range(0, len(images), batch_size)]
    # An eager call, so that model.losses holds this call's values.
    model(images[:batch_size], training=False)
    regularization = float(sum(float(np.asarray(loss))
                               for loss in model.losses))
    outputs = np.concatenate(outputs)
    if outputs.shape[-1] != num_classes:
        raise ValueError(f"The model has {outputs.shape[-1]} outputs. "
                         f"Received: num_classes={num_classes}")
    data_loss = _cross_entropy(outputs, labels, from_logits)
    expected = math.log(num_classes)
    total = data_loss + regularization
    ok = math.isfinite(data_loss) and (
        abs(data_loss - expected) <= tolerance * expected)
    summary = (f"initial loss {data_loss:.4f} on {len(labels)} examples vs "
               f"ln({num_classes}) = {expected:.4f} for evenly spread "
               f"predictions; regularization adds {regularization:.4g} "
               f"(total {total:.4f})")
    if ok:
        message = f"OK: {summary}"
        logging.info("Initial loss check %s", message)
    else:
        if not math.isfinite(data_loss):
            why = ("the model's outputs are not finite: check the inputs "
                   "and the initialization")
        elif data_loss > expected:
            why = ("the initial class scores are far from uniform: the "
                   "weights (of the last layers especially) are probably "
                   "initialized too large, or the outputs are logits "
                   "(from_logits=True)")
        else:
            why = ("a freshly initialized model should not predict the "
                   "labels yet: are these trained weights, or do the labels "
                   "leak into the inputs?")
        message = f"SUSPICIOUS: {summary}; {why}"
        logging.warning("Initial loss check %s", message)
    return InitialLossResult(
        expected=expected, data_loss=data_loss,
        regularization_loss=regularization, total_loss=total,
        num_classes=num_classes, num_examples=len(labels), ok=ok,
        message=message)


# Layers whose randomness regularizes and that take a `rate`: Keras's
# Dropout family (SpatialDropout*, GaussianDropout, AlphaDropout) and
# layers named like DropConnect, DropPath, StochasticDepth.
_STOCHASTIC = re.compile(r"drop|stochasticdepth", re.IGNORECASE)


def _layers_within(layer, seen=None):
    """Every layer inside `layer`, depth first: a model's `layers`, and the
    layers a layer holds in its public attributes (alone, or in lists,
    tuples and dicts: wrapped layers, a block's convolutions)."""
    seen = set() if seen is None else seen
    children = list(getattr(layer, "layers", None) or [])
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue
        if isinstance(value, dict):
            value = list(value.values())
        children += [v for v in (value if isinstance(value, (list, tuple))
                                 else [value])
                     if isinstance(v, keras.layers.Layer)]
    for child in children:
        if id(child) not in seen:
            seen.add(id(child))
            yield child
            yield from _layers_within(child, seen)


def unregularized_clone(model):
    """A copy of `model` with its weights and no regularization.

    The copy (`keras.models.clone_model` plus the weights) shares no
    variables with `model`. In it, every weight regularizer (from layer
    arguments or `add_l2`) and activity regularizer is removed, and every
    layer with a `rate` whose class name contains "Drop" or
    "StochasticDepth" (Dropout, SpatialDropout2D, GaussianDropout,
    DropConnect, ...) gets rate 0; `GaussianNoise` gets stddev 0. Losses a
    custom layer adds with `add_loss` stay.
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for variable in clone.weights:
        if getattr(variable, "regularizer", None) is not None:
            variable.regularizer = None
    for layer in _layers_within(clone):
        if getattr(layer, "activity_regularizer", None) is not None:
            layer.activity_regularizer = None
        if isinstance(layer, keras.layers.GaussianNoise):
            layer.stddev = 0.0
        elif (_STOCHASTIC.search(type(layer).__name__)
              and isinstance(getattr(layer, "rate", None), (int, float))):
            layer.rate = 0.0
    return clone


def _fresh_optimizer(model, learning_rate):
    """A new optimizer like the model's (Adam 1e-3 if uncompiled)."""
    source = getattr(model, "optimizer", None)
    if source is None:
        return keras.optimizers.Adam(1e-3 if learning_rate is None
                                     else learning_rate)
    inner = getattr(source, "inner_optimizer", source)  # LossScaleOptimizer
    config = inner.get_config()
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    fresh = type(inner).from_config(config)
    if inner is not source:
        fresh = keras.optimizers.LossScaleOptimizer(fresh)
    return fresh


@dataclasses.dataclass(frozen=True)
class OverfitResult:
    """What `overfit_tiny` saw.

    Attributes:
        ok: the training accuracy reached `target_accuracy`.
        final_accuracy: the training accuracy of the last epoch (as Keras
            reports it: in training mode, before that epoch's update).
        final_loss: the last epoch's loss.
        losses: the loss per epoch (one full batch per epoch).
        accuracies: the training accuracy per epoch.
        epochs_run: how many epochs ran (training stops when the target is
            reached or the loss is not finite).
        num_examples: how many examples were trained on.
        learning_rate: the optimizer's initial learning rate.
        message: one line: success, or the probable cause of failure.
    """

    ok: bool
    final_accuracy: float
    final_loss: float
    losses: List[float]
    accuracies: List[float]
    epochs_run: int
    num_examples: int
    learning_rate: float
    message: str


def _diagnose(losses, accuracies, target, n, learning_rate):
    lr = f"{learning_rate:.3g}"
    first = losses[0]
    if not all(math.isfinite(v) for v in losses):
        epoch = next(i for i, v in enumerate(losses, 1)
                     if not math.isfinite(v))
        return False, (f"loss became {losses[epoch - 1]} at epoch {epoch}: "
                       f"the learning rate ({lr}) is probably too high")
    last = losses[-1]
    if accuracies[-1] >= target:
        return True, (f"reached training accuracy {accuracies[-1]:.3f} on "
                      f"{n} examples in {len(losses)} epochs (loss "
                      f"{first:.4f} -> {last:.4f})")
    peak = max(losses)
    if peak > first * 1.5:
        epoch = losses.index(peak) + 1
        return False, (f"loss jumped from {first:.4g} to {peak:.4g} at epoch "
                       f"{epoch} (last {last:.4g}): the learning rate ({lr}) "
                       "is probably too high")
    if last > first * 0.9:
        return False, (f"loss not decreasing ({first:.4f} -> {last:.4f} in "
                       f"{len(losses)} epochs): the learning rate ({lr}) is "
                       "probably too low, or there is a bug (gradients not "
                       "reaching the weights, labels not matching the "
                       "inputs)")
    return False, (f"loss fell ({first:.4f} -> {last:.4f}) but training "
                   f"accuracy reached only {accuracies[-1]:.3f} < {target} "
                   f"in {len(losses)} epochs: train longer or raise the "
                   f"learning rate ({lr}); a model that cannot memorize {n} "
                   "examples is too small or broken")


def overfit_tiny(model, data, n=20, epochs=200, learning_rate=None,
                 target_accuracy=1.0, from_logits=False, seed=0):
    """Trains a regularization-free copy of `model` on `n` examples.

    CS231n's second sanity check: a model that cannot reach (nearly) 100%
    training accuracy on 20 examples has a bug or a bad learning rate.

    The caller's model is never changed: training happens on
    `unregularized_clone(model)` (same weights, no weight or activity
    regularizers, dropout rates 0) with a new optimizer of the model's kind
    and configuration (Adam 1e-3 if it is not compiled). The first `n`
    examples of `data` are taken once, so augmentation in a dataset is
    applied once and stays fixed; they are trained on as one full batch per
    epoch with sparse cross-entropy.

    Args:
        model: a Keras classifier (softmax outputs unless `from_logits`).
        data: a `tf.data.Dataset` of `(images, labels)` batches, or an
            `(images, labels)` pair of arrays.
        n: how many examples.
        epochs: at most this many full-batch updates; training stops early
            once the accuracy reaches `target_accuracy`, or the loss is not
            finite.
        learning_rate: replaces the optimizer's learning rate (a number or
            a schedule); None keeps it.
        target_accuracy: the training accuracy that counts as overfit.
        from_logits: the model outputs raw scores instead of probabilities.
        seed: Keras's random seed for the copy's training.

    Returns:
        An `OverfitResult`. When it is not `ok`, its message (also logged
        as a warning) gives the probable cause.

    Raises:
        ValueError: `n < 1`, `epochs < 1`, `target_accuracy` outside
            (0, 1], a negative learning rate, labels outside the model's
            classes, or `data` of another form.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1. Received: epochs={epochs}")
    if not 0 < target_accuracy <= 1:
        raise ValueError(f"target_accuracy must be in (0, 1]. Received: "
                         f"target_accuracy={target_accuracy}")
    if isinstance(learning_rate, (int, float)) and learning_rate < 0:
        raise ValueError(f"learning_rate must be >= 0. Received: "
                         f"learning_rate={learning_rate}")
    images, labels = take_examples(data, n)
    _check_labels(labels, _num_classes(model, None))
    keras.utils.set_random_seed(seed)
    clone = unregularized_clone(model)
    optimizer = _fresh_optimizer(model, learning_rate)
    clone.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=from_logits),
                  metrics=["accuracy"])
    initial_lr = float(np.asarray(optimizer.learning_rate))

    class _StopWhenDone(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if (logs.get("accuracy", 0.0) >= target_accuracy
                    or not math.isfinite(logs.get("loss", 0.0))):
                self.model.stop_training = True

    history = clone.fit(images.astype(np.float32), labels,
                        batch_size=len(labels), epochs=epochs, shuffle=False,
                        verbose=0, callbacks=[_StopWhenDone()])
    losses = [float(v) for v in history.history["loss"]]
    accuracies = [float(v) for v in history.history["accuracy"]]
    ok, message = _diagnose(losses, accuracies, target_accuracy, len(labels),
                            initial_lr)
    if ok:
        logging.info("Overfit check OK: %s", message)
    else:
        logging.warning("Overfit check FAILED: %s", message)
    return OverfitResult(
        ok=ok, final_accuracy=accuracies[-1], final_loss=losses[-1],
        losses=losses, accuracies=accuracies, epochs_run=len(losses),
        num_examples=len(labels), learning_rate=initial_lr, message=message)
