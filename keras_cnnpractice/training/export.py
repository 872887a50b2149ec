"""Exports a SavedModel without ever leaving a half-written one in place."""

import os
import pathlib
import shutil

import keras
import tensorflow as tf


def _write_inference_endpoint(model, path):
    """`model.export()`, except that `serve` calls the model with
    `training=False`. Keras's own export calls it with no training flag, so
    augmentation layers (whose `training` defaults to True, Keras's as well
    as ours) would stay active in the served model."""
    signature = [tf.TensorSpec(t.shape, t.dtype) for t in model.inputs]

    def serve(*inputs):
        return model(inputs[0] if len(inputs) == 1 else list(inputs),
                     training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=signature)
    archive.write_out(str(path), verbose=False)


def export_saved_model(model, export_dir):
    """Writes the model's inference SavedModel to a temporary folder, then
    renames it.

    The `serve` endpoint runs the model with `training=False`, so
    augmentation and dropout layers inside it are inactive.

    An existing export at `export_dir` is replaced only once the new one is
    complete; a crash leaves either the old or the new export (plus, at
    worst, a `*.tmp-PID` / `*.old-PID` folder beside it), never a partial one.

    Returns:
        The export path.
    """
    export_dir = pathlib.Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = export_dir.with_name(f"{export_dir.name}.tmp-{os.getpid()}")
    old = export_dir.with_name(f"{export_dir.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    _write_inference_endpoint(model, tmp)
    if export_dir.exists():
        os.replace(export_dir, old)
    os.replace(tmp, export_dir)
    shutil.rmtree(old, ignore_errors=True)
    return export_dir
