"""The one place this package uses TensorFlow's private Python API.

TensorFlow has no public way to give the coordination service of a
multi-worker job a registration deadline; `bounded_registration` sets one
through `tensorflow.python` (checked against TensorFlow 2.21, the version
`requirements.txt` pins). `tests/strategies/test_coordination.py` fails when
any of these names moves, and `tests/test_architecture.py` when another
module reaches for private APIs.
"""

import tensorflow as tf
from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
from tensorflow.python.distribute import multi_worker_util
from tensorflow.python.eager import context


def bounded_registration(config, timeout_s):
    """Makes the workers' start-up rendezvous fail after `timeout_s`.

    `MultiWorkerMirroredStrategy` configures TensorFlow's coordination
    service itself, without a deadline: the leader (worker 0) then waits
    forever for a worker that never starts, and ignores SIGTERM while it
    does. Configured here first, with registration behind a barrier that
    times out, every task fails with `DeadlineExceededError` instead.
    """
    spec = tf.train.ClusterSpec(config.cluster)
    ctx = context.context()
    ctx.configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(
            name=job, num_tasks=config.num_tasks(job))
            for job in ("chief", "worker") if job in config.cluster],
        cluster_register_timeout_in_ms=int(timeout_s * 1000))
    ctx.coordination_service.cluster_register_with_barrier = True
