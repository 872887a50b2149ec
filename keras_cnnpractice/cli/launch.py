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

import signal
import sys
import time

from absl import flags

from keras_cnnpractice.cli import _absl
from keras_cnnpractice.cli.processes import HOST
from keras_cnnpractice.cli.processes import Console
from keras_cnnpractice.cli.processes import LocalDataService
from keras_cnnpractice.cli.processes import StartError
from keras_cnnpractice.cli.processes import Task
from keras_cnnpractice.cli.processes import stop
from keras_cnnpractice.cli.processes import wait_until_serving
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
        raise StartError(f"--base_port={base_port} leaves no room for "
                         f"{len(names)} ports below 65536")
    for name, port in zip(names, ports):
        try:
            cluster.check_port_free(f"{HOST}:{port}", name)
        except ValueError as err:
            raise StartError(f"{err} (--base_port={base_port} takes ports "
                             f"{ports[0]}-{ports[-1]})") from None
    return ports


def _supervise(tasks, chief, ps_mode, console, grace_s, service=None):
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
            stop(tasks, console, f"the chief {chief.name} exited with {code}")
            return code
        for task in tasks:
            status = task.poll()
            if task is chief or status is None or task.name in reported:
                continue
            reported.add(task.name)
            if ps_mode and task.name.startswith("worker"):
                console.say(f"{task.name} exited with {status}; the "
                            "coordinator reschedules its steps on the other "
                            "workers")
            elif ps_mode:
                console.say(f"{task.name} exited with {status}; the "
                            "coordinator cannot go on without it")
            elif status != 0:
                task.reader.join(timeout=5)
                stop(tasks, console, f"{task.name} failed with {status}")
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
        StartError: a port of `base_port`'s range is in use, or a task
            did not open its port within `cluster_timeout_s` (or exited
            before it did).
    """
    console = Console()
    tasks, service, interrupted = [], None, []

    def on_signal(signum, _frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if data_workers:
            service = LocalDataService(data_workers, data_port, console)
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
        console.say(f"cluster: {spec}")
        for job, index in names:
            config = cluster.ClusterConfig(spec, job, index)
            task = Task(config.task_name, command, config.to_json(), console)
            console.say(f"started {task.name} (pid {task.process.pid}) at "
                        f"{config.address}")
            tasks.append(task)
        chief = tasks[0]

        try:
            wait_until_serving(
                tasks, [(f"{job}:{i}", spec[job][i]) for job, i in names],
                cluster_timeout_s, "before the cluster came up")
        except StartError:
            if chief.poll() is not None:  # e.g. train.py rejected its flags
                stop(tasks, console, f"the chief {chief.name} exited with "
                     f"{chief.poll()}")
                return chief.poll()
            raise
        console.say("every task is up")
        return _supervise(tasks, chief, ps > 0, console, grace_s, service)
    except KeyboardInterrupt:
        stop(tasks, console, "interrupted")
        return 130
    finally:
        stop(tasks + (service.tasks if service else []), console,
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
    except StartError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if code >= 0 else 128 - code)


def run():
    """The console script `kcp-launch`."""
    _absl.run(main, PROG, __doc__, tensorflow=False)


if __name__ == "__main__":
    run()
