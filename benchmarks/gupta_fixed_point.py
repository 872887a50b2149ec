"""Gupta et al. (2015) on the bundled digits: training with the weights
stored in 16-bit fixed point, rounded to nearest vs stochastically, against
float32, in one run.

    python benchmarks/gupta_fixed_point.py [--epochs 10] [--work_dir DIR]

Every job is `train.py` with plain SGD (the regime where small updates
matter) and `--weights_format=fixedW:F --rounding=...`: after each update
every weight is rounded onto the <W, F> grid (step 2^-F). The paper's
finding: round-to-nearest loses every update smaller than half a step and
stalls or degrades, while stochastic rounding keeps them in expectation and
tracks float32. Only the weights are fixed point here (the paper also
rounds activations and gradients). Writes
benchmarks/results/NAME.{json,md,svg}: final test error, and test error per
epoch as a table and a plot.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_integer("epochs", 10, "Epochs per job.")
flags.DEFINE_float("learning_rate", 0.1, "Initial SGD learning rate (cosine "
                   "decay to 0 over the run, train.py's schedule).")
flags.DEFINE_list("formats", ["fixed16:14", "fixed16:10"],
                  "Fixed-point weight formats, each run with both roundings.")
flags.DEFINE_string("name", "gupta_fixed_point", "Results file name.")
flags.DEFINE_string("work_dir", None, "Keep each job's model_dir here "
                    "(default: a temporary folder); finished jobs are reused.")
FLAGS = flags.FLAGS


def main(_):
    base = ["--optimizer=sgd", f"--learning_rate={FLAGS.learning_rate}",
            f"--epochs={FLAGS.epochs}"]
    jobs = {"float32": base}
    for fmt in FLAGS.formats:
        for rounding in ("nearest", "stochastic"):
            jobs[f"{fmt} {rounding}"] = base + [f"--weights_format={fmt}",
                                                f"--rounding={rounding}"]
    with tempfile.TemporaryDirectory() as tmp:
        results = common.run_train_jobs(
            {name.replace(" ", "_").replace(":", "_"): flags_
             for name, flags_ in jobs.items()}, FLAGS.work_dir or tmp)
    results = dict(zip(jobs, results.values()))
    errors = {name: [1.0 - a for a in r["history"]["val_accuracy"]]
              for name, r in results.items() if "error" not in r}
    columns = ["weights", "final test error"] + [
        f"ep {i + 1}" for i in range(FLAGS.epochs)]
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, "failed: " + r["error"][:60]])
            continue
        rows.append([name, f"{100 * (1 - r['test_accuracy']):.2f}%"]
                    + [f"{100 * e:.1f}" for e in errors[name]])
    common.write_results(
        FLAGS.name, {"benchmark": "gupta_fixed_point", "flags": base,
                     "results": results},
        columns, rows,
        f"Fixed-point weights, nearest vs stochastic rounding (mnist_cnn, "
        f"mnist5k, SGD lr {FLAGS.learning_rate}, {FLAGS.epochs} epochs; "
        "test error % per epoch)")
    common.write_svg_plot(FLAGS.name, errors,
                          "Test error per epoch: fixed-point weights",
                          "test error")


if __name__ == "__main__":
    app.run(main)
