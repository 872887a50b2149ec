"""The cluster a multi-worker strategy runs on: `TF_CONFIG`, checked; the
ports of its tasks; waiting for them to come up; serving as a worker or
parameter server.

`TF_CONFIG` is the JSON TensorFlow's `TFConfigClusterResolver` reads, e.g.

    {"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222",
                 "host2:2222"], "ps": ["host3:2222"]},
     "task": {"type": "worker", "index": 1}}

TensorFlow itself accepts much that cannot work (a task type the cluster
lacks, an index past its job's end) and then hangs or fails deep inside
gRPC; `read_tf_config` rejects it up front with a `ValueError` that says
what is wrong.

Imports inside functions: TensorFlow (and the op library), in `run_server`
only, so that `kcp-launch` and the flag checks read and check `TF_CONFIG`
without loading it.
"""

import dataclasses
import errno
import json
import os
import socket
import time

from keras_cnnpractice._validate import is_int

# The jobs each multi-worker strategy's cluster may have; the first one
# listed under "required" must be present.
STRATEGY_JOBS = {
    "multi_worker_mirrored": {"allowed": ("chief", "worker"),
                              "required": ("worker",)},
    "parameter_server": {"allowed": ("chief", "worker", "ps"),
                         "required": ("chief", "worker", "ps")},
}
# Seconds to wait for every task of a cluster to come up, by default.
DEFAULT_CLUSTER_TIMEOUT_S = 120


class ClusterTimeoutError(TimeoutError):
    """A task of the cluster did not come up in time."""


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """A checked `TF_CONFIG`: `cluster` maps job names to lists of
    `host:port` addresses; this process is task `task_index` of job
    `task_type`."""

    cluster: dict
    task_type: str
    task_index: int

    @property
    def address(self):
        """This task's `host:port`."""
        return self.cluster[self.task_type][self.task_index]

    @property
    def task_name(self):
        return f"{self.task_type}:{self.task_index}"

    @property
    def is_chief(self):
        """The task that writes checkpoints and exports: the chief, or
        worker 0 in a cluster without one."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    def num_tasks(self, job):
        return len(self.cluster.get(job, ()))

    def tasks(self):
        """`(task name, address)` of every task, chief first."""
        order = sorted(self.cluster, key=lambda job: (job != "chief", job))
        return [(f"{job}:{i}", address) for job in order
                for i, address in enumerate(self.cluster[job])]

    def to_json(self):
        return json.dumps({"cluster": self.cluster,
                           "task": {"type": self.task_type,
                                    "index": self.task_index}})


def _split_address(address, where):
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or \
            not 0 < int(port) < 65536:
        raise ValueError(f"TF_CONFIG: {where} must be 'host:port' with a "
                         f"port in 1..65535. Received: {address!r}")
    return host, int(port)


def parse_tf_config(text, strategy):
    """Checks the `TF_CONFIG` JSON `text` for `strategy`.

    Args:
        text: the JSON text (None or empty: not set).
        strategy: "multi_worker_mirrored" or "parameter_server".

    Returns:
        A `ClusterConfig`.

    Raises:
        ValueError: TF_CONFIG is unset, not JSON, or lacks or misstates
            `cluster` or `task`, names a job the strategy does not use, a
            task type its cluster lacks, an index out of range, or an
            address that is not `host:port`; the message says which.
    """
    jobs = STRATEGY_JOBS[strategy]
    if not text or not text.strip():
        raise ValueError(
            f"--strategy={strategy} reads its cluster from the TF_CONFIG "
            "environment variable, which is not set; start the job with "
            "`kcp-launch` or set TF_CONFIG as "
            "described in docs/distributed.md")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}). Received: "
                         f"TF_CONFIG={text!r}") from None
    if not isinstance(config, dict):
        raise ValueError("TF_CONFIG must be a JSON object with 'cluster' "
                         f"and 'task'. Received: TF_CONFIG={text!r}")
    for key in ("cluster", "task"):
        if not isinstance(config.get(key), dict) or not config[key]:
            raise ValueError(f"TF_CONFIG has no {key!r} object. Received: "
                             f"TF_CONFIG={text!r}")
    cluster = config["cluster"]
    for job, addresses in cluster.items():
        if job not in jobs["allowed"]:
            raise ValueError(
                f"TF_CONFIG: --strategy={strategy} takes the jobs "
                f"{', '.join(jobs['allowed'])}; the cluster names job "
                f"{job!r}. Received: cluster={cluster}")
        if not isinstance(addresses, list) or not addresses or \
                not all(isinstance(a, str) for a in addresses):
            raise ValueError(f"TF_CONFIG: cluster[{job!r}] must be a "
                             "non-empty list of 'host:port' strings. "
                             f"Received: {addresses!r}")
        for i, address in enumerate(addresses):
            _split_address(address, f"cluster[{job!r}][{i}]")
    missing = [job for job in jobs["required"] if job not in cluster]
    if missing:
        raise ValueError(f"TF_CONFIG: --strategy={strategy} needs the jobs "
                         f"{', '.join(jobs['required'])}; the cluster has "
                         f"no {', '.join(missing)}. Received: "
                         f"cluster={cluster}")
    if strategy == "parameter_server" and len(cluster["chief"]) != 1:
        raise ValueError("TF_CONFIG: the parameter-server cluster has one "
                         "chief (the coordinator). Received: "
                         f"chief={cluster['chief']}")
    task = config["task"]
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise ValueError(f"TF_CONFIG: task type {task_type!r} is not a job "
                         f"of the cluster ({', '.join(cluster)}). Received: "
                         f"task={task}")
    if not is_int(index) or not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"TF_CONFIG: task index {index!r} is out of range "
                         f"for job {task_type!r}, which has "
                         f"{len(cluster[task_type])} task(s) (indices from "
                         f"0). Received: task={task}")
    return ClusterConfig(cluster, task_type, index)


def read_tf_config(strategy):
    """`parse_tf_config` of this process's `TF_CONFIG`."""
    return parse_tf_config(os.environ.get("TF_CONFIG"), strategy)


def free_ports(count, host="127.0.0.1"):
    """`count` distinct TCP ports the system reports free on `host`
    (bound to port 0, then released, so another process may still take
    one before it is used)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def check_port_free(address, task_name):
    """Raises a `ValueError` naming the task when the port of `address`
    cannot be bound on this machine (TensorFlow's own message is only
    "Could not start gRPC server").

    The check binds all interfaces, as TensorFlow's gRPC server does.
    """
    _, port = _split_address(address, task_name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("", port))
    except OSError as err:
        reason = ("in use by another process" if err.errno == errno.EADDRINUSE
                  else err.strerror)
        raise ValueError(f"Port {port} of task {task_name} ({address}) is "
                         f"{reason}; free it or choose another port. "
                         f"Received: address={address!r}") from None
    finally:
        sock.close()


def _reachable(address, timeout):
    host, port = _split_address(address, "address")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_tasks(tasks, timeout_s, poll_s=0.25, alive=None):
    """Waits until every `(task name, address)` in `tasks` accepts TCP
    connections.

    Args:
        tasks: `(name, "host:port")` pairs.
        timeout_s: seconds to wait in all.
        poll_s: seconds between rounds of attempts.
        alive: optional callable; called each round, it may raise to stop
            waiting (the launcher checks its processes are still running).

    Raises:
        ClusterTimeoutError: naming the tasks still unreachable after
            `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(tasks)
    while True:
        pending = [(name, address) for name, address in pending
                   if not _reachable(address, timeout=min(1.0, timeout_s))]
        if not pending:
            return
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            names = ", ".join(f"{name} at {address}"
                              for name, address in pending)
            raise ClusterTimeoutError(
                f"{names} did not come up within {timeout_s:g} s "
                "(--cluster_timeout_s); check that the task was started, "
                "with the same cluster in its TF_CONFIG, and that its "
                "port is reachable from here")
        time.sleep(poll_s)


def run_server(config):
    """Serves this task (a worker or parameter server of a
    `parameter_server` cluster) until the process is killed: the
    coordinator places variables and schedules steps on it.

    Args:
        config: a `ClusterConfig` whose task type is "worker" or "ps".
    """
    import tensorflow as tf

    from keras_cnnpractice.custom_ops import _loader
    check_port_free(config.address, config.task_name)
    # A worker builds and runs the input pipeline the coordinator sends it,
    # whose augmentation is a compiled op.
    _loader.load_op_library()
    server = tf.distribute.Server(
        tf.train.ClusterSpec(config.cluster), job_name=config.task_type,
        task_index=config.task_index, protocol="grpc", start=True)
    print(f"Serving {config.task_name} at {config.address}", flush=True)
    server.join()
