"""One synchronous SGD step of LeNet-5 on the first BATCH bundled digits
under --strategy, the updated weights saved by the chief as an .npz file.

    python tests/strategies/one_step.py STRATEGY BATCH OUT.npz

Run directly for off and mirrored, or through the launcher for
multi_worker_mirrored. The initial weights come from numpy (seed 0), so
every process and strategy starts from the same ones.
"""

import os
import sys

import numpy as np

LEARNING_RATE = 0.1


def initial_weights(shapes):
    rng = np.random.RandomState(0)
    return [rng.uniform(-0.2, 0.2, shape).astype(np.float32)
            for shape in shapes]


def one_step(strategy_name, batch_size):
    """Weights of LeNet-5 after one step; returns `(weights, is_chief)`."""
    from keras_cnnpractice.strategies import get_strategy
    strategy = get_strategy(strategy_name, cluster_timeout_s=60)
    import keras

    from keras_cnnpractice.data import build_pipeline, load_mnist5k
    from keras_cnnpractice.models import create_model
    (x, y), _ = load_mnist5k()
    pick = slice(None, None, len(x) // batch_size)  # every class
    ds = build_pipeline((x[pick][:batch_size], y[pick][:batch_size]), batch_size,
                        training=False)
    with strategy.scope():
        model = create_model("lenet5", (28, 28, 1), 10)
        model.set_weights(initial_weights(
            [w.shape for w in model.get_weights()]))
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE),
                      loss="sparse_categorical_crossentropy")
    model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    return model.get_weights(), strategy.extended.should_checkpoint


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    name, batch, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    weights, chief = one_step(name, batch)
    if chief:
        np.savez(out, *weights)
    print(f"{name}: one step done", flush=True)
