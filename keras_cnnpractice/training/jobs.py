"""Running `train.py` in a child process and reading back what it wrote.

Benchmarks and the hyperparameter search (`kcp-tune`) run
many short trainings; each gets its own process, so one that crashes, hangs
on a bad configuration or leaves TensorFlow in an odd state cannot take the
others down, and each starts from the same clean runtime.
"""

import json
import os
import pathlib
import subprocess
import sys

from keras_cnnpractice.training.curves import read_history


def train_command():
    """The command line that runs `kcp-train` with this Python, from a
    checkout or an installed wheel alike."""
    return [sys.executable, "-m", "keras_cnnpractice.cli.train"]


def read_run(model_dir):
    """result.json of a finished `train.py` run plus its per-epoch history.

    Returns:
        result.json's dict plus `history` (history.csv's columns as lists,
        one float per epoch, NaN where a value is missing; `{}` when the
        file has no rows or is missing).
    """
    model_dir = pathlib.Path(model_dir)
    result = json.loads((model_dir / "result.json").read_text())
    history_path = model_dir / "history.csv"
    result["history"] = (read_history(history_path)
                         if history_path.exists() else {})
    return result


def run_train_job(job_flags, model_dir, log=print, timeout=None):
    """Runs `train.py JOB_FLAGS --model_dir=MODEL_DIR` in its own process.

    A job whose `result.json` is already in `model_dir` is not run again, so
    a long series of jobs that was stopped keeps what it finished (and a
    job killed mid-run resumes from its last epoch checkpoint, as
    `train.py` does).

    Args:
        job_flags: `train.py` flags, e.g. `["--epochs=2"]`; `--model_dir`
            is added.
        model_dir: the job's directory.
        log: called with one line of progress text at a time.
        timeout: seconds before the job is killed (None: no limit).

    Returns:
        `read_run(model_dir)`'s dict, or, when the job failed, `{"error":
        its last log line, "returncode": its exit status}` (`returncode` is
        2 when `train.py` rejected its flags, None on a timeout).
    """
    saved = os.path.join(model_dir, "result.json")
    if os.path.exists(saved):
        log(f"reusing {saved}")
        return read_run(model_dir)
    cmd = [*train_command(), *job_flags, f"--model_dir={model_dir}"]
    log("running: " + " ".join(cmd[1:]))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "returncode": None}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        return {"error": " ".join(tail) or f"exit status {done.returncode}",
                "returncode": done.returncode}
    return read_run(model_dir)
