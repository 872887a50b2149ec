"""Asynchronous data-parallel training of Keras 3 models with parameter
servers (`train.py --strategy=parameter_server`).

Keras 3's `model.fit` does not support `ParameterServerStrategy`
(keras-team/keras#18624), so this is the training loop of TensorFlow's
parameter-server guide, for the models of `train.py`:

* the model, its optimizer and the run's counters are built in the
  strategy's scope, so their variables live on the parameter servers
  (Dean et al., 2012, "Large Scale Distributed Deep Networks"; Li et al.,
  2014, "Scaling Distributed Machine Learning with the Parameter Server");
* every worker reads its own input pipeline
  (`ClusterCoordinator.create_per_worker_dataset`), its share of the
  training set (split by its index); with `--data_service` the
  coordinator registers its pipeline with the tf.data service and the
  workers read it as one shared job, which the service splits among them;
* the coordinator (the chief) schedules one `tf.function` step at a time
  with `ClusterCoordinator.schedule`; each worker fetches the variables,
  computes its gradients and applies them on the parameter servers without
  waiting for the others (asynchronous SGD, with stale gradients);
* after an epoch of steps `ClusterCoordinator.join()` waits for them all;
  the coordinator then reads the epoch's loss and accuracy (summed into
  counters on the parameter servers with atomic adds), evaluates the model
  on the test set itself, and saves a `tf.train.Checkpoint` of model,
  optimizer, step and epoch counters (`tf.train.CheckpointManager`, newest
  three kept, restored with the rules of `checkpoints.restore_newest_good`);
  the epoch's metrics go to Keras's `CSVLogger` (MODEL_DIR/history.csv) and
  `TensorBoard` (MODEL_DIR/logs) callbacks, as in a `fit` run;
* a restarted job resumes from the newest checkpoint; a worker that dies
  mid-epoch has its steps rescheduled on the others by the coordinator
  (at least once: a step it had applied but not yet reported runs again,
  and the step counter counts the steps run);
* at the end the coordinator copies the weights into a model of its own
  and exports that as a SavedModel, as `train.py` does.

Worker and parameter-server tasks run `train.py` too: they only serve
(`keras_cnnpractice.strategies.cluster.run_server`) until they are killed.
"""

import math
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice import data
from keras_cnnpractice.data.pipeline import SHUFFLE_BUFFER_BYTES
from keras_cnnpractice.strategies import cluster
from keras_cnnpractice.training.checkpoints import nonfinite_variables
from keras_cnnpractice.training.checkpoints import restore_newest_good
from keras_cnnpractice.training.config import save_flags
from keras_cnnpractice.training.curves import plot_training_curves
from keras_cnnpractice.training.export import export_and_check
from keras_cnnpractice.training.prepare import model_and_optimizer
from keras_cnnpractice.training.prepare import new_model
from keras_cnnpractice.training.prepare import open_source
from keras_cnnpractice.training.prepare import prepare_run
from keras_cnnpractice.training.result import RunResult

def _evaluate(model, test_ds):
    """Test loss and accuracy, computed by the coordinator (it reads the
    variables from the parameter servers)."""
    @tf.function
    def batch_sums(images, labels):
        probs = tf.cast(model(images, training=False), tf.float32)
        loss = keras.losses.sparse_categorical_crossentropy(labels, probs)
        correct = tf.equal(tf.argmax(probs, -1, output_type=tf.int32), labels)
        return tf.reduce_sum(loss), tf.reduce_sum(tf.cast(correct, tf.float32))

    loss = correct = count = 0.0
    for images, labels in test_ds:
        batch_loss, batch_correct = batch_sums(images, labels)
        loss += float(batch_loss)
        correct += float(batch_correct)
        count += int(labels.shape[0])
    return loss / count, correct / count


def _build(config, run):
    """Model, optimizer and counters in the strategy's scope (on the
    parameter servers), and the checkpoint that holds them."""
    with run.strategy.scope():
        model, _, optimizer = model_and_optimizer(config, run)
        # This loop never calls `fit`; compiled for the Keras callbacks,
        # which read `model.optimizer` (TensorBoard logs its rate).
        model.compile(optimizer=optimizer)
        optimizer.build(model.trainable_variables)
        # Raw TensorFlow variables: their assign_add is one atomic op on
        # the parameter server, where Keras's variables read, add and
        # write, and lose updates when workers race.
        step = tf.Variable(0, dtype=tf.int64, name="step")
        epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        # Summed over the epoch: loss * examples, correct, examples.
        totals = tf.Variable(tf.zeros(3, tf.float64), name="totals")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     step=step, epoch=epoch)
    return model, optimizer, step, epoch, totals, checkpoint


def _train_step(strategy, model, optimizer, step, totals):
    """The step the coordinator schedules on a worker: one batch of the
    worker's iterator, its gradients applied on the parameter servers."""
    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            probs = model(images, training=True)
            losses = keras.losses.sparse_categorical_crossentropy(
                labels, tf.cast(probs, tf.float32))
            loss = tf.reduce_mean(losses)
            if model.losses:
                loss += tf.cast(tf.add_n(model.losses), tf.float32)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        correct = tf.equal(tf.argmax(probs, -1, output_type=tf.int32), labels)
        count = tf.cast(tf.size(labels), tf.float64)
        totals.assign_add(tf.stack([
            tf.cast(tf.reduce_sum(losses), tf.float64),
            tf.reduce_sum(tf.cast(correct, tf.float64)), count]))
        step.assign_add(1)

    @tf.function
    def train_step(iterator):
        images, labels = next(iterator)
        strategy.run(replica_step, args=(images, labels))

    return train_step


def _dataset_fn(config, run, workers):
    """The function each worker builds its endless input pipeline with
    (traced once on the coordinator, run on every worker)."""
    if run.data_service is not None:
        # The coordinator's pipeline (a dataset function cannot reach the
        # coordinator's resources, such as the augmentation's seed),
        # registered with the service; the workers read it by id, as one
        # job that the service splits among them.
        dataset_id = run.data_service.register(run.train_ds)
        spec = run.train_ds.element_spec
        return lambda _: run.data_service.read(dataset_id, spec).repeat()
    source = run.source
    # The whole shard in the shuffle buffer, up to build_pipeline's limit
    # (its size is unknown to tf.data: the worker's index is a tensor).
    shuffle_buffer = min(-(-source.train_size // workers), max(
        1, SHUFFLE_BUFFER_BYTES // math.prod(source.input_shape)))

    def dataset_fn(_):
        # The source is opened in the trace (the coordinator's datasets
        # cannot be used on the workers) and split by the worker's index.
        worker = tf.distribute.coordinator.experimental_get_current_worker_index()
        examples = open_source(config).train
        examples = examples.dataset if source.file_based else \
            tf.data.Dataset.from_tensor_slices(examples)
        return data.build_pipeline(
            examples.shard(workers, worker), config.batch_size,
            augment=run.augment, training=True, seed=config.seed,
            options=data.PipelineOptions(
                cache=config.cache or None, augment_in=config.augment_in,
                shuffle_buffer=shuffle_buffer, shard_policy="off")).repeat()

    return dataset_fn


def train(config):
    """`train.py --strategy=parameter_server`: serves, if this task of
    `TF_CONFIG` is a worker or parameter server (until killed); trains,
    evaluates, checkpoints and exports, if it is the chief.

    Returns:
        On the chief, the `RunResult` (with `steps`, the global step count
        at the end, and `parameter_servers`); nothing on the servers.
    """
    task = cluster.read_tf_config("parameter_server")
    if task.task_type in ("worker", "ps"):
        cluster.run_server(task)
        return None
    run = prepare_run(config, log=lambda line: print(line, flush=True))
    strategy, source = run.strategy, run.source
    model_dir = pathlib.Path(config.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    save_flags(config, model_dir)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    workers = task.num_tasks("worker")
    print(f"Coordinator: {workers} workers, {task.num_tasks('ps')} "
          "parameter servers", flush=True)

    model, optimizer, step, epoch, totals, checkpoint = _build(config, run)
    manager = tf.train.CheckpointManager(checkpoint, model_dir / "checkpoints",
                                         max_to_keep=3)
    if restore_newest_good(checkpoint, manager, model, optimizer):
        print(f"Resuming from the checkpoint of epoch {int(epoch)} (step "
              f"{int(step)}) in {model_dir / 'checkpoints'}", flush=True)
    initial_epoch = int(epoch)

    dataset_fn = _dataset_fn(config, run, workers)
    per_worker = coordinator.create_per_worker_dataset(
        lambda: strategy.distribute_datasets_from_function(dataset_fn))
    iterator = iter(per_worker)
    train_step = _train_step(strategy, model, optimizer, step, totals)

    epoch_seconds, exploded = [], None
    history = model_dir / "history.csv"
    # The callbacks of a `fit` run, driven by this loop (epoch hooks only).
    callbacks = keras.callbacks.CallbackList(
        [keras.callbacks.CSVLogger(str(history), append=True),
         keras.callbacks.TensorBoard(str(model_dir / "logs"))], model=model)
    callbacks.on_train_begin()
    for done in range(initial_epoch, config.epochs):
        callbacks.on_epoch_begin(done)
        start = time.perf_counter()
        totals.assign(tf.zeros(3, tf.float64))
        for _ in range(run.steps_per_epoch):
            coordinator.schedule(train_step, args=(iterator,))
        coordinator.join()
        # Keras's optimizer counts its steps with a read-add-write that
        # racing workers undercount; the atomic count is the true one (for
        # the learning-rate schedule and Adam's bias correction).
        optimizer.iterations.assign(step.read_value())
        loss_sum, correct, count = totals.numpy()
        val_loss, val_accuracy = _evaluate(model, run.test_ds)
        epoch.assign(done + 1)
        nonfinite = nonfinite_variables(model, optimizer)
        if nonfinite:  # never a resume point
            print(f"Epoch {done + 1} not checkpointed: non-finite values in "
                  f"{', '.join(nonfinite[:3])}", flush=True)
        else:
            manager.save(checkpoint_number=done + 1)
        epoch_seconds.append(time.perf_counter() - start)
        logs = {"accuracy": correct / count, "loss": loss_sum / count,
                "val_accuracy": val_accuracy, "val_loss": val_loss}
        callbacks.on_epoch_end(done, logs)
        print(f"Epoch {done + 1}/{config.epochs}: loss {logs['loss']:.4f}, "
              f"accuracy {logs['accuracy']:.4f}, val_loss {val_loss:.4f}, "
              f"val_accuracy {val_accuracy:.4f}, step {int(step)} "
              f"({epoch_seconds[-1]:.1f} s)", flush=True)
        if not math.isfinite(logs["loss"]):
            exploded = f"loss is {logs['loss']} in epoch {done + 1}"
            print(f"Training stopped: {exploded}", flush=True)
            break
    callbacks.on_train_end()
    if history.exists():
        plot_training_curves(history)

    _, accuracy = _evaluate(model, run.test_ds)
    print(f"Test accuracy: {accuracy:.4f} on {source.test_size} held-out "
          f"images", flush=True)
    # The export: a copy of the model on the coordinator, outside the
    # strategy, so the SavedModel holds plain variables.
    local = new_model(config, run)
    local.set_weights(model.get_weights())
    export_dir, max_diff = export_and_check(
        local, config.resolved_export_dir(), source)
    steady = epoch_seconds[1:] or epoch_seconds
    result = RunResult(
        test_accuracy=float(accuracy), initial_epoch=initial_epoch,
        replicas=strategy.num_replicas_in_sync, workers=workers,
        parameter_servers=task.num_tasks("ps"), steps=int(step),
        precision=config.precision, epoch_seconds=epoch_seconds,
        seconds_per_step=(float(np.median(steady)) / run.steps_per_epoch
                          if steady else None),
        export_dir=str(export_dir), export_max_abs_diff=max_diff,
        eval_tta=config.eval_tta, exploded=exploded)
    result.write(model_dir)
    return result
