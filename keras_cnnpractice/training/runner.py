"""What `train.py` runs: config -> strategy -> data -> model -> fit -> export."""

import dataclasses
import json
import os
import pathlib
from typing import Optional

from absl import logging

from keras_cnnpractice._files import write_text_atomic


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

    def resolved_export_dir(self):
        return self.export_dir or os.path.join(self.model_dir, "export")


def _write_json_atomic(path, payload):
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _save_flags(config):
    path = pathlib.Path(config.model_dir) / "flags.json"
    current = dataclasses.asdict(config)
    if path.exists():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in current if previous.get(k) != current[k])
        if changed:
            logging.warning("Flags differ from the run saved in %s: %s",
                            config.model_dir, ", ".join(changed))
    _write_json_atomic(path, current)


OPTIMIZERS = ("adam", "sgd", "momentum")


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
    from keras_cnnpractice.training.fixed_point_weights import parse_weights_format
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
    # The strategy first: on a CPU it splits the device, which must happen
    # before anything else initializes the TensorFlow runtime.
    from keras_cnnpractice.strategies import get_strategy
    strategy = get_strategy(config.strategy, config.num_devices)
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
    source = data.open_dataset(
        config.dataset, image_size=config.image_size, seed=config.seed,
        classes=data.parse_classes(config.classes),
        train_examples_per_class=config.train_examples_per_class)
    log(f"Data: {config.dataset}, {source.num_classes} classes, "
        f"{source.train_size} training and {source.test_size} test images")
    # The input pipeline stays float32 whatever the model's precision.
    augment = data.augmentation_policy(config.augment, seed=config.seed,
                                       input_shape=source.input_shape)
    # Every layer built from here on computes in the policy's dtype and
    # keeps its variables in float32 (mixed_*) or the dtype itself;
    # compile() adds dynamic loss scaling for mixed_float16.
    keras.config.set_dtype_policy(config.precision)
    log(f"Precision: {config.precision}")
    train_ds = data.build_pipeline(
        source.train, config.batch_size, augment=augment, training=True,
        seed=config.seed, cache=config.cache or None,
        augment_in=config.augment_in)
    test_ds = data.build_pipeline(source.test, config.batch_size,
                                  training=False)
    steps_per_epoch = (config.steps_per_epoch
                       or -(-source.train_size // config.batch_size))
    # Cosine decay to zero over the whole run settles the final epochs; the
    # optimizer's step counter is checkpointed, so a resumed run continues
    # the same schedule.
    learning_rate = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
    return PreparedRun(strategy, source, augment, train_ds, test_ds,
                       steps_per_epoch, learning_rate)


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
                    and not training.latest_checkpoint(checkpoint_dir)[1]):
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


def train(config):
    """Trains, evaluates and exports as `config` says.

    Returns:
        A dict with `test_accuracy`, `initial_epoch`, `replicas`,
        `precision`, `epoch_seconds`, `seconds_per_step` (the median epoch
        after the first, validation included, over its steps), `export_dir`,
        `export_max_abs_diff`, `eval_tta`, `tta_accuracy` (None without
        test-time averaging), `exploded` (why the `ExplosionGuard` stopped
        the run, or None) and `sanity_checks` (None without
        `--sanity_checks`).
    """
    run = prepare_run(config, log=lambda line: print(line, flush=True))
    strategy, source = run.strategy, run.source
    train_ds, test_ds = run.train_ds, run.test_ds
    steps_per_epoch = run.steps_per_epoch

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnnpractice import training

    model_dir = pathlib.Path(config.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    _save_flags(config)

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
            callbacks=[guard, training.EpochCheckpoint(checkpoint_dir), timer,
                       # Per-epoch metrics, appended across resumed runs.
                       keras.callbacks.CSVLogger(str(model_dir / "history.csv"),
                                                 append=True),
                       keras.callbacks.TensorBoard(str(model_dir / "logs"))])
        if guard.exploded:
            print(f"Training stopped: {guard.message}", flush=True)
        training.plot_training_curves(model_dir / "history.csv")
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

    export_dir = training.export_saved_model(model,
                                             config.resolved_export_dir())
    x_check, _ = source.test_arrays(
        EXPORT_CHECK_IMAGES if source.file_based else None)
    images = x_check.astype(np.float32)
    reloaded = tf.saved_model.load(str(export_dir))
    served = reloaded.serve(tf.constant(images)).numpy()
    max_diff = float(np.max(np.abs(served - model.predict(images, verbose=0))))
    print(f"Exported SavedModel to {export_dir} (max abs difference from the "
          f"trained model: {max_diff:.2e})", flush=True)
    result = {"test_accuracy": float(accuracy), "initial_epoch": initial_epoch,
              "replicas": strategy.num_replicas_in_sync,
              "precision": config.precision,
              "epoch_seconds": timer.epoch_seconds,
              "seconds_per_step": (epoch_seconds / steps_per_epoch
                                   if epoch_seconds else None),
              "export_dir": str(export_dir), "export_max_abs_diff": max_diff,
              "eval_tta": config.eval_tta, "tta_accuracy": tta_accuracy,
              "exploded": guard.reason, "sanity_checks": sanity}
    _write_json_atomic(model_dir / "result.json", result)
    return result
