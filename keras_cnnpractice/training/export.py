"""Exports a SavedModel without ever leaving a half-written one in place."""

import os
import pathlib
import shutil

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice.layers.fast_conv2d import portable_export

# Test images a file-based dataset loads into memory for the export check
# (in-memory datasets use all of theirs).
EXPORT_CHECK_IMAGES = 256


def _write_inference_endpoint(model, path):
    """`model.export()`, except that `serve` calls the model with
    `training=False`. Keras's own export calls it with no training flag, so
    augmentation layers (whose `training` defaults to True, Keras's as well
    as ours) would stay active in the served model."""
    signature = [tf.TensorSpec(t.shape, t.dtype) for t in model.inputs]

    def serve(*inputs):
        return model(inputs[0] if len(inputs) == 1 else list(inputs),
                     training=False)

    with portable_export():  # FastConv2D: TensorFlow's own convolution
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", serve, input_signature=signature)
        archive.write_out(str(path), verbose=False)


def export_saved_model(model, export_dir):
    """Writes the model's inference SavedModel to a temporary folder, then
    renames it.

    The `serve` endpoint runs the model with `training=False`, so
    augmentation and dropout layers inside it are inactive, and is traced
    inside `layers.fast_conv2d.portable_export()`, so `FastConv2D` layers
    export TensorFlow's own convolution (unless built with
    `portable=False`).

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


def export_and_check(model, export_dir, source):
    """Exports `model`'s inference SavedModel to `export_dir` and reloads
    it.

    Returns:
        `(export path, max abs difference between the served and the
        model's class probabilities on test images)`.
    """
    export_dir = export_saved_model(model, export_dir)
    x_check, _ = source.test_arrays(
        EXPORT_CHECK_IMAGES if source.file_based else None)
    images = x_check.astype(np.float32)
    reloaded = tf.saved_model.load(str(export_dir))
    served = reloaded.serve(tf.constant(images)).numpy()
    max_diff = float(np.max(np.abs(served - model.predict(images, verbose=0))))
    print(f"Exported SavedModel to {export_dir} (max abs difference from the "
          f"trained model: {max_diff:.2e})", flush=True)
    return export_dir, max_diff
