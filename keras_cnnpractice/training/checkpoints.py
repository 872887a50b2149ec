"""Per-epoch checkpoints of model and optimizer, and resuming from them.

Each checkpoint is Keras's own weights file (`model.save_weights`, which
holds the optimizer's state too), written to a temporary name and renamed to
`epoch-N.weights.h5` once complete: a process killed mid-write, or
mid-epoch, leaves the previous checkpoint as the newest complete one.
"""

import os
import pathlib
import re

import keras

_NAME = re.compile(r"^epoch-(\d+)\.weights\.h5$")


def latest_checkpoint(directory):
    """`(epoch, path)` of the newest complete checkpoint, or `(0, None)`."""
    directory = pathlib.Path(directory)
    found = [(int(m.group(1)), directory / m.group(0))
             for m in map(_NAME.match, os.listdir(directory)
                          if directory.is_dir() else []) if m]
    return max(found) if found else (0, None)


def save_weights_atomic(model, path):
    """`model.save_weights(path)` through a temporary name and a rename.

    Args:
        model: a Keras model.
        path: a file name ending in `.weights.h5`; its directory must exist.
    """
    path = pathlib.Path(path)
    stem = path.name[:-len(".weights.h5")]
    tmp = path.with_name(f"{stem}.tmp-{os.getpid()}.weights.h5")
    model.save_weights(tmp, overwrite=True)
    os.replace(tmp, path)


def restore_latest(model, directory):
    """Loads the newest checkpoint in `directory` into a compiled `model`.

    The optimizer's variables are created first so its state is restored
    too (Adam's moments and step count, hence the learning-rate schedule).

    Returns:
        The number of epochs that checkpoint completed (0 if none).
    """
    epoch, path = latest_checkpoint(directory)
    if path is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
    return epoch


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves `epoch-N.weights.h5` after epoch N, keeping the newest few.

    Args:
        directory: where checkpoints go (created if missing).
        max_to_keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, directory, max_to_keep=3):
        super().__init__()
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1. Received: "
                             f"max_to_keep={max_to_keep}")
        self.directory = pathlib.Path(directory)
        self.max_to_keep = max_to_keep

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        save_weights_atomic(self.model,
                            self.directory / f"epoch-{epoch + 1}.weights.h5")
        kept = sorted((int(m.group(1)), m.group(0)) for m in
                      map(_NAME.match, os.listdir(self.directory)) if m)
        for _, name in kept[:-self.max_to_keep]:
            (self.directory / name).unlink()
