"""build_pipeline: the source's elements, determinism, caches, placement of
augmentation, and the options it sets for tf.distribute."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.data.experimental.ops.distribute import \
    _AutoShardDataset

from keras_cnnpractice.data import PipelineOptions
from keras_cnnpractice.data import augmentation_policy
from keras_cnnpractice.data import build_pipeline
from keras_cnnpractice.data import image_folder
from keras_cnnpractice.data import pack_dataset
from keras_cnnpractice.data import packed
from keras_cnnpractice.data import synthetic
from keras_cnnpractice.data.pipeline import choose_shard_policy
from tests.data import image_files as files

Policy = tf.data.experimental.AutoShardPolicy


@pytest.fixture(scope="module")
def arrays():
    images, labels = synthetic(30, (8, 8, 3), num_classes=3, seed=4)
    images[:, 0, 0, 0] = np.arange(30)  # tag each example
    return images, labels


@pytest.fixture(scope="module")
def pack(tmp_path_factory, arrays):
    """A folder of the 30 images as PNGs, and its pack in 3 shards."""
    root = tmp_path_factory.mktemp("pipe")
    images, labels = arrays
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / "folder" / f"c{label}").mkdir(parents=True, exist_ok=True)
        (root / "folder" / f"c{label}" / f"{i:02d}.png").write_bytes(
            files.png(image))
    pack_dataset(root / "folder", root / "pack",
                 shard_mb=10 * (4 + 8 * 8 * 3) / (1 << 20))
    return root


def collect(ds, epochs=1):
    out = []
    for _ in range(epochs):
        batches = list(ds.as_numpy_iterator())
        out.append((np.concatenate([x for x, _ in batches]),
                    np.concatenate([y for _, y in batches])))
    return out


def test_evaluation_gives_the_source_elements_in_order(arrays, pack):
    images, labels = arrays
    for source in [arrays, tf.data.Dataset.from_tensor_slices(arrays)]:
        ds = build_pipeline(source, 7, training=False)
        assert ds.element_spec[0].dtype == tf.float32
        assert ds.element_spec[1].dtype == tf.int32
        [(x, y)] = collect(ds)
        np.testing.assert_array_equal(x, images.astype(np.float32))
        np.testing.assert_array_equal(y, labels)
    source = packed(pack / "pack")
    [(x, y)] = collect(build_pipeline(source, 7, training=False))
    [(sx, sy)] = collect(source.dataset.batch(100))
    np.testing.assert_array_equal(x, sx.astype(np.float32))
    np.testing.assert_array_equal(y, sy)


def test_training_reshuffles_and_keeps_every_pair(arrays):
    images, labels = arrays
    ds = build_pipeline(tf.data.Dataset.from_tensor_slices(arrays), 8,
                        seed=1)
    first, second = collect(ds, epochs=2)
    for x, y in (first, second):
        tags = x[:, 0, 0, 0].astype(int)
        assert sorted(tags) == list(range(30))
        np.testing.assert_array_equal(y, labels[tags])
        np.testing.assert_array_equal(x, images[tags].astype(np.float32))
    assert not np.array_equal(first[1], second[1]) or not np.array_equal(
        first[0], second[0])


def test_deterministic_mode_repeats_shuffle_and_augmentation(arrays):
    def run():
        augment = augmentation_policy("natural", seed=5,
                                      input_shape=(8, 8, 3))
        ds = build_pipeline(tf.data.Dataset.from_tensor_slices(arrays), 8,
                            augment=augment, seed=3,
                            options=PipelineOptions(deterministic=True))
        assert ds.options().deterministic is True
        return collect(ds, epochs=2)

    one, two = run(), run()
    for (x1, y1), (x2, y2) in zip(one, two):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(one[0][0], one[1][0])  # epochs differ
    with pytest.raises(ValueError, match="deterministic=True needs a seed"):
        build_pipeline(arrays, 8, options=PipelineOptions(deterministic=True))


def test_caches_give_the_same_pipeline(arrays, pack, tmp_path):
    source = packed(pack / "pack")
    plain = collect(build_pipeline(
        source, 8, seed=2, options=PipelineOptions(deterministic=True)),
        epochs=2)
    for cache in ["memory", tmp_path / "cache"]:
        got = collect(build_pipeline(source, 8, seed=2, options=PipelineOptions(
            deterministic=True, cache=cache)), epochs=2)
        for (x, y), (ex, ey) in zip(got, plain):
            np.testing.assert_array_equal(x, ex)
            np.testing.assert_array_equal(y, ey)
    written = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert written and all(n.startswith("cache-") for n in written)
    # Another source never reads this cache back: it gets its own file.
    collect(build_pipeline(arrays, 8, training=False,
                           options=PipelineOptions(cache=tmp_path / "cache")))
    names = {n.split(".")[0] for n in
             (p.name for p in (tmp_path / "cache").iterdir())}
    assert len(names) == 2


def test_augmentation_in_the_model_is_not_applied(arrays):
    augment = augmentation_policy("digits", seed=1)
    ds = build_pipeline(arrays, 30, augment=augment, options=PipelineOptions(
        augment_in="model", shuffle_buffer=0))
    [(x, _)] = collect(ds)
    np.testing.assert_array_equal(x, arrays[0].astype(np.float32))
    in_data = build_pipeline(arrays, 30, augment=augment,
                             options=PipelineOptions(shuffle_buffer=0))
    assert not np.allclose(collect(in_data)[0][0], x)
    kept = build_pipeline(arrays, 30, augment=augment, options=PipelineOptions(
        augment_in="model", image_dtype=None))
    assert kept.element_spec[0].dtype == tf.uint8
    assert build_pipeline(arrays, 30, augment=augment, options=PipelineOptions(
        image_dtype=None)).element_spec[0].dtype == tf.float32


def test_prefetch_to_device_without_gpu_is_a_plain_prefetch(arrays):
    for device in ["/cpu:0", "/gpu:0"]:
        ds = build_pipeline(arrays, 7, training=False, options=PipelineOptions(
            prefetch_to_device=device))
        [(x, _)] = collect(ds)
        if not tf.config.list_logical_devices("GPU"):
            np.testing.assert_array_equal(x, arrays[0].astype(np.float32))


def test_shard_policy_files_for_readers_data_for_memory(arrays, pack):
    def policy(ds):
        return ds.options().experimental_distribute.auto_shard_policy

    source = packed(pack / "pack")
    assert len(source.info.shards) == 3
    # One worker reads a raw pack in whole batches: nothing to shard.
    assert policy(build_pipeline(source, 4)) == Policy.OFF
    three = PipelineOptions(num_workers=3)
    assert policy(build_pipeline(source, 4, options=three)) == Policy.FILE
    assert policy(build_pipeline(arrays, 4)) == Policy.DATA
    folder = image_folder(pack / "folder")
    assert policy(build_pipeline(folder, 4)) == Policy.DATA
    assert choose_shard_policy(source, num_workers=4) == "data"
    assert policy(build_pipeline(source, 4, options=PipelineOptions(
        shard_policy="off"))) == Policy.OFF
    # What tf.distribute does with it: each of 3 workers reads one shard.
    ds = build_pipeline(source, 4, training=False, options=three)
    seen = []
    for worker in range(3):
        part = collect(_AutoShardDataset(ds, 3, worker))[0][1]
        assert len(part) == 10
        seen.append(part)
    [(_, every)] = collect(source.dataset.batch(30))
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)),
                                  np.sort(every))


def test_input_context_shards_and_splits_the_batch(arrays):
    context = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    ds = build_pipeline(arrays, 8, training=False,
                        options=PipelineOptions(input_context=context))
    assert ds.options().experimental_distribute.auto_shard_policy == \
        Policy.OFF
    [(x, _)] = collect(ds)
    assert ds.element_spec[0].shape[0] is None
    assert next(iter(ds))[0].shape[0] == 4
    np.testing.assert_array_equal(x[:, 0, 0, 0], np.arange(1, 30, 2))


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"augment_in": "gpu"}, "augment_in must be one of data, model"),
    ({"cache": ""}, "cache must be None, 'memory' or a folder"),
    ({"shard_policy": "auto"}, "shard_policy must be None"),
    ({"shuffle_buffer": -1}, "shuffle_buffer must be a non-negative integer"),
    ({"num_workers": 0}, "num_workers must be a positive integer"),
])
def test_bad_arguments(arrays, kwargs, message):
    kwargs = dict(kwargs)
    batch_size = kwargs.pop("batch_size", 4)
    with pytest.raises(ValueError, match=message):
        build_pipeline(arrays, batch_size, options=PipelineOptions(**kwargs))
    with pytest.raises(ValueError, match="source must be"):
        build_pipeline(42, 4)
    with pytest.raises(ValueError, match="options must be a PipelineOptions"):
        build_pipeline(arrays, 4, options={"cache": "memory"})
