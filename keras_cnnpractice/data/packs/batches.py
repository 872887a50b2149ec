"""Whole batches straight from a raw pack, one positioned read per record.

`packed()` gives one example per `tf.data` element, the shape every
source has; but an element costs several copies of its pixels (the reader's
buffer, the record string, the decoded tensor, the batch) and a few
`tf.data` calls, which on a 2-core CPU is most of the time a raw pack
takes. `packed_batches` reads a whole batch in one op call instead
(`custom_ops.read_packed_records`): the batch's record numbers come from a
shuffled index (a new permutation of the whole pack every epoch, so the
shuffle is uniform, not a window), and each record is read with one
positioned read into its row of the batch, label and pixels scattered in
one system call: the pixels are copied once, from the page cache (or the
disk) into the batch tensor, on all the CPU's threads.

`build_pipeline` reads raw packs this way (see there for when it does
not); call `packed_batches` directly for a pipeline of your own.

Imports inside functions: TensorFlow and the op library, loaded only when a
batch reader is built, so that importing the pack format (as `kcp-pack` and
`data.sources` do) does not load them.
"""

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.data.packs.format import check_shard_sizes
from keras_cnnpractice.data.packs.format import packed_info


def _check_arguments(batch_size, num_shards, shard_index):
    check_int("batch_size", batch_size, 1)
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards). Received: "
                         f"num_shards={num_shards!r}, "
                         f"shard_index={shard_index!r}")


# Records per split under tf.data service's dynamic sharding.
SPLIT_RECORDS = 256
# Chunks whose records the shuffle buffer mixes, in chunked order.
MIXED_CHUNKS = 16


def _chunked_index(count, size, shuffle, seed):
    """Record numbers `0..count-1` from a source of chunks of `size`: under
    tf.data service's dynamic sharding the dispatcher hands out one split
    per element of the source, here a chunk instead of a record (one round
    trip to the dispatcher per example halved the service's rate). With
    `shuffle`, chunk `k` holds the records at positions `k*size ...` of a
    fixed random permutation of the pack (`index_shuffle`, seeded), the
    chunks come in a new order every epoch, and a buffer of `MIXED_CHUNKS`
    chunks mixes their records: every record once per epoch, each batch
    drawn from that many random chunks."""
    import random

    import tensorflow as tf
    def positions(k):
        return tf.range(k * size, tf.minimum((k + 1) * size, count))

    chunks = -(-count // size)
    index = tf.data.Dataset.range(chunks)
    if not shuffle:
        return index.map(positions).unbatch()
    # The permutation's key is part of the graph, the same on every worker.
    key = [random.SystemRandom().getrandbits(31) if seed is None else seed,
           size]
    index = index.shuffle(chunks, seed=seed, reshuffle_each_iteration=True)
    index = index.map(lambda k: tf.random.experimental.index_shuffle(
        positions(k), key, count - 1)).unbatch()
    return index.shuffle(min(count, MIXED_CHUNKS * size), seed=seed,
                         reshuffle_each_iteration=True)


def record_batches(info, batch_size, shuffle=False, seed=None,
                   drop_remainder=False, num_shards=1, shard_index=0,
                   check_shard=None, split_records=None):
    """A `tf.data.Dataset` of `(uint8 images, int32 labels)` batches of
    the raw pack `info` (a `PackedInfo`).

    The records are numbered `0..n-1` in the pack's order. Without
    `shuffle` the batches follow that order; with it, every epoch reads a
    new uniform permutation (reproducible given `seed`). `num_shards` and
    `shard_index` keep every `num_shards`-th record from `shard_index`
    on, before shuffling: each input pipeline of a distributed job then
    reads only its own records. `check_shard(i)`, when given, is called
    (and may raise) before any record of shard `i` is read in a batch:
    the background checksum verifier's gate. `split_records` (for a
    pipeline that tf.data service shards dynamically, one reader only)
    draws the record numbers from chunks of that many records
    (`_chunked_index`).
    """
    import tensorflow as tf

    from keras_cnnpractice.custom_ops import read_packed_records
    _check_arguments(batch_size, num_shards, shard_index)
    if split_records is not None:
        check_int("split_records", split_records, 1)
        if num_shards > 1:
            raise ValueError("split_records reads the whole pack: it does "
                             f"not take num_shards={num_shards}")
        index = _chunked_index(info.num_examples, split_records, shuffle,
                               seed)
    else:
        index = tf.data.Dataset.range(info.num_examples)
        if num_shards > 1:
            index = index.shard(num_shards, shard_index)
        if shuffle:
            count = int(index.cardinality())
            index = index.shuffle(max(1, count), seed=seed,
                                  reshuffle_each_iteration=True)
    index = index.batch(batch_size, drop_remainder=drop_remainder)
    starts = tf.constant([0] + [s["count"] for s in info.shards],
                         tf.int64)
    starts = tf.cumsum(starts)

    def check(shards):
        for shard in shards.numpy().tolist():
            check_shard(shard)
        return shards

    def read(numbers):
        if check_shard is not None:
            shards, _ = tf.unique(
                tf.searchsorted(starts, numbers, side="right") - 1)
            checked = tf.py_function(check, [shards], shards.dtype)
            with tf.control_dependencies([checked]):
                numbers = tf.identity(numbers)
        return read_packed_records(numbers, info)

    return index.map(read, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True)


def packed_batches(directory, batch_size, shuffle=False, seed=None,
                   drop_remainder=False, num_shards=1, shard_index=0):
    """Batches of `(uint8 image, int32 label)` from the raw pack in
    `directory`, read a batch at a time (see the module docstring).

    Shard sizes are checked on open; checksums are not (use
    `packed(directory, verify="open")` first, or `build_pipeline` on
    `packed()`'s `Examples`, which keep its `verify` choice).

    Args:
        directory: a raw pack's folder.
        batch_size: records per batch.
        shuffle: a new uniform permutation of the records every epoch.
        seed: seed of the permutations.
        drop_remainder: drop a last partial batch.
        num_shards, shard_index: read only every `num_shards`-th record,
            from `shard_index` on.

    Returns:
        A batched `tf.data.Dataset`.

    Raises:
        ValueError: not a raw pack, an invalid index, a missing, special or
            truncated shard, or a bad argument.
        tf.errors.InvalidArgumentError: while iterating, a label outside
            the pack's classes or a shard changed since (the op checks
            each record it reads; the message names the shard and value).
    """
    _check_arguments(batch_size, num_shards, shard_index)
    from keras_cnnpractice.custom_ops.packed_records import check_raw_pack
    info = packed_info(directory)
    check_raw_pack(info)
    check_shard_sizes(info)
    return record_batches(info, batch_size, shuffle=shuffle, seed=seed,
                          drop_remainder=drop_remainder,
                          num_shards=num_shards, shard_index=shard_index)
