"""The Winograd CUDA kernels through their standalone harness.

Runs where nvcc, CuPy and a GPU exist (the lent GPU machine, which has no
TensorFlow); elsewhere it only checks that the harness compiles, or skips.
The GPU convolution (filter transform, input transform, batched products,
output transform) must match the float64 direct convolution of
tests/numpy_reference.py within the tolerances the CPU op is held to
(tests/custom_ops/test_winograd.py, not imported here: it needs
TensorFlow).
"""

import ctypes
import shutil

import numpy as np
import pytest

from tests import numpy_reference as ref
from tests.gpu import harness

pytestmark = pytest.mark.gpu

# Largest error allowed per tile size, the CPU op's (there relative to max
# |exact result|), here relative to the largest sum of |products| of an
# output, conv2d(|x|, |w|): the scale of float32 rounding errors, which does
# not shrink when the exact result cancels (on an H200, one 3x3 VALID output
# of one channel was 3.6e-5 of its own |exact| value with F(4x4)). Measured
# there on VGG-16's layers (time_winograd): at most 1.2e-7 (F2), 2.5e-6 (F4)
# and 3.9e-6 (F6) of this scale, so these bounds could be tightened after a
# run of the tests on a GPU.
TOLERANCE = {2: 2e-6, 4: 3e-5, 6: 5e-5}


def relative_error(got, x, w, padding):
    """max |got - exact| / max conv2d(|x|, |w|), the exact in float64."""
    want = ref.conv2d(x, w, padding=padding)
    assert got.shape == want.shape
    scale = ref.conv2d(np.abs(x), np.abs(w), padding=padding).max()
    return np.abs(got - want).max() / scale

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None,
                                reason="nvcc not installed")


def load_library(out_dir):
    """Builds the harness into out_dir; its functions, typed for ctypes.

    conv2d takes a last argument, synchronize: 1 waits for the kernels (the
    status then covers their execution), 0 returns after the launches."""
    ptr, ll = ctypes.c_void_p, ctypes.c_longlong
    geometry = ctypes.POINTER(ctypes.c_int64)
    return harness.load(out_dir, "winograd", "kcp_winograd_", {
        "kcp_winograd_filter_transform": (ctypes.c_int, [ll, ptr, ptr, ll, ll]),
        "kcp_winograd_workspace_floats": (ll, [geometry]),
        "kcp_winograd_conv2d": (ctypes.c_int,
                                [ptr, ptr, ptr, ptr, geometry, ctypes.c_int]),
    })


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not installed")
    return load_library(tmp_path_factory.mktemp("harness"))


def geometry(x_shape, cout, padding, tile):
    """The 12 WinogradGeometry fields, in declaration order."""
    batch, in_h, in_w, cin = x_shape
    pad = 1 if padding == "SAME" else 0
    out_h, out_w = in_h + 2 * pad - 2, in_w + 2 * pad - 2
    return (ctypes.c_int64 * 12)(
        batch, in_h, in_w, cin, cout, out_h, out_w, pad, pad, tile,
        -(-out_h // tile), -(-out_w // tile))


def winograd_gpu(cupy, library, x, w, padding, tile):
    """The GPU convolution of x with w, as a numpy array."""
    cin, cout = w.shape[2:]
    g = geometry(x.shape, cout, padding, tile)
    # Named, so the device buffers live until the calls return.
    xd, wd = cupy.asarray(x), cupy.asarray(w)
    u = cupy.full((tile + 2, tile + 2, cin, cout), np.nan, cupy.float32)
    assert library.filter_transform(tile, wd.data.ptr, u.data.ptr, cin,
                                    cout) == 0
    workspace = cupy.full(library.workspace_floats(g), np.nan, cupy.float32)
    out = cupy.full((x.shape[0], g[5], g[6], cout), np.nan, cupy.float32)
    assert library.conv2d(xd.data.ptr, u.data.ptr, out.data.ptr,
                          workspace.data.ptr, g, 1) == 0
    return cupy.asnumpy(out)


@needs_nvcc
def test_harness_compiles(library):
    assert library is not None


CASES = [
    # batch, height, width, in_channels, out_channels
    (1, 1, 1, 1, 1), (2, 2, 3, 3, 4), (3, 5, 7, 17, 20), (2, 9, 8, 64, 33),
    (2, 30, 31, 96, 70), (4, 14, 14, 256, 130), (1, 56, 56, 64, 64),
]


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("tile", sorted(TOLERANCE))
@pytest.mark.parametrize("case", CASES)
def test_winograd_conv2d_matches_float64(library, case, tile, padding):
    cupy = harness.cupy_or_skip()
    batch, h, w, cin, cout = case
    if padding == "VALID" and min(h, w) < 3:
        h, w = h + 2, w + 2  # VALID needs 3x3 pixels
    rng = np.random.default_rng(sum(case) + tile)
    x = rng.uniform(-1, 1, (batch, h, w, cin)).astype(np.float32)
    k = rng.uniform(-1, 1, (3, 3, cin, cout)).astype(np.float32)
    got = winograd_gpu(cupy, library, x, k, padding, tile)
    assert relative_error(got, x, k, padding) < TOLERANCE[tile]


def test_no_input_channels_gives_zeros(library):
    cupy = harness.cupy_or_skip()
    x, k = np.ones((2, 5, 4, 0), np.float32), np.ones((3, 3, 0, 3), np.float32)
    got = winograd_gpu(cupy, library, x, k, "SAME", 4)
    np.testing.assert_array_equal(got, np.zeros((2, 5, 4, 3)))


@pytest.mark.parametrize("tile", sorted(TOLERANCE))
def test_empty_batch_launches_nothing(library, tile):
    cupy = harness.cupy_or_skip()
    x, k = np.ones((0, 6, 6, 5), np.float32), np.ones((3, 3, 5, 7), np.float32)
    assert winograd_gpu(cupy, library, x, k, "SAME", tile).shape == (0, 6, 6, 7)
