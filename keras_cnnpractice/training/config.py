"""`TrainConfig`, everything a training run depends on, and the named
choices of its fields: importable without TensorFlow, so that the flags
that fill it (`train_flags`) parse, check and print `--help` in a fraction
of a second."""

import dataclasses
import os
import re
from typing import Optional

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
