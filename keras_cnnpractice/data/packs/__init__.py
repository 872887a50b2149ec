"""Packs: pre-decoded images in large contiguous shards, for input
pipelines that read faster than they decode.

A pack (written by `kcp-pack`) is a folder:

    OUT_DIR/
      index.json           what is in the shards; written last
      shard-00000.raw      (or .tfrecord) records, in the source's order
      shard-00001.raw
      skipped.jsonl        only when source files were skipped: one JSON
                           object {"path": ..., "reason": ...} a line

Raw shards are fixed-size records with nothing between them and no file
header: bytes 0-3 the label (int32, little-endian), then the pixels (uint8,
height x width x channels, row-major HWC). TFRecord shards hold one
`tf.train.Example` per image with the features `image` (the same raw pixel
bytes), `label` (int64) and `shape` (int64 `[h, w, c]`).

`index.json` holds the format, the image shape, the total count, the class
names, one entry per shard (file name, record count, size in bytes,
SHA-256), the pack's arguments, a fingerprint of the source and the
skipped-files report.

A reader trusts nothing in a pack: `packed_info` refuses an index whose
sizes do not fit the readers' 64-bit arithmetic, whose shard names are not
plain file names inside the pack's folder, or whose counts do not add up,
before any shard is opened; shards are opened only when they are regular
files (a FIFO or a device could block or never end); and every label is
checked against the number of classes, so a label no model output can
match fails naming the label instead of failing inside a loss. Labels are
checked where the bytes pass anyway: in the checksum pass of `verify`
(one strided comparison per block, so a crafted pack fails at open, as a
`ValueError`), in the batch reader's op (one comparison per record read),
and by an assertion in the per-example parser (for `verify="none"` and
`"background"`).

The format and its index (`format`), the checksum verifier (`verify`),
the per-example reader (`reader.packed`), the batch reader
(`batches.packed_batches`) and the writer (`writer.pack_dataset`, which
`kcp-pack` runs); none imports TensorFlow before it reads.
"""

from keras_cnnpractice.data.packs.batches import packed_batches
from keras_cnnpractice.data.packs.format import PackedInfo
from keras_cnnpractice.data.packs.format import packed_info
from keras_cnnpractice.data.packs.reader import packed
from keras_cnnpractice.data.packs.writer import pack_dataset

__all__ = ["PackedInfo", "pack_dataset", "packed", "packed_batches",
           "packed_info"]
