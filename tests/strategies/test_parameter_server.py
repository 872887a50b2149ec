"""train.py --strategy=parameter_server on a local cluster of 2 workers and
1 parameter server: a worker killed mid-training, then the whole job
killed and restarted."""

import json
import os
import re
import signal
import subprocess
import sys
import pytest

from tests.conftest import REPO
from tests.conftest import run_python

pytestmark = pytest.mark.integration

EPOCHS, STEPS = 3, 15


def _launch(model_dir):
    command = [sys.executable, "-m", "keras_cnnpractice.cli.launch", "--workers=2",
               "--ps=1", "--cluster_timeout_s=90", "--",
               sys.executable, "train.py", "--strategy=parameter_server",
               f"--epochs={EPOCHS}", f"--steps_per_epoch={STEPS}",
               "--batch_size=64", f"--model_dir={model_dir}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(command, cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _pids(lines):
    return {m.group(1): int(m.group(2)) for m in
            (re.search(r"started (\S+) \(pid (\d+)\)", ln) for ln in lines)
            if m}


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # exited already
            pass


@pytest.mark.slow
def test_killed_worker_then_killed_job_resumes_and_exports(tmp_path):
    launcher = _launch(tmp_path)
    seen = []
    try:
        for line in launcher.stdout:
            seen.append(line)
            if line.startswith("[chief:0] Epoch 1/3:"):
                os.kill(_pids(seen)["worker:1"], signal.SIGKILL)
            if line.startswith("[chief:0] Epoch 2/3:"):
                _kill(_pids(seen).values())  # the whole job, at once
        launcher.wait(timeout=60)
    finally:
        _kill(_pids(seen).values())
        launcher.kill()
        launcher.wait()
    log = "".join(seen)
    assert "[launch] worker:1 exited with -9; the coordinator reschedules" \
        in log, log[-3000:]
    # Epoch 2 ran on the remaining worker, every one of its steps; a step
    # the killed worker had applied but not reported is run again
    # (at-least-once), so the count may exceed the steps scheduled by one.
    epoch2 = re.search(r"\[chief:0\] Epoch 2/3: .* step (\d+)", log)
    assert epoch2, log[-3000:]
    steps = int(epoch2.group(1))
    assert 2 * STEPS <= steps <= 2 * STEPS + 1
    assert launcher.returncode != 0
    assert not (tmp_path / "result.json").exists()

    restarted = _launch(tmp_path)
    try:
        out, _ = restarted.communicate(timeout=300)
    finally:
        restarted.send_signal(signal.SIGINT)  # stops its tasks, if any
        restarted.wait()
    assert restarted.returncode == 0, out[-3000:]
    assert f"Resuming from the checkpoint of epoch 2 (step {steps})" in out, \
        out[-3000:]
    assert "Epoch 1/3" not in out and "Epoch 2/3" not in out
    assert re.search(rf"\[chief:0\] Epoch 3/3: .* step {steps + STEPS} ", out)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["initial_epoch"] == 2 and result["steps"] == steps + STEPS
    assert result["workers"] == 2 and result["parameter_servers"] == 1
    assert result["export_max_abs_diff"] <= 1e-5
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history] == ["epoch", "0", "1", "2"]
    # TensorBoard's epoch scalars, written by Keras's callback in both runs.
    import tensorflow as tf
    for split in ("train", "validation"):
        steps_logged = sorted(
            event.step for path in (tmp_path / "logs" / split).iterdir()
            for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value if value.tag == "epoch_loss")
        assert steps_logged == [0, 1, 2], split
    # A model that learned came out: the exported SavedModel, served in a
    # fresh process, classifies the held-out digits far above chance (10
    # classes); these 45 asynchronous steps of 64 examples reached 68% and
    # 74% in two runs of this test (the comparison with synchronous
    # training, over the default 15 epochs, is in
    # benchmarks/distributed.py).
    code = (
        "import numpy as np, tensorflow as tf\n"
        "from keras_cnnpractice.data import load_mnist5k\n"
        "_, (x, y) = load_mnist5k()\n"
        f"m = tf.saved_model.load({str(tmp_path / 'export')!r})\n"
        "p = m.serve(tf.constant(x.astype('float32'))).numpy()\n"
        "print('accuracy', float(np.mean(p.argmax(1) == y)))\n")
    served = float(run_python(["-c", code]).stdout.split()[-1])
    assert abs(served - result["test_accuracy"]) < 1e-6
    # Learned beyond chance (0.1): asynchronous steps after two kills vary
    # by run (0.32 to 0.74 seen), so the bound checks the resumed export
    # learned, not how well.
    assert served >= 0.25
