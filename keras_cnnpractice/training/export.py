"""Exports a SavedModel without ever leaving a half-written one in place."""

import os
import pathlib
import shutil


def export_saved_model(model, export_dir):
    """Writes `model.export()` to a temporary folder, then renames it.

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
    model.export(str(tmp), format="tf_saved_model", verbose=False)
    if export_dir.exists():
        os.replace(export_dir, old)
    os.replace(tmp, export_dir)
    shutil.rmtree(old, ignore_errors=True)
    return export_dir
