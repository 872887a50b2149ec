"""Runs a tf.data service dispatcher or worker, for `train.py --data_service`.

    kcp-data-service dispatcher --port=5050 [--work_dir=DIR]
    kcp-data-service worker --dispatcher=grpc://HOST:5050 [--port=5051]

On a cluster: one dispatcher (on any machine the trainers and workers can
reach), then a worker on each machine with spare cores, then
`kcp-train --data_service=grpc://HOST:5050 ...`: the training pipeline
(reading, augmentation, batching) runs on the workers, the trainer reads
finished batches. With `--work_dir` (a folder on durable storage) the
dispatcher journals its state and a restarted dispatcher resumes its jobs
(fault-tolerant mode). For `--data_service_sharding=static` the dispatcher
must know every worker: `--worker_addresses=HOST:PORT,...`, and each
worker then needs that fixed `--port`. Sharding and what each mode
guarantees: `keras_cnnpractice.data.service`.

Each server prints one line with its address, then serves until it is
stopped (Ctrl-C or SIGTERM). Workers load this package's op library first:
the pipeline's augmentation and pack reader are compiled ops. Bad flags or
role: one line, `kcp-data-service: error: ...`, exit status 2.

Imports inside functions: TensorFlow (through `data.service`'s servers),
once the flags are parsed, so that `--help` and a bad flag answer without
loading it (well under a second).
"""

import sys

from absl import flags

from keras_cnnpractice.cli import _absl
from keras_cnnpractice.cli import _log
from keras_cnnpractice.data import service
from keras_cnnpractice.strategies.cluster import free_ports

PROG = "kcp-data-service"
ROLES = ("dispatcher", "worker")

flags.DEFINE_integer("port", 0, "Port to serve on (0: a free one, printed).",
                     lower_bound=0, upper_bound=65535)
flags.DEFINE_string("work_dir", None, "dispatcher: a folder for its journal "
                    "(fault-tolerant mode: a restart resumes its jobs).")
flags.DEFINE_list("worker_addresses", None, "dispatcher: HOST:PORT of every "
                  "worker, for static sharding only.")
flags.DEFINE_string("dispatcher", None, "worker: the dispatcher, "
                    "grpc://HOST:PORT.")
flags.DEFINE_string("host", "localhost", "worker: the host name the "
                    "trainers reach this worker by.")
FLAGS = flags.FLAGS


@flags.validator("dispatcher")
def _check_dispatcher(value):
    if value is not None:
        try:
            service.parse_address(value)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from None
    return True


def _error(message):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv):
    if len(argv) != 2 or argv[1] not in ROLES:
        return _error(f"give one role, {' or '.join(ROLES)}. Received: "
                      f"{' '.join(argv[1:]) or 'none'}")
    role = argv[1]
    if role == "worker" and not FLAGS.dispatcher:
        return _error("a worker needs --dispatcher=grpc://HOST:PORT")
    if role == "dispatcher" and FLAGS.dispatcher:
        return _error("--dispatcher is a worker's flag")
    port = FLAGS.port or free_ports(1)[0]
    _log.start_tensorflow()
    try:
        if role == "dispatcher":
            server = service.start_dispatcher(
                port, FLAGS.work_dir, FLAGS.worker_addresses)
            address = server.target
        else:
            server = service.start_worker(FLAGS.dispatcher, port, FLAGS.host)
            address = f"{FLAGS.host}:{port}"
    except Exception as err:  # noqa: BLE001 (TensorFlow's errors vary)
        return _error(f"cannot start the {role}: {err}".splitlines()[0])
    print(f"Serving tf.data service {role} at {address}", flush=True)
    server.join()
    return 0


def run():
    """The console script `kcp-data-service`."""
    _absl.run(main, PROG, __doc__, tensorflow=False)


if __name__ == "__main__":
    run()
