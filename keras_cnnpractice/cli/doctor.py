"""Pipeline doctor: times each stage of a `train.py` configuration and says
which one bounds the training step, and what to do about it.

    kcp-doctor [train.py flags] [--steps N] [--json]
    kcp-doctor --dataset=folder:photos --augment=natural \\
        --model=resnet18 --batch_size=64

It takes every `train.py` flag (the same definitions) and sets up the run
as `train.py` would (strategy, data, pipeline, model; with --init_from the
pretrained network compiled plainly, without the transfer's per-group
learning rates, which do not change a step's cost), writing nothing to
--model_dir, then times,
over `--steps` batches each:

1. raw read: the training files' bytes read with `tf.io.read_file` in a
   parallel map (bytes/s, files/s; none for in-memory data). Files just
   read are usually in the page cache: this is the best case of the disk.
2. decode: the source's examples (read, decoded, resized), batched.
3. augmentation: the `--augment` policy on one batch, inside a
   `tf.function`.
4. input pipeline alone: what `model.fit` would iterate
   (`build_pipeline`), with no model.
5. training step on cached tensors: `fit` on one batch repeated (the
   input pipeline out of the way), the median of epochs 2 and 3 of three.
6. training with the real pipeline: `fit` on the real pipeline, likewise.

7. for an input-bound job (or when `--service_workers` asks): the input
   pipeline alone read through a tf.data service on loopback, with 1 and
   with `--service_workers` (default 2) local worker processes
   (`keras_cnnpractice.cli.processes.LocalDataService`), and the workers
   it would take, at one worker's rate, to feed the step.

The input-bound fraction is (6) / (5): how much slower the step is with
the real pipeline. At <= 1.05 the model bounds the step; above, the first
stage too slow for the step's appetite (images the step consumes per
second) is named, with the fix: pack the data (read or decode), move
augmentation onto the device (augmentation), more parallel calls or a
cache (the pipeline), prefetching (pipeline fast alone, slow beside the
model), or a larger batch (a step so short that per-step overhead rules).

Prints a short table, or with `--json` one JSON object. Bad flags are
reported on one line (`kcp-doctor: error: ...`, exit status 2).

Imports inside functions: TensorFlow and the training modules, imported by
the function that needs them once the flags are parsed, so that `--help` and
a bad flag answer without loading TensorFlow (well under a second).
"""

import dataclasses
import json
import math
import os
import statistics
import sys
import time

from absl import flags

from keras_cnnpractice._errors import first_line
from keras_cnnpractice.cli import _absl
from keras_cnnpractice.cli.processes import Console
from keras_cnnpractice.cli.processes import LocalDataService
from keras_cnnpractice.cli.processes import StartError
from keras_cnnpractice.data.service import ServiceUnavailableError
from keras_cnnpractice.training import train_flags

PROG = "kcp-doctor"
INPUT_BOUND = 1.05
# Below this many seconds per step, fixed per-step costs dominate.
SHORT_STEP_SECONDS = 0.005
READ_BYTES = 64 << 20

flags.DEFINE_integer("steps", 20, "Batches timed per stage (after a "
                     "warm-up).", lower_bound=1)
flags.DEFINE_bool("json", False, "Print the report as one JSON object.")
flags.DEFINE_integer("service_workers", None, "Time the input pipeline "
                     "through a local tf.data service with 1 and with this "
                     "many worker processes (default: 2, and only when the "
                     "job is input-bound; 0: never).", lower_bound=0)
FLAGS = flags.FLAGS


def _seconds_per_batch(iterator, steps, warmup=2):
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return (time.perf_counter() - start) / steps


def _raw_read(files, examples, total_examples):
    """Reads the first files (up to `examples` files or READ_BYTES)."""
    import tensorflow as tf
    chosen, size = [], 0
    for path in files:
        chosen.append(path)
        size += os.path.getsize(path)
        if len(chosen) >= examples or size >= READ_BYTES:
            break
    ds = tf.data.Dataset.from_tensor_slices(chosen).map(
        lambda p: tf.strings.length(tf.io.read_file(p)),
        num_parallel_calls=tf.data.AUTOTUNE)
    start = time.perf_counter()
    read = sum(int(n) for n in ds.as_numpy_iterator())
    seconds = max(time.perf_counter() - start, 1e-9)
    every = sum(os.path.getsize(p) for p in files)
    bytes_per_image = every / max(1, total_examples)
    return {"bytes_per_second": read / seconds,
            "files_per_second": len(chosen) / seconds,
            "images_per_second": read / seconds / bytes_per_image,
            "files": len(chosen), "bytes": read}


def _stage(name, images_per_second, batch_size, **extra):
    return {"stage": name, "images_per_second": images_per_second,
            "seconds_per_batch": (batch_size / images_per_second
                                  if images_per_second else None), **extra}


def _fit_step_seconds(model, dataset, steps):
    """Seconds per step: the median of `fit` epochs 2 and 3 of `steps`
    (the first traces and warms up)."""
    from keras_cnnpractice.training import EpochTimer
    timer = EpochTimer()
    model.fit(dataset, epochs=3, steps_per_epoch=steps, verbose=0,
              shuffle=False, callbacks=[timer])
    return statistics.median(timer.epoch_seconds[1:]) / steps


def _through_service(config, run, workers, steps):
    """Images/s of the training pipeline read through a tf.data service
    of `workers` local worker processes (their output on stderr)."""
    from keras_cnnpractice.training import prepare
    config = dataclasses.replace(config, cache="", strategy="off")
    console = Console(sys.stderr, "doctor")
    with LocalDataService(workers, console=console) as service:
        service.wait(config.cluster_timeout_s)
        pipeline, _ = prepare.train_pipeline(
            dataclasses.replace(config, data_service=service.address),
            run.source, run.augment, 1)
        seconds = _seconds_per_batch(iter(pipeline.repeat()), steps,
                                     warmup=3)
    return config.batch_size / seconds


def _service_stages(config, run, steps, service_workers):
    """The "input pipeline via tf.data service" stages, 1 and
    `service_workers` workers."""
    counts = sorted({1, service_workers})
    return [_stage(f"input pipeline, data service, {k} worker"
                   f"{'s' if k > 1 else ''}",
                   _through_service(config, run, k, steps),
                   config.batch_size, workers=k) for k in counts]


def diagnose(config, steps=20, service_workers=None):
    """Times the stages of `config`'s input pipeline and training step.

    Args:
        config: a `keras_cnnpractice.training.config.TrainConfig`.
        steps: batches timed per stage.
        service_workers: None: when the job is input-bound (and reads no
            `--data_service` already), also time its pipeline through a
            local tf.data service of 1 and 2 workers; a number: of 1 and
            that many workers whatever the verdict (0: never).

    Returns:
        A dict: `config`, `stages` (list of dicts with `stage`,
        `images_per_second`, `seconds_per_batch` and stage extras),
        `step_seconds_cached`, `step_seconds_real`,
        `input_bound_fraction`, `bound_by` and `fix`.
    """
    import tensorflow as tf

    from keras_cnnpractice.training import prepare
    run = prepare.prepare_run(
        config, log=lambda line: print(line, file=sys.stderr, flush=True))
    with run.strategy.scope():
        model, _, optimizer = prepare.model_and_optimizer(config, run)
        model.compile(optimizer=optimizer,
                      loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    batch = config.batch_size
    source = run.source
    stages = []
    if source.file_based and source.train_files:
        read = _raw_read(source.train_files, steps * batch,
                         source.train_size)
        stages.append(_stage("raw read", read.pop("images_per_second"),
                             batch, **read))
    else:
        stages.append(_stage("raw read", None, batch,
                             note="in memory: nothing to read"))
    raw = (source.train.dataset if source.file_based
           else tf.data.Dataset.from_tensor_slices(source.train))
    decode = _seconds_per_batch(iter(raw.batch(batch).repeat()), steps)
    stages.append(_stage("decode" if source.file_based else
                         "slice arrays", batch / decode, batch))
    if config.augment != "none":
        images = next(iter(raw.batch(batch)))[0]
        images = tf.cast(images, tf.float32)
        augment = tf.function(lambda x: run.augment(x, training=True))
        augment(images)

        def call():
            return augment(images)[0, 0, 0, 0].numpy()

        seconds = _seconds_per_batch(iter(call, None), steps, warmup=1)
        stages.append(_stage(f"augmentation ({config.augment}, in "
                             f"{config.augment_in})", batch / seconds,
                             batch))
    pipeline = run.train_ds.repeat()
    alone = _seconds_per_batch(iter(pipeline), steps, warmup=3)
    stages.append(_stage("input pipeline alone", batch / alone, batch))
    one = next(iter(run.train_ds))
    cached = tf.data.Dataset.from_tensors(one).repeat()
    step_cached = _fit_step_seconds(model, cached, steps)
    stages.append(_stage("train step, cached tensors", batch / step_cached,
                         batch))
    step_real = _fit_step_seconds(model, pipeline, steps)
    stages.append(_stage("train step, real pipeline", batch / step_real,
                         batch))
    fraction = step_real / step_cached
    bound_by, fix = _verdict(stages, fraction, step_cached, batch, config,
                             source)
    input_bound = fraction > INPUT_BOUND and not config.data_service
    if service_workers is None and input_bound:
        service_workers = 2
    if service_workers:
        service = _service_stages(config, run, steps, service_workers)
        stages += service
        if input_bound:
            fix += "; " + _service_advice(service[0]["images_per_second"],
                                          batch / step_cached)
    return {"config": dataclasses.asdict(config), "steps": steps,
            "replicas": run.strategy.num_replicas_in_sync,
            "stages": stages, "step_seconds_cached": step_cached,
            "step_seconds_real": step_real,
            "input_bound_fraction": fraction, "bound_by": bound_by,
            "fix": fix}


def _verdict(stages, fraction, step_cached, batch, config, source):
    """`(bound_by, fix)` from the stage rates."""
    need = batch / step_cached
    rates = {s["stage"].split(" (")[0]: s["images_per_second"]
             for s in stages}
    packed = config.dataset.startswith("packed:")
    if fraction <= INPUT_BOUND:
        if step_cached < SHORT_STEP_SECONDS:
            return ("the model step (very short: per-step overhead)",
                    f"a larger batch (--batch_size={2 * batch}) to spread "
                    f"the fixed cost of each step")
        return ("the model step (the input pipeline keeps up)",
                "nothing in the input pipeline; for faster steps use "
                "mixed precision, more devices or a smaller model")
    slow = {name: rate for name, rate in rates.items()
            if rate is not None and rate < need}
    if "raw read" in slow:
        return ("reading the files", "a faster disk; pack the data" if
                packed else "pack the data (kcp-pack, then "
                "--dataset=packed:DIR): "
                "large sequential reads instead of one small file per image")
    if "decode" in slow:
        return ("decoding", "more parallel calls, or a faster disk" if
                packed or not source.file_based else
                "pack the data (kcp-pack): "
                "decode once, read raw pixels every epoch")
    if "augmentation" in slow and config.augment_in == "data":
        return ("augmentation on the CPU",
                "move augmentation onto the device (--augment_in=model), "
                "or a cheaper --augment policy")
    if "input pipeline alone" in slow:
        return ("the input pipeline",
                "more parallel calls (num_parallel_calls=AUTOTUNE "
                "everywhere), or --cache=memory to decode once")
    return ("the hand-off between pipeline and step",
            "prefetch (build_pipeline does; prefetch_to_device on a GPU); "
            "on a CPU the pipeline and the model share cores: move "
            "augmentation onto the device (--augment_in=model) or pack "
            "the data so the pipeline needs less of them")


def _service_advice(one_worker, need):
    """How many tf.data service workers, at one local worker's rate, the
    step's appetite (`need` images/s) asks for."""
    workers = max(1, math.ceil(need / one_worker))
    return (f"or a tf.data service (--data_service, docs/data.md): one "
            f"worker delivers {one_worker:,.0f} images/s, the step takes "
            f"{need:,.0f}: about {workers} worker{'s' if workers > 1 else ''}"
            f" with a core each")


def _rate(value):
    return "-" if value is None else f"{value:,.0f}"


def format_report(report):
    """The report as a short text table."""
    lines = [f"{'stage':<40} {'images/s':>10} {'ms/batch':>9}  notes"]
    for s in report["stages"]:
        ms = ("-" if s["seconds_per_batch"] is None
              else f"{1e3 * s['seconds_per_batch']:.1f}")
        note = s.get("note", "")
        if "bytes_per_second" in s:
            note = (f"{s['bytes_per_second'] / 1e6:,.1f} MB/s, "
                    f"{s['files_per_second']:,.0f} files/s")
        lines.append(f"{s['stage']:<40} {_rate(s['images_per_second']):>10} "
                     f"{ms:>9}  {note}".rstrip())
    lines += [f"input-bound fraction (real / cached step): "
              f"{report['input_bound_fraction']:.2f}",
              f"bound by: {report['bound_by']}",
              f"fix: {report['fix']}"]
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        print(f"{PROG}: error: unexpected arguments: {' '.join(argv[1:])}",
              file=sys.stderr)
        return 2
    config = train_flags.config_from_flags()
    try:
        report = diagnose(config, FLAGS.steps, FLAGS.service_workers)
    except ValueError as err:
        print(f"{PROG}: error: {first_line(err)}", file=sys.stderr)
        return 2
    except (StartError, ServiceUnavailableError) as err:
        print(f"{PROG}: error: {first_line(err)}", file=sys.stderr)
        return 1
    if FLAGS.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_report(report))
    return 0


def run():
    """The console script `kcp-doctor`."""
    _absl.run(main, PROG, __doc__)


if __name__ == "__main__":
    run()
