"""One factory for `tf.distribute` strategies, named as in the TF Model Garden."""

import tensorflow as tf

STRATEGY_NAMES = ("off", "one_device", "mirrored")
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

    Args:
        name: strategy name.
        num_devices: replicas for `mirrored`; must be None or 1 otherwise.

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
    if key != "mirrored" and num_devices not in (None, 1):
        raise ValueError(f"Strategy {key!r} runs on one device; only "
                         "'mirrored' takes num_devices > 1. Received: "
                         f"num_devices={num_devices}")
    gpus = tf.config.list_physical_devices("GPU")
    if key == "off":
        return tf.distribute.get_strategy()
    if key == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if gpus:
        count = num_devices or len(gpus)
        if count > len(gpus):
            raise ValueError(f"Only {len(gpus)} GPU(s) present. Received: "
                             f"num_devices={num_devices}")
        devices = [f"/gpu:{i}" for i in range(count)]
    else:
        devices = _split_cpu(num_devices or DEFAULT_CPU_REPLICAS)
    return tf.distribute.MirroredStrategy(devices)
