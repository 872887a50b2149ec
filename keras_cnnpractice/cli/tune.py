"""Random search of learning rate and L2 strength, coarse to fine, over train.py.

    kcp-tune --trials 20 --epochs 2 \\
        --lr 1e-5:1e-2 --reg 1e-5:1e-1 --out_dir runs/tune
    kcp-tune --trials 8 --stages 2 --top_k 3 \\
        --out_dir runs/tune_quick -- --strategy=off --steps_per_epoch=20

Each stage draws --trials (learning rate, L2) pairs, each uniformly in log
space (`keras_cnnpractice.training.search`); stage 1 from --lr and --reg,
every later stage from ranges narrowed around the --top_k best trials so
far. Each trial is one `train.py --learning_rate=LR --l2=L2
--epochs=EPOCHS --model_dir=OUT_DIR/trials/NAME` in its own process; flags
after `--` go to every trial unchanged (absl stops parsing at `--`), except
the four the search sets itself. Trials are scored by their final
validation accuracy (`val_accuracy` of the last epoch in history.csv).

A trial that fails, or ends with a NaN or infinite loss, is recorded,
listed after the others and left out of the narrowing; the others go on.
If the first trial that runs fails because train.py rejected its flags,
the search stops there.

OUT_DIR gets, rewritten through a temporary name and a rename after every
trial, `trials.json` (the search's settings and one record per trial) and
`trials.csv`; at the end `search.svg`, validation accuracy by learning rate
(x, log) and L2 (y, log). A search that was stopped keeps its finished
trials: run the same command again and they are reused, not rerun. The
results table, best first, goes to stdout, with a warning when the best
value of a hyperparameter lies at the edge of its range.

Exit status: 0 when at least one trial finished with a finite loss, 1 when
none did, 2 for bad flags, an OUT_DIR that holds a different search or
cannot be written (one line on stderr).

Imports inside functions: the search and its trials' modules (numpy,
matplotlib), imported by the function that needs them once the flags are
parsed, so that `--help` and a bad flag answer without loading them (well
under a second).
"""

import pathlib
import sys

from absl import flags

from keras_cnnpractice._errors import first_line
from keras_cnnpractice.cli import _absl

PROG = "kcp-tune"

flags.DEFINE_integer("trials", 10, "Trials per stage.", lower_bound=1)
flags.DEFINE_integer("stages", 2, "Search stages: 1 is a plain random "
                     "search; each later stage narrows the ranges.",
                     lower_bound=1)
flags.DEFINE_integer("epochs", 2, "train.py --epochs of every trial.",
                     lower_bound=1)
flags.DEFINE_string("lr", "1e-5:1e-2", "Learning rate range LOW:HIGH, "
                    "sampled uniformly in log space.")
flags.DEFINE_string("reg", "1e-5:1e-1", "L2 strength range LOW:HIGH "
                    "(train.py --l2), sampled uniformly in log space.")
flags.DEFINE_integer("top_k", 3, "A fine stage's ranges cover the best "
                     "TOP_K trials so far.", lower_bound=1)
flags.DEFINE_string("out_dir", "runs/tune", "Trials, trials.json, "
                    "trials.csv and search.svg go here.")
flags.DEFINE_integer("seed", 0, "Seed of the hyperparameter draws.")
FLAGS = flags.FLAGS


def _range_validator(name):
    def check(value):
        from keras_cnnpractice.training.search import parse_range
        try:
            parse_range(value, name)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from err
        return True
    flags.register_validator(name, check)


_range_validator("lr")
_range_validator("reg")


def main(argv):
    from keras_cnnpractice.training.search import SearchSpace
    from keras_cnnpractice.training.search import edge_warnings
    from keras_cnnpractice.training.tuning import SearchError
    from keras_cnnpractice.training.tuning import check_train_flags
    from keras_cnnpractice.training.tuning import format_table
    from keras_cnnpractice.training.tuning import plot_search
    from keras_cnnpractice.training.tuning import ranked
    from keras_cnnpractice.training.tuning import run_search
    try:
        train_flags = check_train_flags(argv[1:])
        space = SearchSpace.parse({"learning_rate": FLAGS.lr,
                                   "l2": FLAGS.reg})
        out_dir = pathlib.Path(FLAGS.out_dir)
        records = run_search(out_dir, space, FLAGS.trials, FLAGS.stages,
                             FLAGS.epochs, FLAGS.top_k, FLAGS.seed,
                             train_flags)
    except (SearchError, ValueError, OSError) as err:
        print(f"{PROG}: error: {first_line(err)}", file=sys.stderr)
        return 2
    print(format_table(records))
    svg = plot_search(out_dir / "search.svg", records)
    best = ranked(records)[0]
    if best["status"] != "ok":
        print(f"{PROG}: error: no trial finished with a finite loss",
              file=sys.stderr)
        return 1
    print(f"Best: {best['name']} learning_rate={best['learning_rate']:.3e} "
          f"l2={best['l2']:.2e} val_accuracy={best['val_accuracy']:.4f}")
    for warning in edge_warnings(best, space):
        print(f"warning: {warning}")
    print(f"Wrote {out_dir / 'trials.json'}, {out_dir / 'trials.csv'} and "
          f"{svg}")
    return 0


def run():
    """The console script `kcp-tune`."""
    _absl.run(main, PROG, __doc__, tensorflow=False)


if __name__ == "__main__":
    run()
