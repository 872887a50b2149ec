"""model_parallel ("one weird trick"): the head's per-device share, the same
forward pass and SGD step as the unsplit model trained with `off`, train.py
end to end, and the configurations it refuses."""

import json

import keras
import numpy as np
import pytest

from keras_cnnpractice.layers import ColumnParallelDense
from keras_cnnpractice.layers import PerDevice
from keras_cnnpractice.models import create_model
from keras_cnnpractice.strategies.model_parallel import check_batch_size
from keras_cnnpractice.strategies.model_parallel import split_model
from tests.conftest import run_python

# Two logical CPU devices need a fresh process: the CPU can only be split
# before TensorFlow starts. The unsplit reference is Keras's own model,
# trained under `off`.
_ON_TWO_DEVICES = """
import collections, pathlib, sys
import keras, numpy as np, tensorflow as tf
from keras_cnnpractice.data.mnist5k import load_mnist5k
from keras_cnnpractice.models import create_model
from keras_cnnpractice.strategies import get_strategy
from keras_cnnpractice.strategies.model_parallel import split_model
from keras_cnnpractice.training.config import TrainConfig
from keras_cnnpractice.training.prepare import prepare_run

def device_of(name):  # "/job:localhost/.../device:CPU:1" -> ("CPU", 1)
    spec = tf.DeviceSpec.from_string(name)
    return spec.device_type, spec.device_index

assert get_strategy("model_parallel", 2) is tf.distribute.get_strategy()
DEVICES = tuple(d.name for d in tf.config.list_logical_devices("CPU"))
assert [device_of(d) for d in DEVICES] == [("CPU", 0), ("CPU", 1)], DEVICES

def close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=what)

def unsplit_copy(model):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy

keras.utils.set_random_seed(0)
(images, labels), _ = load_mnist5k()
x = (images[:8] / 255.0).astype("float32")
y = labels[:8].astype("int32")

model = create_model("lenet5", (28, 28, 1), 10)
reference = unsplit_copy(model)
split = split_model(model, 2)

# 1. Each device holds exactly half of every Dense layer's kernel columns
# and bias; the trunk's weights are the unsplit model's, once.
for name in ("c5", "f6", "output"):
    dense, layer = reference.get_layer(name), split.get_layer(name)
    assert layer.units == dense.units
    fan_in, units = dense.kernel.shape
    for k in range(2):
        assert layer.kernels[k].shape == (fan_in, units // 2), name
        assert layer.biases[k].shape == (units // 2,), name
        assert device_of(layer.kernels[k].value.device) == ("CPU", k), name
        assert device_of(layer.biases[k].value.device) == ("CPU", k), name
    assert sum(int(np.prod(v.shape)) for v in layer.weights) == (
        dense.count_params()), name
trunk = split.get_layer("trunk")
assert [v.path for v in trunk.weights] == [
    "c1/kernel", "c1/bias", "c3/kernel", "c3/bias"], trunk.weights
assert split.count_params() == reference.count_params()

# 2. Same forward pass, also for a batch the devices share unevenly.
for batch in (x, x[:5]):
    close(split(batch, training=False).numpy(),
          reference(batch, training=False).numpy(), "forward")

# 3. One SGD step on the same batch: the same loss and updated weights.
for m in (split, reference):
    m.compile(optimizer=keras.optimizers.SGD(0.5),
              loss="sparse_categorical_crossentropy")
losses = [m.train_on_batch(x, y) for m in (split, reference)]
close(*losses, "loss")
for name in ("c1", "c3"):
    for a, b in zip(split.get_layer("trunk").layer.get_layer(name).weights,
                    reference.get_layer(name).weights):
        close(a.numpy(), b.numpy(), name)
for name in ("c5", "f6", "output"):
    layer, dense = split.get_layer(name), reference.get_layer(name)
    kernel = np.concatenate([v.numpy() for v in layer.kernels], axis=1)
    bias = np.concatenate([v.numpy() for v in layer.biases])
    close(kernel, dense.kernel.numpy(), name)
    close(bias, dense.bias.numpy(), name)
    # (and the step did move the weights)
    assert np.abs(kernel - model.get_layer(name).kernel.numpy()).max() > 1e-4

# 4. In the training step, every convolution and matrix product of the
# forward and the backward pass runs on a device, split evenly.
@tf.function
def step(images, classes):
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            classes, split(images, training=True))
    return tape.gradient(loss, split.trainable_variables)
graph = step.get_concrete_function(tf.TensorSpec((8, 28, 28, 1)),
                                   tf.TensorSpec((8,), tf.int32)).graph
placed = {("CPU", 0): collections.Counter(), ("CPU", 1): collections.Counter()}
for op in graph.get_operations():
    if op.type in ("Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput",
                   "MatMul"):
        assert op.device, op.name
        placed[device_of(op.device)][op.type] += 1
# forward: 2 convolutions, 3 products; backward: 2 + 2 (the gradient of the
# slice of images included: a custom gradient returns every input's) and 6
for counts in placed.values():
    assert counts == {"Conv2D": 2, "Conv2DBackpropFilter": 2,
                      "Conv2DBackpropInput": 2, "MatMul": 9}, placed

# 5. The zoo's AlexNet: the 4096-wide FC6 and FC7 split in halves, the same
# function.
alexnet = create_model("alexnet", (67, 67, 3), 10)
alexnet_split = split_model(alexnet, DEVICES)
shapes = {name: [tuple(v.shape) for v in
                 alexnet_split.get_layer(name).kernels]
          for name in ("fc6", "fc7", "fc8")}
assert shapes == {"fc6": [(256, 2048)] * 2, "fc7": [(4096, 2048)] * 2,
                  "fc8": [(4096, 5)] * 2}, shapes
pictures = np.random.default_rng(0).uniform(0, 1, (4, 67, 67, 3))
close(alexnet_split(pictures, training=False).numpy(),
      alexnet(pictures, training=False).numpy(), "alexnet")

# 6. Saved and loaded as .keras: the same outputs, the shards on their
# devices.
path = pathlib.Path(sys.argv[1]) / "split.keras"
split.save(path)
loaded = keras.models.load_model(path)
close(loaded(x, training=False).numpy(), split(x, training=False).numpy(),
      "loaded")
assert [device_of(v.value.device) for v in loaded.get_layer("f6").kernels] == [
    ("CPU", 0), ("CPU", 1)]

# 7. train.py's run refuses a batch the devices cannot share equally.
try:
    prepare_run(TrainConfig(strategy="model_parallel", num_devices=2,
                            batch_size=33))
except ValueError as err:
    assert "batch_size=33, num_devices=2" in str(err), err
else:
    raise AssertionError("no error for batch_size=33 on 2 devices")
print("OK")
"""


def test_split_head_on_two_devices(tmp_path):
    assert "OK" in run_python(["-c", _ON_TWO_DEVICES, str(tmp_path)]).stdout


def test_train_py_end_to_end(tmp_path):
    result = run_python([
        "train.py", "--strategy=model_parallel", "--num_devices=2",
        "--model=lenet5", "--epochs=1", "--steps_per_epoch=3",
        "--batch_size=32", f"--model_dir={tmp_path}"])
    log = result.stdout + result.stderr
    assert ("Dense layers split column-wise over 2 devices") in log
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["export_max_abs_diff"] < 1e-5
    assert (tmp_path / "export" / "saved_model.pb").is_file()
    assert (tmp_path / "checkpoints" / "epoch-1.weights.h5").is_file()
    assert 0 <= summary["test_accuracy"] <= 1


# The checks below run before any device work: one device named K times.
def _devices(count):
    return ["/cpu:0"] * count


def test_head_width_that_does_not_divide():
    model = create_model("lenet5", (28, 28, 1), 10)  # heads 120, 84, 10
    with pytest.raises(ValueError,
                       match=r"'output'.*units=10, num_devices=3"):
        split_model(model, _devices(3))
    with pytest.raises(ValueError, match=r"'c5'.*units=120, num_devices=7"):
        split_model(model, _devices(7))
    with pytest.raises(ValueError, match="units=6, num_devices=4"):
        ColumnParallelDense(6, _devices(4))


def test_batch_that_does_not_divide():
    with pytest.raises(ValueError, match="batch_size=33, num_devices=2"):
        check_batch_size(33, 2)
    check_batch_size(32, 4)


def _small(head):
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    for layer in head:
        x = layer(x)
    return keras.Model(inputs, x, name="small")


_SHARED = keras.layers.Dense(4)  # called twice: its weights are tied


@pytest.mark.parametrize("head, message", [
    ([], "does not end in Dense layers"),
    ([_SHARED, _SHARED], "does not end in Dense layers"),
    ([keras.layers.Dense(4, activation="softmax"), keras.layers.Dense(2)],
     "row-wise activation"),
    ([keras.layers.Dense(4, kernel_regularizer="l2")],
     "does not carry kernel_regularizer"),
])
def test_models_it_cannot_split(head, message):
    with pytest.raises(ValueError, match=message):
        split_model(_small(head), _devices(2))


def test_sequential_model_splits():
    # Dropout and a ReLU layer between the Dense layers, a softmax at the
    # end.
    model = keras.Sequential([
        keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3),
        keras.layers.Flatten(), keras.layers.Dropout(0.5),
        keras.layers.Dense(6), keras.layers.ReLU(), keras.layers.Dropout(0.5),
        keras.layers.Dense(4, activation="softmax")])
    split = split_model(model, _devices(2))
    assert [type(layer).__name__ for layer in split.layers] == [
        "InputLayer", "PerDevice", "ColumnParallelDense", "PerDevice",
        "PerDevice", "ColumnParallelDense", "Concatenate", "Activation"]
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 2))
    np.testing.assert_allclose(split(x, training=False),
                               model(x, training=False), rtol=1e-5, atol=1e-6)


def test_head_must_follow_flatten_or_pooling():
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    with pytest.raises(ValueError, match="must take 2-D features"):
        split_model(model, _devices(2))


@pytest.mark.parametrize("kwargs, message", [
    ({"units": 4, "devices": []}, "non-empty list of device names"),
    ({"units": 4, "devices": ["/cpu:0"], "input_split": "rows"},
     "input_split must be one of"),
    ({"units": 4, "devices": ["/cpu:0"], "activation": "softmax"},
     "activation must be elementwise"),
    ({"units": 0, "devices": ["/cpu:0"]}, "units must be a positive"),
])
def test_column_parallel_dense_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ColumnParallelDense(**kwargs)


def test_layer_configs_round_trip():
    dense = ColumnParallelDense(6, _devices(3), "features", activation="relu",
                                name="fc")
    clone = ColumnParallelDense.from_config(dense.get_config())
    assert clone.get_config() == dense.get_config()
    wrapper = PerDevice(keras.layers.Dropout(0.5), _devices(2), name="drop")
    clone = PerDevice.from_config(wrapper.get_config())
    assert clone.get_config() == wrapper.get_config()
    with pytest.raises(ValueError, match="non-empty list of device names"):
        PerDevice(keras.layers.Dropout(0.5), "/cpu:0")
