"""Loading a pretrained network: a `.keras` file or a `train.py` run.

For ImageNet features, users with internet can start from
`keras.applications` instead, e.g.

```python
trunk = keras.applications.ResNet50(weights="imagenet", include_top=False,
                                    pooling="avg", input_shape=(224, 224, 3))
```

(its weights download on first use; the tests never do). Pass `trunk` to
`FeatureExtractor`, or add a `Dense` head and `fine_tune` it.
"""

import json
import pathlib

import keras

from keras_cnnpractice import data
from keras_cnnpractice import models
from keras_cnnpractice.training.checkpoints import newest_good_checkpoint


def _flags_for(checkpoint):
    """The `flags.json` of the run a checkpoint file belongs to."""
    for directory in (checkpoint.parent.parent, checkpoint.parent):
        if (directory / "flags.json").is_file():
            return directory / "flags.json"
    raise FileNotFoundError(
        f"{checkpoint} holds weights only, and no flags.json of its "
        f"train.py run is in {checkpoint.parent.parent} or "
        f"{checkpoint.parent}, so the model cannot be rebuilt. Pass the "
        "run's model_dir or a .keras file.")


def _rebuild(flags_path, input_shape, num_classes):
    try:
        flags = json.loads(flags_path.read_text())
        name = flags["model"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"Cannot read the model name from {flags_path}: "
                         f"{err!r}") from None
    if num_classes is None and flags.get("new_head_classes"):
        num_classes = int(flags["new_head_classes"])
    if input_shape is None or num_classes is None:
        spec = flags.get("dataset", "mnist5k")
        try:
            source = data.open_dataset(
                spec, image_size=flags.get("image_size"),
                classes=data.parse_classes(flags.get("classes") or ""))
        except (OSError, ValueError) as err:
            raise ValueError(
                f"Cannot open the run's dataset {spec!r} to learn its input "
                f"shape and class count ({err}); pass input_shape= and "
                "num_classes=.") from None
        input_shape = input_shape or source.input_shape
        num_classes = num_classes or source.num_classes
    return models.create_model(name, input_shape, num_classes)


def load_pretrained(path, num_classes=None, input_shape=None):
    """Loads a pretrained model, uncompiled, without optimizer state.

    Args:
        path: one of
            - a `.keras` file (`model.save`), loaded as saved;
            - a `train.py` model_dir (with `flags.json` and
              `checkpoints/epoch-N.weights.h5`): its newest complete
              checkpoint;
            - one such `.weights.h5` checkpoint.
            For checkpoints the model is rebuilt from `flags.json`
            ("model", and "dataset", "classes", "image_size" for the input
            shape and class count) with the zoo's `create_model`, then its
            weights are loaded (the optimizer's state in the file is
            skipped).
        num_classes: the class count the run trained with, if not the one
            `flags.json` implies (its "new_head_classes", else its
            dataset's after "classes").
        input_shape: the run's input shape, if not its dataset's.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: no such file, a model_dir without a complete
            checkpoint, or a checkpoint without its run's `flags.json`.
        ValueError: an unsupported path, a corrupt or truncated file, or
            weights that do not fit the rebuilt model.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No pretrained model at {path}.")
    if path.is_dir():
        if not (path / "flags.json").is_file():
            raise FileNotFoundError(f"{path} is not a train.py model_dir "
                                    "(no flags.json).")
        _, checkpoint = newest_good_checkpoint(path / "checkpoints")
        if checkpoint is None:
            raise FileNotFoundError(f"No complete checkpoint that verifies "
                                    f"(epoch-N.weights.h5) in "
                                    f"{path / 'checkpoints'}.")
        return load_pretrained(checkpoint, num_classes, input_shape)
    if path.name.endswith(".keras"):
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as err:  # zip, h5 and config errors alike
            raise ValueError(f"Cannot load the model in {path} (corrupt or "
                             f"not a Keras model file?): {err}") from None
    if not path.name.endswith(".weights.h5"):
        raise ValueError("path must be a .keras file, a .weights.h5 "
                         f"checkpoint or a train.py model_dir. Received: "
                         f"path={str(path)!r}")
    model = _rebuild(_flags_for(path), input_shape, num_classes)
    try:
        model.load_weights(path)
    except Exception as err:  # h5 and shape errors alike
        raise ValueError(f"Cannot load the weights in {path} into "
                         f"{model.name!r} (corrupt file, or another model or "
                         f"class count?): {err}") from None
    return model
