"""One style for every command: a bad flag is one line on stderr,
`PROG: error: ...`, exit status 2, no traceback, answered before
TensorFlow is imported; `--help` lists the command's own flags (not absl's
or TensorFlow's) and exits with 0; every command is a console script."""

import os
import pathlib
import subprocess
import sys
import time
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

NAMES = ("train", "predict", "analyze", "doctor", "pack", "tune", "launch",
         "augment_preview", "ops", "data_service")
# prog -> the command line that runs it: the console scripts, plus the
# train.py shim the mission names.
COMMANDS = {f"kcp-{name.replace('_', '-')}":
            [sys.executable, "-m", f"keras_cnnpractice.cli.{name}"]
            for name in NAMES}
COMMANDS["train.py"] = [sys.executable, "train.py"]


def run_every_command(flag):
    """`{prog: (returncode, stdout, stderr)}` of every command run with
    `flag`, all at once (about one start-up's wait)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    running = {prog: subprocess.Popen(
        [*args, flag], cwd=REPO, env=env,
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
OWN_FLAG = {"kcp-train": "--strategy", "train.py": "--strategy",
            "kcp-predict": "--saved_model", "kcp-analyze": "--format",
            "kcp-doctor": "--strategy", "kcp-tune": "--trials",
            "kcp-launch": "--workers", "kcp-augment-preview": "--policy",
            "kcp-pack": "--format", "kcp-ops": "--[no]verbose",
            "kcp-data-service": "--dispatcher"}


def test_help_lists_the_commands_own_flags_and_exits_0():
    for prog, (returncode, stdout, stderr) in run_every_command(
            "--help").items():
        assert returncode == 0, (prog, stderr[-1500:])
        assert OWN_FLAG[prog] + ":" in stdout, (prog, stdout[-1500:])
        assert "--logtostderr" not in stdout and "--helpfull" not in stdout


@pytest.mark.parametrize("name", NAMES)
def test_flags_are_defined_without_tensorflow(name):
    code = (f"import sys, keras_cnnpractice.cli.{name}; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in "
            "sys.modules, sorted(m for m in sys.modules if 'tensorflow' in m "
            "or 'keras' in m)[:5]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]


def test_a_bad_flag_is_answered_within_a_second():
    # The slowest command's flags (train's, ~40 of them); best of three
    # tries, so a busy machine's hiccup does not count.
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        done = subprocess.run([*COMMANDS["kcp-train"], "--epochs=zero"],
                              capture_output=True, text=True, timeout=120)
        seconds.append(time.perf_counter() - start)
        assert done.returncode == 2 and "--epochs" in done.stderr
    assert min(seconds) < 1.0, seconds


def test_every_command_is_an_installed_console_script():
    from importlib import metadata
    entries = {entry.name: entry.value for entry in
               metadata.entry_points(group="console_scripts")
               if entry.name.startswith("kcp-")}
    assert entries == {prog: f"{args[-1]}:run" for prog, args in
                       COMMANDS.items() if prog != "train.py"}
    # (Each module's `run` is what the --help and bad-flag tests above run
    # through `python -m`.)
    for prog in entries:
        assert (pathlib.Path(sys.executable).parent / prog).is_file(), prog
