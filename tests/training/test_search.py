"""Log-space random search: sampling, range parsing, narrowing, edges."""

import math
import re

import numpy as np
import pytest

from keras_cnnpractice.training.search import SearchSpace
from keras_cnnpractice.training.search import coarse_to_fine
from keras_cnnpractice.training.search import edge_warnings
from keras_cnnpractice.training.search import log_uniform
from keras_cnnpractice.training.search import parse_range


def test_log_uniform_is_uniform_in_log10():
    n = 20000
    samples = log_uniform(np.random.default_rng(0), 1e-5, 1e-2, size=n)
    assert samples.shape == (n,)
    assert samples.min() >= 1e-5 and samples.max() <= 1e-2
    exponents = np.sort(np.log10(samples))
    # Kolmogorov-Smirnov against U(-5, -2): the largest gap between the
    # empirical and the uniform CDF, below the 0.1% critical value
    # 1.949 / sqrt(n).
    cdf = (exponents + 5.0) / 3.0
    upper = np.arange(1, n + 1) / n - cdf
    lower = cdf - np.arange(n) / n
    assert max(upper.max(), lower.max()) < 1.949 / math.sqrt(n)
    # Each decade a third of the samples (binomial sd 0.0033), where
    # uniform(1e-5, 1e-2) would put 90% in the top decade.
    counts = np.histogram(exponents, bins=[-5, -4, -3, -2])[0] / n
    np.testing.assert_allclose(counts, [1 / 3] * 3, atol=0.015)
    # Mean of U(-5, -2) is -3.5; its standard error is sqrt(3/4/n) = 0.006.
    assert abs(exponents.mean() + 3.5) < 0.03


def test_log_uniform_single_value_and_seed():
    a = log_uniform(np.random.default_rng(3), 0.1, 10.0)
    b = log_uniform(np.random.default_rng(3), 0.1, 10.0)
    assert isinstance(a, float) and a == b and 0.1 <= a <= 10.0


@pytest.mark.parametrize("low, high, message", [
    (0.0, 1.0, "must be > 0"), (-1e-3, 1.0, "must be > 0"),
    (1e-2, 1e-5, "must be below the high bound"),
    (1e-3, 1e-3, "must be below the high bound"),
    (1e-3, math.inf, "must be finite"),
])
def test_log_uniform_rejects_bad_bounds(low, high, message):
    with pytest.raises(ValueError, match=message):
        log_uniform(np.random.default_rng(0), low, high)


def test_parse_range():
    assert parse_range("1e-5:1e-2") == (1e-5, 1e-2)
    assert parse_range(" 0.5 : 2 ") == (0.5, 2.0)


@pytest.mark.parametrize("text, message", [
    ("1e-3", "lr must be LOW:HIGH, e.g. 1e-5:1e-2. Received: lr='1e-3'"),
    ("1:2:3", "Received: lr='1:2:3'"),
    ("a:1", "two numbers"),
    ("0:1", "must be > 0 to sample in log space. Received: low=0.0"),
    ("1e-2:1e-5", "Received: low=0.01, high=1e-05"),
    ("nan:1", "must be finite"),
])
def test_parse_range_errors(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_range(text, "lr")


def test_space_sampling_is_reproducible_and_inside():
    space = SearchSpace.parse({"learning_rate": "1e-5:1e-2", "l2": "1e-5:1e-1"})
    first = space.sample(np.random.default_rng(7), 50)
    assert first == space.sample(np.random.default_rng(7), 50)
    assert len(first) == 50 and all(
        1e-5 <= t["learning_rate"] <= 1e-2 and 1e-5 <= t["l2"] <= 1e-1
        for t in first)
    with pytest.raises(ValueError, match="at least one range"):
        SearchSpace({})


def _trials(space, count, seed=0):
    """Trials scored by closeness (in decades) to lr 1e-3, l2 1e-3."""
    trials = space.sample(np.random.default_rng(seed), count)
    for t in trials:
        t["val_accuracy"] = 1.0 - 0.1 * (
            abs(math.log10(t["learning_rate"]) + 3)
            + abs(math.log10(t["l2"]) + 3))
    return trials


def test_coarse_to_fine_narrows_around_the_best():
    space = SearchSpace({"learning_rate": (1e-6, 1.0), "l2": (1e-6, 1.0)})
    trials = _trials(space, 40)
    trials.append({"learning_rate": 1e-4, "l2": 1e-2,
                   "val_accuracy": math.nan})  # a NaN run: ignored
    fine = coarse_to_fine(space, trials, top_k=3, margin=0.1)
    best = sorted(trials[:40], key=lambda t: -t["val_accuracy"])[:3]
    for name, (low, high) in fine.ranges.items():
        values = [t[name] for t in best]
        assert 1e-6 <= low <= min(values) and max(values) <= high <= 1.0
        # The top-3 span plus 10% of the 6 original decades on each side.
        span = math.log10(max(values)) - math.log10(min(values))
        width = math.log10(high) - math.log10(low)
        assert width == pytest.approx(span + 2 * 0.6, abs=1e-9)
        assert 1e-3 > low and 1e-3 < high  # the optimum stays inside
    assert all(fine.ranges[n][0] <= t[n] <= fine.ranges[n][1]
               for t in fine.sample(np.random.default_rng(1), 100)
               for n in fine.ranges)


def test_coarse_to_fine_clips_to_the_original_range():
    space = SearchSpace({"learning_rate": (1e-5, 1e-2)})
    fine = coarse_to_fine(space, [{"learning_rate": 1e-2, "val_accuracy": 1}],
                          top_k=1, margin=0.1)
    low, high = fine.ranges["learning_rate"]
    assert high == 1e-2
    assert low == pytest.approx(10 ** (-2 - 0.3), rel=1e-9)


def test_coarse_to_fine_without_scores_keeps_the_space():
    space = SearchSpace({"l2": (1e-5, 1e-1)})
    assert coarse_to_fine(space, [{"l2": 1e-3, "val_accuracy": None}]) is space
    with pytest.raises(ValueError, match="top_k=0"):
        coarse_to_fine(space, [], top_k=0)
    with pytest.raises(ValueError, match="margin=0"):
        coarse_to_fine(space, [], margin=0)


def test_edge_warnings():
    space = SearchSpace({"learning_rate": (1e-5, 1e-2), "l2": (1e-5, 1e-1)})
    # The outer 10% of 3 decades are 0.3 decades: below 10**-4.7 and above
    # 10**-2.3.
    assert edge_warnings({"learning_rate": 10 ** -4.69, "l2": 1e-3},
                         space) == []
    low = edge_warnings({"learning_rate": 10 ** -4.71, "l2": 1e-3}, space)
    assert len(low) == 1 and "bottom 10%" in low[0]
    assert "learning_rate=1.95e-05" in low[0] and "lower" in low[0]
    both = edge_warnings({"learning_rate": 9e-3, "l2": 1e-5, "x": 1}, space)
    assert len(both) == 2
    assert "top 10%" in both[0] and "range 1e-05:0.01" in both[0]
    assert "bottom 10%" in both[1] and "l2=1e-05" in both[1]
    with pytest.raises(ValueError, match="fraction=0.5"):
        edge_warnings({}, space, fraction=0.5)
