"""The stages of a run before fitting: the strategy, the data and its
input pipelines, the learning-rate schedule, the model and its optimizer.
`runner.train` (Keras `fit`), `ps_loop.train` (parameter servers) and the
pipeline doctor build their runs from these."""

import dataclasses
import hashlib
import json
import os

import keras

from keras_cnnpractice import data
from keras_cnnpractice import models
from keras_cnnpractice.data.pipeline import strategy_workers
from keras_cnnpractice.data.service import DataService
from keras_cnnpractice.strategies import model_parallel
from keras_cnnpractice.strategies.factory import get_strategy
from keras_cnnpractice.strategies.factory import replica_devices
from keras_cnnpractice.training.config import OPTIMIZERS
from keras_cnnpractice.training.config import check_config
from keras_cnnpractice.training.regularization import add_l2
from keras_cnnpractice.training.transfer_run import pretrained_model


@dataclasses.dataclass
class PreparedRun:
    """What `prepare_run` sets up: the strategy, the data (a
    `keras_cnnpractice.data.DataSource`), the augmentation layer, the
    training and test pipelines, the learning-rate schedule, and the
    `DataService` the training pipeline reads from (None without one)."""

    strategy: object
    source: object
    augment: object
    train_ds: object
    test_ds: object
    steps_per_epoch: int
    learning_rate: object
    data_service: object = None


def prepare_run(config, log=print):
    """Strategy, data and input pipelines as `train` uses them; writes
    nothing (the pipeline doctor times exactly this).

    Raises:
        ValueError: flags that do not combine, or data that cannot be
            opened.
    """
    check_config(config)
    # The strategy first: on a CPU it splits the device, which must happen
    # before anything else initializes the TensorFlow runtime.
    strategy = get_strategy(config.strategy, config.num_devices,
                            cluster_timeout_s=config.cluster_timeout_s)
    if config.strategy.strip().lower() == "model_parallel":
        model_parallel.check_batch_size(config.batch_size,
                            len(replica_devices(config.num_devices)))

    log(f"Strategy: {type(strategy).__name__}, "
        f"{strategy.num_replicas_in_sync} replicas in sync")
    keras.utils.set_random_seed(config.seed)
    source = open_source(config)
    log(f"Data: {config.dataset}, {source.num_classes} classes, "
        f"{source.train_size} training and {source.test_size} test images")
    # The input pipeline stays float32 whatever the model's precision. In
    # the tf.data map the compiled CPU op augments; in the model, the XLA
    # path (it compiles with the model and runs on its device).
    augment = data.augmentation_policy(
        config.augment, seed=config.seed, input_shape=source.input_shape,
        implementation="op" if config.augment_in == "data" else "xla")
    # Every layer built from here on computes in the policy's dtype and
    # keeps its variables in float32 (mixed_*) or the dtype itself;
    # compile() adds dynamic loss scaling for mixed_float16.
    keras.config.set_dtype_policy(config.precision)
    log(f"Precision: {config.precision}")
    # Under multi_worker_mirrored every worker reads the source: files
    # split by file when there are enough of them (FILE), anything else by
    # example (DATA), per `choose_shard_policy`.
    workers = strategy_workers(strategy)
    train_ds, service = train_pipeline(config, source, augment, workers)
    if service is not None:
        log(f"Data service: {config.data_service}, "
            f"{config.data_service_sharding} sharding")
    test_ds = data.build_pipeline(
        source.test, config.batch_size, training=False,
        options=data.PipelineOptions(num_workers=workers))
    steps_per_epoch = (config.steps_per_epoch
                       or -(-source.train_size // config.batch_size))
    learning_rate = learning_rate_schedule(config, steps_per_epoch)
    return PreparedRun(strategy, source, augment, train_ds, test_ds,
                       steps_per_epoch, learning_rate, service)


def train_pipeline(config, source, augment, num_workers):
    """The training pipeline of `config` on `source` (a `DataSource`),
    read by `num_workers` workers, and the `DataService` it reads from
    (None without `--data_service`).

    Under `--strategy=parameter_server` the pipeline is returned as it is
    and the loop registers it with the service itself: its workers read
    the job by id (`ps_loop`)."""
    service = None
    if config.data_service:
        service = DataService(
            config.data_service, config.data_service_sharding,
            job_name=_service_job_name(config),
            timeout_s=config.cluster_timeout_s)
    parameter_server = config.strategy.strip().lower() == "parameter_server"
    train_ds = data.build_pipeline(
        source.train, config.batch_size, augment=augment, training=True,
        seed=config.seed, options=data.PipelineOptions(
            cache=config.cache or None, augment_in=config.augment_in,
            num_workers=num_workers,
            data_service=None if parameter_server else service))
    return train_ds, service


def _service_job_name(config):
    """The tf.data service job the workers of one multi-worker or
    parameter-server run share (so that, with dynamic sharding, each
    example reaches one of them once per epoch): named after the cluster
    (a new launch has new addresses) and the model folder. None otherwise:
    a job of one's own."""
    if config.strategy.strip().lower() not in ("multi_worker_mirrored",
                                               "parameter_server"):
        return None
    cluster_spec = json.loads(os.environ.get("TF_CONFIG", "{}")).get(
        "cluster", {})
    key = json.dumps([cluster_spec, os.path.abspath(config.model_dir)],
                     sort_keys=True)
    return "kcp-train-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def learning_rate_schedule(config, steps_per_epoch):
    """The run's learning rate per optimizer step.

    Cosine decay to zero over the whole run settles the final epochs; the
    optimizer's step counter is checkpointed, so a resumed run continues
    the same schedule. With `--lr_scaling=linear` (Goyal et al., 2017,
    "Accurate, Large Minibatch SGD") the peak rate is `--learning_rate *
    --batch_size / --lr_reference_batch`, `--learning_rate` being the rate
    tuned for a global batch of `--lr_reference_batch`; `--warmup_epochs`
    of linear warm-up then climb from `--learning_rate` to that peak (from
    0 without scaling) before the decay starts.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    Raises:
        ValueError: an unknown scaling, a reference batch < 1, or a
            warm-up not shorter than the run.
    """
    check_config(config)
    peak = config.learning_rate
    if config.lr_scaling == "linear":
        peak *= config.batch_size / config.lr_reference_batch
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=total)
    start = config.learning_rate if config.lr_scaling == "linear" else 0.0
    return keras.optimizers.schedules.CosineDecay(
        start, decay_steps=total - warmup, warmup_target=peak,
        warmup_steps=warmup)


def open_source(config):
    """The `keras_cnnpractice.data.DataSource` of `config.dataset`."""
    return data.open_dataset(
        config.dataset, image_size=config.image_size, seed=config.seed,
        classes=data.parse_classes(config.classes),
        train_examples_per_class=config.train_examples_per_class)


def new_model(config, run):
    """The zoo's `config.model` for `run`'s data, its head split over the
    devices under `--strategy=model_parallel`, with the augmentation as its
    first layer under `--augment_in=model` (call in the strategy's scope)."""

    source = run.source
    model = models.create_model(config.model, source.input_shape,
                                source.num_classes)
    if config.strategy.strip().lower() == "model_parallel":
        model = model_parallel.split_model(model, config.num_devices)
        print(f"Model parallel: the trunk data-parallel and the Dense layers "
              f"split column-wise over {len(model.get_layer('trunk').devices)}"
              " devices", flush=True)
    if config.augment_in != "model" or run.augment is None:
        return model
    inputs = keras.Input(source.input_shape)
    outputs = model(run.augment(inputs))
    return keras.Model(inputs, outputs, name=model.name)


def model_and_optimizer(config, run, l2=True):
    """The run's model and a new optimizer (call in the strategy's scope).

    The model is the pretrained network set up for transfer
    (`--init_from`, `transfer_run.pretrained_model`) or a new one
    (`new_model`), with the L2 penalty of `--l2` on its kernels unless `l2`
    is False; the optimizer is `--optimizer` on the run's learning rate.

    Returns:
        `(model, new_layers, optimizer)`; `new_layers` names the layers a
        transferred model starts from scratch (empty for a new model).
    """
    new_layers = []
    if config.init_from:
        model, new_layers = pretrained_model(
            config.init_from, run.source.num_classes, config.new_head_classes)
    else:
        model = new_model(config, run)
    if l2 and config.l2:
        add_l2(model, config.l2)
    return model, new_layers, make_optimizer(config.optimizer,
                                             run.learning_rate)


def make_optimizer(name, learning_rate):
    """A new Keras optimizer: `"adam"`, `"sgd"` or `"momentum"` (SGD with
    momentum 0.9), on `learning_rate` (a number or a schedule)."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}. "
                     f"Received: optimizer={name!r}")
