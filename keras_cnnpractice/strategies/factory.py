"""One factory for `tf.distribute` strategies, named as in the TF Model Garden."""

import tensorflow as tf

STRATEGY_NAMES = ("off", "one_device", "mirrored", "model_parallel")
MULTI_DEVICE = ("mirrored", "model_parallel")
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


def get_strategy(name="off", num_devices=None):
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

    Args:
        name: strategy name.
        num_devices: devices for `mirrored` and `model_parallel`; must be
            None or 1 otherwise.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: unknown name, or a device count the strategy or machine
            cannot honour.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in STRATEGY_NAMES:
        raise ValueError(f"Unknown strategy {name!r}; valid names: "
                         f"{', '.join(STRATEGY_NAMES)}. Received: name={name!r}")
    if num_devices is not None and (not isinstance(num_devices, int)
                                    or isinstance(num_devices, bool)
                                    or num_devices < 1):
        raise ValueError("num_devices must be a positive integer or None. "
                         f"Received: num_devices={num_devices!r}")
    if key not in MULTI_DEVICE and num_devices not in (None, 1):
        raise ValueError(f"Strategy {key!r} runs on one device; only "
                         "'mirrored' and 'model_parallel' take num_devices "
                         f"> 1. Received: num_devices={num_devices}")
    if key == "off":
        return tf.distribute.get_strategy()
    if key == "one_device":
        gpus = tf.config.list_physical_devices("GPU")
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    devices = replica_devices(num_devices)
    if key == "model_parallel":
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices)
