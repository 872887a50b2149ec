"""What `train.py` runs: config -> strategy -> data -> model -> fit -> export."""

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import tempfile

from absl import logging

from keras_cnnpractice._files import write_text_atomic
from keras_cnnpractice.training.config import LR_SCALING
from keras_cnnpractice.training.config import OPTIMIZERS


def write_json_atomic(path, payload):
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_flags(config, out_dir):
    path = pathlib.Path(out_dir) / "flags.json"
    current = dataclasses.asdict(config)
    if path.exists():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in current if previous.get(k) != current[k])
        if changed:
            logging.warning("Flags differ from the run saved in %s: %s",
                            config.model_dir, ", ".join(changed))
    write_json_atomic(path, current)


def make_optimizer(name, learning_rate):
    import keras
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}. "
                     f"Received: optimizer={name!r}")


def _tta_accuracy(model, images, labels, policy):
    """Test accuracy with class scores averaged over `policy`'s views.

    The views keep the model's input size: "ten_crop" crops it from the
    images enlarged by 256/224 (AlexNet's 256 -> 224), "multi_scale" from
    the short side resized to ResNet's scales times size/224.
    """
    import numpy as np

    from keras_cnnpractice import tta
    size = images.shape[1]
    kwargs = {}
    if policy == "ten_crop":
        import tensorflow as tf
        big = round(size * 256 / 224)
        images = tf.image.resize(images, (big, big)).numpy()
        kwargs = {"size": size}
    elif policy == "multi_scale":
        kwargs = {"size": size, "scales": sorted(
            {max(size, round(size * s / 224)) for s in tta.DEFAULT_SCALES})}
    scores = tta.predict_tta(model, images, policy, **kwargs)
    return float(np.mean(np.argmax(scores, axis=-1) == labels))


def _sanity_checks(model, train_ds):
    """The initial-loss and overfit-20-examples checks, printed and returned
    for result.json; the model itself is left as it was."""
    from keras_cnnpractice import training
    initial = training.check_initial_loss(model, train_ds)
    print(f"Sanity check, initial loss: {initial.message}", flush=True)
    overfit = training.overfit_tiny(model, train_ds, n=20)
    print(f"Sanity check, overfitting 20 examples: {overfit.message}",
          flush=True)
    return {"initial_loss": initial.data_loss, "expected": initial.expected,
            "regularization_loss": initial.regularization_loss,
            "initial_loss_ok": initial.ok, "overfit_accuracy":
            overfit.final_accuracy, "overfit_epochs": overfit.epochs_run,
            "overfit_ok": overfit.ok}


# Test images a file-based dataset loads into memory for the export check
# and for test-time averaging (in-memory datasets use all of theirs).
EXPORT_CHECK_IMAGES = 256
TTA_IMAGES = 10000


@dataclasses.dataclass
class PreparedRun:
    """What `prepare_run` sets up: the strategy, the data (a
    `keras_cnnpractice.data.DataSource`), the augmentation layer, the
    training and test pipelines, and the learning-rate schedule."""

    strategy: object
    source: object
    augment: object
    train_ds: object
    test_ds: object
    steps_per_epoch: int
    learning_rate: object


def prepare_run(config, log=print):
    """Strategy, data and input pipelines as `train` uses them; writes
    nothing (the pipeline doctor times exactly this).

    Raises:
        ValueError: flags that do not combine, or data that cannot be
            opened.
    """
    from keras_cnnpractice.training.config import parse_weights_format
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
    if config.augment_in == "model" and config.init_from:
        raise ValueError("--augment_in=model does not combine with "
                         "--init_from (the pretrained model is used as it "
                         "is); augment in the data")
    _check_multi_worker(config)
    _check_lr_flags(config)
    # The strategy first: on a CPU it splits the device, which must happen
    # before anything else initializes the TensorFlow runtime.
    from keras_cnnpractice.strategies import get_strategy
    strategy = get_strategy(config.strategy, config.num_devices,
                            cluster_timeout_s=config.cluster_timeout_s)
    if model_parallel:
        from keras_cnnpractice.strategies import model_parallel as mp
        from keras_cnnpractice.strategies.factory import replica_devices
        mp.check_batch_size(config.batch_size,
                            len(replica_devices(config.num_devices)))

    import keras

    from keras_cnnpractice import data

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
    workers = _num_workers(strategy)
    train_ds = data.build_pipeline(
        source.train, config.batch_size, augment=augment, training=True,
        seed=config.seed, cache=config.cache or None,
        augment_in=config.augment_in, num_workers=workers)
    test_ds = data.build_pipeline(source.test, config.batch_size,
                                  training=False, num_workers=workers)
    steps_per_epoch = (config.steps_per_epoch
                       or -(-source.train_size // config.batch_size))
    learning_rate = learning_rate_schedule(config, steps_per_epoch)
    return PreparedRun(strategy, source, augment, train_ds, test_ds,
                       steps_per_epoch, learning_rate)


def _num_workers(strategy):
    """Worker processes of a multi-worker strategy (1 otherwise)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec() if resolver is not None else None
    if not spec or "worker" not in spec.jobs:
        return 1
    return spec.num_tasks("worker")




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
    _check_lr_flags(config)
    import keras
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


def _check_multi_worker(config):
    """Flags the multi-worker strategies do not take."""
    from keras_cnnpractice.strategies.factory import MULTI_WORKER_STRATEGIES
    strategy = config.strategy.strip().lower()
    if strategy not in MULTI_WORKER_STRATEGIES:
        return
    unsupported = [flag for flag, used in (
        ("--init_from", config.init_from),
        ("--sanity_checks", config.sanity_checks),
        ("--eval_tta", config.eval_tta != "none")) if used]
    if strategy == "parameter_server":
        from keras_cnnpractice.training.config import parse_weights_format
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


def open_source(config):
    """The `keras_cnnpractice.data.DataSource` of `config.dataset`."""
    from keras_cnnpractice import data
    return data.open_dataset(
        config.dataset, image_size=config.image_size, seed=config.seed,
        classes=data.parse_classes(config.classes),
        train_examples_per_class=config.train_examples_per_class)


def new_model(config, run):
    """The zoo's `config.model` for `run`'s data, its head split over the
    devices under `--strategy=model_parallel`, with the augmentation as its
    first layer under `--augment_in=model` (call in the strategy's scope)."""
    import keras

    from keras_cnnpractice import models
    source = run.source
    model = models.create_model(config.model, source.input_shape,
                                source.num_classes)
    if config.strategy.strip().lower() == "model_parallel":
        from keras_cnnpractice.strategies.model_parallel import split_model
        model = split_model(model, config.num_devices)
        print(f"Model parallel: the trunk data-parallel and the Dense layers "
              f"split column-wise over {len(model.get_layer('trunk').devices)}"
              " devices", flush=True)
    if run.train_ds.model_augmentation is None:
        return model
    inputs = keras.Input(source.input_shape)
    outputs = model(run.train_ds.model_augmentation(inputs))
    return keras.Model(inputs, outputs, name=model.name)


def _compiled_model(config, run, model_dir):
    """The run's model, built and compiled in the strategy's scope: a new
    one, or a pretrained one set up for `config.transfer` (for "features",
    the frozen trunk and its trained linear classifier, the features cached
    in MODEL_DIR/features); then the newest checkpoint in
    MODEL_DIR/checkpoints, if any, restored.

    Returns:
        `(model, initial_epoch)`.
    """
    from keras_cnnpractice import data, training
    from keras_cnnpractice.training import transfer_run
    num_classes = run.source.num_classes
    transferring = bool(config.init_from)
    features_only = transferring and config.transfer == "features"
    checkpoint_dir = model_dir / "checkpoints"
    with run.strategy.scope():
        if transferring:
            model, new_layers = transfer_run.pretrained_model(
                config.init_from, num_classes, config.new_head_classes)
            print(f"Transfer: {config.transfer} from {config.init_from}; "
                  f"new layers: {', '.join(new_layers) or 'none'}",
                  flush=True)
        else:
            model = new_model(config, run)
        if config.l2 and not features_only:
            training.add_l2(model, config.l2)
        optimizer = make_optimizer(config.optimizer, run.learning_rate)
        if features_only:
            model = transfer_run.fit_on_features(
                model, config.feature_layer,
                data.build_pipeline(run.source.train, config.batch_size,
                                    training=False),
                num_classes, model_dir / "features", config.epochs,
                config.learning_rate, config.l2)
            model.compile(loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
        elif transferring:
            if (config.transfer == "multistage"
                    and not training.newest_good_checkpoint(
                        checkpoint_dir, set_bad_aside=True)[1]):
                epochs = transfer_run.train_new_head(
                    model, new_layers,
                    make_optimizer(config.optimizer, config.learning_rate),
                    run.train_ds, run.steps_per_epoch)
                print(f"Stage 1: trained the new head alone for {epochs} "
                      "epochs", flush=True)
            transfer_run.compile_groups(model, new_layers, optimizer)
        else:
            model.compile(optimizer=optimizer,
                          loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            fixed = training.store_weights_in_fixed_point(
                model, optimizer, config.weights_format, config.rounding)
            if fixed:
                print(f"Weights: {fixed} variables stored as "
                      f"{config.weights_format}, {config.rounding} rounding",
                      flush=True)
        initial_epoch = (0 if features_only else
                         training.restore_latest(model, checkpoint_dir))
    return model, initial_epoch


@contextlib.contextmanager
def output_dir(strategy, model_dir):
    """Where this process writes the run's files: `model_dir`, except on a
    worker other than the chief of a multi-worker strategy, which writes
    the same files (every worker must run the same steps, collectives
    included) to a temporary folder, removed afterwards: the usual Keras
    pattern for `MultiWorkerMirroredStrategy`."""
    if strategy.extended.should_checkpoint:
        model_dir.mkdir(parents=True, exist_ok=True)
        yield model_dir
        return
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="kcp-worker-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def export_and_check(model, export_dir, source):
    """Exports `model`'s inference SavedModel to `export_dir` and reloads
    it.

    Returns:
        `(export path, max abs difference between the served and the
        model's class probabilities on test images)`.
    """
    import numpy as np
    import tensorflow as tf

    from keras_cnnpractice import training
    export_dir = training.export_saved_model(model, export_dir)
    x_check, _ = source.test_arrays(
        EXPORT_CHECK_IMAGES if source.file_based else None)
    images = x_check.astype(np.float32)
    reloaded = tf.saved_model.load(str(export_dir))
    served = reloaded.serve(tf.constant(images)).numpy()
    max_diff = float(np.max(np.abs(served - model.predict(images, verbose=0))))
    print(f"Exported SavedModel to {export_dir} (max abs difference from the "
          f"trained model: {max_diff:.2e})", flush=True)
    return export_dir, max_diff


def train(config):
    """Trains, evaluates and exports as `config` says.

    Under `multi_worker_mirrored` every worker runs this; only the chief
    writes to `config.model_dir` (see `output_dir`), and every worker
    resumes from the chief's checkpoints there, so MODEL_DIR must be on a
    filesystem all workers share. `parameter_server` runs
    `keras_cnnpractice.training.ps_loop.train` instead.

    Returns:
        A dict with `test_accuracy`, `initial_epoch`, `replicas`,
        `workers`, `precision`, `epoch_seconds`, `seconds_per_step` (the
        median epoch after the first, validation included, over its
        steps), `export_dir`, `export_max_abs_diff`, `eval_tta`,
        `tta_accuracy` (None without test-time averaging), `exploded` (why
        the `ExplosionGuard` stopped the run, or None) and `sanity_checks`
        (None without `--sanity_checks`).
    """
    if config.strategy.strip().lower() == "parameter_server":
        from keras_cnnpractice.training import ps_loop
        return ps_loop.train(config)
    run = prepare_run(config, log=lambda line: print(line, flush=True))
    with output_dir(run.strategy, pathlib.Path(config.model_dir)) as out:
        return _train(config, run, out)


def _train(config, run, out):
    strategy, source = run.strategy, run.source
    train_ds, test_ds = run.train_ds, run.test_ds
    steps_per_epoch = run.steps_per_epoch

    import keras
    import numpy as np

    from keras_cnnpractice import training

    model_dir = pathlib.Path(config.model_dir)
    save_flags(config, out)

    checkpoint_dir = model_dir / "checkpoints"
    model, initial_epoch = _compiled_model(config, run, model_dir)
    features_only = config.init_from and config.transfer == "features"
    if initial_epoch:
        print(f"Resuming from the checkpoint of epoch {initial_epoch} "
              f"in {checkpoint_dir}", flush=True)

    sanity = _sanity_checks(model, train_ds) if config.sanity_checks else None

    timer = training.EpochTimer()
    # Before the checkpoint callback, so that after an explosion it saves
    # the restored weights.
    guard = training.ExplosionGuard()
    if not features_only:  # (features: the classifier is trained already)
        model.fit(
            train_ds, epochs=config.epochs, initial_epoch=initial_epoch,
            steps_per_epoch=config.steps_per_epoch, validation_data=test_ds,
            # The dataset shuffles itself (Keras warns that shuffle=True,
            # its default, does not apply to a dataset).
            shuffle=False,
            # A progress bar on a terminal, one line per epoch in a log.
            verbose=1 if sys.stdout.isatty() else 2,
            callbacks=[guard, training.EpochCheckpoint(out / "checkpoints"),
                       timer,
                       # Per-epoch metrics, appended across resumed runs.
                       keras.callbacks.CSVLogger(str(out / "history.csv"),
                                                 append=True),
                       keras.callbacks.TensorBoard(str(out / "logs"))])
        if guard.exploded:
            print(f"Training stopped: {guard.message}", flush=True)
        training.plot_training_curves(out / "history.csv")
    epoch_seconds = timer.steady_epoch_seconds()

    _, accuracy = model.evaluate(test_ds, verbose=0)
    print(f"Test accuracy: {accuracy:.4f} on {source.test_size} held-out "
          f"images", flush=True)
    tta_accuracy = None
    if config.eval_tta != "none":
        x_test, y_test = source.test_arrays(
            TTA_IMAGES if source.file_based else None)
        tta_accuracy = _tta_accuracy(model, x_test.astype(np.float32), y_test,
                                     config.eval_tta)
        print(f"Test accuracy: {accuracy:.4f} plain, {tta_accuracy:.4f} with "
              f"{config.eval_tta} test-time averaging (on {len(x_test)} "
              f"images)", flush=True)

    export_dir, max_diff = export_and_check(
        model, config.resolved_export_dir() if out == model_dir
        else out / "export", source)
    result = {"test_accuracy": float(accuracy), "initial_epoch": initial_epoch,
              "replicas": strategy.num_replicas_in_sync,
              "workers": _num_workers(strategy),
              "precision": config.precision,
              "epoch_seconds": timer.epoch_seconds,
              "seconds_per_step": (epoch_seconds / steps_per_epoch
                                   if epoch_seconds else None),
              "export_dir": str(export_dir), "export_max_abs_diff": max_diff,
              "eval_tta": config.eval_tta, "tta_accuracy": tta_accuracy,
              "exploded": guard.reason, "sanity_checks": sanity}
    write_json_atomic(out / "result.json", result)
    return result
