"""How well do features transfer between digit tasks? (after Yosinski et al.,
"How transferable are features in deep neural networks?", NIPS 2014)

    python benchmarks/transfer.py [--per_class 10,50,200] [--seeds 0,1,2]

Task A: digits 0-4 (the 2,000 training images of mnist5k); task B: digits
5-9, relabelled 0-4. The default model (`mnist_cnn`, 5 classes) is trained
once on A; then B is learnt from 10, 50 or 200 labelled images per class (a
seeded subset of B's 400 per class) and tested on B's 500 test images, by

- scratch: the same network from random weights;
- linear: a softmax classifier on fixed, cached features of the A network
  (its 128-unit dense layer, or its last pooled conv maps, 3,136 values);
- fine-tune: a new head, stage1 frozen, stage2 and dense at 0.01 and the
  head at 0.1 of the base rate (the default multipliers);
- multi-stage: the head alone until its loss plateaus, then as fine-tune.

Every network run takes the same number of optimizer steps (the
multi-stage head-only stage comes on top), without augmentation. Reports
mean and spread of test accuracy over the seeds (each seed draws its own
subset and initialization) and writes benchmarks/results/NAME.{json,md}.
"""

import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_list("per_class", ["10", "50", "200"],
                  "Labelled B training images per class.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (subset and init).")
flags.DEFINE_integer("pretrain_epochs", 10, "Epochs of training on A.")
flags.DEFINE_integer("steps", 150, "Optimizer steps of every B network run.")
flags.DEFINE_integer("linear_steps", 300, "Steps of the linear classifiers.")
flags.DEFINE_integer("batch_size", 32, "Batch size on B.")
flags.DEFINE_float("scratch_lr", 1e-3, "Adam's rate from scratch (and on A).")
flags.DEFINE_float("base_lr", 1e-2, "Fine-tuning base rate (Adam); the "
                   "groups train at multiplier * base_lr.")
flags.DEFINE_string("name", "transfer", "Results file name.")
flags.DEFINE_string("work_dir", None, "Keep the A network and feature caches "
                    "here (default: a temporary folder); reused if present.")
FLAGS = flags.FLAGS

METHODS = ["scratch", "linear (dense, 128)", "linear (conv, 3136)",
           "fine-tune", "multi-stage"]
GROUPS = {"frozen": ["stage1"], "new": ["new_head"]}  # the rest: pretrained


def _digits():
    from keras_cnnpractice import data
    (x_train, y_train), (x_test, y_test) = data.load_mnist5k()
    split = {}
    for task, classes in (("A", [0, 1, 2, 3, 4]), ("B", [5, 6, 7, 8, 9])):
        split[task] = (data.select_classes(x_train, y_train, classes),
                       data.select_classes(x_test, y_test, classes))
    assert len(split["A"][0][0]) == 2000 and len(split["B"][1][0]) == 500
    return split


def _pretrain(path, train, test):
    import keras

    from keras_cnnpractice import data, models
    from keras_cnnpractice.transfer import load_pretrained
    if not os.path.exists(path):
        keras.utils.set_random_seed(0)
        model = models.create_model("mnist_cnn", num_classes=5)
        model.compile(keras.optimizers.Adam(FLAGS.scratch_lr),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(data.make_dataset(*train, 64, training=True, seed=0),
                  epochs=FLAGS.pretrain_epochs, verbose=0)
        model.save(path)
    model = load_pretrained(path)
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    _, accuracy = model.evaluate(data.make_dataset(*test, 256, training=False),
                                 verbose=0)
    return model, accuracy


def _epochs(n):
    return math.ceil(FLAGS.steps / math.ceil(n / FLAGS.batch_size))


def _scratch(train, test_ds, seed):
    import keras

    from keras_cnnpractice import data, models
    model = models.create_model("mnist_cnn", num_classes=5)
    model.compile(keras.optimizers.Adam(FLAGS.scratch_lr),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.make_dataset(*train, FLAGS.batch_size, training=True,
                                seed=seed),
              epochs=_epochs(len(train[1])), verbose=0)
    return model.evaluate(test_ds, verbose=0)[1], None


def _fine_tune(pretrained_path, train, test_ds, seed, multi_stage):
    from keras_cnnpractice import data
    from keras_cnnpractice.transfer import fine_tune, load_pretrained
    from keras_cnnpractice.transfer import replace_head
    model = replace_head(load_pretrained(pretrained_path), 5)
    epochs = _epochs(len(train[1]))
    result = fine_tune(
        model, data.make_dataset(*train, FLAGS.batch_size, training=True,
                                 seed=seed),
        groups=GROUPS, base_lr=FLAGS.base_lr, epochs=epochs,
        multi_stage=multi_stage, stage1_max_epochs=epochs, stage1_patience=3)
    stage1_epochs = len(result[0].history["loss"]) if multi_stage else None
    return model.evaluate(test_ds, verbose=0)[1], stage1_epochs


def _linear(features, labels, test_features, test_labels):
    from keras_cnnpractice.transfer import train_linear_classifier
    epochs = math.ceil(FLAGS.linear_steps
                       / math.ceil(len(labels) / FLAGS.batch_size))
    classifier = train_linear_classifier(features, labels, 5, epochs=epochs,
                                         batch_size=FLAGS.batch_size)
    predicted = classifier.predict(test_features, verbose=0).argmax(-1)
    return float((predicted == test_labels).mean()), None


def run(work_dir):
    import keras
    import numpy as np

    from keras_cnnpractice import data
    from keras_cnnpractice.transfer import FeatureExtractor, cache_features
    split = _digits()
    pretrained_path = os.path.join(work_dir, "mnist_cnn_digits_0-4.keras")
    start = time.perf_counter()
    pretrained, a_accuracy = _pretrain(pretrained_path, *split["A"])
    print(f"A network: {100 * a_accuracy:.2f}% on A's test digits "
          f"({time.perf_counter() - start:.0f} s)", flush=True)

    (x_b, y_b), (x_b_test, y_b_test) = split["B"]
    test_ds = data.make_dataset(x_b_test, y_b_test, 256, training=False)
    dense = [x for x in pretrained.layers
             if isinstance(x, keras.layers.Dense)][-2]
    flat = [x for x in pretrained.layers
            if isinstance(x, keras.layers.Flatten)][-1]
    extractor = FeatureExtractor(pretrained, [dense, flat])
    cached = {}
    for part, (x, y) in (("train", (x_b, y_b)), ("test", (x_b_test, y_b_test))):
        cached[part] = cache_features(
            extractor, data.make_dataset(x, y, 256, training=False),
            os.path.join(work_dir, f"features_B_{part}"))
    layer_of = {"linear (dense, 128)": dense.name,
                "linear (conv, 3136)": flat.name}

    accuracy, details = {}, []
    for per_class in map(int, FLAGS.per_class):
        for seed in map(int, FLAGS.seeds):
            rows, labels = data.take_per_class(np.arange(len(y_b)), y_b,
                                               per_class, seed=seed)
            train = (x_b[rows], labels)
            for method in METHODS:
                keras.utils.set_random_seed(seed)
                tic = time.perf_counter()
                if method == "scratch":
                    acc, extra = _scratch(train, test_ds, seed)
                elif method.startswith("linear"):
                    name = layer_of[method]
                    features, cached_labels = cached["train"]
                    assert (cached_labels[rows] == labels).all()
                    acc, extra = _linear(features[name][rows], labels,
                                         cached["test"][0][name],
                                         cached["test"][1])
                else:
                    acc, extra = _fine_tune(pretrained_path, train, test_ds,
                                            seed, method == "multi-stage")
                seconds = time.perf_counter() - tic
                accuracy.setdefault((per_class, method), []).append(acc)
                details.append({"per_class": per_class, "seed": seed,
                                "method": method, "test_accuracy": acc,
                                "seconds": round(seconds, 1),
                                "stage1_epochs": extra})
                print(f"{per_class:4d}/class seed {seed} {method:20s} "
                      f"{100 * acc:6.2f}%  ({seconds:.0f} s)", flush=True)
    return a_accuracy, accuracy, details, time.perf_counter() - start


def main(_):
    import numpy as np
    if FLAGS.work_dir:
        os.makedirs(FLAGS.work_dir, exist_ok=True)
        a_accuracy, accuracy, details, seconds = run(FLAGS.work_dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            a_accuracy, accuracy, details, seconds = run(tmp)
    rows = []
    for per_class in map(int, FLAGS.per_class):
        row = [per_class]
        for method in METHODS:
            values = 100 * np.array(accuracy[(per_class, method)])
            row.append(f"{values.mean():.1f} ± {values.std():.1f}"
                       if len(values) > 1 else f"{values[0]:.1f}")
        rows.append(row)
    common.write_results(
        FLAGS.name,
        {"benchmark": "transfer", "task_a": "digits 0-4 (2,000 images)",
         "task_b": "digits 5-9 relabelled 0-4, tested on 500 images",
         "a_test_accuracy": a_accuracy, "pretrain_epochs":
         FLAGS.pretrain_epochs, "steps": FLAGS.steps,
         "linear_steps": FLAGS.linear_steps, "batch_size": FLAGS.batch_size,
         "scratch_lr": FLAGS.scratch_lr, "base_lr": FLAGS.base_lr,
         "groups": GROUPS, "seeds": [int(s) for s in FLAGS.seeds],
         "runtime_seconds": round(seconds, 1), "runs": details},
        ["B examples / class"] + [f"{m} (%)" for m in METHODS], rows,
        f"Transfer from digits 0-4 to 5-9 (mnist_cnn; test accuracy on B's "
        f"500 test digits, mean ± std over {len(FLAGS.seeds)} seeds; "
        f"{FLAGS.steps} steps of batch {FLAGS.batch_size} per network run; "
        f"A network {100 * a_accuracy:.1f}% on A; {seconds / 60:.1f} min in "
        "all)")


if __name__ == "__main__":
    app.run(main)
