"""summarize(): the lecture's arithmetic and published figures."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.analysis import summarize
from keras_cnnpractice.layers import AsymmetricConv2D
from keras_cnnpractice.layers import Bottleneck
from keras_cnnpractice.layers import StackedConv2D
from keras_cnnpractice.models import create_model
from tests.layers.helpers import gradient_support

C = 32


def _summary(layer, size=16, channels=C):
    inputs = keras.Input((size, size, channels))
    return summarize(keras.Model(inputs, layer(inputs)))


def _weights(summary):
    return sum(r.params for r in summary.rows)


@pytest.mark.parametrize("receptive_field, depth", [(5, 2), (7, 3)])
def test_stacked_3x3_receptive_fields(receptive_field, depth):
    s = _summary(StackedConv2D(C, receptive_field, use_bias=False))
    assert [r.receptive_field for r in s.rows] == [
        (1 + 2 * (i + 1),) * 2 for i in range(depth)]


def test_three_3x3_against_one_7x7():
    big = _summary(keras.layers.Conv2D(C, 7, padding="same", use_bias=False))
    small = _summary(StackedConv2D(C, 7, use_bias=False))
    assert _weights(big) == 49 * C * C and _weights(small) == 27 * C * C
    assert big.macs == 49 * C * C * 16 * 16 and small.macs == 27 * C * C * 16 * 16
    assert big.rows[-1].receptive_field == small.rows[-1].receptive_field == (7, 7)


def test_bottleneck_and_asymmetric_against_3x3():
    plain = _summary(keras.layers.Conv2D(C, 3, padding="same", use_bias=False))
    sandwich = _summary(Bottleneck(C, reduction=2, use_bias=False))
    pair = _summary(AsymmetricConv2D(C, 3, use_bias=False))
    assert _weights(plain) == 9 * C * C
    assert _weights(sandwich) == 3.25 * C * C
    assert _weights(pair) == 6 * C * C
    assert sandwich.macs == 3.25 * C * C * 256 and pair.macs == 6 * C * C * 256
    assert (pair.rows[-1].receptive_field == sandwich.rows[-1].receptive_field
            == (3, 3))


def test_receptive_field_matches_gradient_support():
    # Independent check: the input pixels that influence the centre output
    # of a linear network with strides, dilation, pooling and branches.
    inputs = keras.Input((64, 64, 1))
    x = keras.layers.Conv2D(2, 3, strides=2, kernel_initializer="ones")(inputs)
    x = keras.layers.AveragePooling2D(2)(x)
    a = keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same",
                            kernel_initializer="ones")(x)
    b = AsymmetricConv2D(2, 5, activation="linear", kernel_initializer="ones")(x)
    x = keras.layers.Concatenate()([a, b])
    outputs = keras.layers.Conv2D(1, 3, kernel_initializer="ones")(x)
    model = keras.Model(inputs, outputs)
    rf = summarize(model).rows[-1].receptive_field
    low, high = gradient_support(model, np.ones((1, 64, 64, 1), "float32"))
    extent = tuple(h - lo + 1 for h, lo in zip(high, low))
    # 3 -> pool: 5 (jump 4) -> dilated 3x3 or 1x5+5x1: 21 -> 3x3: 29
    assert rf == extent == (29, 29)


def test_alexnet_first_layers():
    s = summarize(create_model("alexnet", (227, 227, 3), 1000))
    conv1, pool1 = s.rows[0], s.rows[1]
    assert conv1.output_shape == (55, 55, 96)
    assert conv1.params == 34_848 + 96
    assert pool1.output_shape == (27, 27, 96) and pool1.params == 0


def test_vgg16_slide_figures():
    model = create_model("vgg16", (224, 224, 3), 1000)
    s = summarize(model, batch_size=1)
    assert s.params == 138_357_544 == sum(r.params for r in s.rows)
    # The slide's per-layer rows: INPUT 150K, CONV3-64 3.2M (x2), POOL2 800K,
    # CONV3-128 1.6M (x2), POOL2 400K, CONV3-256 800K (x3), POOL2 200K,
    # CONV3-512 400K (x3), POOL2 100K, CONV3-512 100K (x3), POOL2 25K,
    # FC 4096, 4096, 1000. They add up to 15.2M values (61 MB): the slide's
    # "TOTAL 24M (93 MB)" does not match its own rows.
    convs = [r.activations for r in s.rows if r.kind == "Conv2D"]
    assert convs == [3_211_264] * 2 + [1_605_632] * 2 + [802_816] * 3 + [
        401_408] * 3 + [100_352] * 3
    pools = [r.activations for r in s.rows if r.kind == "MaxPooling2D"]
    assert pools == [802_816, 401_408, 200_704, 100_352, 25_088]
    assert s.input_elements == 150_528
    assert s.activations_per_image == 15_237_608
    assert s.forward_bytes_per_image == 4 * 15_237_608
    by_memory = max(s.rows, key=lambda r: r.activations)
    by_params = max(s.rows, key=lambda r: r.params)
    assert by_memory.name.startswith("block1_conv")    # early convolutions
    assert by_params.name == "fc1" and by_params.params == 25088 * 4096 + 4096
    # activations kept for backward + weights + gradients + 2 Adam slots
    assert s.training_bytes(32) == 32 * s.forward_bytes_per_image + 4 * s.param_bytes


def test_googlenet_table_figures():
    s = summarize(create_model("googlenet", (224, 224, 3), 1000))
    module = [r for r in s.rows if r.name.startswith("inception_3a/")]
    params = sum(r.params for r in module)
    macs = sum(r.macs for r in module)
    assert abs(params - 159e3) / 159e3 < 0.05       # paper: 159K
    assert abs(macs - 128e6) / 128e6 < 0.02         # paper: 128M
    assert 5e6 <= s.params <= 7e6


def test_output_formats():
    s = _summary(StackedConv2D(4, 5, name="stack"), size=8, channels=2)
    markdown, csv_text = s.to_markdown(), s.to_csv()
    assert markdown.startswith("| layer | type | output | params | MACs |")
    assert "stack/conv1" in markdown and "forward activations" in markdown
    assert csv_text.splitlines()[0].startswith("layer,type,output,params,MACs")
    assert len(csv_text.strip().splitlines()) == 3
    assert "receptive field" in str(s)


def test_needs_a_known_input():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="known input shape"):
        summarize(model)


def test_sequential_and_nested_models():
    inner = keras.Sequential([keras.Input((16, 16, 3)),
                              keras.layers.Conv2D(4, 3, name="a"),
                              keras.layers.MaxPooling2D(2, name="p")],
                             name="inner")
    inputs = keras.Input((16, 16, 3))
    x = inner(inputs)
    outputs = StackedConv2D(2, 5, name="stack")(x)
    s = summarize(keras.Model(inputs, outputs))
    assert [r.name for r in s.rows] == ["inner/a", "inner/p", "stack/conv0",
                                        "stack/conv1"]
    # 3 -> pool 2: 4 (jump 2) -> two 3x3 at jump 2: 8, 12
    assert [r.receptive_field[0] for r in s.rows] == [3, 4, 8, 12]
    assert [r.output_shape for r in s.rows][-1] == (7, 7, 2)
    assert summarize(inner).rows[-1].output_shape == (7, 7, 4)


def test_bit_aware_weight_memory():
    from keras_cnnpractice.layers import BinaryConv2D, BinaryDense, QuantDense
    model = keras.Sequential([
        keras.Input((10, 10, 3)), BinaryConv2D(32, 3, binary_input=False),
        keras.layers.BatchNormalization(), BinaryConv2D(64, 3),
        keras.layers.GlobalAveragePooling2D(), BinaryDense(16),
        QuantDense(10, kernel_quantizer="fixed_point")])
    s = summarize(model)
    rows = {r.kind: r for r in s.rows}
    conv1, conv2 = [r for r in s.rows if r.kind == "BinaryConv2D"]
    assert (conv1.input_bits, conv1.weight_bits) == (None, 1)
    assert (conv2.input_bits, conv2.weight_bits) == (1, 1)
    assert conv2.weight_bytes == 3 * 3 * 32 * 64 / 8           # 32x below float32
    assert rows["BatchNormalization"].weight_bytes == 4 * 32 * 4
    assert rows["QuantDense"].weight_bits == 16
    assert rows["QuantDense"].weight_bytes == (16 * 10 * 16 + 10 * 32) / 8
    binary_kernels = 3 * 3 * 3 * 32 + 3 * 3 * 32 * 64 + 64 * 16
    assert s.weight_bytes == (binary_kernels / 8 + 4 * 32 * 4
                              + (16 * 10 * 16 + 10 * 32) / 8)
    assert s.param_bytes == 4 * model.count_params()
    assert s.to_csv().splitlines()[0].endswith("input bits,weight bits,weight memory (bytes)")
