"""One factory for `tf.distribute` strategies, named as in the TF Model Garden."""

import re

import tensorflow as tf

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.strategies import STRATEGY_NAMES
from keras_cnnpractice.strategies import cluster
from keras_cnnpractice.strategies._coordination import bounded_registration

# Strategies that take num_devices > 1 (devices of this machine).
MULTI_DEVICE = ("mirrored", "model_parallel")
# Strategies whose cluster comes from TF_CONFIG.
MULTI_WORKER_STRATEGIES = tuple(cluster.STRATEGY_JOBS)
DEFAULT_CPU_REPLICAS = 2


def _split_cpu(num_devices):
    """Splits the physical CPU into `num_devices` logical devices."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError:  # the runtime is already initialized
        pass
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) != num_devices:
        raise ValueError(
            f"TensorFlow was already initialized with {len(logical)} CPU "
            f"device(s) and cannot be split into {num_devices}; call "
            "get_strategy() before any other TensorFlow work. Received: "
            f"num_devices={num_devices}")
    return [d.name for d in logical]


def replica_devices(num_devices=None):
    """The devices `mirrored` and `model_parallel` run on: the first
    `num_devices` GPUs (default: all), or on a machine without a GPU the CPU
    split into `num_devices` logical devices (default 2), which must happen
    before TensorFlow initializes its runtime.

    Raises:
        ValueError: more GPUs asked for than present, or a CPU already
            initialized with another number of devices.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return _split_cpu(num_devices or DEFAULT_CPU_REPLICAS)
    count = num_devices or len(gpus)
    if count > len(gpus):
        raise ValueError(f"Only {len(gpus)} GPU(s) present. Received: "
                         f"num_devices={num_devices}")
    return [f"/gpu:{i}" for i in range(count)]


def _model_parallel(num_devices, **_):
    # The model places its own work on the devices set up here
    # (strategies.model_parallel.split_model).
    replica_devices(num_devices)
    return tf.distribute.get_strategy()


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` takes what Keras 3's
    `model.fit` gives it (keras-team/keras#20585): a nest of per-replica
    values (the first batch, reduced to learn its shapes) and per-replica
    scalars with `axis=0` (the step's metrics). `MirroredStrategy.reduce`
    accepts both; the multi-worker one raises without this."""

    def reduce(self, reduce_op, value, axis):
        def one(v):
            rank = self.experimental_local_results(v)[0].shape.rank
            return super(MultiWorkerMirroredStrategy, self).reduce(
                reduce_op, v, None if rank == 0 else axis)
        return tf.nest.map_structure(one, value)


def _multi_worker_mirrored(cluster_timeout_s, **_):
    config = cluster.read_tf_config("multi_worker_mirrored")
    cluster.check_port_free(config.address, config.task_name)
    bounded_registration(config, cluster_timeout_s)
    # CPU collectives go round a ring; on GPUs AUTO lets TensorFlow pick
    # NCCL.
    implementation = (
        tf.distribute.experimental.CommunicationImplementation.AUTO
        if tf.config.list_physical_devices("GPU") else
        tf.distribute.experimental.CommunicationImplementation.RING)
    try:
        return MultiWorkerMirroredStrategy(
            cluster_resolver=tf.distribute.cluster_resolver
            .TFConfigClusterResolver(),
            communication_options=tf.distribute.experimental
            .CommunicationOptions(implementation=implementation))
    except (tf.errors.DeadlineExceededError,
            tf.errors.UnavailableError) as err:
        late = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)",
                                     str(err).split("timed out", 1)[-1])))
        names = ", ".join(f"{job}:{index}" for job, index in late
                          if f"{job}:{index}" != config.task_name)
        raise cluster.ClusterTimeoutError(
            f"The cluster did not come up within {cluster_timeout_s:g} s "
            f"(--cluster_timeout_s): task {config.task_name} waited for "
            f"{names or 'the other tasks'} ({', '.join(a for _, a in config.tasks())})"
            ) from None


def _parameter_server(cluster_timeout_s, **_):
    config = cluster.read_tf_config("parameter_server")
    if not config.is_chief:
        raise ValueError(
            f"Task {config.task_name} is a server of the parameter-server "
            "cluster, not its coordinator: serve it with "
            "keras_cnnpractice.strategies.cluster.run_server (train.py does "
            f"so). Received: TF_CONFIG task {config.task_name}")
    cluster.check_port_free(config.address, config.task_name)
    cluster.wait_for_tasks(
        [task for task in config.tasks() if task[0] != config.task_name],
        cluster_timeout_s)
    # No variable_partitioner: Keras 3 variables cannot wrap the
    # ShardedVariables it makes (no gradient handle, and the optimizer's
    # update cannot use them as references).
    return tf.distribute.ParameterServerStrategy(
        tf.distribute.cluster_resolver.TFConfigClusterResolver())


_BUILDERS = {
    "off": lambda **_: tf.distribute.get_strategy(),
    "one_device": lambda **_: tf.distribute.OneDeviceStrategy(
        "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"),
    "mirrored": lambda num_devices, **_: tf.distribute.MirroredStrategy(
        replica_devices(num_devices)),
    "model_parallel": _model_parallel,
    "multi_worker_mirrored": _multi_worker_mirrored,
    "parameter_server": _parameter_server,
}


def get_strategy(name="off", num_devices=None,
                 cluster_timeout_s=cluster.DEFAULT_CLUSTER_TIMEOUT_S):
    """Returns the `tf.distribute.Strategy` called `name`.

    Names (case-insensitive):
      * `off`: the default strategy (no distribution).
      * `one_device`: `OneDeviceStrategy` on the first GPU, else the CPU.
      * `mirrored`: synchronous data parallelism (`MirroredStrategy`) over
        all GPUs, or the first `num_devices` of them. On a machine without a
        GPU the CPU is split into `num_devices` logical devices (default 2),
        so more than one replica really runs; this must happen before
        TensorFlow initializes its runtime.
      * `model_parallel`: Krizhevsky's "one weird trick" over the same
        devices as `mirrored`, which this call sets up; the model places
        its own work on them (`strategies.model_parallel.split_model`), so
        the strategy returned is the default one.
      * `multi_worker_mirrored`: synchronous data parallelism across the
        worker processes `TF_CONFIG` names (`MultiWorkerMirroredStrategy`,
        ring all-reduce on CPUs, NCCL or ring on GPUs); every worker calls
        this and blocks until all have, at most `cluster_timeout_s`.
      * `parameter_server`: asynchronous training (`ParameterServerStrategy`)
        for the chief of a `TF_CONFIG` cluster of a chief, workers and
        parameter servers, once every worker and parameter server accepts
        connections (at most `cluster_timeout_s`). Keras's `model.fit`
        cannot train with it; `keras_cnnpractice.training.ps_loop` does.

    Args:
        name: strategy name.
        num_devices: devices for `mirrored` and `model_parallel`; must be
            None or 1 otherwise.
        cluster_timeout_s: seconds the multi-worker strategies wait for
            the other tasks of the cluster.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: unknown name, a device count the strategy or machine
            cannot honour, or a bad `TF_CONFIG` (see
            `cluster.parse_tf_config`) or a port of it in use.
        keras_cnnpractice.strategies.cluster.ClusterTimeoutError: the
            cluster did not come up within `cluster_timeout_s`.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in STRATEGY_NAMES:
        raise ValueError(f"Unknown strategy {name!r}; valid names: "
                         f"{', '.join(STRATEGY_NAMES)}. Received: name={name!r}")
    check_int("num_devices", num_devices, 1, allow_none=True)
    if key not in MULTI_DEVICE and num_devices not in (None, 1):
        raise ValueError(f"Strategy {key!r} runs on one device; only "
                         f"{' and '.join(map(repr, MULTI_DEVICE))} take "
                         f"num_devices > 1. Received: "
                         f"num_devices={num_devices}")
    if not cluster_timeout_s or cluster_timeout_s <= 0:
        raise ValueError("cluster_timeout_s must be positive. Received: "
                         f"cluster_timeout_s={cluster_timeout_s!r}")
    return _BUILDERS[key](num_devices=num_devices,
                          cluster_timeout_s=cluster_timeout_s)
