"""The shared argument checks: what they accept, and one message style."""

import numpy as np
import pytest

from keras_cnnpractice import _validate as v


@pytest.mark.parametrize("call, message", [
    (lambda: v.check_int("n", True, 1), "n must be a positive integer. "
                                        "Received: n=True"),
    (lambda: v.check_int("n", 0, 1), "n must be a positive integer."),
    (lambda: v.check_int("n", 1.0, 1), "n must be a positive integer."),
    (lambda: v.check_int("n", -1, 0), "n must be a non-negative integer."),
    (lambda: v.check_int("k", 1, 2), "k must be an integer >= 2."),
    (lambda: v.check_int("k", 8, 0, 7), r"k must be an integer in \[0, 7\]"),
    (lambda: v.check_int("s", "1", allow_none=True),
     "s must be an integer or None."),
    (lambda: v.check_number("r", 1.0, 0, 1, high_open=True),
     r"r must be a number in \[0, 1\)"),
    (lambda: v.check_number("p", 0.0, 0, 1, low_open=True),
     r"p must be a number in \(0, 1\]"),
    (lambda: v.check_number("x", float("nan"), 0),
     "x must be a non-negative number."),
    (lambda: v.check_number("x", float("inf"), 0, low_open=True),
     "x must be a positive number."),
    (lambda: v.check_number("x", False), "x must be a finite number."),
    (lambda: v.check_bool("flip", 1), "flip must be True or False."),
    (lambda: v.pair("strides", (1, 2, 3)),
     "strides must be an integer or a pair of integers."),
    (lambda: v.pair("strides", (1.0, 2)), "strides must be an integer or"),
])
def test_refusals_name_the_argument_and_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_accepted_values_come_back_as_python_numbers():
    assert v.check_int("n", np.int64(3), 1) == 3
    assert type(v.check_int("n", np.int64(3), 1)) is int
    assert v.check_int("n", None, 1, allow_none=True) is None
    assert v.check_number("r", np.float32(0.5), 0, 1) == 0.5
    assert v.check_number("r", 0, 0, 1) == 0.0
    assert v.check_bool("b", False) is False
    assert v.check_seed(None) is None and v.check_seed(7) == 7
    assert v.pair("k", 3) == (3, 3) and v.pair("k", [1, 2]) == (1, 2)
    assert v.is_int(np.int32(1)) and not v.is_int(True)
    assert v.is_number(2.5) and not v.is_number(True)
