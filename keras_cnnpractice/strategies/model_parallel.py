"""Krizhevsky's "one weird trick": data-parallel convolutions, model-parallel
fully connected layers (A. Krizhevsky, "One weird trick for parallelizing
convolutional neural networks", arXiv:1404.5997, 2014).

Convolutional layers hold about 5% of a CNN's parameters and do about 90%
to 95% of its arithmetic; fully connected layers the reverse. Data
parallelism suits the convolutions (little to synchronize, much to
compute), model parallelism the fully connected layers (much to
synchronize, little to compute). `split_model(model, devices)` turns a Keras
model whose head is a stack of `Dense` layers into one that does both on K
devices:

    image batch --split--> K slices --trunk on device k--> K feature slices
        --all-gather--> on every device: whole batch --its 1/K of fc6's
        columns--> K column blocks --all-gather--> ... --> concatenate

* The trunk (everything before the first `Dense`) runs on each device on
  its slice of the batch (`PerDevice`), with the weights shared, so their
  gradients add up over the slices as in synchronous data parallelism.
* Each `Dense` layer of the head becomes a `ColumnParallelDense`: device k
  holds `units / K` of its kernel's columns and of its bias. Every device
  gathers the previous layer's parts (the trunk's batch slices, or the
  previous layer's column blocks), so it computes its columns for the whole
  batch; elementwise layers between them (`Dropout`, `ReLU`, ...) run on
  each device's block; the last blocks are concatenated (and a softmax
  applied) on the first device, where the loss is computed.

Design. This is done by device placement inside one Keras model, not by a
`tf.distribute` strategy, because Keras 3's optimizer sums every gradient
over the replicas of a strategy (its `_all_reduce_sum_gradients`), which
would mix the devices' different column blocks; a model that places its own
ops trains with the ordinary `fit`, `evaluate`, checkpoints and
`export` under the default strategy. `get_strategy("model_parallel", K)`
therefore returns the default strategy, after setting up the K devices (the
CPU split into K logical devices when there is no GPU). Every part's
forward and backward ops are pinned to its device (`tf.GradientTape` alone
would put the backward pass on the first device). TensorFlow moves the
tensors between devices: the trunk's weights, kept once on the first
device, are copied to the others each step and their gradients summed back
there (a broadcast and a reduction through the first device, where
`MirroredStrategy` would keep replicas and all-reduce); the activations are
copied to every device that gathers them. The arithmetic is exactly that of
the unsplit model, so one step gives the same weights (to float rounding).
Batch normalization in the trunk sees each device's slice, as in
`mirrored`.
"""

import keras

from keras_cnnpractice.layers.column_parallel_dense import ColumnParallelDense
from keras_cnnpractice.layers.column_parallel_dense import check_width
from keras_cnnpractice.layers.column_parallel_dense import is_row_wise
from keras_cnnpractice.layers.per_device import PerDevice
from keras_cnnpractice.strategies.factory import replica_devices

# Parameter-free elementwise layers the head may have between its Dense
# layers (an Activation layer only with an elementwise function).
_ELEMENTWISE = (keras.layers.Dropout, keras.layers.Activation,
                keras.layers.ReLU, keras.layers.LeakyReLU)
_DENSE_EXTRAS = ("kernel_regularizer", "bias_regularizer",
                 "activity_regularizer", "kernel_constraint",
                 "bias_constraint")


def check_batch_size(batch_size, num_devices):
    """ValueError unless the global batch gives every device an equal slice.

    Args:
        batch_size: the global batch size.
        num_devices: the number of devices.
    """
    if batch_size % num_devices:
        raise ValueError(
            "The batch size must divide by the number of devices, so that "
            "each device gets an equal slice of the batch. Received: "
            f"batch_size={batch_size}, num_devices={num_devices}")


def _head(graph):
    """The chain of Dense and elementwise layers that ends the functional
    `graph`, from its first Dense layer on, and that layer's input tensor
    (`[], None` if there is none)."""
    calls = [node.operation for nodes in graph._nodes_by_depth.values()
             for node in nodes]
    chain, head, features = [], [], None
    tensor = graph.outputs[0]
    while True:
        layer, node_index, _ = tensor._keras_history
        if not (type(layer) is keras.layers.Dense
                or isinstance(layer, _ELEMENTWISE)):
            break
        if sum(op is layer for op in calls) != 1:
            break  # a layer the model calls twice is not part of a chain
        chain.insert(0, layer)
        tensor = layer._inbound_nodes[node_index].input_tensors[0]
        if type(layer) is keras.layers.Dense:
            head, features = list(chain), tensor
    return head, features


def _activation(layer):
    return getattr(layer, "activation", None)


def split_model(model, devices=None):
    """The model-parallel version of `model`: trunk data-parallel, the
    head's Dense layers split column-wise over `devices`.

    Args:
        model: a built functional (or Sequential) Keras model with one input
            and one output, which ends in a head: `Dense` layers (with
            `Dropout`, `Activation`, `ReLU` or `LeakyReLU` layers between
            them) whose first takes a 2-D input (after `Flatten` or global
            pooling). A row-wise activation (softmax) only on the last
            layer. Everything before the first `Dense` is the trunk.
        devices: device names, or their number (None: as for `mirrored`,
            all GPUs, else the CPU split into 2), set up with
            `strategies.factory.replica_devices`.

    Returns:
        A new functional model, named as `model`, computing the same
        function: the trunk is `model`'s own layers (shared, not copied),
        wrapped in a `PerDevice` layer named "trunk"; each Dense layer of
        the head is a `ColumnParallelDense` of the same name holding a copy
        of its weights.

    Raises:
        ValueError: no such head, a head width (units) or layer option the
            split cannot take, or no such devices.
    """
    if not isinstance(devices, (list, tuple)):
        devices = replica_devices(devices)
    graph = getattr(model, "_functional", model)  # (Sequential's graph)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(
            "split_model takes a model with one input and one output. "
            f"Received: {len(graph.inputs)} inputs and {len(graph.outputs)} "
            f"outputs in model {model.name!r}")
    head, features = _head(graph)
    if not head:
        raise ValueError(
            f"Model {model.name!r} does not end in Dense layers (a head of "
            "Dense, Dropout and activation layers), so it has no fully "
            "connected layers to split. Received: last layer "
            f"{model.layers[-1].name!r} of type "
            f"{type(model.layers[-1]).__name__}")
    if len(features.shape) != 2:
        raise ValueError(
            f"The first Dense layer of the head, {head[0].name!r}, must take "
            "2-D features (after Flatten or global pooling). Received: "
            f"input shape {features.shape}")
    for i, layer in enumerate(head):
        if is_row_wise(_activation(layer)) and i != len(head) - 1:
            raise ValueError(
                f"Layer {layer.name!r}: a row-wise activation (softmax) can "
                "only end the head. Received: activation="
                f"{keras.activations.serialize(_activation(layer))!r}")
        if type(layer) is not keras.layers.Dense:
            continue
        check_width(layer.name, layer.units, len(devices))
        extras = [name for name in _DENSE_EXTRAS
                  if getattr(layer, name, None) is not None]
        if extras:
            raise ValueError(
                f"Layer {layer.name!r}: split_model does not carry "
                f"{', '.join(extras)} over to the split layer. Received: "
                + ", ".join(f"{name}={getattr(layer, name)!r}"
                            for name in extras))

    trunk = keras.Model(graph.inputs, features, name=f"{model.name}_trunk")
    source = graph.inputs[0]
    inputs = keras.Input(batch_shape=source.shape, dtype=source.dtype,
                         name=source.name)
    parts = PerDevice(trunk, devices, name="trunk")(inputs)
    last = head[-1]
    # A softmax ending the head is applied after the last gather.
    final = _activation(last) if is_row_wise(_activation(last)) else None
    input_split = "batch"
    for layer in head:
        if type(layer) is not keras.layers.Dense:
            if layer is not last or final is None:
                parts = PerDevice(type(layer).from_config(layer.get_config()),
                                  devices, name=layer.name)(parts)
            continue
        split = ColumnParallelDense(
            layer.units, devices, input_split,
            activation=None if layer is last and final else layer.activation,
            use_bias=layer.use_bias, dtype=layer.dtype_policy,
            name=layer.name)
        parts = split(parts)
        width = layer.units // len(devices)
        kernel = layer.kernel.numpy()
        for k, shard in enumerate(split.kernels):
            shard.assign(kernel[:, k * width:(k + 1) * width])
        if layer.use_bias:
            bias = layer.bias.numpy()
            for k, shard in enumerate(split.biases):
                shard.assign(bias[k * width:(k + 1) * width])
        input_split = "features"
    outputs = keras.layers.Concatenate(
        axis=-1, dtype=last.dtype_policy, name=f"{last.name}_gather")(parts)
    if final is not None:
        outputs = keras.layers.Activation(
            final, dtype=last.dtype_policy,
            name=f"{last.name}_activation")(outputs)
    return keras.Model(inputs, outputs, name=model.name)
