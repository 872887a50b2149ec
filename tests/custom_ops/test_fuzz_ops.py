"""A short fuzz of every compiled op (`fuzz_ops.py`) in a child process:
random bad shapes, dtypes and attributes are refused with an exception,
never by a signal that kills the process, and never by a hang."""

import pathlib
import subprocess
import sys

FUZZ = pathlib.Path(__file__).with_name("fuzz_ops.py")


def test_no_op_dies_or_hangs_on_random_arguments():
    result = subprocess.run(
        [sys.executable, str(FUZZ), "--cases", "400", "--seed", "0"],
        capture_output=True, text=True, timeout=240)
    last = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    assert result.returncode == 0, (
        f"exit {result.returncode} after {last}\n{result.stderr[-2000:]}")
    assert last.startswith("done: 400 cases"), last
