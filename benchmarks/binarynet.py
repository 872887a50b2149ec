"""BinaryNet (Courbariaux, Hubara et al., 2016) on the bundled digits: a
binary MLP and a binary CNN against their float counterparts, in one run.

    python benchmarks/binarynet.py [--epochs 15] [--work_dir DIR]

Models from `keras_cnnpractice.models.binarynet` (binary_mlp, float_mlp,
binary_cnn, float_cnn), each trained by `train.py` with Adam on the 4,000
training digits (no augmentation) and tested on the 1,000 held out. The
paper reports 0.96% test error on full MNIST (60,000 images, 3x4096 units,
hundreds of epochs); these runs use 1/15 of the data, smaller networks and
minutes of CPU. Writes benchmarks/results/NAME.{json,md,svg}.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_integer("epochs", 15, "Epochs per job.")
flags.DEFINE_list("models", ["binary_mlp", "float_mlp", "binary_cnn",
                             "float_cnn"], "Models to train.")
flags.DEFINE_string("name", "binarynet", "Results file name.")
flags.DEFINE_string("work_dir", None, "Keep each job's model_dir here "
                    "(default: a temporary folder); finished jobs are reused.")
FLAGS = flags.FLAGS


def main(_):
    with tempfile.TemporaryDirectory() as tmp:
        results = common.run_train_jobs(
            {m: [f"--model={m}", "--augment=none", f"--epochs={FLAGS.epochs}"]
             for m in FLAGS.models}, FLAGS.work_dir or tmp)
    rows, errors = [], {}
    for name, r in results.items():
        if "error" in r:
            rows.append([name, "failed: " + r["error"][:60], "", ""])
            continue
        errors[name] = [1.0 - a for a in r["history"]["val_accuracy"]]
        rows.append([name, f"{100 * (1 - r['test_accuracy']):.2f}%",
                     f"{100 * min(errors[name]):.2f}%",
                     f"{r['seconds_per_step'] * 1e3:.0f}"])
    common.write_results(
        FLAGS.name, {"benchmark": "binarynet", "epochs": FLAGS.epochs,
                     "results": results},
        ["model", "final test error", "best epoch's test error",
         "ms / training step"], rows,
        f"BinaryNet vs float on mnist5k ({FLAGS.epochs} epochs, Adam, "
        "4,000 training / 1,000 test digits)")
    common.write_svg_plot(FLAGS.name, errors, "Test error per epoch",
                          "test error")


if __name__ == "__main__":
    app.run(main)
