"""`tf.data` input pipelines: shard, cache, shuffle, batch, augment in
parallel, prefetch.

`build_pipeline` turns a source of `(uint8 image, label)` examples (a
`tf.data.Dataset` such as `image_folder`, `packed` or `cifar10_binary`
give, or numpy arrays) into batches of `(float32 images, int32 labels)`
for `model.fit`, in this order:

    source -> [shard per worker] -> [cache] -> [shuffle] -> batch
           -> parallel map: cast to float32 (+ augmentation) -> prefetch
           -> [prefetch_to_device]

Decoding is the source's business (its own parallel map), and so is
shuffling at the file or shard level (`packed(shuffle=True)`); the
pipeline shuffles examples through a buffer. The cache stores the decoded,
un-augmented examples, so every epoch still gets fresh augmentation.

A raw pack (`packed(...)` of a pack written with `--format raw`) skips the
first four stages: its `read_batches` reads whole batches, each a slice of
a new permutation of the pack every epoch (`packed_batches`), which on a
2-core CPU is several times faster than batching its examples one by one.
The pipeline does that unless a `cache` is asked for (the pack is already
raw pixels on disk) or the strategy has several workers and no
`input_context` (the record stream is then auto-sharded by file).
"""

import hashlib
import os

import numpy as np
import tensorflow as tf
from absl import logging

from keras_cnnpractice._validate import check_int
from keras_cnnpractice._validate import is_int
from keras_cnnpractice.data.options import AUGMENT_PLACES
from keras_cnnpractice.layers._augment import FusedImageAugmentation

SHARD_POLICIES = ("file", "data", "off")
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
    """Files a file-based source reads, when it says (a pack does)."""
    info = getattr(source, "info", None)
    shards = getattr(info, "shards", None)
    return len(shards) if shards is not None else None


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
    file count is known; `"data"` for everything else (numpy arrays, image
    folders, generated data, packs with fewer shards than workers).

    Under FILE sharding each worker reads only its own files; under DATA
    every worker reads (and decodes) everything and keeps every n-th
    example, which is correct but costs each worker the whole read.
    """
    if not isinstance(source, tf.data.Dataset) or not reads_files(source):
        return "data"
    workers = strategy_workers() if num_workers is None else num_workers
    files = _num_files(source)
    if files is not None and files < workers:
        logging.info("%d file(s) for %d workers: sharding by example (DATA) "
                     "instead of by file", files, workers)
        return "data"
    return "file"


def _as_dataset(source):
    if isinstance(source, tf.data.Dataset):
        return source, None
    try:
        images, labels = source
    except (TypeError, ValueError):
        raise ValueError("source must be a tf.data.Dataset of (image, label) "
                         "or a pair of arrays (images, labels). Received: "
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


def _check(batch_size, augment_in, cache, shard_policy, deterministic, seed,
           training, shuffle_buffer):
    check_int("batch_size", batch_size, 1)
    if augment_in not in AUGMENT_PLACES:
        raise ValueError(f"augment_in must be one of "
                         f"{', '.join(AUGMENT_PLACES)}. Received: "
                         f"augment_in={augment_in!r}")
    if cache is not None and not (cache == "memory" or isinstance(
            cache, (str, os.PathLike)) and os.fspath(cache)):
        raise ValueError(f"cache must be None, 'memory' or a folder path. "
                         f"Received: cache={cache!r}")
    if shard_policy is not None and shard_policy not in SHARD_POLICIES:
        raise ValueError(f"shard_policy must be None (choose) or one of "
                         f"{', '.join(SHARD_POLICIES)}. Received: "
                         f"shard_policy={shard_policy!r}")
    if shuffle_buffer is not None and not (is_int(shuffle_buffer)
                                           and shuffle_buffer >= 0):
        raise ValueError(f"shuffle_buffer must be None or an integer >= 0. "
                         f"Received: shuffle_buffer={shuffle_buffer!r}")
    if deterministic and training and seed is None:
        raise ValueError("deterministic=True needs a seed for the shuffle "
                         "(and seeded augmentation layers). Received: "
                         "seed=None")


def _gpu_device(device):
    """`device` when it names a GPU this process can use, else None."""
    spec = tf.DeviceSpec.from_string(device)
    if (spec.device_type or "").upper() != "GPU":
        return None
    gpus = tf.config.list_logical_devices("GPU")
    index = spec.device_index or 0
    return device if index < len(gpus) else None


def _batch_reader(source, cache, input_context, num_workers):
    """The source's reader of whole batches (a raw pack's
    `read_batches`), when the pipeline can use it: no cache, and either
    one worker or an `input_context` to shard by."""
    reader = getattr(source, "read_batches", None)
    if reader is None or cache is not None:
        return None
    if input_context is None and (strategy_workers() if num_workers is None
                                  else num_workers) > 1:
        return None  # FILE auto-sharding of the record stream instead
    return reader


def _read_batches(reader, batch_size, training, seed, shuffle_buffer,
                  drop_remainder, input_context):
    """Batches read whole by a raw pack's `read_batches`, each epoch a new
    permutation of the pack when training; `(dataset, shard policy)`."""
    shards, index = 1, 0
    if input_context is not None:
        shards, index = (input_context.num_input_pipelines,
                         input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    shuffle = training and shuffle_buffer != 0
    return reader(batch_size, shuffle=shuffle, seed=seed,
                  drop_remainder=drop_remainder, num_shards=shards,
                  shard_index=index), "off"


def _batch_examples(source, batch_size, training, cache, seed,
                    shuffle_buffer, drop_remainder, shard_policy,
                    num_workers, input_context):
    """Batches of a source of examples: shard, cache, shuffle, batch;
    `(dataset, shard policy)`."""
    ds, arrays = _as_dataset(source)
    if input_context is not None:
        ds = ds.shard(input_context.num_input_pipelines,
                      input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        policy = "off"
    else:
        policy = shard_policy or choose_shard_policy(source, num_workers)
    if cache == "memory":
        ds = ds.cache()
    elif cache is not None:
        ds = ds.cache(_cache_file(os.fspath(cache), ds, arrays))
    if training:
        buffer = (_default_shuffle_buffer(ds, arrays)
                  if shuffle_buffer is None else shuffle_buffer)
        if buffer > 1:
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder), policy


def build_pipeline(source, batch_size, augment=None, training=True,
                   cache=None, prefetch_to_device=None, deterministic=None,
                   seed=None, augment_in="data", shuffle_buffer=None,
                   drop_remainder=False, shard_policy=None, num_workers=None,
                   input_context=None, image_dtype="float32"):
    """Builds batches of `(float32 images, int32 labels)` from a source.

    Args:
        source: a `tf.data.Dataset` of `(image, label)` examples (uint8
            images, one example per element, e.g. from `image_folder`,
            `packed`, `cifar10_binary`), or a pair of arrays `(images,
            labels)`.
        batch_size: examples per batch (the global batch under a
            `tf.distribute` strategy; per input pipeline, see
            `input_context`).
        augment: a Keras layer (or a callable taking `training=`) applied
            as `augment(images, training=True)` to float32 image batches
            (uint8 ones as they are, for this package's fused augmentation
            layers, which cast in their one pass) when `training`; see
            `augment_in`.
        training: shuffle, and augment, when True; evaluation pipelines keep
            the source's order.
        cache: None; `"memory"` to keep the decoded examples in RAM after
            the first epoch; or a folder, to keep them in a file there named
            after a hash of the source (so other data never reads it back).
            The cache holds un-augmented examples, before the shuffle:
            every epoch is reshuffled and re-augmented. A source that
            shuffles itself (`packed(shuffle=True)`) is frozen in its first
            epoch's order by a cache; the pipeline's own shuffle then does
            the shuffling. TensorFlow writes a disk cache to temporary
            files and renames them once an epoch completes; an epoch cut
            short leaves no cache behind.
        prefetch_to_device: a GPU device name (e.g. `"/gpu:0"`) to copy
            batches to ahead of the step with
            `tf.data.experimental.prefetch_to_device`. It does nothing on a
            CPU (or a name of a GPU this process cannot see): the batches
            are already in host memory, and a plain `prefetch` is used.
            Not for `tf.distribute`: a distributed dataset (what
            `model.fit` makes under a strategy) already copies batches to
            its replicas ahead; use it for single-device runs.
        deterministic: True for tests: a fixed element order everywhere
            (`tf.data.Options.deterministic`), the augmentation map run
            sequentially so seeded layers draw the same numbers in the same
            order, and `seed` required. False lets every map return
            elements as soon as they are ready. None (default): training
            maps may reorder batches, evaluation keeps the order.
        seed: seed of the example shuffle.
        augment_in: `"data"`: augment in the `tf.data` map (on the CPU,
            overlapping the step); `"model"`: the pipeline does not augment
            and the returned dataset's `model_augmentation` is `augment`,
            to put as the first layer of the model (it then runs on the
            accelerator, inside the step, and only while training).
        shuffle_buffer: examples in the shuffle buffer when training (0: no
            shuffle). Default: the whole array for numpy sources; for
            datasets, as many examples as fit in 128 MiB, at most the
            dataset's size. A raw pack read in batches is shuffled
            uniformly (a permutation of the whole pack) unless this is 0.
        drop_remainder: drop a last partial batch.
        shard_policy: the auto-shard policy `tf.distribute` applies per
            worker: `"file"` (each worker reads its own files), `"data"`
            (each worker reads everything and keeps every n-th example),
            `"off"`, or None to choose with `choose_shard_policy` (FILE for
            sources read with reader datasets, DATA otherwise).
        num_workers: workers, for `choose_shard_policy` (default: those of
            the strategy in scope).
        input_context: a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`): the pipeline
            then shards the source itself, per input pipeline, takes its
            share of `batch_size`, and turns auto-sharding off.

        image_dtype: dtype of the images in the batches, `"float32"` by
            default. None keeps the source's dtype (uint8) when nothing
            augments in the map: the model's input layer casts them on its
            device, so the host copies a quarter of the bytes and spends
            no time on the cast (Keras casts a model's inputs to its
            `Input` dtype). Augmentation in the map always gets float32.

    Returns:
        A `tf.data.Dataset`, with attributes `model_augmentation` (the layer
        to put in the model, or None) and `shard_policy` (the policy set).

    Raises:
        ValueError: a bad argument.
    """
    _check(batch_size, augment_in, cache, shard_policy, deterministic, seed,
           training, shuffle_buffer)
    reader = _batch_reader(source, cache, input_context, num_workers)
    if reader is not None:
        ds, policy = _read_batches(reader, batch_size, training, seed,
                                   shuffle_buffer, drop_remainder,
                                   input_context)
    else:
        ds, policy = _batch_examples(source, batch_size, training, cache,
                                     seed, shuffle_buffer, drop_remainder,
                                     shard_policy, num_workers,
                                     input_context)

    in_map = augment if training and augment_in == "data" else None
    # The fused layers read uint8 pixels themselves (the cast is fused into
    # their one resample); other callables get float32.
    reads_uint8 = isinstance(in_map, FusedImageAugmentation)

    def to_float(x, y):
        if in_map is not None:
            if not (reads_uint8 and x.dtype == tf.uint8):
                x = tf.cast(x, tf.float32)
            x = in_map(x, training=True)
        if image_dtype is not None:
            x = tf.cast(x, image_dtype)
        return x, tf.cast(y, tf.int32)

    if deterministic and in_map is not None:
        ds = ds.map(to_float)  # one call at a time: seeded draws in order
    elif deterministic:
        ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
    else:
        ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=(False if deterministic is False
                                   else not training))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, _POLICY[policy])
    if deterministic is not None:
        options.deterministic = bool(deterministic)
    ds = ds.with_options(options)
    device = _gpu_device(prefetch_to_device) if prefetch_to_device else None
    if prefetch_to_device and device is None:
        logging.info("prefetch_to_device=%r is not a GPU here: a plain "
                     "prefetch is used", prefetch_to_device)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    if device is not None:
        ds = ds.apply(tf.data.experimental.prefetch_to_device(device))
    ds.model_augmentation = (augment if training and augment_in == "model"
                             else None)
    ds.shard_policy = policy
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
