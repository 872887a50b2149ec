"""FastConv2D against a float64 numpy convolution and keras.layers.Conv2D,
its on-disk algorithm cache, and portable / custom-op exports."""

import json
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from keras_cnnpractice.custom_ops import conv_algorithms
from keras_cnnpractice.custom_ops import conv_autotune
from keras_cnnpractice.layers import FastConv2D
from keras_cnnpractice.layers.fast_conv2d import portable_export
from tests import numpy_reference as ref
from tests.conftest import run_python
from tests.layers.helpers import assert_round_trips

RNG = np.random.default_rng(0)
ALGORITHMS = ["native", "im2col", "fft", "winograd", "winograd4",
              "winograd6"]
# max |output - float64 reference| / max |reference| allowed per algorithm;
# the larger Winograd tiles' transforms have larger entries, so they are
# less accurate.
TOLERANCE = {"native": 1e-5, "im2col": 1e-5, "fft": 1e-5, "winograd": 1e-5,
             "winograd4": 1e-4, "winograd6": 1e-3}


@pytest.fixture(autouse=True)
def conv_cache(tmp_path, monkeypatch):
    """Each test gets its own algorithm cache file."""
    path = tmp_path / "cache" / "conv_algorithms.json"
    monkeypatch.setenv(conv_autotune.CACHE_ENV, str(path))
    return path


@pytest.fixture
def measurements(monkeypatch):
    """Counts the calls of conv_autotune.measure (the timing runs)."""
    calls = []
    measure = conv_autotune.measure

    def counted(*args, **kwargs):
        calls.append(args[0])
        return measure(*args, **kwargs)

    monkeypatch.setattr(conv_autotune, "measure", counted)
    return calls


def _assert_close(got, want, tolerance):
    got = np.asarray(got, np.float64)
    scale = np.abs(want).max()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= tolerance * scale, (
        np.abs(got - want).max() / scale)


def _reference(layer, x, strides=(1, 1), dilations=(1, 1)):
    kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    return ref.conv2d(x, kernel, strides, dilations,
                      layer.padding.upper()) + bias


# (kernel, strides, padding, dilation, input height x width) per algorithm.
CASES = {
    "native": [(3, 1, "same", 1, (9, 8))],
    "im2col": [(3, 1, "same", 1, (9, 8)), (5, 2, "valid", 1, (12, 11)),
               (3, 1, "same", 2, (10, 7))],
    "fft": [(3, 1, "same", 1, (9, 8)), (7, 2, "same", 1, (13, 10)),
            (5, 1, "valid", 1, (11, 12))],
    "winograd": [(3, 1, "same", 1, (9, 8)), (3, 1, "valid", 1, (10, 7))],
    "winograd4": [(3, 1, "same", 1, (9, 8)), (3, 1, "valid", 1, (11, 13))],
    "winograd6": [(3, 1, "same", 1, (9, 8)), (3, 1, "valid", 1, (15, 13))],
}


@pytest.mark.parametrize("algorithm,case", [
    (a, c) for a in ALGORITHMS for c in CASES[a]])
def test_output_matches_float64_reference(algorithm, case):
    kernel, strides, padding, dilation, size = case
    layer = FastConv2D(6, kernel, strides=strides, padding=padding,
                       dilation_rate=dilation, algorithm=algorithm,
                       bias_initializer="random_normal")
    x = RNG.normal(size=(2, *size, 5)).astype("float32")
    got = layer(x)
    _assert_close(got, _reference(layer, x, (strides,) * 2, (dilation,) * 2),
                  TOLERANCE[algorithm])
    assert layer.compute_output_shape(x.shape) == got.shape
    assert layer.chosen_algorithm == algorithm


def test_weights_transfer_both_ways_with_conv2d():
    x = RNG.normal(size=(2, 10, 9, 4)).astype("float32")
    conv = keras.layers.Conv2D(5, 3, padding="same",
                               bias_initializer="random_normal")
    fast = FastConv2D(5, 3, algorithm="winograd")
    conv.build(x.shape)
    fast.build(x.shape)
    assert ([(w.name, w.shape) for w in fast.weights]
            == [(w.name, w.shape) for w in conv.weights]
            == [("kernel", (3, 3, 4, 5)), ("bias", (5,))])
    fast.set_weights(conv.get_weights())
    _assert_close(fast(x), np.asarray(conv(x), np.float64), 1e-5)

    fast = FastConv2D(5, 3, algorithm="fft", bias_initializer="random_normal")
    fast.build(x.shape)
    conv.set_weights(fast.get_weights())
    _assert_close(conv(x), np.asarray(fast(x), np.float64), 1e-5)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradients_equal_conv2d(algorithm):
    x = tf.constant(RNG.normal(size=(2, 8, 9, 3)).astype("float32"))
    dy = tf.constant(RNG.normal(size=(2, 8, 9, 4)).astype("float32"))
    conv = keras.layers.Conv2D(4, 3, padding="same",
                               bias_initializer="random_normal")
    fast = FastConv2D(4, 3, algorithm=algorithm)
    conv.build(x.shape)
    fast.build(x.shape)
    fast.set_weights(conv.get_weights())
    grads = []
    for layer in (conv, fast):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * dy)
        grads.append(tape.gradient(loss, [x, *layer.trainable_weights]))
    for got, want in zip(grads[1], grads[0]):
        _assert_close(got, np.asarray(want, np.float64),
                      10 * TOLERANCE[algorithm])


def _tiny_model(conv_layers, seed):
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for layer in conv_layers:
        x = layer(x)
    outputs = keras.layers.Dense(2, kernel_initializer=keras.initializers
                                 .GlorotUniform(seed))(
        keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def test_one_training_step_equals_conv2d():
    """model.train_on_batch (a traced tf.function) with FastConv2D layers
    updates the weights as the same model with Conv2D layers does."""
    fast = _tiny_model([FastConv2D(4, 3, activation="relu",
                                   algorithm="im2col"),
                        FastConv2D(4, 5, activation="relu", algorithm="fft"),
                        FastConv2D(3, 3, algorithm="winograd4")], seed=1)
    conv = _tiny_model([keras.layers.Conv2D(4, 3, padding="same",
                                            activation="relu"),
                        keras.layers.Conv2D(4, 5, padding="same",
                                            activation="relu"),
                        keras.layers.Conv2D(3, 3, padding="same")], seed=1)
    fast.set_weights(conv.get_weights())
    x = RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    y = RNG.normal(size=(4, 2)).astype("float32")
    before = conv.get_weights()
    conv.train_on_batch(x, y)
    fast.train_on_batch(x, y)
    for got, want, old in zip(fast.get_weights(), conv.get_weights(), before):
        assert not np.allclose(want, old)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_mixed_precision_computes_in_float32_and_casts_back():
    layer = FastConv2D(4, 3, algorithm="winograd", dtype="mixed_float16")
    x = RNG.normal(size=(2, 7, 6, 3)).astype("float32")
    got = layer(x)
    assert got.dtype == "float16" and layer.kernel.dtype == "float32"
    x16 = x.astype("float16").astype("float64")
    _assert_close(got, _reference(layer, x16), 2e-3)


def test_round_trips(tmp_path):
    assert_round_trips(FastConv2D(3, 3, algorithm="winograd4", portable=False,
                                  activation="relu"), (7, 6, 2),
                       tmp_path / "winograd")
    assert_round_trips(FastConv2D(3, (5, 3), strides=2, padding="valid"),
                       (9, 8, 2), tmp_path / "auto")


def test_auto_picks_a_valid_algorithm_and_caches_it_on_disk(
        conv_cache, measurements):
    layer = FastConv2D(4, 5, bias_initializer="random_normal")
    layer.build((None, 10, 9, 3))
    # A 5x5 kernel rules out both Winograd algorithms.
    assert layer.chosen_algorithm in ("native", "im2col", "fft")
    assert measurements == [(None, 10, 9, 3)]
    entries = json.loads(conv_cache.read_text())["entries"]
    (key, record), = entries.items()
    assert ("input=(None, 10, 9, 3) kernel=(5, 5, 3, 4) strides=(1, 1) "
            "padding=SAME dilations=(1, 1) dtype=float32 "
            "epilogue=bias+linear |") in key
    # An unknown batch is measured at batches 1 and 8.
    assert record["batches"] == list(conv_autotune.UNKNOWN_BATCHES)
    assert record["measured_input_shape"] == [1, 10, 9, 3]
    assert sorted(record["ms"]) == ["fft", "im2col", "native"]
    assert all(len(ms) == 2 for ms in record["ms"].values())
    assert record["algorithm"] == layer.chosen_algorithm
    assert record["algorithm"] == conv_autotune._pick(record["ms"])
    x = RNG.normal(size=(3, 10, 9, 3)).astype("float32")
    # Called eagerly on a batch of 3: a new shape, measured on first call.
    _assert_close(layer(x), _reference(layer, x), 1e-5)
    assert measurements == [(None, 10, 9, 3), (3, 10, 9, 3)]
    assert set(layer.chosen_algorithms) == {(None, 10, 9, 3), (3, 10, 9, 3)}

    # Another layer of the same shape reads the disk cache.
    again = FastConv2D(4, 5, name="again")
    again.build((None, 10, 9, 3))
    again(x)
    assert len(measurements) == 2
    assert again.chosen_algorithms == layer.chosen_algorithms


def test_auto_leaves_out_algorithms_outside_the_tolerance(monkeypatch):
    exact = conv_algorithms._CUSTOM_OPS["im2col"]
    monkeypatch.setitem(conv_algorithms._CUSTOM_OPS, "im2col",
                        lambda *args: exact(*args) * 1.01)
    record = conv_autotune.measure((2, 9, 9, 4), (3, 3, 4, 4), (1, 1),
                                   "SAME", (1, 1))
    assert record["rejected"] == {
        "im2col": "relative error 0.01 > tolerance 0.0001"}
    assert "im2col" not in record["ms"] and record["algorithm"] != "im2col"
    assert set(record["ms"]) == {"native", "fft", "winograd", "winograd4",
                                 "winograd6"}


@pytest.mark.parametrize("ms,want", [
    # 10 % faster than native at every batch: chosen.
    ({"native": [10.0, 80.0], "im2col": [9.0, 72.0]}, "im2col"),
    # Faster, but not by the margin at batch 8: native.
    ({"native": [10.0, 80.0], "im2col": [5.0, 75.0]}, "native"),
    # Faster at batch 1, slower at batch 8: native.
    ({"native": [10.0, 80.0], "winograd": [4.0, 90.0]}, "native"),
    # The largest worst-case speedup wins, not the fastest at one batch.
    ({"native": [10.0, 80.0], "winograd": [3.0, 60.0],
      "winograd4": [5.0, 40.0]}, "winograd4"),
    # native rejected (e.g. a wrong shape for an empty batch): the fastest.
    ({"im2col": [2.0, 3.0], "fft": [1.0, 5.0]}, "im2col"),
])
def test_auto_keeps_native_unless_another_is_clearly_faster(ms, want):
    assert conv_autotune.MARGIN == 1.1
    assert conv_autotune._pick(ms) == want


def test_auto_times_the_layer_epilogue_at_the_called_batch(
        conv_cache, measurements, monkeypatch):
    traced = []
    measure = conv_autotune.measure

    def spy(*args, epilogue=None, **kwargs):
        def watched(y):
            traced.append(tuple(y.shape))
            return epilogue(y)
        return measure(*args, epilogue=watched, **kwargs)

    monkeypatch.setattr(conv_autotune, "measure", spy)
    relu = FastConv2D(4, 3, activation="relu", name="relu")
    x = RNG.normal(size=(5, 8, 8, 2)).astype("float32")
    tf.function(relu)(x)  # a known batch: measured at that batch only
    record, = json.loads(conv_cache.read_text())["entries"].values()
    assert record["batches"] == [5]
    assert set(traced) == {(5, 8, 8, 4)}
    assert len(traced) == len(record["ms"])  # one timed trace per algorithm
    # Another epilogue is another measurement (and cache entry).
    plain = FastConv2D(4, 3, use_bias=False, name="plain")
    tf.function(plain)(x)
    keys = sorted(json.loads(conv_cache.read_text())["entries"])
    assert [k.split("epilogue=")[1].split(" |")[0] for k in keys] == [
        "bias+relu", "linear"]
    # The epilogue is the layer's: bias and ReLU, as Conv2D applies them.
    want = np.maximum(_reference(relu, x), 0)
    _assert_close(relu(x), want, 1e-5)


def test_auto_measures_empty_convolutions_and_records_rejections():
    # A batch of 0 is measured as such (not as batch 1): the algorithms
    # that compute it are exact, and one whose output has the wrong shape
    # (TensorFlow's oneDNN Conv2D returns the input's) is not chosen.
    record = conv_autotune.measure((0, 4, 5, 1), (2, 2, 1, 1), (1, 1),
                                   "VALID", (1, 1))
    assert record["measured_input_shape"] == [0, 4, 5, 1]
    assert set(record["relative_error"].values()) == {0.0}
    assert "native" in record["ms"] or record["rejected"]["native"] == (
        "output shape (4, 5, 1), not (3, 4, 1)")
    # A kernel wider than the input: every algorithm refuses it (FFT with
    # a ValueError), and the error lists why.
    with pytest.raises(RuntimeError, match=(
            r"No convolution algorithm computes input \(1, 1, 1, 2\).*"
            r"'fft': \"ValueError: fft_conv2d with padding='VALID': the "
            r"kernel is larger than the input")):
        conv_autotune.measure((1, 1, 1, 2), (1, 3, 2, 3), (1, 2), "VALID",
                              (1, 1))


def test_auto_float64_keeps_float64_accuracy_and_refuses_integers():
    layer = FastConv2D(3, 3, dtype="float64", bias_initializer="ones")
    x = RNG.normal(size=(2, 7, 6, 2))
    got = layer(x)
    assert got.dtype == "float64" and layer.chosen_algorithm == "native"
    _assert_close(got, _reference(layer, x), 1e-12)
    with pytest.raises(ValueError, match=(
            r"measured in floating point only: dtype must be one of "
            r"\['bfloat16', 'float16', 'float32', 'float64'\] \(or choose "
            r"an algorithm explicitly\)\. Received: dtype='int32'")):
        FastConv2D(3, 3, dtype="int32")
    with pytest.raises(ValueError, match=(
            r"algorithm 'fft' computes in float32 and serves floating-point "
            r"dtypes only \('native' computes int32\)")):
        FastConv2D(3, 3, dtype="int32", algorithm="fft")


def test_corrupt_cache_warns_and_measures_again(conv_cache, measurements,
                                                caplog):
    conv_cache.parent.mkdir(parents=True)
    for text in ("{not json", '{"entries": [1, 2]}'):
        conv_cache.write_text(text)
        with caplog.at_level("WARNING"):
            FastConv2D(2, 3, algorithm="auto").build((1, 6, 6, 2))
        assert "is corrupt" in caplog.text
        caplog.clear()
    assert len(measurements) == 2
    assert len(json.loads(conv_cache.read_text())["entries"]) == 1


def test_untraceable_shape_uses_native_with_a_warning(caplog):
    layer = FastConv2D(2, 3)
    fn = tf.function(layer).get_concrete_function(
        tf.TensorSpec((None, None, None, 3)))
    assert "Conv2D" in {op.type for op in fn.graph.get_operations()}
    assert layer.chosen_algorithm is None
    assert "is not known while tracing" in caplog.text


def _graph_ops(saved_model_dir):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    graphs = [mg.graph_def for mg in proto.meta_graphs]
    return ({n.op for g in graphs for n in g.node}
            | {n.op for g in graphs for f in g.library.function
               for n in f.node_def})


def _is_custom(op):
    return op.startswith("KerasCnnPractice>")


def test_export_portable_or_with_the_custom_op(tmp_path):
    x = RNG.normal(size=(2, 9, 8, 3)).astype("float32")
    served = {}
    for portable in (True, False):
        layer = FastConv2D(4, 3, algorithm="winograd", portable=portable,
                           bias_initializer="random_normal")
        inputs = keras.Input((9, 8, 3))
        model = keras.Model(inputs, layer(inputs))
        # A tf.function trace outside export uses the Winograd op.
        traced = tf.function(model).get_concrete_function(
            tf.TensorSpec((None, 9, 8, 3)))
        assert any(_is_custom(op.type)
                   for op in traced.graph.get_operations())
        path = tmp_path / f"portable_{portable}"
        with portable_export():
            model.export(str(path), verbose=False)
        assert any(map(_is_custom, _graph_ops(path))) != portable
        served[portable] = str(path)
        # Outside portable_export(), an export traces what training runs.
        model.export(str(tmp_path / "plain"), verbose=False)
        assert any(map(_is_custom, _graph_ops(tmp_path / "plain")))
        np.save(path / "want.npy", _reference(layer, x))
    np.save(tmp_path / "x.npy", x)
    # A fresh process that never imports keras_cnnpractice serves the
    # portable export; the other needs the op library loaded first.
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        x = np.load({str(tmp_path / "x.npy")!r})
        def check(path):
            want = np.load(path + "/want.npy")
            loaded = tf.saved_model.load(path)
            got = loaded.serve(x).numpy()
            assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
        check({served[True]!r})
        try:
            tf.saved_model.load({served[False]!r})
        except Exception as err:
            assert "KerasCnnPractice" in str(err), err
        else:
            raise AssertionError("loaded without the op library")
        from keras_cnnpractice.custom_ops import load_op_library
        load_op_library()
        check({served[False]!r})
        print("served")
    """)
    assert "served" in run_python(["-c", script]).stdout


@pytest.mark.parametrize("kwargs,match", [
    ({"kernel_size": 5, "algorithm": "winograd"},
     "computes 3x3 kernels only.*kernel_size=\\(5, 5\\)"),
    ({"strides": 2, "algorithm": "winograd4"},
     "stride 1 only.*strides=\\(2, 2\\)"),
    ({"dilation_rate": 2, "algorithm": "fft"},
     "has no dilation.*dilation_rate=\\(2, 2\\)"),
    ({"algorithm": "gemm"}, "Received: algorithm='gemm'"),
    ({"data_format": "channels_first"},
     "Received: data_format='channels_first'"),
    ({"groups": 2}, "Received: groups=2"),
    ({"portable": "yes"}, "Received: portable='yes'"),
])
def test_invalid_arguments(kwargs, match):
    kwargs = {"kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        FastConv2D(4, **kwargs)
