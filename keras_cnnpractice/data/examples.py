"""`Examples`: a dataset of `(uint8 image, int32 label)` examples and what
an input pipeline must know about it.

The readers (`image_folder`, `packed`, `cifar10_binary`,
`cifar100_binary`) return one, rather than attributes set on a
`tf.data.Dataset`, which any `.map()` would silently drop (and with them a
raw pack's batch reader). Importing this module does not import
TensorFlow.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Examples:
    """A source of examples for `build_pipeline`.

    Attributes:
        dataset: a `tf.data.Dataset` of `(uint8 image, int32 label)`, one
            example per element.
        class_names: tuple; label `i` is `class_names[i]`.
        files: the files `dataset` reads, in order (an image folder's
            images, CIFAR's batch files, a pack's shards); `build_pipeline`
            shards by file only when there is at least one per worker.
        skipped: `(path, reason)` of the source files left out as unusable
            (image folders).
        info: the pack's `PackedInfo` (packs), else None.
        read_batches: for a raw pack, its reader of whole batches
            (`packs.batches.record_batches` bound to the pack), which
            `build_pipeline` uses instead of batching examples one by one;
            else None. It reads the pack's records, not `dataset`: make
            new `Examples` (with `dataclasses.replace`) without it when
            `dataset` is changed.
    """

    dataset: object
    class_names: tuple
    files: tuple = ()
    skipped: tuple = ()
    info: object = None
    read_batches: object = None

    @property
    def num_examples(self):
        """Examples in `dataset` (its cardinality; negative when
        unknown)."""
        return int(self.dataset.cardinality())
