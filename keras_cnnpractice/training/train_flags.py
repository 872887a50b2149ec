"""`train.py`'s flags, defined once: importing this module defines them.

`kcp-train` (`train.py`) and the pipeline doctor (`kcp-doctor`) both import
it, so the doctor takes exactly the flags of the run it diagnoses. It
imports no TensorFlow: the flags parse, are checked and print `--help` in
a fraction of a second.
"""

import math
import os

from absl import flags

from keras_cnnpractice.data.options import AUGMENT_PLACES
from keras_cnnpractice.data.options import AUGMENTATION_POLICIES
from keras_cnnpractice.data.service import SHARDING_POLICIES
from keras_cnnpractice.data.service import parse_address
from keras_cnnpractice.data.sources import DATASET_NAMES
from keras_cnnpractice.data.sources import parse_dataset_spec
from keras_cnnpractice.data.subsets import parse_classes
from keras_cnnpractice.models import list_models
from keras_cnnpractice.strategies import STRATEGY_NAMES
from keras_cnnpractice.training.config import LR_SCALING
from keras_cnnpractice.training.config import OPTIMIZERS
from keras_cnnpractice.training.config import PRECISIONS
from keras_cnnpractice.training.config import ROUNDINGS
from keras_cnnpractice.training.config import TRANSFER_MODES
from keras_cnnpractice.training.config import TTA_VIEWS
from keras_cnnpractice.training.config import TrainConfig
from keras_cnnpractice.training.config import parse_weights_format

_DEFAULTS = TrainConfig()

flags.DEFINE_enum("strategy", _DEFAULTS.strategy, STRATEGY_NAMES,
                  "tf.distribute strategy (case-insensitive); "
                  "multi_worker_mirrored and parameter_server read their "
                  "cluster from TF_CONFIG (kcp-launch "
                  "starts one on this machine).",
                  case_sensitive=False)
flags.DEFINE_integer("num_devices", None,
                     "Devices for --strategy=mirrored and model_parallel "
                     "(default: all GPUs; on a CPU-only machine the CPU is "
                     "split into this many, default 2).",
                     lower_bound=1)
flags.DEFINE_string("dataset", _DEFAULTS.dataset,
                    f"Training data: {', '.join(DATASET_NAMES)} (folder: "
                    "and packed: hold train/ and test/ sub-folders).")
flags.DEFINE_integer("image_size", None,
                     "For --dataset=folder:DIR: resize every image to this "
                     "square (central square of the short side, scaled); "
                     "default: the short side of the first training image.",
                     lower_bound=1)
flags.DEFINE_string("classes", _DEFAULTS.classes,
                    "Train and test on these classes only, relabelled "
                    "0..k-1 in the order given: '5-9' or '0,2,4' (default: "
                    "all).")
flags.DEFINE_integer("train_examples_per_class", None,
                     "Keep a seeded random subset of this many training "
                     "examples per class (default: all).", lower_bound=1)
flags.DEFINE_enum("model", _DEFAULTS.model, list_models(), "Model to train.")
flags.DEFINE_enum("augment", _DEFAULTS.augment, AUGMENTATION_POLICIES,
                  "Training augmentation policy.")
flags.DEFINE_enum("augment_in", _DEFAULTS.augment_in, AUGMENT_PLACES,
                  "Where augmentation runs: data = in the tf.data map on "
                  "the CPU, beside the step; model = as the first layer of "
                  "the model, on its device, inside the step.")
flags.DEFINE_string("cache", _DEFAULTS.cache,
                    "Cache the decoded training examples after the first "
                    "epoch: '' (none), 'memory', or a folder.")
flags.DEFINE_string("data_service", _DEFAULTS.data_service,
                    "grpc://HOST:PORT of a tf.data service dispatcher: the "
                    "training pipeline (reading, augmentation, batching) runs "
                    "on its workers (kcp-data-service); '' (default): in "
                    "this process.")
flags.DEFINE_enum("data_service_sharding", _DEFAULTS.data_service_sharding,
                  SHARDING_POLICIES,
                  "With --data_service: dynamic = each example at most once "
                  "per epoch; off = every worker its own full epoch; static "
                  "= a fixed share per worker (the dispatcher lists them).")
flags.DEFINE_enum("precision", _DEFAULTS.precision, PRECISIONS,
                  "Keras dtype policy: compute dtype (and float32 variables "
                  "for mixed_*); mixed_float16 gets dynamic loss scaling.")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Epochs to train.",
                     lower_bound=1)
flags.DEFINE_integer("steps_per_epoch", None,
                     "Batches per epoch (default: the whole training set).",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Global batch size.",
                     lower_bound=1)
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate,
                   "Initial learning rate, a finite number > 0 (cosine decay "
                   "to 0 over the run).")
flags.DEFINE_enum("lr_scaling", _DEFAULTS.lr_scaling, LR_SCALING,
                  "linear: the peak learning rate is --learning_rate * "
                  "--batch_size / --lr_reference_batch (Goyal et al. 2017's "
                  "rule for large global batches).")
flags.DEFINE_integer("lr_reference_batch", _DEFAULTS.lr_reference_batch,
                     "With --lr_scaling=linear: the global batch size "
                     "--learning_rate was tuned for.", lower_bound=1)
flags.DEFINE_integer("warmup_epochs", _DEFAULTS.warmup_epochs,
                     "Epochs of linear learning-rate warm-up before the "
                     "cosine decay: from --learning_rate to the scaled rate "
                     "with --lr_scaling=linear (Goyal et al. use 5), from 0 "
                     "otherwise.", lower_bound=0)
flags.DEFINE_float("l2", _DEFAULTS.l2,
                   "L2 penalty coefficient on every kernel (weight decay "
                   "through the loss); 0 for none.", lower_bound=0.0)
flags.DEFINE_enum("optimizer", _DEFAULTS.optimizer, OPTIMIZERS,
                  "adam, sgd, or momentum (SGD with momentum 0.9).")
flags.DEFINE_string("weights_format", _DEFAULTS.weights_format,
                    "'float', or 'fixed<word_bits>:<frac_bits>' (e.g. "
                    "fixed16:14) to store the weights in fixed point after "
                    "every update (Gupta et al. 2015).")
flags.DEFINE_enum("rounding", _DEFAULTS.rounding, ROUNDINGS,
                  "Rounding onto the --weights_format grid.")
flags.DEFINE_enum("eval_tta", _DEFAULTS.eval_tta, TTA_VIEWS,
                  "Also report test accuracy with class scores averaged over "
                  "test-time views (keras_cnnpractice.tta).")
flags.DEFINE_string("init_from", _DEFAULTS.init_from,
                    "Start from a pretrained network: a .keras file, a "
                    "train.py model_dir (its newest checkpoint) or one of "
                    "its epoch-N.weights.h5 checkpoints.")
flags.DEFINE_enum("transfer", _DEFAULTS.transfer, TRANSFER_MODES,
                  "With --init_from: 'finetune' (pretrained layers at 0.01x "
                  "and the new head at 0.1x the learning rate), "
                  "'multistage' (the new head alone first, until its loss "
                  "plateaus, then finetune), or 'features' (a linear "
                  "classifier on cached features of the frozen network).")
flags.DEFINE_integer("new_head_classes", None,
                     "With --init_from: replace the classifier by a new one "
                     "with this many classes (default: only when the data "
                     "has another number of classes).", lower_bound=2)
flags.DEFINE_string("feature_layer", _DEFAULTS.feature_layer,
                    "With --transfer=features: the layer whose activations "
                    "are the features (default: the one before the "
                    "classifier).")
flags.DEFINE_bool("sanity_checks", _DEFAULTS.sanity_checks,
                  "Before training: compare the initial loss with ln(classes) "
                  "and check that the model can overfit 20 examples.")
flags.DEFINE_string("model_dir", _DEFAULTS.model_dir,
                    "Checkpoints, TensorBoard logs and flags.json go here.")
flags.DEFINE_string("export_dir", None,
                    "SavedModel destination (default: MODEL_DIR/export).")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Random seed.")
flags.DEFINE_float("cluster_timeout_s", _DEFAULTS.cluster_timeout_s,
                   "multi_worker_mirrored and parameter_server: seconds to "
                   "wait for every task of the TF_CONFIG cluster to come up "
                   "before failing with an error naming the missing ones.",
                   lower_bound=0.001)


def check_learning_rate(value):
    """Raises `ValueError` unless `value` is a finite number > 0 (NaN and
    infinity would train on garbage; 0 or less would not train at all)."""
    if not (value is not None and math.isfinite(value) and value > 0):
        raise ValueError(f"learning_rate must be a finite number > 0. "
                         f"Received: learning_rate={value}")


def check_output_dir(path, flag):
    """Raises `ValueError` unless `path` is, or can be made, a writable
    directory: checked before training, so that nothing is trained for a
    destination that cannot be written."""
    if not path:
        return
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"--{flag} must be a directory, but {probe} is a "
                         f"file. Received: {flag}={path!r}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"--{flag}: {probe} is not writable. Received: "
                         f"{flag}={path!r}")


def check_init_from(path):
    """Raises `ValueError` unless `path` (when given) exists."""
    if path and not os.path.exists(path):
        raise ValueError(f"--init_from: no such file or directory. "
                         f"Received: init_from={path!r}")


def _validator(name, check):
    @flags.validator(name)
    def validate(value):
        try:
            check(value)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from err
        return True


_validator("dataset", parse_dataset_spec)
_validator("classes", parse_classes)
_validator("weights_format", parse_weights_format)
_validator("learning_rate", check_learning_rate)
_validator("model_dir", lambda path: check_output_dir(path, "model_dir"))
_validator("export_dir", lambda path: check_output_dir(path, "export_dir"))
_validator("init_from", check_init_from)


@flags.multi_flags_validator(
    ["new_head_classes", "init_from"],
    message="--new_head_classes replaces the classifier of a pretrained "
            "network: it needs --init_from")
def _check_new_head(values):
    return values["new_head_classes"] is None or bool(values["init_from"])


@flags.validator("data_service")
def _check_data_service(value):
    if value:
        try:
            parse_address(value)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from None
    return True


@flags.validator("cache")
def _check_cache(value):
    return value in ("", "memory") or not value.isspace()


def config_from_flags():
    """The `TrainConfig` the parsed flags describe."""
    values = flags.FLAGS
    return TrainConfig(**{f.name: values[f.name].value
                          for f in TrainConfig.__dataclass_fields__.values()})
