"""WinogradConv2D / WinogradFilterTransform CPU ops against float64 numpy.

The transform matrices are first checked against numpy's 1-D correlation;
the ops (and the pure-TF reference) must then match the direct float64
convolution of tests/numpy_reference.py, forward and both gradients, within
a tolerance per tile size: F(4x4, 3x3)'s transforms have entries up to 8 and
1/24, F(6x6, 3x3)'s up to 32 and 1/90, so their rounding errors are larger
than F(2x2, 3x3)'s. Errors are
measured relative to the largest magnitude of the exact result.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import _loader
from keras_cnnpractice.custom_ops import winograd
from tests import numpy_reference as ref

# Largest error allowed, relative to max |exact result|. Measured on the
# cases below (float32 inputs in [-1, 1], up to 1024 channels): at most
# 4e-7 for tile 2, 9e-6 for tile 4 and 1.1e-5 for tile 6, forward and input
# gradient (tf.nn.conv2d itself: 5e-7).
TOLERANCE = {2: 2e-6, 4: 3e-5, 6: 5e-5}
TILES = sorted(TOLERANCE)


def relative_error(got, want):
    return np.abs(np.asarray(got, np.float64) - want).max() / max(
        np.abs(want).max(), 1e-30)


def random_case(rng, shape_x, shape_w):
    x = rng.uniform(-1, 1, shape_x).astype(np.float32)
    w = rng.uniform(-1, 1, shape_w).astype(np.float32)
    return x, w


@pytest.mark.parametrize("tile", TILES)
def test_transform_matrices_compute_a_correlation(tile):
    # F(m, 3) in one dimension: A^T [(G g) * (B^T d)] is the valid
    # correlation of the m + 2 inputs d with the 3 taps g.
    b_t, g_mat, a_t = winograd.MATRICES[tile]
    rng = np.random.default_rng(tile)
    for _ in range(5):
        d, g = rng.normal(size=tile + 2), rng.normal(size=3)
        got = a_t @ ((g_mat @ g) * (b_t @ d))
        np.testing.assert_allclose(got, np.correlate(d, g, "valid"),
                                   rtol=1e-12, atol=1e-12)


def _forward_cases():
    """(shape, tile, padding): seeded random shapes, odd and even sizes
    including 1..3, batch 1..8, channels 1..64; then shapes for both CPU
    paths of winograd_cpu.h: the fused one (packed transformed filter up
    to 8 MiB: all the random shapes, the 96- and 512-channel ones below)
    and the blocked one (the last four at tiles 4 and 6, the 512- and
    1024-channel ones at tile 2), in several groups (1024 channels at tile
    4), row blocks and output-channel chunks; at tile 4 the 256 -> 300 one
    has the four row blocks that make it pack U once for all of them
    (winograd_cpu.h, PackFilterOnce). The 96x96 128 -> 128 one is fused with
    a packed U over 2 MiB at tiles 4 and 6, so its units take 36 tiles
    where there are two per worker (FusedRowTiles: up to 16 threads at tile
    4, 7 at tile 6). VALID only where the input has 3x3 pixels (smaller is
    rejected, below)."""
    rng = np.random.default_rng(42)
    shapes = []
    for i in range(8):
        batch = int(rng.integers(1, 9))
        h, w = (int(v) for v in rng.integers(1, 18, 2))
        if i < 3:
            h, w = i + 1, 3 - i  # 1x3, 2x2, 3x1
        cin, cout = (int(v) for v in rng.integers(1, 65, 2))
        shapes.append((batch, h, w, cin, cout))
    shapes += [(2, 30, 31, 96, 70), (3, 40, 40, 512, 8), (1, 9, 64, 7, 600),
               (2, 36, 30, 512, 130), (2, 36, 30, 1024, 64),
               (1, 6, 10, 512, 300), (2, 64, 60, 256, 300),
               (2, 96, 96, 128, 128)]
    return [(shape, tile, padding) for shape in shapes for tile in TILES
            for padding in ("SAME", "valid")
            if padding == "SAME" or min(shape[1:3]) >= 3]


@pytest.mark.parametrize("case,tile,padding", _forward_cases())
def test_forward_matches_float64(case, tile, padding):
    batch, h, w, cin, cout = case
    rng = np.random.default_rng(sum(case) + tile)
    x, k = random_case(rng, (batch, h, w, cin), (3, 3, cin, cout))
    want = ref.conv2d(x, k, padding=padding.upper())
    got = winograd.winograd_conv2d(x, k, padding=padding, tile=tile)
    assert got.shape == want.shape
    assert relative_error(got, want) < TOLERANCE[tile]


@pytest.mark.parametrize("tile", TILES)
def test_reference_matches_op_and_float64(tile):
    rng = np.random.default_rng(7)
    for padding, shape in [("SAME", (2, 11, 6, 5)), ("VALID", (3, 7, 10, 9))]:
        x, k = random_case(rng, shape, (3, 3, shape[3], 12))
        want = ref.conv2d(x, k, padding=padding)
        expected = winograd.winograd_conv2d_reference(x, k, padding, tile)
        assert expected.shape == want.shape
        assert relative_error(expected, want) < TOLERANCE[tile]
        got = winograd.winograd_conv2d(x, k, padding, tile).numpy()
        # The same algorithm in float32: only the summation order differs.
        assert relative_error(got, expected.numpy().astype(np.float64)) < (
            TOLERANCE[tile])


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("shape_x,cout", [((2, 13, 9, 20), 35),
                                          ((2, 10, 11, 130), 37)])
def test_filter_transform_and_cached_filter(tile, shape_x, cout):
    rng = np.random.default_rng(8)
    cin = shape_x[3]
    x, k = random_case(rng, shape_x, (3, 3, cin, cout))
    _, g_mat, _ = winograd.MATRICES[tile]
    u = winograd.winograd_filter_transform(k, tile=tile)
    want_u = np.einsum("ia,abck,jb->ijck", g_mat, k.astype(np.float64),
                       g_mat)
    assert u.shape == want_u.shape == (tile + 2, tile + 2, cin, cout)
    np.testing.assert_allclose(u.numpy(), want_u, rtol=1e-6, atol=1e-6)
    # The op computes the same transform when it is not given one (as it
    # packs the products' operands), so the results agree exactly.
    for padding in ("SAME", "VALID"):
        cached = winograd.winograd_conv2d(x, k, padding, tile,
                                          transformed_filter=u)
        fresh = winograd.winograd_conv2d(x, k, padding, tile)
        np.testing.assert_array_equal(cached.numpy(), fresh.numpy())
        assert relative_error(cached, ref.conv2d(x, k, padding=padding)) < (
            TOLERANCE[tile])


@pytest.mark.parametrize("tile", TILES)
def test_filter_transform_gradient(tile):
    rng = np.random.default_rng(9)
    k = tf.constant(rng.uniform(-1, 1, (3, 3, 4, 6)).astype(np.float32))
    du = rng.normal(size=(tile + 2, tile + 2, 4, 6))
    with tf.GradientTape() as tape:
        tape.watch(k)
        u = winograd.winograd_filter_transform(k, tile=tile)
        loss = tf.reduce_sum(u * tf.constant(du, tf.float32))
    _, g_mat, _ = winograd.MATRICES[tile]
    want = np.einsum("ia,ijck,jb->abck", g_mat, du, g_mat)
    np.testing.assert_allclose(tape.gradient(loss, k).numpy(), want,
                               rtol=1e-5, atol=1e-5)


GRADIENT_CASES = [(2, 7, 8, 5, 6), (1, 3, 3, 1, 2), (3, 10, 5, 16, 9),
                  (2, 14, 14, 33, 40)]


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_gradients_match_float64_and_conv2d(case, tile, padding):
    batch, h, w, cin, cout = case
    rng = np.random.default_rng(sum(case) * tile)
    x, k = random_case(rng, (batch, h, w, cin), (3, 3, cin, cout))
    want_y = ref.conv2d(x, k, padding=padding)
    dy = rng.uniform(-1, 1, want_y.shape).astype(np.float32)
    xt, kt = tf.constant(x), tf.constant(k)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([xt, kt])
        mine = tf.reduce_sum(
            winograd.winograd_conv2d(xt, kt, padding, tile) * dy)
        native = tf.reduce_sum(tf.nn.conv2d(xt, kt, 1, padding) * dy)
    dx, dk = tape.gradient(mine, [xt, kt])
    want_dx, want_dk = ref.conv2d_gradients(x, k, dy, padding=padding)
    assert relative_error(dx, want_dx) < TOLERANCE[tile]
    assert relative_error(dk, want_dk) < TOLERANCE[tile]
    native_dx, native_dk = tape.gradient(native, [xt, kt])
    assert relative_error(dx, native_dx.numpy().astype(np.float64)) < (
        TOLERANCE[tile])
    assert relative_error(dk, native_dk.numpy().astype(np.float64)) < (
        TOLERANCE[tile])


def test_input_gradient_is_a_winograd_convolution():
    x = tf.random.uniform((1, 6, 6, 2))
    k = tf.random.uniform((3, 3, 2, 3))

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = winograd.winograd_conv2d(x, k, "VALID", tile=4)
        return tape.gradient(y, x)

    graph = grad.get_concrete_function(x).graph
    convs = [op for op in graph.get_operations()
             if op.type == winograd.OP_NAME]
    assert len(convs) == 2  # the forward and the input gradient


def test_empty_inputs_and_shape_inference():
    k = tf.ones((3, 3, 4, 5))
    out = winograd.winograd_conv2d(tf.zeros((0, 6, 6, 4)), k)
    assert out.shape == (0, 6, 6, 5)
    out = winograd.winograd_conv2d(tf.ones((2, 5, 4, 0)),
                                   tf.ones((3, 3, 0, 5)), "VALID", 4)
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 3, 2, 5)))
    out = winograd.winograd_conv2d(tf.ones((2, 5, 4, 4)),
                                   tf.ones((3, 3, 4, 0)))
    assert out.shape == (2, 5, 4, 0)
    conv = tf.function(lambda x: winograd.winograd_conv2d(x, k, "VALID"))
    traced = conv.get_concrete_function(tf.TensorSpec([None, 9, 7, 4]))
    assert traced.output_shapes.as_list() == [None, 7, 5, 5]


def _raw_conv(x, k, u=None, **attrs):
    lib = _loader.load_op_library()
    attrs = {"tile": 2, "padding": "SAME", **attrs}
    u = tf.zeros([0]) if u is None else u
    return lib.keras_cnn_practice_winograd_conv2d(x, k, u, **attrs)


X = np.zeros((1, 5, 5, 4), np.float32)
K = np.zeros((3, 3, 4, 2), np.float32)


@pytest.mark.parametrize("call,message", [
    (lambda: winograd.winograd_conv2d(X, K, tile=3), r"Received: tile=3"),
    (lambda: winograd.winograd_filter_transform(K, tile=8),
     r"Received: tile=8"),
    (lambda: winograd.winograd_conv2d(X, K, padding="full"),
     r"Received: padding='FULL'"),
    (lambda: _raw_conv(X, K, data_format="NCHW"),
     r"Received: data_format='NCHW'"),
    (lambda: winograd.winograd_conv2d(X, np.zeros((5, 5, 4, 2), np.float32)),
     r"3x3 filter.*Received filter shape: \[5,5,4,2\]"),
    (lambda: winograd.winograd_filter_transform(
        np.zeros((3, 2, 4, 2), np.float32)),
     r"Received filter shape: \[3,2,4,2\]"),
    (lambda: winograd.winograd_conv2d(X[0], K),
     r"rank 4.*Received input shape: \[5,5,4\]"),
    (lambda: winograd.winograd_conv2d(X, np.zeros((3, 3, 3, 2), np.float32)),
     r"input has 4 channels but the filter expects 3"),
    (lambda: winograd.winograd_conv2d(
        X, K, tile=4, transformed_filter=np.zeros((4, 4, 4, 2), np.float32)),
     r"Received transformed_filter shape: \[4,4,4,2\]"),
    (lambda: winograd.winograd_conv2d(X[:, :2, :], K, "VALID"),
     r"at least 3x3.*Received input shape: \[1,2,5,4\]"),
    (lambda: winograd.winograd_conv2d(tf.constant(X, tf.float64), K),
     r"Received: x.dtype=float64"),
    (lambda: winograd.winograd_filter_transform(np.zeros((3, 3, 4, 2))),
     r"Received: w.dtype=float64"),
    (lambda: winograd.winograd_conv2d(X, K, strides=2),
     r"supports strides=1 only .*im2col_conv2d or fft_conv2d.*Received: "
     r"strides=2"),
    (lambda: winograd.winograd_conv2d(X, K, dilations=(1, 2)),
     r"supports dilations=1 only .*Received: dilations=\(1, 2\)"),
    (lambda: tf.function(winograd.winograd_conv2d)(
        X, K, padding=[[0, 0], [1, 1], [1, 1], [0, 0]]),
     r"supports padding='SAME' or 'VALID' \(pad the input with tf.pad"),
])
def test_rejects_bad_arguments(call, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        call()


@pytest.mark.parametrize("kwargs,message", [
    ({"tile": 3}, r"Received: tile=3"),
    ({"padding": "full"}, r"Received: padding='FULL'"),
    ({"w": np.zeros((1, 1, 4, 2))}, r"Received filter shape: \(1, 1, 4, 2\)"),
])
def test_reference_rejects_bad_arguments(kwargs, message):
    kwargs = {"x": X, "w": K, **kwargs}
    with pytest.raises(ValueError, match=message):
        winograd.winograd_conv2d_reference(**kwargs)
