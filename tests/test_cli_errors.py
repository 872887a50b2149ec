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


def test_a_bad_flag_is_one_line_exit_2_in_every_command():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    running = {prog: subprocess.Popen(
        [sys.executable, *args, "--no_such_flag=1"], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for prog, args in COMMANDS.items()}  # all at once: ~one start-up
    for prog, process in running.items():
        _, stderr = process.communicate(timeout=300)
        lines = [line for line in stderr.strip().splitlines()
                 if f"{prog}: error:" in line]
        assert process.returncode == 2, (prog, stderr[-1500:])
        assert len(lines) == 1 and "no_such_flag" in lines[0], (prog, stderr)
        assert "Traceback" not in stderr and "FATAL" not in stderr, prog


# A flag of each command's own that --help must list.
OWN_FLAG = {"train.py": "--strategy", "predict": "--saved_model",
            "analyze": "--format", "doctor": "--strategy", "tune": "--trials",
            "launch": "--workers", "augment_preview": "--policy",
            "pack": "--format"}


def test_help_lists_the_commands_own_flags_and_exits_0():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    running = {prog: subprocess.Popen(
        [sys.executable, *args, "--help"], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for prog, args in COMMANDS.items()}
    for prog, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, (prog, stderr[-1500:])
        assert OWN_FLAG[prog] + ":" in stdout, (prog, stdout[-1500:])
        assert "--logtostderr" not in stdout and "--helpfull" not in stdout
