"""StochasticRound: compiled op vs numpy (exact) and statistics."""

import re

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import fixed_point_range
from keras_cnnpractice.custom_ops import stochastic_round
from keras_cnnpractice.custom_ops import stochastic_round_reference
from tests import numpy_reference as ref


def test_numpy_philox_matches_published_known_answers():
    # Random123's kat_vectors for philox4x32_10: the numpy reference the
    # op is checked against is itself checked against the published values.
    cases = [
        ([0, 0, 0, 0], (0, 0),
         [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF),
         [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
         (0xA4093822, 0x299F31D0),
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ]
    for counter, key, expected in cases:
        got = ref.philox4x32_10(np.array([counter], np.uint32), key)
        np.testing.assert_array_equal(got[0], np.array(expected, np.uint32))


@pytest.mark.parametrize("seed", [(0, 0), (12345, 678), (-3, 2**40 + 7)])
def test_stochastic_matches_numpy_philox_reference_exactly(seed):
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 10, size=(37, 53)).astype(np.float32)  # odd size
    got = stochastic_round(x, 12, 6, seed=tf.constant(seed, tf.int64)).numpy()
    want = ref.fixed_point(x, 12, 6, "stochastic", ref.uniforms(x.size, *seed))
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_stochastic_half_types_match_numpy_reference(dtype):
    # <8, 4> codes fit both significands, so the cast back is exact.
    x = np.random.default_rng(4).uniform(-9, 9, size=1001)
    x = tf.cast(x, dtype).numpy().astype(np.float64)
    got = stochastic_round(tf.constant(x, dtype), 8, 4, seed=(1, 2))
    want = ref.fixed_point(x, 8, 4, "stochastic", ref.uniforms(x.size, 1, 2))
    np.testing.assert_array_equal(got.numpy().astype(np.float64), want)


def test_stochastic_is_unbiased():
    x = np.array([0.1, -0.3, 0.49, 1.0 / 3.0, -1.75, 0.0078125 * 0.5],
                 np.float32)
    draws = 20000
    tiled = np.tile(x, draws)
    frac_bits = 3  # grid step 0.125: most values fall between grid points
    q = stochastic_round(tiled, 8, frac_bits, seed=7).numpy().reshape(draws, -1)
    step = 2.0**-frac_bits
    lower = np.floor(x * 2**frac_bits) * step
    assert np.all((q == lower) | (q == lower + step))  # only the neighbours
    # Bernoulli mean: std error step * sqrt(p (1 - p) / draws) <= step/(2 sqrt(n)).
    bound = 5 * step * 0.5 / np.sqrt(draws)
    np.testing.assert_array_less(np.abs(q.mean(axis=0) - x), bound)


def test_mean_over_seeds_converges():
    x = np.float32(0.3)
    means = [stochastic_round(np.full(1, x), 8, 2, seed=s).numpy()[0]
             for s in range(2000)]
    assert abs(np.mean(means) - x) < 5 * 0.25 * 0.5 / np.sqrt(2000)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16])
def test_nearest_equals_numpy_round_half_even(dtype):
    frac_bits = 4
    halves = (np.arange(-40, 40) + 0.5) / 2**frac_bits  # exact ties
    rng = np.random.default_rng(1)
    x = np.concatenate([halves, rng.uniform(-8, 8, 200)]).astype(np.float32)
    x = tf.cast(x, dtype).numpy().astype(np.float64)  # values dtype can hold
    got = stochastic_round(tf.constant(x, dtype), 8, frac_bits,
                           rounding="nearest")
    assert got.dtype == dtype
    want = ref.fixed_point(x, 8, frac_bits, "nearest")
    np.testing.assert_array_equal(got.numpy().astype(np.float64), want)


def test_saturation_and_special_values():
    lo, hi = fixed_point_range(8, 4)
    assert (lo, hi) == (-8.0, 127 / 16)
    x = np.array([100.0, -100.0, np.inf, -np.inf, np.nan, hi, lo], np.float32)
    for rounding in ("stochastic", "nearest"):
        got = stochastic_round(x, 8, 4, rounding=rounding, seed=1).numpy()
        np.testing.assert_array_equal(got[:4], [hi, lo, hi, lo])
        assert np.isnan(got[4])
        np.testing.assert_array_equal(got[5:], [hi, lo])


def test_seeds_are_deterministic_and_distinct():
    x = np.random.default_rng(2).normal(size=10000).astype(np.float32)
    a = stochastic_round(x, 16, 10, seed=3).numpy()
    b = stochastic_round(x, 16, 10, seed=3).numpy()
    c = stochastic_round(x, 16, 10, seed=4).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.3
    tf.random.set_seed(11)
    d = stochastic_round(x, 16, 10).numpy()
    tf.random.set_seed(11)
    e = stochastic_round(x, 16, 10).numpy()
    np.testing.assert_array_equal(d, e)


def test_large_tensor_independent_of_thread_sharding():
    # Big enough for the thread pool to split it; must equal numpy exactly.
    x = np.random.default_rng(3).uniform(-1, 1, size=1_000_003).astype(np.float32)
    got = stochastic_round(x, 16, 14, seed=(5, 9)).numpy()
    want = ref.fixed_point(x, 16, 14, "stochastic", ref.uniforms(x.size, 5, 9))
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_gradient_is_straight_through():
    lo, hi = fixed_point_range(8, 4)
    x = tf.constant([0.3, -2.0, hi, lo, hi + 0.01, lo - 0.01, 50.0])
    for fn in (stochastic_round, stochastic_round_reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, 8, 4)
        grad = tape.gradient(y, x, output_gradients=tf.fill(x.shape, 3.0))
        np.testing.assert_array_equal(grad.numpy(), [3, 3, 3, 3, 0, 0, 0])


def test_works_inside_tf_function_and_keeps_shape():
    fn = tf.function(lambda t: stochastic_round(t, 8, 4, seed=1))
    x = tf.random.normal([2, 3, 5])
    assert fn(x).shape == (2, 3, 5)
    assert stochastic_round(tf.zeros([0, 4]), 8, 4).shape == (0, 4)


def test_reference_has_same_statistics():
    x = np.full(50000, 0.3, np.float32)
    q = stochastic_round_reference(x, 8, 2, seed=3).numpy()
    assert set(np.unique(q)) == {0.25, 0.5}
    assert abs(q.mean() - 0.3) < 5 * 0.25 * 0.5 / np.sqrt(x.size)
    np.testing.assert_array_equal(
        stochastic_round_reference(x[:5], 8, 2, rounding="nearest").numpy(),
        ref.fixed_point(x[:5], 8, 2, "nearest").astype(np.float32))


@pytest.mark.parametrize("kwargs, message", [
    (dict(word_bits=1), "word_bits=1"),
    (dict(word_bits=25), "word_bits=25"),
    (dict(frac_bits=-1), "frac_bits=-1"),
    (dict(frac_bits=65), "frac_bits=65"),
    (dict(rounding="up"), "rounding='up'"),
    (dict(seed=tf.constant([1, 2, 3], tf.int64)), "shape: [3]"),
])
def test_bad_arguments_raise_invalid_argument(kwargs, message):
    args = dict(word_bits=8, frac_bits=4, rounding="nearest", seed=0)
    args.update(kwargs)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        stochastic_round(tf.ones([4]), **args)


@pytest.mark.parametrize("dtype", [tf.int32, tf.float64])
def test_unsupported_dtype_raises_invalid_argument(dtype):
    with pytest.raises(tf.errors.InvalidArgumentError, match="attr 'T'"):
        stochastic_round(tf.ones([4], dtype), 8, 4)
