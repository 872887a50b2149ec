"""TF_CONFIG checks, ports, and bad clusters failing fast with clear errors."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from keras_cnnpractice.strategies import cluster
from tests.conftest import REPO

pytestmark = pytest.mark.integration

GOOD = {"cluster": {"worker": ["localhost:2222", "localhost:2223"]},
        "task": {"type": "worker", "index": 1}}
PS = {"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"],
                  "ps": ["h3:1"]}, "task": {"type": "ps", "index": 0}}


def test_good_tf_config():
    config = cluster.parse_tf_config(json.dumps(GOOD), "multi_worker_mirrored")
    assert config.task_name == "worker:1" and config.address == "localhost:2223"
    assert not config.is_chief and config.num_tasks("worker") == 2
    assert cluster.parse_tf_config(config.to_json(),
                                   "multi_worker_mirrored") == config
    zero = cluster.parse_tf_config(json.dumps(dict(GOOD, task={
        "type": "worker", "index": 0})), "multi_worker_mirrored")
    assert zero.is_chief  # worker 0 of a cluster without a chief
    ps = cluster.parse_tf_config(json.dumps(PS), "parameter_server")
    assert not ps.is_chief
    assert [name for name, _ in ps.tasks()] == [
        "chief:0", "ps:0", "worker:0", "worker:1"]


@pytest.mark.parametrize("text, strategy, message", [
    (None, "multi_worker_mirrored", "TF_CONFIG environment variable, which "
     "is not set"),
    ("{cluster: 1}", "multi_worker_mirrored", "TF_CONFIG is not valid JSON"),
    ("[1, 2]", "multi_worker_mirrored", "must be a JSON object"),
    (json.dumps({"task": GOOD["task"]}), "multi_worker_mirrored",
     "TF_CONFIG has no 'cluster' object"),
    (json.dumps({"cluster": GOOD["cluster"]}), "multi_worker_mirrored",
     "TF_CONFIG has no 'task' object"),
    (json.dumps(dict(GOOD, task={"type": "wroker", "index": 0})),
     "multi_worker_mirrored", "task type 'wroker' is not a job of the "
     "cluster \\(worker\\)"),
    (json.dumps(dict(GOOD, task={"type": "worker", "index": 2})),
     "multi_worker_mirrored", "task index 2 is out of range for job "
     "'worker', which has 2 task"),
    (json.dumps(dict(GOOD, task={"type": "worker", "index": -1})),
     "multi_worker_mirrored", "task index -1 is out of range"),
    (json.dumps(dict(GOOD, task={"type": "worker", "index": "1"})),
     "multi_worker_mirrored", "task index '1' is out of range"),
    (json.dumps({"cluster": {"worker": ["localhost"]}, "task": GOOD["task"]}),
     "multi_worker_mirrored", "must be 'host:port'"),
    (json.dumps({"cluster": {"worker": ["a:99999"]}, "task": GOOD["task"]}),
     "multi_worker_mirrored", "port in 1..65535"),
    (json.dumps({"cluster": {"worker": []}, "task": GOOD["task"]}),
     "multi_worker_mirrored", "must be a non-empty list"),
    (json.dumps(PS), "multi_worker_mirrored", "takes the jobs chief, worker; "
     "the cluster names job 'ps'"),
    (json.dumps(GOOD), "parameter_server", "needs the jobs chief, worker, ps;"
     " the cluster has no chief, ps"),
    (json.dumps({"cluster": dict(PS["cluster"], chief=["a:1", "b:1"]),
                 "task": PS["task"]}), "parameter_server", "one chief"),
])
def test_bad_tf_config_names_the_problem(text, strategy, message):
    with pytest.raises(ValueError, match=message):
        cluster.parse_tf_config(text, strategy)


def test_ports():
    ports = cluster.free_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= p < 65536 for p in ports)
    cluster.check_port_free(f"localhost:{ports[0]}", "worker:0")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"Port {port} of task worker:1 "
                           f"\\(localhost:{port}\\) is in use"):
            cluster.check_port_free(f"localhost:{port}", "worker:1")
        cluster.wait_for_tasks([("worker:1", f"127.0.0.1:{port}")], 5)
    start = time.monotonic()
    with pytest.raises(cluster.ClusterTimeoutError,
                       match=f"worker:1 at 127.0.0.1:{port} did not come up "
                       "within 0.5 s"):
        cluster.wait_for_tasks([("worker:1", f"127.0.0.1:{port}")], 0.5)
    assert time.monotonic() - start < 5


def test_factory_checks_tf_config_and_ports(monkeypatch):
    from keras_cnnpractice.strategies import get_strategy
    monkeypatch.setenv("TF_CONFIG", "not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        get_strategy("multi_worker_mirrored")
    monkeypatch.setenv("TF_CONFIG", json.dumps(PS))
    with pytest.raises(ValueError, match="Task ps:0 is a server of the "
                       "parameter-server cluster, not its coordinator"):
        get_strategy("parameter_server")
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        address = f"localhost:{busy.getsockname()[1]}"
        monkeypatch.setenv("TF_CONFIG", json.dumps({
            "cluster": {"worker": [address, "localhost:1"]},
            "task": {"type": "worker", "index": 0}}))
        with pytest.raises(ValueError, match=f"task worker:0 \\({address}\\)"
                           " is in use by another process"):
            get_strategy("multi_worker_mirrored")
    with pytest.raises(ValueError, match="cluster_timeout_s must be positive"):
        get_strategy("multi_worker_mirrored", cluster_timeout_s=0)


def _train_alone(tf_config, strategy, model_dir):
    """train.py as one task of a cluster whose other tasks never start."""
    env = dict(os.environ, TF_CONFIG=json.dumps(tf_config),
               PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "train.py", f"--strategy={strategy}",
         "--cluster_timeout_s=3", f"--model_dir={model_dir}"],
        cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)


def test_missing_tasks_and_bad_tf_config_fail_fast(tmp_path):
    """Three train.py processes side by side: a multi_worker_mirrored
    worker 0 and a parameter-server chief whose peers never start, and a
    TF_CONFIG naming a task its cluster lacks; each ends with a one-line
    error within the timeout (3 s) plus TensorFlow's start-up."""
    a, b, c, d = cluster.free_ports(4)
    runs = {
        "mwms": _train_alone({"cluster": {"worker": [f"127.0.0.1:{a}",
                                                     f"127.0.0.1:{b}"]},
                              "task": {"type": "worker", "index": 0}},
                             "multi_worker_mirrored", tmp_path / "mwms"),
        "ps": _train_alone({"cluster": {"chief": [f"127.0.0.1:{c}"],
                                        "worker": [f"127.0.0.1:{d}"],
                                        "ps": ["127.0.0.1:1"]},
                            "task": {"type": "chief", "index": 0}},
                           "parameter_server", tmp_path / "ps"),
        "task": _train_alone({"cluster": {"worker": ["x:1"]},
                              "task": {"type": "chief"}},
                             "multi_worker_mirrored", tmp_path / "json"),
    }
    start = time.monotonic()
    results = {}
    for name, proc in runs.items():
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        results[name] = (proc.returncode, err.strip().splitlines()[-1])
    assert time.monotonic() - start < 120
    code, line = results["mwms"]
    assert code == 1, line
    assert line.startswith("train.py: error: The cluster did not come up "
                           "within 3 s (--cluster_timeout_s): task worker:0 "
                           "waited for worker:1"), line
    code, line = results["ps"]
    assert code == 1, line
    assert line == (f"train.py: error: ps:0 at 127.0.0.1:1, worker:0 at "
                    f"127.0.0.1:{d} did not come up within 3 s "
                    "(--cluster_timeout_s); check that the task was started, "
                    "with the same cluster in its TF_CONFIG, and that its "
                    "port is reachable from here"), line
    code, line = results["task"]
    assert code == 2, line
    assert line.startswith("train.py: error: TF_CONFIG: task type 'chief' is "
                           "not a job of the cluster (worker)"), line
