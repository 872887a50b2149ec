"""Writing files without ever leaving a half-written one in place."""

import contextlib
import json
import os
import pathlib
import tempfile


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path beside `path` to write the new file to; when
    the block completes, it is renamed to `path` (readers see the old file
    or the new one, never part of one), and when it raises, removed.

    The temporary name is unique to this call (two writers never share
    one) and keeps `path`'s suffixes, for writers that choose the format
    by them (`.keras`, `.weights.h5`).
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix="".join(path.suffixes))
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data):
    """Writes `data` to `path` through `replacing`."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path, text):
    """`write_bytes_atomic` of `text` in UTF-8."""
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path, payload):
    """`payload` as indented JSON with sorted keys, written atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True)
                      + "\n")
