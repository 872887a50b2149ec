"""Argument checks, in one message style: `NAME must be WHAT. Received:
NAME=VALUE` (a `ValueError`). Booleans are not numbers here, though
Python counts them as ints: `batch_size=True` is a mistake, never 1."""

import math
import numbers


def is_int(value):
    """An integer (Python's or numpy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """A real number (int, float, numpy scalar), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fail(name, what, value, allow_none):
    raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}"
                     f". Received: {name}={value!r}")


def check_int(name, value, minimum=None, maximum=None, allow_none=False):
    """`value` as an int, when it is an integer in `[minimum, maximum]`
    (None: unbounded), or None when `allow_none` and it is.

    Raises:
        ValueError: anything else ("a positive integer", "an integer >= 2",
            "an integer in [0, 7]", ...).
    """
    if allow_none and value is None:
        return None
    if (is_int(value) and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)):
        return int(value)
    if maximum is not None:
        what = f"an integer in [{minimum}, {maximum}]"
    else:
        what = {None: "an integer", 0: "a non-negative integer",
                1: "a positive integer"}.get(minimum,
                                             f"an integer >= {minimum}")
    _fail(name, what, value, allow_none)


def check_number(name, value, low=None, high=None, low_open=False,
                 high_open=False, allow_none=False):
    """`value` as a float, when it is a finite number between `low` and
    `high` (each included unless `*_open`; None: unbounded), or None when
    `allow_none` and it is.

    Raises:
        ValueError: anything else, NaN and infinities included ("a
            positive number", "a number in [0, 1)", ...).
    """
    if allow_none and value is None:
        return None
    if (is_number(value) and math.isfinite(value)
            and (low is None or (value > low if low_open else value >= low))
            and (high is None or (value < high if high_open
                                  else value <= high))):
        return float(value)
    if high is None and low == 0:
        what = "a positive number" if low_open else "a non-negative number"
    elif high is None and low is None:
        what = "a finite number"
    elif high is None:
        what = f"a number {'>' if low_open else '>='} {low}"
    else:
        what = (f"a number in {'(' if low_open else '['}{low}, {high}"
                f"{')' if high_open else ']'}")
    _fail(name, what, value, allow_none)


def check_bool(name, value):
    """`value`, when it is True or False (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False. Received: "
                         f"{name}={value!r}")
    return value


def check_seed(seed):
    """`seed`, an integer or None."""
    return check_int("seed", seed, allow_none=True)


def pair(name, value):
    """`(value, value)` for an integer, else `tuple(value)` of two
    integers (a kernel size, strides, dilations)."""
    both = (value, value) if is_int(value) else tuple(
        value) if isinstance(value, (tuple, list)) else ()
    if len(both) != 2 or not all(map(is_int, both)):
        raise ValueError(f"{name} must be an integer or a pair of integers. "
                         f"Received: {name}={value!r}")
    return tuple(int(v) for v in both)
