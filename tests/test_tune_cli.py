"""`kcp-tune` end to end: two real train.py trials,
the outputs, a rerun that reuses them, and one-line flag errors.

The search loop's other paths (failed and NaN trials, a different search
in the same directory, flags the search owns) are tested in-process with a
fake train.py in tests/training/test_tuning.py.
"""

import csv
import json

import pytest

from tests.conftest import run_python
from tests.svg_points import scatter_markers

pytestmark = pytest.mark.integration

TRAIN_FLAGS = ["--strategy=off", "--model=float_mlp", "--batch_size=16",
               "--steps_per_epoch=1"]


def _tune(out_dir, *args, check=True):
    return run_python(["-m", "keras_cnnpractice.cli.tune", "--trials=1",
                       "--stages=2", "--epochs=1", f"--out_dir={out_dir}",
                       *args, "--", *TRAIN_FLAGS], check=check)


@pytest.mark.slow
def test_search_end_to_end_and_rerun(tmp_path):
    result = _tune(tmp_path)
    out = result.stdout
    assert "Stage 1/2: 1 trials, learning_rate 1e-05:0.01, l2 1e-05:0.1" in out
    assert "Stage 2/2" in out and out.count("running: ") == 2
    saved = json.loads((tmp_path / "trials.json").read_text())
    records = saved["trials"]
    assert [r["name"] for r in records] == ["s1-t01", "s2-t01"]
    assert saved["search"]["train_flags"] == TRAIN_FLAGS
    for record in records:
        assert record["status"] == "ok" and 0 <= record["val_accuracy"] <= 1
        assert 1e-5 <= record["learning_rate"] <= 1e-2
        assert 1e-5 <= record["l2"] <= 1e-1
        # What train.py itself saved as its flags.
        flags = json.loads((tmp_path / "trials" / record["name"] /
                            "flags.json").read_text())
        assert flags["learning_rate"] == record["learning_rate"]
        assert flags["l2"] == record["l2"] and flags["epochs"] == 1
        assert flags["model"] == "float_mlp" and flags["strategy"] == "off"
    with open(tmp_path / "trials.csv") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["s1-t01", "s2-t01"]
    assert len(scatter_markers(tmp_path / "search.svg")) == 2  # (an SVG)
    # The table: header, then the trials, best validation accuracy first.
    table = out[out.index("rank  trial"):].splitlines()
    best = max(records, key=lambda r: r["val_accuracy"])
    assert table[1].split()[:2] == ["1", best["name"]]
    assert f"Best: {best['name']}" in out

    again = _tune(tmp_path)
    assert "running: " not in again.stdout
    assert again.stdout.count(": reused (ok") == 2


@pytest.mark.parametrize("args, message", [
    (["--lr=1e-2:1e-5"], "kcp-tune: error: flag --lr=1e-2:1e-5: The low bound "
     "of lr must be below the high bound. Received: low=0.01, high=1e-05"),
    (["--trials=0"], "kcp-tune: error: flag --trials=0: 0 is not a positive "
     "integer"),
])
def test_bad_flags_give_one_line_error(tmp_path, args, message):
    result = run_python(["-m", "keras_cnnpractice.cli.tune",
                         f"--out_dir={tmp_path}", *args], check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(message)
    assert [ln for ln in lines if ln.startswith("kcp-tune:")] == [lines[-1]]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "trials.json").exists()
