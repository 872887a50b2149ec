"""Starts a local multi-worker cluster: one process per task, on loopback.

    kcp-launch --workers=2 -- \\
        python train.py --strategy=multi_worker_mirrored --epochs=3
    kcp-launch --workers=2 --ps=1 -- \\
        python train.py --strategy=parameter_server --epochs=3

Every task runs the same command with its own `TF_CONFIG` (the cluster's
addresses and its task), as a cluster manager would start it on separate
machines: without `--ps`, `--workers` workers (worker 0 is the chief) for
`multi_worker_mirrored`; with `--ps=N`, a chief (the coordinator),
`--workers` workers and N parameter servers for `parameter_server`. Free
ports are picked on 127.0.0.1 (or taken from `--base_port` on); each line a
task prints is shown prefixed by its name, `[worker:1] ...`.

The launcher returns the chief's exit status. It stops every task (SIGTERM,
then SIGKILL) on Ctrl-C, when the chief exits (parameter servers and
workers of a `parameter_server` cluster serve until killed), and when a
worker of a `multi_worker_mirrored` cluster fails (the others could not go
on); a worker of a `parameter_server` cluster may die, the coordinator
reschedules its steps. A task whose port does not open within
`--cluster_timeout_s` stops the cluster with an error naming it.

With `--data_workers=N` the launcher also starts a tf.data service on
loopback, one dispatcher and N workers (`kcp-data-service`, output prefixed
`[data-dispatcher]`, `[data-worker:i]`), and appends
`--data_service=grpc://127.0.0.1:PORT` to the command (unless it has a
`--data_service` already): the training pipeline runs on those workers. A
data worker that dies is started again at its address (tf.data service
then goes on with it; the splits it held are lost for that epoch). Without
a command, only the service runs, until Ctrl-C:

    kcp-launch --data_workers=2 --data_port=5050
    kcp-train --data_service=grpc://127.0.0.1:5050 ...
"""

import os
import signal
import subprocess
import sys
import threading
import time

from absl import flags

from keras_cnnpractice.cli import _absl
from keras_cnnpractice.strategies import cluster

PROG = "kcp-launch"

flags.DEFINE_integer("workers", 2, "Worker processes.", lower_bound=1)
flags.DEFINE_integer("ps", 0, "Parameter-server processes; > 0 also starts "
                     "a chief (the coordinator) for "
                     "--strategy=parameter_server.", lower_bound=0)
flags.DEFINE_float("cluster_timeout_s", cluster.DEFAULT_CLUSTER_TIMEOUT_S,
                   "Seconds every task has to open its port before the "
                   "cluster is stopped with an error.", lower_bound=0.001)
flags.DEFINE_integer("base_port", None, "Use ports BASE_PORT, BASE_PORT+1, "
                     "... (default: free ports the system picks).",
                     lower_bound=1, upper_bound=65535)
flags.DEFINE_float("grace_s", 30.0, "After the chief exits, seconds the "
                   "other workers of a multi_worker_mirrored cluster have to "
                   "finish before they are killed.", lower_bound=0.0)
flags.DEFINE_integer("data_workers", 0, "tf.data service workers to start, "
                     "with a dispatcher, for the command's --data_service "
                     "(0: no service).", lower_bound=0)
flags.DEFINE_integer("data_port", None, "The dispatcher's port (default: a "
                     "free one).", lower_bound=1, upper_bound=65535)
FLAGS = flags.FLAGS

HOST = "127.0.0.1"
# Seconds between SIGTERM and SIGKILL when stopping a task (TensorFlow
# blocked in a collective or a rendezvous ignores SIGTERM).
KILL_AFTER_S = 5.0


class LaunchError(Exception):
    """The cluster could not be started or failed to come up."""


def _jobs(workers, ps):
    """`(job, tasks)` of the cluster, the chief's job first."""
    if not ps:
        return [("worker", workers)]
    return [("chief", 1), ("worker", workers), ("ps", ps)]


def cluster_spec(workers, ps, ports):
    """`{job: ["127.0.0.1:port", ...]}` for `workers` workers and `ps`
    parameter servers (plus a chief when `ps` > 0), on `ports` in order."""
    ports = iter(ports)
    return {job: [f"{HOST}:{next(ports)}" for _ in range(n)]
            for job, n in _jobs(workers, ps)}


def _ports(names, base_port):
    """A port per task name: free ones, or `base_port` on, checked."""
    if base_port is None:
        return cluster.free_ports(len(names), HOST)
    ports = list(range(base_port, base_port + len(names)))
    if ports[-1] > 65535:
        raise LaunchError(f"--base_port={base_port} leaves no room for "
                          f"{len(names)} ports below 65536")
    for name, port in zip(names, ports):
        try:
            cluster.check_port_free(f"{HOST}:{port}", name)
        except ValueError as err:
            raise LaunchError(f"{err} (--base_port={base_port} takes ports "
                              f"{ports[0]}-{ports[-1]})") from None
    return ports


class Task:
    """One process of the cluster, its output streamed with a prefix."""

    def __init__(self, name, command, tf_config, lock):
        self.name = name
        self.command = command
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("TF_CONFIG", None)
        if tf_config is not None:
            env["TF_CONFIG"] = tf_config
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        self.reader = threading.Thread(target=self._stream, args=(lock,),
                                       daemon=True)
        self.reader.start()

    def _stream(self, lock):
        prefix = f"[{self.name}] ".encode()
        for line in iter(self.process.stdout.readline, b""):
            with lock:
                sys.stdout.buffer.write(prefix + line)
                sys.stdout.buffer.flush()

    def poll(self):
        return self.process.poll()

    def signal(self, sig):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass


def _say(lock, text):
    with lock:
        sys.stdout.write(f"[launch] {text}\n")
        sys.stdout.flush()


def _stop(tasks, lock, reason):
    """SIGTERM to every running task, SIGKILL to those still running
    after `KILL_AFTER_S`."""
    running = [t for t in tasks if t.poll() is None]
    if not running:
        return
    _say(lock, f"stopping {', '.join(t.name for t in running)}: {reason}")
    for task in running:
        task.signal(signal.SIGTERM)
    deadline = time.monotonic() + KILL_AFTER_S
    while time.monotonic() < deadline and any(t.poll() is None
                                              for t in running):
        time.sleep(0.1)
    for task in running:
        task.signal(signal.SIGKILL)
    for task in running:
        task.process.wait()
        task.reader.join(timeout=5)


class _DataService:
    """A tf.data service on loopback: a dispatcher and `workers` workers,
    each a `kcp-data-service` process; dead workers started again."""

    def __init__(self, workers, port, lock):
        self.lock = lock
        ports = cluster.free_ports(workers + (port is None), HOST)
        self.port = port if port is not None else ports.pop()
        self.address = f"grpc://{HOST}:{self.port}"
        module = [sys.executable, "-m", "keras_cnnpractice.cli.data_service"]
        self.tasks = [Task("data-dispatcher",
                           [*module, "dispatcher", f"--port={self.port}"],
                           None, lock)]
        self.tasks += [Task(f"data-worker:{i}", [
            *module, "worker", f"--port={p}", f"--dispatcher={self.address}",
            f"--host={HOST}"], None, lock) for i, p in enumerate(ports)]
        self.addresses = [(t.name, f"{HOST}:{p}") for t, p in zip(
            self.tasks, [self.port, *ports])]
        for task in self.tasks:
            _say(lock, f"started {task.name} (pid {task.process.pid})")

    def wait(self, timeout_s):
        def alive():
            for task in self.tasks:
                if task.poll() is not None:
                    task.reader.join(timeout=5)
                    raise LaunchError(f"{task.name} exited with "
                                      f"{task.poll()} before it served")
        try:
            cluster.wait_for_tasks(self.addresses, timeout_s, alive=alive)
        except cluster.ClusterTimeoutError as err:
            raise LaunchError(str(err)) from None
        _say(self.lock, f"tf.data service at {self.address}")

    def restart_dead_workers(self):
        """Starts a dead worker again, with the same command and port."""
        for i, task in enumerate(self.tasks[1:], 1):
            status = task.poll()
            if status is not None:
                task.reader.join(timeout=5)
                self.tasks[i] = Task(task.name, task.command, None,
                                     self.lock)
                _say(self.lock, f"{task.name} exited with {status}; started "
                     f"again (pid {self.tasks[i].process.pid})")


def _supervise(tasks, chief, ps_mode, lock, grace_s, service=None):
    """Waits for the chief; returns its exit status, or a failed MWMS
    worker's."""
    reported = set()
    while True:
        if service is not None:
            service.restart_dead_workers()
        code = chief.poll()
        if code is not None:
            chief.reader.join(timeout=5)
            if not ps_mode:  # the other workers finish on their own
                deadline = time.monotonic() + grace_s
                while time.monotonic() < deadline and any(
                        t.poll() is None for t in tasks):
                    time.sleep(0.1)
                failed = [t for t in tasks if t.poll() not in (None, 0)]
                if code == 0 and failed:
                    code = failed[0].poll()
            _stop(tasks, lock, f"the chief {chief.name} exited with {code}")
            return code
        for task in tasks:
            status = task.poll()
            if task is chief or status is None or task.name in reported:
                continue
            reported.add(task.name)
            if ps_mode and task.name.startswith("worker"):
                _say(lock, f"{task.name} exited with {status}; the "
                     "coordinator reschedules its steps on the other "
                     "workers")
            elif ps_mode:
                _say(lock, f"{task.name} exited with {status}; the "
                     "coordinator cannot go on without it")
            elif status != 0:
                task.reader.join(timeout=5)
                _stop(tasks, lock, f"{task.name} failed with {status}")
                return status
        time.sleep(0.1)


def launch(command, workers, ps=0, cluster_timeout_s=120.0, base_port=None,
           grace_s=30.0, data_workers=0, data_port=None):
    """Runs `command` once per task of a local cluster, beside a tf.data
    service of `data_workers` workers if > 0 (alone, without a command);
    see the module's docstring.

    Returns:
        The chief's exit status (or that of the worker whose failure
        stopped a `multi_worker_mirrored` cluster); 130 after Ctrl-C.

    Raises:
        LaunchError: a port of `base_port`'s range is in use, or a task
            did not open its port within `cluster_timeout_s` (or exited
            before it did).
    """
    lock = threading.Lock()
    tasks, service, interrupted = [], None, []

    def on_signal(signum, _frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if data_workers:
            service = _DataService(data_workers, data_port, lock)
            service.wait(cluster_timeout_s)
            if not command:
                while True:
                    service.restart_dead_workers()
                    time.sleep(0.1)
            if not any(arg.startswith("--data_service=") for arg in command):
                command = [*command, f"--data_service={service.address}"]
        names = [(job, i) for job, n in _jobs(workers, ps) for i in range(n)]
        spec = cluster_spec(workers, ps, _ports(
            [f"{job}:{i}" for job, i in names], base_port))
        _say(lock, f"cluster: {spec}")
        for job, index in names:
            config = cluster.ClusterConfig(spec, job, index)
            task = Task(config.task_name, command, config.to_json(), lock)
            _say(lock, f"started {task.name} (pid {task.process.pid}) at "
                 f"{config.address}")
            tasks.append(task)
        chief = tasks[0]

        def alive():
            for task in tasks:
                if task.poll() is not None:
                    task.reader.join(timeout=5)
                    raise LaunchError(
                        f"{task.name} exited with {task.poll()} before the "
                        "cluster came up")

        try:
            cluster.wait_for_tasks(
                [(f"{job}:{i}", spec[job][i]) for job, i in names],
                cluster_timeout_s, alive=alive)
        except cluster.ClusterTimeoutError as err:
            raise LaunchError(str(err)) from None
        except LaunchError:
            if chief.poll() is not None:  # e.g. train.py rejected its flags
                _stop(tasks, lock, f"the chief {chief.name} exited with "
                      f"{chief.poll()}")
                return chief.poll()
            raise
        _say(lock, "every task is up")
        return _supervise(tasks, chief, ps > 0, lock, grace_s, service)
    except KeyboardInterrupt:
        _stop(tasks, lock, "interrupted")
        return 130
    finally:
        _stop(tasks + (service.tasks if service else []), lock,
              "the launcher is exiting")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv):
    command = argv[1:]
    if not command and not FLAGS.data_workers:
        print(f"{PROG}: error: no command; usage: {PROG} --workers=N "
              "[--ps=M] -- COMMAND...",
              file=sys.stderr)
        sys.exit(2)
    try:
        code = launch(command, FLAGS.workers, FLAGS.ps,
                      FLAGS.cluster_timeout_s, FLAGS.base_port, FLAGS.grace_s,
                      FLAGS.data_workers, FLAGS.data_port)
    except LaunchError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if code >= 0 else 128 - code)


def run():
    """The console script `kcp-launch`."""
    _absl.run(main, PROG, __doc__, tensorflow=False)


if __name__ == "__main__":
    run()
