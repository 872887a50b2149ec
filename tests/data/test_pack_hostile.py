"""Hostile packs: a crafted index or shard gives a one-line error naming
the value, never an abort, a hang, a read outside the pack or a label no
model output can match; reruns clean up after killed runs; the skipped
report cannot be forged by a file name.

The packs here are written by hand (struct, hashlib, json), not by the
packer, so the tests rest on the documented layout alone."""

import builtins
import hashlib
import json
import os
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.data import pack_dataset
from keras_cnnpractice.data import packed
from keras_cnnpractice.data import packed_info
from keras_cnnpractice.data.packs.format import file_sha256
from keras_cnnpractice.data.packs import packed_batches
from tests.conftest import REPO
from tests.data import image_files as files

SHAPE = (2, 3, 1)
RECORD = 4 + 6
BIG = 1 << 40  # BIG ** 3 = 2 ** 120 bytes: no int64 holds it


def raw_pack(out, labels, class_names=("a", "b"), **index_changes):
    """Writes a one-shard raw pack of `len(labels)` records by hand: each
    image's pixels are its record number; returns the index written."""
    out.mkdir(parents=True, exist_ok=True)
    data = b"".join(struct.pack("<i", y) + bytes([i] * 6)
                    for i, y in enumerate(labels))
    (out / "shard-00000.raw").write_bytes(data)
    index = {
        "format_version": 1, "complete": True, "format": "raw",
        "shape": list(SHAPE), "num_examples": len(labels),
        "class_names": list(class_names),
        "shards": [{"file": "shard-00000.raw", "count": len(labels),
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()}],
        "args": {}, "source_fingerprint": "hand-made", "skipped": []}
    index.update(index_changes)
    (out / "index.json").write_text(json.dumps(index))
    return index


def rewrite_index(out, **changes):
    index = json.loads((out / "index.json").read_text())
    index.update(changes)
    (out / "index.json").write_text(json.dumps(index))


def one_line_value_error(call, *needles):
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


# 1. Sizes that overflow int64 -------------------------------------------

@pytest.mark.parametrize("changes, needle", [
    ({"shape": [BIG, BIG, BIG]}, f"shape=[{BIG}, {BIG}, {BIG}]"),
    ({"shape": [BIG, 1, 1]}, f"shape=[{BIG}, 1, 1]"),  # > 2 GiB records
    ({"shape": [2, -3, 1]}, "shape=-3"),
    ({"num_examples": 1 << 62}, f"num_examples={1 << 62}"),
    ({"shape": [2, 3.0, 1]}, "shape=3.0"),
])
def test_an_index_whose_sizes_overflow_is_refused(tmp_path, changes,
                                                  needle):
    raw_pack(tmp_path, [0, 1], **changes)
    one_line_value_error(lambda: packed_batches(tmp_path, 2), needle)
    one_line_value_error(lambda: packed(tmp_path), needle)


def test_shard_counts_that_overflow_are_refused(tmp_path):
    index = raw_pack(tmp_path, [0, 1])
    count = 1 << 61  # times 10-byte records: past 2 ** 63
    shard = dict(index["shards"][0], count=count, bytes=count * RECORD)
    rewrite_index(tmp_path, shards=[shard], num_examples=count)
    one_line_value_error(lambda: packed_batches(tmp_path, 2),
                         f"={count}")


_OP_PROBE = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
from keras_cnnpractice.custom_ops._loader import load_op_library
op = load_op_library().keras_cnn_practice_read_packed_records
shard, fifo = sys.argv[1], sys.argv[2]
big = 1 << 40
cases = {
    "record": ([0], [shard], [1], [big, big, big]),
    "offsets": ([0], [shard], [1 << 61], [2, 3, 1]),
    "total": ([0], [shard] * 6, [(1 << 63) // 5] * 6, [1, 1, 1]),
    "batch": (np.zeros(1 << 14, np.int64), [shard], [1], [1 << 20, 1 << 20, 1 << 10]),
    "fifo": ([0], [fifo], [1], [2, 3, 1]),
}
for name, (index, paths, counts, shape) in cases.items():
    try:
        op(index, paths=paths, counts=counts, shape=shape)
        print(json.dumps([name, "no error", ""]), flush=True)
    except Exception as err:
        print(json.dumps([name, type(err).__name__, str(err)]), flush=True)
"""


@pytest.fixture(scope="module")
def op_probe(tmp_path_factory):
    """Runs `ReadPackedRecords` on crafted attributes in a subprocess (an
    abort or a hang there cannot take the test run with it): `{case:
    (error type, message)}`."""
    folder = tmp_path_factory.mktemp("probe")
    raw_pack(folder, [0, 1])
    os.mkfifo(folder / "fifo.raw")
    try:
        result = subprocess.run(
            [sys.executable, "-c", _OP_PROBE,
             str(folder / "shard-00000.raw"), str(folder / "fifo.raw")],
            cwd=REPO, capture_output=True, text=True, timeout=60,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        out, code = result.stdout, result.returncode
    except subprocess.TimeoutExpired as err:
        out, code = (err.stdout or b"").decode(), "timeout"
    found = {}
    for line in out.splitlines():
        name, kind, message = json.loads(line)
        found[name] = (kind, message)
    return found, code


@pytest.mark.parametrize("case, needle", [
    ("record", f"shape ({1 << 40}, {1 << 40}, {1 << 40}) makes records"),
    ("offsets", f"Received: {1 << 61}"),
    ("total", f"add up to at most {(1 << 63) - 1}. "
              f"Received: {(1 << 63) // 5}"),  # each fits, the sum does not
    ("batch", "overflow"),
])
def test_the_op_refuses_sizes_that_overflow(op_probe, case, needle):
    found, code = op_probe
    assert case in found, f"probe exited with {code} before {case!r}"
    kind, message = found[case]
    assert kind == "InvalidArgumentError", (kind, message)
    assert needle in message, message


# 2. Shards that are not regular files ------------------------------------

def test_the_op_refuses_a_fifo_shard_at_once(op_probe):
    found, code = op_probe
    assert "fifo" in found, f"probe exited with {code} (a FIFO blocks?)"
    kind, message = found["fifo"]
    assert kind == "InvalidArgumentError", (kind, message)
    assert "fifo.raw is not a regular file" in message, message


def within(seconds, call):
    """`call()`'s exception, from a daemon thread that must end within
    `seconds` (a blocked open cannot hang the test run)."""
    outcome = []

    def run():
        try:
            call()
            outcome.append(None)
        except Exception as err:  # noqa: BLE001 - handed to the test
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    return outcome[0]


def test_a_fifo_shard_is_refused_by_the_python_readers(tmp_path):
    index = raw_pack(tmp_path, [0, 1])
    shard = tmp_path / index["shards"][0]["file"]
    shard.unlink()
    os.mkfifo(shard)
    rewrite_index(tmp_path, shards=[dict(index["shards"][0], bytes=0,
                                         count=0)], num_examples=0)
    for call in (lambda: packed(tmp_path), lambda: file_sha256(shard),
                 lambda: packed_batches(tmp_path, 2)):
        err = within(5, call)
        assert isinstance(err, ValueError), err
        assert f"{shard} is not a regular file" in str(err)


# 3. Shard names that leave the pack's folder -----------------------------

@pytest.fixture
def opened(monkeypatch):
    """Every path opened through `open` or `os.open` while the test runs."""
    paths = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        paths.append(os.fspath(file) if not isinstance(file, int) else file)
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        paths.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return paths


@pytest.mark.parametrize("name", ["../secret.bin", "ABSOLUTE", "sub/x.raw",
                                  "..", "link.raw"])
def test_shard_names_outside_the_pack_are_refused_before_any_read(
        tmp_path, opened, name):
    pack = tmp_path / "pack"
    index = raw_pack(pack, [0, 1])
    secret = tmp_path / "secret.bin"  # same size and digest as the shard
    secret.write_bytes((pack / "shard-00000.raw").read_bytes())
    (pack / "sub").mkdir()
    (pack / "sub" / "x.raw").write_bytes(secret.read_bytes())
    (pack / "link.raw").symlink_to(secret)
    name = str(secret) if name == "ABSOLUTE" else name
    rewrite_index(pack, shards=[dict(index["shards"][0], file=name)])
    for call in (lambda: packed_info(pack), lambda: packed(pack),
                 lambda: packed_batches(pack, 2)):
        one_line_value_error(call, f"file={name!r}")
    assert not [p for p in opened if isinstance(p, str) and (
        p.endswith("secret.bin") or p.endswith("x.raw")
        or p.endswith("link.raw"))]


# 4. Labels outside the pack's classes ------------------------------------

@pytest.mark.parametrize("bad", [1000, 2, -1])
def test_a_label_outside_the_classes_fails_naming_it(tmp_path, bad):
    raw_pack(tmp_path, [0, 1, bad, 0])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"outside \[0, 2\).*label={bad}"):
        list(packed_batches(tmp_path, 2))
    one_line_value_error(lambda: packed(tmp_path), "shard-00000.raw",
                         "outside [0, 2)", "record 2", f"label={bad}")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"not in \[0, 2\)[\s\S]*\[{bad}\]"):
        list(packed(tmp_path, verify="none").dataset)
    good = list(packed_batches(tmp_path, 2).take(1))  # before the bad one
    np.testing.assert_array_equal(good[0][1], [0, 1])


def test_the_checksum_pass_names_a_bad_label_deep_in_a_later_shard(
        tmp_path):
    """Shard 1 spans two 4 MiB reads; its record 450000 (the pack's
    450002nd) has label 7, in the second read."""
    index = raw_pack(tmp_path, [0, 1])
    records = np.zeros((500_000, RECORD), np.uint8)
    labels = np.arange(500_000, dtype="<i4") % 2
    labels[450_000] = 7
    records[:, :4] = labels.view(np.uint8).reshape(-1, 4)
    data = records.tobytes()
    (tmp_path / "shard-00001.raw").write_bytes(data)
    rewrite_index(tmp_path, num_examples=500_002, shards=[
        index["shards"][0],
        {"file": "shard-00001.raw", "count": 500_000, "bytes": len(data),
         "sha256": hashlib.sha256(data).hexdigest()}])
    one_line_value_error(lambda: packed(tmp_path), "shard-00001.raw",
                         "record 450002:", "label=7")


def test_a_tfrecord_label_that_would_wrap_to_int32_is_refused(tmp_path):
    """2 ** 32 becomes 0 as an int32: the check comes before the cast."""
    path = tmp_path / "shard-00000.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for label in (1, 1 << 32):
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[bytes(6)])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(
                    value=[label]))}
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    data = path.read_bytes()
    raw_pack(tmp_path, [0, 1], format="tfrecord", shards=[{
        "file": path.name, "count": 2, "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest()}])
    (tmp_path / "shard-00000.raw").unlink()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"not in \[0, 2\)[\s\S]*{1 << 32}"):
        list(packed(tmp_path, verify="none").dataset)


# 5. Leftovers of killed runs ---------------------------------------------

def test_a_rerun_that_finds_the_pack_complete_removes_dead_leftovers(
        tmp_path):
    source = tmp_path / "src"
    (source / "a").mkdir(parents=True)
    (source / "a" / "x.png").write_bytes(files.png(files.noise((4, 4, 3),
                                                               0)))
    out = tmp_path / "pack"
    pack_dataset(source, out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftovers = [f".pack.partial-{dead.pid}", f".pack.old-{dead.pid}"]
    live = f".pack.partial-{os.getppid()}"  # a running process's
    for name in leftovers + [live]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "shard-00000.raw").write_bytes(b"\0" * 52)
    assert pack_dataset(source, out)[1]  # complete: nothing to write
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live, "pack", "src"])


# 6. The skipped report --------------------------------------------------

def test_file_names_round_trip_through_the_skipped_report(tmp_path):
    source = tmp_path / "src"
    (source / "a").mkdir(parents=True)
    (source / "a" / "good.png").write_bytes(files.png(files.noise((4, 4, 3),
                                                                  0)))
    forged = "x.png\tforged reason\nforged.png"
    names = [forged, "caf\u00e9\u2028line.png"]
    for name in names:
        (source / "a" / name).write_text("not an image")
    pack_dataset(source, tmp_path / "pack")
    text = (tmp_path / "pack" / "skipped.jsonl").read_bytes().decode("ascii")
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 3  # one line per file
    entries = [json.loads(line) for line in lines[:-1]]
    assert sorted(e["path"] for e in entries) == sorted(
        os.path.join("a", n) for n in names)
    assert all(e["reason"] and set(e) == {"path", "reason"}
               for e in entries)
