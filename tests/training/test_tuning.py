"""The search loop of `kcp-tune`, with train.py replaced by a
fake so that failures, NaN runs and resuming are quick to check."""

import csv
import json
import math

import pytest

from keras_cnnpractice.training import jobs
from keras_cnnpractice.training.search import SearchSpace
from keras_cnnpractice.training.tuning import SearchError
from keras_cnnpractice.training.tuning import check_train_flags
from keras_cnnpractice.training.tuning import format_table
from keras_cnnpractice.training.tuning import plot_search
from tests.svg_points import scatter_markers
from keras_cnnpractice.training.tuning import run_search

SPACE = SearchSpace({"learning_rate": (1e-5, 1e-1), "l2": (1e-5, 1e-1)})


class FakeTrain:
    """Stands in for `run_train_job`: the accuracy peaks at lr 1e-3; a
    learning rate above 3e-2 gives NaN losses, and the third job fails."""

    def __init__(self, fail_call=3):
        self.calls = []
        self.fail_call = fail_call

    def __call__(self, job_flags, model_dir, log=print, timeout=None):
        self.calls.append(model_dir.name)
        values = dict(f[2:].split("=") for f in job_flags)
        lr = float(values["learning_rate"])
        if len(self.calls) == self.fail_call:
            return {"error": "train.py: crashed", "returncode": 1}
        if lr > 3e-2:
            return {"test_accuracy": 0.1, "history": {
                "loss": [math.nan], "val_loss": [math.nan],
                "accuracy": [0.1], "val_accuracy": [0.1]}}
        accuracy = 0.95 - 0.1 * abs(math.log10(lr) + 3)
        return {"test_accuracy": accuracy, "history": {
            "loss": [1.0, 0.5], "val_loss": [1.1, 0.6],
            "accuracy": [0.5, 0.8], "val_accuracy": [0.4, accuracy]}}


def _search(tmp_path, fake, monkeypatch, **kwargs):
    monkeypatch.setattr(jobs, "run_train_job", fake)
    settings = dict(out_dir=tmp_path, space=SPACE, trials=6, stages=2,
                    epochs=1, top_k=2, seed=0, train_flags=["--strategy=off"])
    settings.update(kwargs)
    return run_search(**settings)


def test_failed_and_nan_trials_are_recorded_and_skipped(tmp_path,
                                                        monkeypatch):
    fake = FakeTrain()
    records = _search(tmp_path, fake, monkeypatch)
    assert [r["name"] for r in records] == [
        f"s{s}-t{i:02d}" for s in (1, 2) for i in range(1, 7)]
    statuses = [r["status"] for r in records]
    assert statuses[2] == "failed" and records[2]["error"] == "train.py: crashed"
    nan = [r for r in records if r["learning_rate"] > 3e-2]
    assert nan and all(r["status"] == "nan" and r["val_loss"] is None
                       for r in nan)
    # Stage 2 draws inside the stage-1 ranges narrowed around the best two.
    best = sorted((r for r in records[:6] if r["status"] == "ok"),
                  key=lambda r: -r["val_accuracy"])[:2]
    low = min(math.log10(r["learning_rate"]) for r in best) - 0.4
    high = max(math.log10(r["learning_rate"]) for r in best) + 0.4
    assert all(low - 1e-9 <= math.log10(r["learning_rate"]) <= high + 1e-9
               for r in records[6:])

    saved = json.loads((tmp_path / "trials.json").read_text(),
                       parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert saved["search"]["lr"] == [1e-5, 1e-1]
    assert saved["trials"] == records
    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [r["name"] for r in records]
    assert float(rows[0]["learning_rate"]) == records[0]["learning_rate"]

    lines = format_table(records).splitlines()
    ok = sorted((r for r in records if r["status"] == "ok"),
                key=lambda r: -r["val_accuracy"])
    assert lines[1].split()[1] == ok[0]["name"]
    assert lines[-1].endswith("failed: train.py: crashed")
    path = plot_search(tmp_path / "search.svg", records)
    assert len(scatter_markers(path)) == len(ok)


def test_rerun_reuses_finished_trials(tmp_path, monkeypatch):
    first = _search(tmp_path, FakeTrain(), monkeypatch)
    again = FakeTrain(fail_call=0)
    second = _search(tmp_path, again, monkeypatch)
    assert again.calls == ["s1-t03"]  # only the failed trial runs again
    assert second[2]["status"] == "ok"
    assert [r for i, r in enumerate(second) if i != 2] == [
        r for i, r in enumerate(first) if i != 2]


def test_a_different_search_in_the_same_directory_is_refused(tmp_path,
                                                            monkeypatch):
    _search(tmp_path, FakeTrain(), monkeypatch, stages=1)
    with pytest.raises(SearchError, match="differs in seed, trials"):
        _search(tmp_path, FakeTrain(), monkeypatch, stages=1, seed=1,
                trials=3)


def test_rejected_train_flags_stop_the_search(tmp_path, monkeypatch):
    def reject(job_flags, model_dir, log=print, timeout=None):
        return {"error": "train.py: error: Unknown command line flag 'x'",
                "returncode": 2}

    with pytest.raises(SearchError, match="rejected the trial's flags: "
                       "train.py: error: Unknown command line flag 'x'"):
        _search(tmp_path, reject, monkeypatch)


@pytest.mark.parametrize("args, message", [
    (["--epochs=3"], "--epochs is set by the search"),
    (["--model_dir=/tmp/x"], "--model_dir is set by the search"),
    (["--learning_rate", "0.1"], "--learning_rate is set by the search"),
    (["strategy=off"], "unexpected argument 'strategy=off'"),
])
def test_check_train_flags(args, message):
    assert check_train_flags(["--strategy=off", "--batch_size=8"]) == [
        "--strategy=off", "--batch_size=8"]
    with pytest.raises(SearchError, match=message):
        check_train_flags(args)
