"""Child processes run side by side, each line of their output prefixed
with their name, stopped together: the tasks of `kcp-launch`, and
`LocalDataService`, a tf.data service on loopback (a dispatcher and N
`kcp-data-service` workers) for `kcp-launch --data_workers`, `kcp-doctor`
and `benchmarks/data_service.py`.

Nothing here loads TensorFlow (the servers run in their own processes).
"""

import os
import signal
import subprocess
import sys
import threading
import time

from keras_cnnpractice.strategies import cluster

HOST = "127.0.0.1"
# Seconds between SIGTERM and SIGKILL when stopping a task (TensorFlow
# blocked in a collective or a rendezvous ignores SIGTERM).
KILL_AFTER_S = 5.0


class StartError(Exception):
    """A process could not be started or did not come up in time."""


class Console:
    """Where the processes' lines go (`stream`, default stdout), one
    whole line at a time."""

    def __init__(self, stream=None, name="launch"):
        self.stream = sys.stdout if stream is None else stream
        self.name = name
        self.lock = threading.Lock()

    def write(self, data):
        with self.lock:
            self.stream.buffer.write(data)
            self.stream.buffer.flush()

    def say(self, text):
        """One line of our own, `[NAME] text`."""
        self.write(f"[{self.name}] {text}\n".encode())


class Task:
    """One process, its output streamed to `console` with a `[name]`
    prefix; its own session (signals reach its children too). With
    `cpus`, pinned to those CPUs (`os.sched_setaffinity`) from its start."""

    def __init__(self, name, command, tf_config, console, cpus=None):
        self.name = name
        self.command = command
        self.cpus = cpus
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("TF_CONFIG", None)
        if tf_config is not None:
            env["TF_CONFIG"] = tf_config
        pin = None if cpus is None else (
            lambda: os.sched_setaffinity(0, cpus))
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=pin)  # noqa: PLW1509
        self.reader = threading.Thread(target=self._stream, args=(console,),
                                       daemon=True)
        self.reader.start()

    def _stream(self, console):
        prefix = f"[{self.name}] ".encode()
        for line in iter(self.process.stdout.readline, b""):
            console.write(prefix + line)

    def poll(self):
        return self.process.poll()

    def signal(self, sig):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass


def stop(tasks, console, reason):
    """SIGTERM to every running task, SIGKILL to those still running
    after `KILL_AFTER_S`."""
    running = [t for t in tasks if t.poll() is None]
    if not running:
        return
    console.say(f"stopping {', '.join(t.name for t in running)}: {reason}")
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


def wait_until_serving(tasks, addresses, timeout_s, before):
    """Returns once every `(name, HOST:PORT)` of `addresses` accepts
    connections.

    Raises:
        StartError: a task exited first ("NAME exited with CODE
            {before}"), or the addresses did not open within `timeout_s`.
    """
    def alive():
        for task in tasks:
            if task.poll() is not None:
                task.reader.join(timeout=5)
                raise StartError(f"{task.name} exited with {task.poll()} "
                                 f"{before}")
    try:
        cluster.wait_for_tasks(addresses, timeout_s, alive=alive)
    except cluster.ClusterTimeoutError as err:
        raise StartError(str(err)) from None


class LocalDataService:
    """A tf.data service on loopback: a dispatcher and `workers` workers,
    each a `kcp-data-service` process.

    Args:
        workers: worker processes (>= 1).
        port: the dispatcher's port (None: a free one).
        console: where their output goes (a `Console`).
        cpus: None, or one set of CPUs per worker to pin it to.

    Use `wait` before reading from `address`, `restart_dead_workers` to
    bring back a worker that died, `close` (or `with`) to stop them all.
    """

    def __init__(self, workers, port=None, console=None, cpus=None):
        if cpus is not None and len(cpus) != workers:
            raise ValueError(f"cpus needs one set per worker ({workers}). "
                             f"Received: {len(cpus)}")
        self.console = Console() if console is None else console
        ports = cluster.free_ports(workers + (port is None), HOST)
        self.port = port if port is not None else ports.pop()
        self.address = f"grpc://{HOST}:{self.port}"
        module = [sys.executable, "-m", "keras_cnnpractice.cli.data_service"]
        self.tasks = [Task("data-dispatcher",
                           [*module, "dispatcher", f"--port={self.port}"],
                           None, self.console)]
        self.tasks += [Task(f"data-worker:{i}", [
            *module, "worker", f"--port={p}", f"--dispatcher={self.address}",
            f"--host={HOST}"], None, self.console,
            None if cpus is None else cpus[i]) for i, p in enumerate(ports)]
        self.addresses = [(t.name, f"{HOST}:{p}") for t, p in zip(
            self.tasks, [self.port, *ports])]
        for task in self.tasks:
            self.console.say(f"started {task.name} (pid {task.process.pid})")

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def wait(self, timeout_s):
        """Returns once every server listens.

        Raises:
            StartError: one exited first, or did not within `timeout_s`.
        """
        wait_until_serving(self.tasks, self.addresses, timeout_s,
                           "before it served")
        self.console.say(f"tf.data service at {self.address}")

    def restart_dead_workers(self):
        """Starts a dead worker again, with the same command, port and
        CPUs."""
        for i, task in enumerate(self.tasks[1:], 1):
            status = task.poll()
            if status is not None:
                task.reader.join(timeout=5)
                self.tasks[i] = Task(task.name, task.command, None,
                                     self.console, task.cpus)
                self.console.say(f"{task.name} exited with {status}; "
                                 f"started again (pid "
                                 f"{self.tasks[i].process.pid})")

    def close(self, reason="done"):
        stop(self.tasks, self.console, reason)
