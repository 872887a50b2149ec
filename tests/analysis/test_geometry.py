"""conv_output_size: (N - F + 2P) / S + 1."""

import pytest

from keras_cnnpractice.analysis import conv_output_size


@pytest.mark.parametrize("n, f, s, p, out", [
    (7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (32, 5, 1, 2, 32), (227, 11, 4, 0, 55),
    (55, 3, 2, "valid", 27), (224, 3, 1, 1, 224), (7, 3, 3, "same", 3),
    (224, 7, 2, "same", 112)])
def test_output_sizes(n, f, s, p, out):
    assert conv_output_size(n, f, s, p) == out


def test_filter_that_does_not_tile_the_input():
    with pytest.raises(ValueError, match=r"\(7 - 3 \+ 0\) / 3 \+ 1 = 2\.33"):
        conv_output_size(7, 3, 3)


@pytest.mark.parametrize("args, message", [
    ((3, 5, 1, 0), "does not fit"), ((0, 3, 1, 0), "n=0"),
    ((7, 3, 0, 0), "stride=0"), ((7, 3, 1, -1), "padding=-1"),
    ((7, 3, 1, "full"), "padding='full'")])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        conv_output_size(*args)
