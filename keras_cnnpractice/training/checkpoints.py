"""Per-epoch checkpoints of model and optimizer, and resuming from them.

Each checkpoint is Keras's own weights file (`model.save_weights`, which
holds the optimizer's state too), written to a temporary name and renamed to
`epoch-N.weights.h5` once complete: a process killed mid-write, or
mid-epoch, leaves the previous checkpoint as the newest complete one.

Faults a checkpoint survives:

* Integrity: before the rename, a SHA-256 digest of the file's content --
  every dataset's name, dtype, shape and bytes and every attribute, in
  file order -- is stored in the file itself, as the root attribute
  `DIGEST_ATTR`. It travels with the file and is renamed into place with
  it, so a checkpoint never exists without its digest. A checkpoint
  *verifies* when it opens, reads completely, its digest matches and every
  floating-point value is finite. A checkpoint written before digests
  existed (no root attribute at all, as Keras writes it) still verifies if
  it reads completely and is finite; a warning says it was accepted without
  a digest. Bytes HDF5 never reads (free space, padding) are outside the
  digest: flipping them changes nothing that loads.
* Restoring (`restore_latest`) tries the checkpoints newest first. One that
  does not verify (truncated, bits flipped, NaN inside) is reported in one
  log line naming the file and why, set aside as `epoch-N.weights.h5.corrupt`
  (renamed, never deleted), and the next older one is tried.
* Saving (`EpochCheckpoint`) skips, with a logged line, an epoch whose model
  or optimizer variables are not all finite (after a loss explosion, say):
  nothing non-finite becomes a resume point. Older checkpoints are pruned
  only after a new one was written, never that new one, so the rotation
  never removes the newest checkpoint that verifies.
"""

import hashlib
import os
import pathlib
import re

import h5py
import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_cnnpractice._errors import first_line
from keras_cnnpractice._files import replacing

# The root attribute of a checkpoint file that holds its content's digest.
DIGEST_ATTR = "keras_cnnpractice_sha256"
CORRUPT_SUFFIX = ".corrupt"

_NAME = re.compile(r"^epoch-(\d+)\.weights\.h5$")


def _checkpoints(directory):
    """`[(epoch, path)]` of the complete checkpoints in `directory`, oldest
    first."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return sorted((int(m.group(1)), directory / m.group(0))
                  for m in map(_NAME.match, os.listdir(directory)) if m)


def latest_checkpoint(directory):
    """`(epoch, path)` of the newest complete checkpoint, or `(0, None)`.

    The file is not verified; `restore_latest` verifies before loading.
    """
    found = _checkpoints(directory)
    return found[-1] if found else (0, None)


def _value_bytes(value):
    """The dtype, shape and values of an attribute or dataset as bytes."""
    data = np.asarray(value)
    head = f"{data.dtype.str}{data.shape}".encode()
    if data.dtype.kind == "O":  # variable-length strings
        return head + repr(data.tolist()).encode()
    return head + np.ascontiguousarray(data).tobytes()


def _scan(h5file):
    """Reads every dataset and attribute of an open `h5py.File`.

    Returns:
        `(hex digest of the content, name of the first dataset holding a
        NaN or infinity or None)`; the digest attribute itself is left out.
    """
    digest = hashlib.sha256()
    nonfinite = []

    def add(name, obj):
        digest.update(name.encode())
        for key in sorted(obj.attrs):
            if not (obj.name == "/" and key == DIGEST_ATTR):
                digest.update(key.encode() + _value_bytes(obj.attrs[key]))
        if isinstance(obj, h5py.Dataset):
            data = np.asarray(obj[()])
            digest.update(_value_bytes(data))
            if data.dtype.kind in "fc" and not np.all(np.isfinite(data)):
                nonfinite.append(name)

    add("/", h5file)
    h5file.visititems(add)
    return digest.hexdigest(), (nonfinite[0] if nonfinite else None)


def write_digest(path):
    """Stores the digest of `path`'s content in `path` (`DIGEST_ATTR`).

    Args:
        path: a `.weights.h5` file, normally still under its temporary name.
    """
    with h5py.File(path, "r+") as f:
        f.attrs[DIGEST_ATTR] = _scan(f)[0]


def checkpoint_problem(path):
    """Why the checkpoint at `path` does not verify, or None if it does.

    Args:
        path: a `.weights.h5` file.

    Returns:
        None, or a short reason: unreadable (truncated, not HDF5, damaged
        structure), digest mismatch or damaged, or a non-finite value. A
        file without any root attribute (written before digests existed)
        that reads completely and is finite verifies, with a logged warning.
    """
    try:
        with h5py.File(path, "r") as f:
            stored = f.attrs.get(DIGEST_ATTR)
            root_attrs = len(f.attrs)
            actual, nonfinite = _scan(f)
    except Exception as err:  # pylint: disable=broad-except
        # Whatever h5py raises on a damaged file (OSError, KeyError,
        # RuntimeError, ...), a file that cannot be read does not verify.
        return f"cannot be read ({first_line(err)})"
    if isinstance(stored, bytes):
        stored = stored.decode(errors="replace")
    if stored is not None and stored != actual:
        return "its SHA-256 digest does not match its content"
    if stored is None and root_attrs:  # Keras writes none: ours was damaged
        return "its digest attribute is damaged"
    if nonfinite:
        return f"it holds NaN or infinite values ({nonfinite})"
    if stored is None:
        logging.warning("Checkpoint %s has no digest (written before "
                        "digests existed); accepted because it reads "
                        "completely and is finite.", path)
    return None


def set_aside(path, reason):
    """Renames a checkpoint that does not verify to `NAME.corrupt` (or
    `NAME.corrupt-K` if taken) and logs one line naming it and why.

    Returns:
        The new path, or None if the file was already gone (another worker
        of the same run set it aside first).
    """
    path = pathlib.Path(path)
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    k = 0
    while target.exists():
        k += 1
        target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}-{k}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    logging.warning("Checkpoint %s does not verify: %s; set aside as %s.",
                    path, reason, target.name)
    return target


def save_weights_atomic(model, path):
    """`model.save_weights(path)` through a temporary name and a rename,
    with the content's digest stored in the file before the rename.

    Args:
        model: a Keras model.
        path: a file name ending in `.weights.h5`; its directory must exist.
    """
    with replacing(path) as tmp:
        model.save_weights(tmp, overwrite=True)
        write_digest(tmp)


def newest_good_checkpoint(directory, set_bad_aside=False):
    """`(epoch, path)` of the newest checkpoint in `directory` that
    verifies, or `(0, None)`.

    Args:
        directory: the checkpoints' folder (need not exist).
        set_bad_aside: whether newer checkpoints that do not verify are set
            aside (`set_aside`: this run's own folder, as `restore_latest`
            does) or left in place with a logged line (another run's
            checkpoints, `--init_from`).
    """
    for epoch, path in reversed(_checkpoints(directory)):
        problem = checkpoint_problem(path)
        if problem is None:
            return epoch, path
        if set_bad_aside:
            set_aside(path, problem)
        else:
            logging.warning("Checkpoint %s does not verify: %s; skipped.",
                            path, problem)
    return 0, None


def restore_latest(model, directory):
    """Loads the newest checkpoint in `directory` that verifies into a
    compiled `model`.

    Newer checkpoints that do not verify are set aside (see `set_aside`).
    The optimizer's variables are created first so its state is restored
    too (Adam's moments and step count, hence the learning-rate schedule).

    Args:
        model: a compiled Keras model of the run that wrote the checkpoints.
        directory: the checkpoints' folder (need not exist).

    Returns:
        The number of epochs that checkpoint completed (0 if none verifies).
    """
    epoch, path = newest_good_checkpoint(directory, set_bad_aside=True)
    if path is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
    return epoch


def nonfinite_variables(model, optimizer=None):
    """Paths of `model`'s variables and its optimizer's (`optimizer`, else
    the model's own) that hold a NaN or an infinity."""
    optimizer = optimizer or getattr(model, "optimizer", None)
    variables = list(model.weights) + list(
        optimizer.variables if optimizer is not None else [])
    return [v.path for v, value in zip(variables, map(np.asarray, variables))
            if value.dtype.kind in "fc" and not np.all(np.isfinite(value))]


def restore_newest_good(checkpoint, manager, model, optimizer):
    """`restore_latest` for TensorFlow checkpoints (the parameter-server
    loop's `tf.train.CheckpointManager`).

    Restores the newest of `manager.checkpoints` that reads back completely
    (TensorFlow's bundle format checks a CRC32C per tensor, so truncated or
    altered files fail) and leaves the model and optimizer finite. Each
    newer one that does not is set aside: its `.index` and `.data-*` files
    renamed `.corrupt`, one log line per file naming it and why.

    Args:
        checkpoint: the `tf.train.Checkpoint` tracking model and optimizer.
        manager: the `tf.train.CheckpointManager` of `checkpoint`.
        model: the Keras model.
        optimizer: its optimizer.

    Returns:
        The restored checkpoint's prefix, or None when none is good.
    """
    for prefix in reversed(manager.checkpoints):
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
            bad = nonfinite_variables(model, optimizer)
            problem = (f"non-finite values in {', '.join(bad[:3])}" if bad
                       else None)
        # (A truncated bundle raises IndexError: "Read less bytes than
        # requested".)
        except (tf.errors.OpError, ValueError, AssertionError, IndexError,
                OSError) as err:
            problem = first_line(err)
        if problem is None:
            return prefix
        for path in sorted(pathlib.Path(prefix).parent.glob(
                pathlib.Path(prefix).name + ".*")):
            if CORRUPT_SUFFIX not in path.name:
                set_aside(path, problem)
    return None


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves `epoch-N.weights.h5` after epoch N, keeping the newest few.

    An epoch whose model or optimizer variables are not all finite is not
    saved (one logged line names them); pruning happens only after a
    checkpoint was written and keeps it.

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
        path = self.directory / f"epoch-{epoch + 1}.weights.h5"
        bad = nonfinite_variables(self.model)
        if bad:
            logging.warning(
                "Not saving checkpoint %s: %d variable(s) hold NaN or "
                "infinite values (%s); the newest checkpoint stays the "
                "resume point.", path, len(bad), ", ".join(bad[:3]))
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        save_weights_atomic(self.model, path)
        self._prune(keep=path)

    def _prune(self, keep):
        """Removes all but the newest `max_to_keep` checkpoints, never
        `keep` (the one just written)."""
        found = _checkpoints(self.directory)
        for _, path in found[:-self.max_to_keep]:
            if path != keep:
                path.unlink(missing_ok=True)
