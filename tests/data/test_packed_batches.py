"""Reading a raw pack a batch at a time (`packed_batches`, and
`build_pipeline` on a raw `packed()` source)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.data import PipelineOptions
from keras_cnnpractice.data import build_pipeline
from keras_cnnpractice.data import pack_dataset
from keras_cnnpractice.data import packed
from keras_cnnpractice.data import synthetic
from keras_cnnpractice.data.packs import packed_batches
from tests.data import image_files as files

SHAPE = (6, 5, 3)
RECORD = 4 + 6 * 5 * 3
COUNT = 40
UINT8 = PipelineOptions(image_dtype=None)
Policy = tf.data.experimental.AutoShardPolicy


@pytest.fixture(scope="module")
def source():
    """40 images in class order (as a folder per class packs them), each
    tagged with its number in its first pixel."""
    images, labels = synthetic(COUNT, SHAPE, num_classes=4, seed=9)
    order = np.argsort(labels, kind="stable")
    images, labels = images[order], labels[order]
    images[:, 0, 0, 0] = np.arange(COUNT)
    return images, labels


@pytest.fixture(scope="module")
def folder(source, tmp_path_factory):
    """The 40 images as PNGs in a folder per class."""
    root = tmp_path_factory.mktemp("batches") / "folder"
    for i, (image, label) in enumerate(zip(*source)):
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        (root / f"c{label}" / f"{i:02d}.png").write_bytes(files.png(image))
    return root


@pytest.fixture
def pack(folder, tmp_path):
    """The 40 images packed raw in 4 shards of 10 records."""
    out = tmp_path / "pack"
    pack_dataset(folder, out, shard_mb=10 * RECORD / (1 << 20))
    return out


def policy(ds):
    return ds.options().experimental_distribute.auto_shard_policy


def collect(ds):
    batches = list(ds.as_numpy_iterator())
    return (np.concatenate([x for x, _ in batches]),
            np.concatenate([y for _, y in batches]), len(batches))


def test_in_order_batches_are_the_source(source, pack):
    images, labels = source
    x, y, n = collect(packed_batches(pack, 16))
    assert n == 3
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    ds = build_pipeline(packed(pack), 16, training=False, options=UINT8)
    x, y, _ = collect(ds)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    x, _, n = collect(packed_batches(pack, 16, drop_remainder=True))
    assert n == 2 and len(x) == 32


def test_each_epoch_is_a_new_uniform_permutation(source, pack):
    images, labels = source
    ds = build_pipeline(packed(pack), 8, seed=3, options=UINT8)
    assert policy(ds) == Policy.OFF
    epochs = [collect(ds) for _ in range(3)]
    for x, y, n in epochs:
        assert n == 5
        tags = x[:, 0, 0, 0]
        np.testing.assert_array_equal(np.sort(tags), np.arange(COUNT))
        np.testing.assert_array_equal(x, images[tags])  # pairs intact
        np.testing.assert_array_equal(y, labels[tags])
    orders = [tuple(x[:, 0, 0, 0]) for x, _, _ in epochs]
    assert len(set(orders)) == 3
    # Not a window over the class-ordered pack: the first two batches
    # already mix records from across the whole pack (16 random records
    # of 40 fall in at most two of the four shards with probability 5e-7;
    # 8 would, 1 time in 100, whichever global seed other tests set).
    first = np.array(orders[0][:16])
    assert len(np.unique(first // 10)) >= 3
    again = build_pipeline(packed(pack), 8, seed=3, options=UINT8)
    assert tuple(collect(again)[0][:, 0, 0, 0]) == orders[0]


@pytest.mark.parametrize("split", [1, 4, 64])
def test_chunked_splits_read_every_record_once_per_epoch(source, pack,
                                                          split):
    images, labels = source
    read = packed(pack).read_batches
    x, y, _ = collect(read(16, split_records=split))  # unshuffled: in order
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    ds = read(8, shuffle=True, seed=3, split_records=split)
    orders = []
    for _ in range(3):
        x, y, n = collect(ds)
        tags = x[:, 0, 0, 0]
        assert n == 5
        np.testing.assert_array_equal(np.sort(tags), np.arange(COUNT))
        np.testing.assert_array_equal(x, images[tags])
        np.testing.assert_array_equal(y, labels[tags])
        orders.append(tuple(tags))
    assert len(set(orders)) == 3
    # Chunks of random records: the first two batches mix the
    # class-ordered pack's shards (16 random records of 40 fall in at most
    # two of the four shards with probability 5e-7).
    assert len(np.unique(np.array(orders[0][:16]) // 10)) >= 3
    again = read(8, shuffle=True, seed=3, split_records=split)
    assert tuple(collect(again)[0][:, 0, 0, 0]) == orders[0]


def test_input_pipelines_read_disjoint_records(pack):
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline,
            num_replicas_in_sync=2)
        ds = build_pipeline(packed(pack), 8, seed=0, options=PipelineOptions(
            input_context=context, image_dtype=None))
        assert next(iter(ds))[0].shape[0] == 4  # its share of the batch
        seen.append(collect(ds)[0][:, 0, 0, 0])
    assert len(seen[0]) == len(seen[1]) == COUNT // 2
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)),
                                  np.arange(COUNT))


def test_cache_and_several_workers_batch_examples_instead(pack):
    source = packed(pack)
    cached = build_pipeline(source, 8, seed=0,
                            options=PipelineOptions(cache="memory"))
    assert policy(cached) == Policy.FILE
    assert policy(build_pipeline(source, 8, options=PipelineOptions(
        num_workers=2))) == Policy.FILE
    x, _, _ = collect(cached)
    np.testing.assert_array_equal(np.sort(x[:, 0, 0, 0]),
                                  np.arange(COUNT))


def test_a_shard_truncated_after_opening_is_named(pack):
    ds = packed_batches(pack, 8)
    shard = pack / "shard-00002.raw"
    shard.write_bytes(shard.read_bytes()[:-RECORD // 2])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"shard-00002\.raw is truncated"):
        collect(ds)
    with pytest.raises(ValueError, match=r"shard-00002\.raw has"):
        packed_batches(pack, 8)


def test_background_verification_refuses_a_corrupt_shard(pack):
    shard = pack / "shard-00003.raw"
    data = bytearray(shard.read_bytes())
    data[RECORD + 7] ^= 0x01
    shard.write_bytes(bytes(data))
    ds = build_pipeline(packed(pack, verify="background"), 8,
                        training=False)
    seen = []
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"shard-00003\.raw is corrupt"):
        for x, _ in ds:
            seen.append(x)
    assert sum(len(x) for x in seen) <= 30  # nothing from shard 3


def test_tfrecord_packs_are_read_by_example(source, folder, tmp_path):
    out = tmp_path / "tfr"
    pack_dataset(folder, out, format="tfrecord")
    assert packed(out).read_batches is None
    with pytest.raises(ValueError, match="Only raw packs"):
        packed_batches(out, 8)
    x, y, _ = collect(build_pipeline(packed(out), 8, training=False,
                                     options=UINT8))
    np.testing.assert_array_equal(x, source[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"num_shards": 2, "shard_index": 2}, "shard_index must be in"),
    ({"split_records": 0}, "split_records must be a positive integer"),
    ({"split_records": 4, "num_shards": 2}, "does not take num_shards=2"),
])
def test_bad_arguments(pack, kwargs, message):
    with pytest.raises(ValueError, match=message):
        packed(pack).read_batches(**{"batch_size": 4, **kwargs})
