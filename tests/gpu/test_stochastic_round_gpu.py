"""The StochasticRound CUDA kernel through its standalone harness.

Runs where nvcc, CuPy and a GPU exist (the lent GPU machine, which has no
TensorFlow); elsewhere it only checks that the harness compiles, or skips.
The GPU result must equal the numpy Philox reference bit for bit, as the CPU
kernel's does, so CPU and GPU agree for every seed.
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


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not installed")
    return harness.load(
        tmp_path_factory.mktemp("harness"), "stochastic_round", "kcp_", {
            "kcp_stochastic_round": (ctypes.c_int, [
                ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                ctypes.c_longlong, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                ctypes.c_ulonglong, ctypes.c_ulonglong]),
        }).stochastic_round


@needs_nvcc
def test_harness_compiles(library):
    assert library is not None


@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
@pytest.mark.parametrize("n", [1, 7, 1_000_003])
def test_gpu_matches_numpy_reference(library, rounding, n):
    cupy = harness.cupy_or_skip()
    x = np.random.default_rng(n).uniform(-3, 3, n).astype(np.float32)
    x[:1] = np.nan if n > 1 else x[:1]
    dx, dy = cupy.asarray(x), cupy.empty(n, cupy.float32)
    seeds = (2**40 + 3, 17)
    status = library(0, dx.data.ptr, dy.data.ptr, n, 12, 7,
                     rounding == "stochastic", *seeds)
    assert status == 0
    u = ref.uniforms(n, *seeds)
    want = ref.fixed_point(x, 12, 7, rounding, u).astype(np.float32)
    np.testing.assert_array_equal(cupy.asnumpy(dy), want)


def test_gpu_half_and_bfloat16(library):
    cupy = harness.cupy_or_skip()
    x = (np.arange(-64, 64) + 0.5).astype(np.float32) / 16  # exact ties
    dx = cupy.asarray(x.astype(np.float16))
    dy = cupy.empty_like(dx)
    assert library(1, dx.data.ptr, dy.data.ptr, x.size, 8, 4, 0, 0, 0) == 0
    want = ref.fixed_point(x, 8, 4, "nearest").astype(np.float16)
    np.testing.assert_array_equal(cupy.asnumpy(dy), want)
    # bfloat16 has no numpy dtype: compare the float32 bits' top halves.
    bf16 = (x.view(np.uint32) >> 16).astype(np.uint16)  # exact: few bits used
    dx = cupy.asarray(bf16)
    dy = cupy.empty_like(dx)
    assert library(2, dx.data.ptr, dy.data.ptr, x.size, 8, 4, 0, 0, 0) == 0
    got = (cupy.asnumpy(dy).astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(got, ref.fixed_point(x, 8, 4, "nearest"))


@pytest.mark.parametrize("fraction", [0.03, 0.3, 0.5, 0.9])
def test_gpu_rounds_up_with_the_remainders_probability(library, fraction):
    """Statistics, apart from the reference's bits: every output is one of
    the two grid points around x, and the share rounded up is the
    remainder's fraction of a step within 5 standard deviations."""
    cupy = harness.cupy_or_skip()
    n, frac_bits, step = 1_000_000, 7, 2.0**-7
    low = 1.25
    x = np.full(n, low + fraction * step, np.float32)
    fraction = (float(x[0]) - low) / step  # as float32 holds it
    dx, dy = cupy.asarray(x), cupy.empty(n, cupy.float32)
    assert library(0, dx.data.ptr, dy.data.ptr, n, 12, frac_bits, 1, 5, 9) == 0
    y = cupy.asnumpy(dy).astype(np.float64)
    up = y == low + step
    assert np.all(up | (y == low))
    sigma = np.sqrt(fraction * (1 - fraction) / n)
    assert abs(up.mean() - fraction) < 5 * sigma
