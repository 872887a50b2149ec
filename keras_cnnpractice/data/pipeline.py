"""`tf.data` input pipelines: shard, cache, shuffle, batch, augment in
parallel, prefetch.

`build_pipeline` turns a source of `(uint8 image, label)` examples (the
`Examples` that `image_folder`, `packed` or `cifar10_binary` give, a
`tf.data.Dataset`, or numpy arrays) into batches of `(float32 images,
int32 labels)` for `model.fit`, in this order:

    source -> [shard per worker] -> [cache] -> [shuffle] -> batch
           -> parallel map: cast to float32 (+ augmentation) -> prefetch
           -> [prefetch_to_device]

Decoding is the source's business (its own parallel map), and so is
shuffling at the file or shard level (`packed(shuffle=True)`); the
pipeline shuffles examples through a buffer. The cache stores the decoded,
un-augmented examples, so every epoch still gets fresh augmentation.

A raw pack (`packed(...)` of a pack written with `--format raw`) skips the
first four stages: its `Examples.read_batches` reads whole batches, each a
slice of a new permutation of the pack every epoch (`packed_batches`),
which on a 2-core CPU is several times faster than batching its examples
one by one. The pipeline does that unless a `cache` is asked for (the pack
is already raw pixels on disk) or the strategy has several workers and no
`input_context` (the record stream is then auto-sharded by file).

What is not the source, the batch size, the augmentation or the seed is a
`PipelineOptions`.
"""

import hashlib
import os

import numpy as np
import tensorflow as tf
from absl import logging

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.data.examples import Examples
from keras_cnnpractice.data.options import PipelineOptions
from keras_cnnpractice.data.packs.batches import SPLIT_RECORDS
from keras_cnnpractice.layers._augment import FusedImageAugmentation
# Default shuffle buffer of a dataset source: as many examples as fit here.
SHUFFLE_BUFFER_BYTES = 128 << 20
# Examples in the default shuffle buffer when their size is not static.
SHUFFLE_BUFFER_UNKNOWN = 1024
# Dataset ops that `tf.data`'s FILE auto-shard rewrite can split by file.
READER_OPS = ("FixedLengthRecordDataset", "FixedLengthRecordDatasetV2",
              "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset",
              "TextLineDatasetV2")
_POLICY = {"file": "FILE", "data": "DATA", "off": "OFF"}


def reads_files(dataset):
    """Whether `dataset` reads files through a reader dataset
    (`FixedLengthRecordDataset`, `TFRecordDataset`, `TextLineDataset`),
    anywhere in its graph or the functions of its transformations: the
    sources `tf.data`'s FILE auto-sharding can split by file.

    An image folder (file names sliced from a tensor, read by
    `tf.io.read_file` inside a map) is not one: TensorFlow cannot shard it
    by file and reports "Found an unshardable source dataset".
    """
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())  # noqa: SLF001
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    return any(op in READER_OPS for op in ops)


def _num_files(source):
    """Files a source reads, when it says (`Examples` do)."""
    return len(source.files) if isinstance(source, Examples) and \
        source.files else None


def strategy_workers(strategy=None):
    """Worker processes of `strategy` (default: the `tf.distribute`
    strategy in scope): its cluster's `worker` tasks, 1 without any."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    try:
        spec = resolver.cluster_spec() if resolver is not None else None
        return max(1, spec.num_tasks("worker")) if spec and spec.jobs and \
            "worker" in spec.jobs else 1
    except (AttributeError, ValueError):
        return 1


def choose_shard_policy(source, num_workers=None):
    """The auto-shard policy for `source` under `tf.distribute`: `"file"`
    for a dataset that reads files with a reader dataset (packs, TFRecords,
    CIFAR's binary files) and has at least one file per worker when its
    file count is known (`Examples.files`); `"data"` for everything else
    (numpy arrays, image folders, generated data, packs with fewer shards
    than workers).

    Under FILE sharding each worker reads only its own files; under DATA
    every worker reads (and decodes) everything and keeps every n-th
    example, which is correct but costs each worker the whole read.
    """
    dataset = source.dataset if isinstance(source, Examples) else source
    if not isinstance(dataset, tf.data.Dataset) or not reads_files(dataset):
        return "data"
    workers = strategy_workers() if num_workers is None else num_workers
    files = _num_files(source)
    if files is not None and files < workers:
        logging.info("%d file(s) for %d workers: sharding by example (DATA) "
                     "instead of by file", files, workers)
        return "data"
    return "file"


def _as_dataset(source):
    if isinstance(source, Examples):
        return source.dataset, None
    if isinstance(source, tf.data.Dataset):
        return source, None
    try:
        images, labels = source
    except (TypeError, ValueError):
        raise ValueError("source must be Examples, a tf.data.Dataset of "
                         "(image, label) or a pair of arrays (images, "
                         "labels). Received: "
                         f"source of type {type(source).__name__}") from None
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length. Received: "
                         f"{len(images)} images and {len(labels)} labels")
    return tf.data.Dataset.from_tensor_slices((images, labels)), \
        (images, labels)


def _default_shuffle_buffer(ds, arrays):
    if arrays is not None:
        return len(arrays[0])
    image_spec = tf.nest.flatten(ds.element_spec)[0]
    if image_spec.shape.is_fully_defined():
        element = max(1, image_spec.shape.num_elements()
                      * image_spec.dtype.size)
        buffer = max(1, SHUFFLE_BUFFER_BYTES // element)
    else:
        buffer = SHUFFLE_BUFFER_UNKNOWN
    count = int(ds.cardinality())
    return min(buffer, count) if count > 0 else buffer


def _cache_file(folder, ds, arrays):
    """A cache file name in `folder` that depends on the source, so a disk
    cache made from other data is never read back."""
    digest = hashlib.sha256()
    if arrays is not None:
        for array in arrays:
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).data)
    else:
        digest.update(ds._as_serialized_graph().numpy())  # noqa: SLF001
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"cache-{digest.hexdigest()[:16]}")


def _gpu_device(device):
    """`device` when it names a GPU this process can use, else None."""
    spec = tf.DeviceSpec.from_string(device)
    if (spec.device_type or "").upper() != "GPU":
        return None
    gpus = tf.config.list_logical_devices("GPU")
    index = spec.device_index or 0
    return device if index < len(gpus) else None


def _batch_reader(source, options):
    """The source's reader of whole batches (a raw pack's
    `read_batches`), when the pipeline can use it: no cache, and either
    one worker or an `input_context` to shard by."""
    if not isinstance(source, Examples) or source.read_batches is None \
            or options.cache is not None:
        return None
    workers = options.num_workers or strategy_workers()
    if options.input_context is None and workers > 1:
        return None  # FILE auto-sharding of the record stream instead
    return source.read_batches


def _read_batches(reader, batch_size, training, seed, options):
    """Batches read whole by a raw pack's `read_batches`, each epoch a new
    permutation of the pack when training (for tf.data service's dynamic
    sharding, drawn from chunks of `SPLIT_RECORDS` records, one split
    each); `(dataset, shard policy)`."""
    shards, index, context = 1, 0, options.input_context
    if context is not None:
        shards, index = context.num_input_pipelines, context.input_pipeline_id
        batch_size = context.get_per_replica_batch_size(batch_size)
    shuffle = training and options.shuffle_buffer != 0
    service = options.data_service
    split = (SPLIT_RECORDS if service is not None
             and service.sharding == "dynamic" and shards == 1 else None)
    return reader(batch_size, shuffle=shuffle, seed=seed,
                  drop_remainder=options.drop_remainder, num_shards=shards,
                  shard_index=index, split_records=split), "off"


def _batch_examples(source, batch_size, training, seed, options):
    """Batches of a source of examples: shard, cache, shuffle, batch;
    `(dataset, shard policy)`."""
    ds, arrays = _as_dataset(source)
    context, cache = options.input_context, options.cache
    if context is not None:
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        batch_size = context.get_per_replica_batch_size(batch_size)
        policy = "off"
    else:
        policy = options.shard_policy or choose_shard_policy(
            source, options.num_workers)
    if cache == "memory":
        ds = ds.cache()
    elif cache is not None:
        ds = ds.cache(_cache_file(os.fspath(cache), ds, arrays))
    if training:
        buffer = options.shuffle_buffer
        if buffer is None:
            buffer = _default_shuffle_buffer(ds, arrays)
        if buffer > 1:
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=options.drop_remainder), policy


def build_pipeline(source, batch_size, augment=None, training=True,
                   seed=None, options=None):
    """Builds batches of `(float32 images, int32 labels)` from a source.

    Args:
        source: `Examples` (from `image_folder`, `packed`,
            `cifar10_binary`, ...), a `tf.data.Dataset` of `(image, label)`
            examples (uint8 images, one example per element), or a pair of
            arrays `(images, labels)`.
        batch_size: examples per batch (the global batch under a
            `tf.distribute` strategy; per input pipeline with an
            `options.input_context`).
        augment: a Keras layer (or a callable taking `training=`) applied
            as `augment(images, training=True)` to float32 image batches
            (uint8 ones as they are, for this package's fused augmentation
            layers, which cast in their one pass) when `training` and
            `options.augment_in` is `"data"`.
        training: shuffle, and augment, when True; evaluation pipelines keep
            the source's order.
        seed: seed of the example shuffle.
        options: `PipelineOptions` (default: `PipelineOptions()`).

    Returns:
        A `tf.data.Dataset`. Its `options().experimental_distribute
        .auto_shard_policy` is the shard policy set.

    Raises:
        ValueError: a bad argument.
    """
    options = PipelineOptions() if options is None else options
    if not isinstance(options, PipelineOptions):
        raise ValueError(f"options must be a PipelineOptions. Received: "
                         f"options={options!r}")
    check_int("batch_size", batch_size, 1)
    if options.deterministic and training and seed is None:
        raise ValueError("deterministic=True needs a seed for the shuffle "
                         "(and seeded augmentation layers). Received: "
                         "seed=None")
    reader = _batch_reader(source, options)
    if reader is not None:
        ds, policy = _read_batches(reader, batch_size, training, seed,
                                   options)
    else:
        ds, policy = _batch_examples(source, batch_size, training, seed,
                                     options)
    in_map = augment if training and options.augment_in == "data" else None
    ds = ds.map(_to_batch(in_map, options.image_dtype),
                **_map_order(options.deterministic, in_map, training))
    if options.data_service is not None:
        policy = "off"  # the service shards
    tf_options = tf.data.Options()
    tf_options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, _POLICY[policy])
    if options.deterministic is not None:
        tf_options.deterministic = bool(options.deterministic)
    ds = ds.with_options(tf_options)
    if options.data_service is not None:
        ds = options.data_service.distribute(ds).with_options(tf_options)
    return _prefetch(ds, options.prefetch_to_device)


def _to_batch(in_map, image_dtype):
    """The map from a batch of examples to the model's batch: augment (in
    float32, or uint8 for the fused layers, which cast in their one
    resample), cast the images to `image_dtype`, the labels to int32."""
    reads_uint8 = isinstance(in_map, FusedImageAugmentation)

    def to_batch(x, y):
        if in_map is not None:
            if not (reads_uint8 and x.dtype == tf.uint8):
                x = tf.cast(x, tf.float32)
            x = in_map(x, training=True)
        if image_dtype is not None:
            x = tf.cast(x, image_dtype)
        return x, tf.cast(y, tf.int32)

    return to_batch


def _map_order(deterministic, in_map, training):
    """`Dataset.map` arguments: one call at a time when deterministic with
    augmentation (seeded draws in order), else parallel, ordered unless
    allowed otherwise."""
    if deterministic and in_map is not None:
        return {}
    ordered = True if deterministic else (
        False if deterministic is False else not training)
    return {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": ordered}


def _prefetch(ds, prefetch_to_device):
    device = _gpu_device(prefetch_to_device) if prefetch_to_device else None
    if prefetch_to_device and device is None:
        logging.info("prefetch_to_device=%r is not a GPU here: a plain "
                     "prefetch is used", prefetch_to_device)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    if device is not None:
        ds = ds.apply(tf.data.experimental.prefetch_to_device(device))
    return ds


def make_dataset(images, labels, batch_size, training, augment=None,
                 seed=None):
    """Builds a batched `tf.data.Dataset` of `(float32 images, labels)`
    from arrays: `build_pipeline((images, labels), ...)`.

    Training datasets are reshuffled every epoch (a buffer of the whole
    array). Augmentation runs on whole batches in a parallel map, and the
    next batches are prefetched while the model computes on the current
    one.

    Args:
        images: uint8 or float array, NHWC.
        labels: integer labels.
        batch_size: global batch size.
        training: shuffle and augment when True.
        augment: callable applied to float32 image batches when training.
        seed: shuffle seed.
    """
    return build_pipeline((images, labels), batch_size, augment=augment,
                          training=training, seed=seed)
