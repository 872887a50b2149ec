"""One style for every command: a bad flag is one line on stderr,
`PROG: error: ...`, exit status 2, no traceback; `--help` lists the
command's own flags (not absl's or TensorFlow's) and exits with 0."""

import os
import subprocess
import sys

from tests.conftest import REPO

COMMANDS = {
    "train.py": ["train.py"],
    "predict": ["-m", "keras_cnnpractice.predict"],
    "analyze": ["-m", "keras_cnnpractice.analyze"],
    "doctor": ["-m", "keras_cnnpractice.doctor"],
    "tune": ["-m", "keras_cnnpractice.tune"],
    "launch": ["-m", "keras_cnnpractice.launch"],
    "augment_preview": ["-m", "keras_cnnpractice.augment_preview"],
    "pack": ["-m", "keras_cnnpractice.data.pack"],
}


def run_every_command(flag):
    """`{prog: (returncode, stdout, stderr)}` of every command run with
    `flag`, all at once (about one start-up's wait)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    running = {prog: subprocess.Popen(
        [sys.executable, *args, flag], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for prog, args in COMMANDS.items()}
    results = {}
    for prog, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        results[prog] = (process.returncode, stdout, stderr)
    return results


def test_a_bad_flag_is_one_line_exit_2_in_every_command():
    for prog, (returncode, _, stderr) in run_every_command(
            "--no_such_flag=1").items():
        lines = [line for line in stderr.strip().splitlines()
                 if f"{prog}: error:" in line]
        assert returncode == 2, (prog, stderr[-1500:])
        assert len(lines) == 1 and "no_such_flag" in lines[0], (prog, stderr)
        assert "Traceback" not in stderr and "FATAL" not in stderr, prog


# A flag of each command's own that --help must list.
OWN_FLAG = {"train.py": "--strategy", "predict": "--saved_model",
            "analyze": "--format", "doctor": "--strategy", "tune": "--trials",
            "launch": "--workers", "augment_preview": "--policy",
            "pack": "--format"}


def test_help_lists_the_commands_own_flags_and_exits_0():
    for prog, (returncode, stdout, stderr) in run_every_command(
            "--help").items():
        assert returncode == 0, (prog, stderr[-1500:])
        assert OWN_FLAG[prog] + ":" in stdout, (prog, stdout[-1500:])
        assert "--logtostderr" not in stdout and "--helpfull" not in stdout
