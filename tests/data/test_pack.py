"""pack_dataset / packed: the exact pixels back, byte-identical re-packs,
no-op re-runs, interrupted runs, corrupt shards, TFRecord, the CLI."""

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.data import pack_dataset
from keras_cnnpractice.data import packed
from keras_cnnpractice.data import packed_info
from tests.conftest import run_python
from tests.data import image_files as files
from tests.data.test_cifar import fake_cifar10

packing = importlib.import_module("keras_cnnpractice.data.packs.writer")

SHARD_MB = 4000 / (1 << 20)  # five 16x16x3 records (772 bytes) per shard


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of 16x16 PNG and JPEG files plus two bad files.

    Returns:
        `(root, images, labels)` with the pixels decoded independently, in
        the order a pack must store them (classes, then names, sorted).
    """
    root = tmp_path_factory.mktemp("folder")
    images, labels = [], []
    for label, name in enumerate(["ant", "bee"]):
        (root / name).mkdir()
        for i in range(7):
            pixels = files.noise((16, 16, 3), 10 * label + i)
            if i < 5:
                data = files.png(pixels)
                decoded = tf.io.decode_png(data).numpy()
                np.testing.assert_array_equal(decoded, pixels)
                (root / name / f"p{i}.png").write_bytes(data)
            else:  # lossy: what the JPEG decoder gives
                data = files.jpeg(pixels)
                decoded = tf.io.decode_jpeg(data).numpy()
                (root / name / f"q{i}.jpg").write_bytes(data)
            images.append(decoded)
            labels.append(label)
    (root / "ant" / "r_empty.png").write_bytes(b"")
    (root / "bee" / "r_text.jpg").write_text("not a jpeg")
    return root, np.stack(images), np.array(labels, np.int32)


def arrays(examples):
    pairs = list(examples.dataset.as_numpy_iterator())
    return np.stack([x for x, _ in pairs]), np.array([y for _, y in pairs])


def shard_bytes(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("shard-*"))}


def test_raw_pack_holds_the_decoded_pixels(folder, tmp_path):
    root, images, labels = folder
    out = tmp_path / "pack"
    info, reused = pack_dataset(root, out, shard_mb=SHARD_MB, workers=3)
    assert not reused
    assert info.num_examples == 14 and info.shape == (16, 16, 3)
    assert info.class_names == ("ant", "bee")
    assert [s["count"] for s in info.shards] == [5, 5, 4]
    assert sorted(os.listdir(out)) == ["index.json", "shard-00000.raw",
                                       "shard-00001.raw", "shard-00002.raw",
                                       "skipped.jsonl"]
    assert [p for p, _ in info.skipped] == ["ant/r_empty.png",
                                            "bee/r_text.jpg"]
    report = [json.loads(line) for line in
              (out / "skipped.jsonl").read_text().splitlines()]
    assert [e["path"] for e in report] == ["ant/r_empty.png",
                                           "bee/r_text.jpg"]
    # The layout, read with numpy: int32 little-endian label, HWC pixels.
    raw = b"".join(shard_bytes(out).values())
    records = np.frombuffer(raw, np.uint8).reshape(14, 4 + 16 * 16 * 3)
    np.testing.assert_array_equal(records[:, :4].copy().view("<i4")[:, 0],
                                  labels)
    np.testing.assert_array_equal(records[:, 4:].reshape(images.shape),
                                  images)
    x, y = arrays(packed(out))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int32
    assert packed(out).num_examples == 14


def test_same_folder_twice_gives_byte_identical_shards(folder, tmp_path):
    root = folder[0]
    pack_dataset(root, tmp_path / "a", shard_mb=SHARD_MB, workers=1)
    pack_dataset(root, tmp_path / "b", shard_mb=SHARD_MB, workers=4)
    first, second = shard_bytes(tmp_path / "a"), shard_bytes(tmp_path / "b")
    assert len(first) == 3 and first == second
    assert packed_info(tmp_path / "a").shards == \
        packed_info(tmp_path / "b").shards


def test_rerun_is_a_no_op_other_arguments_are_refused(folder, tmp_path):
    root = folder[0]
    out = tmp_path / "pack"
    pack_dataset(root, out, shard_mb=SHARD_MB)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    info, reused = pack_dataset(root, out, shard_mb=SHARD_MB, workers=2)
    assert reused and info.num_examples == 14
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(ValueError, match=r"other arguments \(size: None -> "
                                         r"8.*--overwrite"):
        pack_dataset(root, out, size=8, shard_mb=SHARD_MB)
    info, reused = pack_dataset(root, out, size=8, shard_mb=SHARD_MB,
                                overwrite=True)
    assert not reused and info.shape == (8, 8, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["pack"]


def test_changed_source_is_noticed(tmp_path):
    root = tmp_path / "src"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(files.png(files.noise((4, 4, 3), 0)))
    pack_dataset(root, tmp_path / "pack")
    (root / "a" / "y.png").write_bytes(files.png(files.noise((4, 4, 3), 1)))
    with pytest.raises(ValueError, match="source changed"):
        pack_dataset(root, tmp_path / "pack")
    info, _ = pack_dataset(root, tmp_path / "pack", overwrite=True)
    assert info.num_examples == 2


def test_interrupted_pack_leaves_nothing_and_a_rerun_succeeds(
        folder, tmp_path, monkeypatch):
    root, images, _ = folder
    out = tmp_path / "pack"
    add = packing._ShardWriter.add
    calls = []

    def add_then_fail(self, image, label):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        add(self, image, label)

    monkeypatch.setattr(packing._ShardWriter, "add", add_then_fail)
    with pytest.raises(KeyboardInterrupt):
        pack_dataset(root, out, shard_mb=SHARD_MB)
    assert list(tmp_path.iterdir()) == []  # no OUT_DIR, no partial folder
    monkeypatch.undo()
    info, reused = pack_dataset(root, out, shard_mb=SHARD_MB)
    assert not reused and info.num_examples == 14
    np.testing.assert_array_equal(arrays(packed(out))[0], images)


def test_a_killed_runs_leftovers_are_not_a_pack_and_are_removed(folder,
                                                               tmp_path):
    root = folder[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    partial = tmp_path / f".pack.partial-{dead.pid}"
    partial.mkdir()
    (partial / "shard-00000.raw").write_bytes(b"\0" * 772 * 5)
    (tmp_path / "pack").mkdir()
    with pytest.raises(ValueError, match="No index.json"):
        packed(tmp_path / "pack")
    pack_dataset(root, tmp_path / "pack", shard_mb=SHARD_MB)
    assert [p.name for p in tmp_path.iterdir()] == ["pack"]


def test_truncated_shard_is_named(folder, tmp_path):
    out = tmp_path / "pack"
    pack_dataset(folder[0], out, shard_mb=SHARD_MB)
    shard = out / "shard-00001.raw"
    shard.write_bytes(shard.read_bytes()[:-100])
    for verify in ("open", "background", "none"):
        with pytest.raises(ValueError, match=r"shard-00001\.raw has 3760 "
                                             r"bytes but the index says "
                                             r"3860"):
            packed(out, verify=verify)
    with pytest.raises(ValueError, match="shard-00001.raw has 3760 bytes"):
        pack_dataset(folder[0], out, shard_mb=SHARD_MB)


@pytest.mark.parametrize("fmt", ["raw", "tfrecord"])
def test_bit_flipped_shard_is_named(folder, tmp_path, fmt):
    out = tmp_path / "pack"
    info, _ = pack_dataset(folder[0], out, shard_mb=SHARD_MB, format=fmt)
    shard = out / info.shards[1]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{shard.name} is corrupt: its "
                                         r"SHA-256"):
        packed(out)
    # In the background the reader never yields a record of the bad shard.
    ds = packed(out, verify="background").dataset
    seen = []
    with pytest.raises(tf.errors.OpError, match=rf"{shard.name} is corrupt"):
        for element in ds:
            seen.append(element)
    assert len(seen) == info.shards[0]["count"]


def test_tfrecord_round_trip(folder, tmp_path):
    root, images, labels = folder
    out = tmp_path / "pack"
    info, _ = pack_dataset(root, out, shard_mb=SHARD_MB, format="tfrecord")
    assert info.format == "tfrecord" and info.num_examples == 14
    assert all(s["file"].endswith(".tfrecord") for s in info.shards)
    x, y = arrays(packed(out))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    # Standard tf.train.Example records, parsed with the protobuf class.
    record = next(iter(tf.data.TFRecordDataset(str(out / info.shards[0][
        "file"])))).numpy()
    feature = tf.train.Example.FromString(record).features.feature
    assert feature["label"].int64_list.value == [labels[0]]
    assert list(feature["shape"].int64_list.value) == [16, 16, 3]
    assert feature["image"].bytes_list.value[0] == images[0].tobytes()
    again = tmp_path / "again"
    pack_dataset(root, again, shard_mb=SHARD_MB, format="tfrecord")
    assert shard_bytes(out) == shard_bytes(again)


def test_shuffled_reading_is_seeded_and_complete(folder, tmp_path):
    root, images, labels = folder
    out = tmp_path / "pack"
    pack_dataset(root, out, shard_mb=SHARD_MB)
    ds = packed(out, shuffle=True, seed=5, cycle_length=2)
    first, second = arrays(ds), arrays(ds)
    again = arrays(packed(out, shuffle=True, seed=5, cycle_length=2))
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], second[0])  # reshuffled per epoch
    assert not np.array_equal(first[0], images)
    order = [next(i for i in range(14) if np.array_equal(x, images[i]))
             for x in first[0]]
    assert sorted(order) == list(range(14))
    np.testing.assert_array_equal(first[1], labels[order])


def test_resized_pack_matches_image_folder(folder, tmp_path):
    from keras_cnnpractice.data import image_folder
    root = folder[0]
    pack_dataset(root, tmp_path / "pack", size=8, resize="exact")
    x, _ = arrays(packed(tmp_path / "pack"))
    expected, _ = arrays(image_folder(root, size=8, resize="exact"))
    assert x.shape == (14, 8, 8, 3)
    np.testing.assert_array_equal(x, expected)


def test_images_of_different_sizes_need_size(tmp_path):
    root = tmp_path / "src"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(files.png(files.noise((4, 4, 3), 0)))
    (root / "a" / "y.png").write_bytes(files.png(files.noise((4, 6, 3), 1)))
    with pytest.raises(ValueError, match=r"y\.png is 4x6x3 but the first "
                                         r"image is 4x4x3.*--size"):
        pack_dataset(root, tmp_path / "pack")
    assert [p.name for p in tmp_path.iterdir()] == ["src"]
    info, _ = pack_dataset(root, tmp_path / "pack", size=4)
    assert info.shape == (4, 4, 3)


def test_cifar10_and_mnist5k_sources(tmp_path):
    data = fake_cifar10(tmp_path, per_file=2)
    info, _ = pack_dataset(f"cifar10:{tmp_path}", tmp_path / "c10",
                           split="test")
    x, y = arrays(packed(tmp_path / "c10"))
    np.testing.assert_array_equal(x, data["test_batch.bin"][0])
    np.testing.assert_array_equal(y, data["test_batch.bin"][1])
    assert info.class_names[0] == "airplane"
    from keras_cnnpractice.data import load_mnist5k
    _, (x_test, y_test) = load_mnist5k()
    pack_dataset("mnist5k", tmp_path / "m", split="test")
    x, y = arrays(packed(tmp_path / "m"))
    np.testing.assert_array_equal(x, x_test)
    np.testing.assert_array_equal(y, y_test)
    # The default split is "train", whether named or not.
    pack_dataset(f"cifar10:{tmp_path}", tmp_path / "c10-train")
    assert pack_dataset(f"cifar10:{tmp_path}", tmp_path / "c10-train",
                        split="train")[1]


@pytest.mark.parametrize("kwargs, match", [
    ({"format": "zip"}, "format='zip'"),
    ({"shard_mb": 0}, "shard_mb=0"),
    ({"size": -3}, "size=-3"),
    ({"split": "test"}, "A folder source has no splits"),
    ({"source": "imagenet:/x"}, "Unknown source 'imagenet:/x'"),
])
def test_bad_arguments(folder, tmp_path, kwargs, match):
    kwargs = {"source": folder[0], **kwargs}
    with pytest.raises(ValueError, match=match):
        pack_dataset(out_dir=tmp_path / "pack", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_folder_that_is_not_a_pack(folder, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no pack index"):
        pack_dataset(folder[0], tmp_path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_packed_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="No index.json"):
        packed(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format_version": 1}))
    with pytest.raises(ValueError, match="not a valid pack index"):
        packed(tmp_path)
    with pytest.raises(ValueError, match="verify='sometimes'"):
        packed(tmp_path, verify="sometimes")


def _pack_cli(*args):
    return run_python(["-m", "keras_cnnpractice.cli.pack", *args],
                      check=False, timeout=300)


def _one_error_line(result):
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines()
              if ln.startswith("kcp-pack:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_cli_packs_then_does_nothing(folder, tmp_path):
    out = tmp_path / "pack"
    result = _pack_cli(str(folder[0]), str(out), "--shard_mb=0.004",
                       "--workers=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("packed 14 images of 16x16x3 (2 "
                                    "classes) into 3 raw shard(s)")
    assert "skipped 2 unusable file(s)" in result.stdout
    # The CLI's shards are the library's: pack again in-process, compare.
    pack_dataset(folder[0], tmp_path / "lib", shard_mb=0.004)
    assert shard_bytes(out) == shard_bytes(tmp_path / "lib")
    assert pack_dataset(folder[0], out, shard_mb=0.004)[1]  # same arguments


@pytest.mark.parametrize("args, expected", [
    (["--format=zip"], "kcp-pack: error: flag --format=zip: value should be one "
                       "of <raw|tfrecord>"),
    (["/nonexistent/folder", "out"], "kcp-pack: error: An image folder must be"),
])
def test_cli_errors_are_one_line_exit_2(args, expected, tmp_path):
    args = [a if a != "out" else str(tmp_path / "out") for a in args]
    line = _one_error_line(_pack_cli(*args))
    assert line.startswith(expected), line
    assert not (tmp_path / "out").exists()
