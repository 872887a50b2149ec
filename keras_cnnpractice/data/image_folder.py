"""Images in a folder per class (the usual layout), decoded with TensorFlow.

    root/
      cat/  a.jpg  b.png  more/c.gif
      dog/  d.bmp  ...

Class names are the sorted names of `root`'s sub-folders (hidden ones,
starting with ".", aside) and class `i` is the `i`-th of them. Each class
folder is walked recursively and its images (the extensions in
`IMAGE_EXTENSIONS`, any case; hidden files aside) are taken in sorted order
of their path, so the order never depends on the file system.

Every image is decoded with `tf.io.decode_image` to RGB uint8:
grayscale (with or without alpha) is repeated into three channels, the alpha
channel of RGBA images is dropped (not composited), CMYK JPEGs are converted
by libjpeg, 16-bit PNGs keep the high byte of each value (`v >> 8`, what
libpng's 16-to-8 strip does) and animated GIFs give their first frame.

Files that cannot be used (empty, truncated, not an image, unreadable, a
dangling link, not a regular file) are skipped, counted and reported; the
others go on.

Imports inside functions: TensorFlow, so that listing a folder (`kcp-pack`'s
checks, `data.sources`) does not load it.
"""

import collections
import concurrent.futures
import itertools
import json
import os
import stat

from absl import logging

from keras_cnnpractice._errors import first_line
from keras_cnnpractice._files import write_text_atomic
from keras_cnnpractice._validate import check_int
from keras_cnnpractice.data.examples import Examples

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
RESIZE_MODES = ("short_side", "exact")
VALIDATE_MODES = ("eager", "lazy")


class FolderListing:
    """The images of a folder-per-class tree, in their fixed order.

    Attributes:
        root: the folder, as given.
        class_names: tuple of class names; label `i` is `class_names[i]`.
        paths: tuple of image file paths (`root` joined with the relative
            path), ordered by label, then by relative path.
        labels: tuple of int labels, one per path.
        skipped: tuple of `(path, reason)` for image-named entries that are
            not readable regular files (never opened, so a FIFO cannot hang).
    """

    def __init__(self, root, class_names, paths, labels, skipped):
        self.root = root
        self.class_names = tuple(class_names)
        self.paths = tuple(paths)
        self.labels = tuple(labels)
        self.skipped = tuple(skipped)


def _is_image_name(name):
    return (not name.startswith(".")
            and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)


def list_image_folder(root):
    """Lists a folder-per-class tree without opening any image.

    Args:
        root: a folder whose sub-folders are the classes.

    Returns:
        A `FolderListing`.

    Raises:
        ValueError: `root` is not a folder, or has no class folders.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"An image folder must be a directory with one "
                         f"sub-folder per class. Received: root={root!r}")
    class_names = sorted(entry.name for entry in os.scandir(root)
                         if not entry.name.startswith(".") and entry.is_dir())
    if not class_names:
        raise ValueError(f"No class folders in {root}: an image folder needs "
                         f"one sub-folder per class. Received: root={root!r}")
    paths, labels, skipped = [], [], []
    for label, name in enumerate(class_names):
        names = []
        for folder, dirnames, filenames in os.walk(os.path.join(root, name)):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            names.extend(os.path.join(folder, f) for f in filenames
                         if _is_image_name(f))
        for path in sorted(names):
            try:
                mode = os.stat(path).st_mode
            except OSError as err:
                skipped.append((path, f"cannot read: {err.strerror}"))
                continue
            if not stat.S_ISREG(mode):
                skipped.append((path, "not a regular file"))
                continue
            paths.append(path)
            labels.append(label)
    return FolderListing(root, class_names, paths, labels, skipped)


def check_resize(size, resize):
    """Validates a `(size, resize)` pair; `size=None` keeps images as they
    are.

    Raises:
        ValueError: a size below 1 or an unknown resize mode.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}. "
                         f"Received: resize={resize!r}")
    check_int("size", size, 1, allow_none=True)


def decode_image_bytes(data):
    """Decodes JPEG/PNG/BMP/GIF bytes to an RGB uint8 `(h, w, 3)` tensor.

    Works eagerly and inside `tf.data` / `tf.function` (the same kernel, so
    the same pixels). Grayscale becomes RGB, alpha is dropped, 16-bit PNG
    values keep their high byte, a GIF gives its first frame.
    """
    import tensorflow as tf
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8,
                               expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def center_square(image, size):
    """The central square of `image`'s short side resized to `(size, size)`
    (bilinear, antialiased), as float32 in [0, 255]."""
    import tensorflow as tf
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.minimum(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = tf.cast(image[top:top + side, left:left + side], tf.float32)
    square = tf.image.resize(square, (size, size), method="bilinear",
                             antialias=True)
    return tf.clip_by_value(square, 0.0, 255.0)


def resize_image(image, size, resize="short_side"):
    """Resizes a uint8 `(h, w, c)` image to uint8 `(size, size, c)`.

    Args:
        image: uint8 tensor `(h, w, c)`, eager or symbolic.
        size: side of the square result.
        resize: `"short_side"`: cut the central square of the short side,
            then scale it to `size` (the aspect ratio is kept, the long side's
            ends are lost); `"exact"`: scale height and width to `size`
            independently (all the picture is kept, stretched).

    Bilinear, antialiased when shrinking, rounded to the nearest integer.
    """
    import tensorflow as tf
    check_resize(size, resize)
    if resize == "short_side":
        out = center_square(image, size)
    else:
        out = tf.image.resize(tf.cast(image, tf.float32), (size, size),
                              method="bilinear", antialias=True)
        out = tf.clip_by_value(out, 0.0, 255.0)
    return tf.cast(tf.round(out), tf.uint8)


def read_image_file(path, size=None, resize="short_side"):
    """Reads and decodes one image file, never raising for a bad file.

    Returns:
        `(image, None)` with a uint8 numpy array `(h, w, 3)` (or `(size,
        size, 3)`), or `(None, reason)` when the file cannot be used.
    """
    import tensorflow as tf
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        return None, f"cannot read: {err.strerror or first_line(err)}"
    if not data:
        return None, "empty file"
    try:
        image = decode_image_bytes(data)
        if min(image.shape[:2]) < 1:
            return None, "the image has no pixels"
        if size is not None:
            image = resize_image(image, size, resize)
        return image.numpy(), None
    except tf.errors.OpError as err:
        return None, f"cannot decode: {first_line(err)}"


def default_workers():
    """Decoding threads when the caller gives none: the CPU count, up to 8."""
    return max(1, min(8, os.cpu_count() or 1))


def read_image_files(paths, size=None, resize="short_side", workers=None):
    """`read_image_file` over `paths` in `workers` threads, in order.

    At most `4 * workers` images are held ahead of the consumer, so a slow
    consumer does not make every image sit in memory.

    Returns:
        An iterator of `(image, reason)` pairs as `read_image_file` returns
        them, in the order of `paths`.

    Raises:
        ValueError: a bad `size`, `resize` or `workers` (at once, before
            anything is read).
    """
    check_resize(size, resize)
    workers = default_workers() if workers is None else workers
    check_int("workers", workers, 1)
    return _read_in_order(paths, size, resize, workers)


def _read_in_order(paths, size, resize, workers):
    if workers == 1:
        for path in paths:
            yield read_image_file(path, size, resize)
        return
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        paths = iter(paths)
        pending = collections.deque(
            pool.submit(read_image_file, path, size, resize)
            for path in itertools.islice(paths, 4 * workers))
        while pending:
            result = pending.popleft().result()
            for path in itertools.islice(paths, 1):
                pending.append(pool.submit(read_image_file, path, size,
                                           resize))
            yield result


def warn_skipped(skipped, where, report=None):
    """Logs one warning for `skipped` `(path, reason)` pairs (the first
    few named) and, when `report` is a path, writes them there as JSON."""
    if report is not None:
        write_text_atomic(report, json.dumps(
            {"skipped": [{"path": p, "reason": r} for p, r in skipped]},
            indent=1) + "\n")
    if not skipped:
        return
    shown = "; ".join(f"{p}: {r}" for p, r in skipped[:5])
    more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    listed = f" (all listed in {report})" if report is not None else ""
    logging.warning("Skipped %d unusable image file(s) in %s%s: %s%s",
                    len(skipped), where, listed, shown, more)


def image_folder(root, size=None, resize="short_side", validate="eager",
                 workers=None, report=None):
    """A folder per class of JPEG/PNG/BMP/GIF files as a `tf.data.Dataset`.

    Elements are `(image, label)`: a uint8 RGB `(h, w, 3)` image (`(size,
    size, 3)` when `size` is given) and an int32 label, in the listing order
    (see the module docstring); shuffle and batch it yourself. Without
    `size`, images keep their own sizes and cannot be batched together
    unless they all match.

    Bad files never stop the dataset:

    - `validate="eager"` (default) decodes every file once here, in
      `workers` threads, and keeps only the good ones: unusable files are
      skipped, counted, logged in one warning and, with `report`, written to
      a JSON file. The dataset then reads and decodes the good files again
      in a parallel `tf.data` map (decoding is not cached). A file that
      goes bad after this check makes the iterator raise, naming no file;
      it is never silently dropped.
    - `validate="lazy"` decodes nothing here (start-up costs only the
      listing) and drops the files that fail inside `tf.data` with
      `Dataset.ignore_errors(log_warning=True)`: TensorFlow logs each one,
      but `skipped` and `report` hold only what the listing found (links to
      nothing, non-regular files), and the dataset's length is unknown.

    Args:
        root: folder with one sub-folder per class.
        size: side of the square images to produce, or None to keep sizes.
        resize: `"short_side"` or `"exact"`, see `resize_image`.
        validate: `"eager"` or `"lazy"`, see above.
        workers: decoding threads for `validate="eager"` (default: the CPU
            count, at most 8).
        report: optional path of a JSON file listing the skipped files
            (written through a temporary name, even when none is skipped).

    Returns:
        `Examples`: the dataset, `class_names` (tuple), `files` (the files
        it reads, in order) and `skipped` (tuple of `(path, reason)`).

    Raises:
        ValueError: `root` is not a folder per class, or a bad argument.
    """
    import tensorflow as tf
    check_resize(size, resize)
    if validate not in VALIDATE_MODES:
        raise ValueError(f"validate must be one of "
                         f"{', '.join(VALIDATE_MODES)}. Received: "
                         f"validate={validate!r}")
    listing = list_image_folder(root)
    skipped = list(listing.skipped)
    paths, labels = list(listing.paths), list(listing.labels)
    if validate == "eager":
        results = read_image_files(paths, size, resize, workers)
        kept = []
        for path, label, (_, reason) in zip(paths, labels, results):
            if reason is None:
                kept.append((path, label))
            else:
                skipped.append((path, reason))
        paths = [p for p, _ in kept]
        labels = [label for _, label in kept]
        skipped.sort()
    warn_skipped(skipped, listing.root, report)

    def load(path, label):
        image = decode_image_bytes(tf.io.read_file(path))
        if size is not None:
            image = resize_image(image, size, resize)
        return image, label

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths, tf.string), tf.constant(labels, tf.int32)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if validate == "lazy":
        ds = ds.ignore_errors(log_warning=True)
    return Examples(ds, listing.class_names, files=tuple(paths),
                    skipped=tuple(skipped))
