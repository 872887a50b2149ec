"""train.py refuses a learning rate that is not a finite number > 0."""

import math

import pytest

from keras_cnnpractice.training.train_flags import check_learning_rate
from tests.conftest import run_python


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1e-3])
def test_bad_learning_rates_are_refused(value):
    with pytest.raises(ValueError, match="finite number > 0"):
        check_learning_rate(value)


@pytest.mark.parametrize("value", [1e-9, 0.01, 50.0])
def test_finite_positive_learning_rates_pass(value):
    check_learning_rate(value)


def test_train_py_nan_learning_rate_is_a_one_line_usage_error(tmp_path):
    result = run_python(["train.py", "--learning_rate=nan",
                         f"--model_dir={tmp_path}"], check=False)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: flag --learning_rate=nan:")
    assert "finite number > 0" in last
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
