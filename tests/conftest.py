"""Shared test helpers."""

import os
import subprocess
import sys
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

REPO = pathlib.Path(__file__).resolve().parent.parent


def run_python(args, timeout=600, check=True, **kwargs):
    """Runs `python ARGS` from the repository root; returns CompletedProcess."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=timeout,
                            **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"python {' '.join(args)} failed with "
                             f"{result.returncode}:\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


# The files whose tests start training jobs or clusters in child processes
# (half a minute to a minute each). They are collected first so that the
# two pytest-xdist workers of `make test` start on them and the quick tests
# fill in behind: run last, one of them would leave a worker alone for its
# whole length at the end.
SLOW_FIRST = ("tests/test_train.py", "tests/strategies/",
              "tests/test_tune_cli.py",
              "tests/training/test_checkpoint_faults.py",
              "tests/test_doctor.py", "tests/test_cli_errors.py",
              "tests/models/test_zoo.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))
