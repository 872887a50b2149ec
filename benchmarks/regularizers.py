"""Averaging at test time on the bundled digits: Polyak averaging (optimizer
EMA) and a snapshot ensemble, each against the single network it averages,
in one run.

    python benchmarks/regularizers.py [--epochs 9] [--cycles 3]

Every job trains the default `mnist_cnn` with the `digits` augmentation on
the 4,000 training digits and tests on the 1,000 held out, from the same
seed:

* `adam`: Adam at a constant 1e-3; then the same run's weights averaged by
  Keras's optimizer EMA (`use_ema=True`, momentum 0.99), evaluated with and
  without (`training.ensembles.evaluate_with_and_without_ema`).
* `snapshot`: Adam under `SnapshotEnsemble` (cosine cycles from 2e-3 to 0,
  one snapshot per cycle); the last snapshot alone vs the ensemble of all
  snapshots, and of the last two.

Writes benchmarks/results/NAME.{json,md}.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_integer("epochs", 9, "Epochs per job (a multiple of --cycles).")
flags.DEFINE_integer("cycles", 3, "Snapshot-ensemble cycles.")
flags.DEFINE_integer("seed", 0, "Seed of both jobs.")
flags.DEFINE_string("name", "regularizers", "Results file name.")
FLAGS = flags.FLAGS


def _data():
    from keras_cnnpractice import data
    (x, y), (x_test, y_test) = data.load_mnist5k()
    augment = data.augmentation_policy("digits", seed=FLAGS.seed)
    train = data.make_dataset(x, y, 64, training=True, augment=augment,
                              seed=FLAGS.seed)
    test = data.make_dataset(x_test, y_test, 256, training=False)
    return train, test


def _model(optimizer):
    import keras

    from keras_cnnpractice import models
    keras.utils.set_random_seed(FLAGS.seed)
    model = models.create_model("mnist_cnn")
    model.compile(optimizer, "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _ema_job(train, test):
    import keras

    from keras_cnnpractice.training import ensembles
    model = _model(keras.optimizers.Adam(1e-3, use_ema=True,
                                         ema_momentum=0.99))
    model.fit(train, epochs=FLAGS.epochs, verbose=2,
              callbacks=[ensembles.KeepRawWeights()])
    both = ensembles.evaluate_with_and_without_ema(model, test, verbose=0)
    return {"single network": both["raw"]["accuracy"],
            "averaged": both["ema"]["accuracy"]}


def _snapshot_job(train, test, directory):
    import keras

    from keras_cnnpractice.training import ensembles
    model = _model(keras.optimizers.Adam(2e-3))
    model.fit(train, epochs=FLAGS.epochs, verbose=2,
              callbacks=[ensembles.SnapshotEnsemble(
                  directory, cycles=FLAGS.cycles, max_lr=2e-3)])
    _, last = model.evaluate(test, verbose=0)
    averaged = {}
    for members in (FLAGS.cycles, 2):
        ensemble = ensembles.load_snapshot_ensemble(directory, last=members)
        ensemble.compile(loss="sparse_categorical_crossentropy",
                         metrics=["accuracy"])
        averaged[members] = ensemble.evaluate(test, verbose=0)[1]
    return {f"snapshot ensemble (last {k} of {FLAGS.cycles} cycles)":
            {"single network": last, "averaged": v}
            for k, v in averaged.items()}


def main(_):
    if FLAGS.epochs % FLAGS.cycles:
        raise app.UsageError("--epochs must be a multiple of --cycles")
    start = time.perf_counter()
    train, test = _data()
    results = {"polyak (EMA 0.99)": _ema_job(train, test)}
    with tempfile.TemporaryDirectory() as tmp:
        results.update(_snapshot_job(train, test, tmp))
    rows = [[name, f"{100 * r['single network']:.1f}%",
             f"{100 * r['averaged']:.1f}%"] for name, r in results.items()]
    common.write_results(
        FLAGS.name, {"benchmark": "regularizers", "epochs": FLAGS.epochs,
                     "cycles": FLAGS.cycles, "seed": FLAGS.seed,
                     "results": results,
                     "seconds": round(time.perf_counter() - start, 1)},
        ["averaging", "single network", "averaged"], rows,
        f"Test accuracy on mnist5k, mnist_cnn, {FLAGS.epochs} epochs")


if __name__ == "__main__":
    app.run(main)
