"""Checking a pack's shards against its index: SHA-256 and, for raw
packs, every label, in one read (`verify_shard`), at open or in a
background thread (`ShardVerifier`)."""

import threading

import numpy as np

from keras_cnnpractice.data.packs.format import file_sha256
from keras_cnnpractice.data.packs.format import unreadable


def _bad_labels(info, found):
    """An `inspect` for `file_sha256` over a raw shard read in blocks of
    whole records: appends `(record in the shard, label)` to `found` for
    the first label of each block outside `[0, num_classes)`."""
    record, n = info.record_bytes, len(info.class_names)

    def inspect(offset, block):
        labels = np.ndarray((len(block) // record,), "<i4", block, 0,
                            (record,))
        bad = np.flatnonzero((labels < 0) | (labels >= n))
        if bad.size:
            found.append((offset // record + int(bad[0]),
                          int(labels[bad[0]])))

    return inspect


def verify_shard(info, i):
    """Checks shard `i`'s SHA-256 against the index and, for a raw pack,
    its labels against the class count, in the same read.

    Raises:
        ValueError: naming the shard, when it differs, cannot be read, or
            holds a label outside `[0, len(class_names))` (naming the
            label).
    """
    shard, path = info.shards[i], info.shard_paths()[i]
    found, inspect, chunk = [], None, 1 << 22
    if info.format == "raw":
        chunk = info.record_bytes * max(1, chunk // info.record_bytes)
        inspect = _bad_labels(info, found)
    try:
        actual = file_sha256(path, chunk, inspect)
    except OSError as err:
        raise unreadable(path, err) from err
    if actual != shard["sha256"]:
        raise ValueError(f"Packed shard {path} is corrupt: its SHA-256 is "
                         f"{actual}, the index says {shard['sha256']}; "
                         f"pack the data again")
    if found:
        number = sum(s["count"] for s in info.shards[:i]) + found[0][0]
        raise ValueError(f"Packed shard {path} holds a label outside [0, "
                         f"{len(info.class_names)}) (the pack's classes) in "
                         f"record {number}: the pack is corrupt; pack the "
                         f"data again. Received: label={found[0][1]}")


class ShardVerifier:
    """Verifies shards in a background thread; `check(i)` blocks until
    shard `i` is verified (doing it at once if the thread has not reached
    it) and raises its error, every time it is asked."""

    def __init__(self, info):
        self._info = info
        self._locks = [threading.Lock() for _ in info.shards]
        self._results = [None] * len(info.shards)
        threading.Thread(target=self._run, daemon=True,
                         name="packed-verify").start()

    def _run(self):
        for i in range(len(self._locks)):
            try:
                self.check(i)
            except ValueError:
                pass  # raised again when the reader reaches shard i

    def check(self, i):
        with self._locks[i]:
            if self._results[i] is None:
                try:
                    verify_shard(self._info, i)
                    self._results[i] = ""
                except ValueError as err:
                    self._results[i] = str(err)
        if self._results[i]:
            raise ValueError(self._results[i])
