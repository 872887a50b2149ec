"""The linear learning-rate scaling rule with warm-up (Goyal et al. 2017)
against its formula."""

import math

import numpy as np
import pytest

from keras_cnnpractice.training.config import TrainConfig
from keras_cnnpractice.training.prepare import learning_rate_schedule


def _expected(step, base, peak, start, warmup, total):
    """Linear warm-up from `start` to `peak` over `warmup` steps, then
    cosine decay from `peak` to 0 over the remaining steps."""
    if step < warmup:
        return start + (peak - start) * step / warmup
    progress = (step - warmup) / (total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("scaling, batch, warmup_epochs, start, peak", [
    ("linear", 512, 5, 0.1, 0.1 * 512 / 256),   # Goyal: 8k batch, 5 epochs
    ("linear", 128, 0, None, 0.1 * 128 / 256),  # scaled, no warm-up
    ("none", 512, 2, 0.0, 0.1),                 # warm-up from 0, no scaling
    ("none", 64, 0, None, 0.1),                 # the default: cosine only
])
def test_schedule_follows_the_formula(scaling, batch, warmup_epochs, start,
                                      peak):
    config = TrainConfig(learning_rate=0.1, batch_size=batch, epochs=10,
                         lr_scaling=scaling, lr_reference_batch=256,
                         warmup_epochs=warmup_epochs)
    steps_per_epoch = 7
    schedule = learning_rate_schedule(config, steps_per_epoch)
    total, warmup = 10 * steps_per_epoch, warmup_epochs * steps_per_epoch
    steps = [0, 1, warmup // 2, max(warmup - 1, 0), warmup, warmup + 3,
             (warmup + total) // 2, total - 1, total]
    got = [float(schedule(s)) for s in steps]
    want = [_expected(s, 0.1, peak, start, warmup, total) for s in steps]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("overrides, message", [
    ({"lr_scaling": "sqrt"}, "lr_scaling must be one of none, linear"),
    ({"lr_reference_batch": 0}, "lr_reference_batch must be >= 1"),
    ({"warmup_epochs": 10}, "less than --epochs=10"),
])
def test_bad_schedule_flags(overrides, message):
    with pytest.raises(ValueError, match=message):
        learning_rate_schedule(TrainConfig(epochs=10, **overrides), 5)


def test_cluster_timeout_defaults_agree():
    from keras_cnnpractice.strategies.cluster import DEFAULT_CLUSTER_TIMEOUT_S
    assert TrainConfig().cluster_timeout_s == DEFAULT_CLUSTER_TIMEOUT_S
