"""The Bitpack / XnorMatmul / XnorConv2D CUDA kernels through their harness.

Runs where nvcc, CuPy and a GPU exist (the lent GPU machine, which has no
TensorFlow); elsewhere it only checks that the harness compiles, or skips.
Every GPU result must equal the independent numpy references of
tests/numpy_reference.py exactly: bit packing by np.packbits, products and
convolutions by float64 arithmetic on the +-1 signs (small integers, so
exact in float32 too); tests/custom_ops/test_xnor.py checks those references
by hand on tiny cases.
"""

import ctypes
import shutil

import numpy as np
import pytest

from tests import numpy_reference as ref
from tests.gpu import harness

pytestmark = pytest.mark.gpu

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None,
                                reason="nvcc not installed")


def load_library(out_dir):
    """Builds the harness into out_dir; its functions, typed for ctypes.

    Each takes a last argument, synchronize: 1 waits for the kernel (the
    status then covers its execution), 0 returns after the launch."""
    ptr, ll, flag = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_int
    status = ctypes.c_int
    return harness.load(out_dir, "xnor", "kcp_", {
        "kcp_bitpack": (status, [ctypes.c_int, ctypes.c_int, ptr, ptr, ll, ll,
                                 flag]),
        "kcp_xnor_matmul": (status, [ctypes.c_int, ptr, ptr, ptr, ll, ll, ll,
                                     ll, flag]),
        "kcp_xnor_conv2d": (status, [ctypes.c_int, ptr, ptr, ptr,
                                     ctypes.POINTER(ctypes.c_int64), flag]),
    })


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not installed")
    return load_library(tmp_path_factory.mktemp("harness"))


# ----------------------------------------------------------------------------
# GPU kernels against the references


def _bitpack_gpu(cupy, library, dtype_code, word_bits, x_device, outer,
                 depth):
    words = -(-depth // word_bits)
    dtype = ref.WORD_DTYPES[word_bits]
    # Start from all ones so unwritten words or padding bits show up.
    out = cupy.full((outer, words), np.iinfo(dtype).max, dtype)
    status = library.bitpack(dtype_code, word_bits, x_device.data.ptr,
                             out.data.ptr, outer, depth, 1)
    assert status == 0
    return cupy.asnumpy(out)


@needs_nvcc
def test_harness_compiles(library):
    assert library is not None


@pytest.mark.parametrize("word_bits", [32, 64])
@pytest.mark.parametrize("outer,depth", [(1, 1), (3, 31), (5, 33), (4, 64),
                                         (7, 100), (2, 130), (1000, 3000)])
def test_bitpack_float32(library, word_bits, outer, depth):
    cupy = harness.cupy_or_skip()
    x = ref.values_with_zeros_and_nans(np.random.default_rng(depth), (outer, depth))
    x[0, -1] = np.nan  # NaN -> bit 1, in the last (partial) word
    got = _bitpack_gpu(cupy, library, 0, word_bits, cupy.asarray(x), outer,
                       depth)
    np.testing.assert_array_equal(got, ref.bitpack(x, word_bits))


@pytest.mark.parametrize("word_bits", [32, 64])
def test_bitpack_half_and_bfloat16(library, word_bits):
    cupy = harness.cupy_or_skip()
    outer, depth = 6, 130
    x = ref.values_with_zeros_and_nans(np.random.default_rng(word_bits), (outer, depth))
    x[0, :4] = [np.inf, -np.inf, 1e-30, -1e-30]  # +-1e-30 is +-0 in half
    x16 = x.astype(np.float16)
    got = _bitpack_gpu(cupy, library, 1, word_bits, cupy.asarray(x16), outer,
                       depth)
    np.testing.assert_array_equal(got, ref.bitpack(x16, word_bits))
    # bfloat16 has no numpy dtype: it is the top half of the float32 bits.
    bf16 = (x.view(np.uint32) >> 16).astype(np.uint16)
    as_float = (bf16.astype(np.uint32) << 16).view(np.float32)
    got = _bitpack_gpu(cupy, library, 2, word_bits, cupy.asarray(bf16), outer,
                       depth)
    np.testing.assert_array_equal(got, ref.bitpack(as_float, word_bits))


@pytest.mark.parametrize("word_bits", [32, 64])
@pytest.mark.parametrize("m,n,depth", [(1, 1, 1), (3, 5, 31), (33, 40, 33),
                                       (70, 65, 100), (37, 129, 130),
                                       (64, 31, 2085), (3000, 3000, 70)])
def test_xnor_matmul(library, word_bits, m, n, depth):
    cupy = harness.cupy_or_skip()
    rng = np.random.default_rng(m * n + depth)
    a = ref.values_with_zeros_and_nans(rng, (m, depth))
    b = ref.values_with_zeros_and_nans(rng, (n, depth))
    # Named, so the device buffers live until the call returns.
    pa = cupy.asarray(ref.bitpack(a, word_bits))
    pb = cupy.asarray(ref.bitpack(b, word_bits))
    out = cupy.full((m, n), np.nan, cupy.float32)
    status = library.xnor_matmul(word_bits, pa.data.ptr, pb.data.ptr,
                                 out.data.ptr, m, n, pa.shape[1], depth, 1)
    assert status == 0
    want = (ref.signs(a) @ ref.signs(b).T).astype(np.float32)
    np.testing.assert_array_equal(cupy.asnumpy(out), want)


CONV_CASES = [
    # channels, word_bits, batch, (in_h, in_w), (kh, kw), strides,
    # dilations, padding, out_channels
    (1, 32, 2, (5, 6), (3, 3), (1, 1), (1, 1), "SAME", 3),
    (31, 32, 1, (6, 6), (1, 1), (2, 2), (1, 1), "VALID", 2),
    (33, 32, 2, (7, 5), (3, 2), (2, 2), (1, 1), "SAME", 5),
    (100, 64, 2, (9, 8), (3, 3), (1, 2), (2, 1), "VALID", 4),
    (130, 64, 2, (8, 9), (2, 3), (2, 1), (2, 2), "SAME", 70),
    (64, 64, 1, (4, 4), (5, 5), (1, 1), (1, 1), "SAME", 3),
    (100, 32, 2, (7, 7), (3, 3), (2, 2), (2, 2), "SAME", 33),
    (40, 64, 4, (32, 32), (3, 3), (1, 1), (1, 1), "SAME", 300),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_xnor_conv2d(library, case):
    (channels, word_bits, batch, (in_h, in_w), (kh, kw), strides, dilations,
     padding, out_channels) = case
    cupy = harness.cupy_or_skip()
    rng = np.random.default_rng(channels * out_channels)
    x = ref.values_with_zeros_and_nans(rng, (batch, in_h, in_w, channels))
    f = ref.values_with_zeros_and_nans(rng, (out_channels, kh, kw, channels))
    want, (out_h, out_w), (pad_top, pad_left) = ref.sign_conv2d(
        x, f, strides, dilations, padding)
    # Named, so the device buffers live until the call returns.
    px = cupy.asarray(ref.bitpack(x.reshape(-1, channels), word_bits))
    pf = cupy.asarray(ref.bitpack(f.reshape(-1, channels), word_bits))
    # The XnorConvGeometry fields in declaration order.
    geometry = (ctypes.c_int64 * 16)(
        batch, in_h, in_w, px.shape[1], channels, kh, kw, out_channels,
        out_h, out_w, *strides, *dilations, pad_top, pad_left)
    out = cupy.full((batch, out_h, out_w, out_channels), np.nan, cupy.float32)
    status = library.xnor_conv2d(word_bits, px.data.ptr, pf.data.ptr,
                                 out.data.ptr, geometry, 1)
    assert status == 0
    np.testing.assert_array_equal(cupy.asnumpy(out), want.astype(np.float32))


@pytest.mark.parametrize("word_bits", [32, 64])
def test_empty_inputs_launch_nothing(library, word_bits):
    """Batch 0 (no rows, no pixels) is legal: status 0, nothing written."""
    cupy = harness.cupy_or_skip()
    dtype = ref.WORD_DTYPES[word_bits]
    x = cupy.zeros((0, 40), cupy.float32)
    packed = cupy.zeros((0, 2), dtype)
    assert library.bitpack(0, word_bits, x.data.ptr, packed.data.ptr, 0, 40,
                           1) == 0
    filters = cupy.zeros((3, 2), dtype)
    out = cupy.zeros((0, 3), cupy.float32)
    assert library.xnor_matmul(word_bits, packed.data.ptr, filters.data.ptr,
                               out.data.ptr, 0, 3, 2, 40, 1) == 0
    geometry = (ctypes.c_int64 * 16)(0, 5, 5, 2, 40, 3, 3, 3, 5, 5, 1, 1, 1,
                                     1, 1, 1)
    assert library.xnor_conv2d(word_bits, packed.data.ptr,
                               cupy.zeros((27, 2), dtype).data.ptr,
                               out.data.ptr, geometry, 1) == 0
