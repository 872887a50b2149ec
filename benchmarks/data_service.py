"""tf.data service: does running the augmentation on other processes feed
the trainer faster than running it in the trainer's own process?

The augmentation-bound job: --count generated images of --size px in a
raw pack (`kcp-pack`), read as `train.py` reads `--dataset=packed:DIR`
and sent through the `natural` policy (one fused resample and color pass
to --size x --size float32, the compiled CPU op), batches of
--batch_size. Each way of running it, in a trainer process of its own
(pinned with `os.sched_setaffinity` from its start), counts the images
that reach it: the median of --repeats windows of --images images, after
--warmup images:

* in-process: the pipeline in the trainer's process, on one core (the
  trainer's machine) and on every core;
* through a tf.data service on loopback (`LocalDataService`: a dispatcher
  and `kcp-data-service` worker processes, each worker pinned to its own
  core to stand for a machine of its own), dynamic sharding: 1 worker,
  the trainer on another core; 2 workers; with fewer than 3 cores the
  2-worker trainer runs unpinned beside them (said in the table). Also
  sharding off, the service's compression, and float32 batches sent as
  they are (`DataService.transfer_dtype`; float16 by default). The pack's
  batches are repeated on the workers (`build_pipeline`'s service path
  on an endless pack reader): one endless job, its steady state;
  `train.py`'s pipeline ends each epoch, and the service then starts a
  new job (about a second, once per epoch).

For each, the CPU time each process used during the windows (a fraction
of one core), from /proc: where the time goes. The scaling factor is the
2-worker rate over the 1-worker rate (goal >= 1.8x). Then `kcp-doctor`
on the job (--model, --doctor_steps) reading the 2-worker service: the
training step on the service's batches over the step on cached tensors
(the input-bound fraction).

    python benchmarks/data_service.py [--count 1000 --size 224
        --batch_size 32 --images 1600 --warmup 640 --repeats 3
        --model resnet18 --doctor_steps 3 --work_dir DIR]

Writes benchmarks/results/data_service.{json,md}.
"""

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_integer("count", 1000, "Training images generated.",
                     lower_bound=64)
flags.DEFINE_integer("size", 224, "Their side (and the natural policy's "
                     "crop, as train.py crops).", lower_bound=32)
flags.DEFINE_integer("batch_size", 32, "Images per batch.", lower_bound=1)
flags.DEFINE_integer("images", 1600, "Images per timed window.",
                     lower_bound=1)
flags.DEFINE_integer("warmup", 640, "Images read before timing.",
                     lower_bound=0)
flags.DEFINE_integer("repeats", 3, "Timed windows (median).", lower_bound=1)
flags.DEFINE_string("model", "resnet18", "The doctor's model.")
flags.DEFINE_integer("doctor_steps", 3, "The doctor's --steps (0: no "
                     "doctor).", lower_bound=0)
flags.DEFINE_string("work_dir", None, "Keep the images and pack here.")
# A trainer process (started by this script).
flags.DEFINE_string("trainer", None, "internal: JSON of one measurement.")
FLAGS = flags.FLAGS

GOAL_SCALING = 1.8


def _cpu_seconds(pid):
    """User + system CPU seconds of process `pid`, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(spec):
    """In a trainer process: images/s reaching it and the CPU shares of
    it and of `spec["pids"]` (the service's processes)."""
    from keras_cnnpractice.data import PipelineOptions
    from keras_cnnpractice.data import augmentation_policy
    from keras_cnnpractice.data import build_pipeline
    from keras_cnnpractice.data import packed
    from keras_cnnpractice.data.service import DataService
    service = None
    if spec["address"]:
        service = DataService(spec["address"], spec["sharding"],
                              compression=spec["compression"],
                              transfer_dtype=spec["transfer_dtype"])
    augment = augmentation_policy("natural", seed=0, input_shape=(
        FLAGS.size, FLAGS.size, 3), implementation="op")
    source = packed(spec["pack"], shuffle=True, seed=0, verify="none")
    if service is None:
        ds = build_pipeline(source, FLAGS.batch_size, augment=augment,
                            seed=0).repeat()
    else:
        # The pack's batches repeated on the workers: one endless job, the
        # steady state (a pipeline that ends starts a new job each epoch,
        # about a second); otherwise build_pipeline's own service path.
        read = source.read_batches
        ds = build_pipeline(
            dataclasses.replace(source, read_batches=lambda *args, **kwargs:
                                read(*args, **kwargs).repeat()),
            FLAGS.batch_size, augment=augment, seed=0,
            options=PipelineOptions(data_service=service))
    batches = iter(ds)
    for _ in range(-(-FLAGS.warmup // FLAGS.batch_size)):
        next(batches)
    pids = [os.getpid(), *spec["pids"]]
    rates, shares = [], []
    for _ in range(FLAGS.repeats):
        cpu = [_cpu_seconds(p) for p in pids]
        start, images = time.perf_counter(), 0
        while images < FLAGS.images:
            images += int(next(batches)[0].shape[0])
        seconds = time.perf_counter() - start
        rates.append(images / seconds)
        shares.append([(_cpu_seconds(p) - c) / seconds
                       for p, c in zip(pids, cpu)])
    return {"images_per_s": statistics.median(rates), "rates": rates,
            "cpu_share": [statistics.median(s) for s in zip(*shares)]}


def _trainer(spec, cpus):
    """Runs `measure(spec)` in a new process pinned to `cpus` (None:
    unpinned)."""
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    result = subprocess.run(
        [sys.executable, __file__, f"--trainer={json.dumps(spec)}",
         *[f"--{name}={FLAGS[name].value}" for name in (
             "size", "batch_size", "images", "warmup", "repeats")]],
        capture_output=True, text=True, timeout=1800, preexec_fn=pin,
        check=False)
    if result.returncode:
        raise RuntimeError(f"trainer failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _make_pack(work):
    from keras_cnnpractice.data import pack_dataset
    for split, count in (("train", FLAGS.count), ("test", 64)):
        folder = os.path.join(work, "jpeg", split)
        common.make_jpeg_folder(folder, count, FLAGS.size, 10)
        pack_dataset(folder, os.path.join(work, "pack", split),
                     format="raw", overwrite=True)
    return os.path.join(work, "pack")


def _through_service(pack, workers, worker_cpus, trainer_cpus,
                     sharding="dynamic", compression="none",
                     transfer_dtype="float16"):
    from keras_cnnpractice.cli.processes import Console
    from keras_cnnpractice.cli.processes import LocalDataService
    with open(os.devnull, "w") as quiet, LocalDataService(
            workers, console=Console(quiet), cpus=worker_cpus) as service:
        service.wait(120)
        return _trainer({"pack": os.path.join(pack, "train"),
                         "address": service.address, "sharding": sharding,
                         "compression": compression,
                         "transfer_dtype": transfer_dtype,
                         "pids": [t.process.pid for t in service.tasks]},
                        trainer_cpus)


def _doctor(pack, worker_cpus):
    """kcp-doctor on the job, reading a 2-worker service."""
    from keras_cnnpractice.cli.processes import Console
    from keras_cnnpractice.cli.processes import LocalDataService
    with open(os.devnull, "w") as quiet, LocalDataService(
            2, console=Console(quiet), cpus=worker_cpus) as service:
        service.wait(120)
        result = subprocess.run(
            [sys.executable, "-m", "keras_cnnpractice.cli.doctor", "--json",
             f"--dataset=packed:{pack}", "--augment=natural",
             f"--model={FLAGS.model}", "--strategy=off",
             f"--batch_size={FLAGS.batch_size}",
             f"--steps={FLAGS.doctor_steps}", "--service_workers=0",
             f"--data_service={service.address}",
             f"--model_dir={tempfile.mkdtemp(prefix='doctor-')}"],
            capture_output=True, text=True, timeout=3600, cwd=common.ROOT,
            check=False)
    if result.returncode:
        raise RuntimeError(f"kcp-doctor failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.trainer:
        print(json.dumps(measure(json.loads(FLAGS.trainer))))
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise app.UsageError("needs at least 2 cores")
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="data-service-bench-")
    try:
        pack = _make_pack(work)
        train = os.path.join(pack, "train")
        local = {"pack": train, "address": None, "sharding": None,
                 "compression": None, "transfer_dtype": None, "pids": []}
        # One core stands for the trainer's machine, the others for the
        # workers' machines.
        trainer, others = {cores[0]}, cores[1:]
        two = [{c} for c in (others[:2] if len(others) >= 2 else cores[:2])]
        two_trainer = trainer if len(others) >= 2 else None
        runs = [
            ("in-process, 1 core", 0, "-", _trainer(local, trainer)),
            (f"in-process, {len(cores)} cores", 0, "-",
             _trainer(local, None)),
            ("service, 1 worker", 1, "dynamic",
             _through_service(pack, 1, [{others[0]}], trainer)),
            ("service, 2 workers", 2, "dynamic",
             _through_service(pack, 2, two, two_trainer)),
            ("service, 1 worker", 1, "off",
             _through_service(pack, 1, [{others[0]}], trainer, "off")),
            ("service, 2 workers", 2, "off",
             _through_service(pack, 2, two, two_trainer, "off")),
            ("service, 1 worker, compression auto", 1, "dynamic",
             _through_service(pack, 1, [{others[0]}], trainer,
                              compression="auto")),
            ("service, 1 worker, float32 transfer", 1, "dynamic",
             _through_service(pack, 1, [{others[0]}], trainer,
                              transfer_dtype="float32")),
        ]
        for name, _, sharding, result in runs:
            print(f"{name} ({sharding}): {result['images_per_s']:,.0f} "
                  f"images/s, CPU {result['cpu_share']}", flush=True)
        doctor = (_doctor(pack, two) if FLAGS.doctor_steps else None)
    finally:
        if FLAGS.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    rate = {(name, sharding): r["images_per_s"]
            for name, _, sharding, r in runs}
    scaling = (rate[("service, 2 workers", "dynamic")]
               / rate[("service, 1 worker", "dynamic")])
    scaling_off = (rate[("service, 2 workers", "off")]
                   / rate[("service, 1 worker", "off")])
    in_process = rate[("in-process, 1 core", "-")]
    rows, results = [], []
    for name, workers, sharding, r in runs:
        share = r["cpu_share"]
        where = (f"trainer {share[0]:.2f}" if not workers else
                 f"trainer {share[0]:.2f}, dispatcher {share[1]:.2f}, "
                 f"workers {', '.join(f'{s:.2f}' for s in share[2:])}")
        pinned = ("" if workers != 2 or two_trainer is not None else
                  " (trainer unpinned, beside the workers)")
        rows.append([name + pinned, sharding, f"{r['images_per_s']:,.0f}",
                     f"{r['images_per_s'] / in_process:.2f}x", where])
        results.append({"run": name, "workers": workers,
                        "sharding": sharding, **r})
    fraction = doctor["input_bound_fraction"] if doctor else None
    if doctor:
        rows.append([f"kcp-doctor, {FLAGS.model}, 2 workers: real / cached "
                     f"step", "dynamic", f"{fraction:.2f}", "",
                     f"step {doctor['step_seconds_cached']:.2f} s cached, "
                     f"{doctor['step_seconds_real']:.2f} s real"])
    met = "met" if scaling >= GOAL_SCALING else "NOT met"
    print(f"\n2 workers / 1 worker: {scaling:.2f}x with dynamic sharding "
          f"(goal >= {GOAL_SCALING}x: {met}), {scaling_off:.2f}x with "
          f"sharding off")
    import tensorflow as tf
    payload = {
        "benchmark": "data_service",
        "command": " ".join(["python", "benchmarks/data_service.py"]
                            + sys.argv[1:]),
        "count": FLAGS.count, "size": FLAGS.size,
        "batch_size": FLAGS.batch_size, "images": FLAGS.images,
        "repeats": FLAGS.repeats, "cores": cores, "results": results,
        "scaling_2_vs_1_worker": scaling,
        "scaling_2_vs_1_worker_sharding_off": scaling_off,
        "goal_scaling": GOAL_SCALING,
        "goal_scaling_met": scaling >= GOAL_SCALING,
        "input_bound_fraction": fraction, "doctor": doctor and {
            k: doctor[k] for k in ("stages", "step_seconds_cached",
                                   "step_seconds_real", "bound_by")},
        "tensorflow": tf.__version__}
    common.write_results(
        "data_service", payload,
        ["run", "sharding", "images/s", "vs in-process, 1 core",
         "CPU used (cores)"], rows,
        f"tf.data service ({FLAGS.count} raw-packed {FLAGS.size} px images, "
        f"natural policy, batch {FLAGS.batch_size}; 2 workers / 1 worker "
        f"{scaling:.2f}x dynamic, {scaling_off:.2f}x off; goal >= "
        f"{GOAL_SCALING}x: {met})")


if __name__ == "__main__":
    app.run(main)
