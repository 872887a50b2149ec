"""Stopping a run whose loss explodes, and warning about one that crawls.

The loss curve's two classic failure shapes (CS231n, "Babysitting the
learning process"): a loss that shoots up or becomes NaN usually means the
learning rate is too high; a loss that barely moves means it is too low. A
NaN loss from weights that were still finite and had not grown points at
the batch instead (NaN or infinite inputs, labels or sample weights), and
the guard says which.
"""

import math
import pathlib

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_cnnpractice.training.checkpoints import save_weights_atomic

DEFAULT_FILENAME = "last_good.weights.h5"

# Weights whose global norm grew by more than this since the run began are
# "grown": a non-finite loss from them is blamed on the learning rate.
GROWTH_LIMIT = 10.0


@tf.function
def _global_norm(variables):
    """The L2 norm of all `variables` together (NaN or inf when any is)."""
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                             for v in variables]))


class ExplosionGuard(keras.callbacks.Callback):
    """Stops training when the loss explodes and restores the last good weights.

    The reference is the loss of the first batch of the run (the first
    `on_train_batch_end` of this `fit`). The loss explodes when the loss
    Keras reports at a batch's end -- the mean over the epoch's batches so
    far -- or an epoch's loss is NaN or infinite, or exceeds `factor` times
    the reference, or when the weights stop being finite while the loss
    still is (after a NaN input, a ReLU may output 0 and hide a NaN kernel
    from the loss). Then the guard sets `model.stop_training`, puts the
    weights of the last good epoch back into the model (the weights the run
    started from, if no epoch finished well), and logs a warning with the
    likely cause. The optimizer's state (Adam's moments, the step count) is
    not rolled back.

    The cause: after every batch the guard takes the global L2 norm of the
    trainable weights (one reduction over them; one scalar read back), so it
    knows the weights that went into the batch that exploded. A loss above
    `factor` times the reference, or a non-finite loss from weights whose
    norm grew more than `GROWTH_LIMIT` (10) times since the run began,
    blames the learning rate (too high, with its current value). A
    non-finite loss from finite weights that had not grown blames the
    batch: NaN or infinite inputs, labels or sample weights (or an op that
    overflowed on them). Weights that were already non-finite mean the
    previous update's gradient was non-finite, which non-finite data can do
    without making its own loss NaN (a ReLU may turn a NaN input into 0 in
    the forward pass while its gradient stays NaN): the message says so.

    "Good" is an epoch that ended with a finite loss within `factor` times
    the reference. Its weights are kept in memory and, with a
    `checkpoint_path`, written there through a temporary name and a rename,
    so the file always holds complete good weights. After an explosion the
    file holds the weights that were restored.

    The crawl warning: after each epoch, once `patience_low` epochs have
    finished, the loss is compared with the one `patience_low` epochs
    earlier (for the first comparison, with the first batch's loss). A
    relative change below `min_relative_change` logs a warning, once per
    `fit`, that the learning rate is probably too low; training goes on.

    Place the guard before callbacks that save the model at the end of an
    epoch, so that they see the restored weights.

    Args:
        checkpoint_path: None (weights kept in memory only), a file name
            ending in `.weights.h5`, or a directory (created when needed) to
            hold `last_good.weights.h5`.
        factor: the loss explodes above `factor` times the first batch's
            loss; > 1.
        patience_low: epochs over which the loss must move; >= 1.
        min_relative_change: the smallest relative change of the loss over
            `patience_low` epochs that does not count as barely moving;
            >= 0 (0 turns the warning off).

    Attributes:
        exploded: whether training was stopped.
        reason: why (e.g. "loss is nan"), or None.
        cause: `"learning_rate"`, `"data"` (the batch held non-finite
            values) or `"gradient"` (an earlier update made the weights
            non-finite), or None.
        stopped_epoch: the 0-based epoch in which training was stopped
            (Keras's `EarlyStopping` convention), or None.
        stopped_batch: the 0-based batch, or None when the epoch's loss
            gave it away.
        restored_epoch: the number of epochs the restored weights had
            completed (0: the weights the run started from), or None.
        initial_loss: the first batch's loss.
        epoch_losses: each finished epoch's loss.
        too_slow: whether the barely-moving warning was given.
        message: the last warning, or None.
    """

    def __init__(self, checkpoint_path=None, factor=3.0, patience_low=3,
                 min_relative_change=0.01):
        super().__init__()
        if not factor > 1:
            raise ValueError(f"factor must be > 1. Received: factor={factor}")
        if patience_low < 1:
            raise ValueError(f"patience_low must be >= 1. Received: "
                             f"patience_low={patience_low}")
        if not min_relative_change >= 0:
            raise ValueError(f"min_relative_change must be >= 0. Received: "
                             f"min_relative_change={min_relative_change}")
        self.checkpoint_path = None
        if checkpoint_path is not None:
            path = pathlib.Path(checkpoint_path)
            if not path.name.endswith(".weights.h5"):
                path = path / DEFAULT_FILENAME
            self.checkpoint_path = path
        self.factor = float(factor)
        self.patience_low = int(patience_low)
        self.min_relative_change = float(min_relative_change)
        self._reset()

    def _reset(self):
        self.exploded = False
        self.reason = None
        self.cause = None
        self.stopped_epoch = None
        self.stopped_batch = None
        self.restored_epoch = None
        self.initial_loss = None
        self.epoch_losses = []
        self.too_slow = False
        self.message = None
        self._epoch = 0
        self._good_weights = None
        self._good_epoch = 0
        self._file_current = False
        self._initial_norm = None
        self._norm = None  # the weights' norm after the last batch

    def _weights_norm(self):
        return float(_global_norm(self.model.trainable_variables))

    def learning_rate(self):
        """The optimizer's current learning rate (schedules evaluated)."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return float("nan")
        return float(np.asarray(optimizer.learning_rate))

    def _problem(self, loss):
        if not math.isfinite(loss):
            return f"loss is {loss}"
        if self.initial_loss is not None and loss > self.factor * self.initial_loss:
            return (f"loss {loss:.4g} exceeds {self.factor:g} x the first "
                    f"batch's loss {self.initial_loss:.4g}")
        return None

    def _save(self):
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        save_weights_atomic(self.model, self.checkpoint_path)
        self._file_current = True

    def _cause(self, loss):
        """What the explosion's loss and the weights before it point at."""
        if math.isfinite(loss) or self._norm is None:
            return "learning_rate"
        if not math.isfinite(self._norm):
            return "gradient"
        if self._norm > GROWTH_LIMIT * max(self._initial_norm, 1e-12):
            return "learning_rate"
        return "data"

    def _advice(self):
        if self.cause == "data":
            return (f"The weights going into this batch were finite and had "
                    f"not grown (norm {self._norm:.4g}, {self._initial_norm:.4g} "
                    f"at the start), so the batch itself is the likely "
                    f"cause: NaN or infinite values in its inputs, labels or "
                    f"sample weights. Check the data (e.g. "
                    f"tf.debugging.check_numerics in the input pipeline).")
        if self.cause == "gradient":
            return ("The weights became non-finite in an update: its "
                    "gradient was non-finite, from NaN or infinite values in "
                    "the data (a ReLU can hide them from the loss) or from a "
                    f"learning rate ({self.learning_rate():.3g}) that is too "
                    "high.")
        grown = ""
        if self._norm is not None and self._initial_norm:
            grown = (f" (weight norm {self._initial_norm:.4g} at the start, "
                     f"{self._norm:.4g} before this batch)")
        return (f"The learning rate ({self.learning_rate():.3g}) is probably "
                f"too high{grown}.")

    def _explode(self, reason, batch, loss):
        self.exploded = True
        self.reason = reason
        self.cause = self._cause(loss)
        self.stopped_epoch = self._epoch
        self.stopped_batch = batch
        self.model.stop_training = True
        self.model.set_weights(self._good_weights)
        self.restored_epoch = self._good_epoch
        where = f"epoch {self._epoch + 1}" + (
            "" if batch is None else f", batch {batch + 1}")
        restored = (f"the weights after epoch {self._good_epoch}"
                    if self._good_epoch else "the initial weights")
        saved = ""
        if self.checkpoint_path is not None:
            if not self._file_current:
                self._save()
            saved = f" (saved in {self.checkpoint_path})"
        self.message = (
            f"Loss exploded: {reason} at {where}. {self._advice()} Training "
            f"stopped; restored {restored}{saved}.")
        logging.warning("ExplosionGuard: %s", self.message)

    def on_train_begin(self, logs=None):
        self._reset()
        self._good_weights = self.model.get_weights()
        self._initial_norm = self._norm = self._weights_norm()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.exploded or not logs or "loss" not in logs:
            return
        loss = float(np.asarray(logs["loss"]))
        if self.initial_loss is None and math.isfinite(loss):
            self.initial_loss = loss
        problem = self._problem(loss)
        if problem:
            self._explode(problem, batch, loss)
            return
        norm = self._weights_norm()
        if not math.isfinite(norm):
            # A finite loss from non-finite weights: a NaN ReLU input can
            # come out as 0, hiding the NaN kernel from the loss.
            self._norm = norm
            self._explode(f"the weights became {norm} (the loss, {loss:.4g}, "
                          f"did not show it)", batch, math.nan)
            return
        self._norm = norm

    def on_epoch_end(self, epoch, logs=None):
        if self.exploded or not logs or "loss" not in logs:
            return
        loss = float(np.asarray(logs["loss"]))
        problem = self._problem(loss)
        if problem:
            self._explode(problem, None, loss)
            return
        self._good_weights = self.model.get_weights()
        self._good_epoch = epoch + 1
        self._file_current = False
        if self.checkpoint_path is not None:
            self._save()
        self.epoch_losses.append(loss)
        self._check_progress()

    def _check_progress(self):
        if self.too_slow or self.min_relative_change == 0:
            return
        history = [self.initial_loss, *self.epoch_losses]
        if len(self.epoch_losses) < self.patience_low or history[0] is None:
            return
        before, now = history[-1 - self.patience_low], history[-1]
        change = abs(before - now) / max(abs(before), 1e-12)
        if change < self.min_relative_change:
            self.too_slow = True
            self.message = (
                f"Loss barely moving: {before:.4g} -> {now:.4g} over the last "
                f"{self.patience_low} epoch(s), a {change:.2%} change (below "
                f"{self.min_relative_change:.2%}). The learning rate "
                f"({self.learning_rate():.3g}) is probably too low.")
            logging.warning("ExplosionGuard: %s", self.message)
