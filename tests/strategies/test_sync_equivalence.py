"""Synchronous data parallelism is the same computation: one step of
`mirrored` (2 replicas) and of `multi_worker_mirrored` (2 worker processes)
with global batch B gives the weights one step of `off` with batch B gives;
and train.py under multi_worker_mirrored, with chief-only files."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.conftest import run_python
from tests.strategies.one_step import initial_weights
from tests.strategies.one_step import one_step

pytestmark = pytest.mark.integration

BATCH = 16
ONE_STEP = str(REPO / "tests" / "strategies" / "one_step.py")


def _launch(*command):
    return [sys.executable, "-m", "keras_cnnpractice.cli.launch", "--workers=2",
            "--cluster_timeout_s=90", "--", sys.executable, *command]


@pytest.mark.slow
def test_one_step_of_mirrored_and_multi_worker_mirrored_equals_off(tmp_path):
    runs = {
        "mirrored": subprocess.Popen(
            [sys.executable, ONE_STEP, "mirrored", str(BATCH),
             str(tmp_path / "mirrored.npz")], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
        "multi_worker_mirrored": subprocess.Popen(
            _launch(ONE_STEP, "multi_worker_mirrored", str(BATCH),
                    str(tmp_path / "multi_worker_mirrored.npz")), cwd=REPO,
            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
    }
    reference, _ = one_step("off", BATCH)  # meanwhile, in this process
    for name, proc in runs.items():
        try:
            out, _ = proc.communicate(timeout=300)
        finally:
            proc.kill()
        assert proc.returncode == 0, out[-3000:]
        assert out.count(f"{name}: one step done") == (
            2 if name == "multi_worker_mirrored" else 1)
        saved = np.load(tmp_path / f"{name}.npz")
        weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        assert [w.shape for w in weights] == [w.shape for w in reference]
        for got, want in zip(weights, reference):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # The step moved every weight array (not a vacuous comparison).
    before = initial_weights([w.shape for w in reference])
    for start, end in zip(before, reference):
        assert np.max(np.abs(end - start)) > 1e-4


@pytest.mark.slow
def test_train_py_multi_worker_mirrored_chief_writes(tmp_path):
    out = run_python(_launch(
        "train.py", "--strategy=multi_worker_mirrored", "--epochs=2",
        "--steps_per_epoch=3", "--batch_size=32",
        f"--model_dir={tmp_path}")[1:], timeout=400).stdout
    for worker in (0, 1):
        assert (f"[worker:{worker}] Strategy: MultiWorkerMirroredStrategy, 2 "
                "replicas in sync") in out
    # Both replicas evaluated the same synchronized model.
    accuracies = re.findall(r"\[worker:(\d)\] Test accuracy: (\S+)", out)
    assert sorted(accuracies) == [("0", accuracies[0][1]),
                                  ("1", accuracies[0][1])]
    # The chief exported to MODEL_DIR, worker 1 to a scratch folder it
    # removed.
    assert f"[worker:0] Exported SavedModel to {tmp_path}/export " in out
    scratch = re.search(r"\[worker:1\] Exported SavedModel to (\S+)/export ",
                        out).group(1)
    assert not scratch.startswith(str(tmp_path))
    assert not (REPO / scratch).exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch-1.weights.h5", "epoch-2.weights.h5"]
    assert (tmp_path / "export" / "saved_model.pb").is_file()
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 3
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["replicas"] == 2 and result["workers"] == 2
    assert result["export_max_abs_diff"] <= 1e-5
    assert json.loads((tmp_path / "flags.json").read_text())["strategy"] == \
        "multi_worker_mirrored"
