"""Writing files without ever leaving a half-written one in place."""

import os
import pathlib


def write_text_atomic(path, text):
    """Writes `text` to `path` through a temporary name and a rename."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
