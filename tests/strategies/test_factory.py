"""get_strategy: names, device splitting, and errors."""

import pytest

from keras_cnnpractice.strategies import get_strategy
from tests.conftest import run_python


def test_mirrored_splits_cpu_and_reduces_across_replicas():
    # A fresh process: the CPU can only be split before TensorFlow starts.
    code = """
import numpy as np, tensorflow as tf
from keras_cnnpractice.strategies import get_strategy
s = get_strategy("MirRored", num_devices=3)
assert isinstance(s, tf.distribute.MirroredStrategy), type(s)
assert s.num_replicas_in_sync == 3, s.num_replicas_in_sync
ids = s.run(lambda: tf.cast(
    tf.distribute.get_replica_context().replica_id_in_sync_group, tf.float32) + 1)
total = s.reduce(tf.distribute.ReduceOp.SUM, ids, axis=None)
assert float(total) == 1 + 2 + 3, float(total)
again = get_strategy("mirrored", num_devices=3)  # same split: fine
assert again.num_replicas_in_sync == 3
try:
    get_strategy("mirrored", num_devices=2)
except ValueError as err:
    assert "already initialized" in str(err), err
else:
    raise AssertionError("no error for a second, different split")
print("OK")
"""
    assert "OK" in run_python(["-c", code]).stdout


def test_mirrored_defaults_to_two_cpu_replicas():
    code = ("from keras_cnnpractice.strategies import get_strategy\n"
            "print(get_strategy('mirrored').num_replicas_in_sync)")
    assert run_python(["-c", code]).stdout.strip().endswith("2")


def test_off_and_one_device():
    import tensorflow as tf
    assert get_strategy("off") is tf.distribute.get_strategy()
    one = get_strategy(" One_Device ")
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    assert one.num_replicas_in_sync == 1


@pytest.mark.parametrize("name, num_devices, message", [
    ("horovod", None, "valid names: off, one_device, mirrored, model_parallel"),
    (None, None, "valid names"),
    ("off", 2, "only 'mirrored' and 'model_parallel' take"),
    ("one_device", 4, "only 'mirrored' and 'model_parallel' take"),
    ("mirrored", 0, "positive integer"),
    ("mirrored", 1.5, "positive integer"),
])
def test_bad_names_and_combinations(name, num_devices, message):
    with pytest.raises(ValueError, match=message):
        get_strategy(name, num_devices)
