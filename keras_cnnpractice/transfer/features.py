"""Fixed features from a pretrained network, cached on disk once.

The cheapest transfer strategy (CS231n "CNNs in practice"; Razavian et al.,
"CNN Features off-the-shelf: an Astounding Baseline for Recognition", CVPR
workshops 2014; Yosinski et al., NIPS 2014): run the frozen network over
the data once, keep the activations of one or more layers, and train only
a linear classifier on them.

A cache is a directory holding one raw float32 file per layer
(`features-<i>.f32`, row-major, memory-mappable), the labels
(`labels.bin`) and `index.json`, which records shapes, dtypes, the number
of batches and examples written, what made the cache (the extractor's
fingerprint and the dataset's first batch and size), and whether it is
complete. The index is replaced atomically after each batch's data has
been flushed to disk, so it never claims more than is there: an interrupted
run leaves an index saying how far it got, and the next run truncates any
partly written batch and continues from there.
"""

import hashlib
import json
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice._files import write_text_atomic
from keras_cnnpractice._validate import check_int

_INDEX = "index.json"
_LABELS = "labels.bin"
_FORMAT = "keras_cnnpractice.feature_cache"
_VERSION = 1


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


class FeatureExtractor:
    """The activations of named layers of a (frozen) Keras model.

    Builds `keras.Model(model.inputs, [layer.output, ...])`, which shares
    the model's layers and weights, and runs it in inference mode (dropout
    off, batch norm on its moving statistics). Any layer works, not only
    the last: early layers give generic features (edges, blobs), late ones
    features specific to the original task (Yosinski et al., "How
    transferable are features in deep neural networks?", NIPS 2014).

    Example:

    ```python
    extractor = FeatureExtractor(model, ["dense", "stage2"])
    features = extractor(images)   # {"dense": (n, 128), "stage2": (n, 12544)}
    ```

    Args:
        model: a built functional (or Sequential) Keras model.
        layer_names: a layer name or `keras.layers.Layer`, or a list of
            them.
        flatten: reshape each example's features to a vector (conv maps
            `(h, w, c)` -> `(h * w * c,)`); False keeps their shape.

    Raises:
        ValueError: not a built Keras model, an unknown or repeated layer,
            or a layer whose output is ambiguous (used more than once).
    """

    def __init__(self, model, layer_names, flatten=True):
        if not isinstance(model, keras.Model) or not getattr(
                model, "inputs", None):
            raise ValueError("FeatureExtractor needs a built functional or "
                             f"Sequential keras.Model. Received: model={model!r}")
        entries = _as_list(layer_names)
        if not entries:
            raise ValueError("layer_names must name at least one layer. "
                             f"Received: layer_names={layer_names!r}")
        layers = []
        for entry in entries:
            if isinstance(entry, str):
                try:
                    entry = model.get_layer(entry)
                except ValueError:
                    raise ValueError(
                        f"Model {model.name!r} has no layer {entry!r}; its "
                        f"layers: {[x.name for x in model.layers]}. "
                        f"Received: layer_names={layer_names!r}") from None
            elif not (isinstance(entry, keras.layers.Layer)
                      and any(entry is x for x in model.layers)):
                raise ValueError("layer_names must be names or layers of "
                                 f"{model.name!r}. Received: {entry!r}")
            layers.append(entry)
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError("layer_names names a layer twice. Received: "
                             f"layer_names={names}")
        try:
            outputs = [layer.output for layer in layers]
        except (AttributeError, ValueError) as err:
            raise ValueError(f"Cannot take the output of {names}: {err}") \
                from None
        single = len(model.inputs) == 1
        self.model = keras.Model(model.input if single else model.inputs,
                                 outputs, name=f"{model.name}_features")
        self.model.trainable = False
        self.layer_names = names
        self.flatten = bool(flatten)
        if single:  # one trace for every batch size and input dtype
            spec = model.inputs[0]
            self._forward = tf.function(
                lambda x: self.model(x, training=False),
                input_signature=[tf.TensorSpec(spec.shape, spec.dtype)])
            self._prepare = lambda x: tf.cast(x, spec.dtype)
        else:
            self._forward = tf.function(
                lambda x: self.model(x, training=False), reduce_retracing=True)
            self._prepare = lambda x: x

    def __call__(self, images):
        """`{layer name: float32 numpy array}` for a batch of images."""
        outputs = _as_list(self._forward(self._prepare(images)))
        features = {}
        for name, value in zip(self.layer_names, outputs):
            value = np.asarray(value, dtype=np.float32)
            if self.flatten:
                value = value.reshape(len(value), -1)
            features[name] = value
        return features

    def fingerprint(self):
        """A hash of the layers, the flattening, and every weight (path,
        shape, dtype and values) the features depend on."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.layer_names, self.flatten,
                                  [list(x.shape) for x in self.model.inputs]]
                                 ).encode())
        for weight in self.model.weights:
            value = np.ascontiguousarray(weight.numpy())
            digest.update(f"{weight.path}{value.shape}{value.dtype}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()


def _batch_digest(images, labels):
    digest = hashlib.sha256()
    for array in (np.asarray(images), np.asarray(labels)):
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _split(element):
    if not (isinstance(element, (tuple, list)) and len(element) == 2):
        raise ValueError("The dataset must yield (images, labels) batches. "
                         f"Received an element: {element!r:.200}")
    return element


def _source(extractor, dataset):
    """What makes a cache: checked before reusing or resuming one."""
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError("cache_features needs a finite dataset. Received an "
                         "infinite one (a .repeat() without a count?)")
    first = next(iter(dataset.take(1)), None)
    if first is None:
        raise ValueError("cache_features received an empty dataset.")
    images, labels = _split(first)
    return {"fingerprint": extractor.fingerprint(),
            "layers": extractor.layer_names, "flatten": extractor.flatten,
            "batches": cardinality if cardinality >= 0 else None,
            "first_batch_sha256": _batch_digest(images, labels)}


def _read_index(path):
    index_path = pathlib.Path(path) / _INDEX
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ValueError(f"The feature cache index {index_path} is "
                         f"unreadable ({err}); delete {path} or pass "
                         "overwrite=True to rebuild it.") from None
    if not isinstance(index, dict) or index.get("format") != _FORMAT:
        raise ValueError(f"{index_path} is not a feature cache index.")
    return index


def _files(index):
    """`[(file name, numpy dtype, per-example shape)]` of a cache."""
    entries = [(e["file"], e["dtype"], e["shape"])
               for e in index["features"].values()]
    label = index["labels"]
    return entries + [(label["file"], label["dtype"], label["shape"])]


def _row_bytes(dtype, shape):
    return np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64))


def _describe_mismatch(old, new):
    differ = {k for k in new if old.get(k) != new.get(k)}
    if differ & {"layers", "flatten"}:
        differ.discard("fingerprint")  # it covers them too
    what = {"layers": "layers", "flatten": "flatten setting",
            "fingerprint": "model weights",
            "batches": "dataset size (number of batches)",
            "first_batch_sha256": "dataset (its first batch differs; a "
                                  "shuffled dataset cannot be cached)"}
    return ", ".join(what[k] for k in what if k in differ)


def cache_features(extractor, dataset, path, overwrite=False):
    """Runs the frozen network once over `dataset`; stores features + labels.

    Resumable: if a previous call was interrupted, this one continues after
    the last batch that was completely written (the dataset must yield the
    same batches in the same order: no reshuffling). A complete cache made
    by the same extractor (same weights) from the same dataset is reused
    without running the network.

    Args:
        extractor: a `FeatureExtractor`.
        dataset: a finite `tf.data.Dataset` of `(images, labels)` batches in
            a fixed order, e.g. `data.make_dataset(x, y, 64,
            training=False)`.
        path: the cache directory (created if missing).
        overwrite: rebuild a cache that was made by a different model,
            layers or dataset instead of raising.

    Returns:
        `load_cached_features(path)`: `({layer name: array}, labels)`,
        memory-mapped.

    Raises:
        ValueError: a bad argument; a cache in `path` made differently (says
            what differs) and `overwrite=False`; a dataset whose batches
            change shape or dtype midway.
    """
    if not isinstance(extractor, FeatureExtractor):
        raise ValueError("extractor must be a FeatureExtractor. Received: "
                         f"extractor={extractor!r}")
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError("dataset must be a tf.data.Dataset of (images, "
                         f"labels) batches. Received: dataset={dataset!r}")
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    source = _source(extractor, dataset)
    try:
        index = _read_index(path)
    except ValueError:
        if not overwrite:
            raise
        index = {"source": None}
    if index is not None and index.get("source") != source:
        if not overwrite:
            raise ValueError(
                f"The feature cache in {path} was made with a different "
                f"{_describe_mismatch(index.get('source') or {}, source)}. "
                "Pass overwrite=True to rebuild it, or use another path.")
        print(f"Rebuilding the feature cache in {path}", flush=True)
        index = None
    if index is not None and index["complete"]:
        return load_cached_features(path)
    if index is not None and not _files_hold(path, index):
        print(f"Restarting the feature cache in {path}: its files are "
              "shorter than its index says", flush=True)
        index = None
    if index is None:
        # No index first: a crash from here on leaves no cache at all.
        (path / _INDEX).unlink(missing_ok=True)
        index = {"format": _FORMAT, "version": _VERSION, "source": source,
                 "features": None, "labels": None, "batches": 0, "count": 0,
                 "complete": False}
    elif index["batches"]:
        print(f"Resuming the feature cache in {path} after batch "
              f"{index['batches']} ({index['count']} examples)", flush=True)
    _write(extractor, dataset, path, index)
    return load_cached_features(path)


def _files_hold(path, index):
    """Whether every file of a partial cache holds its recorded rows."""
    if index["features"] is None:
        return True
    for name, dtype, shape in _files(index):
        file = path / name
        if (not file.exists() or file.stat().st_size
                < index["count"] * _row_bytes(dtype, shape)):
            return False
    return True


def _write(extractor, dataset, path, index):
    handles = {}
    try:
        if index["features"] is not None:
            # Resume: drop whatever a killed run wrote past the last
            # recorded batch.
            for name, dtype, shape in _files(index):
                handle = open(path / name, "r+b")
                handle.truncate(index["count"] * _row_bytes(dtype, shape))
                handle.seek(0, os.SEEK_END)
                handles[name] = handle
        for element in dataset.skip(index["batches"]):
            images, labels = _split(element)
            labels = np.asarray(labels)
            features = extractor(images)
            if any(len(v) != len(labels) for v in features.values()):
                raise ValueError("A batch has different numbers of images "
                                 "and labels.")
            if index["features"] is None:
                index["features"] = {
                    name: {"file": f"features-{i}.f32", "dtype": "float32",
                           "shape": list(value.shape[1:])}
                    for i, (name, value) in enumerate(features.items())}
                index["labels"] = {"file": _LABELS,
                                   "dtype": labels.dtype.str,
                                   "shape": list(labels.shape[1:])}
                for name, _, _ in _files(index):
                    handles[name] = open(path / name, "wb")
            arrays = list(features.values()) + [labels]
            for (name, dtype, shape), array in zip(_files(index), arrays):
                if list(array.shape[1:]) != shape or array.dtype != np.dtype(
                        dtype):
                    raise ValueError(
                        f"Batch {index['batches']} gives {name} of shape "
                        f"{array.shape[1:]} and dtype {array.dtype}; earlier "
                        f"batches gave {tuple(shape)} and {dtype}")
                handles[name].write(np.ascontiguousarray(array).tobytes())
            for handle in handles.values():
                handle.flush()
                os.fsync(handle.fileno())
            index["batches"] += 1
            index["count"] += len(labels)
            write_text_atomic(path / _INDEX, json.dumps(index, indent=1))
        index["complete"] = True
        write_text_atomic(path / _INDEX, json.dumps(index, indent=1))
    finally:
        for handle in handles.values():
            handle.close()


def load_cached_features(path, mmap=True):
    """Loads a complete feature cache written by `cache_features`.

    Args:
        path: the cache directory.
        mmap: memory-map the files (read-only) instead of reading them.

    Returns:
        `(features, labels)`: `{layer name: float32 array (count, ...)}`
        and the labels array `(count, ...)`.

    Raises:
        FileNotFoundError: no cache in `path`.
        ValueError: an incomplete cache (an interrupted `cache_features`:
            run it again to finish), or files shorter or longer than the
            index says.
    """
    path = pathlib.Path(path)
    index = _read_index(path)
    if index is None:
        raise FileNotFoundError(f"No feature cache in {path} (no {_INDEX}); "
                                "make one with cache_features().")
    if not index["complete"]:
        raise ValueError(f"The feature cache in {path} is incomplete "
                         f"({index['batches']} batches written); run "
                         "cache_features() again with the same dataset to "
                         "finish it.")
    count = index["count"]
    arrays = []
    for name, dtype, shape in _files(index):
        file = path / name
        expected = count * _row_bytes(dtype, shape)
        size = file.stat().st_size if file.exists() else None
        if size != expected:
            raise ValueError(f"{file} holds {size} bytes where the index "
                             f"says {expected}; the cache is damaged: "
                             "rebuild it with cache_features(..., "
                             "overwrite=True).")
        shape = (count, *shape)
        if mmap:
            arrays.append(np.memmap(file, dtype=dtype, mode="r", shape=shape))
        else:
            arrays.append(np.fromfile(file, dtype=dtype).reshape(shape))
    return dict(zip(index["features"], arrays[:-1])), arrays[-1]


def train_linear_classifier(features, labels, num_classes, epochs=100,
                            batch_size=64, learning_rate=1e-2, l2=1e-4,
                            normalize=True, validation_data=None, verbose=0):
    """A softmax linear classifier trained on fixed features.

    `Normalization` (adapted to the features' mean and variance) then
    `Dense(num_classes, softmax)` with an L2 penalty, trained with Adam on
    the sparse categorical cross-entropy. The returned model maps features
    to class probabilities; put it after a `FeatureExtractor` to classify
    images.

    Args:
        features: float array `(n, ...)`, e.g. one layer of
            `load_cached_features` (memory-mapped arrays are fine).
        labels: integer labels `(n,)` in `[0, num_classes)`.
        num_classes: number of classes (>= 2).
        epochs: passes over the features.
        batch_size: examples per step.
        learning_rate: Adam's learning rate.
        l2: L2 penalty on the weights (0 for none).
        normalize: standardize each feature first.
        validation_data: optional `(features, labels)` evaluated per epoch.
        verbose: `model.fit`'s verbosity.

    Returns:
        The trained `keras.Model` (its `history` holds the fit's History).

    Raises:
        ValueError: mismatched lengths, labels out of range, or bad
            hyperparameters.
    """
    if isinstance(features, dict):
        raise ValueError("features must be one array; pick one layer of the "
                         f"cache, e.g. features[{next(iter(features))!r}].")
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim < 2 or len(features) != len(labels) or not len(labels):
        raise ValueError("features (n, ...) and labels (n,) must be "
                         "non-empty with the same n. Received: features of "
                         f"shape {features.shape}, labels of shape "
                         f"{labels.shape}")
    check_int("num_classes", num_classes, 2)
    if (labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer)
            or labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be integers in [0, {num_classes}). "
                         f"Received: labels of dtype {labels.dtype}, shape "
                         f"{labels.shape}, range [{labels.min()}, "
                         f"{labels.max()}]")
    if epochs < 1 or batch_size < 1 or not learning_rate > 0 or l2 < 0:
        raise ValueError("epochs and batch_size must be >= 1, learning_rate "
                         "> 0 and l2 >= 0. Received: "
                         f"epochs={epochs}, batch_size={batch_size}, "
                         f"learning_rate={learning_rate}, l2={l2}")
    inputs = keras.Input(features.shape[1:], name="features")
    x = keras.layers.Flatten()(inputs) if features.ndim > 2 else inputs
    if normalize:
        norm = keras.layers.Normalization()
        norm.adapt(features.reshape(len(features), -1))
        x = norm(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax",
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
        name="linear_classifier")(x)
    model = keras.Model(inputs, outputs, name="linear_classifier")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(features, labels, epochs=epochs, batch_size=batch_size,
              validation_data=validation_data, verbose=verbose)
    return model
