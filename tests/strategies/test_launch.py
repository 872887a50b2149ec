"""The local cluster launcher, with stand-in tasks (no TensorFlow)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

FAKE = str(REPO / "tests" / "strategies" / "fake_task.py")


def _launch(actions, *flags):
    return subprocess.Popen(
        [sys.executable, "-m", "keras_cnnpractice.cli.launch", *flags, "--",
         sys.executable, FAKE, json.dumps(actions)], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", out)]
    for pid in pids:  # every task is gone (killed and reaped)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    return proc.returncode, out, err


def test_prefixed_output_and_the_chief_status():
    code, out, _ = _finish(_launch({"worker:0": "exit:3:2",
                                    "worker:1": "exit:0:1.5"}, "--workers=2"))
    assert code == 3
    assert "[worker:0] hello from worker:0\n" in out
    assert "[worker:1] hello from worker:1\n" in out
    assert "[worker:0] worker:0 exits with 3\n" in out
    config = json.loads(re.search(r"\[launch\] cluster: (.*)", out).group(1)
                        .replace("'", '"'))
    assert list(config) == ["worker"] and len(config["worker"]) == 2


def test_servers_are_stopped_when_the_chief_exits():
    start = time.monotonic()
    code, out, _ = _finish(_launch({"chief:0": "exit:0:1",
                                    "ps:0": "stubborn"},
                                   "--workers=2", "--ps=1"))
    assert code == 0
    assert re.search(r"\[launch\] stopping (worker:0|worker:1|ps:0)(, "
                     r"(worker:0|worker:1|ps:0)){2}: the chief chief:0 "
                     r"exited with 0", out), out
    # The stubborn parameter server ignored SIGTERM and got SIGKILL.
    assert time.monotonic() - start < 30


def test_a_lost_parameter_server_worker_is_tolerated():
    code, out, _ = _finish(_launch({"chief:0": "exit:0:3",
                                    "worker:1": "exit:1:1.5"},
                                   "--workers=2", "--ps=1"))
    assert code == 0
    assert ("[launch] worker:1 exited with 1; the coordinator reschedules "
            "its steps on the other workers") in out


def test_a_failed_multi_worker_mirrored_worker_stops_the_cluster():
    code, out, _ = _finish(_launch({"worker:2": "exit:7:1.5"},
                                   "--workers=3"))
    assert code == 7
    assert re.search(r"stopping worker:\d, worker:\d: worker:2 failed with "
                     "7", out), out


def test_a_task_that_never_comes_up():
    start = time.monotonic()
    code, out, err = _finish(_launch({"worker:1": "noport"}, "--workers=2",
                                     "--cluster_timeout_s=1"))
    assert code == 1
    assert re.fullmatch(r"kcp-launch: error: worker:1 at 127\.0\.0\.1:\d+ did not "
                        r"come up within 1 s \(--cluster_timeout_s\); .*",
                        err.strip()), err
    assert time.monotonic() - start < 20


def test_a_chief_that_exits_before_the_cluster_is_up():
    code, _, err = _finish(_launch({"worker:0": "exit:2:0"}, "--workers=2",
                                   "--cluster_timeout_s=30"))
    assert code == 2 and not err


def test_ctrl_c_stops_every_task():
    proc = _launch({}, "--workers=2", "--ps=1")
    for line in proc.stdout:
        if "[launch] every task is up" in line:
            break
    proc.send_signal(signal.SIGINT)
    code, out, _ = _finish(proc)
    assert code == 130
    assert "interrupted" in out


def test_ports_in_use():
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = _finish(_launch({}, "--workers=2",
                                       f"--base_port={port - 1}"))
    assert code == 1
    assert err.strip() == (
        f"kcp-launch: error: Port {port} of task worker:1 (127.0.0.1:{port}) is "
        "in use by another process; free it or choose another port. "
        f"Received: address='127.0.0.1:{port}' (--base_port={port - 1} takes "
        f"ports {port - 1}-{port})")


def test_no_command():
    done = subprocess.run([sys.executable, "-m", "keras_cnnpractice.cli.launch",
                           "--workers=2"], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("kcp-launch: error: no command")
