"""Trains a CNN: flags -> config -> strategy -> data -> model -> fit -> export.

    kcp-train --strategy=mirrored            (or: python train.py ...)
    kcp-train --strategy=off --epochs=3 --model_dir=/tmp/run
    kcp-launch --workers=2 -- kcp-train --strategy=multi_worker_mirrored
    kcp-launch --workers=2 --ps=1 -- kcp-train --strategy=parameter_server

The flags are defined once, in keras_cnnpractice/training/train_flags.py
(the pipeline doctor, `kcp-doctor`, takes the same ones); the run's flags
are saved as `flags.json` in --model_dir, and a restart with the same
--model_dir resumes from the last completed epoch.

Imports inside functions: the training runner (TensorFlow, Keras), imported
by the function that needs it once the flags are parsed, so that `--help`
and a bad flag answer without loading TensorFlow (well under a second).
"""

import os
import sys

from keras_cnnpractice.cli import _absl
from keras_cnnpractice.data.service import ServiceUnavailableError
from keras_cnnpractice.strategies.cluster import ClusterTimeoutError
from keras_cnnpractice.training import train_flags  # defines the flags


def main(argv, prog="kcp-train"):
    if len(argv) > 1:
        print(f"{prog}: error: unexpected arguments: {' '.join(argv[1:])}",
              file=sys.stderr)
        sys.exit(2)
    config = train_flags.config_from_flags()
    from keras_cnnpractice.training.runner import train
    try:
        train(config)
    except ValueError as err:  # configuration the flags could not catch
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except ServiceUnavailableError as err:  # no tf.data service dispatcher
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(1)
    except ClusterTimeoutError as err:  # a task of the cluster never came up
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        # Not sys.exit: TensorFlow's coordination service, in an error
        # state now, would log its own alarms while shutting down after it.
        os._exit(1)


def run(prog="kcp-train"):
    """The console script `kcp-train`; `train.py` runs it as `train.py`."""
    _absl.run(lambda argv: main(argv, prog), prog, __doc__)


if __name__ == "__main__":
    run()
