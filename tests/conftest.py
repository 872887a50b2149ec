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
