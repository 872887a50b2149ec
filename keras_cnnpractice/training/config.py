"""`TrainConfig`, everything a training run depends on, and the named
choices of its fields: importable without TensorFlow, so that the flags
that fill it (`train_flags`) parse, check and print `--help` in a fraction
of a second."""

import dataclasses
import json
import os
import pathlib
import re
from typing import Optional

from absl import logging

from keras_cnnpractice._files import write_json_atomic
from keras_cnnpractice.data.service import parse_address
from keras_cnnpractice.strategies import cluster

OPTIMIZERS = ("adam", "sgd", "momentum")
LR_SCALING = ("none", "linear")
PRECISIONS = ("float64", "float32", "mixed_float16", "mixed_bfloat16")
ROUNDINGS = ("stochastic", "nearest")
TTA_VIEWS = ("none", "flip", "ten_crop", "multi_scale")
TRANSFER_MODES = ("finetune", "multistage", "features")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; saved as `flags.json`."""

    strategy: str = "mirrored"
    num_devices: Optional[int] = None
    dataset: str = "mnist5k"
    image_size: Optional[int] = None
    classes: str = ""
    train_examples_per_class: Optional[int] = None
    model: str = "mnist_cnn"
    augment: str = "digits"
    augment_in: str = "data"
    cache: str = ""
    data_service: str = ""
    data_service_sharding: str = "dynamic"
    precision: str = "float32"
    epochs: int = 15
    steps_per_epoch: Optional[int] = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_scaling: str = "none"
    lr_reference_batch: int = 64
    warmup_epochs: int = 0
    l2: float = 0.0
    optimizer: str = "adam"
    weights_format: str = "float"
    rounding: str = "stochastic"
    init_from: str = ""
    transfer: str = "finetune"
    new_head_classes: Optional[int] = None
    feature_layer: str = ""
    eval_tta: str = "none"
    sanity_checks: bool = False
    model_dir: str = "runs/mnist_cnn"
    export_dir: Optional[str] = None
    seed: int = 0
    cluster_timeout_s: float = 120.0

    def resolved_export_dir(self):
        return self.export_dir or os.path.join(self.model_dir, "export")


_FORMAT = re.compile(r"fixed(\d+):(\d+)")


def parse_weights_format(spec):
    """`"float"` -> None; `"fixed<word_bits>:<frac_bits>"` -> the two ints.

    Raises:
        ValueError: anything else, or bit counts `stochastic_round` rejects.
    """
    if spec == "float":
        return None
    match = _FORMAT.fullmatch(str(spec))
    if not match:
        raise ValueError("weights_format must be 'float' or "
                         "'fixed<word_bits>:<frac_bits>', e.g. 'fixed16:14'. "
                         f"Received: weights_format={spec!r}")
    word_bits, frac_bits = int(match.group(1)), int(match.group(2))
    if not 2 <= word_bits <= 24 or frac_bits > 64:
        raise ValueError("weights_format needs 2 <= word_bits <= 24 and "
                         f"frac_bits <= 64. Received: weights_format={spec!r}")
    return word_bits, frac_bits


def check_config(config):
    """Raises `ValueError` for fields that do not combine (checked before
    anything is built or written).

    Raises:
        ValueError: fixed-point weights with `init_from` or float64;
            `init_from` with model parallelism or augmentation in the
            model; flags a multi-worker strategy does not take; a bad
            learning-rate scaling or warm-up.
    """
    fixed_point = parse_weights_format(config.weights_format) is not None
    if fixed_point and config.init_from:
        raise ValueError("--weights_format=fixed... does not combine with "
                         "--init_from (the transfer optimizers)")
    if fixed_point and config.precision == "float64":
        raise ValueError("--weights_format=fixed... stores float32 weights on "
                         "a fixed-point grid; it does not combine with "
                         "--precision=float64")
    model_parallel = config.strategy.strip().lower() == "model_parallel"
    if model_parallel and config.init_from:
        raise ValueError("--strategy=model_parallel does not combine with "
                         "--init_from (it splits the head of a new model)")
    if config.data_service:
        _check_data_service(config)
    if config.augment_in == "model" and config.init_from:
        raise ValueError("--augment_in=model does not combine with "
                         "--init_from (the pretrained model is used as it "
                         "is); augment in the data")
    _check_multi_worker(config)
    _check_lr_flags(config)


def _check_lr_flags(config):
    if config.lr_scaling not in LR_SCALING:
        raise ValueError(f"lr_scaling must be one of {', '.join(LR_SCALING)}."
                         f" Received: lr_scaling={config.lr_scaling!r}")
    if config.lr_reference_batch < 1:
        raise ValueError("lr_reference_batch must be >= 1. Received: "
                         f"lr_reference_batch={config.lr_reference_batch}")
    if not 0 <= config.warmup_epochs < config.epochs:
        raise ValueError(f"--warmup_epochs must be >= 0 and less than "
                         f"--epochs={config.epochs}. Received: "
                         f"warmup_epochs={config.warmup_epochs}")


def _check_data_service(config):
    """Flags that do not combine with `--data_service`."""
    parse_address(config.data_service)
    if config.cache:
        raise ValueError("--data_service does not combine with --cache: "
                         "the workers read the data (cache it there)")


def _check_multi_worker(config):
    """Flags the multi-worker strategies do not take."""
    strategy = config.strategy.strip().lower()
    if strategy not in cluster.STRATEGY_JOBS:
        return
    unsupported = [flag for flag, used in (
        ("--init_from", config.init_from),
        ("--sanity_checks", config.sanity_checks),
        ("--eval_tta", config.eval_tta != "none")) if used]
    if strategy == "parameter_server":
        unsupported += [flag for flag, used in (
            ("--weights_format", parse_weights_format(config.weights_format)
             is not None),
            ("--precision=mixed_float16", config.precision == "mixed_float16"),
            # Every worker would write the same cache files.
            ("--cache=DIR", config.cache not in ("", "memory"))) if used]
    if unsupported:
        raise ValueError(f"--strategy={strategy} does not take "
                         f"{', '.join(unsupported)}; train with it on one "
                         "machine (--strategy=off or mirrored)")


def save_flags(config, out_dir):
    """Writes `config` to OUT_DIR/flags.json, warning about the fields that
    differ from the run saved there."""
    path = pathlib.Path(out_dir) / "flags.json"
    current = dataclasses.asdict(config)
    if path.exists():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in current if previous.get(k) != current[k])
        if changed:
            logging.warning("Flags differ from the run saved in %s: %s",
                            config.model_dir, ", ".join(changed))
    write_json_atomic(path, current)
