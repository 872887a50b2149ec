"""The default training job (train.py's defaults: mnist_cnn on mnist5k,
mirrored over 2 CPU replicas, 15 epochs) under each precision, in one run:
step time (median epoch after the first, validation included, per step) and
test accuracy, against float32.

    python benchmarks/precision.py [--epochs 15] [--precisions float64,float32,mixed_bfloat16,mixed_float16]

Writes benchmarks/results/precision.{json,md} (or NAME.* with --name). Each job runs as its own
`train.py` process (the dtype policy and the CPU split are per process).
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_list("precisions", ["float64", "float32", "mixed_bfloat16",
                                 "mixed_float16"], "Policies to compare.")
flags.DEFINE_integer("epochs", 15, "Epochs per job (15: the default job).")
flags.DEFINE_string("name", "precision", "Results file name (results/NAME.*).")
flags.DEFINE_string("work_dir", None, "Keep each job's model_dir here (default: "
                    "a temporary folder). A job whose result.json is already "
                    "there is not run again, so a long benchmark that was "
                    "stopped keeps what it finished.")
FLAGS = flags.FLAGS


def main(_):
    with tempfile.TemporaryDirectory() as tmp:
        results = common.run_train_jobs(
            {p: [f"--precision={p}", f"--epochs={FLAGS.epochs}"]
             for p in FLAGS.precisions}, FLAGS.work_dir or tmp)
    base = results.get("float32", {}).get("seconds_per_step")
    rows = []
    for precision, r in results.items():
        if "error" in r:
            rows.append([precision, "failed", "", "", r["error"][:80]])
            continue
        step = r["seconds_per_step"]
        rows.append([precision, f"{step * 1e3:.1f}",
                     f"{step / base:.2f}x" if base else "",
                     f"{r['test_accuracy']:.4f}", ""])
    common.write_results(
        FLAGS.name, {"benchmark": "precision", "epochs": FLAGS.epochs,
                      "results": results},
        ["precision", "ms / step", "time vs float32", "test accuracy", "note"],
        rows, f"Default training job by precision ({FLAGS.epochs} epochs, "
              "mnist5k, MirroredStrategy over 2 CPU replicas)")


if __name__ == "__main__":
    app.run(main)
