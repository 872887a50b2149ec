"""The compiled batch reader of raw packs, against the pack's stream of
examples (`packed()`, read by `tf.data.FixedLengthRecordDataset`)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import load_op_library
from keras_cnnpractice.custom_ops import read_packed_records
from keras_cnnpractice.data import pack_dataset
from keras_cnnpractice.data import packed
from keras_cnnpractice.data import synthetic
from tests.data import image_files as files

SHAPE = (7, 4, 3)


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    """25 images packed raw in shards of 6 records (the last one short)."""
    root = tmp_path_factory.mktemp("records")
    images, labels = synthetic(25, SHAPE, num_classes=5, seed=2)
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / "src" / f"c{label}").mkdir(parents=True, exist_ok=True)
        (root / "src" / f"c{label}" / f"{i:02d}.png").write_bytes(
            files.png(image))
    record = 4 + np.prod(SHAPE)
    info, _ = pack_dataset(root / "src", root / "pack",
                           shard_mb=6 * record / (1 << 20))
    assert [s["count"] for s in info.shards] == [6, 6, 6, 6, 1]
    stream = list(packed(root / "pack").dataset.as_numpy_iterator())
    return info, np.stack([x for x, _ in stream]), np.array(
        [y for _, y in stream])


def test_any_record_numbers_in_any_order(pack):
    info, images, labels = pack
    index = np.array([24, 0, 5, 6, 13, 13, 23, 7, 1, 18], np.int64)
    x, y = read_packed_records(index, info)
    assert x.dtype == tf.uint8 and y.dtype == tf.int32
    np.testing.assert_array_equal(x, images[index])
    np.testing.assert_array_equal(y, labels[index])
    every = np.random.default_rng(0).permutation(25)
    x, y = tf.function(lambda i: read_packed_records(i, info))(every)
    np.testing.assert_array_equal(x, images[every])
    np.testing.assert_array_equal(y, labels[every])
    x, y = read_packed_records(np.zeros(0, np.int64), info)
    assert x.shape == (0, *SHAPE) and y.shape == (0,)


@pytest.mark.parametrize("bad", [-1, 25, 1 << 40])
def test_record_number_out_of_range(pack, bad):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"Record numbers must be in \[0, 25\). "
                             rf"Received: {bad}"):
        read_packed_records([3, bad], pack[0])


def test_bad_attributes_and_shapes_are_invalid_arguments(pack):
    info = pack[0]
    lib = load_op_library()
    paths = info.shard_paths()
    cases = [
        ({"counts": [6, 6], "shape": list(SHAPE)}, "one count per path"),
        ({"counts": [6] * 5, "shape": [7, 4, 3, 1]}, "shape must be"),
        ({"counts": [6] * 5, "shape": [7, 4]}, "'shape' of 2 must be at "
                                                "least minimum 3"),
        ({"counts": [6] * 5, "shape": [7, 0, 3]}, "must be positive"),
        ({"counts": [6, 6, 6, -6, 1], "shape": list(SHAPE)},
         "counts must be >= 0"),
    ]
    for attrs, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            lib.keras_cnn_practice_read_packed_records([0], paths=paths,
                                                       **attrs)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError),
                       match="must be rank 1|must be a vector"):
        lib.keras_cnn_practice_read_packed_records(
            [[0]], paths=paths, counts=[6] * 5, shape=list(SHAPE))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"missing\.raw cannot be read"):
        lib.keras_cnn_practice_read_packed_records(
            [0], paths=[paths[0] + ".missing.raw"], counts=[6],
            shape=list(SHAPE))


def test_truncated_shard_fails_naming_it(pack, tmp_path):
    info = pack[0]
    shard = tmp_path / "short.raw"
    shard.write_bytes(open(info.shard_paths()[0], "rb").read()[:-10])
    lib = load_op_library()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"short\.raw is truncated: a read at byte 440 "
                             r"got 78 of 88 bytes"):
        lib.keras_cnn_practice_read_packed_records(
            [0, 5], paths=[str(shard)], counts=[6], shape=list(SHAPE))
