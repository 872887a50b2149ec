"""The data layer's named choices and `PipelineOptions`, importable
without TensorFlow (the training flags list the choices)."""

import dataclasses
import os

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.data.service import DataService

# The policies of `augmentation.augmentation_policy(name)`.
AUGMENTATION_POLICIES = ("digits", "natural", "none")
# Where augmentation runs: in the tf.data map, or first in the model.
AUGMENT_PLACES = ("data", "model")
# `tf.distribute`'s auto-shard policies, by the names `build_pipeline` takes.
SHARD_POLICIES = ("file", "data", "off")


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How `build_pipeline` batches, caches, shards and places its data.

    Attributes:
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
        shuffle_buffer: examples in the shuffle buffer when training (0: no
            shuffle). Default: the whole array for numpy sources; for
            datasets, as many examples as fit in 128 MiB, at most the
            dataset's size. A raw pack read in batches is shuffled
            uniformly (a permutation of the whole pack) unless this is 0.
        drop_remainder: drop a last partial batch.
        deterministic: True for tests: a fixed element order everywhere
            (`tf.data.Options.deterministic`), the augmentation map run
            sequentially so seeded layers draw the same numbers in the same
            order, and a `seed` required. False lets every map return
            elements as soon as they are ready. None (default): training
            maps may reorder batches, evaluation keeps the order.
        augment_in: `"data"`: augment in the `tf.data` map (on the CPU,
            overlapping the step); `"model"`: the pipeline does not
            augment: put the augmentation layer first in the model (it then
            runs on the accelerator, inside the step, and only while
            training).
        image_dtype: dtype of the images in the batches, `"float32"` by
            default. None keeps the source's dtype (uint8) when nothing
            augments in the map: the model's input layer casts them on its
            device, so the host copies a quarter of the bytes and spends
            no time on the cast (Keras casts a model's inputs to its
            `Input` dtype). Augmentation in the map always gets float32.
        shard_policy: the auto-shard policy `tf.distribute` applies per
            worker: `"file"` (each worker reads its own files), `"data"`
            (each worker reads everything and keeps every n-th example),
            `"off"`, or None to choose with `choose_shard_policy` (FILE for
            sources read with reader datasets, DATA otherwise). The
            pipeline's `options().experimental_distribute` holds the one
            set.
        num_workers: workers, for `choose_shard_policy` (default: those of
            the strategy in scope).
        input_context: a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`): the pipeline
            then shards the source itself, per input pipeline, takes its
            share of the batch size, and turns auto-sharding off.
        prefetch_to_device: a GPU device name (e.g. `"/gpu:0"`) to copy
            batches to ahead of the step with
            `tf.data.experimental.prefetch_to_device`. It does nothing on a
            CPU (or a name of a GPU this process cannot see): the batches
            are already in host memory, and a plain `prefetch` is used.
            Not for `tf.distribute`: a distributed dataset (what
            `model.fit` makes under a strategy) already copies batches to
            its replicas ahead; use it for single-device runs.
        data_service: a `service.DataService`: the pipeline, up to and
            including augmentation and batching, runs on its workers and
            this process reads the finished batches (auto-sharding is then
            off: the service shards). None (default): in this process.

    Raises:
        ValueError: a bad value, naming it.
    """

    cache: object = None
    shuffle_buffer: object = None
    drop_remainder: bool = False
    deterministic: object = None
    augment_in: str = "data"
    image_dtype: object = "float32"
    shard_policy: object = None
    num_workers: object = None
    input_context: object = None
    prefetch_to_device: object = None
    data_service: object = None

    def __post_init__(self):
        if self.augment_in not in AUGMENT_PLACES:
            raise ValueError(f"augment_in must be one of "
                             f"{', '.join(AUGMENT_PLACES)}. Received: "
                             f"augment_in={self.augment_in!r}")
        cache = self.cache
        if cache is not None and not (cache == "memory" or isinstance(
                cache, (str, os.PathLike)) and os.fspath(cache)):
            raise ValueError(f"cache must be None, 'memory' or a folder "
                             f"path. Received: cache={cache!r}")
        if self.shard_policy is not None and \
                self.shard_policy not in SHARD_POLICIES:
            raise ValueError(f"shard_policy must be None (choose) or one of "
                             f"{', '.join(SHARD_POLICIES)}. Received: "
                             f"shard_policy={self.shard_policy!r}")
        check_int("shuffle_buffer", self.shuffle_buffer, 0, allow_none=True)
        check_int("num_workers", self.num_workers, 1, allow_none=True)
        if self.data_service is not None and not isinstance(
                self.data_service, DataService):
            raise ValueError(f"data_service must be None or a DataService. "
                             f"Received: data_service={self.data_service!r}")
