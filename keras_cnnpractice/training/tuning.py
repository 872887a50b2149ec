"""The coarse-to-fine search `kcp-tune` runs.

Each trial is one `train.py` run in its own process
(`keras_cnnpractice.training.jobs.run_train_job`) with the trial's
`--learning_rate` and `--l2`; its record (see `COLUMNS`) goes into
`trials.json` and `trials.csv`, rewritten through a temporary name and a
rename after every trial, so a search that is stopped keeps what it
finished and, run again with the same settings, reuses it.

Imports inside functions: the trial runner and the plots (matplotlib), so
that `kcp-tune` checks its flags and its output folder without loading them.
"""

import csv
import io
import json
import math
import time

import numpy as np

from keras_cnnpractice._files import write_text_atomic
from keras_cnnpractice.training.search import coarse_to_fine
from keras_cnnpractice.training.search import format_range

# The search owns these train.py flags.
_RESERVED = ("learning_rate", "l2", "epochs", "model_dir")
# Search name -> train.py flag.
PARAMS = {"learning_rate": "learning_rate", "l2": "l2"}
# A trial's record, in the column order of trials.csv.
COLUMNS = ("name", "stage", "learning_rate", "l2", "status", "val_accuracy",
           "val_loss", "train_loss", "train_accuracy", "seconds", "error")


class SearchError(Exception):
    """A problem with the search's flags or its output directory."""


def check_train_flags(args):
    """The pass-through train.py flags, checked for what the search owns.

    Raises:
        SearchError: an argument that is not a flag, or one the search sets.
    """
    for arg in args:
        if not arg.startswith("-"):
            raise SearchError(f"unexpected argument {arg!r}: train.py "
                              "flags go after `--`")
        name = arg.lstrip("-").split("=", 1)[0]
        if name in _RESERVED:
            raise SearchError(f"--{name} is set by the search for each "
                              "trial (use --lr, --reg, --epochs, --out_dir)")
    return list(args)


def score_run(result):
    """A trial's scores from `run_train_job`'s result of a finished run.

    Returns:
        `val_accuracy`, `val_loss`, `train_loss` and `train_accuracy` of the
        last epoch in history.csv (`val_accuracy` falls back on
        result.json's `test_accuracy`), with None for a missing or
        non-finite value, and `status`: "ok", or "nan" when a loss or the
        validation accuracy is missing or not finite.
    """
    history = result.get("history", {})
    record = {}
    for field, key in (("val_accuracy", "val_accuracy"),
                       ("val_loss", "val_loss"), ("train_loss", "loss"),
                       ("train_accuracy", "accuracy")):
        values = history.get(key)
        record[field] = float(values[-1]) if values else None
    if record["val_accuracy"] is None:
        record["val_accuracy"] = result.get("test_accuracy")
    def finite(value):
        return value is not None and math.isfinite(value)

    ok = finite(record["val_accuracy"]) and all(
        finite(record[f]) for f in ("val_loss", "train_loss")
        if record[f] is not None)
    for field, value in record.items():
        if value is not None and not math.isfinite(value):
            record[field] = None  # trials.json stays standard JSON
    record["status"] = "ok" if ok else "nan"
    return record


def _write_outputs(out_dir, settings, records):
    write_text_atomic(out_dir / "trials.json", json.dumps(
        {"search": settings, "trials": records}, indent=2) + "\n")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    write_text_atomic(out_dir / "trials.csv", text.getvalue())


def _load_previous(out_dir, settings):
    """Finished records of an earlier run of the same search, by name."""
    path = out_dir / "trials.json"
    if not path.exists():
        return {}
    try:
        saved = json.loads(path.read_text())
        previous = saved["search"]
    except (ValueError, KeyError, TypeError) as err:
        raise SearchError(f"cannot read {path}: {err}") from err
    if previous != settings:
        changed = sorted(k for k in set(previous) | set(settings)
                         if previous.get(k) != settings.get(k))
        raise SearchError(f"{out_dir} holds a different search (differs in "
                          f"{', '.join(changed)}); use another --out_dir")
    return {r["name"]: r for r in saved.get("trials", [])
            if r.get("status") in ("ok", "nan")}


def ranked(records):
    """Finished trials best first, then NaN and failed ones."""
    order = {"ok": 0, "nan": 1, "failed": 2}
    return sorted(records, key=lambda r: (
        order[r["status"]], -(r["val_accuracy"] or 0.0)
        if r["status"] == "ok" else 0.0, r["name"]))


def format_table(records):
    """The trials as a text table, best validation accuracy first."""

    def num(value, spec):
        return "-" if value is None else format(value, spec)

    lines = [f"{'rank':>4}  {'trial':<8} {'learning_rate':>13} {'l2':>9} "
             f"{'val_acc':>7} {'val_loss':>8} {'loss':>8}  status"]
    for rank, r in enumerate(ranked(records), 1):
        lines.append(
            f"{rank:>4}  {r['name']:<8} {num(r['learning_rate'], '.3e'):>13} "
            f"{num(r['l2'], '.2e'):>9} {num(r['val_accuracy'], '.4f'):>7} "
            f"{num(r['val_loss'], '.4f'):>8} {num(r['train_loss'], '.4f'):>8}"
            f"  {r['status']}" + (f": {r['error']}" if r.get("error") else ""))
    return "\n".join(lines)


def run_search(out_dir, space, trials, stages, epochs, top_k=3, seed=0,
               train_flags=()):
    """Runs a coarse-to-fine random search, one `train.py` per trial.

    Stage s draws `trials` points from `space` (stage 1) or from
    `coarse_to_fine(space, finished trials so far, top_k)`, with
    `numpy.random.default_rng([seed, s])`, and names them `s<S>-t<NN>`;
    each runs in `OUT_DIR/trials/NAME`. A trial recorded as finished ("ok"
    or "nan") in an earlier run of the same search is reused; failed ones
    are run again.

    Args:
        out_dir: a `pathlib.Path`, created when missing.
        space: a `SearchSpace` with "learning_rate" and "l2".
        trials: trials per stage.
        stages: stages (1: a plain random search).
        epochs: `train.py --epochs` of every trial.
        top_k: the fine ranges cover the `top_k` best finished trials.
        seed: seed of the draws.
        train_flags: further `train.py` flags for every trial.

    Returns:
        Every trial's record (the `COLUMNS`), in the order they were drawn.

    Raises:
        SearchError: `out_dir` holds a different search, or `train.py`
            rejected the flags of the first trial this call ran.
    """
    from keras_cnnpractice.training.jobs import run_train_job

    settings = {"lr": list(space.ranges["learning_rate"]),
                "reg": list(space.ranges["l2"]), "trials": trials,
                "stages": stages, "epochs": epochs, "top_k": top_k,
                "seed": seed, "train_flags": list(train_flags)}
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _load_previous(out_dir, settings)
    records = []
    stage_space = space
    checked_flags = False
    for stage in range(1, stages + 1):
        if stage > 1:
            ok = [r for r in records if r["status"] == "ok"]
            stage_space = coarse_to_fine(space, ok, top_k=top_k)
        print(f"Stage {stage}/{stages}: {trials} trials, " + ", ".join(
            f"{name} {format_range(bounds)}"
            for name, bounds in stage_space.ranges.items()), flush=True)
        draws = stage_space.sample(np.random.default_rng([seed, stage]),
                                   trials)
        for index, params in enumerate(draws, 1):
            name = f"s{stage}-t{index:02d}"
            record = {"name": name, "stage": stage, **params,
                      "status": "failed", "val_accuracy": None,
                      "val_loss": None, "train_loss": None,
                      "train_accuracy": None, "seconds": None, "error": None}
            if name in previous:
                record.update(previous[name])
                print(f"  {name}: reused ({record['status']}, val_accuracy "
                      f"{record['val_accuracy']})", flush=True)
                records.append(record)
                continue
            job_flags = [*train_flags, f"--epochs={epochs}"] + [
                f"--{PARAMS[key]}={value!r}" for key, value in params.items()]
            start = time.perf_counter()
            result = run_train_job(job_flags, out_dir / "trials" / name,
                                   log=lambda line: print("  " + line,
                                                          flush=True))
            record["seconds"] = round(time.perf_counter() - start, 1)
            if "error" in result:
                if result.get("returncode") == 2 and not checked_flags:
                    raise SearchError("train.py rejected the trial's "
                                      f"flags: {result['error']}")
                record["error"] = result["error"]
            else:
                record.update(score_run(result))
            checked_flags = True
            records.append(record)
            _write_outputs(out_dir, settings, records)
            print(f"  {name}: learning_rate={params['learning_rate']:.3e} "
                  f"l2={params['l2']:.2e} -> {record['status']}"
                  + (f", val_accuracy {record['val_accuracy']:.4f}"
                     if record["val_accuracy"] is not None else "")
                  + (f" ({record['error']})" if record["error"] else ""),
                  flush=True)
    _write_outputs(out_dir, settings, records)
    return records


def plot_search(path, records):
    """search.svg: validation accuracy by learning rate and L2 (log axes)."""
    from keras_cnnpractice.plots import scatter_plot
    done = [r for r in records if r["status"] == "ok"]
    if not done:
        return None
    return scatter_plot(
        path, [(r["learning_rate"], r["l2"]) for r in done],
        f"Validation accuracy of {len(done)} trials", "learning rate",
        "L2 strength", log_x=True, log_y=True,
        values=[r["val_accuracy"] for r in done],
        value_label="validation accuracy")
