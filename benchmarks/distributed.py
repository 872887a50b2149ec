"""The default training job (train.py's defaults: mnist_cnn on the bundled
mnist5k digits, global batch 64, 15 epochs) under each data-parallel
strategy, in one run on this machine:

  * off: one process, no distribution (the baseline);
  * mirrored: one process, the CPU split into 2 logical devices, 2
    synchronous replicas;
  * multi_worker_mirrored: 2 worker processes on loopback ports (the
    launcher), synchronous all-reduce over gRPC;
  * parameter_server: a coordinator, 2 workers and 1 parameter server, 4
    processes, asynchronous updates.

Reported per strategy: seconds per step (the median epoch after the first,
evaluation included, over its steps), steps/s, images/s, time against off;
the CPU seconds the job's processes used in all (start-up, evaluation and
export included) per training step, which depends less on what else the
machine runs than wall time does; the load average when the job started
and ended; and the test accuracy after the run, against the synchronous
baseline (`mirrored`, train.py's default job). The issue's goal:
parameter_server within 1 percentage point of synchronous training.

Caveat: this machine has 2 CPU cores (shared with other jobs while it
ran). Every replica, worker and server competes for those 2 cores, so no
strategy can be faster than one process using both: the numbers show the
overhead of each strategy (splitting batches, all-reduce over loopback
gRPC, variables fetched from a parameter server), not scaling. Scaling
needs one accelerator or machine per replica.

    python benchmarks/distributed.py [--epochs 15]
        [--strategies off,mirrored,multi_worker_mirrored,parameter_server]

Writes benchmarks/results/distributed.{json,md} (or NAME.* with --name).
"""

import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

# strategy -> (launcher flags, or None for one process; processes)
STRATEGIES = {
    "off": (None, 1),
    "mirrored": (None, 1),
    "multi_worker_mirrored": (["--workers=2"], 2),
    "parameter_server": (["--workers=2", "--ps=1"], 4),
}
SYNCHRONOUS_BASELINE = "mirrored"
GOAL_POINTS = 1.0

flags.DEFINE_list("strategies", list(STRATEGIES), "Strategies to compare.")
flags.DEFINE_integer("epochs", 15, "Epochs per job (15: the default job).")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_string("name", "distributed", "Results file name (results/NAME.*).")
flags.DEFINE_string("work_dir", None, "Keep each job's model_dir here (default: "
                    "a temporary folder). A job whose result.json is already "
                    "there is not run again.")
FLAGS = flags.FLAGS


def _cpu_seconds():
    """CPU time of this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(strategy, model_dir):
    """train.py under `strategy` (through the launcher for the multi-process
    ones); returns result.json plus `wall_seconds`, `cpu_seconds` (every
    process of the job) and `load_average` (1-minute, at start and end), or
    `{"error": ...}`."""
    from keras_cnnpractice.training.jobs import read_run, train_command
    if os.path.exists(os.path.join(model_dir, "result.json")):
        print(f"reusing {model_dir}", flush=True)
        return read_run(model_dir)
    launcher, _ = STRATEGIES[strategy]
    command = [*train_command(), f"--strategy={strategy}",
               f"--epochs={FLAGS.epochs}", f"--batch_size={FLAGS.batch_size}",
               f"--model_dir={model_dir}"]
    if launcher:
        command = [sys.executable, "-m", "keras_cnnpractice.cli.launch",
                   *launcher, "--", *command]
    print("running: " + " ".join(command[1:]), flush=True)
    start, cpu, load = time.perf_counter(), _cpu_seconds(), os.getloadavg()[0]
    done = subprocess.run(command, cwd=common.ROOT, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        return {"error": " ".join(tail) or f"exit {done.returncode}"}
    result = read_run(model_dir)
    result["wall_seconds"] = time.perf_counter() - start
    result["cpu_seconds"] = _cpu_seconds() - cpu
    result["load_average"] = [load, os.getloadavg()[0]]
    return result


def main(_):
    unknown = sorted(set(FLAGS.strategies) - set(STRATEGIES))
    if unknown:
        raise app.UsageError(f"--strategies: unknown {', '.join(unknown)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = FLAGS.work_dir or tmp
        results = {s: _run(s, os.path.join(work, s)) for s in FLAGS.strategies}
    from keras_cnnpractice.data import load_mnist5k
    steps = FLAGS.epochs * -(-len(load_mnist5k()[0][1]) // FLAGS.batch_size)
    base_step = results.get("off", {}).get("seconds_per_step")
    sync = results.get(SYNCHRONOUS_BASELINE, {}).get("test_accuracy")
    rows = []
    for strategy, r in results.items():
        processes = STRATEGIES[strategy][1]
        if "error" in r:
            rows.append([strategy, processes, "failed", "", "", "", "", "",
                         "", "", r["error"][:80]])
            continue
        step = r["seconds_per_step"]
        points = (100 * (r["test_accuracy"] - sync)
                  if sync is not None else None)
        rows.append([
            strategy, processes, r["replicas"], f"{step * 1e3:.0f}",
            f"{1 / step:.2f}", f"{FLAGS.batch_size / step:.0f}",
            f"{step / base_step:.2f}x" if base_step else "",
            f"{r['cpu_seconds'] / steps:.2f}" if "cpu_seconds" in r else "",
            "{:.1f}-{:.1f}".format(*r["load_average"])
            if "load_average" in r else "",
            f"{100 * r['test_accuracy']:.1f}%",
            "" if points is None or strategy == SYNCHRONOUS_BASELINE
            else f"{points:+.1f} points"])
    common.write_results(
        FLAGS.name, {"benchmark": "distributed", "epochs": FLAGS.epochs,
                     "batch_size": FLAGS.batch_size,
                     "synchronous_baseline": SYNCHRONOUS_BASELINE,
                     "goal_points": GOAL_POINTS,
                     "caveat": "2 CPU cores shared by every process: the "
                               "numbers show overhead, not scaling",
                     "results": results},
        ["strategy", "processes", "replicas in sync", "ms / step",
         "steps / s", "images / s", "time vs off", "CPU s / step, all "
         "processes, whole job", "load avg at start-end", "test accuracy",
         f"vs {SYNCHRONOUS_BASELINE}"],
        rows, f"Data-parallel strategies on the default job ({FLAGS.epochs} "
              f"epochs, mnist5k, global batch {FLAGS.batch_size}; 2 CPU "
              "cores shared by every process: overhead, not scaling)")


if __name__ == "__main__":
    app.run(main)
