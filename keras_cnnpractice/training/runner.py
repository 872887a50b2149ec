"""What `kcp-train` runs: config -> strategy -> data -> model -> fit ->
export, with Keras `fit`; `--strategy=parameter_server` goes to
`ps_loop.train` instead. The stages before fitting are `prepare`'s."""

import contextlib
import pathlib
import shutil
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice import data
from keras_cnnpractice import tta
from keras_cnnpractice.data.pipeline import strategy_workers
from keras_cnnpractice.training import ps_loop
from keras_cnnpractice.training import transfer_run
from keras_cnnpractice.training.checkpoints import EpochCheckpoint
from keras_cnnpractice.training.checkpoints import newest_good_checkpoint
from keras_cnnpractice.training.checkpoints import restore_latest
from keras_cnnpractice.training.config import save_flags
from keras_cnnpractice.training.curves import plot_training_curves
from keras_cnnpractice.training.explosion_guard import ExplosionGuard
from keras_cnnpractice.training.export import export_and_check
from keras_cnnpractice.training.fixed_point_weights import store_weights_in_fixed_point
from keras_cnnpractice.training.prepare import make_optimizer
from keras_cnnpractice.training.prepare import model_and_optimizer
from keras_cnnpractice.training.prepare import prepare_run
from keras_cnnpractice.training.result import RunResult
from keras_cnnpractice.training.sanity import check_initial_loss
from keras_cnnpractice.training.sanity import overfit_tiny
from keras_cnnpractice.training.timing import EpochTimer

# Test images a file-based dataset loads into memory for test-time
# averaging (in-memory datasets use all of theirs).
TTA_IMAGES = 10000


def _tta_accuracy(model, images, labels, policy):
    """Test accuracy with class scores averaged over `policy`'s views.

    The views keep the model's input size: "ten_crop" crops it from the
    images enlarged by 256/224 (AlexNet's 256 -> 224), "multi_scale" from
    the short side resized to ResNet's scales times size/224.
    """
    size = images.shape[1]
    kwargs = {}
    if policy == "ten_crop":
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
    initial = check_initial_loss(model, train_ds)
    print(f"Sanity check, initial loss: {initial.message}", flush=True)
    overfit = overfit_tiny(model, train_ds, n=20)
    print(f"Sanity check, overfitting 20 examples: {overfit.message}",
          flush=True)
    return {"initial_loss": initial.data_loss, "expected": initial.expected,
            "regularization_loss": initial.regularization_loss,
            "initial_loss_ok": initial.ok, "overfit_accuracy":
            overfit.final_accuracy, "overfit_epochs": overfit.epochs_run,
            "overfit_ok": overfit.ok}


def _compiled_model(config, run, model_dir):
    """The run's model, built and compiled in the strategy's scope: a new
    one, or a pretrained one set up for `config.transfer` (for "features",
    the frozen trunk and its trained linear classifier, the features cached
    in MODEL_DIR/features); then the newest checkpoint in
    MODEL_DIR/checkpoints, if any, restored.

    Returns:
        `(model, initial_epoch)`.
    """
    num_classes = run.source.num_classes
    transferring = bool(config.init_from)
    features_only = transferring and config.transfer == "features"
    checkpoint_dir = model_dir / "checkpoints"
    with run.strategy.scope():
        model, new_layers, optimizer = model_and_optimizer(
            config, run, l2=not features_only)
        if transferring:
            print(f"Transfer: {config.transfer} from {config.init_from}; "
                  f"new layers: {', '.join(new_layers) or 'none'}",
                  flush=True)
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
                    and not newest_good_checkpoint(
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
            fixed = store_weights_in_fixed_point(
                model, optimizer, config.weights_format, config.rounding)
            if fixed:
                print(f"Weights: {fixed} variables stored as "
                      f"{config.weights_format}, {config.rounding} rounding",
                      flush=True)
        initial_epoch = (0 if features_only else
                         restore_latest(model, checkpoint_dir))
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


def train(config):
    """Trains, evaluates and exports as `config` says.

    Under `multi_worker_mirrored` every worker runs this; only the chief
    writes to `config.model_dir` (see `output_dir`), and every worker
    resumes from the chief's checkpoints there, so MODEL_DIR must be on a
    filesystem all workers share. `parameter_server` runs
    `ps_loop.train` instead.

    Returns:
        The `RunResult` (also written to MODEL_DIR/result.json).
    """
    if config.strategy.strip().lower() == "parameter_server":
        return ps_loop.train(config)
    run = prepare_run(config, log=lambda line: print(line, flush=True))
    with output_dir(run.strategy, pathlib.Path(config.model_dir)) as out:
        return _train(config, run, out)


def _train(config, run, out):
    strategy, source = run.strategy, run.source
    train_ds, test_ds = run.train_ds, run.test_ds
    steps_per_epoch = run.steps_per_epoch

    model_dir = pathlib.Path(config.model_dir)
    save_flags(config, out)

    checkpoint_dir = model_dir / "checkpoints"
    model, initial_epoch = _compiled_model(config, run, model_dir)
    features_only = config.init_from and config.transfer == "features"
    if initial_epoch:
        print(f"Resuming from the checkpoint of epoch {initial_epoch} "
              f"in {checkpoint_dir}", flush=True)

    sanity = _sanity_checks(model, train_ds) if config.sanity_checks else None

    timer = EpochTimer()
    # Before the checkpoint callback, so that after an explosion it saves
    # the restored weights.
    guard = ExplosionGuard()
    if not features_only:  # (features: the classifier is trained already)
        model.fit(
            train_ds, epochs=config.epochs, initial_epoch=initial_epoch,
            steps_per_epoch=config.steps_per_epoch, validation_data=test_ds,
            # The dataset shuffles itself (Keras warns that shuffle=True,
            # its default, does not apply to a dataset).
            shuffle=False,
            # A progress bar on a terminal, one line per epoch in a log.
            verbose=1 if sys.stdout.isatty() else 2,
            callbacks=[guard, EpochCheckpoint(out / "checkpoints"),
                       timer,
                       # Per-epoch metrics, appended across resumed runs.
                       keras.callbacks.CSVLogger(str(out / "history.csv"),
                                                 append=True),
                       keras.callbacks.TensorBoard(str(out / "logs"))])
        if guard.exploded:
            print(f"Training stopped: {guard.message}", flush=True)
        plot_training_curves(out / "history.csv")
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
    result = RunResult(
        test_accuracy=float(accuracy), initial_epoch=initial_epoch,
        replicas=strategy.num_replicas_in_sync,
        workers=strategy_workers(strategy), precision=config.precision,
        epoch_seconds=timer.epoch_seconds,
        seconds_per_step=(epoch_seconds / steps_per_epoch
                          if epoch_seconds else None),
        export_dir=str(export_dir), export_max_abs_diff=max_diff,
        eval_tta=config.eval_tta, tta_accuracy=tta_accuracy,
        exploded=guard.reason, sanity_checks=sanity)
    result.write(out)
    return result
