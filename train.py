"""Trains a CNN: flags -> config -> strategy -> data -> model -> fit -> export.

    python train.py --strategy=mirrored
    python train.py --strategy=off --epochs=3 --model_dir=/tmp/run
    python -m keras_cnnpractice.launch --workers=2 -- \
        python train.py --strategy=multi_worker_mirrored
    python -m keras_cnnpractice.launch --workers=2 --ps=1 -- \
        python train.py --strategy=parameter_server

Flags are defined once, in keras_cnnpractice/training/train_flags.py (the
pipeline doctor, `python -m keras_cnnpractice.doctor`, takes the same
ones); the run's flags are saved as
`flags.json` in --model_dir, and a restart with the same --model_dir resumes
from the last completed epoch.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep INFO noise out of the log

from absl import app
from absl import flags

from keras_cnnpractice._cli import flags_parser
from keras_cnnpractice.strategies.cluster import ClusterTimeoutError
from keras_cnnpractice.training import train_flags  # defines the flags

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        print(f"train.py: error: unexpected arguments: {' '.join(argv[1:])}",
              file=sys.stderr)
        sys.exit(2)
    config = train_flags.config_from_flags()
    from keras_cnnpractice.training.runner import train
    try:
        train(config)
    except ValueError as err:  # configuration the flags could not catch
        print(f"train.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    except ClusterTimeoutError as err:  # a task of the cluster never came up
        print(f"train.py: error: {err}", file=sys.stderr, flush=True)
        # Not sys.exit: TensorFlow's coordination service, in an error
        # state now, would log its own alarms while shutting down after it.
        os._exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=flags_parser("train.py"))
